"""What the bench reads about processes: CPU time, RSS, command lines, cgroups.

Parsers are pure functions over the text of /proc files (tested without I/O); the
readers around them are thin.  A process that exits while being read simply drops out.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from pathlib import Path

import trio

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PROC = Path("/proc")


def parse_stat_cpu_ticks(text: str) -> int:
    """utime + stime (fields 14 and 15 of /proc/PID/stat), all threads, in clock ticks.

    The command name (field 2) may hold spaces and parentheses, so fields are counted
    from the last ')'.
    """
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[11]) + int(fields[12])


def parse_stat_tree_ticks(text: str) -> int:
    """utime + stime + cutime + cstime (fields 14-17): the process and the children it
    has reaped (a holder's `runc create` runs, a finished container's init)."""
    fields = text[text.rindex(")") + 2 :].split()
    return sum(int(f) for f in fields[11:15])


def parse_status_rss(text: str) -> int:
    """VmRSS of /proc/PID/status, in bytes (0 for a kernel thread or zombie)."""
    for line in text.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def in_cgroup(proc_cgroup: str, parent: str) -> bool:
    """Whether /proc/PID/cgroup puts the process under `/parent` in any hierarchy."""
    prefix = "/" + parent.strip("/")
    for line in proc_cgroup.splitlines():
        path = line.split(":", 2)[-1]
        if path == prefix or path.startswith(prefix + "/"):
            return True
    return False


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None


def cpu_seconds(pid: int) -> float:
    text = _read(PROC / str(pid) / "stat")
    return 0.0 if text is None else parse_stat_cpu_ticks(text) / CLOCK_TICKS


def tree_cpu_seconds(pid: int) -> float:
    """`cpu_seconds` plus the CPU of the children `pid` has reaped."""
    text = _read(PROC / str(pid) / "stat")
    return 0.0 if text is None else parse_stat_tree_ticks(text) / CLOCK_TICKS


def rss_bytes(pid: int) -> int:
    text = _read(PROC / str(pid) / "status")
    return 0 if text is None else parse_status_rss(text)


def cmdline(pid: int) -> list[str]:
    try:
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def all_pids() -> Iterator[int]:
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            yield int(entry.name)


def parse_stat_ppid(text: str) -> int:
    """The parent's pid (field 4) of /proc/PID/stat."""
    return int(text[text.rindex(")") + 2 :].split()[1])


def children_of(parent: int) -> set[int]:
    """Every child of `parent`, zombies included (they are what is left to reap)."""
    out = set()
    for pid in all_pids():
        text = _read(PROC / str(pid) / "stat")
        if text is not None and parse_stat_ppid(text) == parent:
            out.add(pid)
    return out


PR_SET_CHILD_SUBREAPER = 36


def set_subreaper(on: bool) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


@contextlib.asynccontextmanager
async def orphans_reaped(timeout: float = 60) -> AsyncIterator[None]:
    """The bench a child subreaper while the body runs, and until what it left ended.

    A helper an engine's command leaves behind, daemonized (Podman's conmon, with the
    `runc create` and the container it reaps and the `container cleanup` it spawns; a
    containerd shim), is reparented here instead of to pid 1; after the body each is
    waited for (pidfds) and reaped, so its CPU lands in RUSAGE_CHILDREN as the
    command's own does.  The body must start no other process that outlives it."""
    me = os.getpid()
    before = children_of(me)
    set_subreaper(True)
    try:
        yield
        with trio.move_on_after(timeout):  # one that never ends is left (and uncounted)
            while left := children_of(me) - before:
                await wait_exits(left)
                for pid in left:
                    with contextlib.suppress(ChildProcessError):
                        os.waitpid(pid, os.WNOHANG)
    finally:
        set_subreaper(False)


def parse_stat_state(text: str) -> str:
    """The one-letter state (field 3) of /proc/PID/stat: R, S, D, Z..."""
    return text[text.rindex(")") + 2 :].split()[0]


def alive(pid: int) -> bool:
    """Exists and is not a zombie (a zombie has exited; only its parent's reap is left)."""
    text = _read(PROC / str(pid) / "stat")
    return text is not None and parse_stat_state(text) != "Z"


def pids_where(keep: Callable[[int], bool]) -> list[int]:
    """Live processes other than this one that `keep` selects."""
    me = os.getpid()
    return [pid for pid in all_pids() if pid != me and keep(pid) and alive(pid)]


def mentions(pid: int, markers: Iterable[str]) -> bool:
    """Whether any argument of the process contains one of `markers` (a private path)."""
    args = cmdline(pid)
    return any(m in a for a in args for m in markers)


def under_cgroup(pid: int, parent: str) -> bool:
    text = _read(PROC / str(pid) / "cgroup")
    return text is not None and in_cgroup(text, parent)


async def wait_exits(pids: Iterable[int]) -> None:
    """Return once every process in `pids` has exited (pidfds: woken, never polled)."""
    fds: list[int] = []
    try:
        for pid in pids:
            try:
                fds.append(os.pidfd_open(pid))
            except ProcessLookupError:
                continue
        async with trio.open_nursery() as nursery:
            for fd in fds:
                nursery.start_soon(trio.lowlevel.wait_readable, fd)
    finally:
        for fd in fds:
            os.close(fd)


async def idle_cpu(pid: int, quiet: float, window: float) -> float:
    """CPU seconds `pid` spends in `window` seconds of doing nothing, counted after
    `quiet` seconds for the last answers to settle: an idle daemon's must be zero."""
    await trio.sleep(quiet)
    before = cpu_seconds(pid)
    await trio.sleep(window)
    return cpu_seconds(pid) - before
