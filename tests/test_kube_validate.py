"""Every document `kube generate` writes is valid Kubernetes: the official schemas of the
three newest minor versions (kubernetes-validate, strict) and kubectl's parser."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubecheck
import pytest
import yaml
from conftest import Daemon

EXAMPLE = Path(__file__).parent.parent / "examples" / "compose.yaml"


def generated(corral: Daemon, *args: str) -> tuple[str, list[dict[str, Any]]]:
    r = corral.cli("kube", "generate", *args)
    assert r.returncode == 0, r.stderr
    return r.stdout, [d for d in yaml.safe_load_all(r.stdout) if d]


def run(corral: Daemon, *args: str) -> None:
    r = corral.cli("run", "-d", *args)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("kind", ["pod", "deployment"])
@pytest.mark.parametrize("service_type", ["ClusterIP", "NodePort", "LoadBalancer"])
def test_generated_from_containers_validates(
    corral: Daemon, tmp_path: Path, kind: str, service_type: str
) -> None:
    run(corral, "--name", "full", "-p", "18081:80", "-p", "31053:53/udp", "-e", "A=1",
        "-m", "48m", "--cpus", "0.25", "--restart", "on-failure:2", "-u", "1000:1000",
        "--cap-add", "NET_ADMIN", "--cap-drop", "ALL", "--read-only", "--tmpfs", "/run",
        "-v", "kv_data:/data", "-v", f"{tmp_path}:/host:ro", "-v", "/anon",
        "--health-cmd", "true", "--health-interval", "2s", "--health-retries", "4",
        "--health-start-period", "5s", "--health-timeout", "1s", "-l", "tier=front end",
        "-l", "bad key=x", "--add-host", "db.local:10.0.0.5", "--stop-timeout", "3",
        "-w", "/data", "--pids-limit", "20", "--entrypoint", "/bin/sh",
        "busybox", "-c", "exec sleep 1000")
    run(corral, "--name", "priv_1", "--privileged", "--restart", "unless-stopped",
        "busybox", "sleep", "1000")
    text, docs = generated(corral, "full", "priv_1", "--type", kind,
                           "--service-type", service_type)
    assert {d["kind"] for d in docs} == {
        "PersistentVolumeClaim", "Service", "Pod" if kind == "pod" else "Deployment"}
    assert kubecheck.validate(docs) == kubecheck.newest_versions()
    made = kubecheck.kubectl_dry_run(text, tmp_path)
    assert [(m["kind"], m["metadata"]["name"]) for m in made] == [
        (d["kind"], d["metadata"]["name"]) for d in docs]


def test_the_example_project_validates_and_plays_back(corral: Daemon, tmp_path: Path) -> None:
    r = corral.cli("up", "-d", "-f", str(EXAMPLE), timeout=120)
    assert r.returncode == 0, r.stderr
    try:
        for kind in ("pod", "deployment"):
            text, docs = generated(corral, "--project", "demo", "--type", kind)
            names = {(d["kind"], d["metadata"]["name"]) for d in docs}
            workload = "Pod" if kind == "pod" else "Deployment"
            assert {(workload, "db"), (workload, "setup"), (workload, "web"),
                    ("PersistentVolumeClaim", "demo-data")} <= names
            kubecheck.validate(docs)
            kubecheck.kubectl_dry_run(text, tmp_path)
        web = next(d for d in docs if d["metadata"]["name"] == "web")
        assert web["spec"]["replicas"] == 2
        # ... and the Deployments play back on corral
        out = tmp_path / "demo.yaml"
        out.write_text(text)
        r = corral.cli("down", "-f", str(EXAMPLE), timeout=120)
        assert r.returncode == 0, r.stderr
        r = corral.cli("kube", "play", str(out), timeout=120)
        assert r.returncode == 0, r.stderr
        assert r.stdout.splitlines() == ["pod/db-1 created", "pod/setup-1 created",
                                         "pod/web-1 created", "pod/web-2 created"]
        r = corral.cli("exec", "web-2-web", "cat", "/www/index.html")
        assert r.returncode == 0 and r.stdout == (EXAMPLE.parent / "www" / "index.html"
                                                  ).read_text()
        r = corral.cli("exec", "db-1-db", "cat", "/data/state")
        assert r.returncode == 0 and r.stdout.startswith("ready at"), r.stderr
        r = corral.cli("kube", "play", "--down", str(out), timeout=120)
        assert r.returncode == 0, r.stderr
    finally:
        corral.cli("down", "-v", "-f", str(EXAMPLE), timeout=120)


def test_the_checks_can_fail(tmp_path: Path) -> None:
    """The validator is not a rubber stamp: an unknown field and a wrong type fail."""
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"},
           "spec": {"containers": [{"name": "x", "image": "busybox", "colour": "red"}]}}
    with pytest.raises(AssertionError, match="colour"):
        kubecheck.validate([pod])
    pod["spec"] = {"containers": [{"name": "x", "image": "busybox", "args": "not-a-list"}]}
    with pytest.raises(AssertionError, match="args"):
        kubecheck.validate([pod])
    with pytest.raises(AssertionError, match="kubectl refused"):
        kubecheck.kubectl_dry_run("apiVersion: v1\nkind: Pod\n\tmetadata: [\n", tmp_path)
