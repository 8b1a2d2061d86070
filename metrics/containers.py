"""cAdvisor's container metrics, read from cgroups and netns counters at scrape time.

Names, types and labels follow cAdvisor (`id` is the container's cgroup path, as in
cAdvisor: `/corral/<container id>`; `name`; `image`; `container_label_<label>`), so
dashboards and alerts written for cAdvisor work.  Where cAdvisor types a value as a
counter without the `_total` suffix (`container_memory_failcnt`), it is a gauge here,
so `promtool check metrics` stays clean.
"""

from __future__ import annotations

import calendar
import functools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from metrics import readings
from metrics.families import Family, cached_block, container_labels, counter, gauge, label
from metrics.procfs import TASK_STATES, device_name
from supervisor.pods.labels import POD_LABEL
from supervisor.runtime import cgroups


@dataclass(frozen=True)
class Target:
    """What the collector needs of one running container (no engine types here)."""

    cgroup_path: str
    name: str
    image: str
    labels: dict[str, str]
    pid: int
    started_at: str  # RFC 3339
    container_id: str


@functools.lru_cache(maxsize=4096)  # a run's start time is read at every scrape
def rfc3339_seconds(text: str) -> float | None:
    """`2024-01-02T03:04:05.123456789Z` -> epoch seconds; None for Docker's zero time."""
    if not text or text.startswith("0001-"):
        return None
    base, _, frac = text.rstrip("Z").partition(".")
    try:
        seconds = calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        return None
    return seconds + (float("0." + frac) if frac.isdigit() else 0.0)


_STATE = {s: label("state", s) for s in TASK_STATES}


def target_block(t: Target) -> str:
    """The container's label block, formatted once while its name and labels stay.
    A pod's containers (its infra too) also carry `pod`, as the kubelet's cAdvisor
    labels them, so one query sums a pod."""
    return cached_block((("id", t.cgroup_path), ("name", t.name), ("image", t.image),
                         *pod_label(t.labels).items(),
                         *_container_labels(tuple(t.labels.items()))))  # fmt: skip


def pod_label(labels: Mapping[str, str] | None) -> dict[str, str]:
    """`pod` for a pod's containers (none for others)."""
    pod = (labels or {}).get(POD_LABEL)
    return {"pod": str(pod)} if pod else {}


