"""What a pod's members share beyond the network: the PID namespace when asked
(`pod create --share +pid`, kube play's `shareProcessNamespace: true`), the infra's
catatonit their PID 1 as Kubernetes' pause; and /dev/shm, the pod's when it shares ipc,
each member's own when it does not (as podman's), `--shm-size` set where it applies."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from conftest import IMAGE, Daemon


def run(corral: Daemon, *args: str) -> str:
    r = corral.cli(*args)
    assert r.returncode == 0, r.stderr
    return r.stdout


def ns(corral: Daemon, name: str, kind: str) -> str:
    pid = int(run(corral, "inspect", "-f", "{{.State.Pid}}", name))
    return os.readlink(f"/proc/{pid}/ns/{kind}")


def test_share_pid_puts_members_in_the_infras_pid_namespace(corral: Daemon) -> None:
    run(corral, "pod", "create", "--share", "+pid", "pp")
    run(corral, "run", "-d", "--pod", "pp", "--name", "pp-a", IMAGE, "sleep", "1001")
    run(corral, "run", "-d", "--pod", "pp", "--name", "pp-b", IMAGE, "sleep", "1d")
    assert ns(corral, "pp-a", "pid") == ns(corral, "pp-b", "pid") == ns(corral, "pp-infra", "pid")
    assert run(corral, "exec", "pp-b", "cat", "/proc/1/cmdline").split("\0")[0] == "/catatonit"
    assert "sleep 1001" in run(corral, "exec", "pp-b", "ps", "-o", "args")  # a's process
    assert run(corral, "pod", "inspect", "-f", "{{json .SharedNamespaces}}", "pp") == \
        '["net","ipc","uts","pid"]\n'
    r = corral.cli("run", "--pod", "pp", "--pid", "host", IMAGE, "true")
    assert r.returncode == 125 and "its PID namespace is the pod's (it shares pid)" in r.stderr
    import kubecheck
    import yaml

    generated = run(corral, "kube", "generate", "pp")
    docs = [d for d in yaml.safe_load_all(generated) if d]
    kubecheck.validate(docs)
    (pod,) = [d for d in docs if d["kind"] == "Pod"]
    assert pod["spec"]["shareProcessNamespace"] is True


def test_kube_play_share_process_namespace(corral: Daemon, tmp_path: Path) -> None:
    """Played, then generated back the same, then played again from that."""
    file = tmp_path / "p.yaml"
    file.write_text("""apiVersion: v1
kind: Pod
metadata: {name: sp}
spec:
  shareProcessNamespace: true
  containers:
  - {name: a, image: busybox, command: [sleep, '1002']}
  - {name: b, image: busybox, command: [sleep, 1d]}
""")
    run(corral, "kube", "play", str(file))
    assert ns(corral, "sp-a", "pid") == ns(corral, "sp-b", "pid") == ns(corral, "sp-infra", "pid")
    assert "sleep 1002" in run(corral, "exec", "sp-b", "ps", "-o", "args")
    bad = tmp_path / "bad.yaml"
    bad.write_text(file.read_text().replace("sp}", "sq}").replace(": true", ": 'yes'"))
    r = corral.cli("kube", "play", str(bad))
    assert r.returncode != 0 and "spec.shareProcessNamespace must be true or false" in r.stderr
    again = tmp_path / "again.yaml"
    again.write_text(run(corral, "kube", "generate", "sp"))
    run(corral, "kube", "play", "--down", str(file))
    run(corral, "kube", "play", str(again))
    assert ns(corral, "sp-a", "pid") == ns(corral, "sp-b", "pid") == ns(corral, "sp-infra", "pid")
    run(corral, "kube", "play", "--down", str(again))


def test_dev_shm_is_the_pods_only_when_it_shares_ipc(corral: Daemon, dk: Any) -> None:
    run(corral, "pod", "create", "--shm-size", "8m", "big")
    run(corral, "run", "-d", "--pod", "big", "--name", "big-a", IMAGE, "sleep", "1d")
    df = run(corral, "exec", "big-a", "df", "-k", "/dev/shm").splitlines()[-1].split()
    assert df[1] == "8192"  # the pod's --shm-size, on the pod's /dev/shm
    r = corral.cli("run", "--pod", "big", "--shm-size", "1m", IMAGE, "true")
    assert r.returncode == 125 and "its /dev/shm is the pod's (it shares ipc)" in r.stderr

    run(corral, "pod", "create", "--share", "net,uts", "apart")
    run(corral, "run", "-d", "--pod", "apart", "--name", "apart-a", IMAGE, "sleep", "1d")
    run(corral, "run", "-d", "--pod", "apart", "--name", "apart-b", "--shm-size", "4m",
        IMAGE, "sleep", "1d")
    assert ns(corral, "apart-a", "ipc") != ns(corral, "apart-b", "ipc")
    assert ns(corral, "apart-a", "net") == ns(corral, "apart-b", "net")
    run(corral, "exec", "apart-a", "sh", "-c", "echo mine > /dev/shm/seg")
    r = corral.cli("exec", "apart-b", "cat", "/dev/shm/seg")
    assert r.returncode != 0  # a /dev/shm each
    df = run(corral, "exec", "apart-b", "df", "-k", "/dev/shm").splitlines()[-1].split()
    assert df[1] == "4096"
    r = corral.cli("pod", "create", "--share", "net", "--shm-size", "8m", "nope")
    assert r.returncode != 0 and "the pod does not share ipc" in r.stderr
    assert "nope-infra" not in [c.name for c in dk.containers.list(all=True)]
    generated = run(corral, "kube", "generate", "apart")
    assert "the pod does not share ipc" in generated  # said, not dropped


def test_share_cores() -> None:
    from supervisor.pods import members

    assert members.pod_ready([]) is True  # no member: nothing to gate
    assert members.pod_ready([(True, None), (True, "healthy")]) is True
    assert members.pod_ready([(True, None), (True, "starting")]) is False
    assert members.pod_ready([(True, "unhealthy")]) is False
    assert members.pod_ready([(True, None), (False, None)]) is False  # one not running
