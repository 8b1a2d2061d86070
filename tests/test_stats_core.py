"""`docker stats` arithmetic and shape, without a daemon: the API's JSON from a reading,
and the CLI's row from two of them (the docker CLI's formulas)."""

from __future__ import annotations

from metrics.procfs import NetDev
from metrics.readings import Reading
from supervisor.api.handlers.stats import Sample, stats_json
from supervisor.cli.stats import cpu_percent, memory_usage, render, row
from supervisor.runtime import cgroups

MiB = 1 << 20


def _sample(cpu_ns: int, system_ns: int, *, v2: bool = False, at: float = 10.0) -> Sample:
    cg = cgroups.CgroupStats(
        cpu_usage_ns=cpu_ns, cpu_user_ns=cpu_ns // 2, cpu_system_ns=cpu_ns // 2,
        memory_usage=10 * MiB, memory_limit=None, pids=3,
        memory_stat={"inactive_file" if v2 else "total_inactive_file": 2 * MiB},
        io={"8:0": cgroups.IoDevice(read_bytes=4096, write_bytes=1_000_000)},
    )  # fmt: skip
    nets = {"eth0": NetDev(rx_bytes=1500, tx_bytes=700), "eth1": NetDev(rx_bytes=500)}
    return Sample(Reading(cg, nets, {}, at), system_ns, 2, 64 * MiB, v2)


def test_stats_json_has_what_the_docker_cli_reads() -> None:
    pre = _sample(1_000_000_000, 100_000_000_000, at=10.0)
    cur = _sample(1_500_000_000, 102_000_000_000, at=11.0)
    out = stats_json("abc", "web", cur, pre)
    assert out["name"] == "/web" and out["id"] == "abc"
    assert out["cpu_stats"]["cpu_usage"]["total_usage"] == 1_500_000_000
    assert out["precpu_stats"]["system_cpu_usage"] == 100_000_000_000
    assert out["cpu_stats"]["online_cpus"] == 2
    assert out["memory_stats"]["limit"] == 64 * MiB  # unlimited: the host's memory
    assert out["pids_stats"] == {"current": 3}
    ops = {e["op"]: e["value"] for e in out["blkio_stats"]["io_service_bytes_recursive"]}
    assert ops == {"Read": 4096, "Write": 1_000_000}  # v1 spells them as Docker's v1 does
    assert out["networks"]["eth0"]["rx_bytes"] == 1500
    assert out["read"].startswith("1970-01-01T00:00:11")


def test_a_stopped_container_reads_as_zeros() -> None:
    out = stats_json("abc", "web", Sample(None, 5, 2, 64 * MiB, False), None)
    assert out["read"] == "0001-01-01T00:00:00Z"
    assert out["memory_stats"] == {} and out["pids_stats"] == {}
    r = row(out, None, no_trunc=False)
    assert r["CPUPerc"] == "0.00%" and r["MemUsage"] == "0B / 0B" and r["PIDs"] == "0"


def test_cli_row_uses_the_docker_formulas() -> None:
    pre = stats_json("0123456789abcdef", "web", _sample(1_000_000_000, 100_000_000_000), None)
    cur = stats_json("0123456789abcdef", "web", _sample(1_500_000_000, 102_000_000_000), None)
    # 0.5 s of CPU over 2 s of host time on 2 CPUs = 50%
    assert cpu_percent(cur, pre) == 50.0
    assert cpu_percent(cur, None) == 0.0
    assert memory_usage(cur) == 8 * MiB  # usage minus inactive file pages
    r = row(cur, pre, no_trunc=False)
    assert r == {
        "Container": "0123456789ab", "ID": "0123456789ab", "Name": "web", "CPUPerc": "50.00%",
        "MemUsage": "8MiB / 64MiB", "MemPerc": "12.50%", "NetIO": "2kB / 700B",
        "BlockIO": "4.1kB / 1MB", "PIDs": "3",
    }  # fmt: skip
    assert row(cur, pre, no_trunc=True)["Container"] == "0123456789abcdef"


def test_v2_memory_and_io_spelling() -> None:
    cur = stats_json("abc", "web", _sample(1, 1, v2=True), None)
    assert memory_usage(cur) == 8 * MiB
    assert {e["op"] for e in cur["blkio_stats"]["io_service_bytes_recursive"]} == {
        "read",
        "write",
    }
    assert "max_usage" not in cur["memory_stats"]


def test_table_has_dockers_columns() -> None:
    cur = stats_json("abc", "web", _sample(1, 1), None)
    head = render([row(cur, None, False)], None).splitlines()[0].split()
    assert " ".join(head) == (
        "CONTAINER ID NAME CPU % MEM USAGE / LIMIT MEM % NET I/O BLOCK I/O PIDS"
    )
    assert render([row(cur, None, False)], "{{.Name}} {{.PIDs}}") == "web 3\n"
