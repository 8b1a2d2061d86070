"""Round trip: a compose project -> `kube generate --project` -> `compose down` ->
`kube play` of that YAML gives the same running services."""

from __future__ import annotations

import socket
import urllib.request
from pathlib import Path
from typing import Any

import kubecheck
import pytest
import yaml
from conftest import Daemon

PROJECT = """\
name: rt
services:
  web:
    image: busybox
    command:
      - sh
      - -c
      - 'echo "$$GREETING from $$(cat /data/seed)" > /www/index.html; exec httpd -f -p 8080 -h /www'
    environment: {GREETING: hello}
    ports: ["PORT:8080"]
    volumes: [data:/data, www:/www]
    stop_grace_period: 1s
  worker:
    image: busybox
    command: [sh, -c, 'exec sleep 100000']
    environment: {MODE: batch, LEVEL: "3"}
    scale: 2
    stop_grace_period: 1s
volumes:
  data:
  www:
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def get(port: int) -> bytes:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html", timeout=10) as r:
        body: bytes = r.read()
        return body


def services(dk: Any, label: str) -> dict[str, list[tuple[str, list[str]]]]:
    """service -> [(image, sorted env)] of the running containers carrying `label`."""
    out: dict[str, list[tuple[str, list[str]]]] = {}
    for c in dk.containers.list(filters={"label": label}):
        labels = c.labels
        if labels.get("io.corral.kube.infra"):
            continue
        service = labels.get("com.docker.compose.service") or labels["app.kubernetes.io/name"]
        attrs = c.attrs["Config"]
        out.setdefault(service, []).append((attrs["Image"], sorted(attrs["Env"])))
    return {k: sorted(v) for k, v in sorted(out.items())}


@pytest.mark.parametrize("kind", ["deployment", "pod"])
def test_compose_to_kube_and_back(corral: Daemon, dk: Any, tmp_path: Path, kind: str) -> None:
    port = free_port()
    compose = tmp_path / "compose.yaml"
    compose.write_text(PROJECT.replace("PORT", str(port)))
    # the volume's data, made before the project first runs
    dk.volumes.create("rt_data")
    dk.containers.run("busybox", ["sh", "-c", "echo seeded > /data/seed"],
                      volumes={"rt_data": {"bind": "/data"}}, remove=True)
    r = corral.cli("up", "-d", "-f", str(compose), timeout=120)
    assert r.returncode == 0, r.stderr
    assert get(port) == b"hello from seeded\n"
    before = services(dk, "com.docker.compose.project=rt")
    assert sorted(before) == ["web", "worker"] and len(before["worker"]) == 2

    out = tmp_path / "rt.yaml"
    r = corral.cli("kube", "generate", "--project", "rt", "--type", kind, "-f", str(out))
    assert r.returncode == 0, r.stderr
    docs = [d for d in yaml.safe_load_all(out.read_text()) if d]
    kubecheck.validate(docs)

    r = corral.cli("down", "-f", str(compose), timeout=120)  # volumes stay
    assert r.returncode == 0, r.stderr
    assert dk.containers.list(all=True) == []

    r = corral.cli("kube", "play", str(out), timeout=120)
    assert r.returncode == 0, r.stderr
    after = services(dk, "io.corral.kube.played=true")
    if kind == "pod":  # a Pod runs one replica (generate said so)
        assert "2 replicas; a Pod runs one" in (tmp_path / "rt.yaml").read_text()
        before["worker"] = before["worker"][:1]
    assert after == before
    assert get(port) == b"hello from seeded\n"

    r = corral.cli("kube", "play", "--down", str(out), timeout=120)
    assert r.returncode == 0, r.stderr
    assert dk.containers.list(all=True) == []
    # the project's volumes were not play's to remove
    assert sorted(v.name for v in dk.volumes.list()) == ["rt_data", "rt_www"]
