"""`compose up`'s flags and compose's global flags, end to end: --wait (healthy or
running, --wait-timeout), --abort-on-container-exit, --exit-code-from, --no-deps,
--attach/--no-attach, --timeout, --env-file, --parallel, --progress, and the flags
corral refuses by name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from conftest import Daemon

PROJECT = "com.docker.compose.project"

HEALTHY = """\
name: uf
services:
  db:
    image: busybox
    command: [sh, -c, 'sleep 0.3; touch /ready; exec sleep 1000']
    stop_grace_period: 1s
    healthcheck:
      test: [CMD, test, -f, /ready]
      interval: 100ms
      start_interval: 100ms
      start_period: 10s
  web:
    image: busybox
    command: [sleep, '1000']
    stop_grace_period: 1s
    depends_on: [db]
"""


def write(tmp: Path, text: str, name: str = "compose.yaml") -> str:
    path = tmp / name
    path.write_text(text)
    return str(path)


def names(dk: Any) -> list[str]:
    return sorted(c.name for c in dk.containers.list(all=True, filters={"label": f"{PROJECT}=uf"}))


def test_up_wait_returns_once_healthy_and_running(
    corral: Daemon, dk: Any, tmp_path: Path
) -> None:
    file = write(tmp_path, HEALTHY)
    r = corral.cli("compose", "-f", file, "up", "--wait")
    assert r.returncode == 0, r.stderr
    assert "Container uf-db-1  Healthy" in r.stderr
    assert "Container uf-web-1  Running" in r.stderr
    db = dk.containers.get("uf-db-1").attrs["State"]
    assert db["Health"]["Status"] == "healthy"
    corral.cli("compose", "-f", file, "down", check=True)


def test_up_wait_fails_when_a_container_exits(corral: Daemon, dk: Any, tmp_path: Path) -> None:
    file = write(tmp_path, "name: uf\nservices:\n  bad:\n    image: busybox\n"
                           "    command: [sh, -c, 'exit 4']\n"
                           "    healthcheck: {test: [CMD, 'true'], interval: 10s}\n")
    r = corral.cli("compose", "-f", file, "up", "--wait")
    assert r.returncode == 1
    assert "container uf-bad-1 exited (4)" in r.stderr
    corral.cli("compose", "-f", file, "down", check=True)


def test_up_wait_timeout(corral: Daemon, dk: Any, tmp_path: Path) -> None:
    never = HEALTHY.replace("sleep 0.3; touch /ready; ", "")
    file = write(tmp_path, never)
    r = corral.cli("compose", "-f", file, "up", "--wait", "--wait-timeout", "1", "db")
    assert r.returncode == 1
    assert "timeout waiting for the project uf" in r.stderr
    corral.cli("compose", "-f", file, "down", check=True)


JOBS = """\
name: uf
services:
  server:
    image: busybox
    command: [sh, -c, 'echo serving; exec sleep 1000']
    stop_grace_period: 1s
  job:
    image: busybox
    command: [sh, -c, 'echo job done; exit 3']
