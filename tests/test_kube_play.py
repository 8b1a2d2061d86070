"""`corral kube play`: Kubernetes YAML run on corral; the pure core's plan and real pods."""

from __future__ import annotations

import json
import socket
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import Daemon

from supervisor.kube import play as core
from supervisor.pods import probes

POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"app": "p"}},
       "spec": {"containers": [{"name": "c", "image": "busybox", "args": ["sleep", "9"]}]}}


def plan(*bodies: dict[str, Any]) -> core.Plan:
    return core.plan([core.Doc("f.yaml", i, b) for i, b in enumerate(bodies, 1)])


def refused(*bodies: dict[str, Any]) -> str:
    with pytest.raises(core.PlayError) as info:
        plan(*bodies)
    return str(info.value)


def with_container(**fields: Any) -> dict[str, Any]:
    c = dict(POD["spec"]["containers"][0], **fields)  # type: ignore[index]
    return dict(POD, spec={"containers": [c]})


def test_unsupported_kinds_and_fields_are_named_with_file_and_doc() -> None:
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"}}
    assert refused(POD, job) == "f.yaml:doc 2: kind Job is not supported"
    assert refused(with_container(lifecycle={})) == (
        "f.yaml:doc 1: field spec.containers[0].lifecycle is not supported by corral")
    probe = {"grpc": {"port": 80}}
    assert refused(with_container(readinessProbe=probe)) == (
        "f.yaml:doc 1: field spec.containers[0].readinessProbe.grpc is not supported "
        "by corral")
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
           "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "d"}},
                    "strategy": {}, "template": {}}}
    assert refused(dep) == "f.yaml:doc 1: field spec.strategy is not supported by corral"


def test_a_pod_is_an_infra_and_members_joined_to_it() -> None:
    two = dict(POD, spec={"containers": [
        {"name": "a", "image": "busybox", "command": ["sh"], "args": ["-c", "x"],
         "env": [{"name": "K", "value": "v"}],
         "resources": {"limits": {"memory": "64Mi", "cpu": "500m"}},
         "readinessProbe": {"exec": {"command": ["/bin/sh", "-c", "true"]},
                            "periodSeconds": 2, "failureThreshold": 4},
         "securityContext": {"runAsUser": 1000, "runAsGroup": 1000,
                             "capabilities": {"drop": ["ALL"]}}},
        {"name": "b", "image": "busybox"}], "restartPolicy": "OnFailure"})
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
           "spec": {"selector": {"app": "p"}, "ports": [{"port": 18000, "targetPort": 80}]}}
    p = plan(two, svc)
    (pod,) = p.pods
    assert pod.infra.name == "p-infra" and pod.infra.body["Hostname"] == "p"
    assert pod.infra.body["HostConfig"]["PortBindings"] == {
        "80/tcp": [{"HostIp": "", "HostPort": "18000"}]}
    a, b = pod.members
    assert (a.name, b.name) == ("p-a", "p-b")
    assert a.body["Entrypoint"] == ["sh"] and a.body["Cmd"] == ["-c", "x"]
    assert "Entrypoint" not in b.body and "Cmd" not in b.body  # the image's own
    assert a.body["Env"] == ["K=v"] and a.body["User"] == "1000:1000"
    host = a.body["HostConfig"]
    assert host["NetworkMode"] == "container:p-infra"
    assert host["Memory"] == 64 << 20 and host["NanoCpus"] == 500_000_000
    assert host["RestartPolicy"] == {"Name": "on-failure"} and host["CapDrop"] == ["ALL"]
    assert "Healthcheck" not in a.body  # Kubernetes probes, run as the kubelet runs them
    (probe,) = probes.decode(a.body["Labels"])
    assert (probe.kind, probe.action, probe.command) == (
        "readiness", "exec", ("/bin/sh", "-c", "true"))
    assert (probe.period, probe.failure_threshold) == (2.0, 4)
    assert a.body["Labels"][core.PLAYED] == "true" and a.body["Labels"]["app"] == "p"


