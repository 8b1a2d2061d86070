"""soak: the live-restore soak of issue 17, the test suite's own (`bench/soak.py`).

corral only: Podman has no live restore to compare (conmon keeps containers, but its
service is not a daemon killed -9 and taken back), and the bench's dockerd runs
without live-restore.  The short variant (2 minutes, 40 containers) by default,
the full one (10 minutes, 200 containers, writers at 10,000 lines/s) with
`--soak-full`.  Rows: the daemon's time back after each kill, the holder's RSS per
container; the checks are verdicts; every figure is printed as the test prints them.
"""

from __future__ import annotations

import json
import signal

import trio

from bench.context import Bench
from bench.engines.base import BenchError
from bench.engines.corral import Corral
from bench.registry import Scenario
from bench.report import Row
from bench.soak import FULL, SHORT, soak


class EngineDaemons:
    """`bench.soak.Daemons` over the bench's corral engine, from the soak's thread."""

    def __init__(self, e: Corral) -> None:
        self.e = e
        self.root, self.sock = e.root, e.sock

    @property
    def pid(self) -> int:
        return self.e.pid

    def kill(self) -> None:
        async def kill() -> None:
            proc = self.e.proc
            assert proc is not None
            proc.send_signal(signal.SIGKILL)
            await proc.wait()

        trio.from_thread.run(kill)

    def start(self) -> None:
        trio.from_thread.run(self.e._start_daemon)


async def run(b: Bench) -> list[Row]:
    s = FULL if b.sizes.soak_full else SHORT
    what = f"{s.total} containers, kill -9 every {s.kill_every:.0f} s for {s.minutes:g} min"
    back = Row(f"soak: daemon back after a kill -9 ({what})", "s")
    held = Row(f"soak: holder RSS per container, {s.total} held", "bytes")
    for e in b.engines:
        if not isinstance(e, Corral):
            continue
        print("soak: corral only (Podman has no live restore to compare)", flush=True)
        out = await trio.to_thread.run_sync(soak, s, EngineDaemons(e), b.workdir)
        f = out.figures
        print("live-restore soak:", json.dumps(f, indent=1), flush=True)
        back.samples[e.name] = f["restarts_s"]
        back.verdicts[e.name] = "ok" if not out.failures else f"FAIL: {len(out.failures)} checks"
        back.note = (f"{f['kills']} kills, {f['pids_kept']}/{f['pids_kept'] + f['pids_moved']}"
                     f" PIDs kept, {f['writers_whole']}/{s.writers} logs whole,"
                     f" {f['connections_failed_otherwise']} connections failed outside a kill")
        held.samples[e.name] = [f["holder_rss_kb"]["per_container"] * 1024]
        await e.settle()
        if out.failures:
            raise BenchError("corral soak: " + "; ".join(out.failures))
    return [back, held]


SCENARIO = Scenario("soak", "live-restore soak: kill -9 every 20 s under a mixed fleet", run)
