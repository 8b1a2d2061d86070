"""The pure parts of rollouts beside the planner: a replacement's create body from the
old container's inspect (auto-update), and `compose ps`'s rollout notes."""

from __future__ import annotations

from typing import Any

from supervisor.rollout.autoupdate import policy_of
from supervisor.rollout.cli import annotate_ps
from supervisor.rollout.clone import clone_body

OLD_ID = "a" * 64


def inspect() -> dict[str, Any]:
    return {
        "Id": OLD_ID,
        "Config": {
            "Hostname": OLD_ID[:12],
            "Image": "shop:latest",
            "Cmd": ["httpd", "-f"],  # the image's: the new image's applies
            "Entrypoint": None,
            "WorkingDir": "/srv",  # the container's own (-w)
            "Env": ["PATH=/usr/bin", "MODE=prod"],
            "Labels": {"from.image": "v1", "corral.auto-update": "local"},
            "StopTimeout": 3,
        },
        "HostConfig": {"PortBindings": {"8000/tcp": [{"HostPort": "8080"}]}, "Binds": None},
        "NetworkSettings": {"Networks": {"shopnet": {"Aliases": [OLD_ID[:12], "shop"],
                                                     "IPAMConfig": None}}},
        "Mounts": [{"Type": "volume", "Name": "anon123", "Destination": "/cache", "RW": True}],
    }


def test_a_replacement_keeps_the_containers_settings_and_takes_the_new_images() -> None:
    image = {"Config": {"Cmd": ["httpd", "-f"], "WorkingDir": "/", "Env": ["PATH=/usr/bin"],
                        "Labels": {"from.image": "v1"}}}
    body = clone_body(inspect(), image, "shop:latest")
    assert body["Image"] == "shop:latest"
    assert "Cmd" not in body and "Hostname" not in body  # the new image's, a new hostname
    assert body["WorkingDir"] == "/srv"
    assert body["Env"] == ["MODE=prod"]
    assert body["Labels"] == {"corral.auto-update": "local"}
    assert body["HostConfig"]["PortBindings"] == {"8000/tcp": [{"HostPort": "8080"}]}
    assert body["NetworkingConfig"] == {"EndpointsConfig": {"shopnet": {"Aliases": ["shop"]}}}
    assert body["HostConfig"]["Mounts"] == [
        {"Type": "volume", "Source": "anon123", "Target": "/cache", "ReadOnly": False}
    ]


def test_policy_labels_corral_first_then_podmans() -> None:
    assert policy_of({"io.containers.autoupdate": "registry"}) == "registry"
    assert policy_of({"corral.auto-update": "local", "io.containers.autoupdate": "x"}) == "local"
    assert policy_of({}) == ""


def test_compose_ps_notes_both_ends_of_a_rollout() -> None:
    rows = [
        {"Id": "old", "Names": ["/demo-web-1"], "Status": "Up 2 minutes (healthy)"},
        {"Id": "new", "Names": ["/old_demo-web-1"], "Status": "Up 1 second (health: starting)"},
        {"Id": "other", "Names": ["/demo-db-1"], "Status": "Up 2 minutes"},
    ]
    annotate_ps(rows, [{"From": "old", "To": "new", "Phase": "draining"}])
    assert [r["Status"] for r in rows] == [
        "Up 2 minutes (healthy), rolling out to old_demo-web-1 (draining)",
        "Up 1 second (health: starting), rollout of demo-web-1 (draining)",
        "Up 2 minutes",
    ]
