"""scrape: what Prometheus costs corral: one /metrics scrape with a fleet running, and
the daemon's CPU between scrapes.

corral only (podman has no built-in exporter).  Every scrape reads each container's
cgroup files and netns counters then; between scrapes nothing runs, so the second
figure should be zero.  The daemon's metrics address is the one it logged at start
(`metrics.listening`): the bench daemon runs with `--metrics-addr 127.0.0.1:0`, a port of its own.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import trio

from bench import procfs
from bench.context import Bench
from bench.engines.base import BenchError
from bench.fleet import remove_fleet, start_fleet
from bench.registry import Scenario
from bench.report import Row
from supervisor.httpcore.client import ClientConnection, Data, EndOfMessage, NeedData, Response

GOAL_S = 0.050  # one scrape at 200 containers
QUIET = 2.0  # seconds after the fleet is up before counting CPU


def metrics_addr(log: Path) -> tuple[str, int]:
    """The address the daemon logged as `metrics.listening` (JSON log lines)."""
    addr = None
    for line in log.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("event") == "metrics.listening":
            addr = str(entry["addr"])
        elif entry.get("event") == "metrics.listen_failed":
            addr = None
    if addr is None:
        raise BenchError(f"the corral daemon serves no /metrics (see {log})")
    host, _, port = addr.rpartition(":")
    return host, int(port)


async def scrape(host: str, port: int) -> tuple[float, int]:
    """One GET /metrics read through the HTTP core; (seconds until the last byte, body
    size)."""
    t0 = time.perf_counter()
    conn = ClientConnection()
    size = 0
    stream = await trio.open_tcp_stream(host, port)
    async with stream:
        await stream.send_all(
            conn.send_request("GET", "/metrics", [("Host", host), ("Connection", "close")])
        )
        while True:
            event = conn.next_event()
            if isinstance(event, NeedData):
                conn.receive_data(await stream.receive_some(1 << 16))
            elif isinstance(event, Response) and event.status != 200:
                raise BenchError(f"/metrics answered {event.status} {event.reason}")
            elif isinstance(event, Data):
                size += len(event.data)
            elif isinstance(event, EndOfMessage):
                break
    return time.perf_counter() - t0, size


async def run(b: Bench) -> list[Row]:
    n, c = b.sizes.fleet, b.sizes.concurrency
    engine = next((e for e in b.engines if e.name == "corral"), None)
    if engine is None:
        return []
    log = getattr(engine, "log", None)
    if not isinstance(log, Path):
        raise BenchError("corral engine has no daemon log to find the metrics address in")
    host, port = metrics_addr(log)
    cost = Row(f"scrape: one /metrics scrape, {n} running containers", "s")
    cpu = Row(f"scrape: daemon CPU per scrape, {n} running containers", "cpu-s")
    idle = Row(f"scrape: daemon CPU over {b.sizes.idle_window:g} s between scrapes", "cpu-s")
    ids, _ = await start_fleet(engine, n, c)
    try:
        _, size = await scrape(host, port)  # warm-up (imports, first reads)
        pid = engine.overhead_pids()[0]
        samples = []
        before = procfs.cpu_seconds(pid)
        for _ in range(b.sizes.samples):
            samples.append((await scrape(host, port))[0])
        # one figure: the mean over all scrapes (a single scrape is near the tick size)
        cpu.samples["corral"] = [(procfs.cpu_seconds(pid) - before) / b.sizes.samples]
        cpu.note = "the daemon's own CPU time: what a busy machine does not inflate"
        cost.samples["corral"] = samples
        median = sorted(samples)[len(samples) // 2]
        cost.verdicts["corral"] = "ok" if median < GOAL_S or n < 200 else "over 50 ms"
        cost.note = f"{size / 1024:.0f} KiB per scrape; goal under 50 ms at 200"
        idle.samples["corral"] = [await procfs.idle_cpu(pid, QUIET, b.sizes.idle_window)]
        idle.note = "goal: zero (nothing polls between scrapes)"
    finally:
        await remove_fleet(engine, ids, c)
        await engine.settle()
    return [cost, cpu, idle]


SCENARIO = Scenario("scrape", "one /metrics scrape with a fleet; daemon CPU between", run)
