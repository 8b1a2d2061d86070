"""Networking's steps in a container's lifecycle (`engine/hooks.py`).

At create the network plan (mode, addresses, aliases, published ports, links) is
checked before anything exists and its endpoint rows committed with the record; at
start the namespace, veth, address, routes and port relays are made; at the exit
they go; at remove the endpoint rows go.
"""

from __future__ import annotations

from supervisor.engine.hooks import Draft, NoHooks
from supervisor.metadata.containers import Container
from supervisor.network.manager import Networks, Plan


class NetworkHooks(NoHooks):
    def __init__(self, networks: Networks) -> None:
        self.networks = networks

    def check_create(self, draft: Draft) -> None:
        """Mode, --ip, aliases, -p/-P and busy host ports, --link, all before anything
        exists.  The default network is `bridge`, as Docker's."""
        hc, config = draft.host_config, draft.config
        if (hc.get("NetworkMode") or "default") == "default":
            hc["NetworkMode"] = "bridge"
        mac = draft.body.get("MacAddress") or ""  # deprecated, the primary endpoint's
        draft.plans["network"] = self.networks.plan(hc, draft.body.get("NetworkingConfig"),
                                                    str(mac))
        self.networks.check_ports(
            hc, (config.get("ExposedPorts") or {}).keys(), config.get("Labels") or {}
        )
        self.networks.check_links(draft.name, hc)

    def created(self, c: Container, draft: Draft) -> None:
        plan = draft.plans["network"]
        assert isinstance(plan, Plan)
        self.networks.commit_plan(c.id, plan)  # endpoint rows, in the create's commit

    def create_failed(self, cid: str) -> None:
        self.networks.forget(cid)

    async def starting(self, c: Container) -> None:
        # ports bound, netns + veth + address + routes (all undone if this fails)
        await self.networks.attach(c, self.networks.root / "containers" / c.id)

    async def start_failed(self, c: Container) -> None:
        await self.networks.detach(c)

    async def exited(self, c: Container) -> None:
        await self.networks.detach(c)  # relays, veth, address, netns

    def removed(self, c: Container, *, volumes: bool) -> None:
        self.networks.forget(c.id)  # endpoint rows
