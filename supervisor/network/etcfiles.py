"""A container's /etc/hosts and /etc/resolv.conf, as pure functions over data.

Name resolution on user-defined networks works through /etc/hosts: every running
member's file lists the other members (name, `--network-alias`es, short id) and is
rewritten in place (same inode, so the bind mount inside the container sees it) when a
member comes or goes.  The default bridge lists no peers, as in Docker.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

LOCALHOST_LINES = (
    "127.0.0.1\tlocalhost",
    "::1\tlocalhost ip6-localhost ip6-loopback",
    "fe00::0\tip6-localnet",
    "ff00::0\tip6-mcastprefix",
    "ff02::1\tip6-allnodes",
    "ff02::2\tip6-allrouters",
)

#: Docker's fallback when the host has no usable nameserver for a container.
DEFAULT_NAMESERVERS = ("8.8.8.8", "8.8.4.4")


@dataclass(frozen=True)
class HostEntry:
    address: str
    names: tuple[str, ...]


def extra_host(spec: str, host_gateway: str) -> HostEntry:
    """`--add-host name:ip` (or `name=ip`); `host-gateway` is the network's gateway."""
    if "=" in spec:
        name, _, addr = spec.partition("=")
    else:
        name, _, addr = spec.partition(":")
    addr = addr.strip().strip("[]")
    if addr == "host-gateway":
        addr = host_gateway or "127.0.0.1"
    return HostEntry(addr, (name.strip(),))


def render_hosts(
    own: Iterable[HostEntry],
    peers: Iterable[HostEntry],
    extra: Sequence[str],
    host_gateway: str = "",
    base: Sequence[str] = LOCALHOST_LINES,
) -> str:
    lines = list(base)
    for spec in extra:
        e = extra_host(spec, host_gateway)
        lines.append(f"{e.address}\t{' '.join(e.names)}")
    seen: set[tuple[str, tuple[str, ...]]] = set()
    for e in [*own, *sorted(peers, key=lambda p: (p.names, p.address))]:
        if not e.names or (e.address, e.names) in seen:
            continue
        seen.add((e.address, e.names))
        lines.append(f"{e.address}\t{' '.join(e.names)}")
    return "\n".join(lines) + "\n"


def render_resolv(
    host_text: str,
    dns: Sequence[str] = (),
    search: Sequence[str] = (),
    options: Sequence[str] = (),
) -> str:
    """The host's resolv.conf without loopback nameservers, with --dns* overrides."""
    nameservers: list[str] = []
    searches: list[str] = []
    opts: list[str] = []
    for raw in host_text.splitlines():
        parts = raw.split()
        if not parts or parts[0].startswith(("#", ";")):
            continue
        if parts[0] == "nameserver" and len(parts) > 1:
            if not parts[1].startswith("127.") and parts[1] != "::1":
                nameservers.append(parts[1])
        elif parts[0] in ("search", "domain"):
            searches = parts[1:]
        elif parts[0] == "options":
            opts.extend(parts[1:])
    if dns:
        nameservers = list(dns)
    elif not nameservers:
        nameservers = list(DEFAULT_NAMESERVERS)
    if search:
        searches = [s for s in search if s != "."]
    if options:
        opts = list(options)
    out = [f"nameserver {n}" for n in nameservers]
    if searches:
        out.append("search " + " ".join(searches))
    if opts:
        out.append("options " + " ".join(opts))
    return "\n".join(out) + "\n"
