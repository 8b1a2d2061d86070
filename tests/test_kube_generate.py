"""`corral kube generate`: inspect records -> Kubernetes YAML, the pure core and the CLI
against real containers."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from conftest import Daemon

from supervisor.kube import generate as gen

S = 1_000_000_000


def record(**over: Any) -> dict[str, Any]:
    """An inspect record as corral answers one (a plain `run -d busybox sleep 1`)."""
    c: dict[str, Any] = {
        "Id": "ab" * 32, "Name": "/web", "Image": "sha256:" + "0" * 64,
        "Config": {"Hostname": "abababababab", "Image": "busybox", "User": "",
                   "Env": ["PATH=/bin"], "Cmd": ["sleep", "1"], "Entrypoint": None,
                   "Labels": {}, "WorkingDir": ""},
        "HostConfig": {"NetworkMode": "bridge", "RestartPolicy": {"Name": "no"},
                       "LogConfig": {"Type": "json-file", "Config": {}}, "Runtime": "runc"},
        "Mounts": [],
    }
    for key, value in over.items():
        section, _, name = key.partition("__")
        if name:
            c[section][name] = value
        else:
            c[section] = value
    return c


IMAGE = {"Env": ["PATH=/bin"], "Cmd": ["sh"], "Entrypoint": None}


def one(c: dict[str, Any], image: dict[str, Any] | None = None,
        **opts: Any) -> gen.Generated:
    return gen.generate([gen.single(c, image or IMAGE)], gen.Options(**opts))


def kinds(g: gen.Generated) -> dict[str, dict[str, Any]]:
    return {d["kind"]: d for d in g.docs}


def container(g: gen.Generated) -> dict[str, Any]:
    docs = kinds(g)
    pod = docs.get("Pod")
    spec = pod["spec"] if pod else docs["Deployment"]["spec"]["template"]["spec"]
    c: dict[str, Any] = spec["containers"][0]
    return c


def texts(g: gen.Generated) -> list[str]:
    return [n.warning() for n in g.notes]


def test_entrypoint_is_command_cmd_is_args_and_image_env_is_not_repeated() -> None:
    g = one(record(Config__Entrypoint=["/bin/sh", "-c"], Config__Cmd=["echo hi"],
                   Config__Env=["PATH=/bin", "A=1", "EMPTY="]))
    c = container(g)
    assert c["command"] == ["/bin/sh", "-c"] and c["args"] == ["echo hi"]
    assert c["env"] == [{"name": "A", "value": "1"}, {"name": "EMPTY", "value": ""}]
    assert c["image"] == "busybox"
    assert kinds(g)["Pod"]["spec"]["restartPolicy"] == "Never"
    assert "Service" not in kinds(g) and texts(g) == []


def test_a_cleared_entrypoint_makes_cmd_the_whole_command() -> None:
    image = dict(IMAGE, Entrypoint=["/entry"])
    c = container(one(record(Config__Entrypoint=None, Config__Cmd=["ls"]), image))
    assert c["command"] == ["ls"] and "args" not in c


@pytest.mark.parametrize(("docker", "kube"), [
    ("always", "Always"), ("unless-stopped", "Always"), ("on-failure", "OnFailure"),
    ("no", "Never"), ("", "Never"),
])
def test_restart_policies(docker: str, kube: str) -> None:
    g = one(record(HostConfig__RestartPolicy={"Name": docker, "MaximumRetryCount": 0}))
    assert kinds(g)["Pod"]["spec"]["restartPolicy"] == kube
    assert texts(g) == []


def test_a_deployment_always_restarts_and_says_so() -> None:
    g = one(record(HostConfig__RestartPolicy={"Name": "on-failure", "MaximumRetryCount": 3}),
            type="deployment")
    dep = kinds(g)["Deployment"]
    assert dep["spec"]["template"]["spec"]["restartPolicy"] == "Always"
    assert dep["spec"]["replicas"] == 1
    assert dep["spec"]["selector"]["matchLabels"] == dep["spec"]["template"]["metadata"][
        "labels"]
    warned = texts(g)
    assert any("'on-failure' becomes Always" in w for w in warned)
    assert any("on-failure:3" in w and "no retry limit" in w for w in warned)


def test_healthcheck_becomes_an_exec_probe_with_docker_durations() -> None:
    hc = {"Test": ["CMD-SHELL", "test -f /ready"], "Interval": 2 * S, "Timeout": 1500_000_000,
          "Retries": 5, "StartPeriod": 10 * S}
    probe = container(one(record(Config__Healthcheck=hc)))["readinessProbe"]
    assert probe == {"exec": {"command": ["/bin/sh", "-c", "test -f /ready"]},
                     "periodSeconds": 2, "timeoutSeconds": 2, "failureThreshold": 5,
                     "initialDelaySeconds": 10}
    # Docker's defaults where the check leaves them out: 30s, 30s, 3 retries
    probe = container(one(record(Config__Healthcheck={"Test": ["CMD", "true"]})))[
        "readinessProbe"]
    assert probe == {"exec": {"command": ["true"]}, "periodSeconds": 30,
                     "timeoutSeconds": 30, "failureThreshold": 3}
    assert "readinessProbe" not in container(one(record(
        Config__Healthcheck={"Test": ["NONE"]})))


def test_resources_user_capabilities_and_flags() -> None:
    c = container(one(record(
        HostConfig__Memory=64 << 20, HostConfig__NanoCpus=1_500_000_000,
        HostConfig__CapAdd=["CAP_NET_ADMIN"], HostConfig__CapDrop=["mknod"],
        HostConfig__ReadonlyRootfs=True, HostConfig__Privileged=True,
        Config__User="1000:50")))
    assert c["resources"] == {"limits": {"memory": "64Mi", "cpu": "1500m"}}
    assert c["securityContext"] == {
        "runAsUser": 1000, "runAsGroup": 50,
        "capabilities": {"add": ["NET_ADMIN"], "drop": ["MKNOD"]},
        "readOnlyRootFilesystem": True, "privileged": True}


def test_a_user_name_is_named_in_a_warning() -> None:
    g = one(record(Config__User="nobody"))
    assert "securityContext" not in container(g)
    assert any("'nobody' is a name" in w for w in texts(g))


def test_published_ports_become_a_service_of_the_chosen_type() -> None:
    bindings = {"80/tcp": [{"HostIp": "", "HostPort": "8080"}],
                "53/udp": [{"HostIp": "", "HostPort": "31053"}],
                "9000/tcp": [{"HostIp": "", "HostPort": ""}]}
    g = one(record(HostConfig__PortBindings=bindings), service_type="NodePort")
    svc = kinds(g)["Service"]
    assert svc["spec"]["type"] == "NodePort"
    assert svc["spec"]["selector"] == kinds(g)["Pod"]["metadata"]["labels"]
    assert svc["spec"]["ports"] == [
        {"name": "tcp-8080", "port": 8080, "targetPort": 80},
        {"name": "tcp-9000", "port": 9000, "targetPort": 9000},
        {"name": "udp-31053", "port": 31053, "targetPort": 53, "protocol": "UDP",
         "nodePort": 31053},
    ]
    assert container(g)["ports"] == [{"containerPort": 53, "protocol": "UDP"},
                                     {"containerPort": 80}, {"containerPort": 9000}]
    assert any("8080 is outside the NodePort range" in w for w in texts(g))


def test_named_volumes_are_claims_binds_and_tmpfs_are_named() -> None:
    mounts = [
        {"Type": "volume", "Name": "demo_data", "Destination": "/data", "RW": True,
         "Driver": "local"},
        {"Type": "bind", "Source": "/srv/www", "Destination": "/www", "RW": False},
        {"Type": "volume", "Name": "f" * 64, "Destination": "/cache", "RW": True},
    ]
    g = one(record(Mounts=mounts, HostConfig__Tmpfs={"/run": ""}))
    pvc = kinds(g)["PersistentVolumeClaim"]
    assert pvc["metadata"] == {"name": "demo-data",
                               "annotations": {gen.VOLUME_NAME_ANNOTATION: "demo_data"}}
    spec = kinds(g)["Pod"]["spec"]
    by_name = {v["name"]: v for v in spec["volumes"]}
    assert by_name["demo-data"] == {"name": "demo-data",
                                    "persistentVolumeClaim": {"claimName": "demo-data"}}
    assert by_name["host-www"]["hostPath"] == {"path": "/srv/www"}
    assert by_name["tmpfs-run"]["emptyDir"] == {"medium": "Memory"}
    assert [m for m in container(g)["volumeMounts"] if m["mountPath"] == "/www"] == [
        {"name": "host-www", "mountPath": "/www", "readOnly": True}]
    warned = texts(g)
    assert any("bind mount /srv/www:/www becomes a hostPath" in w for w in warned)
    assert any("anonymous volume at /cache" in w for w in warned)


def test_what_has_no_equivalent_is_a_comment_and_a_warning() -> None:
    g = one(record(HostConfig__PidsLimit=100, HostConfig__Dns=["1.1.1.1"],
                   HostConfig__LogConfig={"Type": "json-file", "Config": {"max-size": "1m"}}))
    warned = texts(g)
    assert any("HostConfig.PidsLimit (--pids-limit)=100 has no Kubernetes equivalent" in w
               for w in warned)
    assert any("HostConfig.Dns (--dns)=['1.1.1.1']" in w for w in warned)
    assert any("log driver json-file" in w for w in warned)
    text = gen.render(g)
    assert "# corral: HostConfig.PidsLimit (--pids-limit)=100 has no Kubernetes equivalent" in text
    assert yaml.safe_load(text.split("---\n")[1])["kind"] == "Pod"


def test_labels_are_annotations_with_valid_keys() -> None:
    g = one(record(Config__Labels={"com.example.tier": "front end!",
                                   "bad key with spaces": "v",
                                   "com.docker.compose.project": "demo"}))
    ann = kinds(g)["Pod"]["metadata"]["annotations"]
    assert ann == {"com.example.tier": "front end!", "bad-key-with-spaces": "v"}
    assert all(gen.valid_label_key(k) for k in ann)
    assert any("'bad key with spaces' is not valid" in w for w in texts(g))


def test_registry_rewrites_local_names_only() -> None:
    assert gen.image_name("busybox", "reg.example:5000/team") == "reg.example:5000/team/busybox"
    assert gen.image_name("me/app:1", "reg.example/t") == "reg.example/t/me/app:1"
    assert gen.image_name("quay.io/x/y", "reg.example/t") == "quay.io/x/y"
    assert gen.image_name("localhost/x", "reg.example/t") == "localhost/x"


def test_a_project_is_one_workload_per_service_replicas_counted() -> None:
    def member(service: str, n: int) -> dict[str, Any]:
        labels = {gen.PROJECT_LABEL: "demo", gen.SERVICE_LABEL: service,
                  "com.docker.compose.container-number": str(n)}
        return record(Name=f"/demo-{service}-{n}", Config__Labels=labels)

    members = [member("web", 2), member("web", 1), member("db_main", 1)]
    workloads = gen.group_project(members, {})
    assert [(w.name, w.replicas) for w in workloads] == [("db-main", 1), ("web", 2)]
    assert workloads[1].container["Name"] == "/demo-web-1"
    g = gen.generate(workloads, gen.Options(type="pod"))
    assert any("2 replicas; a Pod runs one" in w for w in texts(g))


# -- the CLI against real containers ----------------------------------------------------


def generate(corral: Daemon, *args: str) -> tuple[list[dict[str, Any]], str]:
    r = corral.cli("kube", "generate", *args)
    assert r.returncode == 0, r.stderr
    return [d for d in yaml.safe_load_all(r.stdout) if d], r.stderr


def test_generate_from_a_running_container(corral: Daemon) -> None:
    r = corral.cli("run", "-d", "--name", "kweb", "-p", "18080:80", "-e", "GREETING=hi",
                   "-m", "32m", "--restart", "always", "-v", "kdata:/data",
                   "--health-cmd", "true", "--health-interval", "3s", "--pids-limit", "50",
                   "busybox", "httpd", "-f", "-p", "80")
    assert r.returncode == 0, r.stderr
    docs, err = generate(corral, "kweb", "--type", "deployment")
    assert [d["kind"] for d in docs] == ["PersistentVolumeClaim", "Deployment", "Service"]
    c = docs[1]["spec"]["template"]["spec"]["containers"][0]
    assert c["image"] == "busybox" and c["args"] == ["httpd", "-f", "-p", "80"]
    assert c["env"] == [{"name": "GREETING", "value": "hi"}]
    assert c["resources"] == {"limits": {"memory": "32Mi"}}
    assert c["readinessProbe"]["periodSeconds"] == 3
    assert docs[2]["spec"]["ports"] == [{"name": "tcp-18080", "port": 18080, "targetPort": 80}]
    assert "WARNING: Deployment/kweb: HostConfig.PidsLimit (--pids-limit)=50 has no" in err


def test_generate_errors_name_the_culprit(corral: Daemon) -> None:
    r = corral.cli("kube", "generate", "nosuch")
    assert r.returncode == 1 and "no such container or pod: nosuch" in r.stderr
    r = corral.cli("kube", "generate", "--project", "nosuch")
    assert r.returncode == 1 and "no containers of compose project 'nosuch'" in r.stderr
    r = corral.cli("kube", "generate", "--type", "job", "x")
    assert r.returncode == 125 and '"job" for "-t, --type"' in r.stderr
    r = corral.cli("kube", "generate")
    assert r.returncode == 125 and "CONTAINER|POD... or --project" in r.stderr


def test_registry_tags_and_pushes_the_local_images_it_renames(
    corral: Daemon, tmp_path: Any
) -> None:
    """`--registry HOST/PREFIX`: the YAML names the image there, and generate puts it
    there (tag + push), so a cluster can pull what the YAML says; the YAML stays alone
    on stdout."""
    from registry import start_registry

    reg = start_registry(tmp_path / "registry")
    try:
        r = corral.cli("run", "-d", "--name", "kpush", "busybox", "sleep", "1000")
        assert r.returncode == 0, r.stderr
        docs, err = generate(corral, "kpush", "--registry", f"{reg.host}/team")
        image = f"{reg.host}/team/busybox"
        assert docs[0]["spec"]["containers"][0]["image"] == image
        assert f"Pushed busybox as {image}:latest" in err
        local = corral.cli("image", "inspect", "-f", "{{.Id}}", "busybox").stdout.strip()
        assert reg.inspect("team/busybox:latest", raw=True)["config"]["digest"] == local
    finally:
        corral.cli("rm", "-f", "kpush")
        corral.cli("rmi", f"{reg.host}/team/busybox")
        reg.stop()
