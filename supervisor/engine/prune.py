"""Prune filters and disk-usage figures, as Docker's prune endpoints read them.

`until` (a Go duration back from now, RFC 3339 or unix seconds: only what was made
before goes), `label` (`key` or `key=value`: all must match) and `label!` (none may);
each kind accepts only its own keys (a volume has no `until` in Docker either) and
anything else is refused by name.  Pure functions over data: the endpoints
(`api/handlers/space.py`) do the removing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from supervisor.engine.timefmt import parse_rfc3339
from supervisor.errors import InvalidArgument

ALLOWED = {
    "containers": {"until", "label", "label!"},
    "images": {"until", "label", "label!", "dangling"},
    "networks": {"until", "label", "label!"},
    "volumes": {"label", "label!", "all"},
    "build": {"until", "label", "label!", "all"},
}


def parse_until(value: str, now: float) -> float:
    """docker's timetypes.GetTimestamp for a filter value, as seconds."""
    from supervisor.units import go_duration_ns

    try:
        return now - go_duration_ns(value) / 1e9
    except ValueError:
        pass
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return parse_rfc3339(value)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        raise InvalidArgument(f'failed to parse value as time or duration: "{value}"') from None


@dataclass(frozen=True)
class PruneFilter:
    until: float | None = None
    labels: tuple[str, ...] = ()
    not_labels: tuple[str, ...] = ()
    dangling: bool | None = None
    all: bool = False

    def keeps(self, created: float, labels: Mapping[str, str] | None) -> bool:
        """Whether an object is out of the filter's reach (so it is not pruned)."""
        if self.until is not None and created >= self.until:
            return True
        have = labels or {}
        if not all(_label_match(have, f) for f in self.labels):
            return True
        return any(_label_match(have, f) for f in self.not_labels)


def _label_match(labels: Mapping[str, str], spec: str) -> bool:
    key, sep, value = spec.partition("=")
    if key not in labels:
        return False
    return not sep or labels[key] == value


def _bool(key: str, values: list[str]) -> bool:
    value = values[-1].lower()
    if value in ("1", "true"):
        return True
    if value in ("0", "false"):
        return False
    raise InvalidArgument(f"invalid filter '{key}={values[-1]}'")


def parse_filters(kind: str, raw: dict[str, list[str]], now: float) -> PruneFilter:
    """The `filters` of `POST /{kind}/prune`, checked against what the kind accepts."""
    for key in raw:
        if key not in ALLOWED[kind]:
            raise InvalidArgument(f"invalid filter '{key}'")
    until = None
    if raw.get("until"):
        until = min(parse_until(v, now) for v in raw["until"])
    return PruneFilter(
        until=until,
        labels=tuple(raw.get("label", ())),
        not_labels=tuple(raw.get("label!", ())),
        dangling=_bool("dangling", raw["dangling"]) if raw.get("dangling") else None,
        all=_bool("all", raw["all"]) if raw.get("all") else False,
    )


def du(path: Path) -> int:
    """Bytes of regular files below `path` (a loop: trees may be very deep); what
    cannot be read is not counted; hard links once."""
    total = 0
    seen: set[tuple[int, int]] = set()
    stack = [os.fspath(path)]
    while stack:
        try:
            with os.scandir(stack.pop()) as it:
                for entry in it:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                    elif entry.is_file(follow_symlinks=False):
                        st = entry.stat(follow_symlinks=False)
                        if st.st_nlink > 1:
                            if (st.st_dev, st.st_ino) in seen:
                                continue
                            seen.add((st.st_dev, st.st_ino))
                        total += st.st_size
        except OSError:
            pass
    return total
