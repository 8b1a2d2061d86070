"""The fuzz suite's budget, seed and figures (tests/test_fuzz_*.py).

Every fuzz target is a hypothesis property run for a bounded number of cases with a
fixed seed, so CI is reproducible and takes seconds; `--fuzz-cases N` (or
`CORRAL_FUZZ_CASES=N`) runs N cases of every target instead, and `CORRAL_FUZZ_SEED=S`
a different, still reproducible, sequence.  A case either succeeds, or is refused
with the target's clean error (a `ProtocolError`, a `ConfigError` with positions, a
400...), or it is a failure: any other exception, a 500, a write outside the target
directory, a leaked mount.  Failures are re-raised, so hypothesis shrinks them to a
minimal example; the figures (cases, accepted, refused, distinct refusals, failures)
are printed at the end of the session as "fuzz figures".
"""

from __future__ import annotations

import os
import re
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import hypothesis
import pytest
from hypothesis import HealthCheck, settings

T = TypeVar("T")

_OPTION: dict[str, int | None] = {"cases": None}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--fuzz-cases",
        type=int,
        default=None,
        help="cases per fuzz target (default: each target's CI budget; env CORRAL_FUZZ_CASES)",
    )


def pytest_configure(config: pytest.Config) -> None:
    _OPTION["cases"] = config.getoption("--fuzz-cases", default=None)


def budget(ci: int) -> int:
    """The cases to run: `--fuzz-cases`, else CORRAL_FUZZ_CASES, else the CI budget."""
    given = _OPTION["cases"]
    if given is None and os.environ.get("CORRAL_FUZZ_CASES"):
        given = int(os.environ["CORRAL_FUZZ_CASES"])
    return given if given is not None else ci


def fuzz(ci_cases: int) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Hypothesis settings for a fuzz target: bounded, seeded, no example database (a
    run never depends on an earlier one), no deadline (the machine is shared)."""
    seed_text = os.environ.get("CORRAL_FUZZ_SEED")
    s = settings(
        max_examples=budget(ci_cases),
        derandomize=seed_text is None,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        print_blob=True,
    )

    def wrap(fn: Callable[..., T]) -> Callable[..., T]:
        fn = s(fn)
        if seed_text is not None:
            fn = hypothesis.seed(int(seed_text))(fn)
        return fn

    return wrap


@dataclass
class Figures:
    cases: int = 0
    accepted: int = 0
    refused: int = 0
    kinds: set[str] = field(default_factory=set)
    failures: int = 0
    failure_kinds: set[str] = field(default_factory=set)


FIGURES: dict[str, Figures] = {}


def figures(target: str) -> Figures:
    return FIGURES.setdefault(target, Figures())


_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|b'[^']*'")
_NUMBER = re.compile(r"\d+")


def kind(exc: BaseException) -> str:
    """A refusal's shape: its type and message with quoted parts and numbers masked, so
    "distinct refusals" counts the error paths reached, not the inputs."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    text = _NUMBER.sub("N", _QUOTED.sub("'…'", text))
    return f"{type(exc).__name__}: {text[:80]}"


def where(exc: BaseException) -> str:
    """Where an unexpected exception came from: its type and innermost frame."""
    tb = traceback.extract_tb(exc.__traceback__)
    frame = tb[-1] if tb else None
    at = f" at {os.path.basename(frame.filename)}:{frame.lineno}" if frame else ""
    return f"{type(exc).__name__}{at}"


class Refused(Exception):
    """Raised by a case to say its input was refused cleanly (the message is the kind)."""


@contextmanager
def case(target: str, *clean: type[BaseException]) -> Iterator[Figures]:
    """Count one case of `target`: `clean` exceptions (and `Refused`) are refusals,
    anything else a failure (re-raised for hypothesis to shrink)."""
    fig = figures(target)
    fig.cases += 1
    try:
        yield fig
    except Refused as exc:
        fig.refused += 1
        fig.kinds.add(str(exc))
        return
    except clean as exc:
        fig.refused += 1
        fig.kinds.add(kind(exc))
        return
    except BaseException as exc:
        fig.failures += 1
        fig.failure_kinds.add(where(exc) if not isinstance(exc, AssertionError) else "assert")
        raise
    fig.accepted += 1


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not FIGURES:
        return
    tr = terminalreporter
    tr.section("fuzz figures")
    tr.write_line(
        f"{'target':<22}{'cases':>8}{'accepted':>10}{'refused':>9}{'distinct':>10}{'failures':>10}"
    )
    for name, f in sorted(FIGURES.items()):
        tr.write_line(
            f"{name:<22}{f.cases:>8}{f.accepted:>10}{f.refused:>9}{len(f.kinds):>10}"
            f"{f.failures:>10}"
        )
        for k in sorted(f.failure_kinds):
            tr.write_line(f"    failure: {k}")
    seed = os.environ.get("CORRAL_FUZZ_SEED")
    tr.write_line(
        "cases per target: --fuzz-cases N or CORRAL_FUZZ_CASES; "
        + (f"seed {seed}" if seed else "fixed seed (CORRAL_FUZZ_SEED=S for another)")
    )
