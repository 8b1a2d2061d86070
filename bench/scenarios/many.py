"""many: a fleet of idle containers started concurrently, then removed concurrently.

corral is driven through its API as fast as it answers, podman through its CLI; both
with the same number of requests in flight.  Each engine settles (its cleanup helpers
have exited) before the other is measured.
"""

from __future__ import annotations

from bench.context import Bench
from bench.fleet import WARMUP_FLEET, remove_fleet, start_fleet
from bench.registry import Scenario
from bench.report import Row


async def run(b: Bench) -> list[Row]:
    n, c = b.sizes.fleet, b.sizes.concurrency
    started = Row(f"many: {n} started, {c} in flight, until all run", "s")
    removed = Row(f"many: {n} removed (forced), {c} in flight", "s")
    for e in b.engines:  # warm-up: a small fleet
        ids, _ = await start_fleet(e, min(WARMUP_FLEET, n), c)
        await remove_fleet(e, ids, c)
        await e.settle()
    for i in range(b.sizes.fleet_rounds):
        for e in b.ordered(i):
            ids, t_start = await start_fleet(e, n, c)
            t_remove = await remove_fleet(e, ids, c)
            started.samples.setdefault(e.name, []).append(t_start)
            removed.samples.setdefault(e.name, []).append(t_remove)
            await e.settle()
    return [started, removed]


SCENARIO = Scenario(
    "many", "a fleet started concurrently until all run, then removed", run, with_docker=True
)
