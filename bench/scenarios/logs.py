"""logs: a container writes numbered 60-byte lines; how long until they are all stored,
how long `logs` takes to return them, and whether a `logs -f` follower sees each once.

The writer is `cat` of a file bind-mounted read-only (the same file for both engines),
so the engine's cost is what is timed, not a shell loop's; the floor scenario shows the
writer alone.  "Stored" is from `start` to `wait` returning; the `logs` that follows
proves every line was there.  The follower is started right after `run -d` returns, so
it catches the writer mid-stream: the handover from the stored part to the live part is
where a line gets lost or doubled.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import replace
from functools import partial
from pathlib import Path

import trio

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


async def stored_then_read(b: Bench, e: Engine) -> tuple[float, float, Verdict]:
    n = b.sizes.log_lines
    created = await e.cli("create", *_writer(e, b), capture=True)
    cid = created.stdout.decode().strip()
    with trio.fail_after(_timeout(n)):
        start = time.perf_counter()
        await e.cli("start", cid)
        await e.cli("wait", cid)
        stored = time.perf_counter() - start
        start = time.perf_counter()
        out = await e.cli("logs", cid, capture=True)
        read = time.perf_counter() - start
    checker = LineChecker(n)
    checker.feed(out.stdout)
    await e.remove_container(cid)
    return stored, read, checker.verdict()


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
    read = Row(f"logs: `logs` returns all {n:,} lines", "s")
    follow = Row(f"logs: `logs -f` from `run -d` until all {n:,} seen", "s")
    lines_file(b)
    for i in range(b.sizes.log_rounds):
        for e in b.ordered(i):
            t_stored, t_read, verdict = await stored_then_read(b, e)
            await e.settle()
            _record(stored, e.name, t_stored, verdict)
            _record(read, e.name, t_read, verdict)
            t_follow, verdict = await followed(b, e)
            await e.settle()
            _record(follow, e.name, t_follow, verdict)
    for row in (stored, read):  # the check belongs to the follower row; here only failures
        row.verdicts = {k: v for k, v in row.verdicts.items() if v.startswith("FAIL")}
    return [stored, read, follow]


SCENARIO = Scenario(
    "logs", "1M lines stored, read back, and followed exactly once", run, with_docker=True
)
