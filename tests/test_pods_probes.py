"""Kubernetes probes on corral: the counting rules, and real pods from `kube play` whose
httpGet/tcpSocket/exec probes the daemon runs (readiness as the container's health, a
failed liveness or startup probe kills it for its restart policy)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import Daemon

from supervisor.pods import probes


def probe(kind: str = "liveness", **raw: Any) -> probes.Probe:
    return probes.from_kube(kind, raw, "p")


def test_a_verdict_flips_after_the_thresholds_in_a_row() -> None:
    c = probes.Counter(probe("readiness", exec={"command": ["true"]}, successThreshold=2,
                             failureThreshold=2))
    assert [c.observe(ok) for ok in (True, True, True, False, True, False, False, False)] == [
        None, True, None, None, None, None, False, None]


def test_probe_fields_as_kubernetes_reads_them() -> None:
    p = probes.from_kube("readiness", {"httpGet": {"path": "/ready", "port": "web",
                                                   "httpHeaders": [{"name": "X", "value": "1"}]},
                                       "periodSeconds": 2}, "p", {"web": 8080})
    assert (p.action, p.port, p.path, p.period, p.timeout, p.failure_threshold) == (
        "httpGet", 8080, "/ready", 2.0, 1.0, 3)
    assert probes.decode({probes.PROBES_LABEL: probes.encode([p])}) == [p]
    assert probes.http_request(p, "10.0.0.2").startswith(
        b"GET /ready HTTP/1.1\r\nHost: 10.0.0.2:8080\r\nUser-Agent: kube-probe/corral\r\n")
    assert probes.http_status(b"HTTP/1.1 302 Found\r\n") == 302
    assert probes.http_status(b"HTTP/1.1 30") is None
    assert [probes.http_status_ok(s) for s in (199, 200, 399, 400)] == [False, True, True, False]


@pytest.mark.parametrize(("kind", "raw", "error"), [
    ("liveness", {"grpc": {"port": 1}}, "field p.grpc is not supported by corral"),
    ("liveness", {}, "p needs exactly one of exec, httpGet, tcpSocket"),
    ("liveness", {"tcpSocket": {"port": 1}, "successThreshold": 2},
     "p.successThreshold must be 1 for a liveness probe"),
    ("readiness", {"httpGet": {"port": 80, "scheme": "HTTPS"}},
     "p.httpGet.scheme HTTPS is not supported by corral"),
    ("readiness", {"tcpSocket": {"port": "nope"}}, "p.tcpSocket.port nope names no port"),
    ("startup", {"exec": {"command": []}}, "p.exec.command is required"),
    ("startup", {"exec": {"command": ["x"]}, "periodSeconds": 0},
     "p.periodSeconds must be a whole number >= 1"),
])
def test_what_cannot_run_is_named(kind: str, raw: dict[str, Any], error: str) -> None:
    with pytest.raises(probes.ProbeError) as info:
        probes.from_kube(kind, raw, "p")
    assert error in str(info.value)


def play(corral: Daemon, tmp_path: Path, text: str) -> Path:
    f = tmp_path / "pod.yaml"
    f.write_text(text)
    r = corral.cli("kube", "play", str(f))
    assert r.returncode == 0, r.stderr
    return f


def wait_event(dk: Any, name: str, action: str, since: int, after: int = 0) -> int:
    """The container's first event `action` since `since` and after the event at
    `after` (timeNano), blocking on the event stream; its timeNano."""
    for ev in dk.events(since=since, until=int(time.time()) + 120, decode=True,
                        filters={"container": name}):
        if ev.get("Action") == action and int(ev["timeNano"]) > after:
            return int(ev["timeNano"])
    raise AssertionError(f"the event stream ended before {action}")


SERVER = """
apiVersion: v1
kind: Pod
metadata: {name: rd}
spec:
  containers:
  - name: web
    image: busybox
    command: [sh, -c, 'mkdir -p /www && echo ok > /www/ready && exec httpd -f -p 8080 -h /www']
    ports: [{name: http, containerPort: 8080}]
    readinessProbe:
      httpGet: {path: /ready, port: http}
      periodSeconds: 1
      failureThreshold: 1
    livenessProbe:
      tcpSocket: {port: 8080}
      periodSeconds: 1
