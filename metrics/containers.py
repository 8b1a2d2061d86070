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
from metrics.families import Family, cached_block, container_labels, label
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
        # container ID -> (target, snapshot, its lines, its last_seen prefix) of the last
        # scrape: kept while the files read the same (dropped with the source).
        self._kept: dict[str, tuple[Target, readings.Snapshot, Row, bytes]] = {}
        self._host_ns: int | None = None
        # While a scrape reads in a worker thread the sources are its own: a `forget()`
        # from the event listener then waits in `_doomed` until `done()`.
        self._busy = False
        self._doomed: set[str] = set()

    def forget(self, container_id: str) -> None:
        """Close a container's files (it exited or was removed; after an update its
        limits are read anew at the next scrape)."""
        if self._busy:
            self._doomed.add(container_id)
        else:
            self._drop(container_id)

    def begin(self) -> None:
        """A scrape's reading is about to run in a worker thread (trio thread)."""
        self._busy = True

    def done(self) -> None:
        """The worker returned (trio thread): close what was forgotten meanwhile."""
        self._busy = False
        doomed, self._doomed = self._doomed, set()
        for container_id in doomed:
            self._drop(container_id)

    def _drop(self, container_id: str) -> None:
        self._kept.pop(container_id, None)
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

    def collect(self, targets: Sequence[Target] | None = None,
                openmetrics: bool = False) -> list[bytes]:  # fmt: skip
        """Read `targets` (default: `self.targets()`, which reads engine state: pass
        them in, gathered on the trio thread, when this runs in a worker): the
        families' exposition text in pieces, for the scrape's one `b"".join`.

        A container whose files read the same bytes as at the last scrape (an idle one:
        most of a fleet) keeps the lines made then, encoded; only `container_last_seen`
        is new."""
        layout: cgroups.Layout | None = None  # mountinfo is read only to open new sources
        rows: list[Row] = []
        seen_lines: list[bytes] = []
        seen = set()
        kept = self._kept
        for t in self.targets() if targets is None else targets:
            cid = t.container_id
            source = self.sources.get(cid)
            if source is not None and source.pid != t.pid:
                self._drop(cid)
                source = None
            if source is None:
                layout = layout or cgroups.layout()
                source = self._open(t, layout)
                if source is None:
                    continue
            snap = source.snapshot()
            if snap is None:  # its cgroup went away: the container is stopping
                self._drop(cid)
                continue
            seen.add(cid)
            last = kept.get(cid)
            if last is not None and last[1] == snap and last[0] == t:
                row, head = last[2], last[3]
            else:
                row = container_row(t, source.reading(snap))
                head = seen_prefix(t).encode()
                kept[cid] = (t, snap, row, head)
            rows.append(row)
            seen_lines.append(b"%b%r\n" % (head, time.time()))
        for gone in self.sources.keys() - seen:
            self._drop(gone)
        return _pieces(rows, seen_lines, openmetrics)


# A scrape writes ~28 lines per container: each is one f-string of a prefix made once per
# container label block (`_prefixes`: `name{block} `) and the value.  Every value here is
# an int or a finite float, which an f-string writes as `Family.add` does (str / repr).
_NET = (
    ("rx_bytes", "receive", "bytes", "bytes", "received"),
    ("rx_packets", "receive", "packets", "packets", "received"),
    ("rx_errors", "receive", "errors", "errors encountered while", "receiving"),
    ("rx_dropped", "receive", "packets_dropped", "packets dropped while", "receiving"),
    ("tx_bytes", "transmit", "bytes", "bytes", "transmitted"),
    ("tx_packets", "transmit", "packets", "packets", "transmitted"),
    ("tx_errors", "transmit", "errors", "errors encountered while", "transmitting"),
    ("tx_dropped", "transmit", "packets_dropped", "packets dropped while", "transmitting"),
)  # fmt: skip
# (key, name, type, help), in exposition order.
_FAMILIES: tuple[tuple[str, str, str, str], ...] = (
    ("cpu_usage", "container_cpu_usage_seconds_total", "counter",
     "Cumulative cpu time consumed in seconds."),
    ("cpu_user", "container_cpu_user_seconds_total", "counter",
     "Cumulative user cpu time consumed in seconds."),
    ("cpu_system", "container_cpu_system_seconds_total", "counter",
     "Cumulative system cpu time consumed in seconds."),
    ("periods", "container_cpu_cfs_periods_total", "counter",
     "Number of elapsed enforcement period intervals."),
    ("thr_periods", "container_cpu_cfs_throttled_periods_total", "counter",
     "Number of throttled period intervals."),
    ("thr_seconds", "container_cpu_cfs_throttled_seconds_total", "counter",
     "Total time duration the container has been throttled."),
    ("mem_usage", "container_memory_usage_bytes", "gauge",
     "Current memory usage in bytes, including all memory regardless of when it was accessed"),
    ("mem_ws", "container_memory_working_set_bytes", "gauge",
     "Current working set in bytes."),
    ("mem_rss", "container_memory_rss", "gauge",
     "Size of RSS in bytes."),
    ("mem_cache", "container_memory_cache", "gauge",
     "Number of bytes of page cache memory."),
    ("mem_fail", "container_memory_failcnt", "gauge",
     "Number of memory usage hits limits"),
    ("spec_mem", "container_spec_memory_limit_bytes", "gauge",
     "Memory limit for the container (0: unlimited)."),
    ("spec_quota", "container_spec_cpu_quota", "gauge",
     "CPU quota of the container."),
    ("spec_period", "container_spec_cpu_period", "gauge",
     "CPU period of the container."),
    *((key, f"container_network_{direction}_{what}_total", "counter",
       f"Cumulative count of {doc} {verb}") for key, direction, what, doc, verb in _NET),
    ("fs_rb", "container_fs_reads_bytes_total", "counter",
     "Cumulative count of bytes read"),
    ("fs_wb", "container_fs_writes_bytes_total", "counter",
     "Cumulative count of bytes written"),
    ("start", "container_start_time_seconds", "gauge",
     "Start time of the container since unix epoch in seconds."),
    ("seen", "container_last_seen", "gauge",
     "Last time a container was seen by the exporter"),
    ("oom", "container_oom_events_total", "counter",
     "Count of out of memory events observed for the container"),
    ("tasks", "container_tasks_state", "gauge",
     "Number of tasks in given state"),
)  # fmt: skip
_SAMPLE = {key: Family(name, doc, typ).sample for key, name, typ, doc in _FAMILIES}
_NET_KEYS = tuple(n[0] for n in _NET)


