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
from dataclasses import dataclass, field
from pathlib import Path

from supervisor.runtime.fds import OwnedFd, close_all
from supervisor.runtime.mountinfo import MountEntry, read_mountinfo

CGROUP_ROOT = Path("/sys/fs/cgroup")


_cgroup_mounts: list[MountEntry] | None = None


def _mounts() -> list[MountEntry]:
    """The cgroup hierarchies' mounts, read from mountinfo once per process (as runc's
    `IsCgroup2UnifiedMode` is decided once): the table grows by two mounts per running
    container, and every container exit asks for it three times, so re-reading it cost
    a crash-looping fleet most of the daemon's event loop."""
    global _cgroup_mounts
    if _cgroup_mounts is None:
        _cgroup_mounts = [m for m in read_mountinfo() if m.fstype in ("cgroup", "cgroup2")]
    return _cgroup_mounts


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


def root_cpusets() -> tuple[str, str]:
    """(cpus, mems) of the cgroup root's cpuset, e.g. ("0-1", "0"); "" if unreadable."""
    d, suffix = (CGROUP_ROOT, ".effective") if is_v2() else (_v1_dir("cpuset", "/"), "")
    cpus, mems = (_read(d, f"cpuset.{n}{suffix}") for n in ("cpus", "mems"))
    return (cpus or "").strip(), (mems or "").strip()


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


# -- full readings for metrics and stats ----------------------------------------------
#
# One `Layout` per scrape (mountinfo is read once, not once per file), then one
# `read_stats` per container.  The parsers below are pure functions over file text.

_V1_UNLIMITED = 1 << 62  # v1 reports "no limit" as a huge page-rounded number


@dataclass(frozen=True)
class Layout:
    """Where each controller's hierarchy is mounted (v1), or the unified root (v2)."""

    v2: bool
    v1_dirs: dict[str, Path] = field(default_factory=dict)  # controller -> mount point

    def dir(self, controller: str, path: str) -> Path | None:
        if self.v2:
            return CGROUP_ROOT / _rel(path)
        base = self.v1_dirs.get(controller)
        return None if base is None else base / _rel(path)


def layout() -> Layout:
    mounts = _mounts()
    if is_v2(mounts):
        return Layout(True)
    dirs: dict[str, Path] = {}
    for m in mounts:
        if m.fstype != "cgroup":
            continue
        for opt in m.super_options:
            dirs.setdefault(opt, Path(m.mount_point))
    return Layout(False, dirs)


@dataclass
class IoDevice:
    """Block I/O of one device (major:minor): bytes and operations."""

    read_bytes: int = 0
    write_bytes: int = 0
    reads: int = 0
    writes: int = 0


@dataclass
class CgroupStats:
    """One reading of a container's cgroup; None where the kernel gave nothing."""

    cpu_usage_ns: int | None = None
    cpu_user_ns: int | None = None
    cpu_system_ns: int | None = None
    cpu_periods: int = 0
    cpu_throttled_periods: int = 0
    cpu_throttled_ns: int = 0
    cpu_quota: int | None = None  # microseconds per period; None = no quota
    cpu_period: int | None = None  # microseconds
    percpu_ns: list[int] = field(default_factory=list)  # v1 only
    memory_usage: int | None = None
    memory_max_usage: int | None = None
    memory_limit: int | None = None  # None = unlimited
    memory_failcnt: int = 0
    memory_stat: dict[str, int] = field(default_factory=dict)  # memory.stat as is
    rss: int = 0
    cache: int = 0
    inactive_file: int = 0
    oom_kills: int = 0
    io: dict[str, IoDevice] = field(default_factory=dict)  # "major:minor" -> counters
    pids: int | None = None
    pids_limit: int | None = None
    procs: list[int] = field(default_factory=list)  # thread ids (scrapes only)

    @property
    def working_set(self) -> int | None:
        """cAdvisor's working set: usage minus inactive file pages, never below zero."""
        if self.memory_usage is None:
            return None
        return max(0, self.memory_usage - self.inactive_file)


