"""Pods on one host: `corral pod create`, `run --pod`, the pod verbs, and the API's way
in (the pod label).  Members share the infra's network, ipc and uts namespaces as
Kubernetes' pods do; the infra is catatonit on a root of its own, no image."""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from conftest import IMAGE, Daemon, cgroup_parent, kill_holder

from supervisor.pods import members
from supervisor.pods.labels import INFRA_LABEL, POD_LABEL


def run(corral: Daemon, *args: str) -> str:
    r = corral.cli(*args)
    assert r.returncode == 0, r.stderr
    return r.stdout


def refused(corral: Daemon, *args: str) -> tuple[int, str]:
    r = corral.cli(*args)
    assert r.returncode != 0, r.stdout
    return r.returncode, r.stderr.strip()


def pid(corral: Daemon, name: str) -> int:
    return int(run(corral, "inspect", "-f", "{{.State.Pid}}", name))


def ns(corral: Daemon, name: str, kind: str) -> str:
    return os.readlink(f"/proc/{pid(corral, name)}/ns/{kind}")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pod_row(corral: Daemon, name: str) -> list[str]:
    rows = [r.split() for r in run(corral, "pod", "ls", "--no-trunc", "--format",
                                   "{{.ID}} {{.Name}} {{.Status}} {{.InfraID}} "
                                   "{{.NumberOfContainers}}").splitlines()]
    return next(r for r in rows if r[1] == name)


def test_members_share_the_infras_network_ipc_and_uts(corral: Daemon, dk: Any) -> None:
    port = free_port()
    infra_id = run(corral, "pod", "create", "-p", f"127.0.0.1:{port}:80", "--hostname", "shop",
                   "--label", "team=a", "web").strip()
    assert dk.containers.get("web-infra").id == infra_id
    run(corral, "run", "-d", "--pod", "web", "--name", "web-srv", IMAGE, "sleep", "1d")
    run(corral, "run", "-d", "--pod", "web", "--name", "web-side", IMAGE, "sleep", "1d")
    # busybox httpd without -f forks once it listens: the exec returns when it serves
    run(corral, "exec", "web-srv", "httpd", "-p", "80", "-h", "/etc")
    assert run(corral, "exec", "web-side", "wget", "-qO-", "http://localhost/hostname") == "shop\n"
    assert run(corral, "exec", "web-side", "hostname") == "shop\n"
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/hostname", timeout=10) as resp:
        assert resp.read() == b"shop\n"  # published on the pod
    for kind in ("net", "ipc", "uts"):
        assert ns(corral, "web-srv", kind) == ns(corral, "web-side", kind) \
            == ns(corral, "web-infra", kind), kind
    assert ns(corral, "web-srv", "ipc") != os.readlink("/proc/self/ns/ipc")
    assert ns(corral, "web-srv", "pid") != ns(corral, "web-side", "pid")  # pid: not shared
    run(corral, "exec", "web-srv", "sh", "-c", "echo shared > /dev/shm/seg")  # POSIX shm too
    assert run(corral, "exec", "web-side", "cat", "/dev/shm/seg") == "shared\n"

    # the infra is no image: catatonit in pause mode, in no image list
    infra = dk.containers.get("web-infra").attrs
    assert infra["Path"] == "/catatonit" and infra["Args"] == ["-P"]
    assert "corral/pod-infra" not in run(corral, "images")
    (info,) = json.loads(run(corral, "pod", "inspect", "web"))
    assert info["State"] == "Running" and info["Id"] == infra_id
    assert info["Labels"] == {"team": "a"}
    assert info["SharedNamespaces"] == ["net", "ipc", "uts"]
    assert [c["Name"] for c in info["Containers"]] == ["web-side", "web-srv"]
    assert info["Ports"] == [{"HostIp": "127.0.0.1", "HostPort": port, "ContainerPort": 80,
                              "Protocol": "tcp"}]
    assert pod_row(corral, "web")[2:] == ["Running", infra_id, "3"]  # the infra counts


