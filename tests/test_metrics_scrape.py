"""A scrape's output is byte for byte what it was before its fast paths.

`reference_families` is the container collector as it stood before lines were built
from cached prefixes (one `Family.add` per sample); every fixture shape (quota or not,
several interfaces and devices, a pod, labels needing escapes, CPU missing) must render
the same through both.  The held /proc descriptors of a `readings.Source` are checked
against a real process: read while it runs, nothing (not a reused pid) once it is gone.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path

import pytest
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    disable_created_metrics,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from metrics import readings
from metrics.containers import (
    ContainerCollector,
    Target,
    build_families,
    rfc3339_seconds,
    target_block,
)
from metrics.families import Family, cached_block, counter, gauge, label, render
from metrics.procfs import TASK_STATES, NetDev, device_name, task_states
from metrics.registry_text import fast_encoder
from metrics.supervisor import HEALTH_STATES, STATES, Bookkeeping, Record
from metrics.supervisor import build_families as supervisor_families
from supervisor.pods.labels import POD_LABEL
from supervisor.runtime import cgroups
from supervisor.runtime.fds import OwnedFd

_STATE = {s: label("state", s) for s in TASK_STATES}
_SUP_STATE = {s: label("state", s) for s in STATES}
_SUP_HEALTH = {h: label("status", h) for h in HEALTH_STATES}
_SUP_STREAM = {s: label("stream", s) for s in ("stdout", "stderr")}


def _fixture() -> list[tuple[Target, readings.Reading]]:
    full = cgroups.CgroupStats(
        cpu_usage_ns=2_500_000_001, cpu_user_ns=2_000_000_000, cpu_system_ns=500_000_001,
        cpu_quota=50000, cpu_period=100000, cpu_periods=7, cpu_throttled_periods=3,
        cpu_throttled_ns=1_234_567_891, memory_usage=10_000, inactive_file=400,
        memory_limit=1 << 30, memory_failcnt=2, rss=123, cache=456, oom_kills=1,
        io={"8:0": cgroups.IoDevice(10, 20, 1, 2), "253:1": cgroups.IoDevice(0, 5, 0, 1)},
    )  # fmt: skip
    bare = cgroups.CgroupStats(cpu_period=100000)  # no CPU, no memory usage, no quota
    nets = {"eth1": NetDev(1, 2, 3, 4, 5, 6, 7, 8), "eth0": NetDev(rx_bytes=9, tx_bytes=10)}
    odd = {"a.b/c": 'q"uo\\te\nx', "9lives": "x", POD_LABEL: "web-pod"}
    return [
        (Target("/corral/a", "a", "busybox:latest", {"com.docker.compose.service": "web"},
                10, "2024-01-02T03:04:05.123456789Z", "a"),
         readings.Reading(full, nets, {"sleeping": 2, "running": 1}, 1764594000.123456)),
        (Target("/corral/b", "b\\n", "img@sha256:00", odd, 11, "0001-01-01T00:00:00Z", "b"),
         readings.Reading(bare, {}, {}, 5.0)),
        (Target("/corral/c", "c", "alpine", {}, 12, "", "c"),
         readings.Reading(cgroups.CgroupStats(cpu_usage_ns=1, memory_usage=0), read_at=0.5)),
    ]  # fmt: skip


def test_the_fast_writer_renders_what_the_reference_does() -> None:
    found = _fixture()
    for openmetrics in (False, True):
        got = render(build_families(found), openmetrics)
        assert got == render(reference_families(found), openmetrics)
    assert 'container_cpu_cfs_throttled_seconds_total{id="/corral/a"' in got
    assert render(build_families([])) == ""


def test_a_held_init_stat_reads_while_it_runs_and_not_after() -> None:
    proc = subprocess.Popen(["sleep", "60"])
    try:
        held = OwnedFd.open(f"/proc/{proc.pid}/stat", os.O_RDONLY, "stat")
        try:
            assert sum(task_states([proc.pid], proc.pid, held).values()) == 1
            assert sum(task_states([proc.pid], proc.pid, held).values()) == 1  # pread again
            proc.kill()
            proc.wait()
            assert sum(task_states([proc.pid], proc.pid, held).values()) == 0
        finally:
            held.close()
    finally:
        proc.kill()
        proc.wait()


def test_a_source_reads_its_netns_and_init_through_held_descriptors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process in a netns of its own with a veth pair in it (all go with it)."""
    script = "ip link add d0 type veth peer name d1 && echo ok && exec sleep 60"
    proc = subprocess.Popen(["unshare", "-n", "sh", "-c", script], stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"ok\n"
        monkeypatch.setattr(cgroups, "CGROUP_ROOT", tmp_path)
        d = tmp_path / "corral/abc"
        d.mkdir(parents=True)
        for name, text in (("cpu.stat", "usage_usec 5\n"), ("cpu.max", "max 100000\n"),
                           ("memory.max", "max\n"), ("memory.current", "1\n"),
                           ("cgroup.threads", f"{proc.pid}\n")):  # fmt: skip
            (d / name).write_text(text)
        before = len(os.listdir("/proc/self/fd"))
        source = readings.Source.open("/corral/abc", proc.pid, cgroups.Layout(True), None)
        assert source is not None
        try:  # the cgroup files there, /proc/<pid>/net/dev and /proc/<pid>/stat
            assert len(os.listdir("/proc/self/fd")) == before + source.cgroup.descriptors + 2
            got = source.read()
            assert got is not None and set(got.networks) == {"d0", "d1"}
            assert sum(got.tasks.values()) == 1
            (d / "cgroup.threads").write_text(f"{proc.pid}\n{os.getpid()}\n")  # opened by path
            got = source.read()
            assert got is not None and sum(got.tasks.values()) == 2
        finally:
            source.close()
        assert len(os.listdir("/proc/self/fd")) == before  # net/dev and stat closed too
    finally:
        proc.kill()
        proc.wait()


def _without_last_seen(text: str) -> str:
    return "".join(ln for ln in text.splitlines(keepends=True) if "last_seen" not in ln)


def test_a_scrape_writes_the_reference_lines_and_never_a_kept_stale_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An idle container's lines are kept between scrapes: a changed file, a new run
    (another init) and a removal must each show at the next scrape."""
    monkeypatch.setattr(cgroups, "CGROUP_ROOT", tmp_path)
    monkeypatch.setattr(cgroups, "layout", lambda: cgroups.Layout(True))  # this host's mount
    d = tmp_path / "corral/abc"
    d.mkdir(parents=True)
    procs = [subprocess.Popen(["sleep", "60"]) for _ in range(2)]
    col = ContainerCollector(lambda: [])
    try:
        for p in procs:  # stopped, and waited on: a state that does not change by itself
            os.kill(p.pid, signal.SIGSTOP)
            os.waitid(os.P_PID, p.pid, os.WSTOPPED | os.WNOWAIT)
        for name, text in (("cpu.stat", "usage_usec 5\n"), ("cpu.max", "max 100000\n"),
                           ("memory.max", "max\n"), ("memory.current", "1\n"),
                           ("cgroup.threads", f"{procs[0].pid}\n")):  # fmt: skip
            (d / name).write_text(text)
        t = Target("/corral/abc", "web", "busybox", {"a": "1"}, procs[0].pid,
                   "2026-12-02T10:00:00Z", "abc")

        def scrape(target: Target) -> str:
            return _without_last_seen(b"".join(col.collect([target])).decode())

        def reference(target: Target) -> str:
            got = readings.Source.open("/corral/abc", target.pid, cgroups.Layout(True),
                                       readings.host_netns())  # fmt: skip
            assert got is not None
            try:
                reading = got.read()
                assert reading is not None
                return _without_last_seen(render(build_families([(target, reading)])))
            finally:
                got.close()

        first = scrape(t)
        assert first == reference(t) and "container_cpu_usage_seconds_total{" in first
        assert scrape(t) == first  # the kept lines
        (d / "cpu.stat").write_text("usage_usec 7000000\n")
        changed = scrape(t)
        assert changed == reference(t) and '} 7.0\n' in changed

        (d / "cgroup.threads").write_text(f"{procs[1].pid}\n")  # a new run, the same files
        again = Target(**{**t.__dict__, "pid": procs[1].pid,
                          "started_at": "2026-12-02T11:00:00Z"})  # fmt: skip
        restarted = scrape(again)
        assert restarted == reference(again) and restarted != changed
        assert col.sources["abc"].pid == procs[1].pid

        assert col.collect([]) == [] and col.sources == {}  # removed: nothing, all closed
    finally:
        for cid in list(col.sources):
            col.forget(cid)
        for p in procs:
            p.kill()
            p.wait()


class _Process(Collector):
    def collect(self) -> Iterable[Metric]:
        yield CounterMetricFamily("process_cpu_seconds_total", "CPU.", value=1.23)
        yield GaugeMetricFamily("process_resident_memory_bytes", "RSS.", value=52_428_800.0)
        yield GaugeMetricFamily("process_start_time_seconds", "Start.", value=1764594000.12)


def test_the_supervisor_writer_renders_what_the_reference_does() -> None:
    book = Bookkeeping()
    book.know("a", 3)
    records = [
        Record("a", {"id": "/corral/a", "name": "a", "container_label_x": 'q"\\n'}, "running",
               0, "healthy", {"stdout": 10, "stderr": 2}, {"stdout": 100}),
        Record("b", {"id": "/corral/b", "name": "b", "pod": "p"}, "exited", 137, None, {}, {}),
        Record("c", {}, "created", -1, "starting", {}, {"stderr": 5}),
    ]  # fmt: skip
    for openmetrics in (False, True):
        got = render(supervisor_families(records, book), openmetrics)
        assert got == render(reference_supervisor_families(records, book), openmetrics)
    assert 'corral_container_restarts_total{id="/corral/a",name="a"' in got


class _Held:
    pid = 1
    closed = False

    def close(self) -> None:
        self.closed = True


def test_a_container_forgotten_during_a_scrape_is_closed_once_the_worker_returns() -> None:
    """The worker owns the held files while it reads: an exit event meanwhile waits."""
    col = ContainerCollector(lambda: [])
    held = _Held()
    col.sources["a"] = held  # type: ignore[assignment]
    col.begin()
    col.forget("a")  # the event listener, on the trio thread, mid-scrape
    assert not held.closed and "a" in col.sources
    col.done()
    assert held.closed and not col.sources
    col.forget("a")  # between scrapes: at once (nothing left to close)


def _registry() -> CollectorRegistry:
    """The kinds the exporter's registry holds, with label values needing escapes."""
    disable_created_metrics()  # type: ignore[no-untyped-call]
    reg = CollectorRegistry(auto_describe=False)
    reg.register(_Process())  # ProcessCollector's families, fixed values
    Info("x_build", "Build.", registry=reg).info({"version": '1.0"\\', "runtime": "runc"})
    h = Histogram("x_seconds", "Durations\nwith a \\ and \"quotes\".", ["method", "route"],
                  buckets=(0.001, 0.25, 1.0, 2.5, 1e7), registry=reg)  # fmt: skip
    for i, v in enumerate((0.0005, 0.3, 5.0, 123456789.0)):
        h.labels("GET", f'/r/{i}\n"x"').observe(v)
    c = Counter("x_requests_total", "Requests.", ["code"], registry=reg)
    c.labels("200").inc(3.5)
    c.labels("404")
    Gauge("x_level", "Level.", registry=reg).set(float("nan"))
    Gauge("x_inf", "Inf.", registry=reg).set(float("inf"))
    return reg


def test_the_registry_writer_writes_what_prometheus_client_does() -> None:
    reg = _registry()
    for accept in ("", "text/plain", "text/plain; version=1.0.0",
                   "application/openmetrics-text; version=1.0.0",
                   "application/openmetrics-text"):  # fmt: skip
        encoder, _ = choose_encoder(accept)
        fast = fast_encoder(encoder)
        assert fast is not encoder, accept  # the kept-labels writer is the one used
        assert fast(reg) == encoder(reg), accept
    # another escaping: prometheus_client's own writer
    other, _ = choose_encoder("application/openmetrics-text; version=1.0.0; escaping=allow-utf-8")
    assert fast_encoder(other) is other


def test_a_shape_left_to_prometheus_client_is_still_written() -> None:
    reg = CollectorRegistry(auto_describe=False)
    Gauge("x_ratio", "Ratio.", unit="ratio", registry=reg).set(1)
    for accept in ("", "application/openmetrics-text; version=1.0.0"):
        encoder, _ = choose_encoder(accept)
        assert fast_encoder(encoder)(reg) == encoder(reg)


def reference_families(found: Sequence[tuple[Target, readings.Reading]]) -> list[Family]:
    """The collector as it was before the prefix cache, one `Family.add` per sample."""
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


def reference_supervisor_families(records: Iterable[Record], book: Bookkeeping) -> list[Family]:
    """The supervisor collector before its prefix cache: one `Family.add` a sample."""
    restarts = counter(
        "corral_container_restarts_total",
        "Restarts by the restart policy since the container was created (never reset).",
    )
    state = gauge("corral_container_state", "1 for the container's current state.")
    health = gauge("corral_container_health_status", "1 for the container's current health status.")
    exit_code = gauge("corral_container_last_exit_code", "Exit code of the container's last run.")
    lines = counter("corral_log_lines_total", "Log lines the container wrote, by stream.")
    nbytes = counter("corral_log_bytes_total", "Log bytes the container wrote, by stream.")
    for r in records:
        lb = cached_block(tuple(r.labels.items()))
        restarts.add(lb, book.restarts.get(r.id, 0))
        for s in STATES:
            state.add(lb, 1 if s == r.status else 0, _SUP_STATE[s])
        if r.health is not None:
            for h in HEALTH_STATES:
                health.add(lb, 1 if h == r.health else 0, _SUP_HEALTH[h])
        exit_code.add(lb, r.exit_code)
        for stream, extra in _SUP_STREAM.items():
            if stream in r.log_lines:
                lines.add(lb, r.log_lines[stream], extra)
            if stream in r.log_bytes:
                nbytes.add(lb, r.log_bytes[stream], extra)
    return [restarts, state, health, exit_code, lines, nbytes]


def test_process_families_are_prometheus_clients_with_open_fds_counted() -> None:
    """The daemon's `process_*` series are prometheus_client's own (names, help, types,
    order); `process_open_fds` is the process's descriptors as the kernel counts them
    (prometheus_client's listing also counted the one it listed through)."""
    from prometheus_client import ProcessCollector as Theirs

    from metrics.process import ProcessCollector, open_fds

    ours, theirs = CollectorRegistry(), CollectorRegistry()
    ProcessCollector(ours)
    Theirs(registry=theirs)

    def shape(registry: CollectorRegistry) -> list[tuple[str, str, str, list[str]]]:
        return [(m.name, m.documentation, m.type, [s.name for s in m.samples])
                for m in registry.collect()]  # fmt: skip

    assert shape(ours) == shape(theirs)
    held = [os.open("/dev/null", os.O_RDONLY) for _ in range(50)]
    try:
        fds = ours.get_sample_value("process_open_fds")
        assert fds == len(os.listdir("/proc/self/fd")) - 1 == open_fds()
    finally:
        for fd in held:
            os.close(fd)
    assert ours.get_sample_value("process_open_fds") == fds - 50
