"""System routes: version and info (ping is the router's own)."""

from __future__ import annotations

import os
import platform
from typing import Any

from supervisor import __version__
from supervisor.api.router import (
    API_VERSION,
    MIN_API_VERSION,
    ApiRequest,
    ApiResponse,
    JsonResponse,
    Router,
)
from supervisor.engine.engine import Engine
from supervisor.engine.state import Status
from supervisor.runtime import cgroups

_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}


def version_info(engine: Engine) -> dict[str, Any]:
    arch = _ARCH.get(platform.machine(), platform.machine())
    return {
        "Platform": {"Name": "corral"},
        "Components": [
            {
                "Name": "Engine",
                "Version": __version__,
                "Details": {
                    "ApiVersion": API_VERSION,
                    "MinAPIVersion": MIN_API_VERSION,
                    "Os": "linux",
                    "Arch": arch,
                },
            }
        ],
        "Version": __version__,
        "ApiVersion": API_VERSION,
        "MinAPIVersion": MIN_API_VERSION,
        "GitCommit": "",
        "GoVersion": f"python{platform.python_version()}",
        "Os": "linux",
        "Arch": arch,
        "KernelVersion": platform.release(),
        "BuildTime": "",
    }


def register(router: Router, engine: Engine) -> None:
    @router.route("GET", "/version")
    async def version(req: ApiRequest) -> ApiResponse:
        return JsonResponse(version_info(engine))

    @router.route("GET", "/info")
    async def info(req: ApiRequest) -> ApiResponse:
        cs = engine.containers.all()
        count = {s: sum(1 for c in cs if c.state.status is s) for s in Status}
        mem = 0
        try:
            with open("/proc/meminfo") as f:
                mem = int(f.readline().split()[1]) * 1024
        except (OSError, ValueError, IndexError):
            pass
        return JsonResponse(
            {
                "ID": "corral",
                "Containers": len(cs),
                "ContainersRunning": count[Status.RUNNING],
                "ContainersPaused": count[Status.PAUSED],
                "ContainersStopped": len(cs) - count[Status.RUNNING] - count[Status.PAUSED],
                "Images": len(engine.images.list()),
                "Driver": "overlay2",
                "DriverStatus": [["Backing Filesystem", "overlayfs"]],
                "DockerRootDir": str(engine.root),
                "OperatingSystem": _os_name(),
                "OSType": "linux",
                "OSVersion": "",
                "Architecture": platform.machine(),
                "NCPU": os.cpu_count() or 1,
                "MemTotal": mem,
                "Name": platform.node(),
                "ServerVersion": __version__,
                "KernelVersion": platform.release(),
                "CgroupDriver": "cgroupfs",
                "CgroupVersion": "2" if cgroups.is_v2() else "1",
                "Runtimes": {engine.runtime_name: {"path": engine.runtime_name}},
                "DefaultRuntime": engine.runtime_name,
                "SecurityOptions": ["name=no-new-privileges"],
                "Plugins": {"Volume": ["local"], "Network": ["host", "none"], "Log": ["json-file"]},
                "MemoryLimit": True,
                "SwapLimit": True,
                "CpuCfsPeriod": True,
                "CpuCfsQuota": True,
                "PidsLimit": True,
                "LoggingDriver": "json-file",
                "Labels": [],
                "Warnings": None,
                "Swarm": {"LocalNodeState": "inactive"},
            }
        )


def _os_name() -> str:
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return "Linux"