def test_what_a_member_cannot_set_is_refused_by_name(corral: Daemon, dk: Any) -> None:
    run(corral, "pod", "create", "--name", "p1")
    assert refused(corral, "run", "--pod", "nosuch", IMAGE, "true") == (
        125, "corral: Error response from daemon: no such pod: nosuch")
    code, err = refused(corral, "run", "--pod", "p1", "-p", "8080:80", IMAGE, "true")
    assert code == 125 and "ports are published on the pod (`corral pod create -p`)" in err
    code, err = refused(corral, "run", "--pod", "p1", "--network", "host", IMAGE, "true")
    assert code == 125 and "its network is the pod's, --network host cannot be set" in err
    code, err = refused(corral, "run", "--pod", "p1", "--hostname", "x", IMAGE, "true")
    assert code == 125 and "the hostname is the pod's" in err
    assert refused(corral, "pod", "create", "p1")[1] == "corral: pod p1 already exists"
    assert refused(corral, "pod", "create", "--share", "net,cgroup", "p2")[1] == (
        "corral: --share cgroup: corral pods share only net, ipc, uts, pid")
    assert "--share must include net" in refused(corral, "pod", "create", "--share", "ipc",
                                                 "p2")[1]
    assert [c.name for c in dk.containers.list(all=True)] == ["p1-infra"]  # nothing half made


def test_pod_phase_follows_its_members(corral: Daemon, dk: Any) -> None:
    run(corral, "pod", "create", "job")
    assert pod_row(corral, "job")[2] == "Pending"  # no member yet
    run(corral, "create", "--pod", "job", "--name", "job-a", IMAGE, "true")
    run(corral, "run", "-d", "--pod", "job", "--name", "job-b", IMAGE, "sh", "-c", "exit 0")
    run(corral, "wait", "job-b")
    assert pod_row(corral, "job")[2] == "Pending"  # job-a not started
    run(corral, "start", "job-a")
    run(corral, "wait", "job-a")
    assert pod_row(corral, "job")[2] == "Succeeded"
    run(corral, "run", "-d", "--pod", "job", "--name", "job-c", IMAGE, "sh", "-c", "exit 3")
    run(corral, "wait", "job-c")
    assert pod_row(corral, "job")[2] == "Failed"


def test_pod_verbs_act_on_every_member(corral: Daemon, dk: Any) -> None:
    run(corral, "pod", "create", "vp")
    run(corral, "run", "-d", "--pod", "vp", "--name", "vp-a", IMAGE, "sh", "-c",
        "echo from-a; exec sleep 1d")
    run(corral, "run", "-d", "--pod", "vp", "--name", "vp-b", IMAGE, "sh", "-c",
        "echo from-b; exec sleep 1d")
    run(corral, "exec", "vp-a", "true")  # (both have printed once their exec answers)
    run(corral, "exec", "vp-b", "true")
    logs = run(corral, "pod", "logs", "vp").splitlines()
    assert sorted(line.split() for line in logs) == [["vp-a", "|", "from-a"],
                                                     ["vp-b", "|", "from-b"]]
    top = run(corral, "pod", "top", "vp").splitlines()
    assert top[0].split()[:2] == ["CONTAINER", "UID"]
    cmds = sorted(" ".join(r.split()[8:]) for r in top[1:])
    assert cmds == ["/catatonit -P", "sleep 1d", "sleep 1d"]

    run(corral, "pod", "pause", "vp")
    assert {c.name: c.status for c in dk.containers.list()} == {
        "vp-a": "paused", "vp-b": "paused", "vp-infra": "paused"}
    run(corral, "pod", "unpause", "vp")
    assert {c.status for c in dk.containers.list()} == {"running"}

    before = {n: pid(corral, n) for n in ("vp-a", "vp-b", "vp-infra")}
    run(corral, "pod", "restart", "-t", "1", "vp")
    after = {n: pid(corral, n) for n in ("vp-a", "vp-b", "vp-infra")}
    assert all(before[n] != after[n] for n in before)
    for kind in ("net", "ipc", "uts"):  # the members are in the new infra's namespaces
        assert ns(corral, "vp-a", kind) == ns(corral, "vp-infra", kind)

    run(corral, "pod", "kill", "vp")
    assert {c.name: c.attrs["State"]["ExitCode"] for c in dk.containers.list(all=True)} == {
        "vp-a": 137, "vp-b": 137, "vp-infra": 137}
    assert pod_row(corral, "vp")[2] == "Failed"


