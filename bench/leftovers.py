"""What a bench run owns on the host, and the sweep of what a dead run left.

A run claims its workdir (`corral-bench-*` in the temp directory) with an `owner` file:
its pid and that process's start time (field 22 of /proc/PID/stat), so a reused pid is
no owner.  Every engine's state lives under the workdir and its containers under the
cgroup parents `corral-bench-[podman-|docker-]PID`, so a run killed too hard to clean
up (SIGKILL, a crash) is found by the next run and swept as a whole: the processes that
name the workdir or sit in those cgroups are killed, the mounts under it detached, the
cgroups removed, the directory deleted, and the bridges whose state root went with it
(`supervisor.network.orphans`) taken down.

Only dead owners are swept: several benches (and test sessions) may share the host.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from bench import procfs

PREFIX = "corral-bench-"
OWNER = "owner"
CGROUP_ROOT = Path("/sys/fs/cgroup")
CGROUP_NAME = re.compile(r"^corral-bench-(?:podman-|docker-)?(\d+)$")
KILL_TIMEOUT = 30.0
#: runc states kept outside the workdir: podman's (runc's default root) and the bench's
#: containerd's (its shim's default, under the bench's namespace); only those whose
#: cgroups are a swept run's are deleted
RUNC_ROOTS = (Path("/run/runc"), Path("/run/containerd/runc/corral-bench"))
MNT_DETACH = 2


def start_time(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat (clock ticks since boot), or None if it is gone."""
    try:
        text = (procfs.PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return int(text[text.rindex(")") + 2 :].split()[19])


def claim(workdir: Path) -> None:
    """Mark `workdir` as this process's, for as long as it lives."""
    me = os.getpid()
    (workdir / OWNER).write_text(f"{me} {start_time(me)}\n")


def parse_owner(text: str) -> tuple[int, int] | None:
    """`PID STARTTIME` as `claim` writes it; None for anything else."""
    parts = text.split()
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        return None
    return int(parts[0]), int(parts[1])


def owner_of(workdir: Path) -> int | None:
    """The pid of the live process that claimed `workdir`, or None if it is dead.

    A workdir without an owner file comes from a bench older than the claim (or from a
    run killed between mkdtemp and its claim): it is stale unless a corral daemon still
    runs on it (such a run is alive) or it is less than a minute old.
    """
    try:
        text = (workdir / OWNER).read_text()
    except FileNotFoundError:
        import time

        young = time.time() - workdir.stat().st_mtime < 60
        daemon = procfs.pids_where(
            lambda pid: (
                "supervisor.daemon" in (args := procfs.cmdline(pid))
                and any(str(workdir) in a for a in args)
            )
        )
        return daemon[0] if daemon else (os.getpid() if young else None)
    owner = parse_owner(text)
    if owner is None:
        return None
    pid, started = owner
    return pid if start_time(pid) == started and procfs.alive(pid) else None


def stale_workdirs(tmp: Path | None = None) -> list[Path]:
    """`corral-bench-*` directories in the temp directory whose owner is dead."""
    base = Path(tmp or tempfile.gettempdir())
    found = []
    for d in sorted(base.glob(PREFIX + "*")):
        with contextlib.suppress(FileNotFoundError):  # swept by someone else meanwhile
            if d.is_dir() and not d.is_symlink() and owner_of(d) is None:
                found.append(d)
    return found


def stale_cgroups() -> list[str]:
    """Cgroup parents named for a bench pid that no longer runs (in any hierarchy)."""
    names: set[str] = set()
    for top in [CGROUP_ROOT, *(h for h in CGROUP_ROOT.iterdir() if h.is_dir())]:
        with contextlib.suppress(OSError):
            for d in top.iterdir():
                m = CGROUP_NAME.match(d.name)
                if m and d.is_dir() and not procfs.alive(int(m.group(1))):
                    names.add(d.name)
    return sorted(names)


@dataclass
class Swept:
    """What one sweep removed, for the one line the bench prints about it."""

    workdirs: list[str] = field(default_factory=list)
    processes: int = 0
    mounts: int = 0
    cgroups: list[str] = field(default_factory=list)
    bridges: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.workdirs or self.processes or self.mounts or self.cgroups
                    or self.bridges)  # fmt: skip

    def summary(self) -> str:
        return (
            f"swept {len(self.workdirs)} stale workdir(s) {' '.join(self.workdirs)}: "
            f"{self.processes} process(es) killed, {self.mounts} mount(s) detached, "
            f"{len(self.cgroups)} cgroup parent(s), {len(self.bridges)} bridge(s) removed"
        )


def kill_all(pids: list[int]) -> None:
    """SIGKILL each and wait (pidfds, bounded) until they are gone."""
    import select

    fds = []
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            fd = os.pidfd_open(pid)
            fds.append(fd)
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(fd, signal.SIGKILL)
    try:
        for fd in fds:
            select.select([fd], [], [], KILL_TIMEOUT)
    finally:
        for fd in fds:
            os.close(fd)


def detach(point: str) -> bool:
    libc = ctypes.CDLL(None, use_errno=True)
    return int(libc.umount2(point.encode(), MNT_DETACH)) == 0


def mounts_under(paths: list[Path]) -> list[str]:
    """Mount points at or below any of `paths`, deepest first."""
    prefixes = [str(p) for p in paths]
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if any(point == p or point.startswith(p + "/") for p in prefixes):
            points.append(point)
    return sorted(points, key=lambda p: -p.count("/"))


def sweep(workdirs: list[Path], cgroups: list[str]) -> Swept:
    """Remove everything the dead runs of `workdirs` and `cgroups` left (blocking)."""
    from bench.engines.base import remove_cgroup_tree

    done = Swept(workdirs=[str(d) for d in workdirs], cgroups=list(cgroups))
    markers = [str(d) for d in workdirs]
    # daemons, holders, conmons, dockerd and shims name the workdir; containers sit in
    # the cgroups (a holder would restart nothing, but kill it before its children)
    for _ in range(3):  # a process that forked while being killed is found next round
        pids = procfs.pids_where(
            lambda pid: (
                procfs.mentions(pid, markers) or any(procfs.under_cgroup(pid, c) for c in cgroups)
            )
        )
        if not pids:
            break
        done.processes += len(pids)
        kill_all(pids)
    for point in mounts_under(workdirs):
        done.mounts += detach(point)
    for state in [s for r in RUNC_ROOTS for s in r.glob("*/state.json")]:
        with contextlib.suppress(OSError, ValueError):
            paths = json.loads(state.read_text()).get("cgroup_paths") or {}
            if any(f"/{c}/" in p for p in paths.values() for c in cgroups):
                subprocess.run(["runc", "--root", str(state.parent.parent), "delete", "-f",
                                state.parent.name], capture_output=True, check=False,
                               timeout=60)  # fmt: skip
    for c in cgroups:
        remove_cgroup_tree(c)
    for d in workdirs:
        shutil.rmtree(d, ignore_errors=True)
    done.bridges = orphan_bridges()
    return done


def orphan_bridges() -> list[str]:
    """Bridges (and nftables tables) whose corral state root is gone (a swept workdir's
    daemon's), removed."""
    try:
        from supervisor.network.nat import sweep_tables
        from supervisor.network.orphans import sweep_bridges
    except ImportError:  # pyroute2 missing: nothing corral made can be here either
        return []
    return [*sweep_bridges(), *sweep_tables()]


def sweep_stale(tmp: Path | None = None) -> Swept:
    """The sweep a run does at its start: every dead run's leftovers, nobody else's."""
    return sweep(stale_workdirs(tmp), stale_cgroups())
