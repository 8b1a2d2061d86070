"""Manifests as registries serve them: Docker schema2, OCI manifests, manifest lists and
OCI indexes; platform selection; schema1 refused.  Pure: bytes in, records out.
"""

from __future__ import annotations

import json
import platform as _platform
from dataclasses import dataclass
from typing import Any

from supervisor.errors import InvalidArgument, NotFound

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"

# What we ask for, best first (schema1 deliberately absent: we refuse it anyway).
ACCEPT = ", ".join((OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST))

GZIP_LAYERS = frozenset({
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
})
PLAIN_LAYERS = frozenset({
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.docker.image.rootfs.foreign.diff.tar",
})
ZSTD_LAYERS = frozenset({
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
})
# Layers a registry need not hold: Docker's foreign layers, OCI's non-distributable ones.
# Their blobs come from their descriptor's `urls`; a push never uploads them.
FOREIGN_LAYERS = frozenset({
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
})
MANIFEST_LIMIT = 4 << 20  # distribution's own limit for a manifest
CONFIG_LIMIT = 8 << 20

_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "armv6l": "arm",
         "i386": "386", "i686": "386"}


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str = ""

    def __str__(self) -> str:
        s = f"{self.os}/{self.architecture}"
        return f"{s}/{self.variant}" if self.variant else s

    def matches(self, other: Platform) -> bool:
        """Does an image for `other` run where `self` is wanted?  An unset variant
        matches any; arm64's v8 is its default (containerd's normalisation)."""
        if (self.os, self.architecture) != (other.os, other.architecture):
            return False
        mine, theirs = _variant(self), _variant(other)
        return not mine or not theirs or mine == theirs


def _variant(p: Platform) -> str:
    if p.architecture == "arm64" and p.variant in ("", "v8"):
        return ""
    return p.variant


def host_platform() -> Platform:
    m = _platform.machine()
    arch = _ARCH.get(m, m)
    variant = {"armv7l": "v7", "armv6l": "v6"}.get(m, "")
    return Platform("linux", arch, variant)


def parse_platform(s: str) -> Platform:
    """`linux/amd64`, `linux/arm64/v8`, `amd64` (os defaults to linux)."""
    parts = s.strip().lower().split("/")
    if len(parts) == 1 and parts[0] and parts[0] != "linux":
        parts = ["linux", parts[0]]
    if not 2 <= len(parts) <= 3 or not all(parts):
        raise InvalidArgument(f"invalid platform {s!r}: want os/arch[/variant]")
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(parts[1], parts[1])
    return Platform(parts[0], arch, parts[2] if len(parts) == 3 else "")


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    platform: Platform | None = None
    urls: tuple[str, ...] = ()

    @property
    def foreign_urls(self) -> tuple[str, ...]:
        """Where a foreign layer's blob may be had (http and https only, as dockerd);
        () for any other blob."""
        if self.media_type not in FOREIGN_LAYERS:
            return ()
        return tuple(u for u in self.urls if u.startswith(("http://", "https://")))

    @property
    def short(self) -> str:
        """The 12 hex digits progress lines name a layer by."""
        return self.digest.partition(":")[2][:12]


@dataclass(frozen=True)
class ImageManifest:
    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]


@dataclass(frozen=True)
class Index:
    media_type: str
    manifests: tuple[Descriptor, ...]


def _descriptor(d: Any, where: str) -> Descriptor:
    if not isinstance(d, dict):
        raise InvalidArgument(f"invalid manifest: {where} is not an object")
    digest, size = d.get("digest"), d.get("size")
    if not isinstance(digest, str) or not digest.startswith("sha256:") or len(digest) != 71:
        raise InvalidArgument(f"invalid manifest: {where} has no sha256 digest")
    if not isinstance(size, int) or size < 0:
        raise InvalidArgument(f"invalid manifest: {where} has no size")
    plat = None
    p = d.get("platform")
    if isinstance(p, dict):
        plat = Platform(str(p.get("os", "")), str(p.get("architecture", "")),
                        str(p.get("variant", "")))
    urls = tuple(str(u) for u in d.get("urls") or ())
    return Descriptor(str(d.get("mediaType", "")), digest, size, plat, urls)


