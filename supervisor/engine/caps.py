"""A container's capabilities, the same for its init, its execs and its probes.

Its own module so that the health runner (supervise/health.py) asks for them
without importing the engine.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from supervisor.runtime.spec import capability_names, tweak_capabilities


@functools.cache
def bounding_caps() -> int:
    """The daemon's capability bounding set: all that `--privileged` can give."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapBnd:"):
            return int(line.split()[1], 16)
    return (1 << 41) - 1  # no such line: every capability up to CAP_CHECKPOINT_RESTORE


def capabilities(hc: dict[str, Any]) -> list[str] | None:
    """A container's capabilities, for its init, execs and probes alike (None:
    Docker's default set): --cap-add/--cap-drop, every one for --privileged."""
    return tweak_capabilities(
        capability_names(hc.get("CapAdd"), "CapAdd"),
        capability_names(hc.get("CapDrop"), "CapDrop"),
        privileged=bool(hc.get("Privileged")),
        bounding=bounding_caps(),
    )
