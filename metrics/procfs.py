"""What /proc and /sys say about a container beyond its cgroup: network and task states.

Network counters come from `/proc/<init pid>/net/dev`, which shows the interfaces of
the network namespace that process is in: no netlink, no entering the namespace, and
it works for any netns (bridge, user network, `none`).  The parsers are pure.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from supervisor.runtime.cgroups import pread_all
from supervisor.runtime.fds import OwnedFd


@dataclass(frozen=True)
class NetDev:
    """One interface's counters, as /proc/net/dev gives them."""

    rx_bytes: int = 0
    rx_packets: int = 0
    rx_errors: int = 0
    rx_dropped: int = 0
    tx_bytes: int = 0
    tx_packets: int = 0
    tx_errors: int = 0
    tx_dropped: int = 0


def parse_net_dev(text: str, *, skip_loopback: bool = True) -> dict[str, NetDev]:
    """`/proc/net/dev` -> interface -> counters (loopback left out, as cAdvisor does)."""
    out: dict[str, NetDev] = {}
    for line in text.splitlines()[2:]:
        name, sep, rest = line.partition(":")
        if not sep:
            continue
        name = name.strip()
        if skip_loopback and name == "lo":
            continue
        f = [int(x) for x in rest.split()]
        if len(f) < 16:
            continue
        out[name] = NetDev(f[0], f[1], f[2], f[3], f[8], f[9], f[10], f[11])
    return out


# cAdvisor's container_tasks_state states, by /proc/<tid>/stat state letter.
TASK_STATES = ("sleeping", "running", "stopped", "uninterruptible", "iowait")
_LETTER = {"S": "sleeping", "I": "sleeping", "R": "running", "T": "stopped",
           "t": "stopped", "D": "uninterruptible"}  # fmt: skip


def task_state(stat_text: str) -> str | None:
    """The state of one task from its `/proc/<tid>/stat` line (the comm may hold spaces)."""
    _, _, rest = stat_text.rpartition(")")
    parts = rest.split()
    return _LETTER.get(parts[0]) if parts else None


def read_text(path: str) -> str | None:
    """A small /proc file with plain syscalls (a scrape reads hundreds); None if gone."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        return os.read(fd, 1 << 16).decode("ascii", "replace")
    except OSError:
        return None
    finally:
        os.close(fd)


def task_states(tids: list[int], pid: int = 0, pid_stat: OwnedFd | None = None) -> dict[str, int]:
    """States of these tasks; `pid`'s stat read through `pid_stat` when held (a pread on
    a held /proc/<pid>/stat fails once that process is gone, never reads a new one)."""
    counts = dict.fromkeys(TASK_STATES, 0)
    for tid in tids:
        if tid == pid and pid_stat is not None:
            raw = pread_all(pid_stat.fileno())
            text = None if raw is None else raw.decode("ascii", "replace")
        else:
            text = read_text(f"/proc/{tid}/stat")
        state = None if text is None else task_state(text)  # None: exited meanwhile
        if state is not None:
            counts[state] += 1
    return counts


def netns_inode(pid: int | str) -> int | None:
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino
    except OSError:
        return None


def container_networks(pid: int, host_netns: int | None) -> dict[str, NetDev]:
    """Interfaces of the container's own netns; none if it shares the host's (`--network
    host`: those counters are the host's, not the container's)."""
    if pid <= 0:
        return {}
    ns = netns_inode(pid)
    if ns is None or ns == host_netns:
        return {}
    text = read_text(f"/proc/{pid}/net/dev")
    return {} if text is None else parse_net_dev(text)


_device_names: dict[str, str] = {}


def device_name(major_minor: str) -> str:
    """`8:0` -> `/dev/sda` (cAdvisor's `device` label), cached; the number if unknown."""
    name = _device_names.get(major_minor)
    if name is None:
        name = major_minor
        try:
            uevent = Path(f"/sys/dev/block/{major_minor}/uevent").read_text()
        except OSError:
            uevent = ""
        for line in uevent.splitlines():
            if line.startswith("DEVNAME="):
                name = "/dev/" + line[len("DEVNAME=") :]
        _device_names[major_minor] = name
    return name


def system_cpu_ns(stat_text: str | None = None) -> int:
    """Host CPU time (all CPUs, all modes) in ns, from /proc/stat: docker's system_cpu_usage."""
    if stat_text is None:
        with open("/proc/stat") as f:
            stat_text = f.read()
    for line in stat_text.splitlines():
        if line.startswith("cpu "):
            ticks = sum(int(x) for x in line.split()[1:8])
            return ticks * 1_000_000_000 // os.sysconf("SC_CLK_TCK")
    return 0


def host_memory_bytes(meminfo_text: str | None = None) -> int:
    if meminfo_text is None:
        with open("/proc/meminfo") as f:
            meminfo_text = f.read()
    for line in meminfo_text.splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return 0