"""


def test_readiness_by_httpget_is_the_containers_health(
    corral: Daemon, dk: Any, tmp_path: Path
) -> None:
    since = int(time.time()) - 1
    play(corral, tmp_path, SERVER)
    ready = wait_event(dk, "rd-web", "health_status: healthy", since)
    c = dk.containers.get("rd-web")
    assert c.attrs["State"]["Health"]["Status"] == "healthy"
    assert "(healthy)" in corral.cli("ps", "--filter", "name=rd-web").stdout
    (info,) = json.loads(corral.cli("pod", "inspect", "rd").stdout)
    assert info["Ready"] is True and info["Containers"][0]["Ready"] is True
    assert c.exec_run(["rm", "/www/ready"]).exit_code == 0  # now a 404
    wait_event(dk, "rd-web", "health_status: unhealthy", since, after=ready)
    c.reload()
    assert c.attrs["State"]["Health"]["Status"] == "unhealthy"
    assert c.attrs["State"]["Running"] and c.attrs["RestartCount"] == 0  # not killed
    (info,) = json.loads(corral.cli("pod", "inspect", "rd").stdout)
    assert info["Ready"] is False and info["State"] == "Running"


LIVENESS = """
apiVersion: v1
kind: Pod
metadata: {name: lv}
spec:
  restartPolicy: RESTART
  containers:
  - name: app
    image: busybox
    command: [sleep, '1000']
    livenessProbe:
      tcpSocket: {port: 9}
      periodSeconds: 1
      failureThreshold: 2
"""


def test_a_failed_liveness_probe_kills_and_the_policy_restarts(
    corral: Daemon, dk: Any, tmp_path: Path
) -> None:
    since = int(time.time()) - 1
    play(corral, tmp_path, LIVENESS.replace("RESTART", "Always"))
    failed = wait_event(dk, "lv-app", "liveness_probe: failure", since)
    killed = wait_event(dk, "lv-app", "die", since, after=failed)
    wait_event(dk, "lv-app", "start", since, after=killed)  # the policy's restart
    assert dk.containers.get("lv-app").attrs["RestartCount"] >= 1


def test_a_failed_startup_probe_kills_and_never_restarts(
    corral: Daemon, dk: Any, tmp_path: Path
) -> None:
    text = LIVENESS.replace("RESTART", "Never").replace("{name: lv}", "{name: su}").replace(
        "livenessProbe:\n      tcpSocket: {port: 9}",
        "startupProbe:\n      exec: {command: ['false']}")
    since = int(time.time()) - 1
    play(corral, tmp_path, text)
    wait_event(dk, "su-app", "startup_probe: failure", since)
    assert dk.containers.get("su-app").wait(timeout=30)["StatusCode"] == 137
    c = dk.containers.get("su-app")
    assert c.attrs["State"]["Status"] == "exited" and c.attrs["RestartCount"] == 0


def test_probes_and_a_health_check_together_are_refused(corral: Daemon, dk: Any) -> None:
    import docker

    label = probes.encode([probe(exec={"command": ["true"]})])
    with pytest.raises(docker.errors.APIError) as info:
        dk.containers.create("busybox", ["true"], labels={probes.PROBES_LABEL: label},
                             healthcheck={"test": ["CMD", "true"]})
    assert info.value.status_code == 400
    assert "Kubernetes probes and a health check cannot be set together" in str(info.value)
    with pytest.raises(docker.errors.APIError) as info:
        dk.containers.create("busybox", ["true"], labels={probes.PROBES_LABEL: "{"})
    assert f"label {probes.PROBES_LABEL} is not JSON" in str(info.value)
    assert dk.containers.list(all=True) == []