def test_a_deployment_is_that_many_pods_and_its_port_is_published_once() -> None:
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
           "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                    "template": {"metadata": {"labels": {"app": "web"}},
                                 "spec": {"containers": [{"name": "web",
                                                          "image": "busybox"}]}}}}
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
           "spec": {"selector": {"app": "web"}, "ports": [{"port": 8080}]}}
    p = plan(dep, svc)
    assert [pod.name for pod in p.pods] == ["web-1", "web-2", "web-3"]
    assert [bool(pod.infra.body["HostConfig"]["PortBindings"]) for pod in p.pods] == [
        True, False, False]
    assert any("published by its first pod only" in n for n in p.notes)


def test_claims_keep_their_corral_name_and_secrets_decode() -> None:
    pvc = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
           "metadata": {"name": "demo-data",
                        "annotations": {"corral.io/volume-name": "demo_data"}},
           "spec": {"accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": "1Gi"}}}}
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
              "data": {"pw": "aHVudGVyMg=="}}
    pod = dict(POD, spec={
        "containers": [{"name": "c", "image": "busybox",
                        "env": [{"name": "PW", "valueFrom": {
                            "secretKeyRef": {"name": "s", "key": "pw"}}}],
                        "volumeMounts": [{"name": "d", "mountPath": "/data"},
                                         {"name": "sec", "mountPath": "/s", "readOnly": True}]}],
        "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "demo-data"}},
                    {"name": "sec", "secret": {"secretName": "s"}}]})
    p = plan(pvc, secret, pod)
    (c,) = p.pods[0].members
    assert c.body["Env"] == ["PW=hunter2"]
    assert c.body["HostConfig"]["Mounts"] == [
        {"Type": "volume", "Source": "demo_data", "Target": "/data", "ReadOnly": False},
        {"Type": "volume", "Source": "p-sec", "Target": "/s", "ReadOnly": True}]
    vols = {v.name: v for v in p.volumes}
    assert vols["demo_data"].shared and vols["p-sec"].files == {"pw": b"hunter2"}
    missing = dict(pod, spec=dict(pod["spec"], volumes=[
        {"name": "sec", "configMap": {"name": "nope"}}]))
    assert "ConfigMap/nope is not in the files played" in refused(missing)


# -- real pods --------------------------------------------------------------------------

DUO = """\
apiVersion: v1
kind: ConfigMap
metadata: {name: site}
data: {GREETING: hello, index.html: "<h1>from a configmap</h1>"}
---
apiVersion: v1
kind: Pod
metadata: {name: duo, labels: {app: duo}}
spec:
  containers:
  - name: web
    image: busybox
    args: [httpd, -f, -p, "80", -h, /www]
    envFrom: [{configMapRef: {name: site}}]
    volumeMounts: [{name: www, mountPath: /www}]
  - name: client
    image: busybox
    command: [sh, -c, 'exec sleep 1000']
    volumeMounts: [{name: scratch, mountPath: /scratch}]
  volumes:
  - {name: www, configMap: {name: site}}
  - {name: scratch, emptyDir: {}}
---
apiVersion: v1
kind: Service
metadata: {name: duo}
spec:
  selector: {app: duo}
  ports: [{port: PORT, targetPort: 80}]
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def kube(corral: Daemon, *args: str) -> Any:
    r = corral.cli("kube", *args)
    assert r.returncode == 0, r.stderr
    return r


def names(dk: Any) -> list[str]:
    return sorted(c.name for c in dk.containers.list(all=True))


def test_play_a_pod_then_down_removes_exactly_it(
    corral: Daemon, dk: Any, tmp_path: Path
) -> None:
    port = free_port()
    file = tmp_path / "duo.yaml"
    file.write_text(DUO.replace("PORT", str(port)))
    dk.containers.run("busybox", ["sleep", "1000"], name="bystander", detach=True)
    dk.volumes.create("bystander-vol")
    assert kube(corral, "play", str(file)).stdout == "pod/duo created\n"
    assert names(dk) == ["bystander", "duo-client", "duo-infra", "duo-web"]
    # members share one network namespace (localhost) and one hostname
    client = dk.containers.get("duo-client")
    code, out = client.exec_run(["wget", "-qO-", "http://localhost:80/index.html"])
    assert (code, out) == (0, b"<h1>from a configmap</h1>")
    assert client.exec_run(["hostname"]).output == b"duo\n"
    assert dk.containers.get("duo-web").exec_run(["hostname"]).output == b"duo\n"
    env = dk.containers.get("duo-web").exec_run(["sh", "-c", "echo $GREETING"]).output
    assert env == b"hello\n"
    # the Service's port is published on this host
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html", timeout=10) as r:
        assert r.read() == b"<h1>from a configmap</h1>"
    ids = {c.name: c.id for c in dk.containers.list(all=True)}
    assert kube(corral, "play", str(file)).stdout == "pod/duo unchanged\n"  # as apply
    assert {c.name: c.id for c in dk.containers.list(all=True)} == ids

    kube(corral, "play", "--down", str(file))
    assert names(dk) == ["bystander"]
    assert [v.name for v in dk.volumes.list()] == ["bystander-vol"]


SCALED = """\
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg}
data: {MODE: one}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: app}
spec:
  replicas: REPLICAS
  selector: {matchLabels: {app: app}}
  template:
    metadata: {labels: {app: app}}
    spec:
      containers:
      - name: main
        image: busybox
        command: [sh, -c, 'exec sleep 1000']
        envFrom: [{configMapRef: {name: cfg}}]
        volumeMounts: [{name: conf, mountPath: /conf}]
      volumes:
      - {name: conf, configMap: {name: cfg}}