def _head(sample: str, block: str, extra: str = "") -> str:
    if extra:
        block = f"{block},{extra}" if block else extra
    return f"{sample}{{{block}}} "


@dataclass(frozen=True, slots=True)
class _Prefixes:
    """Every fixed line prefix of one container (its label block), made once."""

    cpu_usage: str
    cpu_user: str
    cpu_system: str
    periods: str
    thr_periods: str
    thr_seconds: str
    mem_usage: str
    mem_ws: str
    mem_rss: str
    mem_cache: str
    mem_fail: str
    spec_mem: str
    spec_quota: str
    spec_period: str
    start: str
    seen: str
    oom: str
    tasks: tuple[str, ...]


@functools.lru_cache(maxsize=8192)
def _prefixes(block: str) -> _Prefixes:
    s = _SAMPLE
    plain = {k: _head(s[k], block) for k in (
        "cpu_user", "cpu_system", "periods", "thr_periods", "thr_seconds", "mem_usage",
        "mem_ws", "mem_rss", "mem_cache", "mem_fail", "spec_mem", "spec_quota",
        "spec_period", "start", "seen", "oom")}  # fmt: skip
    return _Prefixes(cpu_usage=_head(s["cpu_usage"], block, 'cpu="total"'),
                     tasks=tuple(_head(s["tasks"], block, _STATE[st]) for st in TASK_STATES),
                     **plain)  # fmt: skip


@functools.lru_cache(maxsize=16384)
def _net_prefixes(block: str, iface: str) -> tuple[str, ...]:
    il = label("interface", iface)
    return tuple(_head(_SAMPLE[k], block, il) for k in _NET_KEYS)


@functools.lru_cache(maxsize=16384)
def _io_prefixes(block: str, majmin: str) -> tuple[str, str]:
    dl = label("device", device_name(majmin))
    return _head(_SAMPLE["fs_rb"], block, dl), _head(_SAMPLE["fs_wb"], block, dl)


_INDEX = {key: i for i, (key, *_) in enumerate(_FAMILIES)}
_NET_AT = tuple(_INDEX[k] for k in _NET_KEYS)
_I = _INDEX  # short, for the table below
# One container's lines, encoded: a string per family (in `_FAMILIES` order, b"" where it
# has none).
Row = tuple[bytes, ...]


def _pieces(rows: Sequence[Row], seen: list[bytes], openmetrics: bool) -> list[bytes]:
    """The families of these rows (`seen`: `container_last_seen`'s lines), each family's
    HELP/TYPE then its lines.  `zip(*rows)` turns the containers' rows into the
    families' columns in C (a scrape at 1,000 has ~28,000 of these strings); nothing is
    joined here: the scrape's body is one join of every piece (a 5 MB string copied
    once, not once per layer), and a kept row was encoded when it was made."""
    if not rows:
        return []
    heads = _HEADS[openmetrics]
    out: list[bytes] = []
    for i, column in enumerate(zip(*rows, strict=True)):
        lines = seen if i == _SEEN else column
        if any(lines):
            out.append(heads[i])
            out.extend(lines)
    return out


