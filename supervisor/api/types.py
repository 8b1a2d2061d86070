"""The Engine API's request bodies as data: the types dockerd decodes them into.

Transcribed from the definitions of moby's `api/docs/v1.44.yaml` (ContainerConfig,
HostConfig, Resources, NetworkingConfig, EndpointSettings, the update, exec, network
and volume bodies), with the Go types dockerd 28 actually decodes into
(`api/types/container`, `network`, `mount`, `volume`): the swagger says "array of
strings" where Go has `strslice.StrSlice` (which takes a lone string too) and
"integer" where Go has `uint16`, and Go's types decide both what is accepted and
the wording of the 400 (`... of type []string`).  Only the table lives here;
`schema.py` walks a body along it.

Field names are the JSON names (`CpuShares`, `Dns`); embedded Go structs
(`Config` in `CreateRequest`, `Resources` in `HostConfig`) are flattened, as
encoding/json promotes their fields; `Struct.name` is the struct a field belongs
to in Go's error text (`Go struct field HostConfig.HostConfig.CapAdd`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["string", "bool", "int", "uint", "float", "any"]


@dataclass(frozen=True)
class Scalar:
    kind: Kind
    go: str  # the Go type as encoding/json names it: "int64", "container.NetworkMode"
    bits: int = 64


@dataclass(frozen=True)
class Slice:
    elem: GoType
    go: str = ""  # "" → "[]" + elem.go

    @property
    def go_name(self) -> str:
        return self.go or "[]" + go_name(self.elem)


@dataclass(frozen=True)
class Map:
    """A JSON object with any keys (`map[string]T`; `struct{}` values for sets)."""

    elem: GoType
    go: str = ""

    @property
    def go_name(self) -> str:
        return self.go or "map[string]" + go_name(self.elem)


@dataclass(frozen=True)
class StrSlice:
    """`strslice.StrSlice`: a list of strings, or one string meaning a list of one."""

    go: str = "strslice.StrSlice"


@dataclass(frozen=True)
class Struct:
    name: str  # Go's short name, used in "Go struct field NAME.path"
    go: str  # qualified, used in "of type container.HostConfig"
    fields: dict[str, GoType] = field(default_factory=dict)


GoType = Scalar | Slice | Map | StrSlice | Struct


def go_name(t: GoType) -> str:
    if isinstance(t, Scalar | StrSlice | Struct):
        return t.go
    return t.go_name


STRING = Scalar("string", "string")
BOOL = Scalar("bool", "bool")
INT = Scalar("int", "int")
INT64 = Scalar("int", "int64")
UINT = Scalar("uint", "uint")
UINT16 = Scalar("uint", "uint16", 16)
UINT64 = Scalar("uint", "uint64")
DURATION = Scalar("int", "time.Duration")
FILEMODE = Scalar("uint", "fs.FileMode", 32)
STRINGS = Slice(STRING)
STRING_MAP = Map(STRING)
EMPTY = Struct("", "struct {}")  # the values of Volumes / ExposedPorts: any object
CONSOLE_SIZE = Slice(UINT, "[2]uint")


def _named(go: str) -> Scalar:
    return Scalar("string", go)


# -- container.Config (ContainerConfig in the swagger) --------------------------------
HEALTH_CONFIG = Struct(
    "HealthcheckConfig",
    "v1.HealthcheckConfig",
    {
        "Test": STRINGS,
        "Interval": DURATION,
        "Timeout": DURATION,
        "StartPeriod": DURATION,
        "StartInterval": DURATION,
        "Retries": INT,
    },
)

CONFIG_FIELDS: dict[str, GoType] = {
    "Hostname": STRING,
    "Domainname": STRING,
    "User": STRING,
    "AttachStdin": BOOL,
    "AttachStdout": BOOL,
    "AttachStderr": BOOL,
    "ExposedPorts": Map(EMPTY, "nat.PortSet"),
    "Tty": BOOL,
    "OpenStdin": BOOL,
    "StdinOnce": BOOL,
    "Env": STRINGS,
    "Cmd": StrSlice(),
    "Healthcheck": HEALTH_CONFIG,
    "ArgsEscaped": BOOL,
    "Image": STRING,
    "Volumes": Map(EMPTY, "map[string]struct {}"),
    "WorkingDir": STRING,
    "Entrypoint": StrSlice(),
    "NetworkDisabled": BOOL,
    "MacAddress": STRING,
    "OnBuild": STRINGS,
    "Labels": STRING_MAP,
    "StopSignal": STRING,
    "StopTimeout": INT,
    "Shell": StrSlice(),
}

# -- container.Resources (Resources; embedded in HostConfig and UpdateConfig) ----------
WEIGHT_DEVICE = Struct("WeightDevice", "blkiodev.WeightDevice", {"Path": STRING, "Weight": UINT16})
THROTTLE_DEVICE = Struct(
    "ThrottleDevice", "blkiodev.ThrottleDevice", {"Path": STRING, "Rate": UINT64}
)
DEVICE_MAPPING = Struct(
    "DeviceMapping",
    "container.DeviceMapping",
    {"PathOnHost": STRING, "PathInContainer": STRING, "CgroupPermissions": STRING},
)
DEVICE_REQUEST = Struct(
    "DeviceRequest",
    "container.DeviceRequest",
    {
        "Driver": STRING,
        "Count": INT,
        "DeviceIDs": STRINGS,
        "Capabilities": Slice(STRINGS),
        "Options": STRING_MAP,
    },
)
ULIMIT = Struct("Ulimit", "units.Ulimit", {"Name": STRING, "Hard": INT64, "Soft": INT64})

RESOURCES_FIELDS: dict[str, GoType] = {
    "CpuShares": INT64,
    "Memory": INT64,
    "NanoCpus": INT64,
    "CgroupParent": STRING,
    "BlkioWeight": UINT16,
    "BlkioWeightDevice": Slice(WEIGHT_DEVICE, "[]*blkiodev.WeightDevice"),
    "BlkioDeviceReadBps": Slice(THROTTLE_DEVICE, "[]*blkiodev.ThrottleDevice"),
    "BlkioDeviceWriteBps": Slice(THROTTLE_DEVICE, "[]*blkiodev.ThrottleDevice"),
    "BlkioDeviceReadIOps": Slice(THROTTLE_DEVICE, "[]*blkiodev.ThrottleDevice"),
    "BlkioDeviceWriteIOps": Slice(THROTTLE_DEVICE, "[]*blkiodev.ThrottleDevice"),
    "CpuPeriod": INT64,
    "CpuQuota": INT64,
    "CpuRealtimePeriod": INT64,
    "CpuRealtimeRuntime": INT64,
    "CpusetCpus": STRING,
    "CpusetMems": STRING,
    "Devices": Slice(DEVICE_MAPPING),
    "DeviceCgroupRules": STRINGS,
    "DeviceRequests": Slice(DEVICE_REQUEST),
    "KernelMemory": INT64,
    "KernelMemoryTCP": INT64,
    "MemoryReservation": INT64,
    "MemorySwap": INT64,
    "MemorySwappiness": INT64,
    "OomKillDisable": BOOL,
    "PidsLimit": INT64,
    "Ulimits": Slice(ULIMIT, "[]*units.Ulimit"),
    "CpuCount": INT64,
    "CpuPercent": INT64,
    "IOMaximumIOps": UINT64,
    "IOMaximumBandwidth": UINT64,
}

# -- container.HostConfig (HostConfig) -------------------------------------------------
RESTART_POLICY = Struct(
    "RestartPolicy",
    "container.RestartPolicy",
    {"Name": _named("container.RestartPolicyMode"), "MaximumRetryCount": INT},
)
LOG_CONFIG = Struct("LogConfig", "container.LogConfig", {"Type": STRING, "Config": STRING_MAP})
PORT_BINDING = Struct("PortBinding", "nat.PortBinding", {"HostIp": STRING, "HostPort": STRING})
MOUNT = Struct(
    "Mount",
    "mount.Mount",
    {
        "Type": _named("mount.Type"),
        "Source": STRING,
        "Target": STRING,
        "ReadOnly": BOOL,
        "Consistency": _named("mount.Consistency"),
        "BindOptions": Struct(
            "BindOptions",
            "mount.BindOptions",
            {
                "Propagation": _named("mount.Propagation"),
                "NonRecursive": BOOL,
                "CreateMountpoint": BOOL,
                "ReadOnlyNonRecursive": BOOL,
                "ReadOnlyForceRecursive": BOOL,
            },
        ),
        "VolumeOptions": Struct(
            "VolumeOptions",
            "mount.VolumeOptions",
            {
                "NoCopy": BOOL,
                "Labels": STRING_MAP,
                "Subpath": STRING,
                "DriverConfig": Struct(
                    "Driver", "mount.Driver", {"Name": STRING, "Options": STRING_MAP}
                ),
            },
        ),
        "ImageOptions": Struct("ImageOptions", "mount.ImageOptions", {"Subpath": STRING}),
        "TmpfsOptions": Struct(
            "TmpfsOptions",
            "mount.TmpfsOptions",
            {"SizeBytes": INT64, "Mode": FILEMODE, "Options": Slice(STRINGS)},
        ),
        "ClusterOptions": Struct("ClusterOptions", "mount.ClusterOptions"),
    },
)

HOST_CONFIG = Struct(
    "HostConfig",
    "container.HostConfig",
    {
        "Binds": STRINGS,
        "ContainerIDFile": STRING,
        "LogConfig": LOG_CONFIG,
        "NetworkMode": _named("container.NetworkMode"),
        "PortBindings": Map(Slice(PORT_BINDING), "nat.PortMap"),
        "RestartPolicy": RESTART_POLICY,
        "AutoRemove": BOOL,
        "VolumeDriver": STRING,
        "VolumesFrom": STRINGS,
        "ConsoleSize": CONSOLE_SIZE,
        "Annotations": STRING_MAP,
        "CapAdd": StrSlice(),
        "CapDrop": StrSlice(),
        "CgroupnsMode": _named("container.CgroupnsMode"),
        "Dns": STRINGS,
        "DnsOptions": STRINGS,
        "DnsSearch": STRINGS,
        "ExtraHosts": STRINGS,
        "GroupAdd": STRINGS,
        "IpcMode": _named("container.IpcMode"),
        "Cgroup": _named("container.CgroupSpec"),
        "Links": STRINGS,
        "OomScoreAdj": INT,
        "PidMode": _named("container.PidMode"),
        "Privileged": BOOL,
        "PublishAllPorts": BOOL,
        "ReadonlyRootfs": BOOL,
        "SecurityOpt": STRINGS,
        "StorageOpt": STRING_MAP,
        "Tmpfs": STRING_MAP,
        "UTSMode": _named("container.UTSMode"),
        "UsernsMode": _named("container.UsernsMode"),
        "ShmSize": INT64,
        "Sysctls": STRING_MAP,
        "Runtime": STRING,
        "Isolation": _named("container.Isolation"),
        **RESOURCES_FIELDS,
        "Mounts": Slice(MOUNT),
        "MaskedPaths": STRINGS,
        "ReadonlyPaths": STRINGS,
        "Init": BOOL,
    },
)

# -- network.NetworkingConfig / EndpointSettings ---------------------------------------
ENDPOINT_IPAM_CONFIG = Struct(
    "EndpointIPAMConfig",
    "network.EndpointIPAMConfig",
    {"IPv4Address": STRING, "IPv6Address": STRING, "LinkLocalIPs": STRINGS},
)
ENDPOINT_SETTINGS = Struct(
    "EndpointSettings",
    "network.EndpointSettings",
    {
        "IPAMConfig": ENDPOINT_IPAM_CONFIG,
        "Links": STRINGS,
        "Aliases": STRINGS,
        "MacAddress": STRING,
        "DriverOpts": STRING_MAP,
        "GwPriority": INT,
        "NetworkID": STRING,
        "EndpointID": STRING,
        "Gateway": STRING,
        "IPAddress": STRING,
        "IPPrefixLen": INT,
        "IPv6Gateway": STRING,
        "GlobalIPv6Address": STRING,
        "GlobalIPv6PrefixLen": INT,
        "DNSNames": STRINGS,
    },
)
NETWORKING_CONFIG = Struct(
    "NetworkingConfig",
    "network.NetworkingConfig",
    {"EndpointsConfig": Map(ENDPOINT_SETTINGS, "map[string]*network.EndpointSettings")},
)

# -- the bodies ------------------------------------------------------------------------
#: POST /containers/create (and the body of POST /commit: a container.Config)
CREATE_REQUEST = Struct(
    "CreateRequest",
    "container.CreateRequest",
    {**CONFIG_FIELDS, "HostConfig": HOST_CONFIG, "NetworkingConfig": NETWORKING_CONFIG},
)
CONFIG = Struct("Config", "container.Config", CONFIG_FIELDS)

#: POST /containers/{id}/update
UPDATE_CONFIG = Struct(
    "UpdateConfig",
    "container.UpdateConfig",
    {**RESOURCES_FIELDS, "RestartPolicy": RESTART_POLICY},
)

#: POST /containers/{id}/exec (note: Cmd is a plain []string here, not a StrSlice)
EXEC_OPTIONS = Struct(
    "ExecOptions",
    "container.ExecOptions",
    {
        "User": STRING,
        "Privileged": BOOL,
        "Tty": BOOL,
        "ConsoleSize": CONSOLE_SIZE,
        "AttachStdin": BOOL,
        "AttachStderr": BOOL,
        "AttachStdout": BOOL,
        "Detach": BOOL,
        "DetachKeys": STRING,
        "Env": STRINGS,
        "WorkingDir": STRING,
        "Cmd": STRINGS,
    },
)

#: POST /exec/{id}/start
EXEC_START_OPTIONS = Struct(
    "ExecStartOptions",
    "container.ExecStartOptions",
    {"Detach": BOOL, "Tty": BOOL, "ConsoleSize": CONSOLE_SIZE},
)

#: POST /networks/create
IPAM = Struct(
    "IPAM",
    "network.IPAM",
    {
        "Driver": STRING,
        "Options": STRING_MAP,
        "Config": Slice(
            Struct(
                "IPAMConfig",
                "network.IPAMConfig",
                {
                    "Subnet": STRING,
                    "IPRange": STRING,
                    "Gateway": STRING,
                    "AuxiliaryAddresses": STRING_MAP,
                },
            )
        ),
    },
)
NETWORK_CREATE = Struct(
    "CreateRequest",
    "network.CreateRequest",
    {
        "Driver": STRING,
        "Scope": STRING,
        "EnableIPv4": BOOL,
        "EnableIPv6": BOOL,
        "IPAM": IPAM,
        "Internal": BOOL,
        "Attachable": BOOL,
        "Ingress": BOOL,
        "ConfigOnly": BOOL,
        "ConfigFrom": Struct("ConfigReference", "network.ConfigReference", {"Network": STRING}),
        "Options": STRING_MAP,
        "Labels": STRING_MAP,
        "Name": STRING,
        "CheckDuplicate": BOOL,
    },
)

#: POST /networks/{id}/connect and /disconnect
NETWORK_CONNECT = Struct(
    "ConnectOptions",
    "network.ConnectOptions",
    {"Container": STRING, "EndpointConfig": ENDPOINT_SETTINGS},
)
NETWORK_DISCONNECT = Struct(
    "DisconnectOptions", "network.DisconnectOptions", {"Container": STRING, "Force": BOOL}
)

#: POST /volumes/create (ClusterVolumeSpec is swarm-only: any object, refused later)
VOLUME_CREATE = Struct(
    "CreateOptions",
    "volume.CreateOptions",
    {
        "ClusterVolumeSpec": Map(Scalar("any", "interface {}"), "volume.ClusterVolumeSpec"),
        "Driver": STRING,
        "DriverOpts": STRING_MAP,
        "Labels": STRING_MAP,
        "Name": STRING,
    },
)
