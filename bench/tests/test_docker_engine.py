"""Docker as the bench's third engine (issue 18): the table's docker columns and the
best/corral ratio against the faster rival, the scenarios that measure it, and dockerd /
containerd started on private paths only.  No daemon is started: these run anywhere."""

from __future__ import annotations

from pathlib import Path

from bench.engines.docker import containerd_config, daemon_json, dockerd_argv
from bench.registry import all_scenarios
from bench.report import Row, render_table, row_json

HEAD = (
    "| scenario | corral median | corral p95 | podman median | podman p95 | podman/corral"
    " | docker median | docker p95 | best/corral |"
)


def test_table_shows_docker_and_the_ratio_against_the_faster_rival() -> None:
    row = Row("start: x", "s", {"corral": [0.1, 0.1], "podman": [0.4, 0.4], "docker": [0.2, 0.3]})
    lines = render_table([row], with_podman=True, with_docker=True).splitlines()
    assert lines[0] == HEAD
    # docker is the faster rival here: best/corral is docker's 250 ms over corral's 100
    assert (
        lines[2]
        == "| start: x | 100 ms | 100 ms | 400 ms | 400 ms | 4.00x | 250 ms | 300 ms | 2.50x |"
    )


def test_best_is_podman_when_podman_is_faster_and_docker_may_be_missing() -> None:
    faster_podman = Row("a", "s", {"corral": [1.0], "podman": [2.0], "docker": [3.0]})
    no_docker = Row("b", "s", {"corral": [1.0], "podman": [1.5]})
    lines = render_table([faster_podman, no_docker], True, True).splitlines()
    assert lines[2].endswith("| 2.00x | 3.00 s | - | 2.00x |")
    assert lines[3] == "| b | 1.00 s | - | 1.50 s | - | 1.50x | - | - | 1.50x |"


def test_a_rival_that_failed_its_check_is_not_the_best() -> None:
    row = Row(
        "logs: follow",
        "s",
        {"corral": [1.0], "podman": [0.5], "docker": [2.0]},
        verdicts={"corral": "every line once", "podman": "FAIL: 3 missing", "docker": "ok"},
    )
    line = render_table([row], True, True).splitlines()[2]
    assert line.endswith("| 0.50x | 2.00 s (ok) | - | 2.00x |")  # podman/corral stays raw


def test_table_without_podman_still_compares_docker() -> None:
    row = Row("m", "bytes", {"corral": [1024.0], "docker": [4096.0]})
    lines = render_table([row], with_podman=False, with_docker=True).splitlines()
    assert (
        lines[0]
        == "| scenario | corral median | corral p95 | docker median | docker p95 | best/corral |"
    )
    assert lines[2] == "| m | 1 KiB | - | 4 KiB | - | 4.00x |"


def test_floor_reference_row_is_not_taken_for_docker() -> None:
    row = Row("floor: bare runc", "s", {"runc": [0.03]})
    line = render_table([row], True, True).splitlines()[2]
    assert line == "| floor: bare runc | runc 30 ms | - | - | - | - | - | - | - |"


def test_json_has_docker_and_best_ratios() -> None:
    doc = row_json(Row("m", "s", {"corral": [1.0], "podman": [3.0], "docker": [2.0]}))
    assert doc["ratio_podman_over_corral"] == 3.0
    assert doc["ratio_docker_over_corral"] == 2.0
    assert doc["ratio_best_over_corral"] == 2.0


def test_the_core_scenarios_measure_docker_the_others_do_not() -> None:
    measured = {s.name for s in all_scenarios() if s.with_docker}
    assert measured == {"start", "many", "memory", "idle", "logs"}


def test_dockerd_and_containerd_touch_only_private_paths(tmp_path: Path) -> None:
    argv = dockerd_argv(tmp_path, "corral-bench-docker-1")
    flags = dict(zip(argv[1::1], argv[2::1], strict=False))
    for flag in ("--data-root", "--exec-root", "--pidfile", "--config-file", "--containerd"):
        assert flags[flag].startswith(str(tmp_path)), flag
    assert flags["-H"] == f"unix://{tmp_path}/docker.sock"
    assert flags["--cgroup-parent"] == "/corral-bench-docker-1"
    assert {"--bridge=none", "--iptables=false", "--ip-masq=false"} <= set(argv)
    assert daemon_json(tmp_path)["deprecated-key-path"].startswith(str(tmp_path))
    paths = [line.split('"')[1] for line in containerd_config(tmp_path).splitlines() if "/" in line]
    assert len(paths) == 4  # root, state, grpc and ttrpc sockets
    assert all(p.startswith(str(tmp_path)) for p in paths)
