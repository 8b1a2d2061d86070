"""`GET /containers/json` from cached entries (`api/listing`): every change a listing
shows is seen at the next listing, and the bytes are what building the views afresh
gives (dockerd's JSON shapes, `api/views`)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import Daemon

from supervisor.api import views
from supervisor.api.listing import FEW, Listing
from supervisor.metadata.containers import Container, MountPoint, State, Status
from supervisor.metadata.health import Health
from supervisor.network.ports import Published, ports_summary

NOW = 1_800_000_000.0


class FakeNetworks:
    """The three reads a listing makes of `network.manager.Networks`."""

    def __init__(self) -> None:
        self.published: dict[str, list[Published]] = {}
        self.nets: dict[str, dict[str, Any]] = {}
        self.revisions: dict[str, int] = {}
        self.summaries_asked: list[list[str]] = []

    def view_key(self, cid: str) -> tuple[object, ...]:
        pub = self.published.get(cid)
        return (None if pub is None else tuple(pub), self.revisions.get(cid, 0))

    def ports_summary(self, c: Container) -> list[dict[str, Any]]:
        if c.id not in self.published:
            return []
        return ports_summary(self.published[c.id], (c.config.get("ExposedPorts") or {}).keys())

    def summaries(self, cs: list[Container]) -> dict[str, dict[str, Any]]:
        self.summaries_asked.append([c.id for c in cs])
        return {c.id: self.nets.get(c.id, {}) for c in cs}

    def summary_networks(self, c: Container) -> dict[str, Any]:
        self.summaries_asked.append([c.id])
        return self.nets.get(c.id, {})


def container(n: int, **state: Any) -> Container:
    return Container(
        id=f"{n:02d}" * 32,
        name=f"c{n}",
        image_id="sha256:" + "ab" * 32,
        image="busybox",
        created=f"2026-12-01T10:00:{n:02d}.123456789Z",
        path="sleep",
        args=["1d"],
        config={"Labels": {"app": "web", "é": "ü"}, "ExposedPorts": {"80/tcp": {}}},
        host_config={"NetworkMode": "bridge"},
        mounts=[MountPoint("volume", "/data", source="/v/x", name="x")],
        state=State(**state),
    )


def fresh(cs: list[Container], nets: FakeNetworks, now: float) -> bytes:
    """What the handler answered before entries were cached: each view built anew."""
    body = [views.container_summary(c, nets.ports_summary(c), nets.nets.get(c.id, {}), now=now)
            for c in cs]  # fmt: skip
    return (json.dumps(body, separators=(",", ":"), ensure_ascii=False) + "\n").encode()


def running(c: Container, started: str = "2026-12-01T10:01:00.5Z") -> None:
    c.state.status, c.state.started_at, c.state.pid = Status.RUNNING, started, 42


def test_entries_are_the_views_built_afresh_and_follow_every_change() -> None:
    nets = FakeNetworks()
    listing = Listing(nets)  # type: ignore[arg-type]
    cs = [container(n) for n in range(3)]
    running(cs[0])
    running(cs[1])
    nets.published[cs[0].id] = [Published(80, "tcp", "0.0.0.0", 8080)]
    nets.nets[cs[0].id] = {"bridge": {"IPAddress": "172.17.0.2"}}
    now = 1_764_590_000.0  # 2025-12-01T11:53:20Z
    assert listing.render(cs, cs, now) == fresh(cs, nets, now)
    # the clock alone moves: no entry is rebuilt, the durations follow
    asked = len(nets.summaries_asked)
    assert listing.render(cs, cs, now + 3600) == fresh(cs, nets, now + 3600)
    assert len(nets.summaries_asked) == asked

    steps = [
        lambda: setattr(cs[0], "name", "renamed"),
        lambda: setattr(cs[1].state, "health", Health()),
        lambda: setattr(cs[1].state, "health", Health(status="healthy")),
        lambda: setattr(cs[1].state, "status", Status.PAUSED),
        lambda: running(cs[1], "2026-12-01T10:05:00Z"),
        lambda: (setattr(cs[0].state, "status", Status.EXITED),
                 setattr(cs[0].state, "exit_code", 137),
                 setattr(cs[0].state, "finished_at", "2026-12-01T10:06:00Z"),
                 nets.published.pop(cs[0].id)),
        lambda: setattr(cs[0].state, "status", Status.RESTARTING),
        lambda: setattr(cs[0].state, "exit_code", 1),
        lambda: (running(cs[0]), nets.published.__setitem__(
            cs[0].id, [Published(80, "tcp", "0.0.0.0", 8081)])),
        lambda: (nets.nets.__setitem__(cs[2].id, {"back": {"IPAddress": "10.0.0.3"}}),
                 nets.revisions.__setitem__(cs[2].id, 1)),
        lambda: setattr(cs[2].state, "status", Status.REMOVING),
        lambda: setattr(cs[2].state, "status", Status.DEAD),
    ]
    for step in steps:
        step()
        assert listing.render(cs, cs, now) == fresh(cs, nets, now)
    # a filtered listing, in the order asked; an empty one
    assert listing.render(cs[2:0:-1], cs, now) == fresh(cs[2:0:-1], nets, now)
    assert listing.render([], cs, now) == b"[]\n"


def test_only_changed_entries_are_rebuilt_and_removed_ones_dropped() -> None:
    nets = FakeNetworks()
    listing = Listing(nets)  # type: ignore[arg-type]
    cs = [container(n) for n in range(FEW + 2)]
    listing.render(cs, cs, NOW)
    assert nets.summaries_asked == [[c.id for c in cs]]  # one read for all
    running(cs[2])
    listing.render(cs, cs, NOW)
    assert nets.summaries_asked[-1] == [cs[2].id]
    nets.revisions[cs[3].id] = 7  # its endpoints changed
    listing.render(cs, cs, NOW)
    assert nets.summaries_asked[-1] == [cs[3].id]
    gone = cs.pop(0)
    listing.render(cs, cs, NOW)
    assert gone.id not in listing._entries
    assert len(nets.summaries_asked) == 3  # nothing else was rebuilt


@pytest.fixture
def dk(daemon: Daemon) -> Iterator[Any]:
    client = daemon.client()
    yield client
    client.close()


def _ps(dk: Any, cid: str) -> dict[str, Any]:
    (entry,) = dk.api.containers(all=True, filters={"id": cid})
    return entry  # type: ignore[no-any-return]


def test_a_daemons_listing_follows_rename_ports_networks_and_exits(daemon: Daemon,
                                                                   dk: Any) -> None:
    """Each change shows at the very next `GET /containers/json`, as dockerd's views do."""
    c = dk.containers.run("busybox", ["sleep", "1d"], detach=True, name="listing-a",
                          ports={"80/tcp": None})  # fmt: skip
    net = dk.networks.create("listing-net")
    try:
        first = _ps(dk, c.id)
        assert first["Names"] == ["/listing-a"] and first["State"] == "running"
        (port,) = first["Ports"]
        assert port["PrivatePort"] == 80 and port["PublicPort"] > 0
        assert list(first["NetworkSettings"]["Networks"]) == ["bridge"]

        c.rename("listing-b")
        assert _ps(dk, c.id)["Names"] == ["/listing-b"]
        net.connect(c)
        nets = _ps(dk, c.id)["NetworkSettings"]["Networks"]
        assert sorted(nets) == ["bridge", "listing-net"] and nets["listing-net"]["IPAddress"]
        net.disconnect(c)
        assert list(_ps(dk, c.id)["NetworkSettings"]["Networks"]) == ["bridge"]

        c.kill()
        assert c.wait(timeout=30)["StatusCode"] == 137
        stopped = _ps(dk, c.id)
        assert stopped["State"] == "exited" and stopped["Status"].startswith("Exited (137) ")
        assert stopped["Ports"] == []
        assert stopped["NetworkSettings"]["Networks"]["bridge"]["IPAddress"] == ""
        assert c.id not in [x["Id"] for x in dk.api.containers()]  # not running

        c.start()
        again = _ps(dk, c.id)
        assert again["State"] == "running" and again["Status"].startswith("Up ")
        assert [p["PrivatePort"] for p in again["Ports"]] == [80]
        assert again["NetworkSettings"]["Networks"]["bridge"]["IPAddress"]
    finally:
        c.remove(force=True)
        net.remove()
    assert dk.api.containers(all=True, filters={"id": c.id}) == []
