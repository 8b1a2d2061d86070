"""The exporter's pure cores: cgroup and procfs parsers, label rules, event bookkeeping,
and the families built from readings (checked by parsing the exposition back)."""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_parse,
)
from prometheus_client.parser import text_string_to_metric_families

from metrics.containers import Target, build_families, rfc3339_seconds
from metrics.families import (
    Family,
    container_labels,
    counter,
    label_block,
    render,
    sanitize_label_name,
)
from metrics.procfs import NetDev, parse_net_dev, system_cpu_ns, task_state
from metrics.readings import Reading
from metrics.supervisor import Bookkeeping, Record, event_action
from metrics.supervisor import build_families as supervisor_families
from supervisor.runtime import cgroups

NET_DEV = """\
Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     100       2    0    0    0     0          0         0      100       2    0    0    0     0       0          0
  eth0:    1500      10    1    2    0     0          0         0      700       5    3    4    0     0       0          0
"""  # noqa: E501


def test_net_dev_skips_loopback_and_reads_both_directions() -> None:
    assert parse_net_dev(NET_DEV) == {"eth0": NetDev(1500, 10, 1, 2, 700, 5, 3, 4)}
    assert set(parse_net_dev(NET_DEV, skip_loopback=False)) == {"lo", "eth0"}


def test_task_state_reads_the_letter_after_a_comm_with_spaces() -> None:
    assert task_state("42 (my (odd) proc) S 1 42 42 0") == "sleeping"
    assert task_state("7 (sh) R 1") == "running"
    assert task_state("7 (sh) D 1") == "uninterruptible"
    assert task_state("7 (sh) Z 1") is None  # zombies are in no cAdvisor state


def test_blkio_v1_and_io_stat_v2() -> None:
    io: dict[str, cgroups.IoDevice] = {}
    cgroups.parse_blkio_v1("8:0 Read 4096\n8:0 Write 512\n8:0 Sync 1\n8:0 Total 4608\n"
                           "Total 4608\n", io, "bytes")  # fmt: skip
    cgroups.parse_blkio_v1("8:0 Read 2\n8:0 Write 1\n", io, "ops")
    assert io == {"8:0": cgroups.IoDevice(4096, 512, 2, 1)}
    v2 = cgroups.parse_io_stat_v2("259:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n")
    assert v2 == {"259:0": cgroups.IoDevice(10, 20, 1, 2)}


def test_cpu_max_and_keyed_files() -> None:
    assert cgroups.parse_cpu_max("max 100000\n") == (None, 100000)
    assert cgroups.parse_cpu_max("50000 100000\n") == (50000, 100000)
    assert cgroups.parse_keyed("nr_periods 3\nthrottled_time 9\nbad\n") == {
        "nr_periods": 3,
        "throttled_time": 9,
    }


def test_working_set_is_usage_minus_inactive_file_never_negative() -> None:
    s = cgroups.CgroupStats(memory_usage=1000, inactive_file=300)
    assert s.working_set == 700
    assert cgroups.CgroupStats(memory_usage=100, inactive_file=300).working_set == 0


def test_system_cpu_counts_the_first_seven_fields() -> None:
    import os

    tck = os.sysconf("SC_CLK_TCK")
    text = "cpu  1 2 3 4 5 6 7 8 9 10\ncpu0 1 1 1 1 1 1 1 0 0 0\n"
    assert system_cpu_ns(text) == 28 * 1_000_000_000 // tck


def test_label_names_are_sanitized_like_cadvisor() -> None:
    assert sanitize_label_name("com.docker.compose.project") == "com_docker_compose_project"
    assert sanitize_label_name("9lives") == "_9lives"
    labels = container_labels({"com.docker.compose.service": "web", "a-b": "1", "a.b": "2"})
    assert labels == {
        "container_label_com_docker_compose_service": "web",
        "container_label_a_b": "1",  # "a-b" sorts first; the clashing "a.b" is dropped
    }


def test_rfc3339_seconds() -> None:
    assert rfc3339_seconds("1970-01-01T00:00:10.5Z") == 10.5
    assert rfc3339_seconds("0001-01-01T00:00:00Z") is None


def test_event_action_keeps_the_label_bounded() -> None:
    assert event_action("health_status: healthy") == "health_status"
    assert event_action("exec_create: sh -c echo hi") == "exec_create"
    assert event_action("start") == "start"


def test_restarts_survive_a_user_start_and_vanish_on_destroy() -> None:
    book = Bookkeeping()
    assert book.on_container_event("create", "c1", 1_000_000_000, 0) is None
    took = book.on_container_event("start", "c1", 1_250_000_000, 0)
    assert took == 0.25  # create-to-running, once
    book.on_container_event("start", "c1", 3_000_000_000, 1)  # policy restart
    book.on_container_event("start", "c1", 4_000_000_000, 2)  # and another
    assert book.restarts["c1"] == 2
    assert book.on_container_event("start", "c1", 5_000_000_000, 0) is None  # user start
    book.on_container_event("start", "c1", 6_000_000_000, 1)  # policy restart again
    assert book.restarts["c1"] == 3  # went on counting: never reset
    book.on_container_event("destroy", "c1", 7_000_000_000, None)
    assert "c1" not in book.restarts


