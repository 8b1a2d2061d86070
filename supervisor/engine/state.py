"""The container lifecycle as one table.

Theory of operation
-------------------
A container is always in exactly one `Status`.  Things that happen to it are `Event`s:
some come from users (start, pause, stop, remove), some from the kernel (the init
process exited).  `TRANSITIONS` maps (status, event) to the next status; every status
change goes through `transition` (which asks `next_status`), so the whole lifecycle
can be read here, in one place, as h11's `_state.py` does for HTTP.  No other code
assigns a status (`tests/test_engine_layers.py` scans the source for one).

A pair that is not in the table is refused with the error Docker gives for it: starting
a running container is "not modified" (304), pausing a stopped one is a conflict (409).

    created ──start──> running ──exit──> exited ──start──> running
                        │   ▲
                 pause  │   │ unpause
                        ▼   │
                       paused ──exit──> exited   (a paused container can be killed)

    running/exited/created/paused ──remove(force)──> removing  (record deleted after)
"""

from __future__ import annotations

import enum
from typing import Protocol

from supervisor.errors import Conflict, NotModified
from supervisor.metadata.containers import Status as Status  # stored there, moved here


class Event(enum.StrEnum):
    START = "start"
    PAUSE = "pause"
    UNPAUSE = "unpause"
    EXIT = "exit"
    REMOVE = "remove"
    START_FAILED = "start_failed"
    RESTART_WAIT = "restart_wait"


S, E = Status, Event

TRANSITIONS: dict[tuple[Status, Event], Status] = {
    (S.CREATED, E.START): S.RUNNING,
    (S.EXITED, E.START): S.RUNNING,
    (S.RESTARTING, E.START): S.RUNNING,
    (S.CREATED, E.START_FAILED): S.CREATED,
    (S.EXITED, E.START_FAILED): S.EXITED,
    (S.RESTARTING, E.START_FAILED): S.EXITED,
    (S.RUNNING, E.PAUSE): S.PAUSED,
    (S.PAUSED, E.UNPAUSE): S.RUNNING,
    (S.RUNNING, E.EXIT): S.EXITED,
    (S.PAUSED, E.EXIT): S.EXITED,
    (S.EXITED, E.RESTART_WAIT): S.RESTARTING,
    (S.RESTARTING, E.EXIT): S.EXITED,
    (S.CREATED, E.REMOVE): S.REMOVING,
    (S.EXITED, E.REMOVE): S.REMOVING,
    (S.DEAD, E.REMOVE): S.REMOVING,
    (S.RESTARTING, E.REMOVE): S.REMOVING,
}

# Refusals that are not conflicts but "nothing to do", as Docker answers them.
_NOT_MODIFIED = {(S.RUNNING, E.START), (S.PAUSED, E.START), (S.RESTARTING, E.START)}


def next_status(status: Status, event: Event, name: str = "") -> Status:
    """The status after `event`, or the Docker error for an impossible pair."""
    try:
        return TRANSITIONS[(status, event)]
    except KeyError:
        pass
    who = name or "container"
    if (status, event) in _NOT_MODIFIED:
        raise NotModified(f"container {who} is already running")
    if event is E.PAUSE and status is S.PAUSED:
        raise Conflict(f"container {who} is already paused")
    if event in (E.PAUSE,):
        raise Conflict(f"container {who} is not running")
    if event is E.UNPAUSE:
        raise Conflict(f"container {who} is not paused")
    if event is E.REMOVE:
        raise Conflict(
            f'cannot remove container "{who}": container is {status.value}: '
            "stop the container before removing or force remove"
        )
    if event is E.START and status is S.PAUSED:
        raise Conflict(f"cannot start a paused container {who}, try unpause instead")
    raise Conflict(f"container {who}: cannot {event.value} while {status.value}")


class HasStatus(Protocol):
    status: Status


def transition(state: HasStatus, event: Event, name: str = "") -> Status:
    """Move a record's state by `event`, or raise Docker's error for an impossible
    pair (the state is left as it was): the one place a status is assigned."""
    state.status = next_status(state.status, event, name)
    return state.status


def is_active(status: Status) -> bool:
    """Has a live process (or is about to): these need stopping before removal."""
    return status in (S.RUNNING, S.PAUSED)
