"""logs: a container writes numbered 60-byte lines; how long until they are all stored,
how long `logs` takes to return them, and whether a `logs -f` follower sees each once.

The writer is `cat` of a file bind-mounted read-only (the same file for both engines),
so the engine's cost is what is timed, not a shell loop's; the floor scenario shows the
writer alone (`runc run` into a pipe the bench reads).  "Stored" is from spawning
`start` to `wait` returning, through each engine's CLI: the CLI's start, the engine's
start of the container (runc create and start), the store, the exit recorded, and the
`wait` CLI (spawned once `start` returns, while the writer runs); `podman wait` polls
the container's state every 250 ms (its `--interval` default), so Podman's figure
moves in steps of 250 ms.  The `logs` that follows proves every line was there.  The
follower is started right after `run -d` returns, so it catches the writer mid-stream:
the handover from the stored part to the live part is where a line gets lost or doubled.
"""

from __future__ import annotations

import resource
import subprocess
import time
from dataclasses import replace
from functools import partial
from pathlib import Path

import trio

from bench import procfs
from bench.context import Bench
from bench.engines.base import Engine
from bench.lines import LineChecker, Verdict, write_lines
from bench.registry import Scenario
from bench.report import Row

INSIDE = "/lines"


def lines_file(b: Bench) -> Path:
    path = b.workdir / f"lines-{b.sizes.log_lines}"
    return path if path.exists() else write_lines(path, b.sizes.log_lines)


def _writer(e: Engine, b: Bench) -> list[str]:
    return ["-v", f"{lines_file(b)}:{INSIDE}:ro", *e.run_options(), e.image, "cat", INSIDE]


def _timeout(n: int) -> float:
    return 60 + n / 5_000  # generous: a stuck follower must fail, a slow one must not


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


class CpuWatch:
    """CPU seconds of the engine's own processes (corral's daemon and holder, podman's
    conmon, dockerd, containerd and the shim) and of the bench's finished children (the
    clients: `corral`, `podman`, `docker`) over a stretch.  conmon exits with its
    container, so its CPU is sampled every 20 ms while it lives (the last few ms of it
    may be missed: podman's figure is a lower bound)."""

    def __init__(self, e: Engine) -> None:
        self.e = e
        self.base = {p: procfs.cpu_seconds(p) for p in e.overhead_pids()}
        self.last = dict(self.base)
        self.children = _children_cpu()

    def sample(self) -> None:
        for p in self.last:
            self.last[p] = max(procfs.cpu_seconds(p), self.last[p])  # 0 once it is gone

    async def sampling(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Samples until cancelled, from now on the processes there are now too."""
        for p in self.e.overhead_pids():
            self.last.setdefault(p, 0.0)
        task_status.started()
        while True:
            self.sample()
            await trio.sleep(0.02)

    def total(self) -> float:
        self.sample()
        engine = sum(v - self.base.get(p, 0.0) for p, v in self.last.items())
        return engine + _children_cpu() - self.children


async def stored_then_read(b: Bench, e: Engine) -> tuple[float, float, float, float, Verdict]:
    n = b.sizes.log_lines
    created = await e.cli("create", *_writer(e, b), capture=True)
    cid = created.stdout.decode().strip()
    with trio.fail_after(_timeout(n)):
        watch = CpuWatch(e)
        start = time.perf_counter()
        await e.cli("start", cid)
        async with trio.open_nursery() as nursery:
            await nursery.start(watch.sampling)
            await e.cli("wait", cid)
            nursery.cancel_scope.cancel()
        stored = time.perf_counter() - start
        stored_cpu = watch.total()
        watch = CpuWatch(e)
        start = time.perf_counter()
        out = await e.cli("logs", cid, capture=True)
        read = time.perf_counter() - start
        read_cpu = watch.total()
    checker = LineChecker(n)
    checker.feed(out.stdout)
    await e.remove_container(cid)
    return stored, stored_cpu, read, read_cpu, checker.verdict()


async def followed(b: Bench, e: Engine) -> tuple[float, Verdict]:
    n = b.sizes.log_lines
    checker = LineChecker(n)
    start = time.perf_counter()
    run = await e.cli("run", "-d", *_writer(e, b), capture=True)
    cid = run.stdout.decode().strip()
    try:
        with trio.fail_after(_timeout(n)):
            async with trio.open_nursery() as nursery:
                proc: trio.Process = await nursery.start(
                    partial(
                        trio.run_process,
                        e.argv("logs", "-f", cid),
                        env=e.env(),
                        stdin=subprocess.DEVNULL,
                        stdout=subprocess.PIPE,
                        stderr=subprocess.DEVNULL,
                        check=False,
                    )
                )
                assert proc.stdout is not None
                async for chunk in proc.stdout:
                    checker.feed(chunk)
        elapsed = time.perf_counter() - start
        verdict = checker.verdict()
    except trio.TooSlowError:
        elapsed = time.perf_counter() - start
        verdict = replace(checker.verdict(), hung=True)
    await e.remove_container(cid)
    return elapsed, verdict


def _record(row: Row, engine: str, value: float, verdict: Verdict) -> None:
    row.samples.setdefault(engine, []).append(value)
    if not row.verdicts.get(engine, "").startswith("FAIL"):  # the first failure stays
        row.verdicts[engine] = verdict.text()


async def run(b: Bench) -> list[Row]:
    n = b.sizes.log_lines
    stored = Row(f"logs: {n:,} lines of 60 B, start until stored", "s")
    stored.note = "start CLI, container start, store, exit, wait CLI; podman wait polls at 250 ms"
    stored_cpu = Row(f"logs: {n:,} lines stored, engine + client CPU", "cpu-s")
    read = Row(f"logs: `logs` returns all {n:,} lines", "s")
    read_cpu = Row(f"logs: `logs` of {n:,} lines, engine + client CPU", "cpu-s")
    follow = Row(f"logs: `logs -f` from `run -d` until all {n:,} seen", "s")
    lines_file(b)
    for e in b.engines:  # a warm-up, as every scenario's samples follow one: the first
        for _ in range(b.sizes.warmup):  # start of a fresh engine pays its lazy setup
            await e.timed(e.run_argv("--rm", command=["true"]))
        await e.settle()
    for i in range(b.sizes.log_rounds):
        for e in b.ordered(i):
            t_stored, c_stored, t_read, c_read, verdict = await stored_then_read(b, e)
            await e.settle()
            _record(stored, e.name, t_stored, verdict)
            _record(stored_cpu, e.name, c_stored, verdict)
            _record(read, e.name, t_read, verdict)
            _record(read_cpu, e.name, c_read, verdict)
            t_follow, verdict = await followed(b, e)
            await e.settle()
            _record(follow, e.name, t_follow, verdict)
    # the check belongs to the follower row; here only failures
    for row in (stored, stored_cpu, read, read_cpu):
        row.verdicts = {k: v for k, v in row.verdicts.items() if v.startswith("FAIL")}
    return [stored, stored_cpu, read, read_cpu, follow]


SCENARIO = Scenario(
    "logs", "1M lines stored, read back, and followed exactly once", run, with_docker=True
)
