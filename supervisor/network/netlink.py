"""The only place that touches links, addresses, routes and network namespaces.

Everything goes through netlink (pyroute2) and a few syscalls (ctypes); no `ip`
processes.  Namespaces are made without forking: the calling thread unshares a new
network namespace, bind-mounts it on a file (which keeps it alive, as `ip netns add`
does), and setns()es back; a netlink socket opened while inside one stays bound to it,
which is how the container's end is configured.  All of it runs synchronously on the
daemon's thread: no await in between, so no other task can observe the switch.

Isolation between networks does not rely on `net.ipv4.ip_forward` being off.  Packets
from one bridge to another are *routed* (frames between ports of one bridge never
are), so policy routing can refuse them: every corral bridge gets one rule, `iif
<bridge> lookup 25455` (priority 1000, before `main`), and table 25455 holds a
`prohibit` route for the subnet of every corral bridge on the host (the table is
shared by all daemons; each bridge's route has its own metric, so none deletes
another's).  A packet entering a bridge towards any corral subnet thus gets "administratively
prohibited" whatever the forwarding setting; anything else (the host's own
addresses, which the `local` table answers first, or the outside world) finds no route
in table 25455 and falls through to `main`.  The host's own traffic enters through no
bridge (iif `lo`), so it still reaches every container, and containers on one network
talk over the bridge without routing.  Rule and route come and go with the bridge
(`ensure_bridge`, `delete_bridge`); both are idempotent, so recovery re-applies them.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import socket
import zlib
from collections.abc import Iterator
from ipaddress import IPv4Address, IPv4Network, IPv6Network
from pathlib import Path
from typing import Any

from pyroute2 import IPRoute  # type: ignore[import-untyped]
from pyroute2.netlink.exceptions import NetlinkError  # type: ignore[import-untyped]

from supervisor.runtime.fds import OwnedFd

CLONE_NEWNET = 0x40000000
IFA_F_NODAD = 0x02
MS_BIND = 4096
MNT_DETACH = 2

_libc = ctypes.CDLL(None, use_errno=True)


def _check(ret: int, what: str, path: str | Path = "") -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}", str(path))


@contextlib.contextmanager
def _inside(ns_path: Path) -> Iterator[None]:
    """Run a few syscalls with this thread in another network namespace."""
    with (
        OwnedFd.open("/proc/thread-self/ns/net", os.O_RDONLY, "own netns") as own,
        OwnedFd.open(ns_path, os.O_RDONLY, f"netns {ns_path}") as target,
    ):
        _check(_libc.setns(target.fileno(), CLONE_NEWNET), "setns", ns_path)
        try:
            yield
        finally:
            _check(_libc.setns(own.fileno(), CLONE_NEWNET), "setns back")


def create_netns(path: Path) -> None:
    """A new, empty network namespace kept alive by a bind mount on `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444)
    os.close(fd)
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        _check(_libc.unshare(CLONE_NEWNET), "unshare")
        try:
            _check(
                _libc.mount(b"/proc/thread-self/ns/net", bytes(path), b"none", MS_BIND, None),
                "mount netns",
                path,
            )
        finally:
            _check(_libc.setns(own, CLONE_NEWNET), "setns back")
    except BaseException:
        with contextlib.suppress(OSError):
            path.unlink()
        raise
    finally:
        os.close(own)


def delete_netns(path: Path) -> None:
    """Unmount and remove a namespace file; missing is fine (idempotent)."""
    if _libc.umount2(bytes(path), MNT_DETACH) != 0:
        err = ctypes.get_errno()
        if err not in (errno.EINVAL, errno.ENOENT):
            raise OSError(err, f"umount netns: {os.strerror(err)}", str(path))
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def is_netns_mounted(path: Path) -> bool:
    target = str(path)
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == target for line in f)


ISOLATION_TABLE = 25455  # 0x636f, "co": one routing table for every corral daemon
ISOLATION_PRIORITY = 1000  # before `main` (32766) and most other policy rules

#: What netlink answers when a rule or route to delete is not there.
_GONE = (errno.ENOENT, errno.ESRCH)


def _metric(bridge: str) -> int:
    """Each bridge's prohibit route has its own metric, so two daemons that briefly hold
    one subnet (one deleting its bridge as the other makes its own) never delete each
    other's route."""
    return zlib.crc32(bridge.encode()) & 0x7FFFFFFF


def mac_for(ip: IPv4Address) -> str:
    """Docker's MAC from the address: 02:42 then the four address bytes."""
    return "02:42:" + ":".join(f"{b:02x}" for b in ip.packed)


class Netlink:
    """Host-side netlink operations over one socket, owned by the daemon."""

    def __init__(self) -> None:
        self.ipr = IPRoute()

    def close(self) -> None:
        self.ipr.close()

    # -------------------------------------------------------------- queries
    def index(self, ifname: str) -> int | None:
        found = self.ipr.link_lookup(ifname=ifname)
        return int(found[0]) if found else None

    def link_names(self) -> set[str]:
        return {str(m.get("ifname")) for m in self.ipr.get_links()}

    def routed_subnets(self) -> list[IPv4Network]:
        """Every IPv4 destination the host routes, except the default route."""
        out = []
        for m in self.ipr.get_routes(family=socket.AF_INET):
            dst, plen = m.get("dst"), m.get("dst_len") or 0
            if dst and plen and m.get("table") != ISOLATION_TABLE:
                with contextlib.suppress(ValueError):
                    out.append(IPv4Network(f"{dst}/{plen}", strict=False))
        for m in self.ipr.get_addr(family=socket.AF_INET):
            addr, plen = m.get("address"), m.get("prefixlen") or 32
            if addr and not str(addr).startswith("127."):
                out.append(IPv4Network(f"{addr}/{plen}", strict=False))
        return out

    def subnet_routed_elsewhere(self, subnet: IPv4Network, bridge: str) -> bool:
        """Does any link other than `bridge` route an overlapping subnet?"""
        own = self.index(bridge)
        for m in self.ipr.get_routes(family=socket.AF_INET):
            dst, plen = m.get("dst"), m.get("dst_len") or 0
            if not dst or not plen or m.get("oif") == own or m.get("table") == ISOLATION_TABLE:
                continue
            with contextlib.suppress(ValueError):
                if IPv4Network(f"{dst}/{plen}", strict=False).overlaps(subnet):
                    return True
        return False

    # -------------------------------------------------------------- bridges
    def ensure_bridge(
        self, name: str, gateway: IPv4Address, prefixlen: int, owner: str = ""
    ) -> bool:
        """The bridge with its gateway address, up, its alias `owner` (the state root
        that owns it, see network/orphans.py); True if it was made now."""
        made = False
        idx = self.index(name)
        if idx is None:
            # A fixed address (the gateway's, as Docker gives its bridges): a bridge
            # without one takes the lowest of its ports' and changes as veths come and
            # go, so a container's ARP entry for the gateway can name a port just
            # removed and its replies stall until the entry is probed again (seen as a
            # relayed request hanging when a rollout's failed replica went away).
            self.ipr.link("add", ifname=name, kind="bridge", address=mac_for(gateway))
            made = True
            idx = self.index(name)
            assert idx is not None
        try:
            [link] = self.ipr.get_links(idx)
            if link.get_attr("IFLA_ADDRESS") != mac_for(gateway):  # an older root's
                self.ipr.link("set", index=idx, address=mac_for(gateway))
            if owner and link.get_attr("IFLA_IFALIAS") != owner:  # set only after the add
                self.ipr.link("set", index=idx, ifalias=owner)
            have = {
                (m.get("address"), m.get("prefixlen"))
                for m in self.ipr.get_addr(family=socket.AF_INET, index=idx)
            }
            if (str(gateway), prefixlen) not in have:
                self.ipr.addr("add", index=idx, address=str(gateway), prefixlen=prefixlen)
            self.ipr.link("set", index=idx, state="up")
            self.isolate(name, IPv4Network(f"{gateway}/{prefixlen}", strict=False))
        except BaseException:
            if made:
                self.delete_bridge(name, IPv4Network(f"{gateway}/{prefixlen}", strict=False))
            raise
        return made

    def add_address6(self, name: str, address: str, prefixlen: int) -> None:
        """An IPv6 address on a host link (a bridge's gateway), without duplicate
        address detection (nothing else can hold it: the subnet is the network's)."""
        idx = self.index(name)
        if idx is None:
            raise OSError(errno.ENODEV, f"link {name} does not exist")
        have = {(m.get("address"), m.get("prefixlen"))
                for m in self.ipr.get_addr(family=socket.AF_INET6, index=idx)}  # fmt: skip
        if (address, prefixlen) not in have:
            self.ipr.addr("add", index=idx, address=address, prefixlen=prefixlen,
                          family=socket.AF_INET6, flags=IFA_F_NODAD)  # fmt: skip
        self.isolate(name, IPv6Network(f"{address}/{prefixlen}", strict=False))

    def delete_bridge(
        self, name: str, subnet: IPv4Network, subnet6: IPv6Network | None = None
    ) -> None:
        """The bridge, its isolation rules and prohibit routes; missing parts are fine."""
        self.unisolate(name, subnet)
        if subnet6 is not None:
            self.unisolate(name, subnet6)
        self.delete_link(name)

    def isolate(self, bridge: str, subnet: IPv4Network | IPv6Network) -> None:
        """Nothing that enters through `bridge` is routed to a corral subnet, and nothing
        is routed to `subnet` from another bridge (see the module's docstring); the
        same for IPv6 (`--ipv6` networks), in the same table of that family."""
        family = socket.AF_INET6 if subnet.version == 6 else socket.AF_INET
        try:
            self.ipr.route(
                "add",
                dst=str(subnet),
                family=family,
                table=ISOLATION_TABLE,
                type="prohibit",
                priority=_metric(bridge),
            )
        except NetlinkError as exc:
            if exc.code != errno.EEXIST:
                raise
        try:
            self.ipr.rule(
                "add",
                family=family,
                iifname=bridge,
                table=ISOLATION_TABLE,
                priority=ISOLATION_PRIORITY,
            )
        except NetlinkError as exc:
            if exc.code != errno.EEXIST:
                raise

    def unisolate(self, bridge: str, subnet: IPv4Network | IPv6Network) -> None:
        family = socket.AF_INET6 if subnet.version == 6 else socket.AF_INET
        try:
            self.ipr.rule(
                "del",
                family=family,
                iifname=bridge,
                table=ISOLATION_TABLE,
                priority=ISOLATION_PRIORITY,
            )
        except NetlinkError as exc:
            if exc.code not in _GONE:
                raise
        try:
            self.ipr.route(
                "del",
                dst=str(subnet),
                family=family,
                table=ISOLATION_TABLE,
                type="prohibit",
                priority=_metric(bridge),
            )
        except NetlinkError as exc:
            if exc.code not in _GONE:
                raise

    def delete_link(self, name: str) -> None:
        idx = self.index(name)
        if idx is not None:
            with contextlib.suppress(NetlinkError):
                self.ipr.link("del", index=idx)

    def ports_of(self, bridge: str) -> list[str]:
        """Names of the links enslaved to a bridge (container veths' host ends)."""
        idx = self.index(bridge)
        if idx is None:
            return []
        return [str(m.get("ifname")) for m in self.ipr.get_links() if m.get("master") == idx]

    # ----------------------------------------------------------------- veth
    def add_veth(
        self,
        host_name: str,
        bridge: str,
        ns_path: Path,
        ifname: str,
        address: IPv4Address,
        prefixlen: int,
        gateway: IPv4Address | None,
        mac: str = "",
        v6: tuple[str, int, str | None] | None = None,
    ) -> None:
        """A veth pair: host end on the bridge, the other end `ifname` in the netns
        (its MAC `mac`, or one derived from the address), addressed, up, with the
        default route via `gateway` when given; `v6` (address, prefix length, gateway
        or None) on an IPv6 network."""
        br = self.index(bridge)
        if br is None:
            raise OSError(errno.ENODEV, f"bridge {bridge} does not exist")
        nsfd = os.open(ns_path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            self.ipr.link(
                "add",
                ifname=host_name,
                kind="veth",
                peer={"ifname": ifname, "net_ns_fd": nsfd, "address": mac or mac_for(address)},
            )
        finally:
            os.close(nsfd)
        try:
            idx = self.index(host_name)
            assert idx is not None
            self.ipr.link("set", index=idx, master=br, state="up")
            with self.inside(ns_path) as ns:
                lo = ns.link_lookup(ifname="lo")
                if lo:
                    ns.link("set", index=lo[0], state="up")
                eth = ns.link_lookup(ifname=ifname)[0]
                ns.addr("add", index=eth, address=str(address), prefixlen=prefixlen)
                if v6 is not None:
                    ns.addr("add", index=eth, address=v6[0], prefixlen=v6[1],
                            family=socket.AF_INET6, flags=IFA_F_NODAD)  # fmt: skip
                ns.link("set", index=eth, state="up")
                if gateway is not None:
                    ns.route("add", dst="default", gateway=str(gateway))
                if v6 is not None and v6[2] is not None:
                    ns.route("add", dst="default", gateway=v6[2], family=socket.AF_INET6)
        except BaseException:
            self.delete_link(host_name)
            raise

    def loopback_up(self, ns_path: Path) -> None:
        with self.inside(ns_path) as ns:
            lo = ns.link_lookup(ifname="lo")
            if lo:
                ns.link("set", index=lo[0], state="up")

    def ifnames_in(self, ns_path: Path) -> set[str]:
        with self.inside(ns_path) as ns:
            return {str(m.get("ifname")) for m in ns.get_links()}

    @contextlib.contextmanager
    def inside(self, ns_path: Path) -> Iterator[Any]:
        """An IPRoute bound to another namespace, opened without forking."""
        with _inside(ns_path):
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, socket.NETLINK_ROUTE)
        ns = IPRoute(fileno=sock.detach())
        try:
            yield ns
        finally:
            ns.close()
