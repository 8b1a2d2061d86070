"""logrotate: chatty logs through rotation, end to end and inside corral's log store.

End to end (both engines): the `logs` scenario's writer (`cat` of the numbered 60-byte
lines, bind-mounted) with `--log-opt max-size=1m --log-opt max-file=3` (Podman:
`max-size=1m` on `k8s-file`, which conmon enforces by truncating the file; it has no
`max-file`).  Timed: `start` until `wait` returns (every line stored, rotations
included), then `logs`, whose output must be the tail of what was written: consecutive
lines ending with the last one, nothing doubled or mangled (a first line cut by a
truncation is tolerated and said).

In the store (corral alone, in this process, no container): the pieces a pump gets
(64 KiB reads) through `LineFramer` into a `ContainerLog`, rotating at 1m x 3 and not
at all, with a follower reading meanwhile that must see every line once, in order
across every rotation; then `tail 100` of the rotated files.  What a flood costs the
daemon's one thread, without the pipe and the container in the way.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import trio
import trio.testing

from bench.api import Api
from bench.context import Bench
from bench.engines.base import Engine
from bench.lines import DIGITS, LineChecker, expected_line
from bench.registry import Scenario
from bench.report import Row
from bench.scenarios.logs import INSIDE, lines_file
from supervisor.supervise.framing import LineFramer
from supervisor.supervise.logs import ContainerLog, LogOptions

ROTATE = {"max-size": "1m", "max-file": "3"}
READ = 65536  # what one pipe read gives the pump


@dataclass
class Tail:
    """What `logs` returned after rotation, against the `expected` lines written."""

    expected: int
    kept: int = 0  # whole lines
    first: int = -1  # number of the first whole line
    cut_first: bool = False  # the first line is the end of a line (a truncation's edge)
    bad: int = 0  # lines out of sequence, doubled, mangled
    last_ok: bool = False

    @property
    def ok(self) -> bool:
        return self.kept > 0 and self.bad == 0 and self.last_ok

    def text(self) -> str:
        if not self.ok:
            if self.kept == 0:
                return "FAIL: nothing kept"
            last = "" if self.last_ok else ", last line missing"
            return f"FAIL: {self.bad} breaks in {self.kept:,} lines{last}"
        cut = ", first line cut" if self.cut_first else ""
        return f"tail of {self.kept:,} lines ok{cut}"


def check_tail(data: bytes, expected: int) -> Tail:
    """Whether `data` is a tail of the numbered lines 0..expected-1: consecutive whole
    lines up to the last one.  Only the very first line may be a fragment: the end of
    the line before the first whole one."""
    t = Tail(expected)
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    else:
        t.bad += 1  # the output ends inside a line
    fragment = None
    last = -1
    for i, line in enumerate(lines):
        head = line[:DIGITS]
        if head.isdigit() and line + b"\n" == expected_line(int(head)):
            n = int(head)
            if t.first < 0:
                t.first = n
            elif n != last + 1:
                t.bad += 1  # a gap, a repeat or a step back: counted once, then resync
            last = n
            t.kept += 1
        elif i == 0:
            fragment = line
        else:
            t.bad += 1
    if fragment is not None:
        before = expected_line(t.first - 1) if t.first > 0 else b""
        if before.endswith(fragment + b"\n"):
            t.cut_first = True
        else:
            t.bad += 1
    t.last_ok = last == expected - 1
    return t


async def create_writer(b: Bench, e: Engine) -> str:
    """The `logs` writer with the rotation options; its id.  corral through the API's
    `HostConfig.LogConfig`: its CLI has no `--log-opt` yet (the create is not timed)."""
    bind = f"{lines_file(b)}:{INSIDE}:ro"
    api = getattr(e, "api", None)
    if isinstance(api, Api):
        body = {
            "Image": e.image,
            "Cmd": ["cat", INSIDE],
            "HostConfig": {
                "NetworkMode": "none",
                "Binds": [bind],
                "LogConfig": {"Type": "json-file", "Config": ROTATE},
            },
        }
        created = await api.request("POST", "/containers/create", body)
        return str(created["Id"])
    opts = ["--log-opt", f"max-size={ROTATE['max-size']}"]  # k8s-file: no max-file
    argv = ["-v", bind, *opts, *e.run_options(), e.image, "cat", INSIDE]
    return (await e.cli("create", *argv, capture=True)).stdout.decode().strip()


async def stored_then_tail(b: Bench, e: Engine) -> tuple[float, float, Tail]:
    n = b.sizes.log_lines
    cid = await create_writer(b, e)
    try:
        with trio.fail_after(60 + n / 5_000):
            start = time.perf_counter()
            await e.cli("start", cid)
            await e.cli("wait", cid)
            stored = time.perf_counter() - start
            start = time.perf_counter()
            out = await e.cli("logs", cid, capture=True)
            read = time.perf_counter() - start
    finally:
        await e.remove_container(cid)
    return stored, read, check_tail(out.stdout, n)


@dataclass
class StoreRun:
    appending: float  # seconds inside framer + append, the writer's share
    worst_call: float  # the longest single append: how long a flood holds the thread
    both_done: float  # writer and follower both finished (one thread does both)
    rotations: int
    follower: str
    tail_100: float


async def store_run(work: Path, data: bytes, expected: int, options: LogOptions) -> StoreRun:
    work.mkdir(parents=True)
    log = ContainerLog(work / "x-json.log")
    log.open_writer(options)
    checker = LineChecker(expected)

    async def follower() -> None:
        async for e in log.follow():
            checker.feed(e.data)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(follower)
        await trio.testing.wait_all_tasks_blocked()  # the follower holds its cursor
        framer = LineFramer()
        t0 = time.perf_counter()
        worst = spent = 0.0
        for i in range(0, len(data), READ):
            t1 = time.perf_counter()
            log.append("stdout", framer.feed(data[i : i + READ]))
            took = time.perf_counter() - t1
            spent += took
            worst = max(worst, took)
            await trio.lowlevel.checkpoint()  # as the pump's next pipe read does
        log.append("stdout", framer.flush())
        log.close_writer()
    both = time.perf_counter() - t0
    t0 = time.perf_counter()
    tail = sum(1 for _ in log.read(tail=100))
    tail_s = time.perf_counter() - t0
    log.close()
    shutil.rmtree(work)
    follower_text = checker.verdict().text() if tail == 100 else f"FAIL: tail 100 gave {tail}"
    return StoreRun(spent, worst, both, log.rotations, follower_text, tail_s)


async def run(b: Bench) -> list[Row]:
    n = b.sizes.log_lines
    rot = " ".join(f"{k}={v}" for k, v in ROTATE.items())
    stored = Row(f"logrotate: {n:,} lines of 60 B, {rot}, start until stored", "s")
    tail = Row(f"logrotate: `logs` returns the kept tail ({rot})", "s")
    store_rot = Row(f"logrotate: store alone, {n:,} lines framed + appended, {rot}", "s")
    store_flat = Row(f"logrotate: store alone, {n:,} lines framed + appended, no rotation", "s")
    tail_100 = Row("logrotate: store alone, `tail 100` across rotated files", "s")
    for i in range(b.sizes.log_rounds):
        for e in b.ordered(i):
            t_stored, t_read, kept = await stored_then_tail(b, e)
            await e.settle()
            stored.samples.setdefault(e.name, []).append(t_stored)
            tail.samples.setdefault(e.name, []).append(t_read)
            if not tail.verdicts.get(e.name, "").startswith("FAIL"):  # the first failure stays
                tail.verdicts[e.name] = kept.text()
    tail.note = (
        "not the same amount: podman's k8s-file has no max-file (conmon truncates the file"
        " at max-size, so at most 1 MiB is kept); corral keeps up to 3 files of 1 MiB"
    )
    if any(e.name == "corral" for e in b.engines):
        data = lines_file(b).read_bytes()
        notes = {}
        rotating = LogOptions.from_log_config({"Type": "json-file", "Config": ROTATE})
        for row, options in ((store_rot, rotating), (store_flat, LogOptions())):
            for r in range(b.sizes.log_rounds):
                work = b.workdir / f"logrotate-store-{r}"
                got = await store_run(work, data, n, options)
                row.samples.setdefault("corral", []).append(got.appending)
                if not row.verdicts.get("corral", "").startswith("FAIL"):
                    row.verdicts["corral"] = "follower: " + got.follower
                notes[row.scenario] = (
                    f"{got.rotations} rotations; longest append call {got.worst_call * 1000:.1f}"
                    f" ms; writer and follower both done in {got.both_done:.2f} s"
                )
                if options.max_size > 0:
                    tail_100.samples.setdefault("corral", []).append(got.tail_100)
        for row in (store_rot, store_flat):
            row.note = notes[row.scenario]
    return [stored, tail, store_rot, store_flat, tail_100]


SCENARIO = Scenario("logrotate", "log throughput through rotation (1m x 3), and the kept tail", run)