def parse_keyed(text: str | None) -> dict[str, int]:
    """`key value` lines (cpu.stat, memory.stat, memory.events) as a dict."""
    out: dict[str, int] = {}
    for line in (text or "").splitlines():
        parts = line.split()
        if len(parts) == 2:
            try:
                out[parts[0]] = int(parts[1])
            except ValueError:
                continue
    return out


def parse_blkio_v1(text: str | None, into: dict[str, IoDevice], field_name: str) -> None:
    """`8:0 Read 4096` lines of blkio.throttle.io_service_bytes / io_serviced."""
    for line in (text or "").splitlines():
        parts = line.split()
        if len(parts) != 3 or ":" not in parts[0]:
            continue
        op, value = parts[1].lower(), int(parts[2])
        if op not in ("read", "write"):
            continue
        dev = into.setdefault(parts[0], IoDevice())
        if field_name == "bytes":
            if op == "read":
                dev.read_bytes += value
            else:
                dev.write_bytes += value
        elif op == "read":
            dev.reads += value
        else:
            dev.writes += value


def parse_io_stat_v2(text: str | None) -> dict[str, IoDevice]:
    """`8:0 rbytes=1 wbytes=2 rios=3 wios=4 ...` lines of io.stat."""
    out: dict[str, IoDevice] = {}
    for line in (text or "").splitlines():
        parts = line.split()
        if not parts or ":" not in parts[0]:
            continue
        kv = dict(p.split("=", 1) for p in parts[1:] if "=" in p)
        out[parts[0]] = IoDevice(
            read_bytes=int(kv.get("rbytes", 0)),
            write_bytes=int(kv.get("wbytes", 0)),
            reads=int(kv.get("rios", 0)),
            writes=int(kv.get("wios", 0)),
        )
    return out


def parse_cpu_max(text: str | None) -> tuple[int | None, int | None]:
    """v2 cpu.max `quota period` ("max 100000" = no quota)."""
    parts = (text or "").split()
    if len(parts) != 2:
        return None, None
    return (None if parts[0] == "max" else int(parts[0])), int(parts[1])


def _ints(text: str | None) -> list[int]:
    return [int(x) for x in (text or "").split()]


_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def parse_usage_all(text: str | None) -> tuple[int, int, list[int]] | None:
    """v1 `cpuacct.usage_all` (`cpu user system` per CPU, ns): user, system, per-CPU."""
    lines = (text or "").splitlines()
    if not lines or not lines[0].startswith("cpu"):
        return None
    user = system = 0
    percpu: list[int] = []
    for line in lines[1:]:
        parts = line.split()
        if len(parts) == 3:
            u, k = int(parts[1]), int(parts[2])
            user += u
            system += k
            percpu.append(u + k)
    return user, system, percpu


