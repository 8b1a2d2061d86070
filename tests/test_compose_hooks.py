"""The issue's remaining keys: mapped to their HostConfig fields as compose maps them
(pure), post_start/pre_stop hooks, platform, compose cp/attach, end to end."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from conftest import Daemon

from config.container import create_body
from config.model import Project
from config.project import load_project


def _load(text: str) -> Project:
    def read(path: str) -> str:
        if path != "/p/compose.yaml":
            raise FileNotFoundError(2, "no such file or directory", path)
        return text

    return load_project(["/p/compose.yaml"], environ={}, cwd="/p", read_file=read)


KEYS = """\
name: kk
services:
  db:
    image: busybox
  web:
    image: busybox
    shm_size: 64m
    sysctls: [net.core.somaxconn=1024]
    annotations: {org.example.team: core}
    group_add: [audio, 1001]
    ipc: service:db
    pid: host
    uts: host
    volumes_from: [db:ro, container:other]
    links: [db:database]
    mem_reservation: 32m
    oom_kill_disable: true
    oom_score_adj: -200
"""


def test_the_keys_map_to_their_host_config_fields_as_compose_maps_them() -> None:
    p = _load(KEYS)
    assert p.warnings == []
    _, body = create_body(p, "web", 1)
    host = body["HostConfig"]
    assert host["ShmSize"] == 64 << 20
    assert host["Sysctls"] == {"net.core.somaxconn": "1024"}
    assert host["Annotations"] == {"org.example.team": "core"}
    assert host["GroupAdd"] == ["audio", "1001"]
    assert host["IpcMode"] == "container:kk-db-1"
    assert host["PidMode"] == "host"
    assert host["UTSMode"] == "host"
    assert host["VolumesFrom"] == ["kk-db-1:ro", "other"]
    assert host["Links"] == ["kk-db-1:database"]
    assert host["MemoryReservation"] == 32 << 20
    assert host["OomKillDisable"] is True
    assert host["OomScoreAdj"] == -200
    # the services they name come first, as compose orders them
    assert p.order().index("db") < p.order().index("web")


def test_a_key_the_engine_refuses_is_named_never_dropped(
    corral: Daemon, dk: Any, tmp_path: Path
) -> None:
    (tmp_path / "compose.yaml").write_text(
        "name: kr\nservices:\n  web:\n    image: busybox\n    command: [sleep, '1000']\n"
        "    shm_size: 64m\n"
    )
    r = corral.cli("compose", "-f", str(tmp_path / "compose.yaml"), "up", "-d")
    try:
        if r.returncode == 0:  # an engine that applies it
            assert dk.containers.get("kr-web-1").attrs["HostConfig"]["ShmSize"] == 64 << 20
        else:
            assert "--shm-size" in r.stderr, r.stderr
    finally:
        corral.cli("compose", "-f", str(tmp_path / "compose.yaml"), "down", "-t", "0")


HOOKS = """\
name: hk
services:
  app:
    image: busybox
    user: nobody
    command: [sleep, '1000']
    stop_grace_period: 1s
    volumes: [data:/data]
    post_start:
      - command: sh -c 'echo "$$GREETING" > /data/started && chown nobody /data/started'
        user: root
        environment: {GREETING: hello}
    pre_stop:
      - command: [sh, -c, 'echo bye > /data/stopped']
        user: root
volumes:
  data: {}
