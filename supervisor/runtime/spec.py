"""The OCI runtime-spec `config.json` for a container, built from plain dataclasses.

This module is pure (no I/O, no globals read at call time) so that every Docker default
we reproduce -- capabilities, masked paths, default mounts, device rules -- is pinned by
unit tests rather than discovered by running containers.  The caller supplies the one
host fact we need (the hard RLIMIT_NOFILE) so the function stays deterministic.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from supervisor.errors import InvalidArgument

OCI_VERSION = "1.0.2"

#: Docker's default capability set (moby `oci/caps/defaults.go`).  CapEff 0xa80425fb.
DEFAULT_CAPABILITIES: tuple[str, ...] = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
)

#: Every capability Linux knows, in bit order (CAP_CHOWN is bit 0): the names
#: `--cap-add/--cap-drop` may use.  `--privileged` and `--cap-add ALL` give those of
#: them the daemon itself may hold (its bounding set, as moby's GetAllCapabilities):
#: runc can not grant one the daemon lacks, and a host may withhold some.
ALL_CAPABILITIES: tuple[str, ...] = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
)

#: Where `--init` puts the init binary inside the container (Docker's path).
INIT_IN_CONTAINER = "/sbin/docker-init"

#: Paths Docker hides from the container (bind of /dev/null or an empty ro tmpfs).
DEFAULT_MASKED_PATHS: tuple[str, ...] = (
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
)

#: Paths Docker remounts read-only so the container cannot reconfigure the host kernel.
DEFAULT_READONLY_PATHS: tuple[str, ...] = (
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
)

#: The mounts dockerd leaves writable under `--read-only` (besides the user's).
READONLY_ROOT_EXEMPT = frozenset({"/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue"})

#: containerd's default RLIMIT_NOFILE for containers; clamped to the host's hard limit
#: because runc cannot raise a limit above what its own process is allowed.
DEFAULT_NOFILE = 1048576

#: Docker's /dev/shm size when `--shm-size` is not given (64 MiB).
DEFAULT_SHM_SIZE = 64 << 20

#: CFS period Docker uses when translating `--cpus` into a quota.
CPU_PERIOD = 100_000

NANO = 1_000_000_000


@dataclass
class Rlimit:
    """One POSIX rlimit, `type` as in the OCI spec ("RLIMIT_NOFILE")."""

    type: str
    hard: int
    soft: int


@dataclass
class ProcessSpec:
    """The process runc starts (container init) or joins (exec)."""

    args: list[str]
    env: list[str]
    cwd: str = "/"
    uid: int = 0
    gid: int = 0
    additional_gids: list[int] = field(default_factory=list)
    terminal: bool = False
    #: (height, width) of the terminal runc makes (`terminal`); None: the kernel's 0x0.
    console_size: tuple[int, int] | None = None
    no_new_privileges: bool = True
    #: Full capability list (names with or without `CAP_`); None means Docker's default.
    capabilities: list[str] | None = None
    #: Extra rlimits; an RLIMIT_NOFILE here replaces the default one.
    rlimits: list[Rlimit] = field(default_factory=list)
    #: `--oom-score-adj` (None: the daemon's own, inherited, as Docker's 0 means).
    oom_score_adj: int | None = None


@dataclass
class Device:
    """A host device node made inside the container at `path` (`--device`;
    `--privileged` gives them all)."""

    path: str
    type: str  # "c" or "b"
    major: int
    minor: int
    file_mode: int = 0o666
    uid: int = 0
    gid: int = 0


@dataclass
class Mount:
    """A user mount (bind, named volume, tmpfs), appended after Docker's defaults."""

    destination: str
    source: str
    type: str = "bind"
    options: list[str] = field(default_factory=lambda: ["rbind", "rprivate"])
    #: A mount the daemon makes (/etc/hosts, resolv.conf, hostname), not the user:
    #: read-only with the root under `--read-only`, as Docker's.
    daemon: bool = False


