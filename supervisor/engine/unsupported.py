"""Which fields of a create body corral applies; any other is refused, never dropped.

The docker CLI sends a whole HostConfig with every `run`, nearly all of it zero
values; docker-py and compose send what their users set.  A field corral does not
apply is accepted only while it holds its zero value (or Docker's default for it):
anything else is a 400 naming the field and the docker flag that sets it, so nobody
believes a limit, a namespace or a device is in place when it is not.  Fields this
table does not know (a newer client's) are judged the same way: their zero values
pass, a real request does not.  Pure: tables and functions over the decoded body.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from supervisor.errors import InvalidArgument

#: Top-level (container `Config`) fields corral applies, or that mean nothing on
#: Linux whatever their value: ArgsEscaped is Windows-only; Shell and OnBuild only
#: matter to a build, as in Docker.
CONFIG_APPLIED = frozenset(
    {
        "Hostname",
        "Domainname",
        "User",
        "AttachStdin",
        "AttachStdout",
        "AttachStderr",
        "Tty",
        "ExposedPorts",
        "OpenStdin",
        "StdinOnce",
        "Env",
        "Cmd",
        "Healthcheck",
        "Image",
        "Volumes",
        "WorkingDir",
        "Entrypoint",
        "Labels",
        "StopSignal",
        "StopTimeout",
        "ArgsEscaped",
        "Shell",
        "OnBuild",
        "HostConfig",
        "NetworkingConfig",
        "MacAddress",  # moved to the primary endpoint, as dockerd does
    }
)

#: HostConfig fields corral applies (each checked where it is used).  ContainerIDFile
#: (`--cidfile`) is the client's business; ConsoleSize is the terminal's first size.
HOST_APPLIED = frozenset(
    {
        "Binds",
        "ContainerIDFile",
        "ConsoleSize",
        "LogConfig",
        "NetworkMode",
        "PortBindings",
        "RestartPolicy",
        "AutoRemove",
        "CapAdd",
        "CapDrop",
        "Dns",
        "DnsOptions",
        "DnsSearch",
        "ExtraHosts",
        "Privileged",
        "PublishAllPorts",
        "ReadonlyRootfs",
        "Devices",  # checked by runtime/devices.py
        "DeviceCgroupRules",
        "Memory",
        "MemorySwap",
        "NanoCpus",
        "CpuShares",
        "PidsLimit",
        "CpuQuota",
        "CpuPeriod",
        "CpusetCpus",
        "CpusetMems",
        "Ulimits",
        "Mounts",
        "Tmpfs",
        "Init",
        "MaskedPaths",
        "ReadonlyPaths",
        "SecurityOpt",  # values checked by runtime/securityopt.py
        # checked by engine/namespaces.py
        "IpcMode",
        "PidMode",
        "UTSMode",
        "ShmSize",
        "Sysctls",
        "OomScoreAdj",
        "OomKillDisable",
        "MemoryReservation",
        "GroupAdd",  # resolved at start, as runc's GetAdditionalGroups
        "VolumesFrom",
        "Links",  # the default bridge's (network/links.py)
    }
)

#: HostConfig fields whose values other than zero corral also accepts: what it does
#: anyway (the host's cgroup and user namespaces, the
#: daemon's runtime is added by `check_body`).
HOST_ACCEPTED_VALUES: dict[str, tuple[Any, ...]] = {
    "CgroupnsMode": ("host",),
    "UsernsMode": ("host",),
    "Isolation": ("default",),
    "MemorySwappiness": (-1,),
    "VolumeDriver": ("local",),
}

#: The docker flag behind each field, for the message.
FLAGS: dict[str, str] = {
    "NetworkDisabled": "--network none",
    "MacAddress": "--mac-address",
    "VolumeDriver": "--volume-driver",
    "VolumesFrom": "--volumes-from",
    "CgroupnsMode": "--cgroupns",
    "GroupAdd": "--group-add",
    "IpcMode": "--ipc",
    "Cgroup": "--cgroup",
    "Links": "--link",
    "OomScoreAdj": "--oom-score-adj",
    "PidMode": "--pid",
    "UTSMode": "--uts",
    "UsernsMode": "--userns",
    "ShmSize": "--shm-size",
    "StorageOpt": "--storage-opt",
    "Sysctls": "--sysctl",
    "Annotations": "--annotation",
    "Runtime": "--runtime",
    "Isolation": "--isolation",
    "CgroupParent": "--cgroup-parent",
    "BlkioWeight": "--blkio-weight",
    "BlkioWeightDevice": "--blkio-weight-device",
    "BlkioDeviceReadBps": "--device-read-bps",
    "BlkioDeviceWriteBps": "--device-write-bps",
    "BlkioDeviceReadIOps": "--device-read-iops",
    "BlkioDeviceWriteIOps": "--device-write-iops",
    "CpuPeriod": "--cpu-period",
    "CpuQuota": "--cpu-quota",
    "CpuRealtimePeriod": "--cpu-rt-period",
    "CpuRealtimeRuntime": "--cpu-rt-runtime",
    "CpusetCpus": "--cpuset-cpus",
    "CpusetMems": "--cpuset-mems",
    "DeviceRequests": "--gpus",
    "KernelMemory": "--kernel-memory",
    "KernelMemoryTCP": "--kernel-memory-tcp",
    "MemoryReservation": "--memory-reservation",
    "MemorySwappiness": "--memory-swappiness",
    "OomKillDisable": "--oom-kill-disable",
    "CpuCount": "--cpu-count",
    "CpuPercent": "--cpu-percent",
    "IOMaximumIOps": "--io-maxiops",
    "IOMaximumBandwidth": "--io-maxbandwidth",
    "BindOptions.Propagation": "--mount bind-propagation",
    "BindOptions.NonRecursive": "--mount bind-recursive",
    "BindOptions.CreateMountpoint": "--mount bind-create-mountpoint",
    "BindOptions.ReadOnlyNonRecursive": "--mount bind-recursive",
    "BindOptions.ReadOnlyForceRecursive": "--mount bind-recursive",
    "VolumeOptions.Labels": "--mount volume-label",
    "VolumeOptions.DriverConfig": "--mount volume-driver/volume-opt",
    "VolumeOptions.Subpath": "--mount volume-subpath",
    "TmpfsOptions.Options": "--mount tmpfs-option",
    "MacAddress@endpoint": "--mac-address",
    "DriverOpts@endpoint": "--network driver-opt",
    "GwPriority@endpoint": "--network gw-priority",
    "IPAMConfig.IPv6Address": "--ip6",
    "IPAMConfig.LinkLocalIPs": "--link-local-ip",
}

#: `HostConfig.Mounts[i]` fields corral applies.  Consistency is macOS-only: Docker
#: on Linux ignores it too.
MOUNT_APPLIED = frozenset(
    {"Type", "Source", "Target", "Destination", "ReadOnly", "Consistency"}
)
MOUNT_OPTIONS_APPLIED: dict[str, frozenset[str]] = {
    "BindOptions": frozenset({"Propagation", "NonRecursive", "CreateMountpoint"}),
    "VolumeOptions": frozenset({"NoCopy", "Subpath", "Labels"}),
    "TmpfsOptions": frozenset({"SizeBytes", "Mode"}),
}
MOUNT_ACCEPTED_VALUES: dict[str, tuple[Any, ...]] = {}

#: `NetworkingConfig.EndpointsConfig[net]` fields corral applies; the rest of what the
#: docker CLI sends there (NetworkID, Gateway, IPAddress...) is output Docker fills in.
ENDPOINT_APPLIED = frozenset(
    {
        "Aliases",
        "Links",  # a user network's container-scoped aliases (network/manager.py)
        "IPAMConfig",
        "NetworkID",
        "EndpointID",
        "Gateway",
        "IPAddress",
        "IPPrefixLen",
        "IPv6Gateway",
        "GlobalIPv6Address",
        "GlobalIPv6PrefixLen",
        "DNSNames",
        "MacAddress",
    }
)
IPAM_APPLIED = frozenset({"IPv4Address", "IPv6Address"})


def is_zero(value: Any) -> bool:
    """Go's zero value, as the docker CLI sends an unset field: null, false, 0, "",
    and lists or objects holding nothing but zeros."""
    if value is None or value is False or value == "":
        return True
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value == 0
    if isinstance(value, list):
        return all(is_zero(v) for v in value)
    if isinstance(value, dict):
        return all(is_zero(v) for v in value.values())
    return False


def refusal(field: str, value: Any, flag_key: str | None = None) -> InvalidArgument:
    """`HostConfig.PidMode="host" (--pid) is not supported by corral`."""
    shown = json.dumps(value, sort_keys=True)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    flag = FLAGS.get(flag_key or field)
    hint = f" ({flag})" if flag else ""
    return InvalidArgument(f"{field}={shown}{hint} is not supported by corral")


def _accepted(value: Any, allowed: tuple[Any, ...]) -> bool:
    return is_zero(value) or value in allowed


def check_body(body: Mapping[str, Any], runtime: str = "runc") -> None:
    """Raise InvalidArgument naming the first field of a create body corral would
    not apply; return quietly when all of it is applied or zero."""
    for key, value in body.items():
        if key not in CONFIG_APPLIED and not is_zero(value):
            raise refusal(key, value)
    host = body.get("HostConfig") or {}
    if not isinstance(host, dict):
        raise InvalidArgument("HostConfig must be an object")
    accepted = {**HOST_ACCEPTED_VALUES, "Runtime": (runtime,)}
    for key, value in host.items():
        if key in HOST_APPLIED:
            continue
        if not _accepted(value, accepted.get(key, ())):
            raise refusal(f"HostConfig.{key}", value, key)
    for i, mount in enumerate(host.get("Mounts") or []):
        if isinstance(mount, dict):
            _check_mount(f"HostConfig.Mounts[{i}]", mount)
    networking = body.get("NetworkingConfig") or {}
    endpoints = (networking.get("EndpointsConfig") or {}) if isinstance(networking, dict) else {}
    for net, endpoint in endpoints.items() if isinstance(endpoints, dict) else ():
        if isinstance(endpoint, dict):
            _check_endpoint(f"NetworkingConfig.EndpointsConfig[{net}]", endpoint)


def _check_mount(where: str, mount: Mapping[str, Any]) -> None:
    for key, value in mount.items():
        if key in MOUNT_APPLIED:
            continue
        applied = MOUNT_OPTIONS_APPLIED.get(key)
        if applied is None or not isinstance(value, dict):
            if not is_zero(value):
                raise refusal(f"{where}.{key}", value)
            continue
        for opt, v in value.items():
            name = f"{key}.{opt}"
            if opt in applied or _accepted(v, MOUNT_ACCEPTED_VALUES.get(name, ())):
                continue
            if name == "VolumeOptions.DriverConfig" and _local_driver(v):
                continue
            raise refusal(f"{where}.{name}", v, name)


def _local_driver(cfg: Any) -> bool:
    return (
        isinstance(cfg, dict)
        and (cfg.get("Name") or "local") == "local"
        and all(k in ("Name", "Options") for k in cfg)
    )


def _check_endpoint(where: str, endpoint: Mapping[str, Any]) -> None:
    for key, value in endpoint.items():
        if key == "IPAMConfig" and isinstance(value, dict):
            for opt, v in value.items():
                if opt not in IPAM_APPLIED and not is_zero(v):
                    raise refusal(f"{where}.IPAMConfig.{opt}", v, f"IPAMConfig.{opt}")
            continue
        if key not in ENDPOINT_APPLIED and not is_zero(value):
            raise refusal(f"{where}.{key}", value, f"{key}@endpoint")
