"""Networks for the engine and the API: records, sandboxes, ports, names.

The engine calls, for each container: `plan` + `commit_plan` at create (every check,
no side effect until the row exists), `attach` at start (namespace, veths, addresses,
routes, port listeners; undone on failure), `detach` at exit, `forget` at remove, and
`recover` once after a daemon restart (removes every namespace, veth and address the
previous run left).  A container's namespace is a file under `<root>/netns/`, named by
the container id, so what belongs to this daemon is exactly what lies there and what
its endpoint rows name.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import re
import secrets
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from pathlib import Path
from typing import Any

import structlog
import trio

from config.rollout import SUCCESSOR_LABEL
from supervisor.engine.state import Status
from supervisor.engine.timefmt import rfc3339_nano
from supervisor.errors import Conflict, CorralError, InvalidArgument, NotFound
from supervisor.metadata.containers import Container, ContainerStore
from supervisor.metadata.database import Database
from supervisor.metadata.networks import PREDEFINED, Endpoint, Network, NetworkStore
from supervisor.network import etcfiles, ipam, links, nat, netlink, orphans, proxy
from supervisor.network.ports import (
    PortRequest,
    Published,
    ports_summary,
    ports_view,
    requests_from,
)
from supervisor.pods.labels import POD_LABEL
from supervisor.runtime import userns

log = structlog.get_logger("corral.network")

DEFAULT_ROOT = Path("/var/lib/corral")
NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
POOLS_ENV = "CORRAL_DEFAULT_ADDRESS_POOLS"


def _kernel_nat_for(c: Container) -> bool:
    """Whether a container's ports may take this host's connections by DNAT: not a
    pod's, whose readiness must close them at once (the relay's `Upstream.ready`)."""
    return POD_LABEL not in (c.config.get("Labels") or {})


@functools.cache
def _pseudo_id(name: str) -> str:
    return hashlib.sha256(f"corral-network-{name}".encode()).hexdigest()


def network_mode(hc: dict[str, Any]) -> str:
    mode = hc.get("NetworkMode") or "default"
    return "bridge" if mode == "default" else str(mode)


def has_sandbox(mode: str) -> bool:
    """Modes for which corral makes the namespace (all but none, host, container:)."""
    return mode not in ("none", "host") and not mode.startswith("container:")


@dataclass
class EndpointPlan:
    network: Network
    aliases: list[str]
    requested_ip: str
    requested_mac: str = ""
    requested_ip6: str = ""
    links: list[str] = field(default_factory=list)


@dataclass
class Plan:
    mode: str
    endpoints: list[EndpointPlan]


SUCCESSOR_OF = SUCCESSOR_LABEL  # label: takes this container's ports at a rollout


@dataclass
class Relay:
    """One published port's listener and relay task; its own cancel scope, so a
    rollout can hand it from one container's sandbox to another's while it serves."""

    request: PortRequest
    published: Published
    upstream: proxy.Upstream
    #: the listening socket (owned by the relay task; live restore hands a copy to
    #: the holder, and a new daemon gets it back)
    sock: Any = None
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    done: trio.Event = field(default_factory=trio.Event)
    #: whether this host's connections may bypass the relay by a DNAT rule
    #: (network/nat.py): not a pod's (its readiness gates it), nor a rollout's old one
    kernel: bool = True


@dataclass
class Sandbox:
    """What a running container holds: its namespace and its ports' relays.

    `waiting` are the requests of a rollout's new replica whose host port its
    predecessor still serves: no listener of its own until `Networks.takeover`."""

    path: Path
    target: str = ""  # the address relays reach the container at
    bridge: str = ""  # the bridge `target` is reached through
    relays: list[Relay] = field(default_factory=list)
    waiting: list[PortRequest] = field(default_factory=list)

    @property
    def published(self) -> list[Published]:
        return [r.published for r in self.relays]


def takes_over(req: PortRequest, held: Published) -> bool:
    """Whether a successor's request is the port its predecessor publishes as `held`:
    the same protocol and address, and that host port (or, for an ephemeral request,
    the same container port)."""
    if req.proto != held.proto or req.host_ip != held.host_ip:
        return False
    if req.host_lo == 0:
        return req.container_port == held.container_port
    return req.host_lo <= held.host_port <= req.host_hi


class Networks:
    def __init__(
        self,
        root: Path,
        db: Database,
        containers: ContainerStore,
        nursery: trio.Nursery,
        pools: tuple[ipam.Pool, ...] | None = None,
        *,
        kernel_nat: bool = True,
    ) -> None:
        self.root = root
        self.netns_dir = root / "netns"
        self.store = NetworkStore(db)
        self.containers = containers
        self.nursery = nursery
        env_pools = os.environ.get(POOLS_ENV)
        self.pools = pools or (ipam.parse_pools(env_pools) if env_pools else ipam.DEFAULT_POOLS)
        self.nl = netlink.Netlink()
        #: `userns-remap`: the holder namespace remapped containers' netns belong to
        self.remap_userns: Path | None = None
        self._sandboxes: dict[str, Sandbox] = {}
        #: this host's connections to published ports, DNATed (off: `userland-proxy`)
        self.nat = nat.KernelNat(root, enabled=kernel_nat)
        nursery.start_soon(self.nat.run)
        self._ensure_default()

    def close(self) -> None:
        self.nl.close()

    # ------------------------------------------------------------ networks
    def _default_bridge_name(self, net_id: str) -> str:
        # Several daemons (tests, other state roots) may share a host: only the daemon
        # of the default root gets the well-known name.
        return "corral0" if self.root.resolve() == DEFAULT_ROOT else "cr-" + net_id[:12]

    def _taken_subnets(self, skip: str = "") -> dict[str, IPv4Network]:
        taken = {f"network {n.name}": n.network for n in self.store.all() if n.id != skip}
        for i, routed in enumerate(self.nl.routed_subnets()):
            taken[f"host route {i}"] = routed
        return taken

    def _ensure_default(self) -> None:
        if self.store.find("bridge") is not None:
            return
        nid = secrets.token_hex(32)
        subnet = ipam.pick_subnet(self.pools, self._taken_subnets().values())
        self.store.add(
            Network(
                id=nid,
                name="bridge",
                subnet=str(subnet),
                gateway=str(ipam.default_gateway(subnet)),
                bridge=self._default_bridge_name(nid),
                created=rfc3339_nano(),
                options={"com.docker.network.bridge.default_bridge": "true"},
            )
        )

    def configure_default(self, ipv6: bool, fixed_cidr_v6: str = "") -> None:
        """daemon.yaml's `ipv6`/`fixed-cidr-v6` for the default bridge, at each daemon
        start as dockerd's (nothing runs yet): its v6 subnet set, kept or dropped."""
        net = self.store.get("bridge")
        if not ipv6:
            subnet6 = ""
        elif fixed_cidr_v6:
            wanted = ipam.parse_subnet6(fixed_cidr_v6)
            for other in self.store.all():
                if other.id != net.id and other.network6 is not None and (
                    wanted.overlaps(other.network6)
                ):
                    raise CorralError(
                        f"fixed-cidr-v6 {wanted} overlaps network {other.name}'s "
                        f"{other.network6}"
                    )
            subnet6 = str(wanted)
        else:
            subnet6 = net.subnet6 or str(
                ipam.pick_subnet6(n.network6 for n in self.store.all() if n.network6)
            )
        if subnet6 == net.subnet6:
            return
        old6 = net.network6
        if old6 is not None and self.nl.index(net.bridge) is not None:
            self.nl.delete_bridge(net.bridge, net.network, old6)  # made again at a start
        net.subnet6 = subnet6
        net.gateway6 = str(IPv6Network(subnet6).network_address + 1) if subnet6 else ""
        net.last_ip6 = ""
        self.store.save(net)
        log.info("network.default_ipv6", subnet6=subnet6 or "off")

    def all(self) -> list[Network]:
        return self.store.all()

    def get(self, ref: str) -> Network:
        return self.store.get(ref)

    def lookup_view(self, ref: str) -> dict[str, Any]:
        """A network's inspect view, including the predefined host and none."""
        for name in ("host", "none"):
            if ref in (name, _pseudo_id(name)) or (
                len(ref) >= 3 and _pseudo_id(name).startswith(ref)
            ):
                return self._pseudo_view(name)
        return self.view(self.store.get(ref))

    def create_network(self, body: dict[str, Any]) -> Network:
        name = str(body.get("Name") or "")
        if not name:
            raise InvalidArgument("network name is required")
        if name in PREDEFINED or not NAME_RE.match(name):
            if name in ("host", "none"):
                raise Conflict(f"operation is not permitted on predefined {name} network")
            if name == "bridge":
                raise Conflict("network with name bridge already exists")
            raise InvalidArgument(f'invalid network name "{name}": must match {NAME_RE.pattern}')
        if self.store.find(name) is not None and self.store.get(name).name == name:
            raise Conflict(f"network with name {name} already exists")
        driver = body.get("Driver") or "bridge"
        if driver != "bridge":
            raise NotFound(f'plugin "{driver}" not found')
        configs = ((body.get("IPAM") or {}).get("Config")) or []
        cfg, cfg6 = self._ipam_configs(configs, bool(body.get("EnableIPv6")))
        taken = self._taken_subnets()
        if cfg.get("Subnet"):
            subnet = ipam.parse_subnet(str(cfg["Subnet"]))
            ipam.check_subnet_free(subnet, taken)
        elif cfg.get("Gateway"):
            raise InvalidArgument("a gateway needs a subnet (--subnet)")
        else:
            subnet = ipam.pick_subnet(self.pools, taken.values())
        gateway = (
            ipam.parse_gateway(str(cfg["Gateway"]), subnet)
            if cfg.get("Gateway")
            else ipam.default_gateway(subnet)
        )
        subnet6, gateway6 = self._ipv6_of(cfg6) if body.get("EnableIPv6") else (None, None)
        nid = secrets.token_hex(32)
        net = Network(
            id=nid,
            name=name,
            subnet=str(subnet),
            gateway=str(gateway),
            bridge="cr-" + nid[:12],
            created=rfc3339_nano(),
            internal=bool(body.get("Internal")),
            attachable=bool(body.get("Attachable")),
            labels=dict(body.get("Labels") or {}),
            options=dict(body.get("Options") or {}),
            subnet6=str(subnet6) if subnet6 else "",
            gateway6=str(gateway6) if gateway6 else "",
        )
        self.nl.ensure_bridge(net.bridge, gateway, subnet.prefixlen, orphans.alias_for(self.root))
        try:
            if subnet6 is not None:
                self.nl.add_address6(net.bridge, str(gateway6), subnet6.prefixlen)
            self.store.add(net)
        except BaseException:
            self.nl.delete_bridge(net.bridge, net.network, net.network6)
            raise
        log.info("network.create", id=nid[:12], name=name, subnet=str(subnet))
        return net

    @staticmethod
    def _ipam_configs(
        configs: list[Any], ipv6: bool
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The IPv4 and the IPv6 `IPAM.Config` entries (at most one of each)."""
        four: list[dict[str, Any]] = []
        six: list[dict[str, Any]] = []
        for c in configs:
            c = dict(c or {})
            if c.get("IPRange") or c.get("AuxiliaryAddresses"):
                raise InvalidArgument("--ip-range and --aux-address are not supported")
            (six if ":" in str(c.get("Subnet") or c.get("Gateway") or "") else four).append(c)
        if len(four) > 1 or len(six) > 1:
            raise InvalidArgument(
                "only one IPv4 and one IPv6 subnet are supported per network by corral"
            )
        if six and not ipv6:
            raise InvalidArgument(
                f"an IPv6 subnet ({six[0].get('Subnet')}) needs IPv6 enabled (--ipv6)"
            )
        return (four[0] if four else {}), (six[0] if six else {})

    def _ipv6_of(self, cfg: dict[str, Any]) -> tuple[IPv6Network, IPv6Address]:
        """`--ipv6`: the subnet given (free of every other network's) or a ULA /64."""
        taken = [n.network6 for n in self.store.all() if n.network6 is not None]
        if cfg.get("Subnet"):
            subnet = ipam.parse_subnet6(str(cfg["Subnet"]))
            for other in self.store.all():
                if other.network6 is not None and subnet.overlaps(other.network6):
                    raise Conflict(
                        "invalid pool request: Pool overlaps with other one on this address "
                        f"space ({other.name} has {other.network6})"
                    )
        elif cfg.get("Gateway"):
            raise InvalidArgument("a gateway needs a subnet (--subnet)")
        else:
            subnet = ipam.pick_subnet6(taken)
        gateway = (ipam.parse_gateway6(str(cfg["Gateway"]), subnet) if cfg.get("Gateway")
                   else subnet.network_address + 1)  # fmt: skip
        return subnet, gateway

    def users_of(self, net: Network) -> list[str]:
        return [ep.container_id for ep in self.store.members(net.id)]

    def remove_network(self, ref: str) -> None:
        if ref in ("host", "none") or any(_pseudo_id(n) == ref for n in ("host", "none")):
            raise Conflict(f"{ref} is a pre-defined network and cannot be removed")
        net = self.store.get(ref)
        if net.is_default:
            raise Conflict("bridge is a pre-defined network and cannot be removed")
        users = self.users_of(net)
        if users:
            names = ", ".join(self._name_of(u) for u in users)
            raise Conflict(
                f"error while removing network: network {net.name} id {net.id} "
                f"has active endpoints ({names})"
            )
        self.nl.delete_bridge(net.bridge, net.network, net.network6)
        self.store.delete(net)
        log.info("network.destroy", id=net.id[:12], name=net.name)

    def prune(self, keep: Any = None) -> list[str]:
        removed = []
        for net in self.store.all():
            if net.is_default or self.users_of(net) or (keep is not None and keep(net)):
                continue
            self.remove_network(net.id)
            removed.append(net.name)
        return removed

    def _name_of(self, cid: str) -> str:
        try:
            return self.containers.get(cid).name
        except CorralError:
            return cid[:12]

    # ------------------------------------------------------- create: plan
    def plan(
        self,
        host_config: dict[str, Any],
        networking: dict[str, Any] | None,
        container_mac: str = "",
    ) -> Plan:
        """Every check of a create's network settings, with no side effect."""
        mode = network_mode(host_config)
        endpoints_cfg: dict[str, Any] = dict((networking or {}).get("EndpointsConfig") or {})
        if mode in ("none", "host"):
            extra = [k for k in endpoints_cfg if k != mode]
            if extra:
                raise InvalidArgument(
                    "container cannot be connected to network endpoints: "
                    f"{mode} and {', '.join(extra)}"
                )
            return Plan(mode, [])
        if mode.startswith("container:"):
            ref = mode.split(":", 1)[1]
            if not ref:
                raise InvalidArgument("--network container: needs a container name or id")
            self.containers.get(ref)  # NotFound names it
            if host_config.get("PortBindings") or host_config.get("PublishAllPorts"):
                raise InvalidArgument(
                    "conflicting options: port publishing and the container type network mode"
                )
            return Plan(mode, [])
        # The docker CLI keys the primary network's endpoint settings by "default".
        if "default" in endpoints_cfg:
            endpoints_cfg.setdefault(mode, endpoints_cfg.pop("default"))
        if container_mac:  # the deprecated Config.MacAddress: the primary endpoint's
            primary_cfg = dict(endpoints_cfg.get(mode) or {})
            if primary_cfg.get("MacAddress") not in (None, "", container_mac):
                raise InvalidArgument(
                    "the container-wide MAC address must match the endpoint-specific MAC "
                    "address for the main network, or be left empty"
                )
            primary_cfg["MacAddress"] = container_mac
            endpoints_cfg[mode] = primary_cfg
        primary = self.store.find(mode)
        if primary is None:
            # 400, not 404: the docker CLI reads any 404 on create as "pull the image".
            raise InvalidArgument(f"network {mode} not found")
        if not primary.is_default and host_config.get("Links"):
            # dockerd's registerLinks skips user networks (the docker CLI sends the links
            # on the endpoint too); an API client's HostConfig.Links go there, not lost
            primary_cfg = dict(endpoints_cfg.get(mode) or {})
            given = [str(x) for x in primary_cfg.get("Links") or []]
            primary_cfg["Links"] = list(dict.fromkeys(given + list(host_config["Links"])))
            endpoints_cfg[mode] = primary_cfg
        order = [primary] + [
            self._network_for_create(k)
            for k in endpoints_cfg
            if self._network_for_create(k).id != primary.id
        ]
        plans = []
        for net in order:
            cfg = (
                endpoints_cfg.get(net.name)
                or endpoints_cfg.get(net.id)
                or endpoints_cfg.get(mode)
                or {}
            )
            plans.append(self._endpoint_plan(net, cfg))
        requests_from(
            host_config.get("PortBindings"), bool(host_config.get("PublishAllPorts")), ()
        )  # malformed specs fail here
        return Plan(primary.name, plans)

    def _network_for_create(self, ref: str) -> Network:
        net = self.store.find(ref)
        if net is None:
            raise InvalidArgument(f"network {ref} not found")
        return net

    def _endpoint_plan(self, net: Network, cfg: dict[str, Any]) -> EndpointPlan:
        aliases = [str(a) for a in cfg.get("Aliases") or []]
        requested = str(((cfg.get("IPAMConfig") or {}).get("IPv4Address")) or "")
        if net.is_default and aliases:
            raise InvalidArgument(
                "network-scoped alias is supported only for containers in user defined networks"
            )
        if requested:
            if net.is_default:
                raise InvalidArgument(
                    "user specified IP address is supported on user defined networks only"
                )
            ipam.check_requested(
                requested, net.network, net.gateway_ip, self.store.used_ips(net.id), net.name
            )
        mac = str(cfg.get("MacAddress") or "")
        if mac:
            mac = ipam.check_mac(mac)
        requested6 = str(((cfg.get("IPAMConfig") or {}).get("IPv6Address")) or "")
        if requested6 and net.is_default:
            raise InvalidArgument(
                "user specified IP address is supported on user defined networks only"
            )
        if requested6:
            requested6 = str(ipam.check_requested6(
                requested6, net.network6, net.gateway6_ip, self._used6(net), net.name))  # fmt: skip
        specs = [str(x) for x in cfg.get("Links") or []]
        if specs and net.is_default:
            raise InvalidArgument(
                "EndpointSettings.Links on the default bridge are not supported by corral: "
                "its links are HostConfig.Links (--link)"
            )
        parsed = [links.parse(s) for s in specs]  # "invalid link: ..." names a bad one
        return EndpointPlan(net, aliases, requested, mac, requested6,
                            [f"{x.name}:{x.alias}" for x in parsed])  # fmt: skip

    def check_ports(
        self,
        host_config: dict[str, Any],
        exposed: Iterable[str],
        labels: dict[str, Any] | None = None,
    ) -> list[PortRequest]:
        """At create: malformed specs and fixed host ports already in use are refused
        (but for those the container's rollout predecessor holds, which it takes over)."""
        if not has_sandbox(network_mode(host_config)):
            return []
        reqs = requests_from(
            host_config.get("PortBindings"), bool(host_config.get("PublishAllPorts")), exposed
        )
        held = self._held_by_predecessor(labels or {})
        for r in reqs:
            if not any(takes_over(r, p) for p in held):
                proxy.check_free(r)
        return reqs

    def _held_by_predecessor(self, labels: dict[str, Any]) -> list[Published]:
        """The ports a rollout's predecessor (label `SUCCESSOR_OF`) serves now."""
        pred = str(labels.get(SUCCESSOR_OF) or "")
        sb = self._sandboxes.get(pred) if pred else None
        return sb.published if sb is not None else []

    def commit_plan(self, cid: str, plan: Plan) -> None:
        """Persist the endpoints of a new container (its row exists now)."""
        for ep in plan.endpoints:
            self.store.add_endpoint(
                Endpoint(
                    container_id=cid,
                    network_id=ep.network.id,
                    id=secrets.token_hex(32),
                    aliases=ep.aliases,
                    requested_ip=ep.requested_ip,
                    requested_mac=ep.requested_mac,
                    requested_ip6=ep.requested_ip6,
                    links=ep.links,
                )
            )

    # ---------------------------------------------------------- start/exit
    def sandbox_path(self, cid: str) -> Path:
        return self.netns_dir / cid

    def spec_network(self, c: Container) -> str:
        """What the OCI spec's network namespace is: none, host, or a netns path."""
        mode = network_mode(c.host_config)
        if mode in ("none", "host"):
            return mode
        if mode.startswith("container:"):
            other = self.containers.get(mode.split(":", 1)[1])
            if other.state.status not in (Status.RUNNING, Status.PAUSED) or not other.state.pid:
                raise Conflict(f"cannot join network of a non running container: {other.id}")
            if network_mode(other.host_config) == "host":
                return "host"
            return f"/proc/{other.state.pid}/ns/net"
        return str(self.sandbox_path(c.id))

    def _ensure_bridge(self, net: Network) -> None:
        if self.nl.index(net.bridge) is None and self.nl.subnet_routed_elsewhere(
            net.network, net.bridge
        ):
            if net.is_default and not any(ep.ip for ep in self.store.members(net.id)):
                taken = self._taken_subnets(skip=net.id).values()
                subnet = ipam.pick_subnet(self.pools, taken)
                net.subnet, net.gateway, net.last_ip = (
                    str(subnet),
                    str(ipam.default_gateway(subnet)),
                    "",
                )
                self.store.save(net)
            else:
                raise Conflict(
                    f"subnet {net.subnet} of network {net.name} is now routed elsewhere on the host"
                )
        self.nl.ensure_bridge(
            net.bridge, net.gateway_ip, net.network.prefixlen, orphans.alias_for(self.root)
        )
        if net.network6 is not None:
            self.nl.add_address6(net.bridge, net.gateway6, net.network6.prefixlen)

    def _used6(self, net: Network, skip: str = "") -> set[IPv6Address]:
        """IPv6 addresses held on `net` (running endpoints) or asked for with --ip6."""
        used = set()
        for o in self.store.members(net.id):
            if o.container_id == skip:
                continue
            if o.ip and o.ip6:
                used.add(IPv6Address(o.ip6))
            if o.requested_ip6:
                used.add(IPv6Address(o.requested_ip6))
        return used

    def _allocate6(self, net: Network, ep: Endpoint) -> None:
        """The endpoint's IPv6 address on an IPv6 network (ip6 "" on others)."""
        subnet, gateway = net.network6, net.gateway6_ip
        if subnet is None or gateway is None:
            ep.ip6 = ""
            return
        used = self._used6(net, skip=ep.container_id)
        if ep.requested_ip6:
            addr = IPv6Address(ep.requested_ip6)
            if addr in used:
                raise Conflict(f"Address already in use: {addr} on network {net.name}")
        else:
            last = IPv6Address(net.last_ip6) if net.last_ip6 else None
            addr = ipam.next_address6(subnet, gateway, used, last)
            net.last_ip6 = str(addr)
            self.store.save(net)
        ep.ip6 = str(addr)

    def _v6_of(
        self, net: Network, ep: Endpoint, primary: bool
    ) -> tuple[str, int, str | None] | None:
        if not ep.ip6 or net.network6 is None:
            return None
        return (ep.ip6, net.network6.prefixlen, net.gateway6 if primary else None)

    def _allocate(self, net: Network, ep: Endpoint) -> IPv4Address:
        used = self.store.used_ips(net.id)
        if ep.requested_ip:
            addr = IPv4Address(ep.requested_ip)
            taken = {
                IPv4Address(o.ip)
                for o in self.store.members(net.id)
                if o.ip and o.container_id != ep.container_id
            }
            if addr not in net.network or addr in taken:
                raise Conflict(f"Address already in use: {addr} on network {net.name}")
        else:
            last = IPv4Address(net.last_ip) if net.last_ip else None
            addr = ipam.next_address(net.network, net.gateway_ip, used, last)
            net.last_ip = str(addr)
            self.store.save(net)
        ep.ip = str(addr)
        ep.mac = ep.requested_mac or netlink.mac_for(addr)
        self._allocate6(net, ep)
        self.store.save_endpoint(ep)
        return addr

    async def attach(self, c: Container, cdir: Path) -> None:
        """Give a starting container its network; on any failure, nothing stays."""
        mode = network_mode(c.host_config)
        if mode.startswith("container:"):
            self._share_etc_files(c, cdir, mode.split(":", 1)[1])
            return
        if not has_sandbox(mode):
            return
        exposed = list((c.config.get("ExposedPorts") or {}).keys())
        reqs = requests_from(
            c.host_config.get("PortBindings"), bool(c.host_config.get("PublishAllPorts")), exposed
        )
        listeners: list[tuple[PortRequest, Any]] = []
        sandbox = Sandbox(self.sandbox_path(c.id))
        made_ns = False
        endpoints = self.store.endpoints_of(c.id)
        held = self._held_by_predecessor(c.config.get("Labels") or {})
        try:
            for r in reqs:  # first: a busy port fails before anything is made
                if any(takes_over(r, p) for p in held):
                    sandbox.waiting.append(r)
                else:
                    listeners.append((r, proxy.bind(r)))
            for ep in endpoints:
                self._ensure_bridge(self.store.get(ep.network_id))
            if sandbox.path.exists():
                netlink.delete_netns(sandbox.path)  # a stale file of a crashed start
            if self.remap_userns is not None and c.host_config.get("UsernsMode") != "host":
                # owned by the remapped user namespace, or runc can not mount sysfs
                await trio.to_thread.run_sync(
                    userns.create_netns, sandbox.path, self.remap_userns
                )
            else:
                netlink.create_netns(sandbox.path)
            made_ns = True
            if not endpoints:
                self.nl.loopback_up(sandbox.path)
            for i, ep in enumerate(endpoints):
                net = self.store.get(ep.network_id)
                addr = self._allocate(net, ep)
                ep.host_ifname = "veth" + secrets.token_hex(6)[:11]
                self.store.save_endpoint(ep)
                self.nl.add_veth(
                    ep.host_ifname,
                    net.bridge,
                    sandbox.path,
                    f"eth{i}",
                    addr,
                    net.network.prefixlen,
                    net.gateway_ip if i == 0 else None,
                    ep.mac,
                    self._v6_of(net, ep, i == 0),
                )
        except BaseException:
            for _r, sock in listeners:
                sock.close()
            self._undo_endpoints(c.id)
            if made_ns:
                netlink.delete_netns(sandbox.path)
            self._drop_idle_default_bridge()
            raise
        sandbox.target = endpoints[0].ip if endpoints else ""
        sandbox.bridge = self.store.get(endpoints[0].network_id).bridge if endpoints else ""
        kernel = _kernel_nat_for(c)
        for r, sock in listeners:
            self._serve(sandbox, r, sock, kernel=kernel)
        self._sandboxes[c.id] = sandbox
        self.refresh_hosts(c.id, cdir)
        log.debug("network.attach", id=c.id[:12], ips=[ep.ip for ep in endpoints])

    def _serve(self, sandbox: Sandbox, r: PortRequest, sock: Any, *, kernel: bool) -> None:
        port = sock.getsockname()[1]
        relay = Relay(
            r,
            Published(r.container_port, r.proto, r.host_ip, port),
            proxy.Upstream((sandbox.target, r.container_port)),
            sock=sock,
            kernel=kernel,
        )
        sandbox.relays.append(relay)
        self.nursery.start_soon(self._relay, relay, sock)
        self._forward(relay, sandbox)

    def _forward(self, relay: Relay, sandbox: Sandbox | None) -> None:
        """The relay's DNAT rule as it should be now: there while it may bypass the
        relay and takes connections, gone otherwise (loaded by `nat.run`)."""
        p = relay.published
        wanted = None
        if (sandbox is not None and relay.kernel and relay.upstream.ready
                and nat.kernel_can_forward(p.proto, p.host_ip, sandbox.target, sandbox.bridge)):
            wanted = nat.Forward(p.host_ip, p.host_port, sandbox.target, p.container_port,
                                 sandbox.bridge)
        self.nat.put(p.host_ip, p.host_port, wanted)

    async def relay_only(self, cid: str, only: bool = True) -> None:
        """A rollout's old replica: from now until `only=False`, every new connection to
        its ports goes through the relay, which counts what the switch drains.  Returns
        once no rule sends a new connection past it."""
        sandbox = self._sandboxes.get(cid)
        for relay in sandbox.relays if sandbox else []:
            relay.kernel = not only
            self._forward(relay, sandbox)
        await self.nat.settled()

    async def _relay(self, relay: Relay, sock: Any) -> None:
        try:
            with relay.scope:
                await proxy.serve(sock, relay.request.proto, relay.upstream)
        finally:
            sock.close()
            relay.done.set()

    def takeover(self, old_id: str, new_id: str) -> list[tuple[proxy.Upstream, tuple[str, int]]]:
        """A rollout's switch: the new replica's waiting ports take the old one's relays.

        Each relay's upstream is switched in one assignment (connections accepted from
        now on reach the new replica, open ones keep the old), and the relay moves to
        the new sandbox, so the old container's exit no longer stops it.  A waiting port
        the old one no longer serves (it died meanwhile) is bound now.  Returns each
        switched upstream with the old target, for the caller to drain."""
        new = self._sandboxes.get(new_id)
        if new is None:
            raise Conflict(f"container {new_id} is not running")
        old = self._sandboxes.get(old_id)
        switched: list[tuple[proxy.Upstream, tuple[str, int]]] = []
        for r in list(new.waiting):
            relay = next(
                (x for x in (old.relays if old else []) if takes_over(r, x.published)), None
            )
            if relay is None:
                self._serve(new, r, proxy.bind(r), kernel=True)
            else:
                assert old is not None
                old.relays.remove(relay)
                previous = relay.upstream.switch((new.target, r.container_port))
                relay.request = r
                relay.published = Published(
                    r.container_port, r.proto, r.host_ip, relay.published.host_port
                )
                new.relays.append(relay)
                relay.kernel = True  # what the old one had open drains through the relay
                self._forward(relay, new)
                switched.append((relay.upstream, previous))
            new.waiting.remove(r)
        log.info("network.takeover", old=old_id[:12], new=new_id[:12], ports=len(switched))
        return switched

    def _undo_endpoints(self, cid: str) -> None:
        for ep in self.store.endpoints_of(cid):
            if ep.host_ifname:
                self.nl.delete_link(ep.host_ifname)
            if ep.ip or ep.host_ifname:
                ep.ip, ep.ip6, ep.host_ifname = "", "", ""
                self.store.save_endpoint(ep)

    async def detach(self, c: Container) -> None:
        """At exit: relays stopped, veths deleted, addresses released, netns gone."""
        sandbox = self._sandboxes.pop(c.id, None)
        if sandbox is None and not has_sandbox(network_mode(c.host_config)):
            # none, host, container:<id>: `attach` made nothing, so nothing to undo (two
            # endpoint queries and a umount2 per exit of a crash-looping `--network none`)
            return
        if sandbox is not None:
            for relay in sandbox.relays:
                self.nat.put(relay.published.host_ip, relay.published.host_port, None)
                relay.scope.cancel()
            for relay in sandbox.relays:
                await relay.done.wait()
            await self.nat.settled()  # no rule sends anything to the address released below
        endpoints = self.store.endpoints_of(c.id)
        had = [ep.network_id for ep in endpoints if ep.ip]
        self._undo_endpoints(c.id)
        netlink.delete_netns(self.sandbox_path(c.id))
        if endpoints:  # one with none (`--network none`, host) kept no bridge up
            self._drop_idle_default_bridge()
        if had:
            self._refresh_peers(c.id, had)

    def _drop_idle_default_bridge(self) -> None:
        """The default bridge goes with its last running container (it is made again on
        the next start, a few ms): a daemon killed while idle leaves no link behind."""
        net = self.store.find("bridge")
        if net is not None and not any(ep.ip for ep in self.store.members(net.id)):
            self.nl.delete_bridge(net.bridge, net.network)

    def forget(self, cid: str) -> None:
        """At remove: the container's endpoints go (detach already ran)."""
        self._undo_endpoints(cid)
        netlink.delete_netns(self.sandbox_path(cid))
        self.store.delete_endpoints_of(cid)

    def listener_fds(self, cid: str) -> dict[str, int]:
        """The listening sockets of a running container's published ports, by a name
        `adopt` reads back (`port:PROTO:CONTAINER_PORT:HOST_IP`)."""
        sandbox = self._sandboxes.get(cid)
        if sandbox is None:
            return {}
        return {f"port:{r.published.proto}:{r.published.container_port}:"
                f"{r.published.host_ip}": r.sock.fileno()
                for r in sandbox.relays if r.sock is not None and r.sock.fileno() >= 0}

    def adopt(self, cid: str, listeners: dict[str, socket.socket]) -> None:
        """Live restore: a container that kept running while no daemon did gets its
        relays again, on the very listening sockets it had (connections that came
        meanwhile wait in their backlog)."""
        endpoints = self.store.endpoints_of(cid)
        sandbox = Sandbox(self.sandbox_path(cid))
        sandbox.target = endpoints[0].ip if endpoints else ""
        sandbox.bridge = self.store.get(endpoints[0].network_id).bridge if endpoints else ""
        self._sandboxes[cid] = sandbox
        kernel = _kernel_nat_for(self.containers.get(cid))
        for name, sock in listeners.items():
            _, proto, cport, host_ip = name.split(":", 3)
            sock.setblocking(False)
            port = sock.getsockname()[1]
            self._serve(sandbox, PortRequest(int(cport), proto, host_ip, port, port), sock,
                        kernel=kernel)

    def recover(self, keep: frozenset[str] = frozenset()) -> None:
        """After a restart: no namespace, veth, address or rule of the previous run
        stays, but those of the containers in `keep` (adopted: still running).  Bridges
        that daemons of deleted roots left on the host go too (network/orphans.py)."""
        swept = orphans.sweep_bridges(self.nl)
        tables = nat.sweep_tables()
        if swept or tables:
            log.info("network.orphans_removed", bridges=swept, nat_tables=tables)
        kept_links = {ep.host_ifname for ep in self.store.all_endpoints()
                      if ep.container_id in keep and ep.host_ifname}
        for ep in self.store.all_endpoints():
            if ep.host_ifname and ep.host_ifname not in kept_links:
                self.nl.delete_link(ep.host_ifname)
        for net in self.store.all():
            if any(ep.container_id in keep for ep in self.store.members(net.id)):
                self._ensure_bridge(net)
            for port in self.nl.ports_of(net.bridge):
                if port.startswith("veth") and port not in kept_links:
                    self.nl.delete_link(port)
            # isolation goes with the bridge: re-applied if it stayed, dropped if not
            for subnet in (net.network, net.network6):
                if subnet is None:
                    continue
                if self.nl.index(net.bridge) is None:
                    self.nl.unisolate(net.bridge, subnet)
                else:
                    self.nl.isolate(net.bridge, subnet)
        if self.netns_dir.is_dir():
            for f in self.netns_dir.iterdir():
                if f.name not in keep:
                    netlink.delete_netns(f)
        for ep in self.store.all_endpoints():
            if ep.container_id in keep:
                continue
            if ep.ip or ep.host_ifname:  # one write each, and none after a clean stop
                ep.ip, ep.host_ifname = "", ""  # (so a start on a full disk needs none)
                self.store.save_endpoint(ep)
        self._drop_idle_default_bridge()

    def adopted(self) -> None:
        """After live restore's adoptions (and before any start): the DNAT table holds
        the adopted containers' rules alone.  Until now the previous run's stayed, so
        their ports answered this host throughout."""
        self.nat.reset()

    def shutdown(self, *, keep: bool = False) -> None:
        """The daemon stops (its containers are stopped): bridges go, like everything
        else -- unless containers keep running (`keep`: live restore)."""
        if not keep:
            for net in self.store.all():
                self.nl.delete_bridge(net.bridge, net.network, net.network6)
            self.nat.drop()  # (kept, it goes on forwarding to the containers kept running)
        self.close()

    # ------------------------------------------------------ connect/disconnect
    async def connect(self, ref: str, c: Container, cfg: dict[str, Any], cdir: Path) -> None:
        mode = network_mode(c.host_config)
        if not has_sandbox(mode):
            raise Conflict(
                "container sharing network namespace with another container or host "
                f"cannot be connected to any other network ({mode})"
            )
        net = self.store.get(ref)
        if any(ep.network_id == net.id for ep in self.store.endpoints_of(c.id)):
            raise Conflict(f"endpoint with name {c.name} already exists in network {net.name}")
        plan = self._endpoint_plan(net, cfg or {})
        ep = Endpoint(c.id, net.id, secrets.token_hex(32), plan.aliases, plan.requested_ip,
                      requested_mac=plan.requested_mac,
                      requested_ip6=plan.requested_ip6, links=plan.links)  # fmt: skip
        self.store.add_endpoint(ep)
        sandbox = self._sandboxes.get(c.id)
        if sandbox is None:
            return
        try:
            self._ensure_bridge(net)
            addr = self._allocate(net, ep)
            ep.host_ifname = "veth" + secrets.token_hex(6)[:11]
            self.store.save_endpoint(ep)
            n = len([x for x in self.nl.ifnames_in(sandbox.path) if x.startswith("eth")])
            self.nl.add_veth(
                ep.host_ifname,
                net.bridge,
                sandbox.path,
                f"eth{n}",
                addr,
                net.network.prefixlen,
                None,
                ep.mac,
                self._v6_of(net, ep, False),
            )
        except BaseException:
            if ep.host_ifname:
                self.nl.delete_link(ep.host_ifname)
            self.store.delete_endpoint(ep)
            raise
        self.refresh_hosts(c.id, cdir)

    async def disconnect(self, ref: str, c: Container, cdir: Path) -> None:
        net = self.store.get(ref)
        mine = [ep for ep in self.store.endpoints_of(c.id) if ep.network_id == net.id]
        if not mine:
            raise Conflict(f"container {c.id} is not connected to network {net.name}")
        ep = mine[0]
        if ep.host_ifname:
            self.nl.delete_link(ep.host_ifname)
        self.store.delete_endpoint(ep)
        if c.id in self._sandboxes:
            self.refresh_hosts(c.id, cdir)
            self._refresh_peers(c.id, [net.id])

    # ------------------------------------------------------------ etc files
    def _share_etc_files(self, c: Container, cdir: Path, ref: str) -> None:
        """`--network container:X`: X's hosts, hostname and resolv.conf, and its hostname,
        as Docker does.  Each file becomes a hard link to X's (same inode), so the bind
        mounts the engine makes show X's files, kept current as X's peers come and go
        (they are rewritten in place).  A gone or stopped X is left to `spec_network`,
        which refuses the start with Docker's message."""
        with contextlib.suppress(CorralError):
            other = self.containers.get(ref)
            if other.state.status not in (Status.RUNNING, Status.PAUSED):
                return
            for name in ("hosts", "hostname", "resolv.conf"):
                source, tmp = self._dir_of(other.id) / name, cdir / f".{name}.shared"
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
                os.link(source, tmp)
                os.replace(tmp, cdir / name)
            c.config["Hostname"] = other.config.get("Hostname") or other.id[:12]
            c.config["Domainname"] = other.config.get("Domainname") or ""

    def _dir_of(self, cid: str) -> Path:
        return self.root / "containers" / cid

    def write_etc_files(self, c: Container, cdir: Path) -> None:
        """hosts and resolv.conf for a container with its own network namespace."""
        self._write_hosts(c, cdir)
        try:
            host_resolv = Path("/etc/resolv.conf").read_text()
        except OSError:
            host_resolv = ""
        hc = c.host_config
        text = etcfiles.render_resolv(
            host_resolv, hc.get("Dns") or [], hc.get("DnsSearch") or [], hc.get("DnsOptions") or []
        )
        (cdir / "resolv.conf").write_text(text)

    def _write_hosts(self, c: Container, cdir: Path) -> None:
        eps = [ep for ep in self.store.endpoints_of(c.id) if ep.ip]
        hostname = c.config.get("Hostname") or c.id[:12]
        domain = c.config.get("Domainname") or ""
        names = (f"{hostname}.{domain}", hostname) if domain else (hostname,)
        own = [etcfiles.HostEntry(ep.ip, names) for ep in eps]
        own += [etcfiles.HostEntry(ep.ip6, names) for ep in eps if ep.ip6]
        peers: list[etcfiles.HostEntry] = []
        gateway = ""
        for ep in eps:
            net = self.store.get(ep.network_id)
            gateway = gateway or net.gateway
            if net.is_default:
                peers += self._link_entries(c)  # only --link names, as in Docker
                continue
            named: dict[str, Endpoint] = {}
            for other in self.store.members(net.id):
                if other.container_id == c.id or not other.ip:
                    continue
                dns = tuple(self._dns_names(other))
                named.update(dict.fromkeys(dns, other))
                peers.append(etcfiles.HostEntry(other.ip, dns))
                if other.ip6:
                    peers.append(etcfiles.HostEntry(other.ip6, dns))
            peers += _user_link_entries(ep.links, named)
        text = etcfiles.render_hosts(own, peers, c.host_config.get("ExtraHosts") or [], gateway)
        path = cdir / "hosts"
        # Rewrite in place: the container's /etc/hosts is a bind mount of this inode.
        with open(path, "w") as f:
            f.write(text)

    def default_bridge_ip(self, cid: str) -> str:
        """A container's address on the default bridge ("" if it has none now)."""
        for ep in self.store.endpoints_of(cid):
            if ep.ip and self.store.get(ep.network_id).is_default:
                return ep.ip
        return ""

    def _link_entries(self, c: Container) -> list[etcfiles.HostEntry]:
        """`--link` hosts entries: `IP ALIAS HOSTNAME [NAME]` of each running link."""
        out = []
        for spec in c.host_config.get("Links") or []:
            link = links.parse(spec)
            try:
                child = self.containers.get(link.name)
            except CorralError:
                continue
            ip = self.default_bridge_ip(child.id)
            if ip:
                names = links.host_names(link, child.config.get("Hostname") or "")
                out.append(etcfiles.HostEntry(ip, names))
        return out

    def check_links(self, c_name: str, hc: dict[str, Any]) -> None:
        """At create (dockerd's registerLinks): links are the default bridge's; each
        names a container (a 400, not a 404 the docker CLI would read as no image);
        stored as dockerd shows them (`/db:/web/db`)."""
        specs = hc.get("Links") or []
        if not specs:
            return
        mode = network_mode(hc)
        if mode == "host":
            raise InvalidArgument(
                "conflicting options: host type networking can't be used with links. "
                "This would result in undefined behavior"
            )
        if mode.startswith("container:"):
            raise InvalidArgument(
                "conflicting options: container type network can't be used with links. "
                "This would result in undefined behavior"
            )
        if mode == "none":
            raise InvalidArgument(
                'HostConfig.Links (--link) with network "none" are not supported by corral: '
                "no network, nothing to link"
            )
        if mode != "bridge":  # a user network's: its primary endpoint's (plan)
            hc["Links"] = None  # dockerd's inspect: only the default bridge's links
            return
        parsed = []
        for spec in specs:
            link = links.parse(spec)
            try:
                child = self.containers.get(link.name)
            except CorralError as exc:
                raise InvalidArgument(
                    f"could not get container for {link.name}: {exc.message}"
                ) from None
            if network_mode(child.host_config) != "bridge":
                raise InvalidArgument(
                    f"Cannot link to /{child.name}, as it does not belong to the default network"
                )
            parsed.append(links.Link(child.name, link.alias))
        hc["Links"] = links.stored(parsed, c_name)

    def _dns_names(self, ep: Endpoint) -> list[str]:
        try:
            c = self.containers.get(ep.container_id)
        except CorralError:
            return []
        return [c.name, *[a for a in ep.aliases if a != c.name], c.id[:12]]

    def refresh_hosts(self, cid: str, cdir: Path) -> None:
        """After a container's endpoints changed: its hosts file and its peers'."""
        with contextlib.suppress(CorralError):
            self._write_hosts(self.containers.get(cid), cdir)
        self._refresh_peers(cid, [ep.network_id for ep in self.store.endpoints_of(cid)])

    def _refresh_peers(self, cid: str, network_ids: Iterable[str]) -> None:
        done: set[str] = {cid}
        for nid in network_ids:
            net = self.store.find(nid)
            if net is None or net.is_default:
                continue
            for other in self.store.members(nid):
                if other.container_id in done or other.container_id not in self._sandboxes:
                    continue
                done.add(other.container_id)
                with contextlib.suppress(CorralError, OSError):
                    self._write_hosts(
                        self.containers.get(other.container_id), self._dir_of(other.container_id)
                    )

    def set_ready(self, cid: str, ready: bool) -> None:
        """Whether `cid`'s published ports take new connections (a pod's infra: its
        members' readiness, `pods/members.pod_ready`); nothing if it does not run."""
        sb = self._sandboxes.get(cid)
        for relay in sb.relays if sb else []:
            if relay.upstream.ready != ready:
                log.info("network.ready", id=cid[:12], port=relay.published.host_port,
                         ready=ready)
            relay.upstream.ready = ready
            self._forward(relay, sb)  # (a pod's relays have none: `_kernel_nat_for`)

    # ---------------------------------------------------------------- views
    def published(self, cid: str) -> list[Published]:
        sb = self._sandboxes.get(cid)
        return list(sb.published) if sb else []

    def view_key(self, cid: str) -> tuple[object, ...]:
        """What a container's `GET /containers/json` entry reads here, to compare
        (`api/listing`): the ports it publishes (None while it has no sandbox), its
        endpoints' and the network records' revisions."""
        sb = self._sandboxes.get(cid)
        return (None if sb is None else tuple(sb.published), self.store.revision_of(cid))

    def ports_summary(self, c: Container) -> list[dict[str, Any]]:
        if c.id not in self._sandboxes:
            return []  # Docker shows no ports for a container that is not running
        return ports_summary(self.published(c.id), (c.config.get("ExposedPorts") or {}).keys())

    def settings(
        self,
        c: Container,
        endpoints: list[Endpoint] | None = None,
        find: Callable[[str], Network | None] | None = None,
    ) -> dict[str, Any]:
        """`NetworkSettings` of `docker inspect` (`endpoints` and `find`: what a
        listing of many containers read once for all, `summaries`)."""
        running = c.id in self._sandboxes
        mode = network_mode(c.host_config)
        networks: dict[str, Any] = {}
        primary: dict[str, Any] = {}
        find = self.store.find if find is None else find
        for ep in self.store.endpoints_of(c.id) if endpoints is None else endpoints:
            net = find(ep.network_id)
            if net is None:
                continue
            ipam_cfg = {
                k: v for k, v in (("IPv4Address", ep.requested_ip),
                                  ("IPv6Address", ep.requested_ip6)) if v
            }  # fmt: skip
            v6 = bool(ep.ip and ep.ip6 and net.network6 is not None)
            entry = {
                "IPAMConfig": ipam_cfg or None,
                "Links": ep.links or None,
                "Aliases": ep.aliases or None,
                "MacAddress": ep.mac if ep.ip else "",
                "NetworkID": net.id,
                "EndpointID": ep.id if ep.ip else "",
                "Gateway": net.gateway if ep.ip else "",
                "IPAddress": ep.ip,
                "IPPrefixLen": net.network.prefixlen if ep.ip else 0,
                "IPv6Gateway": net.gateway6 if v6 else "",
                "GlobalIPv6Address": ep.ip6 if v6 else "",
                "GlobalIPv6PrefixLen": net.network6.prefixlen if v6 and net.network6 else 0,
                "DriverOpts": None,
                "DNSNames": None if net.is_default else self._dns_names(ep) or None,
            }
            networks[net.name] = entry
            if net.is_default and not primary:
                primary = entry
        if mode in ("host", "none"):
            networks[mode] = {
                "IPAMConfig": None,
                "Links": None,
                "Aliases": None,
                "MacAddress": "",
                "NetworkID": _pseudo_id(mode),
                "EndpointID": "",
                "Gateway": "",
                "IPAddress": "",
                "IPPrefixLen": 0,
                "IPv6Gateway": "",
                "GlobalIPv6Address": "",
                "GlobalIPv6PrefixLen": 0,
                "DriverOpts": None,
                "DNSNames": None,
            }
        return {
            "Bridge": "",
            "SandboxID": c.id if running else "",
            "SandboxKey": str(self.sandbox_path(c.id)) if running else "",
            "HairpinMode": False,
            "LinkLocalIPv6Address": "",
            "LinkLocalIPv6PrefixLen": 0,
            "Ports": ports_view(self.published(c.id), (c.config.get("ExposedPorts") or {}).keys())
            if running
            else {},
            "SecondaryIPAddresses": None,
            "SecondaryIPv6Addresses": None,
            "EndpointID": primary.get("EndpointID", ""),
            "Gateway": primary.get("Gateway", ""),
            "GlobalIPv6Address": primary.get("GlobalIPv6Address", ""),
            "GlobalIPv6PrefixLen": primary.get("GlobalIPv6PrefixLen", 0),
            "IPAddress": primary.get("IPAddress", ""),
            "IPPrefixLen": primary.get("IPPrefixLen", 0),
            "IPv6Gateway": primary.get("IPv6Gateway", ""),
            "MacAddress": primary.get("MacAddress", ""),
            "Networks": networks,
        }

    def summary_networks(self, c: Container) -> dict[str, Any]:
        """`NetworkSettings.Networks` of `docker ps` (the table's NETWORKS column)."""
        networks: dict[str, Any] = self.settings(c)["Networks"]
        return networks

    def summaries(self, cs: list[Container]) -> dict[str, dict[str, Any]]:
        """`summary_networks` of each of `cs`, by id, from one read of the endpoints
        and of each network (`GET /containers/json` of a fleet: one query, not two
        per container, while the event loop serves everything else)."""
        by_container: dict[str, list[Endpoint]] = {}
        for ep in self.store.all_endpoints():
            by_container.setdefault(ep.container_id, []).append(ep)
        nets: dict[str, Network | None] = {}

        def find(network_id: str) -> Network | None:
            if network_id not in nets:
                nets[network_id] = self.store.find(network_id)
            return nets[network_id]

        return {c.id: self.settings(c, by_container.get(c.id, []), find)["Networks"]
                for c in cs}

    def view(self, net: Network) -> dict[str, Any]:
        containers: dict[str, Any] = {}
        for ep in self.store.members(net.id):
            if not ep.ip:
                continue
            containers[ep.container_id] = {
                "Name": self._name_of(ep.container_id),
                "EndpointID": ep.id,
                "MacAddress": ep.mac,
                "IPv4Address": f"{ep.ip}/{net.network.prefixlen}",
                "IPv6Address": f"{ep.ip6}/{net.network6.prefixlen}"
                if ep.ip6 and net.network6 is not None
                else "",
            }
        options = {"com.docker.network.bridge.name": net.bridge, **net.options}
        return {
            "Name": net.name,
            "Id": net.id,
            "Created": net.created,
            "Scope": "local",
            "Driver": net.driver,
            "EnableIPv6": bool(net.subnet6),
            "IPAM": {
                "Driver": "default",
                "Options": None if net.is_default else {},
                "Config": [{"Subnet": net.subnet, "Gateway": net.gateway}]
                + ([{"Subnet": net.subnet6, "Gateway": net.gateway6}] if net.subnet6 else []),
            },
            "Internal": net.internal,
            "Attachable": net.attachable,
            "Ingress": False,
            "ConfigFrom": {"Network": ""},
            "ConfigOnly": False,
            "Containers": containers,
            "Options": options,
            "Labels": net.labels,
        }

    def _pseudo_view(self, name: str) -> dict[str, Any]:
        return {
            "Name": name,
            "Id": _pseudo_id(name),
            "Created": "0001-01-01T00:00:00Z",
            "Scope": "local",
            "Driver": "host" if name == "host" else "null",
            "EnableIPv6": False,
            "IPAM": {"Driver": "default", "Options": None, "Config": []},
            "Internal": False,
            "Attachable": False,
            "Ingress": False,
            "ConfigFrom": {"Network": ""},
            "ConfigOnly": False,
            "Containers": {},
            "Options": {},
            "Labels": {},
        }

    def views(self) -> list[dict[str, Any]]:
        return [self.view(n) for n in self.store.all()] + [
            self._pseudo_view(n) for n in ("host", "none")
        ]


def _user_link_entries(
    specs: Iterable[str], named: dict[str, Endpoint]
) -> list[etcfiles.HostEntry]:
    """A user network's `--link name:alias` (libnetwork's container-scoped alias): the
    alias for whatever `name` is on that network now, in the linking container alone."""
    out = []
    for spec in specs:
        link = links.parse(spec)
        ep = named.get(link.name)
        if ep is None:
            continue  # not on the network (yet): unresolved, as libnetwork's resolver
        out.append(etcfiles.HostEntry(ep.ip, (link.alias,)))
        if ep.ip6:
            out.append(etcfiles.HostEntry(ep.ip6, (link.alias,)))
    return out
