"""idle: CPU the engine spends while a fleet of containers does nothing.

corral: the daemon's CPU time (all threads); podman: its conmons' CPU time.  Nothing
should poll, so both should be near zero; the window is the measurement itself.
"""

from __future__ import annotations

import trio

from bench import procfs
from bench.context import Bench
from bench.fleet import remove_fleet, start_fleet
from bench.registry import Scenario
from bench.report import Row

QUIET = 2.0  # seconds after the fleet is up before counting: the last answers are sent


async def run(b: Bench) -> list[Row]:
    n, c, window = b.sizes.fleet, b.sizes.concurrency, b.sizes.idle_window
    row = Row(f"idle: engine CPU over {window:g} s, {n} idle containers", "cpu-s")
    for e in b.engines:
        ids, _ = await start_fleet(e, n, c)
        await trio.sleep(QUIET)
        pids = e.overhead_pids()
        before = sum(procfs.cpu_seconds(p) for p in pids)
        await trio.sleep(window)
        after = sum(procfs.cpu_seconds(p) for p in pids)
        await remove_fleet(e, ids, c)
        await e.settle()
        row.samples[e.name] = [after - before]
    return [row]


SCENARIO = Scenario("idle", "engine CPU seconds with an idle fleet", run, with_docker=True)