def parse_manifest(data: bytes, content_type: str | None) -> ImageManifest | Index:
    """A manifest body; its media type from the body, else from Content-Type."""
    try:
        doc = json.loads(data)
    except ValueError:
        raise InvalidArgument("invalid manifest: not JSON") from None
    if not isinstance(doc, dict):
        raise InvalidArgument("invalid manifest: not a JSON object")
    ctype = (content_type or "").partition(";")[0].strip()
    media = str(doc.get("mediaType") or ctype)
    if doc.get("schemaVersion") == 1 or media in (DOCKER_SCHEMA1, DOCKER_SCHEMA1_SIGNED):
        raise InvalidArgument(
            "unsupported manifest format: Docker Image manifest schema 1 (deprecated; "
            "push the image again with a current client to get schema 2)"
        )
    if "manifests" in doc or media in (OCI_INDEX, DOCKER_LIST):
        items = doc.get("manifests")
        if not isinstance(items, list):
            raise InvalidArgument("invalid manifest list: no manifests")
        return Index(media or OCI_INDEX, tuple(
            _descriptor(m, f"manifests[{i}]") for i, m in enumerate(items)))
    if media and media not in (OCI_MANIFEST, DOCKER_MANIFEST):
        raise InvalidArgument(f"unsupported manifest media type {media!r}")
    layers = doc.get("layers")
    if not isinstance(layers, list):
        raise InvalidArgument("invalid manifest: no layers")
    return ImageManifest(
        media or OCI_MANIFEST,
        _descriptor(doc.get("config"), "config"),
        tuple(_descriptor(x, f"layers[{i}]") for i, x in enumerate(layers)),
    )


def select(index: Index, want: Platform) -> Descriptor:
    """The index entry for `want`, as Docker picks it: the first exact match, else the
    first whose variant is unset; Docker's message when none fits."""
    fits = [m for m in index.manifests if m.platform is not None and want.matches(m.platform)
            and m.media_type not in (OCI_INDEX, DOCKER_LIST)]
    exact = [m for m in fits if m.platform is not None and m.platform.variant == want.variant]
    if exact or fits:
        return (exact or fits)[0]
    raise NotFound(f"no matching manifest for {want} in the manifest list entries")


@dataclass(frozen=True)
class ImageConfig:
    """What a pull needs from the config blob."""

    platform: Platform
    diff_ids: tuple[str, ...]
    created: str


def parse_config(data: bytes) -> ImageConfig:
    try:
        doc = json.loads(data)
    except ValueError:
        raise InvalidArgument("invalid image config: not JSON") from None
    if not isinstance(doc, dict):
        raise InvalidArgument("invalid image config: not a JSON object")
    rootfs = doc.get("rootfs") or {}
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if not isinstance(diff_ids, list) or not all(
        isinstance(d, str) and d.startswith("sha256:") and len(d) == 71 for d in diff_ids
    ):
        raise InvalidArgument("invalid image config: rootfs.diff_ids")
    plat = Platform(str(doc.get("os") or "linux"), str(doc.get("architecture") or ""),
                    str(doc.get("variant") or ""))
    return ImageConfig(plat, tuple(diff_ids), str(doc.get("created") or ""))


def layer_compression(media_type: str) -> str:
    """`gzip`, `none` or `zstd` for a layer media type; other types refused."""
    if media_type in GZIP_LAYERS:
        return "gzip"
    if media_type in PLAIN_LAYERS:
        return "none"
    if media_type in ZSTD_LAYERS:
        return "zstd"
    raise InvalidArgument(f"unsupported layer media type {media_type!r}")