@functools.lru_cache(maxsize=4096)
def _container_labels(labels: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    return tuple(container_labels(dict(labels)).items())


class ContainerCollector:
    """The cAdvisor families of `targets()`, the running containers, read when asked.

    Each container's files are opened at its first scrape (a `readings.Source`) and
    closed by `forget()` when it exits, or at the next scrape if it is no longer a
    target or runs as another process (a restart); nothing runs between scrapes.
    """

    def __init__(self, targets: Callable[[], Sequence[Target]]) -> None:
        self.targets = targets
        self.sources: dict[str, readings.Source] = {}  # container ID -> open source
        self._host_ns: int | None = None

    def forget(self, container_id: str) -> None:
        """Close a container's files (it exited or was removed; after an update its
        limits are read anew at the next scrape)."""
        source = self.sources.pop(container_id, None)
        if source is not None:
            source.close()

    def _open(self, t: Target, layout: cgroups.Layout) -> readings.Source | None:
        if self._host_ns is None:
            self._host_ns = readings.host_netns()
        source = readings.Source.open(t.cgroup_path, t.pid, layout, self._host_ns)
        if source is not None:
            self.sources[t.container_id] = source
        return source

    def collect(self) -> list[Family]:
        layout: cgroups.Layout | None = None  # mountinfo is read only to open new sources
        found = []
        seen = set()
        for t in self.targets():
            source = self.sources.get(t.container_id)
            if source is not None and source.pid != t.pid:
                self.forget(t.container_id)
                source = None
            if source is None:
                layout = layout or cgroups.layout()
                source = self._open(t, layout)
                if source is None:
                    continue
            r = source.read()
            if r is None:  # its cgroup went away: the container is stopping
                self.forget(t.container_id)
                continue
            seen.add(t.container_id)
            found.append((t, r))
        for gone in self.sources.keys() - seen:
            self.forget(gone)
        return build_families(found)


def build_families(found: Sequence[tuple[Target, readings.Reading]]) -> list[Family]:
    """The cAdvisor families for these readings (pure: no I/O)."""
    ns = 1e-9
    cpu_usage = counter(
        "container_cpu_usage_seconds_total", "Cumulative cpu time consumed in seconds."
    )
    cpu_user = counter(
        "container_cpu_user_seconds_total", "Cumulative user cpu time consumed in seconds."
    )
    cpu_system = counter(
        "container_cpu_system_seconds_total", "Cumulative system cpu time consumed in seconds."
    )
    periods = counter(
        "container_cpu_cfs_periods_total", "Number of elapsed enforcement period intervals."
    )
    thr_periods = counter(
        "container_cpu_cfs_throttled_periods_total", "Number of throttled period intervals."
    )
    thr_seconds = counter(
        "container_cpu_cfs_throttled_seconds_total",
        "Total time duration the container has been throttled.",
    )
    mem_usage = gauge(
        "container_memory_usage_bytes",
        "Current memory usage in bytes, including all memory regardless of when it was accessed",
    )
    mem_ws = gauge("container_memory_working_set_bytes", "Current working set in bytes.")
    mem_rss = gauge("container_memory_rss", "Size of RSS in bytes.")
    mem_cache = gauge("container_memory_cache", "Number of bytes of page cache memory.")
    mem_fail = gauge("container_memory_failcnt", "Number of memory usage hits limits")
    spec_mem = gauge(
        "container_spec_memory_limit_bytes", "Memory limit for the container (0: unlimited)."
    )
    spec_quota = gauge("container_spec_cpu_quota", "CPU quota of the container.")
    spec_period = gauge("container_spec_cpu_period", "CPU period of the container.")
    net = {
        key: counter(
            f"container_network_{direction}_{what}_total", f"Cumulative count of {doc} {verb}"
        )
        for key, direction, what, doc, verb in (
            ("rx_bytes", "receive", "bytes", "bytes", "received"),
            ("rx_packets", "receive", "packets", "packets", "received"),
            ("rx_errors", "receive", "errors", "errors encountered while", "receiving"),
            ("rx_dropped", "receive", "packets_dropped", "packets dropped while", "receiving"),
            ("tx_bytes", "transmit", "bytes", "bytes", "transmitted"),
            ("tx_packets", "transmit", "packets", "packets", "transmitted"),
            ("tx_errors", "transmit", "errors", "errors encountered while", "transmitting"),
            ("tx_dropped", "transmit", "packets_dropped", "packets dropped while", "transmitting"),
        )
    }  # fmt: skip
    fs_rb = counter("container_fs_reads_bytes_total", "Cumulative count of bytes read")
    fs_wb = counter("container_fs_writes_bytes_total", "Cumulative count of bytes written")
    start = gauge(
        "container_start_time_seconds", "Start time of the container since unix epoch in seconds."
    )
    seen = gauge("container_last_seen", "Last time a container was seen by the exporter")
    oom = counter(
        "container_oom_events_total", "Count of out of memory events observed for the container"
    )
    tasks = gauge("container_tasks_state", "Number of tasks in given state")

    for t, r in found:
        lb = target_block(t)
        s = r.cgroup
        if s.cpu_usage_ns is not None:
            cpu_usage.add(lb, s.cpu_usage_ns * ns, 'cpu="total"')
        if s.cpu_user_ns is not None:
            cpu_user.add(lb, s.cpu_user_ns * ns)
        if s.cpu_system_ns is not None:
            cpu_system.add(lb, s.cpu_system_ns * ns)
        if s.cpu_quota is not None:
            periods.add(lb, s.cpu_periods)
            thr_periods.add(lb, s.cpu_throttled_periods)
            thr_seconds.add(lb, s.cpu_throttled_ns * ns)
            spec_quota.add(lb, s.cpu_quota)
        if s.cpu_period is not None:
            spec_period.add(lb, s.cpu_period)
        if s.memory_usage is not None:
            mem_usage.add(lb, s.memory_usage)
            mem_ws.add(lb, s.working_set or 0)
        mem_rss.add(lb, s.rss)
        mem_cache.add(lb, s.cache)
        mem_fail.add(lb, s.memory_failcnt)
        spec_mem.add(lb, s.memory_limit or 0)
        for iface, dev in sorted(r.networks.items()):
            il = label("interface", iface)
            for key, fam in net.items():
                fam.add(lb, getattr(dev, key), il)
        for majmin, io in sorted(s.io.items()):
            dl = label("device", device_name(majmin))
            fs_rb.add(lb, io.read_bytes, dl)
            fs_wb.add(lb, io.write_bytes, dl)
        started = rfc3339_seconds(t.started_at)
        if started is not None:
            start.add(lb, started)
        seen.add(lb, r.read_at)
        oom.add(lb, s.oom_kills)
        for state in TASK_STATES:
            tasks.add(lb, r.tasks.get(state, 0), _STATE[state])

    families: list[Family] = [
        cpu_usage, cpu_user, cpu_system, periods, thr_periods, thr_seconds,
        mem_usage, mem_ws, mem_rss, mem_cache, mem_fail,
        spec_mem, spec_quota, spec_period, *net.values(),
        fs_rb, fs_wb, start, seen, oom, tasks,
    ]  # fmt: skip
    return families