@dataclass
class Resources:
    """Docker HostConfig resource knobs, in Docker's units (bytes, nano-CPUs)."""

    memory: int | None = None
    #: Memory+swap like Docker's MemorySwap: None → 2×memory, -1 → unlimited.
    memory_swap: int | None = None
    nano_cpus: int | None = None
    cpu_shares: int | None = None
    #: None, 0 or negative → unlimited (Docker's semantics).
    pids_limit: int | None = None
    #: CFS quota and period in microseconds (`--cpu-quota`, `--cpu-period`; never with
    #: nano_cpus, which sets both), cpuset lists (`--cpuset-cpus 0-1,3`, `--cpuset-mems`)
    cpu_quota: int | None = None
    cpu_period: int | None = None
    cpuset_cpus: str = ""
    cpuset_mems: str = ""
    #: `--memory-reservation` (a soft limit, bytes), `--oom-kill-disable`.
    memory_reservation: int | None = None
    oom_kill_disable: bool = False


@dataclass
class UserNamespace:
    """`userns-remap`: the holder namespace to join and the mapping it has (runc
    wants both): container ids 0..size-1 are host ids uid.. and gid..."""

    path: str
    uid: int
    gid: int
    size: int


@dataclass
class ContainerSpec:
    """Everything `build_config` needs; the engine fills this from a container record."""

    id: str
    rootfs: str
    hostname: str
    process: ProcessSpec
    mounts: list[Mount] = field(default_factory=list)
    readonly_rootfs: bool = False
    #: "none" → a fresh netns (loopback only); "host" → no netns; else a netns path to join.
    network: str = "none"
    resources: Resources = field(default_factory=Resources)
    cgroups_path: str = ""
    masked_paths: list[str] = field(default_factory=lambda: list(DEFAULT_MASKED_PATHS))
    readonly_paths: list[str] = field(default_factory=lambda: list(DEFAULT_READONLY_PATHS))
    annotations: dict[str, str] = field(default_factory=dict)
    sysctls: dict[str, str] = field(default_factory=dict)
    #: The OCI `linux.seccomp` (runtime/seccomp.py); None: no filter (privileged, unconfined).
    seccomp: dict[str, Any] | None = None
    #: `seccomp` is Docker's default profile (not a user's): the seccomp helper may
    #: install it (runtime/seccompexec.py)
    seccomp_default: bool = False
    domainname: str = ""
    #: Docker's `--privileged` minus what the caller decides (capabilities and
    #: no_new_privileges are in `process`): /sys and cgroups writable, nothing masked
    #: or read-only, every device allowed, `devices` made in /dev.
    privileged: bool = False
    devices: list[Device] = field(default_factory=list)
    #: Cgroup rules after Docker's defaults: `--device` nodes, `--device-cgroup-rule`.
    device_rules: list[dict[str, Any]] = field(default_factory=list)
    #: The user namespace under `userns-remap` (None: the host's, Docker's default).
    userns: UserNamespace | None = None
    #: Host path of the init binary for `--init` ("" for none): bind-mounted read-only
    #: at INIT_IN_CONTAINER and run as PID 1 with the command as its child.
    init: str = ""
    #: The pid, ipc and uts namespaces (`--pid`, `--ipc`, `--uts`): absent or "" a new
    #: one, "host" none (the host's), else the path of another container's to join.
    namespaces: dict[str, str] = field(default_factory=dict)
    #: /dev/shm: a private tmpfs of `shm_size` bytes (`--shm-size`) when `shm_source`
    #: is "", a bind of that host path (`--ipc host` or `container:`), none for "none".
    shm_size: int = DEFAULT_SHM_SIZE
    shm_source: str = ""
    #: `linux.rootfsPropagation`: "rshared"/"rslave" when a bind wants it (dockerd's
    #: rule), "" for runc's default.
    rootfs_propagation: str = ""


def cap_name(name: str) -> str:
    upper = name.strip().upper()
    return upper if upper.startswith("CAP_") else f"CAP_{upper}"


def all_capabilities(bounding: int) -> list[str]:
    """Every capability in `bounding` (a CapBnd mask, as in /proc/self/status)."""
    return [c for bit, c in enumerate(ALL_CAPABILITIES) if bounding >> bit & 1]


