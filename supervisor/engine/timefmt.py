"""Docker's time formats: RFC 3339 with nanoseconds, and its zero time."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from supervisor.metadata.containers import ZERO_TIME as ZERO_TIME  # the one definition


def rfc3339_nano(ns: int | None = None) -> str:
    """`2024-05-01T10:11:12.123456789Z` for a time in nanoseconds (now by default)."""
    if ns is None:
        ns = time.time_ns()
    secs, frac = divmod(ns, 1_000_000_000)
    base = datetime.fromtimestamp(secs, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{frac:09d}Z"


def parse_rfc3339(s: str) -> float:
    """Seconds since the epoch for an RFC 3339 time (nanoseconds truncated to micro)."""
    if not s or s.startswith("0001-"):
        return 0.0
    s = s.rstrip("Z")
    frac = ""
    if "." in s:
        s, frac = s.split(".", 1)
    # fromisoformat, strict to this one shape (strptime's own cost was most of a
    # `docker ps` of a fleet: two times per container)
    if len(s) != 19 or s[10] != "T":
        raise ValueError(f"time data {s!r} does not match format '%Y-%m-%dT%H:%M:%S'")
    dt = datetime.fromisoformat(s).replace(tzinfo=UTC)
    return dt.timestamp() + (float("0." + frac) if frac else 0.0)
