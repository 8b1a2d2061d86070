"""One reading of a running container: cgroup counters, netns counters, task states.

The exporter and `GET /containers/{id}/stats` both start here, so `corral stats`,
`docker stats` and Prometheus agree.  A reading is taken when asked, never cached.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

from metrics.procfs import NetDev, container_networks, netns_inode, task_states
from supervisor.runtime import cgroups


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
