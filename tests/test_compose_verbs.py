"""compose v2's verbs beyond up/down/ps/logs, end to end through `corral compose`:
run (one-off containers), rm, kill, pause/unpause, ls, port, top, events, create,
wait, version, scale, and config's listing flags."""

from __future__ import annotations

import json
import re
import select
import subprocess
import sys
from pathlib import Path
from typing import Any

from conftest import Daemon

PROJECT = "com.docker.compose.project"

BASE = """\
name: vb
services:
  db:
    image: busybox
    command: [sleep, '1000']
    stop_grace_period: 1s
    restart: always
  web:
    image: busybox
    command: [sh, -c, 'echo web; exec sleep 1000']
    environment: {GREETING: hello, KEEP: kept}
    working_dir: /tmp
    ports: ['18091:80']
    stop_grace_period: 1s
    depends_on: [db]
    container_name: fixed-web
"""


def write(tmp: Path, text: str = BASE) -> str:
    path = tmp / "compose.yaml"
    path.write_text(text)
    return str(path)


def names(dk: Any) -> list[str]:
    return sorted(c.name for c in dk.containers.list(all=True, filters={"label": f"{PROJECT}=vb"}))


def test_run_makes_a_one_off_container_as_compose_names_it(
    corral: Daemon, dk: Any, tmp_path: Path
) -> None:
    file = write(tmp_path)
    r = corral.cli("compose", "-f", file, "run", "-d", "web", "sleep", "1000")
    assert r.returncode == 0, r.stderr
    name = r.stdout.strip()
    assert re.fullmatch(r"vb-web-run-[0-9a-f]{12}", name), name
    c = dk.containers.get(name)
    assert c.labels["com.docker.compose.oneoff"] == "True"
    assert c.labels["com.docker.compose.service"] == "web"
    assert len(c.labels["com.docker.compose.slug"]) == 64
    assert c.labels["com.docker.compose.slug"].startswith(name[-12:])
    # no restart policy and no published ports without --service-ports
    assert c.attrs["HostConfig"]["RestartPolicy"]["Name"] in ("", "no")
    assert not c.attrs["HostConfig"].get("PortBindings")
    # its dependency was started (it is not one-off)
    assert dk.containers.get("vb-db-1").status == "running"
    # `ps` shows service containers only, `down` removes the one-off too
    ps = corral.cli("compose", "-f", file, "ps", "-a", "--format", "{{.Name}}")
    assert ps.stdout.split() == ["vb-db-1"]
    corral.cli("compose", "-f", file, "down", check=True)
    assert names(dk) == []


def test_run_in_the_foreground_gives_the_command_s_output_and_exit_code(
    corral: Daemon, dk: Any, tmp_path: Path
) -> None:
    file = write(tmp_path)
    r = corral.cli(
        "compose", "-f", file, "run", "--rm", "--no-deps", "-T", "-e", "GREETING=bonjour",
        "-e", "EXTRA=1", "-u", "nobody", "-w", "/", "web",
        "sh", "-c", "echo $GREETING $KEEP $EXTRA $(id -un) $(pwd); exit 3",
        input=b"",
    )
    assert r.returncode == 3, r.stderr
    assert r.stdout.strip() == "bonjour kept 1 nobody /"
    assert names(dk) == []  # --rm, and --no-deps started no db