def test_removing_a_pod_leaves_nothing(corral: Daemon, dk: Any) -> None:
    run(corral, "pod", "create", "-p", f"127.0.0.1:{free_port()}:80", "gone")
    run(corral, "run", "-d", "--pod", "gone", "--name", "gone-a", IMAGE, "sleep", "1d")
    infra = dk.containers.get("gone-infra")
    iflink = int(run(corral, "exec", "gone-a", "cat", "/sys/class/net/eth0/iflink"))
    veth = Path(f"/sys/class/net/{_ifname(iflink)}")
    assert veth.exists()
    netns = corral.root / "netns" / infra.id
    assert netns.exists()
    member = dk.containers.get("gone-a")
    cgroups = [h / cgroup_parent(corral.root) / c.id for h in Path("/sys/fs/cgroup").iterdir()
               for c in (infra, member) if (h / cgroup_parent(corral.root) / c.id).is_dir()]
    assert len(cgroups) >= 2

    code, err = refused(corral, "rm", "gone-infra")
    assert code == 1 and "it is the infra of pod gone, which has 1 container(s)" in err
    assert refused(corral, "pod", "rm", "gone")[1] == (
        "corral: pod gone is running: stop it first or use -f")
    assert run(corral, "pod", "rm", "-f", "gone") == "gone\n"
    assert dk.containers.list(all=True) == []
    assert not netns.exists() and not veth.exists()
    assert not any(p.exists() for p in cgroups)
    mounts = Path("/proc/self/mountinfo").read_text()
    assert infra.id not in mounts
    assert refused(corral, "pod", "inspect", "gone")[1] == "corral: no such pod: gone"


def _ifname(index: int) -> str:
    out = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True)
    for line in out.stdout.splitlines():
        num, name = line.split(":")[:2]
        if int(num) == index:
            return name.strip().split("@")[0]
    raise AssertionError(f"no link {index}")


def test_a_forced_rm_of_the_infra_removes_its_members(corral: Daemon, dk: Any) -> None:
    run(corral, "pod", "create", "ff")
    run(corral, "run", "-d", "--pod", "ff", "--name", "ff-a", IMAGE, "sleep", "1d")
    run(corral, "rm", "-f", "ff-infra")
    assert dk.containers.list(all=True) == []


def test_any_docker_client_joins_a_pod_by_its_label(corral: Daemon, dk: Any) -> None:
    run(corral, "pod", "create", "--hostname", "apihost", "api")
    c = dk.containers.run(IMAGE, ["sleep", "1d"], name="api-a", detach=True,
                          labels={POD_LABEL: "api"})
    infra = dk.containers.get("api-infra")
    assert c.attrs["HostConfig"]["NetworkMode"] == f"container:{infra.id}"
    assert c.exec_run(["hostname"]).output == b"apihost\n"
    assert ns(corral, "api-a", "ipc") == ns(corral, "api-infra", "ipc")
    # events per member, found by the pod label
    since = c.attrs["Created"]
    c.stop(timeout=1)
    events = run(corral, "events", "--since", since, "--until", "0s", "--filter",
                 f"label={POD_LABEL}=api", "--format", "{{.Actor.Attributes.name}} {{.Action}}")
    assert "api-a start" in events and "api-a die" in events
    assert "api-infra" not in events.replace("api-infra start", "")  # (only its start)


