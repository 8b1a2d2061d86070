"""floor: bare runc, no engine, running what the other scenarios run, so every figure
reads against the physical floor: `runc run` of `true` (vs `run --rm`), `runc run -d` of
`sleep 1d` (vs `run -d`), and the logs writer into a pipe (vs logs stored).

Same rootfs (unpacked from the same tarball), runc's default spec with its own network
namespace (network none), its own state root under the bench's workdir.  runc's
default spec has no seccomp filter, the engines' containers have Docker's: each runc
row is measured both ways, side by side (runc compiles the filter at every create).
"""

from __future__ import annotations

import json
import resource
import shutil
import subprocess
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

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

    def _configure(self, args: Sequence[str], seccomp: dict[str, Any] | None = None) -> str:
        self.spec["process"]["args"] = list(args)
        if seccomp is None:
            self.spec["linux"].pop("seccomp", None)
        else:
            self.spec["linux"]["seccomp"] = seccomp
        (self.bundle / "config.json").write_text(json.dumps(self.spec))
        self._ids += 1
        return f"bench-floor-{self._ids}"

    def argv(self, *args: str) -> list[str]:
        return [RUNC, "--root", str(self.state), *args]

    async def foreground(
        self, args: Sequence[str], seccomp: dict[str, Any] | None = None
    ) -> tuple[float, float]:
        """Wall and CPU seconds of `runc run` (runc reaps the init: its CPU counts)."""
        cid = self._configure(args, seccomp)
        before = _children_cpu()
        start = time.perf_counter()
        await run(self.argv("run", "--bundle", str(self.bundle), cid))
        return time.perf_counter() - start, _children_cpu() - before

    async def detached(self, args: Sequence[str], seccomp: dict[str, Any] | None = None) -> float:
        cid = self._configure(args, seccomp)
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
        """Wall seconds of `runc run` with its stdout read to EOF; the lines are checked
        after the timing (the checker's Python per line is the bench's cost, not the
        floor's: a million lines are ~1 s of it)."""
        cid = self._configure(args)
        chunks: list[bytes | bytearray] = []
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
                chunks.append(chunk)
        elapsed = time.perf_counter() - start
        for chunk in chunks:
            checker.feed(chunk)
        return elapsed

    async def close(self) -> None:
        out = await run(self.argv("list", "-q"), capture=True)
        left = out.stdout.decode().split()
        for cid in left:
            await run(self.argv("delete", "-f", cid))
        shutil.rmtree(self.home, ignore_errors=True)
        if left:
            raise BenchError(f"floor: runc containers left running: {left}")


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def docker_seccomp() -> dict[str, Any]:
    """The `linux.seccomp` every engine here gives a default container: Docker's
    default profile for Docker's default capabilities on this host (corral's
    conversion, moby's `setupSeccomp`; Podman's profile is the same list)."""
    from supervisor.runtime import seccomp
    from supervisor.runtime.spec import DEFAULT_CAPABILITIES

    found = seccomp.linux_seccomp(
        seccomp.default_profile(), seccomp.host_platform(), DEFAULT_CAPABILITIES
    )
    assert found is not None
    return found


async def run_floor(b: Bench) -> list[Row]:
    fg = Row("floor: bare `runc run` true (vs `run --rm`)", "s")
    bg = Row("floor: bare `runc run -d` sleep 1d (vs `run -d`)", "s")
    fg_sec = Row("floor: bare `runc run` true, Docker's seccomp profile", "s")
    bg_sec = Row("floor: bare `runc run -d` sleep 1d, Docker's seccomp profile", "s")
    fg_cpu = Row("floor CPU: bare `runc run` true (runc + init)", "cpu-s")
    fg_sec_cpu = Row("floor CPU: bare `runc run` true, Docker's seccomp profile", "cpu-s")
    profile = docker_seccomp()
    n = b.sizes.log_lines
    piped = Row(f"floor: {n:,} lines through a pipe, bare runc (vs stored)", "s")
    floor = Floor(b.workdir / "floor")
    try:
        await floor.prepare(b.rootfs_tar, lines_file(b))
        for _ in range(b.sizes.warmup):
            await floor.foreground(["true"])
            await floor.detached(["sleep", "1d"])
        for i in range(b.sizes.samples):
            for filtered in (False, True) if i % 2 == 0 else (True, False):
                sec = profile if filtered else None
                wall, cpu = await floor.foreground(["true"], sec)
                (fg_sec if filtered else fg).samples.setdefault(RUNC, []).append(wall)
                (fg_sec_cpu if filtered else fg_cpu).samples.setdefault(RUNC, []).append(cpu)
                detached = await floor.detached(["sleep", "1d"], sec)
                (bg_sec if filtered else bg).samples.setdefault(RUNC, []).append(detached)
        for _ in range(b.sizes.log_rounds):
            checker = LineChecker(n)
            piped.samples.setdefault(RUNC, []).append(await floor.piped(["cat", INSIDE], checker))
            if not checker.verdict().ok:
                piped.verdicts[RUNC] = checker.verdict().text()
    finally:
        await floor.close()
    return [fg, bg, fg_sec, bg_sec, fg_cpu, fg_sec_cpu, piped]


SCENARIO = Scenario("floor", "bare runc running the same commands: the physical floor", run_floor)
