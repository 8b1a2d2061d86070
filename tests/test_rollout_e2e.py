"""Rollouts with real containers: `deploy.update_config` start-first on a published port
with a health check, while a client on 127.0.0.1 keeps asking (issue 20's proof).

Docker Compose (and corral without update_config) stops the old container before the
new one starts, so requests fail in between; here none may.
"""

from __future__ import annotations

import http.client
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from conftest import Daemon, kill_holder

PROJECT = "com.docker.compose.project"
RATE = 50  # requests per second
BOUND = 90.0  # seconds the client loop may run at most


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


COMPOSE = """\
name: roll
services:
  web:
    image: rollapp:latest
    command: [httpd, -f, -p, "8000", -h, /www]
    ports: ["127.0.0.1:{port}:8000"]
    stop_grace_period: 2s
    healthcheck:
      test: [CMD, wget, -q, -O, /dev/null, http://127.0.0.1:8000/health]
      interval: 200ms
      timeout: 2s
      retries: 2
    volumes: [data:/data]
    deploy:
      update_config: {{order: start-first, failure_action: rollback, monitor: 1s}}
volumes:
  data:
"""


def build(corral: Daemon, tmp: Path, version: str, healthy: bool = True) -> None:
    ctx = tmp / version
    ctx.mkdir()
    health = "echo ok > /www/health && " if healthy else ""
    (ctx / "Dockerfile").write_text(
        f"FROM busybox\nRUN mkdir -p /www && {health}echo {version} > /www/index.html\n"
    )
    r = corral.cli("build", "-q", "-t", f"rollapp:{version}", str(ctx), timeout=120)
    assert r.returncode == 0, r.stderr


