"""`corral pod ls` and `pod inspect` as podman's: Go templates with podman's field names
through corral's one `--format` path, `--filter` id/name/label/status, `-q`,
`--no-trunc`; and pod-level events (Type "pod")."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import IMAGE, Daemon


def run(corral: Daemon, *args: str) -> str:
    r = corral.cli(*args)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_pod_ls_formats_filters_and_ids_as_podman(corral: Daemon, dk: Any) -> None:
    shop = run(corral, "pod", "create", "--label", "team=a", "shop").strip()
    bank = run(corral, "pod", "create", "--label", "team=b", "--label", "pci", "bank").strip()
    run(corral, "run", "-d", "--pod", "shop", "--name", "shop-web", IMAGE, "sleep", "1d")
    run(corral, "create", "--pod", "bank", "--name", "bank-job", IMAGE, "true")

    table = run(corral, "pod", "ls").splitlines()
    assert table[0].split() == ["POD", "ID", "NAME", "STATUS", "CREATED", "INFRA", "ID", "#",
                                "OF", "CONTAINERS"]
    assert [r.split()[:3] for r in table[1:]] == [[bank[:12], "bank", "Pending"],
                                                  [shop[:12], "shop", "Running"]]
    assert "ago" in table[1]  # Created, humanized as podman's
    assert run(corral, "pod", "ls", "-q").split() == [bank[:12], shop[:12]]
    assert run(corral, "pod", "ls", "-q", "--no-trunc").split() == [bank, shop]
    fmt = "{{.Name}} {{.InfraID}} {{.NumberOfContainers}} {{.ContainerNames}} {{.Label \"team\"}}"
    assert run(corral, "pod", "ls", "--format", fmt).splitlines() == [
        f"bank {bank[:12]} 2 bank-infra,bank-job b", f"shop {shop[:12]} 2 shop-infra,shop-web a"]
    assert run(corral, "pod", "ls", "--format", "table {{.Name}}\t{{.Status}}").split() == [
        "NAME", "STATUS", "bank", "Pending", "shop", "Running"]
    rows = [json.loads(line) for line in run(corral, "pod", "ls", "--format", "json").splitlines()]
    assert [(r["Name"], r["Labels"]) for r in rows] == [
        ("bank", {"team": "b", "pci": ""}), ("shop", {"team": "a"})]

    def names(*filters: str) -> list[str]:
        args = [a for f in filters for a in ("--filter", f)]
        return run(corral, "pod", "ls", *args, "--format", "{{.Name}}").split()

    assert names("name=^sh") == ["shop"]
    assert names("name=o") == ["shop"] and names("name=a") == ["bank"]
    assert names(f"id={shop[:5]}") == ["shop"]
    assert names("label=pci") == ["bank"] and names("label=team=a") == ["shop"]
    assert names("label=team=a", "label=team=b") == ["bank", "shop"]  # one key: either
    assert names("label=team", "name=bank") == ["bank"]  # two keys: both
    assert names("status=running") == ["shop"]  # podman's status
    assert names("status=degraded") == ["bank"]  # its infra runs, its member was created
    assert names("status=pending") == ["bank"]  # or the Kubernetes phase shown

    r = corral.cli("pod", "ls", "--filter", "color=red")
    assert r.returncode == 125 and "invalid filter 'color'" in r.stderr
    r = corral.cli("pod", "ls", "--filter", "status=happy")
    assert r.returncode == 125 and "invalid pod status 'happy'" in r.stderr
    r = corral.cli("pod", "ls", "--format", "{{.Nope}}")
    assert r.returncode == 1 and "Nope" in r.stderr and "ListPodReporter" in r.stderr
    r = corral.cli("pod", "ls", "--format", "{{.Name")
    assert r.returncode == 1 and r.stderr.startswith("corral: template parsing error: ")

    assert run(corral, "pod", "inspect", "--format", "{{.ID}} {{.Name}} {{.NumContainers}} "
               "{{.State}} {{index .Labels \"team\"}}", "shop", "bank").splitlines() == [
        f"{shop} shop 2 Running a", f"{bank} bank 2 Pending b"]
    (info,) = json.loads(run(corral, "pod", "inspect", "--format", "json", "shop"))
    assert info["Id"] == shop and info["Created"].endswith("Z")
    r = corral.cli("pod", "inspect", "--format", "{{.Name", "shop")
    assert r.returncode == 64 and "template parsing error" in r.stderr


def test_pods_have_their_own_events_filterable_by_type_and_pod(corral: Daemon) -> None:
    import time

    since = f"{time.time():.6f}"  # not a second back: the test before may have made a pod
    cid = run(corral, "pod", "create", "--label", "team=a", "ev").strip()
    run(corral, "pod", "create", "other")
    run(corral, "run", "-d", "--pod", "ev", "--name", "ev-a", IMAGE, "sleep", "1d")
    run(corral, "pod", "pause", "ev")
    run(corral, "pod", "unpause", "ev")
    run(corral, "pod", "stop", "-t", "1", "ev")
    run(corral, "pod", "rm", "ev")
    until = f"{time.time() + 0.001:.3f}"
    fmt = "{{.Type}} {{.Action}} {{.Actor.ID}} {{.Actor.Attributes.name}}"

    def events(*filters: str) -> list[str]:
        args = [a for f in filters for a in ("--filter", f)]
        return run(corral, "events", "--since", since, "--until", until, *args,
                   "--format", fmt).splitlines()

    mine = events("type=pod", "pod=ev")
    assert [line.split()[1] for line in mine] == [
        "create", "start", "pause", "unpause", "kill", "stop", "remove"]  # docker's stop kills
    assert {(w[0], w[2], w[3]) for w in map(str.split, mine)} == {("pod", cid, "ev")}
    assert [line.split()[3] for line in events("type=pod", "event=create")] == ["ev", "other"]
    assert events("pod=other") == [line for line in events("type=pod")
                                   if line.endswith(" other")]
    line = run(corral, "events", "--since", since, "--until", until, "--filter", "pod=ev",
               "--filter", "event=create").strip()
    assert " pod create " in line and "team=a" in line  # the pod's labels ride along


def test_pod_listing_and_event_cores() -> None:
    from supervisor.kube.pods import Pod, check_filters, matches, podman_status
    from supervisor.pods.events import pod_event
    from supervisor.pods.labels import INFRA_LABEL, POD_LABEL, POD_LABELS_PREFIX

    def pod(infra: str, *members: str) -> Pod:
        return Pod("p", {"Id": "abc123", "State": infra},
                   [{"State": s, "Status": "Exited (0) 1 second ago"} for s in members])

    assert [podman_status(pod(*s)) for s in (("created",), ("running", "running"),
                                             ("running", "exited"), ("exited", "exited"),
                                             ("paused", "paused"), ("exited", "created"))] == [
        "Created", "Running", "Degraded", "Exited", "Paused", "Stopped"]
    assert matches(pod("running", "exited"), {"status": ["succeeded"]}, {})  # its phase
    assert matches(pod("running"), {"id": ["abc"], "name": ["^p$"]}, {})
    assert not matches(pod("running"), {"id": ["abd"]}, {})
    with pytest.raises(ValueError, match="invalid name filter"):
        check_filters({"name": ["("]})
    infra = {POD_LABEL: "p", INFRA_LABEL: "true", POD_LABELS_PREFIX + "team": "a"}
    assert pod_event(infra, "destroy") == ("remove", {"name": "p", "team": "a"})
    assert pod_event(infra, "exec_start: ls") is None
    assert pod_event({POD_LABEL: "p"}, "start") is None  # a member's is its own
