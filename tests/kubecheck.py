"""Kubernetes' own checks of generated YAML, offline.

- `kubernetes-validate` (a test-only dependency) holds the official OpenAPI schemas of
  each Kubernetes minor version; every document is checked, strictly (no unknown
  field), against the three newest it bundles.
- `kubectl apply --dry-run=client --validate=false -o yaml` for parse errors: kubectl
  needs the API's discovery documents even for a client dry run, so a tiny local
  server answers them (and 404 for every object: nothing exists yet).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml


def newest_versions(n: int = 3) -> list[str]:
    from kubernetes_validate import utils

    minors: list[str] = []
    for v in reversed(utils.all_versions()):
        mm = utils.major_minor(v)
        if mm not in minors:
            minors.append(mm)
    return minors[:n]


def validate(docs: list[dict[str, Any]]) -> list[str]:
    """Every document against the newest three minor versions; the versions checked."""
    import kubernetes_validate

    versions = newest_versions()
    assert len(versions) == 3
    for doc in docs:
        for version in versions:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                where = ".".join(str(p) for p in exc.path)
                raise AssertionError(
                    f"{doc['kind']}/{doc['metadata']['name']} is not valid Kubernetes "
                    f"{version}: {where}: {exc.message}") from None
    return versions


_GROUPS = {
    "v1": [("pods", "Pod"), ("services", "Service"), ("configmaps", "ConfigMap"),
           ("secrets", "Secret"), ("persistentvolumeclaims", "PersistentVolumeClaim")],
    "apps/v1": [("deployments", "Deployment")],
}


def _resource_list(group_version: str) -> dict[str, Any]:
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version,
            "resources": [{"name": name, "singularName": kind.lower(), "namespaced": True,
                           "kind": kind, "verbs": ["create", "get", "list", "patch"]}
                          for name, kind in _GROUPS[group_version]]}


class _Discovery(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        path = self.path.split("?")[0]
        body: dict[str, Any]
        status = 200
        if path == "/api":
            body = {"kind": "APIVersions", "versions": ["v1"],
                    "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0",
                                                    "serverAddress": "127.0.0.1"}]}
        elif path == "/apis":
            body = {"kind": "APIGroupList", "apiVersion": "v1", "groups": [{
                "name": "apps", "versions": [{"groupVersion": "apps/v1", "version": "v1"}],
                "preferredVersion": {"groupVersion": "apps/v1", "version": "v1"}}]}
        elif path == "/api/v1":
            body = _resource_list("v1")
        elif path == "/apis/apps/v1":
            body = _resource_list("apps/v1")
        else:
            status = 404
            body = {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                    "reason": "NotFound", "code": 404, "message": "not found"}
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def _discovery_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Discovery)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def kubectl_dry_run(text: str, tmp: Path) -> list[dict[str, Any]]:
    """`kubectl apply --dry-run=client` of the YAML; the objects kubectl made of it."""
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl not installed (Debian's kubectl package)")
    with _discovery_server() as server:
        kubeconfig = tmp / "kubeconfig"
        kubeconfig.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "c",
            "clusters": [{"name": "c", "cluster": {"server": server}}],
            "contexts": [{"name": "c", "context": {"cluster": "c", "namespace": "default"}}],
            "users": [{"name": "u", "user": {}}]}))
        r = subprocess.run(
            ["kubectl", "--kubeconfig", str(kubeconfig), "--cache-dir", str(tmp / "kcache"),
             "apply", "--dry-run=client", "--validate=false", "-o", "yaml", "-f", "-"],
            input=text, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, f"kubectl refused the YAML: {r.stderr}"
    out = yaml.safe_load(r.stdout)
    items: list[dict[str, Any]] = out["items"] if out.get("kind") == "List" else [out]
    return items
