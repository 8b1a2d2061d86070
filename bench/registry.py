"""The scenarios, in the order they run.  A later issue adds its scenario as one module
under `bench/scenarios/` exposing `SCENARIO`, and one entry in `SCENARIOS` here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench.context import Bench
    from bench.report import Row


@dataclass(frozen=True)
class Scenario:
    name: str
    summary: str
    run: Callable[[Bench], Awaitable[list[Row]]]
    # whether the scenario measures docker too; those that do not show `-` for it
    with_docker: bool = False


def all_scenarios() -> tuple[Scenario, ...]:
    from bench.scenarios import (
        build,
        clistart,
        compose,
        crashloop,
        floor,
        idle,
        logrotate,
        logs,
        logtail,
        many,
        memory,
        network,
        pull,
        push,
        restart,
        restore,
        rollout,
        scale,
        scrape,
        soak,
        start,
    )

    return (
        start.SCENARIO,
        many.SCENARIO,
        memory.SCENARIO,
        idle.SCENARIO,
        logs.SCENARIO,
        logtail.SCENARIO,
        floor.SCENARIO,
        clistart.SCENARIO,
        compose.SCENARIO,
        scrape.SCENARIO,
        restart.SCENARIO,
        crashloop.SCENARIO,
        logrotate.SCENARIO,
        build.SCENARIO,
        network.SCENARIO,
        pull.SCENARIO,
        push.SCENARIO,
        restore.SCENARIO,
        rollout.SCENARIO,
        scale.SCENARIO,
        soak.SCENARIO,
    )


def select(scenarios: Sequence[Scenario], wanted: Sequence[str]) -> list[Scenario]:
    """The scenarios named in `wanted` (exact names or unique prefixes), in registry
    order; all of them when `wanted` is empty.  An unknown name is an error naming it."""
    if not wanted:
        return list(scenarios)
    chosen: set[str] = set()
    names = [s.name for s in scenarios]
    for w in wanted:
        hits = [n for n in names if n == w] or [n for n in names if n.startswith(w)]
        if not hits:
            raise ValueError(f"unknown scenario {w!r} (have: {', '.join(names)})")
        if len(hits) > 1:
            raise ValueError(f"ambiguous scenario {w!r}: {', '.join(hits)}")
        chosen.add(hits[0])
    return [s for s in scenarios if s.name in chosen]