def _fast(directory: str | None, name: str) -> str | None:
    """One small cgroup file, read with plain syscalls: a scrape reads thousands."""
    if directory is None:
        return None
    try:
        fd = os.open(f"{directory}/{name}", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        chunks = []
        while True:
            data = os.read(fd, 65536)
            if not data:
                break
            chunks.append(data)
        return b"".join(chunks).decode("ascii", "replace")
    except OSError:
        return None
    finally:
        os.close(fd)


def read_stats(path: str, where: Layout | None = None, *, full: bool = True) -> CgroupStats | None:
    """Everything `docker stats` shows, read now; None if the cgroup is gone.

    `full=False` (a Prometheus scrape) leaves out what no exported metric uses (the
    peak, pids, operation counts, throttling without a quota): on cgroup v1 each file
    costs a path walk and a kernel-formatted read, times every container, every scrape.
    """
    lay = where or layout()
    return _read_v2(path, full) if lay.v2 else _read_v1(path, lay, full)


def _sdir(lay: Layout, controller: str, path: str) -> str | None:
    base = lay.v1_dirs.get(controller)
    return None if base is None else f"{base}/{_rel(path)}"


def _read_v1(path: str, lay: Layout, full: bool) -> CgroupStats | None:
    mem = _sdir(lay, "memory", path)
    usage_text = _fast(mem, "memory.usage_in_bytes")
    if usage_text is None:
        return None  # no such cgroup (any more)
    s = CgroupStats()
    acct = _sdir(lay, "cpuacct", path)
    all_cpus = parse_usage_all(_fast(acct, "cpuacct.usage_all"))
    if all_cpus is not None:
        s.cpu_user_ns, s.cpu_system_ns, s.percpu_ns = all_cpus
        s.cpu_usage_ns = s.cpu_user_ns + s.cpu_system_ns
    else:  # older kernels: the total in ns, the split in ticks
        s.cpu_usage_ns = _number(_fast(acct, "cpuacct.usage"))
        ticks = parse_keyed(_fast(acct, "cpuacct.stat"))
        s.cpu_user_ns = ticks.get("user", 0) * 1_000_000_000 // _CLK_TCK
        s.cpu_system_ns = ticks.get("system", 0) * 1_000_000_000 // _CLK_TCK
        s.percpu_ns = _ints(_fast(acct, "cpuacct.usage_percpu"))
    cpu = _sdir(lay, "cpu", path)
    quota = _number(_fast(cpu, "cpu.cfs_quota_us"))
    s.cpu_quota = quota if quota is not None and quota > 0 else None
    s.cpu_period = _number(_fast(cpu, "cpu.cfs_period_us"))
    if full or s.cpu_quota is not None:
        stat = parse_keyed(_fast(cpu, "cpu.stat"))
        s.cpu_periods = stat.get("nr_periods", 0)
        s.cpu_throttled_periods = stat.get("nr_throttled", 0)
        s.cpu_throttled_ns = stat.get("throttled_time", 0)
    s.memory_usage = _number(usage_text)
    if full:
        s.memory_max_usage = _number(_fast(mem, "memory.max_usage_in_bytes"))
    limit = _number(_fast(mem, "memory.limit_in_bytes"))
    s.memory_limit = None if limit is None or limit >= _V1_UNLIMITED else limit
    s.memory_failcnt = _number(_fast(mem, "memory.failcnt")) or 0
    s.memory_stat = parse_keyed(_fast(mem, "memory.stat"))
    s.rss = s.memory_stat.get("total_rss", s.memory_stat.get("rss", 0))
    s.cache = s.memory_stat.get("total_cache", s.memory_stat.get("cache", 0))
    s.inactive_file = s.memory_stat.get(
        "total_inactive_file", s.memory_stat.get("inactive_file", 0)
    )
    s.oom_kills = parse_keyed(_fast(mem, "memory.oom_control")).get("oom_kill", 0)
    blkio = _sdir(lay, "blkio", path)
    parse_blkio_v1(_fast(blkio, "blkio.throttle.io_service_bytes_recursive"), s.io, "bytes")
    pids = _sdir(lay, "pids", path)
    if full:
        parse_blkio_v1(_fast(blkio, "blkio.throttle.io_serviced_recursive"), s.io, "ops")
        s.pids = _number(_fast(pids, "pids.current"))
        s.pids_limit = _number(_fast(pids, "pids.max"))
    else:
        s.procs = _ints(_fast(pids or mem, "tasks"))
    return s


def _read_v2(path: str, full: bool) -> CgroupStats | None:
    d = str(CGROUP_ROOT / _rel(path))
    stat_text = _fast(d, "cpu.stat")
    if stat_text is None:
        return None
    s = CgroupStats()
    stat = parse_keyed(stat_text)
    if "usage_usec" in stat:
        s.cpu_usage_ns = stat["usage_usec"] * 1000
        s.cpu_user_ns = stat.get("user_usec", 0) * 1000
        s.cpu_system_ns = stat.get("system_usec", 0) * 1000
    s.cpu_periods = stat.get("nr_periods", 0)
    s.cpu_throttled_periods = stat.get("nr_throttled", 0)
    s.cpu_throttled_ns = stat.get("throttled_usec", 0) * 1000
    s.cpu_quota, s.cpu_period = parse_cpu_max(_fast(d, "cpu.max"))
    s.memory_usage = _number(_fast(d, "memory.current"))
    if full:
        s.memory_max_usage = _number(_fast(d, "memory.peak"))
    s.memory_limit = _number(_fast(d, "memory.max"))
    events = parse_keyed(_fast(d, "memory.events"))
    s.memory_failcnt = events.get("max", 0)
    s.oom_kills = events.get("oom_kill", 0)
    s.memory_stat = parse_keyed(_fast(d, "memory.stat"))
    s.rss = s.memory_stat.get("anon", 0)
    s.cache = s.memory_stat.get("file", 0)
    s.inactive_file = s.memory_stat.get("inactive_file", 0)
    s.io = parse_io_stat_v2(_fast(d, "io.stat"))
    if full:
        s.pids = _number(_fast(d, "pids.current"))
        s.pids_limit = _number(_fast(d, "pids.max"))
    else:
        s.procs = _ints(_fast(d, "cgroup.threads"))
    return s


# -- held files: what a scrape reads, through descriptors opened once ------------------
#
# On cgroup v1 every open() walks a kernfs path (~10-40 µs here, more on a busy host);
# a pread() at offset 0 of a file already open costs ~1-2 µs and makes the kernel
# format the values afresh.  So a scrape holds each running container's counter files
# open from its first scrape until the container exits (`HeldCgroup`).  Values that
# change only by `docker update` (the memory limit, CPU quota and period) are read once;
# the exporter drops a container's held files at its `update` event.
#
# Not held: v1 `tasks`.  The kernel caches a v1 pid list per cgroup for about a second
# after a read and hands it to a later read *through the same descriptor*, so a held
# `tasks` would miss new processes; a fresh open always loads a new list.  v2's
# `cgroup.threads` restarts its walk at offset 0 and is held.

MAX_HELD = 7  # descriptors per container: files beyond these are opened at each read
_CHUNK = 65536


def pread_all(fd: int) -> bytes | None:
    """The whole file behind `fd`, from offset 0 (None if the cgroup is gone: ENODEV)."""
    try:
        data = os.pread(fd, _CHUNK, 0)
        if len(data) < _CHUNK:
            return data
        parts = [data]
        while len(data) == _CHUNK:  # rare: a long tasks list, many devices
            data = os.pread(fd, _CHUNK, sum(len(p) for p in parts))
            parts.append(data)
        return b"".join(parts)
    except OSError:
        return None


def read_path(path: str) -> bytes | None:
    """One file by path with plain syscalls; None if it is not there (any more)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        return pread_all(fd)
    finally:
        os.close(fd)


def bytes_number(data: bytes | None) -> int | None:
    """A single-number file; empty or "max" (v2 unlimited) → None."""
    if not data:
        return None
    try:
        return int(data)
    except ValueError:
        return None


def bytes_keyed(data: bytes | None) -> dict[bytes, bytes]:
    """`key value` lines (memory.stat, cpu.stat, memory.events ...) as raw pairs.

    One dict() over the split lines, which is how the kernel writes these files; a line
    that is not exactly two words makes it fall back to line by line, skipping it."""
    if not data:
        return {}
    lines = data.splitlines()
    try:
        return dict(line.split() for line in lines)
    except ValueError:
        pairs = (line.split() for line in lines)
        return {p[0]: p[1] for p in pairs if len(p) == 2}


def bytes_field(data: bytes | None, *keys: bytes) -> int:
    """The value of the first of `keys` present in `key value` lines (0 if none).

    Finds the line in place: memory.stat has ~40 lines and a scrape wants three."""
    if not data:
        return 0
    for key in keys:
        needle = key + b" "
        pos = data.find(needle)
        while pos > 0 and data[pos - 1] != 0x0A:  # `rss ` inside `total_rss `: not a key
            pos = data.find(needle, pos + 1)
        if pos < 0:
            continue
        start = pos + len(needle)
        end = data.find(b"\n", start)
        try:
            return int(data[start:] if end < 0 else data[start:end])
        except ValueError:
            return 0
    return 0


def _get(pairs: dict[bytes, bytes], *keys: bytes) -> int:
    """The first of `keys` present, as an int (0 if none or not a number)."""
    for key in keys:
        value = pairs.get(key)
        if value is not None:
            try:
                return int(value)
            except ValueError:
                return 0
    return 0


def bytes_usage_all(data: bytes | None) -> tuple[int, int] | None:
    """v1 `cpuacct.usage_all` (`cpu user system`, then one line per CPU): user, system ns."""
    if not data:
        return None
    words = data.split()
    if words[:3] != [b"cpu", b"user", b"system"] or len(words) % 3:
        return None
    return sum(map(int, words[4::3])), sum(map(int, words[5::3]))


def bytes_blkio_v1(data: bytes | None) -> dict[str, IoDevice]:
    """`8:0 Read 4096` lines of blkio.throttle.io_service_bytes(_recursive): bytes only."""
    out: dict[str, IoDevice] = {}
    if not data or b":" not in data:  # no device yet: just `Total 0`
        return out
    for line in data.splitlines():
        parts = line.split()
        if len(parts) != 3 or b":" not in parts[0]:
            continue
        op = parts[1].lower()
        if op == b"read":
            out.setdefault(parts[0].decode(), IoDevice()).read_bytes += int(parts[2])
        elif op == b"write":
            out.setdefault(parts[0].decode(), IoDevice()).write_bytes += int(parts[2])
    return out


def bytes_ints(data: bytes | None) -> list[int]:
    return [int(x) for x in data.split()] if data else []


class HeldCgroup:
    """One container's cgroup, its counter files held open for repeated scrapes.

    Made by `hold()` at the container's first scrape; `read()` is one pread per file;
    `close()` when the container exits (the exporter's event listener) or is gone.
    Up to MAX_HELD descriptors: the files are listed most-read first and any beyond the
    budget are opened at each read instead.  After the cgroup is removed every pread
    fails (ENODEV) and `read()` answers None, like a path read of a missing cgroup.
    """

    def __init__(self, v2: bool, files: list[tuple[str, str]], tasks: str,
                 quota: int | None, period: int | None, limit: int | None) -> None:  # fmt: skip
        self.v2 = v2
        self.cpu_quota = quota
        self.cpu_period = period
        self.memory_limit = limit
        self._tasks = tasks  # v1: a path, opened at each read; v2: in `files`
        # Read in this order; the first (v1 memory.usage_in_bytes, v2 cpu.stat) says
        # whether the cgroup is still there.
        self._order = tuple(name for name, _ in files)
        self._pids_at = self._order.index("pids.current") if "pids.current" in self._order else -1
        self._fds: dict[str, OwnedFd] = {}
        self._paths: dict[str, str] = {}
        for name, path in files:
            if len(self._fds) < MAX_HELD:
                try:
                    self._fds[name] = OwnedFd.open(path, os.O_RDONLY, f"cgroup {name}")
                    continue
                except OSError:
                    pass  # a controller not mounted: that file reads as nothing
            self._paths[name] = path
        # Every file held (most containers): `snapshot()` is then one pread per
        # descriptor in a comprehension, ~9,000 a scrape at 1,000 containers.
        self._held: tuple[int, ...] | None = None
        if not self._paths and len(self._fds) == len(self._order):
            self._held = tuple(self._fds[name].fileno() for name in self._order)

    @property
    def descriptors(self) -> int:
        return len(self._fds)

    def close(self) -> None:
        self._held = None  # before the numbers can be another file's
        fds, self._fds = self._fds, {}
        close_all(*fds.values())

    def _file(self, name: str) -> bytes | None:
        fd = self._fds.get(name)
        if fd is not None:
            return pread_all(fd.fileno())
        path = self._paths.get(name)
        return None if path is None else read_path(path)

    def read(self, init: int = 0) -> CgroupStats | None:
        """What a scrape exports: `read_stats(full=False)` but for `memory_stat` and
        `percpu_ns`, left empty (no metric uses them); None once the cgroup is gone.

        `init`: the pid of the container's init.  Under v1 the `tasks` file is opened
        at each read (through a held descriptor the kernel would serve a pid list
        cached from an earlier read); `pids.current` is held instead, and when it
        counts one task, that task is the init (it lives while the container runs):
        most containers run one process, so most reads skip the open."""
        snap = self.snapshot(init)
        return None if snap is None else self.parse(snap, init)

    def snapshot(self, init: int = 0) -> tuple[bytes | None, ...] | None:
        """The raw bytes of every file `read()` uses, in a fixed order, parsed by
        `parse()`; None once the cgroup is gone.  A scrape compares it with the last
        one: an idle container's files read the same, and its lines are kept.  Under v1
        the last item is the `tasks` file, or None when `pids.current` says the init is
        alone (see `read()`)."""
        held = self._held
        snap: list[bytes | None] | None = None
        if held is not None:
            try:
                raw = [os.pread(fd, _CHUNK, 0) for fd in held]
            except OSError:  # the cgroup is going: read file by file below
                pass
            else:
                if max(map(len, raw)) < _CHUNK:  # longer ones: read whole below
                    snap = list(raw)
        if snap is None:
            first = self._file(self._order[0])
            if first is None:
                return None
            file = self._file
            snap = [first, *[file(name) for name in self._order[1:]]]
        if not self.v2:
            if init > 0 and self._pids_at >= 0 and bytes_number(snap[self._pids_at]) == 1:
                snap.append(None)
            else:
                snap.append(read_path(self._tasks) or b"")
        return tuple(snap)

    def procs(self, snap: tuple[bytes | None, ...], init: int = 0) -> list[int]:
        """The thread ids of a `snapshot()` (v1: the init alone when it is alone)."""
        if self.v2:
            return bytes_ints(snap[self._order.index("cgroup.threads")])
        return [init] if snap[-1] is None else bytes_ints(snap[-1])

    def parse(self, snap: tuple[bytes | None, ...], init: int = 0) -> CgroupStats:
        """The stats of one `snapshot()` (pure)."""
        files = dict(zip(self._order, snap, strict=False))
        s = self._parse_v2(files) if self.v2 else self._parse_v1(files)
        s.procs = self.procs(snap, init)
        return s

    def _parse_v1(self, f: dict[str, bytes | None]) -> CgroupStats:
        s = CgroupStats(memory_usage=bytes_number(f.get("memory.usage_in_bytes")),
                        memory_limit=self.memory_limit, cpu_quota=self.cpu_quota,
                        cpu_period=self.cpu_period)  # fmt: skip
        split = bytes_usage_all(f.get("cpuacct.usage_all"))
        if split is not None:
            s.cpu_user_ns, s.cpu_system_ns = split
            s.cpu_usage_ns = s.cpu_user_ns + s.cpu_system_ns
        else:  # older kernels: the total in ns, the split in ticks
            s.cpu_usage_ns = bytes_number(f.get("cpuacct.usage"))
            ticks = bytes_keyed(f.get("cpuacct.stat"))
            s.cpu_user_ns = _get(ticks, b"user") * 1_000_000_000 // _CLK_TCK
            s.cpu_system_ns = _get(ticks, b"system") * 1_000_000_000 // _CLK_TCK
        if self.cpu_quota is not None:
            stat = f.get("cpu.stat")
            s.cpu_periods = bytes_field(stat, b"nr_periods")
            s.cpu_throttled_periods = bytes_field(stat, b"nr_throttled")
            s.cpu_throttled_ns = bytes_field(stat, b"throttled_time")
        s.memory_failcnt = bytes_number(f.get("memory.failcnt")) or 0
        mem = f.get("memory.stat")
        s.rss = bytes_field(mem, b"total_rss", b"rss")
        s.cache = bytes_field(mem, b"total_cache", b"cache")
        s.inactive_file = bytes_field(mem, b"total_inactive_file", b"inactive_file")
        s.oom_kills = bytes_field(f.get("memory.oom_control"), b"oom_kill")
        s.io = bytes_blkio_v1(f.get("blkio.throttle.io_service_bytes_recursive"))
        return s

    def _parse_v2(self, f: dict[str, bytes | None]) -> CgroupStats:
        s = CgroupStats(memory_limit=self.memory_limit, cpu_quota=self.cpu_quota,
                        cpu_period=self.cpu_period)  # fmt: skip
        stat = bytes_keyed(f.get("cpu.stat"))
        if b"usage_usec" in stat:
            s.cpu_usage_ns = _get(stat, b"usage_usec") * 1000
            s.cpu_user_ns = _get(stat, b"user_usec") * 1000
            s.cpu_system_ns = _get(stat, b"system_usec") * 1000
        s.cpu_periods = _get(stat, b"nr_periods")
        s.cpu_throttled_periods = _get(stat, b"nr_throttled")
        s.cpu_throttled_ns = _get(stat, b"throttled_usec") * 1000
        s.memory_usage = bytes_number(f.get("memory.current"))
        events = bytes_keyed(f.get("memory.events"))
        s.memory_failcnt = _get(events, b"max")
        s.oom_kills = _get(events, b"oom_kill")
        mem = f.get("memory.stat")
        s.rss = bytes_field(mem, b"anon")
        s.cache = bytes_field(mem, b"file")
        s.inactive_file = bytes_field(mem, b"inactive_file")
        io = f.get("io.stat")
        s.io = parse_io_stat_v2(io.decode("ascii", "replace")) if io else {}
        return s


def hold(path: str, where: Layout | None = None) -> HeldCgroup | None:
    """Open `path`'s counter files for repeated reads; None if the cgroup is not there."""
    lay = where or layout()
    if lay.v2:
        d = str(CGROUP_ROOT / _rel(path))
        if not os.path.isdir(d):
            return None
        quota, period = parse_cpu_max(_fast(d, "cpu.max"))
        names = ("cpu.stat", "memory.current", "memory.stat", "memory.events", "io.stat",
                 "cgroup.threads")  # fmt: skip
        files = [(n, f"{d}/{n}") for n in names]
        return HeldCgroup(True, files, "", quota, period, _number(_fast(d, "memory.max")))
    mem = _sdir(lay, "memory", path)
    if mem is None or not os.path.isdir(mem):
        return None
    acct, cpu = _sdir(lay, "cpuacct", path), _sdir(lay, "cpu", path)
    blkio, pids = _sdir(lay, "blkio", path), _sdir(lay, "pids", path)
    quota = _number(_fast(cpu, "cpu.cfs_quota_us"))
    quota = quota if quota is not None and quota > 0 else None
    period = _number(_fast(cpu, "cpu.cfs_period_us"))
    limit = _number(_fast(mem, "memory.limit_in_bytes"))
    limit = None if limit is None or limit >= _V1_UNLIMITED else limit
    files = [(n, f"{mem}/{n}") for n in ("memory.usage_in_bytes", "memory.stat")]
    if acct is not None and os.path.exists(f"{acct}/cpuacct.usage_all"):
        files.append(("cpuacct.usage_all", f"{acct}/cpuacct.usage_all"))
    elif acct is not None:
        files += [(n, f"{acct}/{n}") for n in ("cpuacct.usage", "cpuacct.stat")]
    files += [(n, f"{mem}/{n}") for n in ("memory.failcnt", "memory.oom_control")]
    if blkio is not None:
        name = "blkio.throttle.io_service_bytes_recursive"
        files.append((name, f"{blkio}/{name}"))
    if pids is not None:  # read before `tasks`: a count of one spares opening it
        files.append(("pids.current", f"{pids}/pids.current"))
    if quota is not None and cpu is not None:  # throttling is exported with a quota only
        files.append(("cpu.stat", f"{cpu}/cpu.stat"))
    return HeldCgroup(False, files, f"{pids or mem}/tasks", quota, period, limit)
