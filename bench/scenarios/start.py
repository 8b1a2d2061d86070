"""start: one container through the real CLI, end to end (process start to exit).

`run -d sleep 1d` returns once the container runs; `run --rm true` returns once it has
run, exited and been removed.  Both with network none.  The detached containers stay
up until the scenario ends, the same on both engines.

Beside each wall time, the CPU time of that one operation: the CLI process (and what
it reaped), the engine's own processes with what they reaped (corral's daemon and
holder, whose reaped children are `runc create` and a finished init; Podman's conmons;
dockerd, containerd and the shims) and, for `run -d`, the container's init so far
(runc's init work before the exec: namespaces, mounts, the seccomp filter).  A
`run --rm` runs with the bench a child subreaper: what it leaves daemonized (Podman's
conmon of a `run --rm`, with the runc and container it reaps and the `container
cleanup` it spawns; docker's shim of one) is reparented to the bench, waited for and
reaped, and counted.  Without that the Podman row showed a third of its CPU (0.10 s
of 0.24 s measured so on 2026-12-02), and corral's, whose runc and init its holder
reaps, more than Podman's.
"""

from __future__ import annotations

import contextlib
import resource
import time
from collections.abc import Sequence

from bench import procfs
from bench.context import Bench
from bench.engines.base import Engine, run
from bench.registry import Scenario
from bench.report import Row


def _cpu(e: Engine) -> float:
    """CPU seconds so far of the bench's reaped children (the CLIs) and of the
    engine's own processes with their reaped children."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime + sum(procfs.tree_cpu_seconds(p) for p in e.overhead_pids())


async def _measured(e: Engine, argv: Sequence[str], detached: bool) -> tuple[float, float]:
    """Wall and CPU seconds of one `run`; a detached one's init counted too, and what
    an attached one left daemonized (Podman's conmon, a shim) once it has ended."""
    before = _cpu(e)
    async with contextlib.AsyncExitStack() as stack:
        if not detached:  # a detached run's conmon or shim stays: an overhead pid
            await stack.enter_async_context(procfs.orphans_reaped())
        start = time.perf_counter()
        done = await run(argv, e.env(), capture=detached)
        wall = time.perf_counter() - start
    cpu = _cpu(e) - before
    if detached:  # after the figures: the inspect's own CPU is not this run's
        cid = done.stdout.decode().strip().splitlines()[-1]
        out = await e.cli("inspect", "-f", "{{.State.Pid}}", cid, capture=True)
        cpu += procfs.cpu_seconds(int(out.stdout.decode().strip() or 0))
    return wall, cpu


async def run_start(b: Bench) -> list[Row]:
    detached = Row("start: `run -d` sleep 1d (network none)", "s")
    removed = Row("start: `run --rm` true, end to end", "s")
    detached_cpu = Row("start CPU: `run -d` sleep 1d (CLI + engine + init)", "cpu-s")
    removed_cpu = Row("start CPU: `run --rm` true (CLI + engine, reaped)", "cpu-s")
    for e in b.engines:
        for _ in range(b.sizes.warmup):
            await e.timed(e.run_argv("-d"))
            await e.timed(e.run_argv("--rm", command=["true"]))
    for i in range(b.sizes.samples):
        for e in b.ordered(i):
            wall, cpu = await _measured(e, e.run_argv("-d"), detached=True)
            detached.samples.setdefault(e.name, []).append(wall)
            detached_cpu.samples.setdefault(e.name, []).append(cpu)
        for e in b.ordered(i):
            wall, cpu = await _measured(e, e.run_argv("--rm", command=["true"]), detached=False)
            removed.samples.setdefault(e.name, []).append(wall)
            removed_cpu.samples.setdefault(e.name, []).append(cpu)
    for e in b.engines:
        for cid in await e.container_ids():
            await e.remove_container(cid)
    return [detached, removed, detached_cpu, removed_cpu]


SCENARIO = Scenario(
    "start", "run -d of sleep 1d, and run --rm true, through each CLI", run_start,
    with_docker=True,
)  # fmt: skip
