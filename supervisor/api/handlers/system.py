"""System routes: `GET /version` and `GET /info` (ping is the router's own).

Both carry every key of Engine API 1.44's SystemVersion and SystemInfo: clients read
some of them without a guard (docker-py's `version()["Os"]`, the CLI's `docker info`
and `docker version` templates, compose's checks of `Swarm`).  Values are the host's
and corral's own where corral knows them, and otherwise what dockerd answers when the
feature is off: no swarm, no containerd, no registry mirrors, no authorization plugin.

As in dockerd, facts about the machine that do not change while the daemon runs
(kernel, OS release, cgroup controllers, the runtime's version) are read once, at the
first request; counters, memory and open files at every request.  The bodies are built
by pure functions from those records (`version_body`, `info_body`).
"""

from __future__ import annotations

import logging
import os
import platform
import subprocess
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import structlog
import trio

from supervisor import __version__
from supervisor.api.router import (
    API_VERSION,
    MIN_API_VERSION,
    OS_TYPE,
    ApiRequest,
    ApiResponse,
    JsonResponse,
    Router,
)
from supervisor.distribution.hosts import LOOPBACK_CIDRS, RegistryHosts
from supervisor.engine.engine import Engine
from supervisor.engine.state import Status
from supervisor.engine.timefmt import rfc3339_nano
from supervisor.runtime import cgroups, initbin, securityopt
from supervisor.runtime.mountinfo import read_mountinfo
from supervisor.runtime.runc import RuntimeVersion

#: Go's GOARCH for `uname -m` (/version's `Arch`; /info's `Architecture` stays uname's).
_GOARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}
#: dockerd's names for the filesystem under its root (its fsmagic table).
_BACKING_FS = {"ext2": "extfs", "ext3": "extfs", "ext4": "extfs", "overlay": "overlayfs"}
_NOT_AVAILABLE = "N/A"  # dockerd's value for a component commit it cannot tell
_ID_NAMESPACE = uuid.UUID("8d5c5b9e-6b7e-4f0e-9a55-2f3c6a1d0c01")


@dataclass(frozen=True)
class CgroupFeatures:
    """What the host's cgroups can limit, found the way dockerd's sysinfo finds it."""

    version: str = "1"
    memory: bool = False
    swap: bool = False
    kernel_memory_tcp: bool = False
    oom_kill_disable: bool = False
    cpu_cfs: bool = False
    cpu_shares: bool = False
    cpuset: bool = False
    pids: bool = False


@dataclass(frozen=True)
class HostFacts:
    """The machine, as read once: what `uname`, os-release and cgroupfs say."""

    kernel: str
    os_name: str
    os_version: str
    machine: str  # uname -m
    ncpu: int
    hostname: str
    machine_id: str
    backing_fs: str
    cgroups: CgroupFeatures
    runtime: RuntimeVersion | None = None  # None: it did not answer `--version`
    commit: str = _NOT_AVAILABLE  # corral's own source revision, when it runs from git
    commit_time: str = ""
    init_binary: str = ""  # the host path of what `--init` runs ("" if there is none)
    init_commit: str = _NOT_AVAILABLE  # from its `--version` (initbin.parse_version)


@dataclass(frozen=True)
class LiveFacts:
    """What can change while the daemon runs, read at every /info."""

    mem_total: int = 0
    ipv4_forwarding: bool = False
    bridge_nf_iptables: bool = False
    bridge_nf_ip6tables: bool = False
    open_fds: int = 0


@dataclass(frozen=True)
class EngineFacts:
    """The daemon's own state and settings that /info reports."""

    root: str
    runtime: str  # the binary corral runs
    log_driver: str
    containers: Mapping[Status, int] = field(default_factory=dict)
    images: int = 0
    event_listeners: int = 0
    tasks: int = 0
    debug: bool = False
    address_pools: Sequence[tuple[str, int]] = ()
    registries: RegistryHosts = field(default_factory=RegistryHosts)
    live_restore: bool = False  # containers outlive a SIGTERM of the daemon


# -- pure: facts in, Docker's shapes out ---------------------------------------------


def registry_config(hosts: RegistryHosts) -> dict[str, Any]:
    """dockerd's ServiceConfig: the CIDRs (loopback's always), one IndexConfig for
    Docker Hub with the mirrors and one per insecure name, the mirrors again."""
    mirrors = list(hosts.mirrors)
    indexes: dict[str, Any] = {
        "docker.io": {"Name": "docker.io", "Mirrors": mirrors, "Secure": True,
                      "Official": True},
    }
    for name in hosts.insecure_names:
        indexes[name] = {"Name": name, "Mirrors": [], "Secure": False, "Official": False}
    return {
        "AllowNondistributableArtifactsCIDRs": [],
        "AllowNondistributableArtifactsHostnames": [],
        "InsecureRegistryCIDRs": [str(n) for n in (*LOOPBACK_CIDRS, *hosts.insecure_cidrs)],
        "IndexConfigs": indexes,
        "Mirrors": mirrors,
    }


