"""Durations (`1m30s`) and sizes (`512m`) as compose writes them. Pure."""

from __future__ import annotations

import re

_DUR = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_DUR_NS = {
    "ns": 1,
    "us": 10**3,
    "µs": 10**3,
    "ms": 10**6,
    "s": 10**9,
    "m": 60 * 10**9,
    "h": 3600 * 10**9,
}


def duration_ns(value: str | int | float) -> int:
    """Go's time.ParseDuration; a bare number is seconds (compose accepts that too)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value * 10**9)
    text = str(value).strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return int(float(text) * 10**9)
    total = 0.0
    pos = 0
    if not text:
        raise ValueError(f"invalid duration {value!r}")
    while pos < len(text):
        m = _DUR.match(text, pos)
        if not m:
            raise ValueError(f"invalid duration {value!r} (e.g. 10s, 1m30s, 500ms)")
        total += float(m.group(1)) * _DUR_NS[m.group(2)]
        pos = m.end()
    return int(total)


_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*([kmgtp]?)(?:i?b)?$", re.IGNORECASE)
_UNIT = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def size_bytes(value: str | int) -> int:
    """go-units RAMInBytes: `512m`, `1g`, `1.5GB`, `100` (bytes)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    m = _SIZE.match(str(value).strip())
    if not m:
        raise ValueError(f"invalid size {value!r} (e.g. 512m, 1g)")
    return int(float(m.group(1)) * _UNIT[m.group(2).lower()])