def test_boot_starts_the_infra_before_its_members(
    private_daemon: Any, rootfs_tar: Path
) -> None:
    d = private_daemon()
    client = d.client()
    with rootfs_tar.open("rb") as f:
        client.api.import_image_from_data(f.read(), repository="busybox", tag="latest")
    run(d, "pod", "create", "bp")
    for n in ("bp-a", "bp-b"):
        run(d, "run", "-d", "--restart", "always", "--pod", "bp", "--name", n, IMAGE,
            "sleep", "1d")
    d.proc.kill()
    d.proc.wait()
    kill_holder(d.root)  # a host reboot: nothing kept, so boot starts them (no live restore)
    killed = time.time_ns()
    d = private_daemon()
    client = d.client()
    deadline = killed // 10**9 + 120  # the event stream ends there: a missing start fails
    for n in ("bp-infra", "bp-a", "bp-b"):  # each boot-time start's event (replayed if past)
        started = False
        for ev in client.events(since=killed // 10**9 - 1, until=deadline, decode=True,
                                filters={"container": n, "event": "start"}):
            if int(ev["timeNano"]) > killed:  # not the first daemon's start
                started = True
                break
        assert started, f"{n} was not started at boot"
    for n in ("bp-a", "bp-b"):
        for kind in ("net", "ipc", "uts"):
            assert ns(d, n, kind) == ns(d, "bp-infra", kind)
    client.close()


def test_join_and_boot_order_cores() -> None:
    class C:
        def __init__(self, cid: str, labels: dict[str, str]) -> None:
            self.id, self.name, self.config = cid, cid, {"Labels": labels}

    infra = C("i", {POD_LABEL: "p", INFRA_LABEL: "true"})
    a, other = C("a", {POD_LABEL: "p"}), C("o", {})
    body: dict[str, Any] = {"Labels": {POD_LABEL: "p"}, "HostConfig": {"NetworkMode": "default"}}
    members.join(body, [a, infra])
    assert body["HostConfig"]["NetworkMode"] == "container:i"
    assert members.members_of(infra, [a, other, infra]) == [a]
    with pytest.raises(Exception, match="pod p is not running"):
        members.namespaces(a, [infra], lambda _c: None)
    assert members.namespaces(a, [infra], lambda _c: 7) == {"uts": "/proc/7/ns/uts"}
    assert body["HostConfig"]["IpcMode"] == "container:i"


def test_a_created_pod_generates_validates_and_plays_back(
    corral: Daemon, dk: Any, tmp_path: Path
) -> None:
    import kubecheck
    import yaml

    port = free_port()
    run(corral, "pod", "create", "-p", f"{port}:80", "--hostname", "gen", "gp")
    run(corral, "run", "-d", "--pod", "gp", "--name", "gp-web", "-e", "K=v", IMAGE,
        "sleep", "1d")
    text = run(corral, "kube", "generate", "gp")
    docs = [d for d in yaml.safe_load_all(text) if d]
    kubecheck.validate(docs)
    pod = next(d for d in docs if d["kind"] == "Pod")
    assert pod["spec"]["hostname"] == "gen"
    assert [c["image"] for c in pod["spec"]["containers"]] == [IMAGE]  # not the infra
    run(corral, "pod", "rm", "-f", "gp")
    f = tmp_path / "gp.yaml"
    f.write_text(text)
    run(corral, "kube", "play", str(f))
    (played,) = [c for c in dk.containers.list() if not c.name.endswith("-infra")]
    assert played.exec_run(["sh", "-c", "echo $K; hostname"]).output == b"v\ngen\n"
    run(corral, "kube", "play", "--down", str(f))
    assert dk.containers.list(all=True) == []


def test_a_dead_infra_comes_back_and_its_members_rejoin(corral: Daemon, dk: Any) -> None:
    run(corral, "pod", "create", "rj")
    run(corral, "run", "-d", "--restart", "always", "--pod", "rj", "--name", "rj-a", IMAGE,
        "sleep", "1d")
    old_net = ns(corral, "rj-a", "net")
    killed = time.time_ns()
    os.kill(pid(corral, "rj-infra"), 9)  # not a user's kill: the policies apply
    for name in ("rj-infra", "rj-a"):
        started = False
        for ev in dk.events(since=killed // 10**9 - 1, until=killed // 10**9 + 120,
                            decode=True, filters={"container": name, "event": "start"}):
            if int(ev["timeNano"]) > killed:
                started = True
                break
        assert started, f"{name} did not start again"
    for kind in ("net", "ipc", "uts"):
        assert ns(corral, "rj-a", kind) == ns(corral, "rj-infra", kind)
    assert ns(corral, "rj-a", "net") != old_net
    code, _ = dk.containers.get("rj-a").exec_run(["ip", "-4", "addr", "show", "eth0"])
    assert code == 0  # back on the pod's network