def version_body(host: HostFacts) -> dict[str, Any]:
    """SystemVersion: the Engine component, then the runtime's, then the flat legacy keys."""
    arch = _GOARCH.get(host.machine, host.machine)
    go_version = f"python{platform.python_version()}"
    engine = {
        "Name": "Engine",
        "Version": __version__,
        "Details": {
            "ApiVersion": API_VERSION,
            "Arch": arch,
            "BuildTime": host.commit_time,
            "Experimental": "false",
            "GitCommit": host.commit,
            "GoVersion": go_version,
            "KernelVersion": host.kernel,
            "MinAPIVersion": MIN_API_VERSION,
            "Os": OS_TYPE,
        },
    }
    components: list[dict[str, Any]] = [engine]
    if host.runtime is not None:
        components.append(
            {
                "Name": host.runtime.name or "runc",
                "Version": host.runtime.version,
                "Details": {"GitCommit": host.runtime.commit},
            }
        )
    return {
        "Platform": {"Name": "corral"},
        "Components": components,
        "Version": __version__,
        "ApiVersion": API_VERSION,
        "MinAPIVersion": MIN_API_VERSION,
        "GitCommit": host.commit,
        "GoVersion": go_version,
        "Os": OS_TYPE,
        "Arch": arch,
        "KernelVersion": host.kernel,
        "Experimental": False,
        "BuildTime": host.commit_time,
    }


def _warnings(cg: CgroupFeatures) -> list[str]:
    """dockerd's warnings, for the limits corral applies (--memory, --memory-swap,
    --cpus, --cpu-shares) when the host cannot; limits corral never sets go unmentioned.
    """
    missing = [
        (cg.memory, "WARNING: No memory limit support"),
        (cg.swap, "WARNING: No swap limit support"),
        (cg.cpu_cfs, "WARNING: No cpu cfs quota support"),
        (cg.cpu_cfs, "WARNING: No cpu cfs period support"),
        (cg.cpu_shares, "WARNING: No cpu shares support"),
    ]
    return [text for present, text in missing if not present]


def daemon_id(host: HostFacts, root: str) -> str:
    """Stable for one state root on one machine, different across them (dockerd's is a
    UUID kept in its root; this one needs no file)."""
    return str(uuid.uuid5(_ID_NAMESPACE, f"{host.machine_id}:{root}"))


def info_body(host: HostFacts, live: LiveFacts, engine: EngineFacts, now: str) -> dict[str, Any]:
    """SystemInfo, key for key in the order of the Engine API 1.44 definition."""
    cg = host.cgroups
    running = engine.containers.get(Status.RUNNING, 0)
    paused = engine.containers.get(Status.PAUSED, 0)
    total = sum(engine.containers.values())
    runtime_name = os.path.basename(engine.runtime) or engine.runtime
    commit = host.runtime.commit if host.runtime is not None else _NOT_AVAILABLE
    return {
        "ID": daemon_id(host, engine.root),
        "Containers": total,
        "ContainersRunning": running,
        "ContainersPaused": paused,
        "ContainersStopped": total - running - paused,
        "Images": engine.images,
        "Driver": "overlay2",
        "DriverStatus": [["Backing Filesystem", host.backing_fs], ["Supports d_type", "true"]],
        "DockerRootDir": engine.root,
        "Plugins": {
            "Volume": ["local"],
            "Network": ["bridge", "host", "null"],
            "Authorization": None,
            "Log": [engine.log_driver],
        },
        "MemoryLimit": cg.memory,
        "SwapLimit": cg.swap,
        "KernelMemoryTCP": cg.kernel_memory_tcp,
        "CpuCfsPeriod": cg.cpu_cfs,
        "CpuCfsQuota": cg.cpu_cfs,
        "CPUShares": cg.cpu_shares,
        "CPUSet": cg.cpuset,
        "PidsLimit": cg.pids,
        "OomKillDisable": cg.oom_kill_disable,
        "IPv4Forwarding": live.ipv4_forwarding,
        "BridgeNfIptables": live.bridge_nf_iptables,
        "BridgeNfIp6tables": live.bridge_nf_ip6tables,
        "Debug": engine.debug,
        "NFd": live.open_fds,
        "NGoroutines": engine.tasks,  # trio tasks: corral's goroutines
        "SystemTime": now,
        "LoggingDriver": engine.log_driver,
        "CgroupDriver": "cgroupfs",
        "CgroupVersion": cg.version,
        "NEventsListener": engine.event_listeners,
        "KernelVersion": host.kernel,
        "OperatingSystem": host.os_name,
        "OSVersion": host.os_version,
        "OSType": OS_TYPE,
        "Architecture": host.machine,
        "NCPU": host.ncpu,
        "MemTotal": live.mem_total,
        "IndexServerAddress": "https://index.docker.io/v1/",
        "RegistryConfig": registry_config(engine.registries),
        "GenericResources": None,
        "HttpProxy": "",  # the daemon makes no outbound connection a proxy would carry
        "HttpsProxy": "",
        "NoProxy": "",
        "Name": host.hostname,
        "Labels": [],
        "ExperimentalBuild": False,
        "ServerVersion": __version__,
        "Runtimes": {runtime_name: {"path": engine.runtime}},
        "DefaultRuntime": runtime_name,
        "Swarm": {
            "NodeID": "",
            "NodeAddr": "",
            "LocalNodeState": "inactive",
            "ControlAvailable": False,
            "Error": "",
            "RemoteManagers": None,
        },
        "LiveRestoreEnabled": engine.live_restore,
        "Isolation": "",
        "InitBinary": host.init_binary,
        "ContainerdCommit": {"ID": _NOT_AVAILABLE, "Expected": _NOT_AVAILABLE},
        "RuncCommit": {"ID": commit, "Expected": commit},
        "InitCommit": {"ID": host.init_commit, "Expected": host.init_commit},
        "SecurityOptions": securityopt.info_options(securityopt.host_security()),
        "ProductLicense": "",
        "DefaultAddressPools": [{"Base": b, "Size": s} for b, s in engine.address_pools],
        "Warnings": _warnings(cg),
        "CDISpecDirs": [],
    }


