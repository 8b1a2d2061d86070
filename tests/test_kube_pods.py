"""`corral pod ls|inspect|start|stop|rm` over the pods `kube play` makes; pod phases."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import Daemon

from supervisor.kube.pods import phase


def member(state: str, status: str = "") -> dict[str, Any]:
    return {"State": state, "Status": status}


@pytest.mark.parametrize(("members", "expected"), [
    ([member("running"), member("created")], "Pending"),
    ([member("running"), member("exited", "Exited (1) 2 seconds ago")], "Running"),
    ([member("restarting")], "Running"),
    ([member("exited", "Exited (0) 1 second ago")] * 2, "Succeeded"),
    ([member("exited", "Exited (0) now"), member("exited", "Exited (137) now")], "Failed"),
    ([], "Pending"),
])
def test_phase_is_derived_from_members_as_kubernetes_does(
    members: list[dict[str, Any]], expected: str
) -> None:
    assert phase(members) == expected


POD = """\
apiVersion: v1
kind: Pod
metadata: {name: pair}
spec:
  restartPolicy: Never
  containers:
  - {name: a, image: busybox, command: [sh, -c, 'exec sleep 1000']}
  - {name: b, image: busybox, command: [sh, -c, 'exec sleep 1000']}
"""


def run(corral: Daemon, *args: str) -> str:
    r = corral.cli(*args)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_pod_verbs_manage_a_played_pod_as_a_whole(
    corral: Daemon, dk: Any, tmp_path: Path
) -> None:
    file = tmp_path / "pair.yaml"
    file.write_text(POD)
    run(corral, "kube", "play", str(file))
    rows = run(corral, "pod", "ls").splitlines()
    assert rows[0].split() == ["POD", "ID", "NAME", "STATUS", "CREATED", "INFRA", "ID", "#",
                               "OF", "CONTAINERS"]  # podman's
    assert rows[1].split()[1:3] == ["pair", "Running"] and rows[1].split()[-1] == "3"
    (info,) = json.loads(run(corral, "pod", "inspect", "pair"))
    assert [c["Name"] for c in info["Containers"]] == ["pair-a", "pair-b"]
    assert info["InfraContainerID"] == dk.containers.get("pair-infra").id

    run(corral, "pod", "stop", "-t", "1", "pair")
    assert {c.name: c.status for c in dk.containers.list(all=True)} == {
        "pair-a": "exited", "pair-b": "exited", "pair-infra": "exited"}
    assert run(corral, "pod", "ls").splitlines()[1].split()[2] == "Failed"  # ended by a signal
    run(corral, "pod", "start", "pair")
    assert sorted(c.name for c in dk.containers.list()) == ["pair-a", "pair-b", "pair-infra"]
    code, out = dk.containers.get("pair-b").exec_run(["hostname"])
    assert (code, out) == (0, b"pair\n")

    r = corral.cli("pod", "rm", "pair")
    assert r.returncode == 1 and "pod pair is running: stop it first or use -f" in r.stderr
    run(corral, "pod", "rm", "-f", "pair")
    assert dk.containers.list(all=True) == []
    r = corral.cli("pod", "inspect", "pair")
    assert r.returncode == 1 and "no such pod: pair" in r.stderr


def test_a_played_pod_generates_one_pod_that_validates_and_plays_back(
    corral: Daemon, dk: Any, tmp_path: Path
) -> None:
    import kubecheck
    import yaml

    file = tmp_path / "pair.yaml"
    file.write_text(POD.replace("restartPolicy: Never", "restartPolicy: OnFailure"))
    run(corral, "kube", "play", str(file))
    text = run(corral, "kube", "generate", "pair")
    docs = [d for d in yaml.safe_load_all(text) if d]
    assert [d["kind"] for d in docs] == ["Pod"]
    spec = docs[0]["spec"]
    assert [c["name"] for c in spec["containers"]] == ["a", "b"]
    assert spec["hostname"] == "pair" and spec["restartPolicy"] == "OnFailure"
    kubecheck.validate(docs)
    run(corral, "kube", "play", "--down", str(file))
    again = tmp_path / "generated.yaml"
    again.write_text(text)
    run(corral, "kube", "play", str(again))
    assert sorted(c.name for c in dk.containers.list()) == ["pair-a", "pair-b", "pair-infra"]
    assert dk.containers.get("pair-a").attrs["Config"]["Entrypoint"] == [
        "sh", "-c", "exec sleep 1000"]
    run(corral, "kube", "play", "--down", str(again))
    assert dk.containers.list(all=True) == []
