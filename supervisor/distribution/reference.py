"""Where an image name lives: registry endpoint, repository path, tag or digest.

Pure.  Names are parsed by `images.reference.parse` (Docker's rules, one place); this
adds what only a registry client needs: Docker Hub's API host, the path inside the
registry, and which hosts may be spoken to in plain HTTP (loopback, as Docker allows).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from supervisor.errors import InvalidArgument
from supervisor.images.reference import DEFAULT_DOMAIN, DEFAULT_TAG, parse

HUB_API_HOST = "registry-1.docker.io"


@dataclass(frozen=True)
class Remote:
    """An image in a registry.  `domain` as typed (`docker.io`, `127.0.0.1:5000`);
    `path` inside it (`library/busybox`); `repository` the familiar name (`busybox`)."""

    domain: str
    path: str
    repository: str
    tag: str | None
    digest: str | None

    @property
    def reference(self) -> str:
        """What goes after `/manifests/`: the digest if given, else the tag."""
        return self.digest or self.tag or DEFAULT_TAG

    @property
    def shown(self) -> str:
        """The progress `id` of the first line: the tag, or the digest."""
        return self.digest if self.digest and not self.tag else (self.tag or DEFAULT_TAG)

    def familiar(self) -> str:
        """`busybox:latest`, `busybox@sha256:...` (Docker's FamiliarString)."""
        if self.digest and not self.tag:
            return f"{self.repository}@{self.digest}"
        return f"{self.repository}:{self.tag or DEFAULT_TAG}"

    def tag_name(self) -> str | None:
        """The tag the pull sets (none for a digest-only pull, as with Docker)."""
        if self.digest and not self.tag:
            return None
        return f"{self.repository}:{self.tag or DEFAULT_TAG}"


def remote(name: str, tag: str | None = None) -> Remote:
    """`fromImage` (+ `tag`) as the API gets them: `busybox`, `busybox:1`, `x@sha256:..`.

    A `tag` that is a digest (`sha256:...`) is one, as the docker CLI sends it."""
    ref = parse(name)
    t, d = ref.tag, ref.digest
    if tag:
        if ":" in tag and tag.partition(":")[0] in ("sha256", "sha384", "sha512"):
            d = parse(f"{ref.repository}@{tag}").digest
        else:
            if t is not None and t != tag:
                raise InvalidArgument(f"invalid reference format: {name!r} with tag {tag!r}")
            t = parse(f"{ref.repository}:{tag}").tag
    domain, _, path = ref.canonical.partition("/")
    return Remote(domain=domain, path=path, repository=ref.repository, tag=t, digest=d)


@dataclass(frozen=True)
class Endpoint:
    """How to reach a registry: scheme, host, port; `origin` for URLs.  An `insecure`
    one (loopback, `insecure-registries`) is tried with TLS first, its certificate not
    verified, then in plain HTTP (`plain()`), as Docker does."""

    scheme: str
    host: str
    port: int
    insecure: bool = False
    port_given: bool = True

    def plain(self) -> Endpoint:
        return Endpoint("http", self.host, self.port if self.port_given else 80,
                        insecure=True)

    @property
    def origin(self) -> str:
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}" + ("" if self.port == default else f":{self.port}")


def _split_host(domain: str) -> tuple[str, int | None]:
    if domain.startswith("["):
        host, _, rest = domain[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else None
    host, sep, port = domain.rpartition(":")
    if sep and port.isdigit():
        return host, int(port)
    return domain, None


def is_loopback(host: str) -> bool:
    """`localhost`, 127.0.0.0/8 and ::1: Docker's default insecure registries."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def endpoint(domain: str, insecure: frozenset[str] = frozenset()) -> Endpoint:
    """Docker Hub's API host for `docker.io`; HTTPS, verified with the system CAs; for
    loopback and the domains in `insecure` (daemon.yaml's `insecure-registries`), HTTPS
    unverified then plain HTTP (see `Endpoint.plain`)."""
    if domain == DEFAULT_DOMAIN:
        return Endpoint("https", HUB_API_HOST, 443)
    host, port = _split_host(domain)
    loose = is_loopback(host) or domain in insecure or host in insecure
    return Endpoint("https", host, port or 443, insecure=loose, port_given=port is not None)