"""


def test_abort_on_container_exit_stops_the_rest_with_the_exit_code(
    corral: Daemon, dk: Any, tmp_path: Path
) -> None:
    file = write(tmp_path, JOBS)
    r = corral.cli("compose", "-f", file, "up", "--abort-on-container-exit", "--no-color")
    assert r.returncode == 3, r.stderr
    assert "Aborting on container exit..." in r.stderr
    assert "uf-job-1" in r.stdout
    assert {c.name: c.status for c in dk.containers.list(all=True)} == {
        "uf-server-1": "exited", "uf-job-1": "exited"
    }


def test_exit_code_from_names_the_service(corral: Daemon, dk: Any, tmp_path: Path) -> None:
    file = write(tmp_path, JOBS.replace("exit 3", "exit 0"))
    r = corral.cli("compose", "-f", file, "up", "--exit-code-from", "server")
    assert r.returncode == 137 or r.returncode == 143, r.stderr  # stopped after job's exit
    r = corral.cli("compose", "-f", file, "up", "--exit-code-from", "job")
    assert r.returncode == 0, r.stderr
    r = corral.cli("compose", "-f", file, "up", "-d", "--exit-code-from", "job")
    assert r.returncode == 1 and "cannot be combined" in r.stderr


def test_no_attach_leaves_a_service_s_output_out(
    corral: Daemon, dk: Any, tmp_path: Path
) -> None:
    file = write(tmp_path, JOBS)
    r = corral.cli("compose", "-f", file, "up", "--no-color", "--no-attach", "server",
                   "--abort-on-container-exit")
    assert "job done" in r.stdout
    assert "serving" not in r.stdout


def test_no_deps_starts_the_service_alone(corral: Daemon, dk: Any, tmp_path: Path) -> None:
    file = write(tmp_path, HEALTHY.replace(
        "    depends_on: [db]\n", "    depends_on: {db: {condition: service_healthy}}\n"))
    r = corral.cli("compose", "-f", file, "up", "-d", "--no-deps", "web")
    assert r.returncode == 0, r.stderr
    assert names(dk) == ["uf-web-1"]
    corral.cli("compose", "-f", file, "down", check=True)


def test_env_file_replaces_dot_env(corral: Daemon, dk: Any, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("TAG=from-dotenv\n")
    (tmp_path / "other.env").write_text("TAG=from-other\n")
    file = write(tmp_path, "name: uf\nservices:\n  s:\n    image: busybox\n"
                           "    environment: {TAG: $TAG}\n")
    r = corral.cli("compose", "-f", file, "config", "--format", "json")
    assert '"TAG": "from-dotenv"' in r.stdout
    r = corral.cli("compose", "-f", file, "--env-file", str(tmp_path / "other.env"),
                   "config", "--format", "json")
    assert r.returncode == 0, r.stderr
    assert '"TAG": "from-other"' in r.stdout
    r = corral.cli("compose", "-f", file, "--env-file", str(tmp_path / "none.env"), "config")
    assert r.returncode == 1 and "none.env" in r.stderr


def test_progress_quiet_and_parallel(corral: Daemon, dk: Any, tmp_path: Path) -> None:
    file = write(tmp_path, JOBS.replace("exit 3", "exec sleep 1000") + "    scale: 3\n")
    r = corral.cli("compose", "-f", file, "--progress", "quiet", "--parallel", "1", "up", "-d")
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    assert len(names(dk)) == 4
    r = corral.cli("compose", "-f", file, "--progress", "plain", "down")
    assert "Container uf-job-3  Removed" in r.stderr
    bad = corral.cli("compose", "-f", file, "--progress", "fancy", "ps")
    assert bad.returncode == 1 and "--progress 'fancy'" in bad.stderr


def test_progress_json_prints_compose_s_json_messages(
    corral: Daemon, dk: Any, tmp_path: Path
) -> None:
    import json

    file = write(tmp_path, "name: pj\nservices:\n  s:\n    image: busybox\n"
                           "    command: [sleep, '1000']\n    stop_grace_period: 1s\n")
    r = corral.cli("compose", "-f", file, "--progress", "json", "up", "-d")
    assert r.returncode == 0, r.stderr
    msgs = [json.loads(line) for line in r.stderr.splitlines()]
    assert {"id": "Container pj-s-1", "text": "Started"} in msgs
    r = corral.cli("compose", "-f", file, "--progress", "json", "--dry-run", "down")
    msgs = [json.loads(line) for line in r.stderr.splitlines()]
    assert {"dry-run": True, "id": "Container pj-s-1", "text": "Removed"} in msgs
    corral.cli("compose", "-f", file, "down", "-t", "0", check=True)
    bad = corral.cli("compose", "-f", file, "--parallel", "0", "ps")
    assert bad.returncode == 1 and "--parallel" in bad.stderr


def test_refused_flags_are_named(corral: Daemon, tmp_path: Path) -> None:
    file = write(tmp_path, JOBS)
    for argv, named in (
        (["--compatibility", "up", "-d"], "--compatibility is not supported"),
        (["--dry-run", "ls"], "--dry-run is not supported by corral's compose ls"),
        (["up", "-d", "--pull", "sometimes"], "invalid --pull 'sometimes'"),
        (["up", "--wait-timeout", "3"], "--wait-timeout needs --wait"),
        (["up", "--watch"], "none of the selected services is configured for watch"),
        (["up", "-d", "--watch"], "--watch cannot be combined with -d"),
    ):
        r = corral.cli("compose", "-f", file, *argv)
        assert r.returncode != 0, argv
        assert named in r.stderr, (argv, r.stderr)


def test_up_timeout_is_used_for_recreate(corral: Daemon, dk: Any, tmp_path: Path) -> None:
    # a grace period longer than the CLI's own timeout: only -t 0 lets up return
    slow = ("name: uf\nservices:\n  s:\n    image: busybox\n"
            "    command: [sh, -c, 'trap \"\" TERM; sleep 1000 & wait; sleep 1000']\n"
            "    stop_grace_period: 300s\n    environment: {V: '1'}\n")
    file = write(tmp_path, slow)
    corral.cli("compose", "-f", file, "up", "-d", check=True)
    first = dk.containers.get("uf-s-1").id
    write(tmp_path, slow.replace("V: '1'", "V: '2'"))
    r = corral.cli("compose", "-f", file, "up", "-d", "-t", "0", timeout=60)
    assert r.returncode == 0, r.stderr
    assert dk.containers.get("uf-s-1").id != first
    corral.cli("compose", "-f", file, "down", "-t", "0", check=True)


def test_pull_never_fails_on_a_missing_image_without_pulling(
    corral: Daemon, dk: Any, tmp_path: Path
) -> None:
    file = write(tmp_path, "name: uf\nservices:\n  s:\n    image: example.invalid/nothere:1\n")
    r = corral.cli("compose", "-f", file, "up", "-d", "--pull", "never")
    assert r.returncode == 1
    assert "nothere" in r.stderr
    assert "Pulling" not in r.stderr
    assert names(dk) == []