def test_restarts_start_from_the_record_after_a_daemon_restart() -> None:
    book = Bookkeeping()
    book.know("c1", 4)
    book.on_container_event("start", "c1", 1, 5)
    assert book.restarts["c1"] == 5


def _expose(families: Sequence[Family]) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Render as the endpoint does and read it back with prometheus_client's parser."""
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for fam in text_string_to_metric_families(render(families)):
        for s in fam.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def test_openmetrics_names_counters_without_total() -> None:
    fam = counter("x_events_total", "Events.")
    fam.add(label_block({"a": 'q"uo\\te\n'}), 3)
    text = render([fam], openmetrics=True) + "# EOF\n"
    (parsed,) = openmetrics_parse(text)  # type: ignore[no-untyped-call]
    assert parsed.name == "x_events" and parsed.type == "counter"
    assert parsed.samples[0].labels == {"a": 'q"uo\\te\n'}
    assert "# TYPE x_events_total counter" in render([fam])


def _target(cid: str, labels: dict[str, str]) -> Target:
    return Target(f"/corral/{cid}", f"name-{cid}", "busybox:latest", labels, 0,
                  "2024-01-02T03:04:05.5Z", cid)  # fmt: skip


def test_container_families_carry_cadvisor_names_and_labels() -> None:
    stats = cgroups.CgroupStats(
        cpu_usage_ns=2_500_000_000, cpu_user_ns=2_000_000_000, cpu_system_ns=500_000_000,
        cpu_quota=50000, cpu_period=100000, cpu_throttled_ns=1_000_000_000,
        memory_usage=1000, inactive_file=400, memory_limit=None,
        io={"8:0": cgroups.IoDevice(10, 20, 1, 2)},
    )  # fmt: skip
    reading = Reading(stats, {"eth0": NetDev(rx_bytes=5, tx_bytes=7)}, {"sleeping": 2}, 99.0)
    got = _expose(build_families([(_target("a", {"com.docker.compose.service": "web"}),
                                   reading)]))  # fmt: skip
    ((labels, value),) = got["container_cpu_usage_seconds_total"]
    assert value == 2.5
    assert labels == {
        "id": "/corral/a", "name": "name-a", "image": "busybox:latest", "cpu": "total",
        "container_label_com_docker_compose_service": "web",
    }  # fmt: skip
    assert got["container_cpu_cfs_throttled_seconds_total"][0][1] == 1.0
    assert got["container_memory_working_set_bytes"][0][1] == 600
    assert got["container_spec_memory_limit_bytes"][0][1] == 0  # unlimited, as cAdvisor
    assert got["container_spec_cpu_quota"][0][1] == 50000
    rx = got["container_network_receive_bytes_total"][0]
    assert rx[0]["interface"] == "eth0" and rx[1] == 5
    assert got["container_fs_writes_bytes_total"][0][1] == 20
    assert got["container_start_time_seconds"][0][1] == 1704164645.5
    states = {lb["state"]: v for lb, v in got["container_tasks_state"]}
    assert states == {"sleeping": 2, "running": 0, "stopped": 0, "uninterruptible": 0,
                      "iowait": 0}  # fmt: skip


def test_no_quota_means_no_quota_series() -> None:
    reading = Reading(cgroups.CgroupStats(cpu_usage_ns=1, cpu_period=100000), read_at=1.0)
    got = _expose(build_families([(_target("a", {}), reading)]))
    assert "container_spec_cpu_quota" not in got
    assert "container_spec_cpu_period" in got


def test_supervisor_families_one_state_at_a_time() -> None:
    book = Bookkeeping()
    book.know("a", 3)
    rec = Record("a", {"id": "/corral/a", "name": "x"}, "restarting", 137, "unhealthy",
                 {"stdout": 4, "stderr": 1}, {"stdout": 40, "stderr": 2})  # fmt: skip
    gone = Record("b", {"id": "/corral/b", "name": "y"}, "exited", 0, None, {}, {})
    got = _expose(supervisor_families([rec], book))
    assert got["corral_container_restarts_total"] == [({"id": "/corral/a", "name": "x"}, 3)]
    current = [lb["state"] for lb, v in got["corral_container_state"] if v == 1]
    assert current == ["restarting"]
    assert len(got["corral_container_state"]) == 7
    health = {lb["status"]: v for lb, v in got["corral_container_health_status"]}
    assert health == {"starting": 0, "healthy": 0, "unhealthy": 1}
    assert got["corral_container_last_exit_code"][0][1] == 137
    lines = {lb["stream"]: v for lb, v in got["corral_log_lines_total"]}
    assert lines == {"stdout": 4, "stderr": 1}
    # a container no longer in the records has no series at all
    got2 = _expose(supervisor_families([gone], book))
    assert all(lb["id"] == "/corral/b" for lb, _ in got2["corral_container_state"])
    assert "corral_container_health_status" not in got2
