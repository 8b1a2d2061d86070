"""What the daemon's settings say about registries: which are insecure, which mirrors
stand in front of Docker Hub, and which certificates a host is spoken to with.

Docker's rules (moby registry/config.go, registry/registry.go):
- `insecure-registries` holds `host[:port]` names and CIDRs; a registry is insecure if
  its name is listed, or its address is in a CIDR; loopback (127.0.0.0/8, ::1/128) is
  always.  dockerd also resolves a name and checks its addresses against the CIDRs; corral
  checks only addresses written as such (a name is never resolved to decide TLS policy).
- `registry-mirrors` are `http(s)://host[:port]` URLs, no path; Docker Hub pulls try them
  in order before Docker Hub itself.
- `<certs-dir>/<host[:port]>/`: `*.crt` are CAs added to the system's, `*.cert` with the
  `*.key` of the same name a client certificate.  dockerd hard-codes /etc/docker/certs.d;
  corral reads the same directory by default and lets `certs-dir` move it (tests do).

Parsing and the insecure rule are pure; `tls_context` reads files (call it in a thread).
"""

from __future__ import annotations

import ipaddress
import os
import ssl
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

from supervisor.distribution.reference import Endpoint, endpoint, is_loopback
from supervisor.images.reference import DEFAULT_DOMAIN

DEFAULT_CERTS_DIR = "/etc/docker/certs.d"
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# always insecure, and listed first in /info as dockerd lists them
LOOPBACK_CIDRS: tuple[IPNetwork, ...] = (
    ipaddress.ip_network("::1/128"),
    ipaddress.ip_network("127.0.0.0/8"),
)


def parse_mirror(url: str) -> str:
    """A mirror as dockerd keeps it (`https://m.example:5000/`); ValueError naming it."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"invalid mirror: unsupported scheme in {url!r} (http or https)")
    if not parts.hostname:
        raise ValueError(f"invalid mirror: no host in {url!r}")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise ValueError(f"invalid mirror: path, query or user not allowed in {url!r}")
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise ValueError(f"invalid mirror: bad port in {url!r}") from None
    return f"{parts.scheme}://{parts.netloc}/"


def parse_insecure(entry: str) -> IPNetwork | str:
    """A CIDR, or a `host[:port]` name (lowercased); ValueError naming the entry."""
    text = entry.strip()
    if "://" in text:
        raise ValueError(f"insecure registry {entry!r} should not contain '://'")
    if "/" in text:
        try:
            return ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise ValueError(f"insecure registry {entry!r}: not a valid CIDR") from None
    if not text or any(c.isspace() for c in text):
        raise ValueError(f"insecure registry {entry!r}: not a host[:port]")
    return text.lower()


@dataclass(frozen=True)
class RegistryHosts:
    insecure_names: tuple[str, ...] = ()
    insecure_cidrs: tuple[IPNetwork, ...] = ()
    mirrors: tuple[str, ...] = ()
    certs_dir: str = DEFAULT_CERTS_DIR
    _tls: dict[tuple[str, bool], tuple[object, ssl.SSLContext]] = field(
        default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_settings(cls, insecure: list[str], mirrors: list[str],
                      certs_dir: str = DEFAULT_CERTS_DIR) -> RegistryHosts:
        names: list[str] = []
        cidrs: list[IPNetwork] = []
        for entry in insecure:
            got = parse_insecure(entry)
            if isinstance(got, str):
                names.append(got)
            elif got not in cidrs and got not in LOOPBACK_CIDRS:
                cidrs.append(got)
        return cls(tuple(dict.fromkeys(names)), tuple(cidrs),
                   tuple(dict.fromkeys(parse_mirror(m) for m in mirrors)),
                   certs_dir or DEFAULT_CERTS_DIR)

    def is_insecure(self, domain: str) -> bool:
        """`domain` as in an image name (`reg.lan:5000`, `10.0.0.5`)."""
        ep = endpoint(domain, frozenset(self.insecure_names))
        return ep.insecure or self._in_cidr(ep.host)

    def _in_cidr(self, host: str) -> bool:
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(ip in net for net in (*LOOPBACK_CIDRS, *self.insecure_cidrs))

    def endpoint(self, domain: str) -> Endpoint:
        ep = endpoint(domain, frozenset(self.insecure_names))
        if not ep.insecure and domain != DEFAULT_DOMAIN and self._in_cidr(ep.host):
            ep = replace(ep, insecure=True)
        return ep

    def pull_endpoints(self, domain: str) -> list[Endpoint]:
        """Where to pull `domain`'s images from, in order: for Docker Hub its mirrors
        first, then Docker Hub."""
        out: list[Endpoint] = []
        if domain == DEFAULT_DOMAIN:
            for m in self.mirrors:
                parts = urlsplit(m)
                host = parts.hostname or ""
                netloc = parts.netloc
                insecure = is_loopback(host) or netloc in self.insecure_names or \
                    host in self.insecure_names or self._in_cidr(host)
                default = 443 if parts.scheme == "https" else 80
                out.append(Endpoint(parts.scheme, host, parts.port or default,
                                    insecure=insecure or parts.scheme == "http",
                                    port_given=parts.port is not None))
        out.append(self.endpoint(domain))
        return out

    def tls_context(self, netloc: str, verify: bool) -> ssl.SSLContext:
        """The context for `https://netloc`: the system CAs plus certs.d's, and the
        client certificate certs.d has for it.  Blocking (reads files); rebuilt when
        the host's directory changes.  ValueError for a `.cert` without its `.key`."""
        d = Path(self.certs_dir) / netloc
        try:
            names = sorted(os.listdir(d)) if "/" not in netloc and netloc not in (".", "..") \
                else []
        except OSError:
            names = []
        stamp: object = tuple((n, os.stat(d / n).st_mtime_ns) for n in names)
        cached = self._tls.get((netloc, verify))
        if cached is not None and cached[0] == stamp:
            return cached[1]
        ctx = ssl.create_default_context()
        if not verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        for n in names:
            if n.endswith(".crt"):
                ctx.load_verify_locations(cafile=str(d / n))
            elif n.endswith(".cert"):
                key = n[: -len(".cert")] + ".key"
                if key not in names:
                    raise ValueError(
                        f"missing key {key} for client certificate {n}. CA certificates "
                        "must use the extension .crt")
                ctx.load_cert_chain(str(d / n), str(d / key))
            elif n.endswith(".key"):
                cert = n[: -len(".key")] + ".cert"
                if cert not in names:
                    raise ValueError(f"missing client certificate {cert} for key {n}")
        self._tls[(netloc, verify)] = (stamp, ctx)
        return ctx
