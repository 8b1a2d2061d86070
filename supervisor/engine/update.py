"""`docker update` (POST /containers/{id}/update): what corral applies, Docker's merge.

The body is Docker's `container.UpdateConfig`: the Resources half of a HostConfig
plus RestartPolicy.  The docker CLI sends every Resources field, zero when its flag
is not given; docker-py sends what its caller set.  corral changes the restart
policy and the limits it also sets at create (memory, memory+swap, CPUs, CPU
shares, pids, CFS quota and period, cpusets); any other field holding a value is
refused by name, never stored
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
from supervisor.runtime import cgroups
from supervisor.runtime.spec import CPU_PERIOD, NANO

#: UpdateConfig fields corral applies; the rest must be zero (or absent).
APPLIED = frozenset({"RestartPolicy", "Memory", "MemorySwap", "NanoCpus", "CpuShares",
                     "PidsLimit", "CpuQuota", "CpuPeriod", "CpusetCpus", "CpusetMems"})  # fmt: skip
#: Resource fields merged into the stored HostConfig when set (non-zero).
_SET_WHEN_NONZERO = ("CpuShares", "NanoCpus", "MemorySwap", "CpuQuota", "CpuPeriod",
                     "CpusetCpus", "CpusetMems")  # fmt: skip

MIN_MEMORY = 6 * 1024 * 1024


def check(body: Mapping[str, Any], cpusets: tuple[str, str] = ("", "")) -> None:
    """Raise InvalidArgument naming the first field corral would not apply; `cpusets`:
    the host's CPUs and memory nodes (`host_cpusets`)."""
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
    check_cpu(body, cpusets)


def parse_uint_list(text: str) -> set[int]:
    """`0-2,4` → {0, 1, 2, 4} (moby's ParseUintList); ValueError when malformed."""
    out: set[int] = set()
    for part in text.split(","):
        low, dash, high = part.partition("-")
        if not low.isdigit() or (dash and not high.isdigit()):
            raise ValueError(text)
        first, last = int(low), int(high) if dash else int(low)
        if last < first:
            raise ValueError(text)
        out.update(range(first, last + 1))
    return out


def check_cpu(hc: Mapping[str, Any], cpusets: tuple[str, str] = ("", "")) -> None:
    """dockerd's checks of --cpu-quota/--cpu-period/--cpuset-* (create and update):
    `cpusets` are the host's CPU and memory-node lists ("" = not checked)."""
    nano, period, quota = _int(hc, "NanoCpus"), _int(hc, "CpuPeriod"), _int(hc, "CpuQuota")
    if nano > 0 and period > 0:
        raise InvalidArgument("Conflicting options: Nano CPUs and CPU Period cannot both be set")
    if nano > 0 and quota > 0:
        raise InvalidArgument("Conflicting options: Nano CPUs and CPU Quota cannot both be set")
    if period and (period < 1000 or period > 1_000_000):
        raise InvalidArgument(
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s "
            "(i.e. 1000000)"
        )
    if quota > 0 and quota < 1000:
        raise InvalidArgument("CPU cfs quota can not be less than 1ms (i.e. 1000)")
    for key, what, avail, missing in (
        ("CpusetCpus", "cpuset cpus", cpusets[0], "Requested CPUs are not available"),
        ("CpusetMems", "cpuset mems", cpusets[1], "Requested memory nodes are not available"),
    ):
        text = hc.get(key) or ""
        if not isinstance(text, str) or not text:
            continue
        try:
            wanted = parse_uint_list(text)
        except ValueError:
            raise InvalidArgument(f"Invalid value {text} for {what}") from None
        if avail and not wanted <= parse_uint_list(avail):
            raise InvalidArgument(f"{missing} - requested {text}, available: {avail}")


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
    for new, old, shown in (("NanoCpus", "CpuPeriod", "CPU Period"),
                            ("NanoCpus", "CpuQuota", "CPU Quota"),
                            ("CpuPeriod", "NanoCpus", "NanoCPUs"),
                            ("CpuQuota", "NanoCpus", "NanoCPUs")):  # fmt: skip
        if _int(body, new) > 0 and _int(hc, old) > 0:
            name = {"NanoCpus": "Nano CPUs", "CpuPeriod": "CPU Period", "CpuQuota": "CPU Quota"}
            raise Conflict(f"Conflicting options: {name[new]} cannot be updated as {shown} "
                           "has already been set")  # fmt: skip
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
        if body.get(key):
            out[key] = body[key]
    if body.get("PidsLimit") is not None:
        out["PidsLimit"] = _int(body, "PidsLimit")
    swap, limit = _int(out, "MemorySwap"), _int(out, "Memory")
    if swap > 0 and limit == 0:
        # the kernel refuses a memory+swap limit over an unlimited memory (EINVAL from
        # runc update, once a 500); dockerd's create-time wording names the fix
        raise InvalidArgument(
            "You should always set the Memory limit when using Memoryswap limit, see usage"
        )
    if swap > 0 and swap < limit:
        raise InvalidArgument(
            "Minimum memoryswap limit should be larger than memory limit, see usage"
        )
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
    cpu: dict[str, int | str] = {}
    nano = _int(hc, "NanoCpus")
    if nano:
        cpu["quota"] = nano * CPU_PERIOD // NANO
        cpu["period"] = CPU_PERIOD
    else:
        for key, name in (("CpuQuota", "quota"), ("CpuPeriod", "period")):
            if _int(hc, key):
                cpu[name] = _int(hc, key)
    if _int(hc, "CpuShares"):
        cpu["shares"] = _int(hc, "CpuShares")
    for key, name in (("CpusetCpus", "cpus"), ("CpusetMems", "mems")):
        if isinstance(hc.get(key), str) and hc[key]:
            cpu[name] = hc[key]
    if cpu:
        out["cpu"] = cpu
    pids = _int(hc, "PidsLimit")
    out["pids"] = {"limit": pids if pids > 0 else -1}
    return out


def host_cpusets() -> tuple[str, str]:
    """The CPUs and memory nodes containers may use (the cgroup root's cpuset)."""
    return cgroups.root_cpusets()
