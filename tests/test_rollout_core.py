"""The pure parts of rollouts beside the planner: a replacement's create body from the
old container's inspect (auto-update), `compose ps`'s rollout notes, the daemon's
choice for a rollout its client left and its record's file; and the health wait's
bound (on trio's autojump clock)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
import trio.testing

from supervisor.api.handlers.rollouts import Record, decide
from supervisor.rollout.autoupdate import policy_of
from supervisor.rollout.cli import annotate_ps
from supervisor.rollout.clone import clone_body
from supervisor.rollout.executor import Executor, RolloutFailed

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


class Silent:
    """An engine whose replica stays `starting`: its checker never answers."""

    def __init__(self) -> None:
        hc = {"Test": ["CMD", "wget", "http://127.0.0.1/health"], "Interval": 200_000_000,
              "Timeout": 2_000_000_000, "Retries": 2}
        self.info = {"Config": {"Healthcheck": hc},
                     "State": {"Running": True, "Health": {"Status": "starting"}}}

    async def request(self, method: str, path: str, query: Any = None,
                      json_body: Any = None) -> Any:
        return self.info

    async def open(self, method: str, path: str, query: Any = None,
                   json_body: Any = None) -> Any:
        return Quiet()


class Quiet:
    async def __aenter__(self) -> Quiet:
        return self

    async def __aexit__(self, *exc: object) -> None:
        pass

    async def chunks(self) -> AsyncIterator[bytes]:
        await trio.sleep_forever()
        yield b""


async def test_the_health_wait_is_bounded_by_the_check_and_names_the_bound(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A replica whose health stays `starting` (no event ever comes) fails the rollout
    after start_period + (retries + 1) x (interval + timeout) + 10 s, not never."""
    ex = Executor(Silent(), lambda _line: None)  # type: ignore[arg-type]
    began = trio.current_time()
    with trio.fail_after(3600), pytest.raises(RolloutFailed) as err:
        await ex.wait_ready("c1", "x_web-1", 1.0)
    assert str(err.value) == (
        "container x_web-1 did not become healthy within 16.6s (the rollout's bound: "
        "start_period 0s + (retries 2 + 1) x (interval 0.2s + timeout 2s) + 10s)"
    )
    assert trio.current_time() - began == pytest.approx(16.6)


def test_a_left_rollout_is_rolled_back_before_the_switch_and_completed_after() -> None:
    assert decide("starting", True, True, True) == "back"
    assert decide("starting", True, True, False) == "back"
    assert decide("draining", True, True, True) == "forward"  # the new one serves already
    assert decide("draining", True, True, False) == "back"  # ... unless it died since
    assert decide("draining", False, True, False) == "forward"  # the old one is gone
    assert decide("starting", True, False, False) == "none"


def test_a_rollout_record_survives_in_its_file() -> None:
    rec = Record("r1", "demo", "web", "old", "new", "start-first", "draining", 12.5, "demo-web-1")
    back = Record.from_file(rec.to_file())
    assert back.to_api() == rec.to_api() and back.old_name == "demo-web-1"
    assert not back.ended.is_set() and not back.closing
