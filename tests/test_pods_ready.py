"""A Service's published port follows its pod's readiness, as Kubernetes sends Service
traffic only to ready pods: while a readiness probe fails, new connections to the
port are reset (open ones go on), and it serves again once the probe passes."""

from __future__ import annotations

import json
import socket
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from conftest import Daemon

POD = """
apiVersion: v1
kind: Pod
metadata: {name: gate, labels: {app: gate}}
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
  - name: side
    image: busybox
    command: [sleep, 1d]
---
apiVersion: v1
kind: Service
metadata: {name: gate}
spec:
  type: NodePort
  selector: {app: gate}
  ports: [{port: 8080, targetPort: http, nodePort: PORT}]
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_event(dk: Any, name: str, action: str, since: int, after: int = 0) -> int:
    for ev in dk.events(since=since, until=int(time.time()) + 120, decode=True,
                        filters={"container": name}):
        if ev.get("Action") == action and int(ev["timeNano"]) > after:
            return int(ev["timeNano"])
    raise AssertionError(f"the event stream ended before {action}")


def get(port: int, path: str) -> bytes:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as resp:
        return bytes(resp.read())


def test_a_pods_service_port_serves_only_while_it_is_ready(
    corral: Daemon, dk: Any, tmp_path: Path
) -> None:
    port = free_port()
    since = int(time.time()) - 1
    f = tmp_path / "gate.yaml"
    f.write_text(POD.replace("PORT", str(port)))
    r = corral.cli("kube", "play", str(f))
    assert r.returncode == 0, r.stderr
    ready = wait_event(dk, "gate-web", "health_status: healthy", since)
    assert get(port, "/ready") == b"ok\n"
    held = socket.create_connection(("127.0.0.1", port), timeout=10)  # opened while ready

    web = dk.containers.get("gate-web")
    assert web.exec_run(["rm", "/www/ready"]).exit_code == 0  # the probe now gets a 404
    failed = wait_event(dk, "gate-web", "health_status: unhealthy", since, after=ready)
    # not even a 404: reset, at the connect already when the proxy's RST beats its end
    reset = pytest.raises((ConnectionResetError, BrokenPipeError))
    with reset, socket.create_connection(("127.0.0.1", port), timeout=10) as new:
        new.sendall(b"GET /ready HTTP/1.0\r\n\r\n")
        new.recv(64)
    held.sendall(b"GET /ready HTTP/1.0\r\n\r\n")  # an open connection keeps its upstream
    assert held.recv(64).startswith(b"HTTP/1.")
    held.close()

    assert web.exec_run(["sh", "-c", "echo ok > /www/ready"]).exit_code == 0
    wait_event(dk, "gate-web", "health_status: healthy", since, after=failed)
    assert get(port, "/ready") == b"ok\n"  # ready again: served again

    (info,) = json.loads(corral.cli("pod", "inspect", "gate").stdout)
    assert info["Ready"] is True
    r = corral.cli("kube", "play", "--down", str(f))
    assert r.returncode == 0, r.stderr