def parse_os_release(text: str) -> tuple[str, str]:
    """(PRETTY_NAME, VERSION_ID) of an os-release file."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip().strip("\"'")
    return values.get("PRETTY_NAME", "Linux"), values.get("VERSION_ID", "")


def parse_mem_total(text: str) -> int:
    """MemTotal of /proc/meminfo, in bytes (0 if absent)."""
    for line in text.splitlines():
        if line.startswith("MemTotal:"):
            parts = line.split()
            if len(parts) >= 2 and parts[1].isdigit():
                return int(parts[1]) * (1024 if parts[2:3] == ["kB"] else 1)
    return 0


# -- I/O: reading the facts ----------------------------------------------------------


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def _flag(path: str) -> bool:
    return _read(path).strip() == "1"


def _cgroup_features() -> CgroupFeatures:
    """v2: the root's controllers; v1: the controllers mounted and the knobs they offer."""
    lay = cgroups.layout()
    if lay.v2:
        ctl = set(_read(str(cgroups.CGROUP_ROOT / "cgroup.controllers")).split())
        return CgroupFeatures(
            version="2",
            memory="memory" in ctl,
            swap="memory" in ctl,
            cpu_cfs="cpu" in ctl,
            cpu_shares="cpu" in ctl,
            cpuset="cpuset" in ctl,
            pids="pids" in ctl,
        )

    def has(controller: str, knob: str) -> bool:
        base = lay.v1_dirs.get(controller)
        return base is not None and (base / knob).exists()

    return CgroupFeatures(
        version="1",
        memory="memory" in lay.v1_dirs,
        swap=has("memory", "memory.memsw.limit_in_bytes"),
        kernel_memory_tcp=has("memory", "memory.kmem.tcp.limit_in_bytes"),
        oom_kill_disable=has("memory", "memory.oom_control"),
        cpu_cfs=has("cpu", "cpu.cfs_quota_us") and has("cpu", "cpu.cfs_period_us"),
        cpu_shares=has("cpu", "cpu.shares"),
        cpuset="cpuset" in lay.v1_dirs,
        pids="pids" in lay.v1_dirs,
    )


def _backing_fs(root: Path) -> str:
    """The filesystem holding the state root: the mount with the longest matching path."""
    target = str(root.resolve()).rstrip("/") + "/"
    best, fstype = -1, "unknown"
    for m in read_mountinfo():  # later mounts over the same point win (>=)
        prefix = m.mount_point.rstrip("/") + "/"
        if target.startswith(prefix) and len(prefix) >= best:
            best, fstype = len(prefix), m.fstype
    return _BACKING_FS.get(fstype, fstype)


def read_host_facts(root: Path) -> HostFacts:
    """Blocking (small file reads): run in a thread."""
    os_name, os_version = parse_os_release(_read("/etc/os-release"))
    try:
        ncpu = len(os.sched_getaffinity(0))
    except OSError:
        ncpu = os.cpu_count() or 1
    return HostFacts(
        kernel=platform.release(),
        os_name=os_name,
        os_version=os_version,
        machine=platform.machine(),
        ncpu=ncpu,
        hostname=platform.node(),
        machine_id=_read("/etc/machine-id").strip() or platform.node(),
        backing_fs=_backing_fs(root),
        cgroups=_cgroup_features(),
    )


