"""The lifecycle table (`engine/state.py`): the one way a container's status moves."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

from supervisor.engine.state import TRANSITIONS, Event, Status, transition
from supervisor.errors import Conflict, NotModified

SRC = Path(__file__).resolve().parent.parent / "supervisor"


@dataclass
class _State:
    status: Status


def test_a_transition_in_the_table_moves_the_state() -> None:
    st = _State(Status.CREATED)
    assert transition(st, Event.START, "web") is Status.RUNNING
    assert transition(st, Event.PAUSE, "web") is Status.PAUSED
    assert transition(st, Event.EXIT, "web") is Status.EXITED
    assert transition(st, Event.RESTART_WAIT, "web") is Status.RESTARTING
    assert transition(st, Event.START_FAILED, "web") is Status.EXITED
    assert transition(st, Event.REMOVE, "web") is Status.REMOVING
    assert st.status is Status.REMOVING


@pytest.mark.parametrize(("status", "event", "error", "text"), [
    (Status.RUNNING, Event.START, NotModified, "container web is already running"),
    (Status.EXITED, Event.PAUSE, Conflict, "container web is not running"),
    (Status.PAUSED, Event.PAUSE, Conflict, "container web is already paused"),
    (Status.RUNNING, Event.UNPAUSE, Conflict, "container web is not paused"),
    (Status.RUNNING, Event.REMOVE, Conflict, "container is running"),
    (Status.PAUSED, Event.START, NotModified, "container web is already running"),
    (Status.CREATED, Event.EXIT, Conflict, "cannot exit while created"),
    (Status.REMOVING, Event.START, Conflict, "cannot start while removing"),
])
def test_an_illegal_transition_is_refused_and_changes_nothing(
    status: Status, event: Event, error: type[Exception], text: str
) -> None:
    assert (status, event) not in TRANSITIONS
    st = _State(status)
    with pytest.raises(error, match=text):
        transition(st, event, "web")
    assert st.status is status


def _status_assignments(source: str, where: str) -> list[str]:
    """`x.state.status = ...`, `st.status = ...` (and augmented, annotated, setattr)."""
    found: list[str] = []

    def of_state(node: ast.expr) -> bool:
        return (isinstance(node, ast.Attribute) and node.attr == "state") or (
            isinstance(node, ast.Name) and node.id in ("st", "state"))

    for node in ast.walk(ast.parse(source, where)):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = list(node.targets)
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            targets = [node.target]
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
              and node.func.id == "setattr" and len(node.args) >= 2
              and isinstance(node.args[1], ast.Constant) and node.args[1].value == "status"
              and of_state(node.args[0])):
            found.append(f"{where}:{node.lineno}")
        while targets:
            t = targets.pop()
            if isinstance(t, (ast.Tuple, ast.List)):
                targets += t.elts
            elif isinstance(t, ast.Attribute) and t.attr == "status" and of_state(t.value):
                found.append(f"{where}:{node.lineno}")
    return found


def test_no_code_assigns_a_status_outside_the_table() -> None:
    offenders = [hit for p in sorted(SRC.rglob("*.py")) if p != SRC / "engine" / "state.py"
                 for hit in _status_assignments(p.read_text(), str(p.relative_to(SRC.parent)))]
    assert offenders == []


def test_the_scan_finds_an_assignment() -> None:
    """The scan is not vacuous: the shapes it looks for are found."""
    source = ("c.state.status = 1\nst.status = 2\na, st.status = 3, 4\n"
              "setattr(c.state, 'status', 5)\nresponse.status = 200\n")
    assert sorted(_status_assignments(source, "probe")) == [f"probe:{n}" for n in (1, 2, 3, 4)]
