"""memory: what each running container costs the engine, in resident memory.

corral: growth of the daemon's and the holder's RSS from no container to a fleet, per
container (the holder keeps every container's descriptors for live restore; no
per-container helper).  podman: the RSS of
its conmon processes (one per container; podman itself has no daemon), per container.
docker: growth of dockerd + containerd + the containerd-shims (one per container).
Each engine starts fresh (a new corral daemon): a heap that already held an earlier
scenario's fleet would absorb this one and show no growth at all.
"""

from __future__ import annotations

import os

from bench import procfs
from bench.context import Bench
from bench.engines.base import BenchError
from bench.fleet import WARMUP_FLEET, remove_fleet, start_fleet
from bench.registry import Scenario
from bench.report import Row


def _rss(pids: list[int]) -> int:
    return sum(procfs.rss_bytes(pid) for pid in pids)


def _fds(pids: list[int]) -> int:
    return sum(len(os.listdir(f"/proc/{pid}/fd")) for pid in pids)


def _ceiling(pid: int, per_container: float) -> str:
    """What stops a bigger fleet first: the daemon's descriptor limit, or pid_max."""
    with open(f"/proc/{pid}/limits") as f:
        hard = next(int(ln.split()[4]) for ln in f if ln.startswith("Max open files"))
    with open("/proc/sys/kernel/pid_max") as f:
        pid_max = int(f.read())
    by_fds = int(hard / per_container) if per_container else 0
    return (
        f"corral's ceiling here: ~{by_fds:,} containers by its descriptor limit ({hard:,}"
        f" / {per_container:.2f} per container), {pid_max:,} by pid_max"
    )


async def run(b: Bench) -> list[Row]:
    n, c = b.sizes.fleet, b.sizes.concurrency
    row = Row(f"memory: engine RSS per running container, at {n}", "bytes")
    fds = Row(f"memory: engine descriptors per running container, at {n}", "count")
    notes = []
    for e in b.engines:
        await e.fresh()
        # warm-up: the code paths of start/remove are loaded before the baseline
        ids, _ = await start_fleet(e, min(WARMUP_FLEET, n), c)
        await remove_fleet(e, ids, c)
        await e.settle()
        before, fds_before = _rss(e.overhead_pids()), _fds(e.overhead_pids())
        ids, _ = await start_fleet(e, n, c)
        pids = e.overhead_pids()
        after = _rss(pids)
        fds.samples[e.name] = [(_fds(pids) - fds_before) / n]
        if e.name == "corral":
            fds.note = _ceiling(pids[0], fds.samples[e.name][0])
        await remove_fleet(e, ids, c)
        await e.settle()
        if e.name == "podman" and len(pids) != n:
            raise BenchError(f"podman: {len(pids)} conmon processes for {n} containers")
        if e.name == "docker" and len(pids) != n + 2:  # dockerd, containerd, n shims
            raise BenchError(f"docker: {len(pids) - 2} containerd shims for {n} containers")
        row.samples[e.name] = [(after - before) / n]
        notes.append(f"{e.name}: {before / 2**20:.1f} -> {after / 2**20:.1f} MiB")
    row.note = "; ".join(notes)
    return [row, fds]


SCENARIO = Scenario("memory", "engine RSS growth per running container", run, with_docker=True)