"""


def _volume_file(dk: Any, volume: str, path: str) -> str:
    out = dk.containers.run(
        "busybox", ["cat", f"/v/{path}"], volumes={volume: {"bind": "/v"}}, remove=True
    )
    return str(out.decode())


def test_post_start_and_pre_stop_hooks_run_as_their_user(
    corral: Daemon, dk: Any, tmp_path: Path
) -> None:
    file = tmp_path / "compose.yaml"
    file.write_text(HOOKS)
    # `up -d` hands the project to the daemon: its in-process applier runs the hook
    r = corral.cli("compose", "-f", str(file), "up", "-d")
    assert r.returncode == 0, r.stderr
    try:
        app = dk.containers.get("hk-app-1")
        code, out = app.exec_run(["stat", "-c", "%U %s", "/data/started"])
        assert (code, out.decode().split()) == (0, ["nobody", "6"])  # "hello\n", as root
        assert _volume_file(dk, "hk_data", "started") == "hello\n"
        r = corral.cli("compose", "-f", str(file), "stop")
        assert r.returncode == 0, r.stderr
        assert _volume_file(dk, "hk_data", "stopped") == "bye\n"
    finally:
        corral.cli("compose", "-f", str(file), "down", "-v", "-t", "0")


def test_a_failing_post_start_hook_fails_up_naming_it(
    corral: Daemon, dk: Any, tmp_path: Path
) -> None:
    file = tmp_path / "compose.yaml"
    file.write_text(
        "name: hf\nservices:\n  app:\n    image: busybox\n    command: [sleep, '1000']\n"
        "    post_start: [{command: [sh, -c, 'exit 3']}]\n"
    )
    try:
        r = corral.cli("compose", "-f", str(file), "up")
        assert r.returncode == 1
        assert 'service "app": container hf-app-1: post_start hook exited with status 3' in (
            r.stderr
        ), r.stderr
    finally:
        corral.cli("compose", "-f", str(file), "down", "-t", "0")


def test_an_image_of_another_platform_is_refused(
    corral: Daemon, dk: Any, tmp_path: Path
) -> None:
    file = tmp_path / "compose.yaml"
    file.write_text(
        "name: pf\nservices:\n  app:\n    image: busybox\n    platform: linux/s390x\n"
        "    pull_policy: never\n"
    )
    r = corral.cli("compose", "-f", str(file), "up", "-d")
    assert r.returncode == 1
    assert 'service "app": image busybox is linux/' in r.stderr
    assert "not the platform linux/s390x asked for" in r.stderr
    assert dk.containers.list(all=True, filters={"label": "com.docker.compose.project=pf"}) == []


def test_compose_cp_copies_both_ways_and_into_every_replica(
    corral: Daemon, dk: Any, tmp_path: Path
) -> None:
    file = tmp_path / "compose.yaml"
    file.write_text(
        "name: cpx\nservices:\n  app:\n    image: busybox\n    command: [sleep, '1000']\n"
        "    scale: 2\n    stop_grace_period: 1s\n"
    )
    (tmp_path / "in.txt").write_text("to the service\n")
    corral.cli("compose", "-f", str(file), "up", "-d", check=True)
    try:
        r = corral.cli("compose", "-f", str(file), "cp", str(tmp_path / "in.txt"), "app:/in.txt")
        assert r.returncode == 0, r.stderr
        for n in (1, 2):
            code, out = dk.containers.get(f"cpx-app-{n}").exec_run(["cat", "/in.txt"])
            assert out == b"to the service\n"
        dk.containers.get("cpx-app-2").exec_run(["sh", "-c", "echo two > /out.txt"])
        r = corral.cli("compose", "-f", str(file), "cp", "--index", "2", "app:/out.txt",
                       str(tmp_path / "out.txt"))
        assert r.returncode == 0, r.stderr
        assert (tmp_path / "out.txt").read_text() == "two\n"
        r = corral.cli("compose", "-f", str(file), "cp", "app:/out.txt", "-")
        assert r.returncode == 1  # replica 1 has none: docker cp's error
        r = corral.cli("compose", "-f", str(file), "cp", "nope:/x", str(tmp_path))
        assert (r.returncode, r.stderr.strip()) == (1, "corral: no such service: nope")
    finally:
        corral.cli("compose", "-f", str(file), "down", "-t", "0")



def test_run_publish_replaces_the_ports_and_tty_is_allocated_on_request(
    corral: Daemon, dk: Any, tmp_path: Path
) -> None:
    file = tmp_path / "compose.yaml"
    file.write_text(
        "name: rp\nservices:\n  web:\n    image: busybox\n    ports: ['18094:81']\n"
    )
    try:
        r = corral.cli("compose", "-f", str(file), "run", "-d", "-p", "127.0.0.1:18095:80",
                       "-t", "web", "sleep", "1000")
        assert r.returncode == 0, r.stderr
        c = dk.containers.get(r.stdout.strip())
        assert c.attrs["HostConfig"]["PortBindings"] == {
            "80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "18095"}]
        }
        assert c.attrs["Config"]["Tty"] is True
        r = corral.cli("compose", "-f", str(file), "run", "-d", "-T", "--service-ports", "web",
                       "sleep", "1000")
        assert r.returncode == 0, r.stderr
        c = dk.containers.get(r.stdout.strip())
        assert c.attrs["Config"]["Tty"] is False
        assert c.attrs["HostConfig"]["PortBindings"] == {
            "81/tcp": [{"HostIp": "", "HostPort": "18094"}]
        }
        r = corral.cli("compose", "-f", str(file), "run", "-t", "-T", "web")
        assert (r.returncode, r.stderr.strip()) == (1, "corral: -t and -T cannot be combined")
    finally:
        corral.cli("compose", "-f", str(file), "down", "-t", "0")


DRY = """\
name: dr
services:
  db:
    image: busybox
    command: [sleep, '1000']
    stop_grace_period: 1s
    healthcheck: {test: [CMD, 'true'], interval: 1s}
    volumes: [data:/data]
    post_start: [{command: [touch, /hooked]}]
  web:
    image: busybox
    command: [sleep, '1000']
    depends_on: {db: {condition: service_healthy}}
