"""Parsing /proc/self/mountinfo, shared by the overlay and cgroup code.

mountinfo (not /proc/mounts) because it has the mount's root within its filesystem and
a stable field layout with the optional-fields separator; both callers need only a few
columns, so one tiny parser serves them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_ESCAPE = re.compile(r"\\([0-7]{3})")


def _unescape(field: str) -> str:
    """The kernel writes space, tab, newline and backslash as octal escapes."""
    return _ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), field)


@dataclass(frozen=True)
class MountEntry:
    root: str
    mount_point: str
    fstype: str
    source: str
    super_options: tuple[str, ...]
    #: the optional fields: `shared:N`, `master:N`, `propagate_from:N`, `unbindable`
    optional: tuple[str, ...] = ()

    @property
    def propagation(self) -> str:
        """"shared", "slave" (a `master:`), or "private", as findmnt reads them."""
        if any(f.startswith("shared:") for f in self.optional):
            return "shared"
        if any(f.startswith("master:") for f in self.optional):
            return "slave"
        return "private"


def parse_mountinfo(text: str) -> list[MountEntry]:
    entries: list[MountEntry] = []
    for line in text.splitlines():
        fields = line.split(" ")
        try:
            sep = fields.index("-", 6)
        except ValueError:
            continue
        if len(fields) < sep + 4:
            continue
        entries.append(
            MountEntry(
                root=_unescape(fields[3]),
                mount_point=_unescape(fields[4]),
                fstype=fields[sep + 1],
                source=_unescape(fields[sep + 2]),
                super_options=tuple(fields[sep + 3].split(",")),
                optional=tuple(fields[6:sep]),
            )
        )
    return entries


def read_mountinfo() -> list[MountEntry]:
    return parse_mountinfo(Path("/proc/self/mountinfo").read_text())


def mount_of(path: str, entries: list[MountEntry]) -> MountEntry | None:
    """The mount a resolved `path` is on: the longest mount point holding it, the
    last of them when several are stacked there."""
    best: MountEntry | None = None
    for e in entries:
        mp = e.mount_point
        holds = mp == "/" or path == mp or path.startswith(mp + "/")
        if holds and (best is None or len(mp) >= len(best.mount_point)):
            best = e
    return best
