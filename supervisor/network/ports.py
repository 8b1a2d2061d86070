"""Published ports, as pure functions over data.

`HostConfig.PortBindings` (what `-p [ip:][hostPort:]containerPort[/proto]` becomes on
the client side) and `PublishAllPorts` (`-P`, the image's EXPOSE) are checked and
turned into `PortRequest`s at create, so a malformed spec is refused before anything
exists; at start each request is bound to a concrete host port (`Published`), and those
are what `docker port`, `inspect` and `ps` show.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from supervisor.errors import Conflict, InvalidArgument

PROTOCOLS = ("tcp", "udp")


@dataclass(frozen=True)
class PortRequest:
    """One container port to publish; host_lo == host_hi == 0 means any free port."""

    container_port: int
    proto: str
    host_ip: str
    host_lo: int
    host_hi: int

    @property
    def key(self) -> str:
        return f"{self.container_port}/{self.proto}"

    @property
    def fixed(self) -> bool:
        return self.host_lo != 0 and self.host_lo == self.host_hi


@dataclass(frozen=True)
class Published:
    """A request bound at start: traffic to host_ip:host_port goes to container_port."""

    container_port: int
    proto: str
    host_ip: str
    host_port: int

    def to_json(self) -> dict[str, Any]:
        return {
            "container_port": self.container_port,
            "proto": self.proto,
            "host_ip": self.host_ip,
            "host_port": self.host_port,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Published:
        return cls(
            int(d["container_port"]), str(d["proto"]), str(d["host_ip"]), int(d["host_port"])
        )


def parse_port_key(key: str) -> tuple[int, str]:
    """`80/tcp`, `80` (tcp) → (80, "tcp")."""
    port, _, proto = str(key).partition("/")
    proto = (proto or "tcp").lower()
    if proto not in PROTOCOLS:
        raise InvalidArgument(
            f"invalid port specification: {key!r}: protocol {proto} is not supported"
        )
    n = _port(port, key)
    if n == 0:
        raise InvalidArgument(f"invalid port specification: {key!r}")
    return n, proto


def _port(text: str, spec: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise InvalidArgument(f"invalid port specification: {spec!r}") from None
    if not 0 <= n <= 65535:
        raise InvalidArgument(f"invalid port specification: {spec!r}: port out of range")
    return n


def _host_range(text: str, spec: str) -> tuple[int, int]:
    text = (text or "").strip()
    if not text:
        return 0, 0
    lo_s, sep, hi_s = text.partition("-")
    lo = _port(lo_s, spec)
    hi = _port(hi_s, spec) if sep else lo
    if hi < lo or (lo == 0 and hi != 0):
        raise InvalidArgument(f"invalid port specification: {spec!r}: invalid host port range")
    return lo, hi


def _host_ip(text: str) -> str:
    text = (text or "").strip().strip("[]")
    if not text:
        return ""
    try:
        ipaddress.ip_address(text)
    except ValueError:
        raise InvalidArgument(f"invalid IP address: {text}") from None
    return text


def requests_from(
    port_bindings: dict[str, Any] | None,
    publish_all: bool,
    exposed: Iterable[str],
) -> list[PortRequest]:
    """Every port to publish, checked; duplicates of one host port are refused."""
    out: list[PortRequest] = []
    for key, bindings in (port_bindings or {}).items():
        port, proto = parse_port_key(key)
        for b in bindings or [{}]:
            b = b or {}
            lo, hi = _host_range(str(b.get("HostPort") or ""), f"{b.get('HostPort')}:{key}")
            out.append(PortRequest(port, proto, _host_ip(str(b.get("HostIp") or "")), lo, hi))
    if publish_all:
        have = {r.key for r in out}
        for key in exposed:
            port, proto = parse_port_key(key)
            if f"{port}/{proto}" not in have:
                out.append(PortRequest(port, proto, "", 0, 0))
    seen: dict[tuple[str, str, int], str] = {}
    for r in out:
        if not r.fixed:
            continue
        ident = (r.proto, r.host_ip or "0.0.0.0", r.host_lo)
        if ident in seen:
            raise Conflict(
                f"Bind for {ident[1]}:{r.host_lo} failed: port is already allocated "
                f"(by {seen[ident]} of the same container)"
            )
        seen[ident] = r.key
    return out


def bind_address(host_ip: str) -> str:
    """Where a proxy listens: the given address, or every IPv4 address."""
    return host_ip or "0.0.0.0"


def ports_view(published: Iterable[Published], exposed: Iterable[str]) -> dict[str, Any]:
    """`NetworkSettings.Ports`: every exposed port, with its host bindings or null."""
    view: dict[str, Any] = {}
    for key in exposed:
        try:
            port, proto = parse_port_key(key)
        except InvalidArgument:
            continue
        view.setdefault(f"{port}/{proto}", None)
    for p in published:
        key = f"{p.container_port}/{p.proto}"
        if view.get(key) is None:
            view[key] = []
        view[key].append({"HostIp": bind_address(p.host_ip), "HostPort": str(p.host_port)})
    return view


def ports_summary(published: Iterable[Published], exposed: Iterable[str]) -> list[dict[str, Any]]:
    """`Ports` of `GET /containers/json` (what `docker ps` prints)."""
    out: list[dict[str, Any]] = []
    done: set[str] = set()
    for p in published:
        out.append(
            {
                "IP": bind_address(p.host_ip),
                "PrivatePort": p.container_port,
                "PublicPort": p.host_port,
                "Type": p.proto,
            }
        )
        done.add(f"{p.container_port}/{p.proto}")
    for key in exposed:
        try:
            port, proto = parse_port_key(key)
        except InvalidArgument:
            continue
        if f"{port}/{proto}" not in done:
            out.append({"PrivatePort": port, "Type": proto})
            done.add(f"{port}/{proto}")
    return out