volumes:
  data: {}
"""


def test_dry_run_says_what_up_and_down_would_do_and_does_nothing(
    corral: Daemon, dk: Any, tmp_path: Path
) -> None:
    file = tmp_path / "compose.yaml"
    file.write_text(DRY)
    label = {"label": "com.docker.compose.project=dr"}
    r = corral.cli("compose", "--dry-run", "-f", str(file), "up", "-d")
    assert r.returncode == 0, r.stderr
    lines = r.stderr.splitlines()
    for want in ("DRY-RUN MODE -  Volume dr_data  Created",
                 "DRY-RUN MODE -  Container dr-db-1  Created",
                 "DRY-RUN MODE -  Container dr-db-1  Started",
                 "DRY-RUN MODE -  Container dr-db-1  Healthy",
                 "DRY-RUN MODE -  Container dr-web-1  Started"):
        assert want in lines, r.stderr
    assert any("would run its post_start hook" in line for line in lines)
    assert dk.containers.list(all=True, filters=label) == []
    assert dk.volumes.list(filters=label) == []
    try:
        corral.cli("compose", "-f", str(file), "up", "-d", check=True)
        before = sorted(c.id for c in dk.containers.list(all=True, filters=label))
        r = corral.cli("compose", "-f", str(file), "down", "-v", "--dry-run")
        assert r.returncode == 0, r.stderr
        assert "DRY-RUN MODE -  Container dr-web-1  Removed" in r.stderr.splitlines()
        assert sorted(c.id for c in dk.containers.list(all=True, filters=label)) == before
        assert all(c.status == "running" for c in dk.containers.list(all=True, filters=label))
        assert [v.name for v in dk.volumes.list(filters=label)] == ["dr_data"]
        for verb, done in (("kill", "Killed"), ("stop", "Stopped"), ("pause", "Paused")):
            r = corral.cli("compose", "--dry-run", "-f", str(file), verb)
            assert r.returncode == 0, r.stderr
            assert f"DRY-RUN MODE -  Container dr-db-1  {done}" in r.stderr.splitlines()
        r = corral.cli("compose", "--dry-run", "-f", str(file), "rm", "-s", "-f")
        assert "DRY-RUN MODE -  Container dr-web-1  Removed" in r.stderr.splitlines()
        assert all(c.status == "running" for c in dk.containers.list(all=True, filters=label))
        assert len(dk.containers.list(all=True, filters=label)) == 2
    finally:
        corral.cli("compose", "-f", str(file), "down", "-v", "-t", "0")


def test_compose_attach_joins_the_service_s_streams(
    corral: Daemon, dk: Any, tmp_path: Path
) -> None:
    import select
    import subprocess
    import sys
    import time

    file = tmp_path / "compose.yaml"
    file.write_text(
        "name: at\nservices:\n  app:\n    image: busybox\n    command: [cat]\n"
        "    stdin_open: true\n    stop_grace_period: 1s\n"
    )
    corral.cli("compose", "-f", str(file), "up", "-d", check=True)
    proc = subprocess.Popen(
        [sys.executable, "-m", "supervisor", "compose", "-f", str(file), "attach", "app"],
        env=corral.env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        got = b""
        deadline = time.monotonic() + 30
        # cat echoes what attach sends; sent again until the attach is joined (the first
        # lines may arrive before the attach stream is up)
        while b"hello" not in got and time.monotonic() < deadline:
            proc.stdin.write(b"hello\n")
            proc.stdin.flush()
            ready, _, _ = select.select([proc.stdout], [], [], 1)
            if ready:
                got += proc.stdout.read1(65536)
        assert b"hello" in got
        corral.cli("compose", "-f", str(file), "kill", check=True)
        assert proc.wait(timeout=30) == 137  # the container's exit code, as docker attach
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        corral.cli("compose", "-f", str(file), "down", "-t", "0")
    r = corral.cli("compose", "-f", str(file), "attach", "app")
    assert (r.returncode, r.stderr.strip()) == (
        1, 'corral: service "app" is not running container #1'
    )


def test_the_keys_reach_the_container(corral: Daemon, dk: Any, tmp_path: Path) -> None:
    file = tmp_path / "compose.yaml"
    file.write_text("""\
