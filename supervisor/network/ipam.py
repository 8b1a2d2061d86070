"""IP address management, as pure functions over data.

Which subnet a new network gets (the first of the configured pools that overlaps
nothing already routed on the host or held by another network), which gateway, and
which address a new endpoint gets.  Addresses are handed out in order after the last
one given (wrapping around), as Docker's IPAM does, so a just-released address is not
immediately reused; the store's unique index is what guarantees no address is held
twice, also across daemon restarts.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network

from supervisor.errors import Conflict, InvalidArgument


@dataclass(frozen=True)
class Pool:
    """A range subnets are carved from: `base` cut into networks of `/size`."""

    base: IPv4Network
    size: int


#: Docker's default address pools (172.17-31/16, then 192.168/20s).
DEFAULT_POOLS: tuple[Pool, ...] = (
    Pool(IPv4Network("172.17.0.0/16"), 16),
    Pool(IPv4Network("172.18.0.0/15"), 16),
    Pool(IPv4Network("172.20.0.0/14"), 16),
    Pool(IPv4Network("172.24.0.0/13"), 16),
    Pool(IPv4Network("192.168.0.0/16"), 20),
)


def parse_pools(text: str) -> tuple[Pool, ...]:
    """`base=10.10.0.0/16,size=24;base=...` (dockerd's --default-address-pool)."""
    pools = []
    for part in text.split(";"):
        part = part.strip()
        if not part:
            continue
        fields = dict(kv.split("=", 1) for kv in part.split(",") if "=" in kv)
        try:
            base = IPv4Network(fields["base"].strip())
            size = int(fields.get("size", str(base.prefixlen)))
        except (KeyError, ValueError) as exc:
            raise InvalidArgument(f"invalid address pool: {part!r} ({exc})") from None
        if not base.prefixlen <= size <= 30:
            raise InvalidArgument(f"invalid address pool: {part!r} (size out of range)")
        pools.append(Pool(base, size))
    if not pools:
        raise InvalidArgument(f"invalid address pool: {text!r}")
    return tuple(pools)


def parse_subnet(text: str) -> IPv4Network:
    try:
        return IPv4Network(text, strict=False)
    except ValueError:
        raise InvalidArgument(
            f"invalid subnet {text}: only IPv4 CIDR subnets are supported"
        ) from None


def pick_subnet(pools: Iterable[Pool], taken: Iterable[IPv4Network]) -> IPv4Network:
    """The first subnet of the pools that overlaps none of `taken`."""
    busy = list(taken)
    for pool in pools:
        for candidate in pool.base.subnets(new_prefix=pool.size):
            if not any(candidate.overlaps(t) for t in busy):
                return candidate
    raise Conflict("could not find an available, non-overlapping IPv4 address pool")


def check_subnet_free(subnet: IPv4Network, taken: dict[str, IPv4Network]) -> None:
    """A user-chosen subnet must not overlap a network's or a host route's."""
    for owner, net in taken.items():
        if subnet.overlaps(net):
            raise Conflict(
                "invalid pool request: Pool overlaps with other one on this address space "
                f"({owner} has {net})"
            )


def default_gateway(subnet: IPv4Network) -> IPv4Address:
    """The first usable address, as Docker picks it."""
    if subnet.num_addresses < 4:
        raise InvalidArgument(f"subnet {subnet} is too small for a network")
    return subnet.network_address + 1


def parse_gateway(text: str, subnet: IPv4Network) -> IPv4Address:
    try:
        gw = IPv4Address(text)
    except ValueError:
        raise InvalidArgument(f"invalid gateway address {text}") from None
    if gw not in subnet or gw in (subnet.network_address, subnet.broadcast_address):
        raise InvalidArgument(f"gateway {gw} is not a usable address of subnet {subnet}")
    return gw


def check_requested(
    text: str, subnet: IPv4Network, gateway: IPv4Address, used: set[IPv4Address], network: str
) -> IPv4Address:
    """`--ip`: inside the subnet, not the gateway, network or broadcast, and free."""
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        raise InvalidArgument(f"invalid IPv4 address: {text}") from None
    if not isinstance(addr, IPv4Address):
        raise InvalidArgument(f"invalid IPv4 address: {text} (only IPv4 is supported)")
    if addr not in subnet or addr in (subnet.network_address, subnet.broadcast_address):
        raise InvalidArgument(f"address {addr} is not in subnet {subnet} of network {network}")
    if addr == gateway or addr in used:
        raise Conflict(f"Address already in use: {addr} on network {network}")
    return addr


def next_address(
    subnet: IPv4Network, gateway: IPv4Address, used: set[IPv4Address], last: IPv4Address | None
) -> IPv4Address:
    """The first free host address after `last` (wrapping), never the gateway."""
    first = int(subnet.network_address) + 1
    end = int(subnet.broadcast_address)  # exclusive
    span = end - first
    start = int(last) + 1 if last is not None and last in subnet else first
    if not first <= start < end:
        start = first
    for i in range(span):
        cand = IPv4Address(first + (start - first + i) % span)
        if cand != gateway and cand not in used:
            return cand
    raise Conflict(f"no available IPv4 address in subnet {subnet}")


def check_mac(text: str) -> str:
    """`--mac-address` as dockerd takes it (Go's net.ParseMAC, 48-bit forms), lower
    case with colons; a multicast address is refused (no interface can have one)."""
    if not re.fullmatch(r"[0-9A-Fa-f]{2}([:-])[0-9A-Fa-f]{2}(\1[0-9A-Fa-f]{2}){4}", text):
        raise InvalidArgument(f"invalid MAC address {text}")
    mac = text.replace("-", ":").lower()
    if int(mac[:2], 16) & 1:
        raise InvalidArgument(f"invalid MAC address {text}: a multicast address")
    return mac


# -- IPv6 (`network create --ipv6`) ----------------------------------------------------

#: Where a `--ipv6` network with no IPv6 subnet given gets one: /64s of a ULA /48, as
#: dockerd's default IPv6 pool does (fd00::/8 space).
DEFAULT_POOL6 = ipaddress.IPv6Network("fdc0:7272:616c::/48")


def parse_subnet6(text: str) -> ipaddress.IPv6Network:
    try:
        subnet = ipaddress.IPv6Network(text, strict=False)
    except ValueError:
        raise InvalidArgument(f"invalid subnet {text}: not an IPv6 CIDR subnet") from None
    if subnet.prefixlen > 126:
        raise InvalidArgument(f"subnet {subnet} is too small for a network")
    return subnet


def pick_subnet6(taken: Iterable[ipaddress.IPv6Network]) -> ipaddress.IPv6Network:
    busy = list(taken)
    for candidate in DEFAULT_POOL6.subnets(new_prefix=64):
        if not any(candidate.overlaps(t) for t in busy):
            return candidate
    raise Conflict("could not find an available, non-overlapping IPv6 address pool")


def parse_gateway6(text: str, subnet: ipaddress.IPv6Network) -> ipaddress.IPv6Address:
    try:
        gw = ipaddress.IPv6Address(text)
    except ValueError:
        raise InvalidArgument(f"invalid gateway address {text}") from None
    if gw not in subnet or gw == subnet.network_address:
        raise InvalidArgument(f"gateway {gw} is not a usable address of subnet {subnet}")
    return gw


def check_requested6(
    text: str,
    subnet: ipaddress.IPv6Network | None,
    gateway: ipaddress.IPv6Address | None,
    used: set[ipaddress.IPv6Address],
    network: str,
) -> ipaddress.IPv6Address:
    """`--ip6`: on an IPv6 network, inside its subnet, not its gateway, and free."""
    try:
        addr = ipaddress.IPv6Address(text)
    except ValueError:
        raise InvalidArgument(f"invalid IPv6 address: {text}") from None
    if subnet is None:
        raise InvalidArgument(
            f"invalid endpoint settings: network {network} has no IPv6 subnet (--ip6 {text})"
        )
    if addr not in subnet or addr == subnet.network_address:
        raise InvalidArgument(f"address {addr} is not in subnet {subnet} of network {network}")
    if addr == gateway or addr in used:
        raise Conflict(f"Address already in use: {addr} on network {network}")
    return addr


def next_address6(
    subnet: ipaddress.IPv6Network,
    gateway: ipaddress.IPv6Address,
    used: set[ipaddress.IPv6Address],
    last: ipaddress.IPv6Address | None,
) -> ipaddress.IPv6Address:
    """As `next_address`: the first free address after `last`, wrapping (a /64 is
    never walked whole: the free one is near)."""
    first = int(subnet.network_address) + 1
    span = subnet.num_addresses - 1
    start = int(last) + 1 if last is not None and last in subnet else first
    for i in range(min(span, len(used) + 2 + 65536)):
        cand = ipaddress.IPv6Address(first + (start - first + i) % span)
        if cand != gateway and cand not in used:
            return cand
    raise Conflict(f"no available IPv6 address in subnet {subnet}")
