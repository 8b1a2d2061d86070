"""The daemon's own `process_*` families, as prometheus_client's ProcessCollector
writes them (names, help, order), with the descriptors counted without a listing.

prometheus_client counts `process_open_fds` by listing `/proc/self/fd` at every
scrape: with 1,000 containers the daemon holds ~16,000 descriptors, and that listing
cost ~23 ms of CPU, more than any other single step of a scrape.  Linux (6.2 and
later) gives the count as the size of that directory; a kernel that answers 0 there
is listed as before.  The listing counted the descriptor it read the directory
through; the size does not (one fewer, the true count).
"""

from __future__ import annotations

import os
import resource
from collections.abc import Iterable

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

PROC = "/proc/self"


def open_fds(proc: str = PROC) -> int:
    """The open descriptors of the process behind `proc`: the directory's size, or its
    listing where the kernel reports no size."""
    return os.stat(f"{proc}/fd").st_size or len(os.listdir(f"{proc}/fd"))


def boot_time(stat_text: bytes) -> float:
    for line in stat_text.splitlines():
        if line.startswith(b"btime "):
            return float(line.split()[1])
    return 0.0


class ProcessCollector(Collector):
    """`process_virtual_memory_bytes`, `_resident_memory_bytes`, `_start_time_seconds`,
    `_cpu_seconds_total`, `_open_fds`, `_max_fds` of this process."""

    def __init__(self, registry: CollectorRegistry | None, proc: str = PROC) -> None:
        self._proc = proc
        self._ticks = os.sysconf("SC_CLK_TCK")
        self._pagesize = resource.getpagesize()
        try:
            with open("/proc/stat", "rb") as f:
                self._btime = boot_time(f.read())
        except OSError:
            self._btime = 0.0
        if registry is not None:
            registry.register(self)

    def collect(self) -> Iterable[Metric]:
        if not self._btime:
            return []
        out: list[Metric] = []
        try:
            with open(f"{self._proc}/stat", "rb") as f:
                parts = f.read().split(b")")[-1].split()
            out += [
                GaugeMetricFamily("process_virtual_memory_bytes", "Virtual memory size in bytes.",
                                  value=float(parts[20])),
                GaugeMetricFamily("process_resident_memory_bytes", "Resident memory size in bytes.",
                                  value=float(parts[21]) * self._pagesize),
                GaugeMetricFamily("process_start_time_seconds",
                                  "Start time of the process since unix epoch in seconds.",
                                  value=float(parts[19]) / self._ticks + self._btime),
                CounterMetricFamily("process_cpu_seconds_total",
                                    "Total user and system CPU time spent in seconds.",
                                    value=(float(parts[11]) + float(parts[12])) / self._ticks),
            ]  # fmt: skip
        except OSError:
            pass
        try:
            with open(f"{self._proc}/limits", "rb") as f:
                limit = next((line.split()[3] for line in f if line.startswith(b"Max open file")),
                             None)  # fmt: skip
            fds = GaugeMetricFamily("process_open_fds", "Number of open file descriptors.",
                                    open_fds(self._proc))  # fmt: skip
            out.append(fds)
            if limit is not None:
                out.append(GaugeMetricFamily("process_max_fds",
                                             "Maximum number of open file descriptors.",
                                             value=float(limit)))  # fmt: skip
        except OSError:
            pass
        return out