name: ke
services:
  db:
    image: busybox
    command: [sleep, '1000']
    ipc: shareable
    volumes: [data:/data]
    stop_grace_period: 1s
  web:
    image: busybox
    command: [sleep, '1000']
    ipc: service:db
    pid: service:db
    volumes_from: [db:ro]
    sysctls: {net.core.somaxconn: 1024}
    shm_size: 64m
    group_add: ["4242"]
    oom_score_adj: 100
    links: [db:database]
    stop_grace_period: 1s
volumes:
  data: {}
""")
    r = corral.cli("compose", "-f", str(file), "up", "-d")
    try:
        assert r.returncode == 0, r.stderr
        db, web = dk.containers.get("ke-db-1"), dk.containers.get("ke-web-1")

        def sh(c: Any, script: str) -> str:
            code, out = c.exec_run(["sh", "-c", script])
            assert code == 0, out
            return str(out.decode().strip())

        assert sh(web, "cat /proc/sys/net/core/somaxconn") == "1024"
        assert sh(web, "id -G").split()[-1] == "4242"
        assert sh(web, "cat /proc/self/oom_score_adj") == "100"
        assert sh(web, "readlink /proc/self/ns/ipc") == sh(db, "readlink /proc/self/ns/ipc")
        assert sh(web, "readlink /proc/self/ns/pid") == sh(db, "readlink /proc/self/ns/pid")
        assert sh(web, "test -d /data && ! touch /data/x 2>/dev/null && echo ro") == "ro"
        # links: on the project's network, a container-scoped alias (as compose + dockerd)
        db_ip = db.attrs["NetworkSettings"]["Networks"]["ke_default"]["IPAddress"]
        assert sh(web, "grep -w database /etc/hosts").split()[0] == db_ip
        code, _ = db.exec_run(["grep", "-qw", "database", "/etc/hosts"])
        assert code == 1
    finally:
        corral.cli("compose", "-f", str(file), "down", "-v", "-t", "0")


ROLLED = """\
name: hr
services:
  app:
    image: busybox
    command: [sleep, '1000']
    stop_grace_period: 1s
    environment: {{V: '{v}'}}
    volumes: [data:/data]
    post_start:
      - command: [sh, -c, 'echo start $$(hostname) >> /data/log; exit {code}']
    pre_stop:
      - command: [sh, -c, 'echo stop $$(hostname) >> /data/log']
    deploy:
      update_config: {{order: start-first, monitor: 300ms}}
volumes:
  data: {{}}