def test_run_reads_stdin_and_takes_entrypoint_name_and_volume(
    corral: Daemon, dk: Any, tmp_path: Path
) -> None:
    file = write(tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "f").write_text("from the host\n")
    r = corral.cli(
        "compose", "-f", file, "run", "--no-deps", "--name", "mine", "--entrypoint", "cat",
        "-v", f"{tmp_path / 'data'}:/data:ro", "web", "-", "/data/f",
        input=b"from stdin\n",
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout == "from stdin\nfrom the host\n"
    c = dk.containers.get("mine")
    assert c.attrs["Config"]["Entrypoint"] == ["cat"]
    assert c.status == "exited"


def test_run_service_ports_publishes_the_service_s_ports(
    corral: Daemon, dk: Any, tmp_path: Path
) -> None:
    file = write(tmp_path)
    r = corral.cli("compose", "-f", file, "run", "-d", "--no-deps", "--service-ports",
                   "web", "sleep", "1000")
    assert r.returncode == 0, r.stderr
    bindings = dk.containers.get(r.stdout.strip()).attrs["HostConfig"]["PortBindings"]
    assert bindings["80/tcp"][0]["HostPort"] == "18091"


def test_rm_removes_stopped_containers_only(corral: Daemon, dk: Any, tmp_path: Path) -> None:
    file = write(tmp_path)
    corral.cli("compose", "-f", file, "up", "-d", check=True)
    none = corral.cli("compose", "-f", file, "rm", "-f")
    assert none.returncode == 0 and "No stopped containers" in none.stderr
    corral.cli("compose", "-f", file, "stop", "web", check=True)
    r = corral.cli("compose", "-f", file, "rm", "-f")
    assert r.returncode == 0, r.stderr
    assert "Container fixed-web  Removed" in r.stderr
    assert names(dk) == ["vb-db-1"]
    asked = corral.cli("compose", "-f", file, "rm", "-s", input=b"n\n")
    assert "Going to remove vb-db-1" in asked.stderr
    assert names(dk) == ["vb-db-1"]  # answered no: stopped, kept
    corral.cli("compose", "-f", file, "rm", "-f", "db", check=True)
    assert names(dk) == []


def test_kill_pause_unpause(corral: Daemon, dk: Any, tmp_path: Path) -> None:
    file = write(tmp_path, BASE.replace(
        "    command: [sleep, '1000']\n",
        "    command: [sh, -c, 'trap \"exit 5\" USR1; sleep 1000 & wait']\n",
    ))
    corral.cli("compose", "-f", file, "up", "-d", check=True)
    r = corral.cli("compose", "-f", file, "pause", "web")
    assert r.returncode == 0 and "Container fixed-web  Paused" in r.stderr
    assert dk.containers.get("fixed-web").status == "paused"
    r = corral.cli("compose", "-f", file, "unpause")
    assert r.returncode == 0 and "Container fixed-web  Unpaused" in r.stderr
    assert dk.containers.get("fixed-web").status == "running"
    r = corral.cli("compose", "-f", file, "kill", "-s", "SIGUSR1", "db")
    assert r.returncode == 0 and "Container vb-db-1  Killed" in r.stderr
    assert dk.containers.get("vb-db-1").wait(timeout=30)["StatusCode"] == 5  # its trap
    r = corral.cli("compose", "-f", file, "kill", "web")  # SIGKILL by default
    assert r.returncode == 0 and "Container fixed-web  Killed" in r.stderr
    assert dk.containers.get("fixed-web").wait(timeout=30)["StatusCode"] == 137
    corral.cli("compose", "-f", file, "down", check=True)


def test_ls_lists_running_projects_and_all_with_a(
    corral: Daemon, dk: Any, tmp_path: Path
) -> None:
    file = write(tmp_path)
    corral.cli("compose", "-f", file, "up", "-d", check=True)
    corral.cli("compose", "-f", file, "stop", "web", check=True)
    r = corral.cli("compose", "ls", "--format", "json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == [
        {"Name": "vb", "Status": "exited(1), running(1)", "ConfigFiles": file}
    ]
    table = corral.cli("compose", "ls").stdout.splitlines()
    assert table[0].split() == ["NAME", "STATUS", "CONFIG", "FILES"]
    assert table[1].split() == ["vb", "exited(1),", "running(1)", file]
    corral.cli("compose", "-f", file, "stop", check=True)
    assert corral.cli("compose", "ls", "-q").stdout == ""
    assert corral.cli("compose", "ls", "-a", "-q").stdout == "vb\n"
    corral.cli("compose", "-f", file, "down", check=True)


def test_port_prints_the_published_address(corral: Daemon, dk: Any, tmp_path: Path) -> None:
    file = write(tmp_path)
    corral.cli("compose", "-f", file, "up", "-d", check=True)
    r = corral.cli("compose", "-f", file, "port", "web", "80")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "0.0.0.0:18091\n"
    missing = corral.cli("compose", "-f", file, "port", "web", "81")
    assert missing.returncode == 1 and "no port 81/tcp" in missing.stderr
    corral.cli("compose", "-f", file, "down", check=True)


def test_top_lists_each_running_container_s_processes(
    corral: Daemon, dk: Any, tmp_path: Path
) -> None:
    file = write(tmp_path)
    corral.cli("compose", "-f", file, "up", "-d", "db", check=True)
    r = corral.cli("compose", "-f", file, "top")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "vb-db-1"
    assert "PID" in lines[1].split()
    assert "sleep 1000" in r.stdout


def test_events_json_streams_the_project_s_container_events(
    corral: Daemon, dk: Any, tmp_path: Path
) -> None:
    file = write(tmp_path)
    corral.cli("compose", "-f", file, "up", "-d", "db", check=True)
    proc = subprocess.Popen(
        [sys.executable, "-m", "supervisor", "compose", "-f", file, "events", "--json"],
        env=corral.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        # pause/unpause is retried until the stream has subscribed and reports one (it
        # may have subscribed between the two: the first event is either)
        event: dict[str, Any] = {}
        for _ in range(50):
            corral.cli("compose", "-f", file, "pause", check=True)
            corral.cli("compose", "-f", file, "unpause", check=True)
            ready, _, _ = select.select([proc.stdout], [], [], 0.2)
            if ready:
                assert proc.stdout is not None
                event = json.loads(proc.stdout.readline())
                break
        assert event["action"] in ("pause", "unpause")
        assert event["service"] == "db"
        assert event["type"] == "container"
        assert event["attributes"]["name"] == "vb-db-1"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_create_makes_containers_without_starting_them(
    corral: Daemon, dk: Any, tmp_path: Path
) -> None:
    file = write(tmp_path)
    r = corral.cli("compose", "-f", file, "create")
    assert r.returncode == 0, r.stderr
    assert {c.name: c.status for c in dk.containers.list(all=True)} == {
        "vb-db-1": "created", "fixed-web": "created"
    }
    corral.cli("compose", "-f", file, "start", check=True)
    assert dk.containers.get("fixed-web").status == "running"
    corral.cli("compose", "-f", file, "down", check=True)


def test_wait_exits_with_the_first_container_s_code(
    corral: Daemon, dk: Any, tmp_path: Path
) -> None:
    file = write(tmp_path, "name: vb\nservices:\n  job:\n    image: busybox\n"
                          "    command: [sh, -c, 'exit 7']\n")
    corral.cli("compose", "-f", file, "up", "-d", check=True)
    r = corral.cli("compose", "-f", file, "wait", "job")
    assert r.returncode == 7, r.stderr
    r = corral.cli("compose", "-f", file, "wait", "--down-project", "job")
    assert r.returncode == 7, r.stderr
    assert names(dk) == []


def test_version(corral: Daemon) -> None:
    assert corral.cli("compose", "version", "--short").stdout == "2.29.0\n"
    assert json.loads(corral.cli("compose", "version", "-f", "json").stdout) == {
        "version": "v2.29.0"
    }


def test_scale_sets_replicas_and_no_deps_leaves_dependencies(
    corral: Daemon, dk: Any, tmp_path: Path
) -> None:
    file = write(tmp_path, BASE.replace("    container_name: fixed-web\n", "").replace(
        "    ports: ['18091:80']\n", ""))
    r = corral.cli("compose", "-f", file, "scale", "--no-deps", "web=2")
    assert r.returncode == 0, r.stderr
    assert names(dk) == ["vb-web-1", "vb-web-2"]
    r = corral.cli("compose", "-f", file, "scale", "web=1")
    assert r.returncode == 0, r.stderr
    assert names(dk) == ["vb-db-1", "vb-web-1"]
    corral.cli("compose", "-f", file, "down", check=True)


def test_config_lists_images_networks_profiles(corral: Daemon, tmp_path: Path) -> None:
    file = write(tmp_path, """\
name: vb
services:
  app:
    build: .
  tool:
    image: busybox
    profiles: [debug]
    networks: [back]
networks:
  back:
""")
    r = corral.cli("compose", "-f", file, "--profile", "debug", "config", "--images")
    assert r.stdout.split() == ["vb-app", "busybox"]
    r = corral.cli("compose", "-f", file, "--profile", "debug", "config", "--networks")
    assert r.stdout.split() == ["back", "default"]
