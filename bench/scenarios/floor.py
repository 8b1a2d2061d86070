"""floor: bare runc, no engine, running what the other scenarios run, so every figure
reads against the physical floor: `runc run` of `true` (vs `run --rm`), `runc run -d` of
`sleep 1d` (vs `run -d`), and the logs writer into a pipe (vs logs stored).

Same rootfs (unpacked from the same tarball), runc's default spec with its own network
namespace (network none), its own state root under the bench's workdir.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import trio

from bench.context import Bench
from bench.engines.base import BenchError, run
from bench.lines import LineChecker
from bench.registry import Scenario
from bench.report import Row
from bench.scenarios.logs import INSIDE, lines_file

RUNC = "runc"


class Floor:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.state = home / "state"
        self.bundle = home / "bundle"
        self._ids = 0

    async def prepare(self, rootfs_tar: Path, lines: Path) -> None:
        rootfs = self.bundle / "rootfs"
        rootfs.mkdir(parents=True)
        self.state.mkdir()
        await run(["tar", "-xf", str(rootfs_tar), "-C", str(rootfs)])
        await run([RUNC, "spec", "--bundle", str(self.bundle)])
        self.spec = json.loads((self.bundle / "config.json").read_text())
        self.spec["process"]["terminal"] = False
        self.spec["mounts"].append(
            {
                "destination": INSIDE,
                "type": "bind",
                "source": str(lines),
                "options": ["rbind", "ro"],
            }
        )

    def _configure(self, args: Sequence[str]) -> str:
        self.spec["process"]["args"] = list(args)
        (self.bundle / "config.json").write_text(json.dumps(self.spec))
        self._ids += 1
        return f"bench-floor-{self._ids}"

    def argv(self, *args: str) -> list[str]:
        return [RUNC, "--root", str(self.state), *args]

    async def foreground(self, args: Sequence[str]) -> float:
        cid = self._configure(args)
        start = time.perf_counter()
        await run(self.argv("run", "--bundle", str(self.bundle), cid))
        return time.perf_counter() - start

    async def detached(self, args: Sequence[str]) -> float:
        cid = self._configure(args)
        start = time.perf_counter()
        # all stdio to /dev/null: the container inherits it, and a captured stderr pipe
        # would stay open (and unread to EOF) for as long as the container sleeps
        proc = await trio.run_process(
            self.argv("run", "-d", "--bundle", str(self.bundle), cid),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
        )
        elapsed = time.perf_counter() - start
        if proc.returncode != 0:
            raise BenchError(f"runc run -d exited {proc.returncode}")
        await run(self.argv("delete", "-f", cid))
        return elapsed

    async def piped(self, args: Sequence[str], checker: LineChecker) -> float:
        cid = self._configure(args)
        start = time.perf_counter()
        async with trio.open_nursery() as nursery:
            proc: trio.Process = await nursery.start(
                partial(
                    trio.run_process,
                    self.argv("run", "--bundle", str(self.bundle), cid),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                )
            )
            assert proc.stdout is not None
            async for chunk in proc.stdout:
                checker.feed(chunk)
        return time.perf_counter() - start

    async def close(self) -> None:
        out = await run(self.argv("list", "-q"), capture=True)
        left = out.stdout.decode().split()
        for cid in left:
            await run(self.argv("delete", "-f", cid))
        shutil.rmtree(self.home, ignore_errors=True)
        if left:
            raise BenchError(f"floor: runc containers left running: {left}")


async def run_floor(b: Bench) -> list[Row]:
    fg = Row("floor: bare `runc run` true (vs `run --rm`)", "s")
    bg = Row("floor: bare `runc run -d` sleep 1d (vs `run -d`)", "s")
    n = b.sizes.log_lines
    piped = Row(f"floor: {n:,} lines through a pipe, bare runc (vs stored)", "s")
    floor = Floor(b.workdir / "floor")
    try:
        await floor.prepare(b.rootfs_tar, lines_file(b))
        for _ in range(b.sizes.warmup):
            await floor.foreground(["true"])
            await floor.detached(["sleep", "1d"])
        for _ in range(b.sizes.samples):
            fg.samples.setdefault(RUNC, []).append(await floor.foreground(["true"]))
            bg.samples.setdefault(RUNC, []).append(await floor.detached(["sleep", "1d"]))
        for _ in range(b.sizes.log_rounds):
            checker = LineChecker(n)
            piped.samples.setdefault(RUNC, []).append(await floor.piped(["cat", INSIDE], checker))
            if not checker.verdict().ok:
                piped.verdicts[RUNC] = checker.verdict().text()
    finally:
        await floor.close()
    return [fg, bg, piped]


SCENARIO = Scenario("floor", "bare runc running the same commands: the physical floor", run_floor)
