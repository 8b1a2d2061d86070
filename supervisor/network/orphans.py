"""Bridges whose daemon's state root is gone, and their removal.

A daemon takes its bridges down when it stops, and the next daemon on the same root
recovers them; but a daemon killed (-9, a crash) whose root is then deleted has no
successor, and its `cr-*` bridges, their addresses and isolation rules would stay on the
host for good.  So each bridge carries its owner: the link's alias (IFLA_IFALIAS, what
`ip link set dev BR alias ...` sets and `ip -d link` shows) is `corral root=<path>`.
A bridge whose alias names a root directory that no longer exists belongs to nobody and
is removed by `sweep_bridges`: at every daemon start, and by `corral daemon --cleanup`.

Only that is ever touched: a bridge of a live root (another daemon's, another test
session's) or one without corral's alias (made by an older corral, or by anything else)
is left alone.  Docker has no such case (one dockerd per host, on /var/lib/docker);
this is its `dockerd` start-up network cleanup extended to the several roots one host
may carry here.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path

from supervisor.network.netlink import Netlink

ALIAS_PREFIX = "corral root="


def alias_for(root: Path) -> str:
    """The alias a bridge of the daemon on `root` carries."""
    return ALIAS_PREFIX + str(root.resolve())


def owner_root(alias: str | None) -> Path | None:
    """The state root an alias names, or None when it is not corral's."""
    if not alias or not alias.startswith(ALIAS_PREFIX):
        return None
    path = alias[len(ALIAS_PREFIX) :]
    return Path(path) if path.startswith("/") else None


@dataclass(frozen=True)
class BridgeLink:
    name: str
    alias: str | None
    subnets: tuple[IPv4Network | IPv6Network, ...] = ()


def orphaned(links: Iterable[BridgeLink], root_exists: Callable[[Path], bool]) -> list[BridgeLink]:
    """The bridges whose owning root (from their alias) no longer exists (pure)."""
    found = []
    for link in links:
        root = owner_root(link.alias)
        if root is not None and not root_exists(root):
            found.append(link)
    return found


def bridge_links(nl: Netlink) -> list[BridgeLink]:
    """Every bridge on the host, with its alias and the subnets of its addresses."""
    out = []
    for m in nl.ipr.get_links():
        info = m.get_attr("IFLA_LINKINFO")
        if info is None or info.get_attr("IFLA_INFO_KIND") != "bridge":
            continue
        subnets: list[IPv4Network | IPv6Network] = []
        for family in (socket.AF_INET, socket.AF_INET6):
            for a in nl.ipr.get_addr(family=family, index=m["index"]):
                addr, plen = a.get_attr("IFA_ADDRESS"), a["prefixlen"]
                if addr and not str(addr).startswith("fe80:"):
                    subnets.append(ip_network(f"{addr}/{plen}", strict=False))
        out.append(BridgeLink(str(m.get_attr("IFLA_IFNAME")), m.get_attr("IFLA_IFALIAS"),
                              tuple(subnets)))  # fmt: skip
    return out


def sweep_bridges(
    nl: Netlink | None = None, root_exists: Callable[[Path], bool] = Path.is_dir
) -> list[str]:
    """Remove every bridge whose root is gone, with its isolation rules; their names."""
    own = nl is None
    nl = nl or Netlink()
    try:
        gone = orphaned(bridge_links(nl), root_exists)
        for link in gone:
            v4 = [s for s in link.subnets if isinstance(s, IPv4Network)]
            v6 = [s for s in link.subnets if isinstance(s, IPv6Network)]
            for s in v4[1:] + v6[1:]:
                nl.unisolate(link.name, s)
            if v4:
                nl.delete_bridge(link.name, v4[0], v6[0] if v6 else None)
            else:
                for s in v6[:1]:
                    nl.unisolate(link.name, s)
                nl.delete_link(link.name)
        return [link.name for link in gone]
    finally:
        if own:
            nl.close()
