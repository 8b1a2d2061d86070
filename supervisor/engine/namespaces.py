"""`--ipc`, `--pid`, `--uts`, `--sysctl`, `--shm-size`, `--oom-score-adj`: the checks
dockerd (and runc, at its start) makes, made at create so nothing is half made.

Pure: functions over a HostConfig.  Which container a `container:NAME` mode joins,
and whether it runs, is the engine's to say (`Engine._namespace_of`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from supervisor.errors import InvalidArgument

#: `HostConfig.IpcMode` values (moby's IpcMode.Valid); "" is the daemon's default.
IPC_MODES = ("", "none", "private", "shareable", "host")
#: What an empty IpcMode becomes, and inspect shows: Docker's default-ipc-mode.
DEFAULT_IPC_MODE = "private"

#: The sysctls of the IPC namespace (runc's validator; the docker CLI's ValidateSysctl).
IPC_SYSCTLS = frozenset({
    "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall",
    "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced",
})  # fmt: skip


def _mode(hc: Mapping[str, Any], key: str) -> str:
    value = hc.get(key) or ""
    if not isinstance(value, str):
        raise InvalidArgument(f"HostConfig.{key} must be a string")
    return value


def joined(mode: str) -> str:
    """The container a `container:NAME` mode names ("" for any other mode)."""
    kind, sep, name = mode.partition(":")
    return name if sep and kind == "container" else ""


def check_modes(hc: dict[str, Any], config: Mapping[str, Any]) -> None:
    """dockerd's checks of the three modes (stored as they are; an empty IpcMode is
    stored as the default, `private`, as dockerd stores it)."""
    ipc = _mode(hc, "IpcMode")
    if ipc not in IPC_MODES and not joined(ipc):
        raise InvalidArgument(f"invalid IPC mode: {ipc}")
    hc["IpcMode"] = ipc or DEFAULT_IPC_MODE
    pid = _mode(hc, "PidMode")
    if pid not in ("", "host") and not joined(pid):
        raise InvalidArgument(f"invalid PID mode: {pid}")
    uts = _mode(hc, "UTSMode")
    if uts not in ("", "host"):
        raise InvalidArgument(f"invalid UTS mode: {uts}")
    if uts == "host" and config.get("Hostname"):
        raise InvalidArgument("conflicting options: hostname and the UTS mode")
    if (hc.get("ShmSize") or 0) < 0:
        raise InvalidArgument("SHM size can not be less than 0")
    adj = hc.get("OomScoreAdj") or 0
    if not -1000 <= adj <= 1000:
        raise InvalidArgument(f"Invalid value {adj}, range for oom score adj is [-1000, 1000]")


def check_sysctls(hc: Mapping[str, Any], host_network: bool) -> None:
    """runc's validator, at create: a sysctl must belong to a namespace the container
    has of its own (IPC ones not under `--ipc host`, net ones not under `--network
    host`, kernel.domainname with a private UTS namespace; kernel.hostname never)."""
    sysctls = hc.get("Sysctls") or {}
    if not isinstance(sysctls, dict):
        raise InvalidArgument("HostConfig.Sysctls must be an object")
    ipc_host = hc.get("IpcMode") == "host"
    uts_host = hc.get("UTSMode") == "host"
    for key, value in sysctls.items():
        if not isinstance(value, str):
            raise InvalidArgument(f"HostConfig.Sysctls[{key}] must be a string")
        if key in IPC_SYSCTLS or key.startswith("fs.mqueue."):
            if ipc_host:
                raise InvalidArgument(f'sysctl "{key}" is not allowed in the hosts ipc namespace')
        elif key.startswith("net."):
            if host_network:
                raise InvalidArgument(
                    f'sysctl "{key}" is not allowed in the hosts network namespace'
                )
        elif key == "kernel.hostname" and not uts_host:
            raise InvalidArgument(
                'sysctl "kernel.hostname" is not allowed; use the hostname config'
            )
        elif key != "kernel.domainname" or uts_host:
            raise InvalidArgument(f'sysctl "{key}" is not in a separate kernel namespace')


def warnings(hc: Mapping[str, Any]) -> list[str]:
    """dockerd's create warnings for what it applies anyway."""
    out = []
    if hc.get("OomKillDisable") and not hc.get("Memory"):
        out.append(
            "OOM killer is disabled for the container, but no memory limit is set, this can "
            "result in the system running out of resources."
        )
    return out


def depends_on(hc: Mapping[str, Any]) -> set[str]:
    """The containers (names or ids) this one joins or links to: they must run first
    (`--network/--ipc/--pid container:`, `--link`), as dockerd orders its boot starts."""
    out = set()
    for key in ("NetworkMode", "IpcMode", "PidMode"):
        name = joined(str(hc.get(key) or ""))
        if name:
            out.add(name)
    for spec in hc.get("Links") or []:
        out.add(str(spec).split(":", 1)[0].lstrip("/"))
    return out


def boot_waves(wanted: list[tuple[str, str, set[str]]]) -> list[list[str]]:
    """Ids to start at boot in waves: each after the ones it depends on (by id or
    name) among `wanted` (id, name, dependencies); a cycle's members go last, together."""
    left = {cid: (name, deps) for cid, name, deps in wanted}
    waves: list[list[str]] = []
    while left:
        pending = {n for cid, (name, _) in left.items() for n in (cid, name)}
        wave = [
            cid
            for cid, (name, deps) in left.items()
            if not any(d in pending and d not in (cid, name) for d in deps)
        ]
        if not wave:
            wave = list(left)
        waves.append(wave)
        for cid in wave:
            del left[cid]
    return waves


def check_memory(hc: Mapping[str, Any]) -> None:
    """dockerd's checks of `--memory-reservation` against `--memory`."""
    mem = hc.get("Memory") or 0
    reservation = hc.get("MemoryReservation") or 0
    if reservation and reservation < 6 * 1024 * 1024:
        raise InvalidArgument("Minimum memory reservation allowed is 6MB")
    if mem and reservation and mem < reservation:
        raise InvalidArgument(
            "Minimum memory limit can not be less than memory reservation limit, see usage"
        )
