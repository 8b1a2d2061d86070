"""`corral compose` with real containers: up, up again, recreate, scale, orphans, down."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from conftest import Daemon

PROJECT = "com.docker.compose.project"

BASE = """\
name: demo
services:
  db:
    image: busybox
    command: [sh, -c, 'echo db ready; exec sleep 1000']
    stop_grace_period: 1s
    volumes: [data:/data]
  web:
    image: busybox
    command: [sh, -c, 'echo web $$GREETING; exec sleep 1000']
    environment: {GREETING: hello}
    stop_grace_period: 1s
    scale: 2
    depends_on: [db]
volumes:
  data:
"""


def write(tmp: Path, text: str, name: str = "compose.yaml") -> str:
    path = tmp / name
    path.write_text(text)
    return str(path)


def ids(dk: Any) -> dict[str, str]:
    """container name → id, for the demo project."""
    found = dk.containers.list(all=True, filters={"label": f"{PROJECT}=demo"})
    return {c.name: c.id for c in found}


def up(corral: Daemon, file: str, *extra: str) -> Any:
    r = corral.cli("compose", "-f", file, "up", "-d", *extra)
    assert r.returncode == 0, r.stderr
    return r


def test_up_names_labels_and_a_second_up_touches_nothing(
    corral: Daemon, dk: Any, tmp_path: Path
) -> None:
    file = write(tmp_path, BASE)
    up(corral, file)
    first = ids(dk)
    assert sorted(first) == ["demo-db-1", "demo-web-1", "demo-web-2"]
    web2 = dk.containers.get("demo-web-2")
    labels = web2.labels
    assert labels[PROJECT] == "demo"
    assert labels["com.docker.compose.service"] == "web"
    assert labels["com.docker.compose.container-number"] == "2"
    assert labels["com.docker.compose.oneoff"] == "False"
    assert labels["com.docker.compose.project.config_files"] == file
    assert labels["com.docker.compose.project.working_dir"] == str(tmp_path)
    hashes = corral.cli("compose", "-f", file, "config", "--hash", "web").stdout.split()
    assert labels["com.docker.compose.config-hash"] == hashes[1]
    assert web2.status == "running"
    assert [v.name for v in dk.volumes.list()] == ["demo_data"]

    again = up(corral, file)
    assert ids(dk) == first
    assert "Created" not in again.stderr and "Recreated" not in again.stderr

    logs = corral.cli("compose", "-f", file, "logs", "--no-color")
    assert logs.returncode == 0, logs.stderr
    lines = sorted(logs.stdout.splitlines())
    assert lines == ["demo-db-1  | db ready", "demo-web-1 | web hello", "demo-web-2 | web hello"]

    ps = corral.cli("compose", "-f", file, "ps")
    assert [row.split()[0] for row in ps.stdout.splitlines()[1:]] == [
        "demo-db-1",
        "demo-web-1",
        "demo-web-2",
    ]
    down = corral.cli("compose", "-f", file, "down", "-v")
    assert down.returncode == 0, down.stderr
    assert ids(dk) == {}
    assert dk.volumes.list() == []


def test_a_changed_service_alone_is_recreated_and_scale_keeps_low_numbers(
    corral: Daemon, dk: Any, tmp_path: Path
) -> None:
    file = write(tmp_path, BASE)
    up(corral, file)
    before = ids(dk)
    write(tmp_path, BASE.replace("GREETING: hello", "GREETING: bonjour"))
    up(corral, file)
    after = ids(dk)
    assert after["demo-db-1"] == before["demo-db-1"]
    assert after["demo-web-1"] != before["demo-web-1"]
    assert after["demo-web-2"] != before["demo-web-2"]
    env = dk.containers.get("demo-web-1").attrs["Config"]["Env"]
    assert "GREETING=bonjour" in env

    up(corral, file, "--scale", "web=4")
    assert sorted(ids(dk)) == ["demo-db-1", "demo-web-1", "demo-web-2", "demo-web-3", "demo-web-4"]
    up(corral, file, "--scale", "web=1")
    assert sorted(ids(dk)) == ["demo-db-1", "demo-web-1"]
    assert ids(dk)["demo-web-1"] == after["demo-web-1"]
    corral.cli("compose", "-f", file, "down", "-v", check=True)


def test_orphans_are_reported_then_removed_on_request(
    corral: Daemon, dk: Any, tmp_path: Path
) -> None:
    file = write(tmp_path, BASE)
    up(corral, file)
    only_db = BASE.split("  web:")[0] + "volumes:\n  data:\n"
    write(tmp_path, only_db)
    r = up(corral, file)
    assert "Found orphan containers" in r.stderr and "demo-web-1" in r.stderr
    assert len(ids(dk)) == 3
    up(corral, file, "--remove-orphans")
    assert sorted(ids(dk)) == ["demo-db-1"]
    # the top-level shortcut, with -p after the verb
    down = corral.cli("down", "-f", file, "-v", "-p", "demo")
    assert down.returncode == 0, down.stderr
    assert ids(dk) == {}


def test_an_invalid_file_starts_nothing(corral: Daemon, dk: Any, tmp_path: Path) -> None:
    good = write(tmp_path, BASE, "a.yaml")
    typo = write(tmp_path, "services:\n  web:\n    imagee: busybox\n", "b.yaml")
    port = write(tmp_path, "services:\n  web:\n    ports: ['80:80:80:80']\n", "c.yaml")
    r = corral.cli("compose", "-f", good, "-f", typo, "-f", port, "up", "-d")
    assert r.returncode == 1
    assert "b.yaml:3:5: services.web: unknown key 'imagee' (did you mean 'image'?)" in r.stderr
    assert "c.yaml:3:13: invalid port '80:80:80:80'" in r.stderr
    assert dk.containers.list(all=True) == []
    assert dk.volumes.list() == []


def test_missing_image_and_failed_dependency_exit_non_zero(
    corral: Daemon, dk: Any, tmp_path: Path
) -> None:
    # a missing image is pulled now (tests/test_distribution_pull.py); one that may not
    # be pulled fails `up` naming the service and the image, nothing made
    file = write(tmp_path, "services:\n  a:\n    image: nosuch:1\n    pull_policy: never\n")
    r = corral.cli("compose", "-f", file, "-p", "demo", "up", "-d")
    assert r.returncode == 1
    assert 'service "a"' in r.stderr and "nosuch:1" in r.stderr
    assert dk.containers.list(all=True) == []

    file = write(
        tmp_path,
        (
            "name: demo\nservices:\n  migrate:\n    image: busybox\n"
            "    command: [sh, -c, 'exit 3']\n"
            "  app:\n    image: busybox\n    command: [sleep, '1000']\n    depends_on:\n"
            "      migrate: {condition: service_completed_successfully}\n"
        ),
    )
    r = corral.cli("compose", "-f", file, "up", "-d")
    assert r.returncode == 1
    assert 'service "migrate" didn\'t complete successfully: exit 3' in r.stderr
    assert "demo-app-1" not in ids(dk)
    corral.cli("compose", "-f", file, "down", check=True)


def test_foreground_up_streams_prefixed_logs_until_the_containers_end(
    corral: Daemon, dk: Any, tmp_path: Path
) -> None:
    file = write(
        tmp_path,
        (
            "name: demo\nservices:\n  one:\n    image: busybox\n    command: [echo, first]\n"
            "  three:\n    image: busybox\n    command: [echo, third]\n"
        ),
    )
    r = corral.cli("up", "-f", file, "--no-color")
    assert r.returncode == 0, r.stderr
    assert sorted(r.stdout.splitlines()) == ["demo-one-1   | first", "demo-three-1 | third"]
    corral.cli("down", "-f", file, check=True)


def test_ps_format_is_composes(corral: Daemon, tmp_path: Path) -> None:
    """`compose ps --format`: compose's rows (Name, Service, Project, Publishers...),
    one JSON object a line, custom templates and tables, errors in docker's words."""
    import json

    file = write(tmp_path, "name: fmt\nservices:\n  app:\n    image: busybox\n"
                           "    command: [sleep, '1000']\n    stop_grace_period: 1s\n"
                           "    ports: ['18081:80']\n    labels: {tier: web}\n")
    up(corral, file)
    ps = corral.cli("compose", "-f", file, "ps", "--format", "json")
    assert ps.returncode == 0, ps.stderr
    row = json.loads(ps.stdout)
    assert sorted(row) == ["Command", "CreatedAt", "ExitCode", "Health", "ID", "Image",
                           "Labels", "LocalVolumes", "Mounts", "Name", "Names", "Networks",
                           "Ports", "Project", "Publishers", "RunningFor", "Service", "Size",
                           "State", "Status"]
    assert (row["Name"], row["Service"], row["Project"], row["ExitCode"]) == (
        "fmt-app-1", "app", "fmt", 0)
    assert row["Publishers"] == [{"URL": "0.0.0.0", "TargetPort": 80, "PublishedPort": 18081,
                                  "Protocol": "tcp"}]
    table = corral.cli("compose", "-f", file, "ps", "--format",
                       'table {{.Name}}\t{{.Service}}\t{{.Label "tier"}}')
    assert table.stdout == "NAME        SERVICE   tier\nfmt-app-1   app       web\n"
    bad = corral.cli("compose", "-f", file, "ps", "--format", "{{.Nope")
    assert (bad.returncode, bad.stdout, bad.stderr) == (
        1, "", "corral: template parsing error: template: :1: unclosed action\n")
    assert corral.cli("compose", "-f", file, "down").returncode == 0
