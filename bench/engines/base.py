"""What every engine offers the scenarios, and the shared "settle" step.

Scenarios stay engine-neutral: they time `engine.cli(...)` for end-to-end commands,
start fleets with `start_container` (the fastest way each engine offers: corral's API,
podman's CLI), read `overhead_pids` for memory and CPU, and the runner calls `settle`
between scenarios so nothing is measured while the previous one is still cleaning up.
"""

from __future__ import annotations

import abc
import contextlib
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import trio

from bench import procfs

IDLE_COMMAND = ("sleep", "1d")
SETTLE_CONCURRENCY = 20  # removals in flight when settling (nothing is timed then)


class BenchError(Exception):
    """A command the bench relies on failed: the run stops and says which one."""


async def run(
    argv: Sequence[str], env: dict[str, str] | None = None, *, capture: bool = False
) -> subprocess.CompletedProcess[bytes]:
    """Run a command to completion; a non-zero exit raises with its stderr."""
    if capture:
        proc = await trio.run_process(
            list(argv), env=env, stdin=subprocess.DEVNULL, capture_stdout=True,
            capture_stderr=True, check=False,
        )  # fmt: skip
    else:
        proc = await trio.run_process(
            list(argv), env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            capture_stderr=True, check=False,
        )  # fmt: skip
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip().splitlines() or ["(no stderr)"]
        shown = " ".join(argv[:4]) + (" ..." if len(argv) > 4 else "")
        raise BenchError(f"{shown} exited {proc.returncode}: {err[-1].strip()}")
    return proc


class Engine(abc.ABC):
    """One engine under test, with a private state root under the bench's workdir."""

    name: str
    image: str

    def __init__(self, workdir: Path, cgroup_parent: str) -> None:
        self.workdir = workdir
        self.cgroup_parent = cgroup_parent

    # -- the command line ----------------------------------------------------------------
    @abc.abstractmethod
    def argv(self, *args: str) -> list[str]:
        """The engine's CLI with its global options, then `args`."""

    @abc.abstractmethod
    def run_options(self) -> list[str]:
        """Options every `run`/`create` gets (network none, and podman's host needs)."""

    def env(self) -> dict[str, str] | None:
        return None

    def run_argv(self, *flags: str, command: Sequence[str] = IDLE_COMMAND) -> list[str]:
        return self.argv("run", *flags, *self.run_options(), self.image, *command)

    async def cli(self, *args: str, capture: bool = False) -> subprocess.CompletedProcess[bytes]:
        return await run(self.argv(*args), self.env(), capture=capture)

    async def timed(self, argv: Sequence[str]) -> float:
        """Seconds for one command, end to end (process start to exit)."""
        start = time.perf_counter()
        await run(argv, self.env())
        return time.perf_counter() - start

    # -- fleets --------------------------------------------------------------------------
    @abc.abstractmethod
    async def start_container(self, command: Sequence[str] = IDLE_COMMAND) -> str:
        """Create and start one container; return once it runs; its id."""

    @abc.abstractmethod
    async def remove_container(self, cid: str) -> None:
        """Remove one container, killing it first if it runs (docker's `rm -f`)."""

    async def container_ids(self, *, all: bool = True) -> list[str]:
        args = ["ps", "-q", "--no-trunc"] + (["-a"] if all else [])
        out = (await self.cli(*args, capture=True)).stdout.decode()
        return out.split()

    # -- what it costs -------------------------------------------------------------------
    @abc.abstractmethod
    def overhead_pids(self) -> list[int]:
        """The engine's own processes (not containers): corral's daemon, podman's conmons."""

    @abc.abstractmethod
    def markers(self) -> tuple[str, ...]:
        """Strings (private paths) that appear on the command line of the engine's helpers."""

    def persistent_pids(self) -> set[int]:
        """Helpers that stay for the whole run (the daemon) and so are never "busy"."""
        return set()

    def busy_pids(self) -> list[int]:
        """Processes still at work for this engine: containers and transient helpers."""
        keep = self.persistent_pids()
        markers = self.markers()
        return procfs.pids_where(
            lambda pid: (
                pid not in keep
                and (procfs.under_cgroup(pid, self.cgroup_parent) or procfs.mentions(pid, markers))
            )
        )

    async def settle(self, timeout: float = 180) -> list[str]:
        """Remove what a scenario left and wait until every helper has exited.

        Returns the ids that were still there (a scenario that forgets its containers is
        a bug worth reporting, but it must not poison the next measurement).
        """
        with trio.fail_after(timeout):
            left = await self.container_ids()
            limiter = trio.CapacityLimiter(SETTLE_CONCURRENCY)

            async def remove(cid: str) -> None:
                async with limiter:
                    await self.remove_container(cid)

            async with trio.open_nursery() as nursery:  # a big fleet a killed run left
                for cid in left:
                    nursery.start_soon(remove, cid)
            while busy := self.busy_pids():
                await procfs.wait_exits(busy)
            if await self.container_ids():
                raise BenchError(f"{self.name}: containers remain after cleanup")
        return left

    # -- lifecycle -----------------------------------------------------------------------
    @abc.abstractmethod
    async def setup(self, rootfs_tar: Path) -> None:
        """Start what must run and import `rootfs_tar` as this engine's `image`."""

    async def fresh(self) -> None:
        """Start long-lived processes anew (a fresh heap); nothing to do without any."""
        return None

    @abc.abstractmethod
    async def teardown(self) -> None:
        """Remove every container, image, process, mount, cgroup and file it made."""

    @abc.abstractmethod
    async def version(self) -> str: ...


def remove_cgroup_tree(parent: str) -> None:
    """rmdir `parent` and its children in every hierarchy (v1 and v2), deepest first."""
    root = Path("/sys/fs/cgroup")
    tops = [root / parent] + [h / parent for h in root.iterdir() if h.is_dir()]
    for top in tops:
        if not top.is_dir():
            continue
        for d in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
            _rmdir(d)
        _rmdir(top)


def _rmdir(path: Path) -> None:
    with contextlib.suppress(OSError):  # busy (a process left) or already gone
        path.rmdir()


def mounts_under(path: Path) -> list[str]:
    """Mount points at or below `path`, deepest first."""
    prefix = str(path)
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point == prefix or point.startswith(prefix + "/"):
            points.append(point)
    return sorted(points, key=lambda p: -p.count("/"))