def container_row(t: Target, r: readings.Reading) -> Row:
    """One container's lines by family (all but `container_last_seen`, which changes at
    every scrape: ""): what a scrape keeps while the container's files read the same
    (pure)."""
    ns = 1e-9
    lb = target_block(t)
    p = _prefixes(lb)
    s = r.cgroup
    out: list[tuple[int, str]] = []
    add = out.append
    if s.cpu_usage_ns is not None:
        add((_I["cpu_usage"], f"{p.cpu_usage}{s.cpu_usage_ns * ns}\n"))
    if s.cpu_user_ns is not None:
        add((_I["cpu_user"], f"{p.cpu_user}{s.cpu_user_ns * ns}\n"))
    if s.cpu_system_ns is not None:
        add((_I["cpu_system"], f"{p.cpu_system}{s.cpu_system_ns * ns}\n"))
    if s.cpu_quota is not None:
        add((_I["periods"], f"{p.periods}{s.cpu_periods}\n"))
        add((_I["thr_periods"], f"{p.thr_periods}{s.cpu_throttled_periods}\n"))
        add((_I["thr_seconds"], f"{p.thr_seconds}{s.cpu_throttled_ns * ns}\n"))
        add((_I["spec_quota"], f"{p.spec_quota}{s.cpu_quota}\n"))
    if s.cpu_period is not None:
        add((_I["spec_period"], f"{p.spec_period}{s.cpu_period}\n"))
    if s.memory_usage is not None:
        add((_I["mem_usage"], f"{p.mem_usage}{s.memory_usage}\n"))
        add((_I["mem_ws"], f"{p.mem_ws}{s.working_set or 0}\n"))
    add((_I["mem_rss"], f"{p.mem_rss}{s.rss}\n"))
    add((_I["mem_cache"], f"{p.mem_cache}{s.cache}\n"))
    add((_I["mem_fail"], f"{p.mem_fail}{s.memory_failcnt}\n"))
    add((_I["spec_mem"], f"{p.spec_mem}{s.memory_limit or 0}\n"))
    if r.networks:
        net: list[list[str]] = [[] for _ in _NET_KEYS]
        for iface, dev in sorted(r.networks.items()):
            values = (dev.rx_bytes, dev.rx_packets, dev.rx_errors, dev.rx_dropped,
                      dev.tx_bytes, dev.tx_packets, dev.tx_errors, dev.tx_dropped)  # fmt: skip
            for lines, head, value in zip(net, _net_prefixes(lb, iface), values, strict=True):
                lines.append(f"{head}{value}\n")
        out.extend(zip(_NET_AT, map("".join, net), strict=True))
    if s.io:
        rbs, wbs = [], []
        for majmin, io in sorted(s.io.items()):
            rb, wb = _io_prefixes(lb, majmin)
            rbs.append(f"{rb}{io.read_bytes}\n")
            wbs.append(f"{wb}{io.write_bytes}\n")
        add((_I["fs_rb"], "".join(rbs)))
        add((_I["fs_wb"], "".join(wbs)))
    started = rfc3339_seconds(t.started_at)
    if started is not None:
        add((_I["start"], f"{p.start}{started}\n"))
    add((_I["oom"], f"{p.oom}{s.oom_kills}\n"))
    counts = r.tasks
    tasks = zip(p.tasks, TASK_STATES, strict=True)
    add((_I["tasks"], "".join(f"{head}{counts.get(state, 0)}\n" for head, state in tasks)))
    row = [b""] * len(_FAMILIES)
    for i, text in out:
        row[i] = text.encode()
    return tuple(row)


def seen_prefix(t: Target) -> str:
    """`container_last_seen{...} ` of this container."""
    return _prefixes(target_block(t)).seen


_SEEN = _INDEX["seen"]


def families() -> list[Family]:
    """The cAdvisor families, empty, in exposition order."""
    return [Family(name, doc, typ) for _, name, typ, doc in _FAMILIES]


# Each family's HELP and TYPE lines, encoded, by format (OpenMetrics or not).
_HEADS = {om: tuple(f.head(om).encode() for f in families()) for om in (False, True)}


def build_families(found: Sequence[tuple[Target, readings.Reading]]) -> list[Family]:
    """The cAdvisor families for these readings (pure: no I/O): the lines a scrape
    writes, as `Family`s."""
    fam = families()
    for t, r in found:
        for f, text in zip(fam, container_row(t, r), strict=True):
            if text:
                f.lines.append(text.decode())
    fam[_SEEN].lines = [f"{seen_prefix(t)}{r.read_at}\n" for t, r in found]
    return fam
