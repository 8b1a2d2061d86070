"""OCI media types, digests and timestamps: the small vocabulary the store writes in.

Kept apart so the store's logic reads as logic, and so the JSON we emit (manifests,
configs, index.json) is spelled in one place.
"""

from __future__ import annotations

import hashlib
import json
import time
from datetime import UTC, datetime
from typing import Any

MEDIA_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER = "application/vnd.oci.image.layer.v1.tar"
ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
ANNOTATION_CONTAINERD_NAME = "io.containerd.image.name"
DEFAULT_PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def canonical_json(obj: Any) -> bytes:
    """Deterministic JSON: sorted keys, no whitespace (the bytes get digested)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def hex_of(digest: str) -> str:
    """`sha256:abc` -> `abc` (the blob / layer directory name)."""
    algo, _, h = digest.partition(":")
    if algo != "sha256" or len(h) != 64:
        raise ValueError(f"not a sha256 digest: {digest!r}")
    return h


def rfc3339_nano(ns: int) -> str:
    """Docker's timestamp format: `2024-05-01T12:00:00.123456789Z`."""
    secs, frac = divmod(ns, 1_000_000_000)
    base = datetime.fromtimestamp(secs, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{frac:09d}Z"


def parse_rfc3339(s: str) -> float:
    """Parse an RFC 3339 timestamp (any fraction length) to unix seconds."""
    s = s.strip()
    if s.endswith("Z"):
        s = s[:-1] + "+00:00"
    main, dot, rest = s.partition(".")
    frac = 0.0
    if dot:
        digits = ""
        i = 0
        while i < len(rest) and rest[i].isdigit():
            digits += rest[i]
            i += 1
        frac = float("0." + digits) if digits else 0.0
        s = main + rest[i:]
    return datetime.fromisoformat(s).timestamp() + frac


def now_ns() -> int:
    return time.time_ns()