def read_live_facts() -> LiveFacts:
    """Blocking (a few /proc reads): run in a thread."""
    try:
        fds = len(os.listdir("/proc/self/fd"))
    except OSError:
        fds = 0
    return LiveFacts(
        mem_total=parse_mem_total(_read("/proc/meminfo")),
        ipv4_forwarding=_flag("/proc/sys/net/ipv4/ip_forward"),
        bridge_nf_iptables=_flag("/proc/sys/net/bridge/bridge-nf-call-iptables"),
        bridge_nf_ip6tables=_flag("/proc/sys/net/bridge/bridge-nf-call-ip6tables"),
        open_fds=fds,
    )


async def _source_revision() -> tuple[str, str]:
    """(short commit, its time) of the git checkout corral runs from; outside one, no
    commit and the time the package was installed (a Python package is not compiled,
    so its build time is when its files were put in place)."""
    top = Path(__file__).resolve().parents[3]
    in_git, installed = await trio.to_thread.run_sync(_install_facts, top)
    if not in_git:
        return _NOT_AVAILABLE, installed
    try:
        with trio.fail_after(10):
            result = await trio.run_process(
                ["git", "-C", str(top), "log", "-1", "--format=%h %cI"],
                stdin=subprocess.DEVNULL,
                capture_stdout=True,
                capture_stderr=True,
                check=False,
            )
    except (OSError, trio.TooSlowError):
        return _NOT_AVAILABLE, installed
    parts = result.stdout.decode(errors="replace").split()
    if result.returncode != 0 or len(parts) != 2:
        return _NOT_AVAILABLE, installed
    return parts[0], parts[1]


async def _init_commit(path: str) -> str:
    """What the init binary says of itself (dockerd runs `docker-init --version`)."""
    if not path:
        return _NOT_AVAILABLE
    try:
        with trio.fail_after(10):
            result = await trio.run_process(
                [path, "--version"],
                stdin=subprocess.DEVNULL,
                capture_stdout=True,
                capture_stderr=True,
                check=False,
            )
    except (OSError, trio.TooSlowError):
        return _NOT_AVAILABLE
    if result.returncode != 0:
        return _NOT_AVAILABLE
    return initbin.parse_version(result.stdout.decode(errors="replace")) or _NOT_AVAILABLE


def _install_facts(top: Path) -> tuple[bool, str]:
    """Whether `top` is a git checkout, and when the package's files were written."""
    try:
        installed = rfc3339_nano((top / "supervisor" / "__init__.py").stat().st_mtime_ns)
    except OSError:
        installed = ""
    return (top / ".git").exists(), installed


def _task_count() -> int:
    """Every task in the daemon's trio run."""
    count, stack = 0, [trio.lowlevel.current_root_task()]
    while stack:
        task = stack.pop()
        if task is None:
            continue
        count += 1
        for nursery in task.child_nurseries:
            stack.extend(nursery.child_tasks)
    return count


def engine_facts(engine: Engine) -> EngineFacts:
    counts: dict[Status, int] = {}
    for c in engine.containers.all():
        counts[c.state.status] = counts.get(c.state.status, 0) + 1
    return EngineFacts(
        root=str(engine.root),
        runtime=engine.runtime_name,
        log_driver=engine.log_defaults.type,
        containers=counts,
        images=len(engine.images.list()),
        event_listeners=engine.events.subscriber_count,
        tasks=_task_count(),
        debug=structlog.get_logger().bind().is_enabled_for(logging.DEBUG),
        address_pools=[(str(p.base), p.size) for p in engine.networks.pools],
        registries=engine.registries,
        live_restore=engine.live_restore,
    )


def register(router: Router, engine: Engine) -> None:
    cache: list[HostFacts] = []

    async def host_facts() -> HostFacts:
        if not cache:
            facts = await trio.to_thread.run_sync(read_host_facts, engine.root)
            commit, commit_time = await _source_revision()
            runtime = await engine.runtime.version()
            init = await _init_commit(engine.init_path)
            cache.append(replace(facts, runtime=runtime, commit=commit, commit_time=commit_time,
                                 init_binary=engine.init_path, init_commit=init))  # fmt: skip
        return cache[0]

    @router.route("GET", "/version")
    async def version(req: ApiRequest) -> ApiResponse:
        return JsonResponse(version_body(await host_facts()))

    @router.route("GET", "/info")
    async def info(req: ApiRequest) -> ApiResponse:
        host = await host_facts()
        live = await trio.to_thread.run_sync(read_live_facts)
        return JsonResponse(info_body(host, live, engine_facts(engine), rfc3339_nano()))
