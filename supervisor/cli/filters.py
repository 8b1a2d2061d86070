"""`-f/--filter key=value` flags → the `filters` query parameter Docker's API expects."""

from __future__ import annotations

from supervisor import leanjson
from supervisor.cli.parser import UsageError


def filters_query(items: list[str]) -> str | None:
    """`["status=running", "label=a"]` → `{"status":{"running":true},"label":{"a":true}}`.

    This map-of-sets form is what the docker CLI sends (and what every API version takes).
    """
    if not items:
        return None
    out: dict[str, dict[str, bool]] = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise UsageError(f"bad format of filter (expected name=value): {item}")
        out.setdefault(key.strip().lower(), {})[value] = True
    return leanjson.dumps(out, compact=True)