@dataclass
class Client:
    """A bounded loop of GET / on 127.0.0.1:port at RATE per second, one connection
    each (so every request goes through the relay's accept, where the switch is)."""

    port: int
    answers: list[tuple[float, str]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        end = time.monotonic() + BOUND
        while not self.stop.is_set() and time.monotonic() < end:
            t = time.monotonic()
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            try:
                conn.request("GET", "/", headers={"Connection": "close"})
                resp = conn.getresponse()
                body = resp.read().decode().strip()
                if resp.status != 200:
                    self.failures.append(f"{resp.status} {body[:60]}")
                else:
                    self.answers.append((t, body))
            except OSError as exc:
                self.failures.append(repr(exc))
            finally:
                conn.close()
            self.stop.wait(max(0.0, 1 / RATE - (time.monotonic() - t)))

    def __enter__(self) -> Client:
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()

    def wait_answers(self, n: int) -> None:
        """Until n answers came (the loop runs; bounded by its own BOUND)."""
        while len(self.answers) < n and self.thread.is_alive():
            self.stop.wait(0.05)

    def runs(self) -> list[str]:
        """The distinct answers in order, consecutive repeats folded."""
        out: list[str] = []
        for _t, body in self.answers:
            if not out or out[-1] != body:
                out.append(body)
        return out


def web(dk: Any) -> list[Any]:
    return dk.containers.list(all=True, filters={"label": f"{PROJECT}=roll"})


def test_start_first_rollout_loses_no_request_and_a_failing_v3_is_rolled_back(
    corral: Daemon, dk: Any, tmp_path: Path
) -> None:
    for v in ("v1", "v2"):
        build(corral, tmp_path, v)
    build(corral, tmp_path, "v3", healthy=False)
    port = free_port()
    file = tmp_path / "compose.yaml"
    file.write_text(COMPOSE.format(port=port))
    assert corral.cli("tag", "rollapp:v1", "rollapp:latest").returncode == 0
    r = corral.cli("compose", "-f", str(file), "up", "-d", "--wait", timeout=120)
    assert r.returncode == 0, r.stderr
    [v1] = web(dk)
    assert v1.name == "roll-web-1"
    assert v1.exec_run(["sh", "-c", "echo written-by-v1 > /data/note"]).exit_code == 0

    # v1 -> v2: `compose pull && compose up` shape: the tag moved, the image id changed
    since = int(time.time())
    with Client(port) as client:
        client.wait_answers(25)
        assert corral.cli("tag", "rollapp:v2", "rollapp:latest").returncode == 0
        began = time.monotonic()
        r = corral.cli("compose", "-f", str(file), "up", "-d", timeout=120)
        ended = time.monotonic()
        seen = len(client.answers)
        client.wait_answers(seen + 25)
    assert r.returncode == 0, r.stderr
    assert client.failures == [], client.failures[:5]
    assert client.runs() == ["v1", "v2"]
    first_v2 = next(t for t, body in client.answers if body == "v2")
    last_v1 = max(t for t, body in client.answers if body == "v1")
    print(
        f"\nrollout v1->v2: {len(client.answers) + len(client.failures)} requests, "
        f"{len(client.failures)} failed, switch-over {first_v2 - began:.2f}s after up began "
        f"(up took {ended - began:.2f}s; last v1 answer {first_v2 - last_v1:.3f}s "
        "before the first v2)"
    )
    [v2] = web(dk)
    assert v2.name == "roll-web-1" and v2.id != v1.id  # the old one is gone, its name taken
    assert v2.status == "running"
    assert v2.exec_run(["cat", "/data/note"]).output.decode().strip() == "written-by-v1"
    assert "Ports switched" in r.stderr

    # v2 -> v3 whose health check fails: v2 serves on, `up` fails naming the check
    with Client(port) as client:
        client.wait_answers(25)
        assert corral.cli("tag", "rollapp:v3", "rollapp:latest").returncode == 0
        r = corral.cli("compose", "-f", str(file), "up", "-d", timeout=120)
        seen = len(client.answers)
        client.wait_answers(seen + 25)
    assert r.returncode != 0
    assert "rollout failed" in r.stderr and "unhealthy" in r.stderr, r.stderr
    assert "http://127.0.0.1:8000/health" in r.stderr, r.stderr  # the check that failed
    assert client.failures == [], client.failures[:5]
    assert client.runs() == ["v2"]
    print(
        f"rollout v2->v3 (failing check): {len(client.answers) + len(client.failures)} "
        f"requests, {len(client.failures)} failed, v2 still serving"
    )
    [kept] = web(dk)  # the failed replica is removed
    assert kept.id == v2.id and kept.status == "running"

    events = dk.events(
        since=since, until=int(time.time()) + 1, decode=True,
        filters={"type": "container", "label": f"{PROJECT}=roll"},
    )
    rollouts = [(e["Action"], e["Actor"]["Attributes"].get("result")) for e in events
                if e["Action"].startswith("rollout_")]
    assert rollouts == [
        ("rollout_start", None),
        ("rollout_done", "succeeded"),
        ("rollout_start", None),
        ("rollout_failed", "rolled_back"),
    ]


STOP_FIRST = """\
name: rollsf
services:
  db:
    image: busybox
    command: [sh, -c, '{cmd}']
    stop_grace_period: 1s
    volumes: [db:/db]
    deploy:
      update_config: {{order: start-first, monitor: 1s}}
volumes:
  db:
    labels: {{corral.volume.exclusive: "true"}}
"""


def test_an_exclusive_volume_rolls_out_stop_first_and_a_replica_that_dies_is_undone(
    corral: Daemon, dk: Any, tmp_path: Path
) -> None:
    """No healthcheck: the new replica must keep running for `monitor`.  Stop-first
    (forced by the volume's label): the old one stops before the new starts, and is
    started again when the new one dies."""
    file = tmp_path / "compose.yaml"

    def up(cmd: str) -> Any:
        file.write_text(STOP_FIRST.format(cmd=cmd))
        return corral.cli("compose", "-f", str(file), "up", "-d", timeout=120)

    assert up("echo one > /db/v; exec sleep 1000").returncode == 0
    [one] = dk.containers.list(all=True, filters={"label": f"{PROJECT}=rollsf"})
    r = up("cat /db/v > /db/seen; exec sleep 1000")
    assert r.returncode == 0, r.stderr
    assert "volume rollsf_db is corral.volume.exclusive: stop-first" in r.stderr
    lines = r.stderr.splitlines()
    stopped = next(i for i, x in enumerate(lines) if "rollsf-db-1  Stopped" in x)
    started = next(i for i, x in enumerate(lines) if "_rollsf-db-1  Started" in x)
    assert stopped < started  # stop-first: never both at once on the volume
    [two] = dk.containers.list(all=True, filters={"label": f"{PROJECT}=rollsf"})
    assert two.id != one.id and two.name == "rollsf-db-1" and two.status == "running"
    assert two.exec_run(["cat", "/db/seen"]).output.decode().strip() == "one"

    r = up("exit 3")
    assert r.returncode != 0
    assert "rollout failed" in r.stderr and "exited (3)" in r.stderr, r.stderr
    [kept] = dk.containers.list(all=True, filters={"label": f"{PROJECT}=rollsf"})
    assert kept.id == two.id and kept.name == "rollsf-db-1"
    assert kept.status == "running"  # started again


HOLD = """\
name: rollps
services:
  hold:
    image: busybox
    command: [sleep, "1000"]
    stop_grace_period: 1s
    healthcheck:
      test: [CMD-SHELL, test -f /tmp/ok]
      interval: 200ms
      retries: 1000
    deploy:
      update_config: {order: start-first}
"""


def test_compose_rollout_on_demand_and_ps_shows_it_in_progress(
    corral: Daemon, dk: Any, tmp_path: Path
) -> None:
    """`compose rollout SERVICE` replaces a replica that did not change; while the new
    one is not healthy yet, `compose ps` shows both ends of the rollout."""
    file = tmp_path / "compose.yaml"
    file.write_text(HOLD)
    assert corral.cli("compose", "-f", str(file), "up", "-d").returncode == 0
    [old] = dk.containers.list(all=True, filters={"label": f"{PROJECT}=rollps"})
    since = time.time()
    proc = subprocess.Popen(
        [sys.executable, "-m", "supervisor", "compose", "-f", str(file), "rollout", "hold"],
        env=corral.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        events = dk.events(since=since, until=time.time() + 60, decode=True,
                           filters={"event": ["rollout_start", "start"]})
        new_id, started = "", False
        for event in events:  # the rollout begins, then its new replica starts
            if event["Action"] == "rollout_start":
                assert event["Actor"]["ID"] == old.id
                new_id = event["Actor"]["Attributes"]["to"]
            elif new_id and event["Actor"]["ID"] == new_id:
                started = True
                break
        events.close()
        assert started, f"no start of the new replica ({new_id or 'no rollout_start'}) in 60 s"
        ps = corral.cli("compose", "-f", str(file), "ps")
        assert ps.returncode == 0, ps.stderr
        tmp = f"{old.id[:12]}_rollps-hold-1"
        rows = {line.split()[0]: line for line in ps.stdout.splitlines()[1:]}
        assert f"rolling out to {tmp} (starting)" in rows["rollps-hold-1"], ps.stdout
        assert "rollout of rollps-hold-1 (starting)" in rows[tmp], ps.stdout
        assert dk.containers.get(new_id).exec_run(["touch", "/tmp/ok"]).exit_code == 0
        _out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    [new] = dk.containers.list(all=True, filters={"label": f"{PROJECT}=rollps"})
    assert new.id == new_id and new.name == "rollps-hold-1"
    after = corral.cli("compose", "-f", str(file), "ps")
    assert "rollout" not in after.stdout


def test_compose_rollout_refuses_a_service_without_update_config(
    corral: Daemon, tmp_path: Path
) -> None:
    file = tmp_path / "compose.yaml"
    file.write_text("name: rollno\nservices:\n  a:\n    image: busybox\n")
    r = corral.cli("compose", "-f", str(file), "rollout", "a")
    assert r.returncode == 1
    assert 'service "a" has no deploy.update_config' in r.stderr
    r = corral.cli("compose", "-f", str(file), "rollout", "nope")
    assert r.returncode == 1 and "no such service: nope" in r.stderr


def run_auto(corral: Daemon, image: str, port: int, label: str) -> Any:
    r = corral.cli(
        "run", "-d", "--name", "auto", "-p", f"127.0.0.1:{port}:8000", "-v", "autodata:/data",
        "--health-cmd", "wget -q -O /dev/null http://127.0.0.1:8000/health",
        "--health-interval", "200ms", "--health-retries", "2", "--stop-timeout", "2",
        "--label", label, image, "httpd", "-f", "-p", "8000", "-h", "/www",
    )
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def auto_update(corral: Daemon, *extra: str) -> tuple[int, dict[str, list[str]], str]:
    r = corral.cli("auto-update", *extra, timeout=120)
    rows = {}
    for line in r.stdout.splitlines()[1:]:
        cells = line.split()
        rows[cells[1].strip("()")] = cells[2:]
    return r.returncode, rows, r.stderr


def test_auto_update_local_rolls_out_without_a_failed_request_and_rolls_back_v3(
    corral: Daemon, dk: Any, tmp_path: Path
) -> None:
    """Podman's `local` policy, with Podman's label: the tag the container was made from
    moved; `auto-update --dry-run` says `pending`, `auto-update` rolls it out."""
    for v in ("v1", "v2"):
        build(corral, tmp_path, v)
    build(corral, tmp_path, "v3", healthy=False)
    assert corral.cli("tag", "rollapp:v1", "autoapp:latest").returncode == 0
    port = free_port()
    first = run_auto(corral, "autoapp:latest", port, "io.containers.autoupdate=local")
    assert dk.containers.get(first).exec_run(["sh", "-c", "echo kept > /data/k"]).exit_code == 0
    code, rows, err = auto_update(corral, "--dry-run")
    assert code == 0 and rows["auto"] == ["autoapp:latest", "local", "false"], (rows, err)

    assert corral.cli("tag", "rollapp:v2", "autoapp:latest").returncode == 0
    code, rows, err = auto_update(corral, "--dry-run")
    assert code == 0 and rows["auto"][-1] == "pending", (rows, err)
    assert dk.containers.get("auto").id == first  # a dry run changes nothing
    with Client(port) as client:
        client.wait_answers(25)
        code, rows, err = auto_update(corral)
        client.wait_answers(len(client.answers) + 25)
    assert code == 0 and rows["auto"][-1] == "true", (rows, err)
    assert client.failures == [] and client.runs() == ["v1", "v2"], client.failures[:5]
    now = dk.containers.get("auto")
    assert now.id != first and now.status == "running"
    assert now.exec_run(["cat", "/data/k"]).output.decode().strip() == "kept"
    assert first not in [c.id for c in dk.containers.list(all=True)]
    print(f"\nauto-update v1->v2: {len(client.answers)} requests, {len(client.failures)} failed")

    assert corral.cli("tag", "rollapp:v3", "autoapp:latest").returncode == 0
    with Client(port) as client:
        client.wait_answers(25)
        code, rows, err = auto_update(corral)
        client.wait_answers(len(client.answers) + 25)
    assert code == 1 and rows["auto"][-2:] == ["rolled", "back"], (rows, err)
    assert "health check" in err and "/health" in err, err
    assert client.failures == [] and client.runs() == ["v2"], client.failures[:5]
    assert dk.containers.get("auto").id == now.id
    assert [c.name for c in dk.containers.list(all=True)] == ["auto"]


def test_auto_update_registry_pulls_the_new_digest_and_rolls_out(
    corral: Daemon, dk: Any, tmp_path: Path, registry: Any
) -> None:
    """corral's label with the `registry` policy: the registry's digest for the tag moved
    (a v2 was pushed); it is pulled and rolled out."""
    for v in ("v1", "v2"):
        build(corral, tmp_path, v)
    ref = f"{registry.host}/autoapp:latest"
    for v in ("v2", "v1"):  # v1 pushed last: the registry and the host agree on v1
        assert corral.cli("tag", f"rollapp:{v}", ref).returncode == 0
        r = corral.cli("push", ref, timeout=120)
        assert r.returncode == 0, r.stderr
    port = free_port()
    first = run_auto(corral, ref, port, "corral.auto-update=registry")
    code, rows, err = auto_update(corral, "--dry-run")
    assert code == 0 and rows["auto"] == [ref, "registry", "false"], (rows, err)
    # v2 is pushed from elsewhere: here, the tag moves in the registry only
    assert corral.cli("tag", "rollapp:v2", ref).returncode == 0
    assert corral.cli("push", ref, timeout=120).returncode == 0
    assert corral.cli("tag", "rollapp:v1", ref).returncode == 0
    code, rows, err = auto_update(corral, "--dry-run")
    assert code == 0 and rows["auto"][-1] == "pending", (rows, err)
    with Client(port) as client:
        client.wait_answers(25)
        code, rows, err = auto_update(corral)
        client.wait_answers(len(client.answers) + 25)
    assert code == 0 and rows["auto"][-1] == "true", (rows, err)
    assert client.failures == [] and client.runs() == ["v1", "v2"], client.failures[:5]
    assert dk.containers.get("auto").id != first


def test_the_daemon_auto_updates_every_interval_of_its_config_file(
    private_daemon: Any, rootfs_tar: Path, tmp_path: Path, monkeypatch: Any
) -> None:
    """`auto-update-interval` in daemon.yaml: the daemon's own pass finds the moved tag
    and rolls the container out (seen as its `rollout_done` event)."""
    conf = tmp_path / "daemon.yaml"
    conf.write_text("auto-update-interval: 300ms\n")
    monkeypatch.setenv("CORRAL_CONFIG", str(conf))
    d = private_daemon()
    dk = d.client()
    try:
        dk.api.import_image_from_data(rootfs_tar.read_bytes(), repository="busybox", tag="latest")
        dk.images.get("busybox:latest").tag("timed", "latest")
        old = dk.containers.run(
            "timed:latest", ["sleep", "1000"], detach=True, name="timed",
            labels={"corral.auto-update": "local"},
            healthcheck={"test": ["CMD", "true"], "interval": 200_000_000},
        )
        since = time.time()
        maker = dk.containers.create("busybox:latest", ["true"])
        maker.commit("timed", "latest")  # the tag moves: a new image id
        events = dk.events(since=since, until=since + 60, decode=True,
                           filters={"event": "rollout_done"})
        done = next(iter(events))
        events.close()
        assert done["Actor"]["Attributes"]["from"] == old.id
        now = dk.containers.get("timed")
        assert now.id != old.id and now.id == done["Actor"]["ID"]
        assert now.image.id == dk.images.get("timed:latest").id
    finally:
        dk.close()


def test_compose_up_pull_always_rolls_out_what_the_registry_has_new(
    corral: Daemon, dk: Any, tmp_path: Path, registry: Any
) -> None:
    """`compose up --pull always`: the pull brings a new image for the tag, and the
    service rolls out to it with no failed request."""
    for v in ("v1", "v2"):
        build(corral, tmp_path, v)
    ref = f"{registry.host}/pullroll:latest"
    assert corral.cli("tag", "rollapp:v1", ref).returncode == 0
    assert corral.cli("push", ref, timeout=120).returncode == 0
    port = free_port()
    file = tmp_path / "compose.yaml"
    file.write_text(COMPOSE.format(port=port).replace("rollapp:latest", ref))
    r = corral.cli("compose", "-f", str(file), "up", "-d", "--wait", timeout=120)
    assert r.returncode == 0, r.stderr
    [v1] = web(dk)
    assert corral.cli("tag", "rollapp:v2", ref).returncode == 0
    assert corral.cli("push", ref, timeout=120).returncode == 0
    assert corral.cli("tag", "rollapp:v1", ref).returncode == 0  # here, still v1
    with Client(port) as client:
        client.wait_answers(25)
        r = corral.cli("compose", "-f", str(file), "up", "-d", "--pull", "always", timeout=120)
        client.wait_answers(len(client.answers) + 25)
    assert r.returncode == 0, r.stderr
    assert "Pulled" in r.stderr and "Ports switched" in r.stderr, r.stderr
    assert client.failures == [] and client.runs() == ["v1", "v2"], client.failures[:5]
    [v2] = web(dk)
    assert v2.id != v1.id and v2.name == "roll-web-1"


ROLLBACK = """\
name: rollrb
services:
  web:
    image: busybox
    command: [sleep, "1000"]
    stop_grace_period: 1s
    scale: 3
    ports: ["127.0.0.1::8000"]
    volumes: [claims:/claims]
    healthcheck:
      test: [CMD-SHELL, '{check}']
      interval: 200ms
      retries: 2
    deploy:
      update_config: {{order: start-first, parallelism: 1, failure_action: rollback}}
      rollback_config: {{order: start-first, parallelism: 0}}
volumes:
  claims:
"""
# the first replica to run it claims the volume's one slot and stays healthy; any other fails
CLAIM = "test -f /claims/$$(hostname) || { mkdir /claims/slot && touch /claims/$$(hostname); }"


def test_failure_action_rollback_puts_back_the_replicas_already_updated(
    corral: Daemon, dk: Any, tmp_path: Path
) -> None:
    """parallelism 1: replica 1 updates, replica 2 fails its check; `rollback` makes
    replica 1 what it was (rollback_config's order), replica 3 is never touched."""
    file = tmp_path / "compose.yaml"
    file.write_text(ROLLBACK.format(check="true"))
    assert corral.cli("compose", "-f", str(file), "up", "-d").returncode == 0
    before = {c.name: c.id for c in dk.containers.list(all=True,
                                                       filters={"label": f"{PROJECT}=rollrb"})}
    assert sorted(before) == ["rollrb-web-1", "rollrb-web-2", "rollrb-web-3"]
    hashes = {n: dk.containers.get(i).labels["com.docker.compose.config-hash"]
              for n, i in before.items()}
    ports = {n: dk.containers.get(i).ports["8000/tcp"] for n, i in before.items()}
    since = int(time.time())
    file.write_text(ROLLBACK.format(check=CLAIM))
    r = corral.cli("compose", "-f", str(file), "up", "-d", timeout=120)
    assert r.returncode == 1, r.stderr
    assert "rolling back 1 replica(s)" in r.stderr and "1 replica(s) left" in r.stderr, r.stderr
    after = {c.name: c for c in dk.containers.list(all=True,
                                                   filters={"label": f"{PROJECT}=rollrb"})}
    assert sorted(after) == ["rollrb-web-1", "rollrb-web-2", "rollrb-web-3"]
    assert after["rollrb-web-1"].id != before["rollrb-web-1"]  # made again, as it was
    assert after["rollrb-web-2"].id == before["rollrb-web-2"]  # its new one failed
    assert after["rollrb-web-3"].id == before["rollrb-web-3"]  # never reached
    for name, c in after.items():
        assert c.labels["com.docker.compose.config-hash"] == hashes[name]
        assert c.attrs["Config"]["Healthcheck"]["Test"] == ["CMD-SHELL", "true"]
        assert c.status == "running"
        assert c.ports["8000/tcp"] == ports[name]  # an ephemeral host port moves along
    events = dk.events(since=since, until=int(time.time()) + 1, decode=True,
                       filters={"type": "container", "label": f"{PROJECT}=rollrb"})
    ends = [(e["Action"], e["Actor"]["Attributes"].get("result")) for e in events
            if e["Action"] in ("rollout_done", "rollout_failed")]
    assert ends == [("rollout_done", "succeeded"), ("rollout_failed", "rolled_back"),
                    ("rollout_failed", "rolled_back")]


LEFT = """\
name: rollkill
services:
  web:
    image: busybox
    command: [httpd, -f, -p, "8000", -h, /etc]
    ports: ["127.0.0.1:{port}:8000"]
    stop_grace_period: 1s
    healthcheck:
      test: [CMD-SHELL, test -f /tmp/ok]
      interval: 200ms
      retries: 1000
    deploy:
      update_config: {{order: start-first}}
"""


def get_status(port: int) -> int:
    """The status of GET /passwd through the published port.  httpd binds a moment
    after its container's start returns (Docker's proxy resets a connection to a port
    nobody listens on yet, as ours does): a reset or refusal is retried, bounded."""
    deadline = time.monotonic() + 10
    while True:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            conn.request("GET", "/passwd", headers={"Connection": "close"})
            return conn.getresponse().status
        except (ConnectionResetError, ConnectionRefusedError, http.client.RemoteDisconnected):
            if time.monotonic() > deadline:
                raise
        finally:
            conn.close()
        time.sleep(0.05)  # a retry's pace, not a synchronisation: the answer is the event


def rollout_end(dk: Any, since: float, **match: str) -> dict[str, Any]:
    """The first rollout_done/rollout_failed event since `since` whose attributes
    include `match` (an event, not a sleep: the stream waits for it, bounded)."""
    events = dk.events(since=since, until=since + 60, decode=True,
                       filters={"event": ["rollout_done", "rollout_failed"]})
    try:
        for e in events:
            attrs = e["Actor"]["Attributes"]
            if all(attrs.get(k) == v for k, v in match.items()):
                return dict(e)
    finally:
        events.close()
    raise AssertionError(f"no rollout end with {match} within 60 s")


@pytest.mark.parametrize("old_died", [False, True], ids=["old-serving", "old-died"])
def test_a_client_killed_mid_rollout_leaves_the_daemon_to_roll_it_back(
    corral: Daemon, dk: Any, tmp_path: Path, old_died: bool
) -> None:
    """kill -9 of `compose rollout` while its new replica waits to be healthy: the
    daemon sees the rollout's held connection go, removes the new replica and ends the
    record rolled_back; the old one serves on its port (started again if it died
    meanwhile), nothing else is left."""
    port = free_port()
    file = tmp_path / "compose.yaml"
    file.write_text(LEFT.format(port=port))
    assert corral.cli("compose", "-f", str(file), "up", "-d").returncode == 0
    [old] = dk.containers.list(all=True, filters={"label": f"{PROJECT}=rollkill"})
    since = time.time()
    proc = subprocess.Popen(
        [sys.executable, "-m", "supervisor", "compose", "-f", str(file), "rollout", "web"],
        env=corral.env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        events = dk.events(since=since, until=since + 60, decode=True,
                           filters={"event": ["rollout_start", "start"]})
        new_id = ""
        for event in events:  # the rollout begins, then its new replica starts
            if event["Action"] == "rollout_start":
                new_id = event["Actor"]["Attributes"]["to"]
            elif new_id and event["Actor"]["ID"] == new_id:
                break
        events.close()
        assert new_id
        if old_died:
            old.kill()
            assert old.wait(timeout=30)["StatusCode"] == 137
        proc.kill()  # SIGKILL: no finally of the client's runs
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    end = rollout_end(dk, since, to=new_id)
    assert end["Action"] == "rollout_failed"
    assert end["Actor"]["Attributes"]["result"] == "rolled_back"
    assert end["Actor"]["Attributes"]["reason"] == "client went away"
    assert end["Actor"]["ID"] == old.id
    left = dk.containers.list(all=True, filters={"label": f"{PROJECT}=rollkill"})
    assert [(c.id, c.name, c.status) for c in left] == [(old.id, "rollkill-web-1", "running")]
    assert dk.api._result(dk.api._get(dk.api._url("/corral/rollouts")), json=True) == []
    assert get_status(port) == 200  # the old one serves on its port


@pytest.mark.parametrize("switched", [False, True], ids=["before-switch", "after-switch"])
def test_a_rollout_a_daemon_crash_left_is_finished_at_its_next_start(
    private_daemon: Any, rootfs_tar: Path, switched: bool
) -> None:
    """kill -9 of the daemon mid-rollout (its record is a file): at the next start a
    rollout not switched yet is rolled back (the new replica removed, the old one, whose
    restart policy starts it at boot, serves its port), one whose ports had moved to
    the healthy new replica is completed (the old one removed, the new one takes its
    name); either way the record ends with `reason: daemon restarted`."""
    port = free_port()
    d = private_daemon()
    dk = d.client()
    dk.api.import_image_from_data(rootfs_tar.read_bytes(), repository="busybox", tag="latest")
    httpd = ["httpd", "-f", "-p", "8000", "-h", "/etc"]
    old = dk.containers.run(
        "busybox:latest", httpd, detach=True, name="web",
        ports={"8000/tcp": ("127.0.0.1", port)}, restart_policy={"Name": "always"},
    )
    new = dk.containers.create(
        "busybox:latest", httpd, name=f"{old.id[:12]}_web",
        ports={"8000/tcp": ("127.0.0.1", port)},
        labels={"io.corral.rollout.successor-of": old.id}, restart_policy={"Name": "always"},
    )
    body = {"Project": "", "Service": "", "From": old.id, "To": new.id, "Order": "start-first"}
    answer = dk.api._post_json(dk.api._url("/corral/rollouts"), data=body)
    answer.raise_for_status()
    new.start()
    if switched:
        url = dk.api._url("/corral/rollouts/{0}/switch", answer.json()["Id"])
        dk.api._post(url, params={"drain": 0}).raise_for_status()
    assert get_status(port) == 200
    dk.close()
    since = time.time()
    d.proc.kill()
    d.proc.wait(timeout=30)

    d = private_daemon()
    dk = d.client()
    try:
        end = rollout_end(dk, since, to=new.id)
        attrs = end["Actor"]["Attributes"]
        assert attrs["reason"] == "daemon restarted"
        serving = new if switched else old
        if switched:
            assert (end["Action"], attrs["result"]) == ("rollout_done", "succeeded")
        else:
            assert (end["Action"], attrs["result"]) == ("rollout_failed", "rolled_back")
        assert end["Actor"]["ID"] == serving.id
        assert [(c.id, c.name) for c in dk.containers.list(all=True)] == [(serving.id, "web")]
        assert dk.api._result(dk.api._get(dk.api._url("/corral/rollouts")), json=True) == []
        assert not list((d.root / "rollouts").iterdir())
        # its boot start may come after the event: wait on its start event, not a sleep
        if dk.containers.get(serving.id).status != "running":
            events = dk.events(since=since, until=since + 60, decode=True,
                               filters={"event": "start", "container": serving.id})
            next(iter(events))
            events.close()
        assert get_status(port) == 200
    finally:
        dk.close()


def link_address(name: str) -> str:
    return Path(f"/sys/class/net/{name}/address").read_text().strip()


def gateway_mac(dk: Any, network: str) -> tuple[str, str]:
    """(bridge name, the fixed address it must have: 02:42 + the gateway's bytes)."""
    attrs = dk.networks.get(network).attrs
    gateway = attrs["IPAM"]["Config"][0]["Gateway"]
    mac = "02:42:" + ":".join(f"{int(b):02x}" for b in gateway.split("."))
    return attrs["Options"]["com.docker.network.bridge.name"], mac


def test_a_rollout_on_the_default_bridge_leaves_run_made_neighbours_serving(
    corral: Daemon, dk: Any, tmp_path: Path
) -> None:
    """`corral run -p` containers on the default bridge: a neighbour's rollout (its
    failed replica's veth come and gone) changes nothing for them; the bridge keeps
    its fixed address throughout, so no container's ARP entry for the gateway goes
    stale and a relayed request to the neighbour is answered at once."""
    build(corral, tmp_path, "v2")
    build(corral, tmp_path, "v3", healthy=False)
    assert corral.cli("tag", "rollapp:v2", "nbapp:latest").returncode == 0
    near = free_port()
    r = corral.cli("run", "-d", "--name", "near", "-p", f"127.0.0.1:{near}:8000",
                   "busybox", "httpd", "-f", "-p", "8000", "-h", "/etc")
    assert r.returncode == 0, r.stderr
    port = free_port()
    first = run_auto(corral, "nbapp:latest", port, "corral.auto-update=local")
    bridge, mac = gateway_mac(dk, "bridge")
    assert link_address(bridge) == mac
    assert get_status(near) == 200

    assert corral.cli("tag", "rollapp:v3", "nbapp:latest").returncode == 0
    code, rows, err = auto_update(corral)
    assert code == 1 and rows["auto"][-2:] == ["rolled", "back"], (rows, err)
    assert link_address(bridge) == mac  # the failed replica's veth went: no change
    assert get_status(near) == 200
    assert sorted((c.name, c.status) for c in dk.containers.list(all=True)) == [
        ("auto", "running"), ("near", "running")
    ]
    assert dk.containers.get("auto").id == first
    with Client(port) as client:
        client.wait_answers(5)
    assert client.failures == [] and client.runs() == ["v2"]


def test_a_bridge_an_older_root_made_gets_the_fixed_address_at_the_next_start(
    private_daemon: Any, rootfs_tar: Path
) -> None:
    """A user network's bridge outlives a killed daemon.  One an older root made (no
    fixed address: as `ip link add type bridge` makes it) is taken over at the next
    daemon's first start on it: the start works, the port answers, and the bridge has
    the fixed address from then on."""
    port = free_port()
    d = private_daemon()
    dk = d.client()
    dk.api.import_image_from_data(rootfs_tar.read_bytes(), repository="busybox", tag="latest")
    dk.networks.create("older")
    httpd = ["httpd", "-f", "-p", "8000", "-h", "/etc"]
    c = dk.containers.run("busybox:latest", httpd, detach=True, network="older",
                          ports={"8000/tcp": ("127.0.0.1", port)})
    bridge, mac = gateway_mac(dk, "older")
    assert link_address(bridge) == mac
    dk.close()
    d.proc.kill()
    d.proc.wait(timeout=30)
    kill_holder(d.root)  # a reboot: the container stopped too (else a live restore)
    # what an older root left: a bridge with its own random address and no gateway
    subprocess.run(["ip", "link", "del", bridge], check=True)
    subprocess.run(["ip", "link", "add", "name", bridge, "type", "bridge"], check=True)
    assert link_address(bridge) != mac

    d = private_daemon()
    dk = d.client()
    try:
        dk.containers.get(c.id).start()
        assert get_status(port) == 200
        assert link_address(bridge) == mac
    finally:
        dk.close()