"""


def test_a_second_play_updates_like_apply_and_down_removes_exactly_it(
    corral: Daemon, dk: Any, tmp_path: Path
) -> None:
    file = tmp_path / "app.yaml"
    dk.containers.run("busybox", ["sleep", "1000"], name="bystander", detach=True)
    file.write_text(SCALED.replace("REPLICAS", "2"))
    assert kube(corral, "play", str(file)).stdout == "pod/app-1 created\npod/app-2 created\n"
    first = {c.name: c.id for c in dk.containers.list(all=True)}
    assert kube(corral, "play", str(file)).stdout == (
        "pod/app-1 unchanged\npod/app-2 unchanged\n")
    # a changed ConfigMap changes both pods' hash: they are made again with it
    file.write_text(SCALED.replace("REPLICAS", "2").replace("MODE: one", "MODE: two"))
    assert kube(corral, "play", str(file)).stdout == (
        "pod/app-1 configured\npod/app-2 configured\n")
    now = {c.name: c.id for c in dk.containers.list(all=True)}
    assert now["bystander"] == first["bystander"] and now["app-1-main"] != first["app-1-main"]
    main = dk.containers.get("app-1-main")
    assert main.exec_run(["sh", "-c", "echo $MODE; cat /conf/MODE"]).output == b"two\ntwo"
    # scaled down: the pod beyond the replicas goes, with its own volumes
    file.write_text(SCALED.replace("REPLICAS", "1").replace("MODE: one", "MODE: two"))
    assert kube(corral, "play", str(file)).stdout == (
        "pod/app-2 deleted\npod/app-1 unchanged\n")
    assert names(dk) == ["app-1-infra", "app-1-main", "bystander"]
    assert sorted(v.name for v in dk.volumes.list()) == ["app-1-conf"]
    kube(corral, "play", "--down", str(file))
    assert names(dk) == ["bystander"] and dk.volumes.list() == []


def test_a_refused_document_makes_nothing(corral: Daemon, dk: Any, tmp_path: Path) -> None:
    file = tmp_path / "mixed.yaml"
    docs = [POD, {"apiVersion": "v1", "kind": "ReplicationController",
                  "metadata": {"name": "rc"}}]
    file.write_text(yaml.safe_dump_all(docs))
    r = corral.cli("kube", "play", str(file))
    assert r.returncode == 1
    assert r.stderr == f"corral: {file}:doc 2: kind ReplicationController is not supported\n"
    missing = tmp_path / "missing.yaml"
    missing.write_text(json.dumps(with_container(image="nosuch:1")))
    r = corral.cli("kube", "play", str(missing))
    assert r.returncode == 1 and "image nosuch:1 is not on this corral" in r.stderr
    broken = tmp_path / "broken.yaml"
    broken.write_text("apiVersion: v1\nkind: Pod\n  metadata: x\n")
    r = corral.cli("kube", "play", str(broken))
    assert r.returncode == 1 and f"{broken}:3:" in r.stderr
    assert names(dk) == [] and dk.volumes.list() == []
