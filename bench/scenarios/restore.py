"""restore: a daemon killed -9 under a fleet, and the next one taking it back.

corral only (live restore, issue 17): `n` idle containers, the daemon SIGKILLed, a new
one started on the same root.  Timed: from the kill to the new daemon answering (its
ready line comes after its recovery, so every container is adopted by then).  Checked:
every container still runs with the PID it had (a verdict, not a time).  The holder's
resident memory per kept container is the second row (its growth from none to `n`).
Docker's live-restore is not measured here: the bench's dockerd runs without it.
"""

from __future__ import annotations

import signal

import trio

from bench import procfs
from bench.context import Bench
from bench.engines.base import BenchError
from bench.engines.corral import Corral
from bench.fleet import remove_fleet, start_fleet
from bench.registry import Scenario
from bench.report import Row


async def _pids(e: Corral, ids: list[str]) -> dict[str, int]:
    return {cid: int((await e.api.request("GET", f"/containers/{cid}/json"))["State"]["Pid"])
            for cid in ids}


async def run(b: Bench) -> list[Row]:
    n, c = b.sizes.fleet, b.sizes.concurrency
    took = Row(f"restore: kill -9 to a new daemon answering, {n} containers kept", "s")
    held = Row(f"restore: holder RSS per kept container, at {n}", "bytes")
    for e in b.engines:
        if not isinstance(e, Corral):
            continue
        await e.fresh()
        holder = e.holder_pid()
        before = procfs.rss_bytes(holder)
        ids, _ = await start_fleet(e, n, c)
        after = procfs.rss_bytes(holder)
        pids = await _pids(e, ids)
        proc = e.proc
        assert proc is not None
        t0 = trio.current_time()
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
        await e._start_daemon()
        took.samples[e.name] = [trio.current_time() - t0]
        moved = [cid for cid, pid in (await _pids(e, ids)).items() if pid != pids[cid]]
        took.verdicts[e.name] = "ok" if not moved else f"FAIL: {len(moved)} restarted"
        held.samples[e.name] = [(after - before) / n]
        held.note = f"holder {before / 2**20:.1f} -> {after / 2**20:.1f} MiB"
        await remove_fleet(e, ids, c)
        await e.settle()
        if moved:
            raise BenchError(f"corral: {len(moved)} of {n} containers lost their PID")
    return [took, held]


SCENARIO = Scenario("restore", "kill -9 of the daemon under a fleet: time back, PIDs kept", run)
