"""`docker update` (POST /containers/{id}/update): what corral applies, Docker's merge.

The body is Docker's `container.UpdateConfig`: the Resources half of a HostConfig
plus RestartPolicy.  The docker CLI sends every Resources field, zero when its flag
is not given; docker-py sends what its caller set.  corral changes the restart
policy and the limits it also sets at create (memory, memory+swap, CPUs, CPU
shares, pids); any other field holding a value is refused by name, never stored
and left unapplied.  The merge follows moby's `Container.UpdateContainer`: a zero
field keeps the stored value, memory above the stored memory+swap limit needs a
new swap limit, `PidsLimit` present (even 0) replaces the stored one.  Pure: the
engine stores `merged` and hands `live_resources` to `runc update` when the
container runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from supervisor.engine.unsupported import is_zero, refusal
from supervisor.errors import Conflict, InvalidArgument
from supervisor.runtime.spec import CPU_PERIOD, NANO

#: UpdateConfig fields corral applies; the rest must be zero (or absent).
APPLIED = frozenset({"RestartPolicy", "Memory", "MemorySwap", "NanoCpus", "CpuShares",
                     "PidsLimit"})  # fmt: skip
#: Resource fields merged into the stored HostConfig when set (non-zero).
_SET_WHEN_NONZERO = ("CpuShares", "NanoCpus", "MemorySwap")

MIN_MEMORY = 6 * 1024 * 1024


def check(body: Mapping[str, Any]) -> None:
    """Raise InvalidArgument naming the first field corral would not apply."""
    for key, value in body.items():
        if key not in APPLIED and not is_zero(value):
            raise refusal(key, value)
    mem = _int(body, "Memory")
    if mem and mem < MIN_MEMORY:
        raise InvalidArgument("Minimum memory limit allowed is 6MB")
    swap = _int(body, "MemorySwap")
    if mem and swap > 0 and swap < mem:
        raise InvalidArgument(
            "Minimum memoryswap limit should be larger than memory limit, see usage"
        )
    if _int(body, "NanoCpus") < 0 or _int(body, "CpuShares") < 0:
        raise InvalidArgument("Range of CPUs is from 0.01 to the number of CPUs")


def _int(body: Mapping[str, Any], key: str) -> int:
    value = body.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def stored_swap(hc: Mapping[str, Any]) -> int:
    """The memory+swap limit in force: corral stores 0 for "as Docker's default",
    which is twice the memory limit when there is one (moby stores that number)."""
    swap = _int(hc, "MemorySwap")
    mem = _int(hc, "Memory")
    if swap == 0 and mem > 0:
        return 2 * mem
    return swap


def merged(hc: Mapping[str, Any], body: Mapping[str, Any]) -> dict[str, Any]:
    """The HostConfig after the update's resources (RestartPolicy is the engine's)."""
    out = dict(hc)
    mem = _int(body, "Memory")
    if mem:
        if mem > stored_swap(hc) and not _int(body, "MemorySwap"):
            raise Conflict(
                "Memory limit should be smaller than already set memoryswap limit, "
                "update the memoryswap at the same time"
            )
        out["MemorySwap"] = stored_swap(hc)  # the default swap stays what it was
        out["Memory"] = mem
    for key in _SET_WHEN_NONZERO:
        if _int(body, key):
            out[key] = body[key]
    if body.get("PidsLimit") is not None:
        out["PidsLimit"] = _int(body, "PidsLimit")
    return out


def live_resources(hc: Mapping[str, Any]) -> dict[str, Any]:
    """OCI `linux.resources` for `runc update` from a merged HostConfig: every limit
    corral manages, so the cgroup ends up exactly as a fresh start would make it
    (a field runc gets as 0 it leaves alone; unlimited pids is -1, "max")."""
    out: dict[str, Any] = {}
    mem, swap = _int(hc, "Memory"), stored_swap(hc)
    memory: dict[str, int] = {}
    if mem:
        memory["limit"] = mem
    if swap:
        memory["swap"] = swap
    if memory:
        out["memory"] = memory
    cpu: dict[str, int] = {}
    nano = _int(hc, "NanoCpus")
    if nano:
        cpu["quota"] = nano * CPU_PERIOD // NANO
        cpu["period"] = CPU_PERIOD
    if _int(hc, "CpuShares"):
        cpu["shares"] = _int(hc, "CpuShares")
    if cpu:
        out["cpu"] = cpu
    pids = _int(hc, "PidsLimit")
    out["pids"] = {"limit": pids if pids > 0 else -1}
    return out