def capability_names(value: Any, field: str) -> list[str]:
    """`HostConfig.CapAdd`/`CapDrop` as a list of names, as Docker's `StrSlice` reads
    it: null is none, a lone string is a list of one (`"ALL"` is `["ALL"]`, never the
    letters `A`, `L`, `L`), anything else but a list of strings is refused by name."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise InvalidArgument(f"invalid {field}: want a list of capability names, got {value!r}")


def tweak_capabilities(
    add: list[str], drop: list[str], *, privileged: bool = False, bounding: int
) -> list[str] | None:
    """Docker's capability set for a container (moby `caps.TweakCapabilities`).

    Privileged → every capability; `ALL` in `add` → every one but the dropped ones;
    `ALL` in `drop` → only the added ones; else the default set minus `drop` plus
    `add`. None means the default set untouched. A name Linux does not know is
    refused, as Docker refuses it: runc would skip it with a warning nobody sees.
    """
    if privileged:
        return all_capabilities(bounding)
    if not add and not drop:
        return None

    def normalise(names: list[str], field: str) -> list[str]:
        out = []
        for name in names:
            cap = cap_name(name)
            if cap != "CAP_ALL" and cap not in ALL_CAPABILITIES:
                raise InvalidArgument(f'invalid {field}: unknown capability: "{cap}"')
            out.append(cap)
        return out

    adds, drops = normalise(add, "CapAdd"), normalise(drop, "CapDrop")
    if "CAP_ALL" in adds:
        return [c for c in all_capabilities(bounding) if c not in drops]
    if "CAP_ALL" in drops:
        return list(dict.fromkeys(adds))
    caps = [c for c in DEFAULT_CAPABILITIES if c not in drops]
    return list(dict.fromkeys([*caps, *adds]))


def process_config(process: ProcessSpec, host_nofile_hard: int) -> dict[str, Any]:
    """The OCI `process` object; also what `runc exec --process` reads."""
    caps = (
        list(DEFAULT_CAPABILITIES)
        if process.capabilities is None
        else [cap_name(c) for c in process.capabilities]
    )
    nofile = min(DEFAULT_NOFILE, host_nofile_hard)
    rlimits: list[dict[str, Any]] = []
    if not any(r.type == "RLIMIT_NOFILE" for r in process.rlimits):
        rlimits.append({"type": "RLIMIT_NOFILE", "hard": nofile, "soft": nofile})
    rlimits += [{"type": r.type, "hard": r.hard, "soft": r.soft} for r in process.rlimits]
    user: dict[str, Any] = {"uid": process.uid, "gid": process.gid}
    if process.additional_gids:
        user["additionalGids"] = list(process.additional_gids)
    out: dict[str, Any] = {
        "terminal": process.terminal,
        "user": user,
        "args": list(process.args),
        "env": list(process.env),
        "cwd": process.cwd,
        # Not inheritable/ambient: a setuid-less exec keeps nothing (Docker's behaviour).
        "capabilities": {
            "bounding": list(caps),
            "effective": list(caps),
            "permitted": list(caps),
        },
        "rlimits": rlimits,
        "noNewPrivileges": process.no_new_privileges,
    }
    if process.oom_score_adj is not None:
        out["oomScoreAdj"] = process.oom_score_adj
    if process.terminal and process.console_size is not None:
        height, width = process.console_size
        out["consoleSize"] = {"height": height, "width": width}
    return out


def default_mounts(shm_size: int = DEFAULT_SHM_SIZE, shm_source: str = "") -> list[dict[str, Any]]:
    """Docker's default mounts (moby `oci/defaults.go`), in mount order; /dev/shm as
    `--shm-size` and `--ipc` make it (moby's setupIpcDirs)."""
    shm: list[dict[str, Any]] = []
    if shm_source == "":
        shm = [{
            "destination": "/dev/shm",
            "type": "tmpfs",
            "source": "shm",
            "options": ["nosuid", "noexec", "nodev", "mode=1777", f"size={shm_size}"],
        }]  # fmt: skip
    elif shm_source != "none":
        shm = [{
            "destination": "/dev/shm",
            "type": "bind",
            "source": shm_source,
            "options": ["rbind", "nosuid", "noexec", "nodev"],
        }]  # fmt: skip
    return [
        {
            "destination": "/proc",
            "type": "proc",
            "source": "proc",
            "options": ["nosuid", "noexec", "nodev"],
        },
        {
            "destination": "/dev",
            "type": "tmpfs",
            "source": "tmpfs",
            "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
        },
        {
            "destination": "/dev/pts",
            "type": "devpts",
            "source": "devpts",
            "options": [
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        },
        *shm,
        {
            "destination": "/dev/mqueue",
            "type": "mqueue",
            "source": "mqueue",
            "options": ["nosuid", "noexec", "nodev"],
        },
        {
            "destination": "/sys",
            "type": "sysfs",
            "source": "sysfs",
            "options": ["nosuid", "noexec", "nodev", "ro"],
        },
        {
            "destination": "/sys/fs/cgroup",
            "type": "cgroup",
            "source": "cgroup",
            "options": ["ro", "nosuid", "noexec", "nodev"],
        },
    ]


def _writable(mount: dict[str, Any]) -> dict[str, Any]:
    return {**mount, "options": [o for o in mount["options"] if o != "ro"]}


def _dev(major: int, minor: int | None, access: str = "rwm", kind: str = "c") -> dict[str, Any]:
    rule: dict[str, Any] = {"allow": True, "type": kind, "major": major, "access": access}
    if minor is not None:
        rule["minor"] = minor
    return rule


def default_device_rules() -> list[dict[str, Any]]:
    """Deny every device, then allow what Docker (and runc's defaults) allow."""
    return [
        {"allow": False, "access": "rwm"},
        {"allow": True, "type": "c", "access": "m"},  # mknod of any char device
        {"allow": True, "type": "b", "access": "m"},  # mknod of any block device
        _dev(1, 3),  # /dev/null
        _dev(1, 5),  # /dev/zero
        _dev(1, 7),  # /dev/full
        _dev(1, 8),  # /dev/random
        _dev(1, 9),  # /dev/urandom
        _dev(5, 0),  # /dev/tty
        _dev(5, 1),  # /dev/console
        _dev(5, 2),  # /dev/ptmx
        _dev(136, None),  # /dev/pts/*
    ]


def resources_config(res: Resources) -> dict[str, Any]:
    """Docker HostConfig resources → OCI `linux.resources` (devices added by caller)."""
    out: dict[str, Any] = {}
    memory: dict[str, Any] = {}
    if res.memory:
        memory["limit"] = res.memory
        if res.memory_swap is None or res.memory_swap == 0:
            memory["swap"] = 2 * res.memory  # Docker: unset swap → as much swap as memory
        else:
            memory["swap"] = res.memory_swap
    elif res.memory_swap:
        memory["swap"] = res.memory_swap
    if res.memory_reservation:
        memory["reservation"] = res.memory_reservation
    if res.oom_kill_disable:
        memory["disableOOMKiller"] = True
    if memory:
        out["memory"] = memory
    cpu: dict[str, Any] = {}
    if res.nano_cpus:
        cpu["quota"] = res.nano_cpus * CPU_PERIOD // NANO
        cpu["period"] = CPU_PERIOD
    elif res.cpu_quota or res.cpu_period:
        if res.cpu_quota:
            cpu["quota"] = res.cpu_quota
        if res.cpu_period:
            cpu["period"] = res.cpu_period
    if res.cpu_shares:
        cpu["shares"] = res.cpu_shares
    if res.cpuset_cpus:
        cpu["cpus"] = res.cpuset_cpus
    if res.cpuset_mems:
        cpu["mems"] = res.cpuset_mems
    if cpu:
        out["cpu"] = cpu
    if res.pids_limit is not None and res.pids_limit > 0:
        out["pids"] = {"limit": res.pids_limit}
    return out


def build_config(spec: ContainerSpec, host_nofile_hard: int) -> dict[str, Any]:
    """The complete `config.json` for `spec`, Docker-equivalent (privileged or not)."""
    namespaces: list[dict[str, Any]] = []
    for kind in ("pid", "ipc", "uts"):
        where = spec.namespaces.get(kind, "")
        if where == "host":
            continue
        namespaces.append({"type": kind, "path": where} if where else {"type": kind})
    namespaces.append({"type": "mount"})
    private_uts = spec.namespaces.get("uts", "") != "host"
    sysctls: dict[str, str] = {}
    if spec.network != "host":
        netns: dict[str, Any] = {"type": "network"}
        if spec.network != "none":
            netns["path"] = spec.network
        namespaces.append(netns)
        # Docker ≥20.10: unprivileged ping and low ports inside a private netns.
        sysctls["net.ipv4.ip_unprivileged_port_start"] = "0"
        sysctls["net.ipv4.ping_group_range"] = "0 2147483647"
    if spec.userns is not None:
        namespaces.append({"type": "user", "path": spec.userns.path})
        if "net.ipv4.ping_group_range" in sysctls:
            # only gids the namespace maps (the kernel refuses Docker's 0..2^31-1 then)
            sysctls["net.ipv4.ping_group_range"] = f"0 {spec.userns.size - 1}"
    if spec.domainname and private_uts:
        # No OCI field in runc 1.1; the sysctl does what setdomainname(2) does (Docker's way).
        sysctls["kernel.domainname"] = spec.domainname
    sysctls.update(spec.sysctls)

    resources = resources_config(spec.resources)
    resources["devices"] = (
        [{"allow": True, "access": "rwm"}] if spec.privileged else default_device_rules()
    ) + [dict(r) for r in spec.device_rules]

    mounts = default_mounts(spec.shm_size, spec.shm_source)
    if spec.privileged:
        # Docker: /sys and the cgroup tree writable for a privileged container.
        mounts = [
            _writable(m) if m["type"] in ("sysfs", "cgroup") else m for m in mounts
        ]
    user_mounts = {m.destination for m in spec.mounts if not m.daemon}
    mounts += [
        {
            "destination": m.destination,
            "type": m.type,
            "source": m.source,
            "options": list(m.options),
        }
        for m in spec.mounts
    ]
    if spec.readonly_rootfs:
        # dockerd (WithMounts): a read-only root makes every mount but the user's and
        # /proc, /dev and its pts, shm, mqueue read-only too (/sys, /etc/hosts...).
        mounts = [
            m
            if m["destination"] in READONLY_ROOT_EXEMPT
            or m["destination"] in user_mounts
            or "ro" in m["options"]
            else {**m, "options": [*m["options"], "ro"]}
            for m in mounts
        ]
    process = process_config(spec.process, host_nofile_hard)
    if spec.init:
        mounts.append(
            {
                "destination": INIT_IN_CONTAINER,
                "type": "bind",
                "source": spec.init,
                "options": ["bind", "ro"],
            }
        )
        process["args"] = [INIT_IN_CONTAINER, "--", *process["args"]]

    linux: dict[str, Any] = {
        "namespaces": namespaces,
        "resources": resources,
        "maskedPaths": [] if spec.privileged else list(spec.masked_paths),
        "readonlyPaths": [] if spec.privileged else list(spec.readonly_paths),
    }
    if spec.devices:
        linux["devices"] = [
            {
                "path": d.path,
                "type": d.type,
                "major": d.major,
                "minor": d.minor,
                "fileMode": d.file_mode,
                "uid": d.uid,
                "gid": d.gid,
            }
            for d in spec.devices
        ]
    if spec.userns is not None:
        u = spec.userns
        linux["uidMappings"] = [{"containerID": 0, "hostID": u.uid, "size": u.size}]
        linux["gidMappings"] = [{"containerID": 0, "hostID": u.gid, "size": u.size}]
    if spec.cgroups_path:
        linux["cgroupsPath"] = spec.cgroups_path
    if spec.rootfs_propagation:
        linux["rootfsPropagation"] = spec.rootfs_propagation
    if sysctls:
        linux["sysctl"] = sysctls
    if spec.seccomp is not None:
        linux["seccomp"] = spec.seccomp

    config: dict[str, Any] = {
        "ociVersion": OCI_VERSION,
        "process": process,
        "root": {"path": spec.rootfs, "readonly": spec.readonly_rootfs},
        "mounts": mounts,
        "linux": linux,
    }
    if private_uts:  # runc refuses a hostname for the host's UTS namespace
        config["hostname"] = spec.hostname
    if spec.annotations:
        config["annotations"] = dict(spec.annotations)
    return config


_SIZE_RE = re.compile(r"^(\d+(?:\.\d+)?) ?([kmgtp])?i?b?$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def parse_memory(s: str) -> int:
    """Docker's RAMInBytes: "512m", "1g", "1.5g", "1024", "64MiB" → bytes (binary units)."""
    match = _SIZE_RE.match(s.strip())
    if not match:
        raise InvalidArgument(f"invalid size: '{s}'")
    number, unit = match.group(1), (match.group(2) or "").lower()
    return int(Decimal(number) * _UNITS[unit])


def parse_cpus(s: str) -> int:
    """Docker's `--cpus` ("1.5", "0.25") → NanoCPUs; exact, no float rounding."""
    try:
        value = Decimal(s.strip())
    except InvalidOperation:
        raise InvalidArgument(f"failed to parse {s!r} as a rational number") from None
    if not value.is_finite() or value < 0:
        raise InvalidArgument(f"invalid value for cpus: {s!r}")
    return int(value * NANO)