"""


def test_a_rollout_runs_post_start_on_the_new_replica_and_pre_stop_on_the_old(
    corral: Daemon, dk: Any, tmp_path: Path
) -> None:
    """As a recreate does: the replacement's post_start once it started, the old
    replica's pre_stop before it stops; a failing post_start fails the replica, whose
    rollout is undone (the old one serves on, its pre_stop never run)."""
    file = tmp_path / "compose.yaml"

    def up(v: int, code: int = 0) -> Any:
        file.write_text(ROLLED.format(v=v, code=code))
        return corral.cli("compose", "-f", str(file), "up", "-d", timeout=120)

    def short(c: Any) -> str:
        return str(c.attrs["Config"]["Hostname"])

    try:
        assert up(1).returncode == 0
        one = dk.containers.get("hr-app-1")
        r = up(2)
        assert r.returncode == 0, r.stderr
        two = dk.containers.get("hr-app-1")
        assert two.id != one.id
        log = _volume_file(dk, "hr_data", "log").splitlines()
        assert log == [f"start {short(one)}", f"start {short(two)}", f"stop {short(one)}"]

        r = up(3, code=4)
        assert r.returncode != 0
        assert "post_start hook exited with status 4" in r.stderr, r.stderr
        kept = dk.containers.get("hr-app-1")
        assert kept.id == two.id and kept.status == "running"
        log = _volume_file(dk, "hr_data", "log").splitlines()
        assert len(log) == 4 and log[3].startswith("start ") and log[3] != log[1]
        assert f"stop {short(two)}" not in log
    finally:
        corral.cli("compose", "-f", str(file), "down", "-v", "-t", "0")


DRY_VERBS = """\
name: dx
services:
  app:
    image: busybox
    command: [sh, -c, 'echo hello from app; exec sleep 1000']
    stop_grace_period: 1s
  built:
    build: ./ctx
    profiles: [extra]
"""


def test_dry_run_of_run_exec_build_cp_and_logs_says_and_changes_nothing(
    corral: Daemon, dk: Any, tmp_path: Path
) -> None:
    """As compose's dry-run client: a detached run or exec is made up (exit 0), an
    attached one cannot be ("interactive ... is not supported in dry-run mode"); build
    says its steps and builds nothing; cp checks its source and copies nothing; logs
    only reads, so it reads."""
    file = tmp_path / "compose.yaml"
    file.write_text(DRY_VERBS)
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "Dockerfile").write_text("FROM busybox\nRUN touch /built\n")
    (tmp_path / "in.txt").write_text("copied?")
    label = {"label": "com.docker.compose.project=dx"}

    def dry(*argv: str) -> Any:
        return corral.cli("compose", "--dry-run", "-f", str(file), *argv)

    try:
        corral.cli("compose", "-f", str(file), "up", "-d", check=True)
        [app] = dk.containers.list(all=True, filters=label)
        first = next(app.logs(stream=True, follow=True))  # waits for its first line

        r = dry("--profile", "extra", "build", "built")
        assert r.returncode == 0, r.stderr
        lines = r.stderr.splitlines()
        assert "DRY-RUN MODE -  Service built  Building" in lines
        assert "DRY-RUN MODE -  Service built  Built" in lines
        assert dk.images.list(name="dx-built") == []

        r = dry("run", "-d", "app", "touch", "/ran")
        assert r.returncode == 0, r.stderr
        assert r.stdout.startswith("dx-app-run-"), r.stdout
        assert [c.id for c in dk.containers.list(all=True, filters=label)] == [app.id]
        r = dry("run", "app", "true")
        assert r.returncode == 1
        assert "interactive run is not supported in dry-run mode" in r.stderr

        r = dry("exec", "-d", "app", "touch", "/execed")
        assert r.returncode == 0, r.stderr
        assert app.exec_run(["test", "-e", "/execed"]).exit_code == 1
        r = dry("exec", "-T", "app", "true")
        assert r.returncode == 1
        assert "interactive exec is not supported in dry-run mode" in r.stderr

        r = dry("cp", str(tmp_path / "in.txt"), "app:/in.txt")
        assert r.returncode == 0, r.stderr
        said = f"DRY-RUN MODE -  dx-app-1 copy {tmp_path / 'in.txt'} to dx-app-1:/in.txt Copied"
        assert said in r.stderr.splitlines(), r.stderr
        assert app.exec_run(["test", "-e", "/in.txt"]).exit_code == 1
        r = dry("cp", "app:/etc/hostname", str(tmp_path / "out.txt"))
        assert r.returncode == 0, r.stderr
        assert not (tmp_path / "out.txt").exists()
        r = dry("cp", "app:/nope", str(tmp_path / "out.txt"))
        assert r.returncode == 1
        assert "could not find the file /nope in container dx-app-1" in r.stderr
        r = dry("cp", str(tmp_path / "missing"), "app:/x")
        assert r.returncode == 1 and "no such file or directory" in r.stderr

        r = dry("logs", "--no-log-prefix", "app")
        assert r.returncode == 0, r.stderr
        assert first.decode().strip() == "hello from app"
        assert r.stdout.splitlines() == ["hello from app"]
    finally:
        corral.cli("compose", "-f", str(file), "down", "-t", "0")
