"""scale: corral with a large fleet (`--scale`: 1,000, the issue's size; 100 with
`--quick`): what each running container costs the daemon and the holder in memory
and descriptors, a `docker ps` (`GET /containers/json`) and a full `/metrics` scrape
at that size, and the daemon's CPU while the fleet idles (goal: zero: nothing polls).

corral only: podman has no daemon to list from or scrape, and 1,000 of its
containers take many minutes more to start; its memory per container (one conmon
each, linear in the count) is the `memory` row's.  The fleet starts as `many`'s does
(the API, `--concurrency` at once) from a fresh daemon, and is removed afterwards.
The note says what limit stops a fleet five times larger first.
"""

from __future__ import annotations

import os
import time

import trio

from bench import procfs
from bench.context import Bench
from bench.engines.corral import Corral
from bench.fleet import WARMUP_FLEET, remove_fleet, start_fleet
from bench.registry import Scenario
from bench.report import Row
from bench.scenarios.scrape import metrics_addr, scrape

LISTINGS = 30  # `GET /containers/json` per run
SCRAPES = 10  # `/metrics` scrapes per run
QUIET = 3.0  # seconds after the last answer before the idle window opens
MEMORY_GOAL = 50 * 1024  # bytes of daemon RSS per running container
SCRAPE_GOAL = 0.100  # seconds for one full scrape at 1,000


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _limits(pid: int) -> tuple[int, int]:
    """The daemon's hard RLIMIT_NOFILE, and fs.nr_open (the most it could be raised to)."""
    with open(f"/proc/{pid}/limits") as f:
        hard = next(int(ln.split()[4]) for ln in f if ln.startswith("Max open files"))
    with open("/proc/sys/fs/nr_open") as f:
        return hard, int(f.read())


def ceiling(hard: int, nr_open: int, per_container: float, per_scrape: float) -> str:
    """What stops a fleet 5x this size: descriptors (held, and opened by scrapes)."""
    if not per_container:
        return "no descriptor held per container"
    held = int(hard / per_container)
    scraped = int(hard / (per_container + per_scrape)) if per_scrape > 0 else held
    return (
        f"descriptor ceiling at this hard RLIMIT_NOFILE ({hard:,}): ~{held:,} containers "
        f"held, ~{scraped:,} once scraped ({per_container:.1f} per container + "
        f"{per_scrape:.1f} its first scrape opens and keeps); under the unit's "
        f"LimitNOFILE (fs.nr_open {nr_open:,}): ~{int(nr_open / (per_container + per_scrape)):,}"
    )


async def run(b: Bench) -> list[Row]:
    n, c = b.sizes.scale, b.sizes.concurrency
    engine = next((e for e in b.engines if isinstance(e, Corral)), None)
    if engine is None:
        return []
    api = engine.api
    memory = Row(f"scale: daemon RSS per running container, at {n}", "bytes")
    holder = Row(f"scale: holder RSS per running container, at {n}", "bytes")
    listing = Row(f"scale: `GET /containers/json`, {n} running", "s")
    listing_cpu = Row(f"scale: daemon CPU per `GET /containers/json`, {n} running", "cpu-s")
    cost = Row(f"scale: one full /metrics scrape, {n} running", "s")
    cost_cpu = Row(f"scale: daemon CPU per /metrics scrape, {n} running", "cpu-s")
    idle = Row(f"scale: daemon CPU over {b.sizes.idle_window:g} s, {n} idle containers",
               "cpu-s")  # fmt: skip
    await engine.fresh()  # a heap that held an earlier fleet would hide the growth
    warm, _ = await start_fleet(engine, WARMUP_FLEET, c)
    await remove_fleet(engine, warm, c)
    await engine.settle()
    host, port = metrics_addr(engine.log)
    await scrape(host, port)  # imports and first reads before the baseline
    pid = engine.overhead_pids()[0]
    hpid = engine.holder_pid()
    rss0, hrss0, fds0 = procfs.rss_bytes(pid), procfs.rss_bytes(hpid), _fds(pid)
    ids: list[str] = []
    try:
        ids, elapsed = await start_fleet(engine, n, c)
        started = f"{n} started in {elapsed:.0f} s ({c} at once)"
        await trio.sleep(QUIET)
        rss, per_fds = procfs.rss_bytes(pid), (_fds(pid) - fds0) / n
        memory.samples["corral"] = [(rss - rss0) / n]
        holder.samples["corral"] = [(procfs.rss_bytes(hpid) - hrss0) / n]
        per = memory.samples["corral"][0]
        memory.verdicts["corral"] = "ok" if per <= MEMORY_GOAL else "over 50 KiB"
        memory.note = f"{started}; daemon {rss0 / 2**20:.1f} -> {rss / 2**20:.1f} MiB"

        samples: list[float] = []
        before = procfs.cpu_seconds(pid)
        for _ in range(LISTINGS):
            t0 = time.perf_counter()
            await api.request("GET", "/containers/json")
            samples.append(time.perf_counter() - t0)
        listing_cpu.samples["corral"] = [(procfs.cpu_seconds(pid) - before) / LISTINGS]
        listing.samples["corral"] = samples

        samples, size = [], 0
        before, unscraped = procfs.cpu_seconds(pid), _fds(pid)
        for _ in range(SCRAPES):
            elapsed, size = await scrape(host, port)
            samples.append(elapsed)
        cost_cpu.samples["corral"] = [(procfs.cpu_seconds(pid) - before) / SCRAPES]
        cost.samples["corral"] = samples
        median = sorted(samples)[len(samples) // 2]
        cost.verdicts["corral"] = "ok" if median < SCRAPE_GOAL or n < 1000 else "over 100 ms"
        hard, nr_open = _limits(pid)
        per_scrape = (_fds(pid) - unscraped) / n  # held from a container's first scrape
        cost.note = f"{size / 1024:.0f} KiB per scrape; goal under 100 ms at 1,000"
        holder.note = ceiling(hard, nr_open, per_fds, per_scrape)

        idle.samples["corral"] = [await procfs.idle_cpu(pid, QUIET, b.sizes.idle_window)]
        idle.note = "goal: zero (nothing polls while the fleet idles)"
    finally:
        await remove_fleet(engine, ids, c)
        await engine.settle()
    return [memory, holder, listing, listing_cpu, cost, cost_cpu, idle]


SCENARIO = Scenario("scale", "1,000 containers: memory, ps, /metrics, idle CPU", run)
