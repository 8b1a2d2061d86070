"""Reading a container's cgroup (as runc's cgroupfs driver lays it out) and cleaning up.

runc owns creating the cgroup and applying limits; the daemon only needs a few counters
(OOM kills for `State.OOMKilled`, memory and pids for stats) and a tidy-up for dirs a
crashed runc left behind.  `cgroups_path` is the `linux.cgroupsPath` given to runc,
e.g. "/corral/<id>": under cgroup v2 it is relative to /sys/fs/cgroup, under v1 to the
root of each controller's hierarchy.  The systemd driver ("slice:prefix:name") is not
supported.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from supervisor.runtime.mountinfo import MountEntry, read_mountinfo

CGROUP_ROOT = Path("/sys/fs/cgroup")


def _mounts() -> list[MountEntry]:
    return [m for m in read_mountinfo() if m.fstype in ("cgroup", "cgroup2")]


def is_v2(mounts: list[MountEntry] | None = None) -> bool:
    """Unified mode: /sys/fs/cgroup itself is cgroup2 and has controllers enabled.

    A hybrid host (v1 controllers plus an empty cgroup2 at /sys/fs/cgroup/unified)
    counts as v1, which is how runc sees it too.
    """
    entries = _mounts() if mounts is None else mounts
    at_root = [m for m in entries if m.mount_point == str(CGROUP_ROOT)]
    if not at_root or at_root[-1].fstype != "cgroup2":
        return False
    try:
        return bool((CGROUP_ROOT / "cgroup.controllers").read_text().split())
    except OSError:
        return False


def _rel(path: str) -> str:
    return path.strip("/")


def _v1_dir(controller: str, path: str) -> Path | None:
    """Directory of `path` in the v1 hierarchy that carries `controller`."""
    for m in _mounts():
        if m.fstype == "cgroup" and controller in m.super_options:
            return Path(m.mount_point) / _rel(path)
    return None


def _dir(controller: str, path: str) -> Path | None:
    if is_v2():
        return CGROUP_ROOT / _rel(path)
    return _v1_dir(controller, path)


def _read(directory: Path | None, name: str) -> str | None:
    if directory is None:
        return None
    try:
        return (directory / name).read_text()
    except OSError:
        return None


def _keyed(text: str | None, key: str) -> int | None:
    """`key value` lines (memory.events, memory.oom_control, memory.stat)."""
    for line in (text or "").splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == key:
            return int(parts[1])
    return None


def _number(text: str | None) -> int | None:
    """A single-number file; "max" (v2 unlimited) → None."""
    if text is None:
        return None
    value = text.strip()
    return None if value in ("", "max") else int(value)


def oom_kill_count(path: str) -> int:
    """How many processes the kernel OOM-killed in this cgroup (0 if unknown)."""
    if is_v2():
        count = _keyed(_read(CGROUP_ROOT / _rel(path), "memory.events"), "oom_kill")
    else:
        count = _keyed(_read(_v1_dir("memory", path), "memory.oom_control"), "oom_kill")
    return count or 0


def memory_usage(path: str) -> int | None:
    v2 = is_v2()
    name = "memory.current" if v2 else "memory.usage_in_bytes"
    return _number(_read(_dir("memory", path), name))


def memory_limit(path: str) -> int | None:
    """The enforced limit in bytes; None when unlimited (v1 reports a huge number)."""
    v2 = is_v2()
    name = "memory.max" if v2 else "memory.limit_in_bytes"
    value = _number(_read(_dir("memory", path), name))
    if value is not None and value >= (1 << 62):
        return None
    return value


def pids_current(path: str) -> int | None:
    return _number(_read(_dir("pids", path), "pids.current"))


def cleanup(path: str) -> list[Path]:
    """rmdir `path` in every cgroup hierarchy; returns the dirs that could not go.

    Missing dirs are fine (runc delete normally removes them).  A dir that is busy
    (still has processes or children) is left and reported rather than raised, since
    cleanup runs on error paths where a second exception would hide the first.
    """
    left: list[Path] = []
    seen: set[str] = set()
    for m in _mounts():
        if m.mount_point in seen:
            continue
        seen.add(m.mount_point)
        target = Path(m.mount_point) / _rel(path)
        if target == Path(m.mount_point):
            continue
        try:
            os.rmdir(target)
        except FileNotFoundError:
            pass
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                left.append(target)
    return left
