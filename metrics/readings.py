"""One reading of a running container: cgroup counters, netns counters, task states.

The exporter and `GET /containers/{id}/stats` both start here, so `corral stats`,
`docker stats` and Prometheus agree.  A reading is taken when asked, never cached.
`read()` goes by paths (a stats request); a scrape reads through a `Source`, whose
cgroup files stay open from the container's first scrape to its exit.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

from metrics.procfs import (
    TASK_STATES,
    NetDev,
    container_networks,
    netns_inode,
    parse_net_dev,
    read_text,
    task_states,
)
from supervisor.runtime import cgroups
from supervisor.runtime.fds import OwnedFd, close_all

# A Source's raw reading: cgroup file bytes, net/dev bytes, task state counts.
Snapshot = tuple[tuple[bytes | None, ...], bytes | None, tuple[int, ...]]


@dataclass
class Reading:
    cgroup: cgroups.CgroupStats
    networks: dict[str, NetDev] = field(default_factory=dict)
    tasks: dict[str, int] = field(default_factory=dict)
    read_at: float = 0.0  # time.time()


def host_netns() -> int | None:
    return netns_inode(os.getpid())


def read(
    cgroup_path: str,
    pid: int,
    *,
    layout: cgroups.Layout | None = None,
    host_ns: int | None = None,
    tasks: bool = True,
) -> Reading | None:
    """A reading now; None when the cgroup is gone (the container just stopped).

    `tasks=True` is a scrape: task states, and only the cgroup files metrics use;
    `tasks=False` is `docker stats`: every cgroup file, no task states."""
    stats = cgroups.read_stats(cgroup_path, layout, full=not tasks)
    if stats is None:
        return None
    return Reading(
        cgroup=stats,
        networks=container_networks(pid, host_netns() if host_ns is None else host_ns),
        tasks=task_states(stats.procs) if tasks else {},
        read_at=time.time(),
    )


class Source:
    """A running container's readings for scrapes: its cgroup files held open
    (`cgroups.HeldCgroup`) and where its network counters are, settled at open.

    The container's netns cannot change while it runs, so whether it is the host's
    (`--network host`: no series, those counters are the host's) is asked once.
    """

    def __init__(self, cgroup: cgroups.HeldCgroup, pid: int, own_netns: bool) -> None:
        self.cgroup = cgroup
        self.pid = pid
        # Held too: `/proc/<pid>/net/dev` (bound to the netns at open, which cannot change
        # while the container runs) and the init's `stat` (its one task, for most
        # containers).  Either is opened again at each read if it could not be held.
        self._net_dev = f"/proc/{pid}/net/dev" if own_netns else ""
        self._net_fd = _hold(self._net_dev, "net/dev") if own_netns else None
        self._stat_fd = _hold(f"/proc/{pid}/stat", "stat") if pid > 0 else None

    @classmethod
    def open(
        cls, cgroup_path: str, pid: int, layout: cgroups.Layout, host_ns: int | None
    ) -> Source | None:
        """None when the cgroup is not there (the container is just stopping)."""
        held = cgroups.hold(cgroup_path, layout)
        if held is None:
            return None
        ns = netns_inode(pid) if pid > 0 else None
        return cls(held, pid, ns is not None and ns != host_ns)

    def read(self) -> Reading | None:
        """A reading now (task states included); None once the cgroup is gone."""
        snap = self.snapshot()
        return None if snap is None else self.reading(snap)

    def snapshot(self) -> Snapshot | None:
        """What a reading is made of, raw: the cgroup files' bytes, `net/dev`'s, and the
        task state counts (in `TASK_STATES` order); None once the cgroup is gone.  Equal
        snapshots make equal readings but for `read_at`: a scrape keeps the lines of a
        container whose snapshot did not change."""
        cg = self.cgroup.snapshot(self.pid)
        if cg is None:
            return None
        if self._net_fd is not None:
            net = cgroups.pread_all(self._net_fd.fileno())
        elif self._net_dev:
            text = read_text(self._net_dev)
            net = None if text is None else text.encode("ascii", "replace")
        else:
            net = None
        counts = task_states(self.cgroup.procs(cg, self.pid), self.pid, self._stat_fd)
        return cg, net, tuple(counts.values())

    def reading(self, snap: Snapshot) -> Reading:
        """The reading of a `snapshot()`, read now."""
        cg, net, counts = snap
        return Reading(
            cgroup=self.cgroup.parse(cg, self.pid),
            networks={} if net is None else parse_net_dev(net.decode("ascii", "replace")),
            tasks=dict(zip(TASK_STATES, counts, strict=True)),
            read_at=time.time(),
        )

    def close(self) -> None:
        self.cgroup.close()
        fds = [fd for fd in (self._net_fd, self._stat_fd) if fd is not None]
        self._net_fd = self._stat_fd = None
        close_all(*fds)


def _hold(path: str, what: str) -> OwnedFd | None:
    try:
        return OwnedFd.open(path, os.O_RDONLY, what)
    except OSError:
        return None
