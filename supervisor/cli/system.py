"""`version` and `info`: what the client is, and what the daemon reports about itself."""

from __future__ import annotations

import platform

from supervisor.api.client import API_VERSION
from supervisor.cli import format as fmt
from supervisor.cli.main import VERSION
from supervisor.cli.parser import Command, Opt, parse

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from supervisor.cli.context import Cli

VERSION_CMD = Command("version", "corral version [OPTIONS]", "Show the corral version information",
                      (Opt("format", "f", "str", help="Format output using a custom template"),),
                      max_args=0)
INFO = Command("info", "corral info [OPTIONS]", "Display system-wide information",
               (Opt("format", "f", "str", help="Format output using a custom template"),),
               max_args=0)


_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}


def _kv(rows: list[tuple[str, Any]], indent: str, align: bool = True) -> list[str]:
    """`Key: value` lines; `version` aligns values like docker's, `info` does not."""
    width = max(len(k) for k, _ in rows) + 2 if align else 0
    return [f"{indent}{(k + ':').ljust(width)}{'' if align else ' '}{v}" for k, v in rows]


def cmd_version(cli: Cli, argv: list[str]) -> int:
    from supervisor.api.client import ApiError, DaemonUnavailable

    p = parse(VERSION_CMD, argv)
    out = None
    if p["format"]:  # parsed first: a bad template fails without asking the daemon
        from supervisor.cli.output import SYSTEM, ObjectFormat

        out = ObjectFormat(p["format"], name="version", json_all=False, wording=SYSTEM)
    client = {"Version": VERSION, "ApiVersion": API_VERSION,
              "PythonVersion": platform.python_version(), "Os": "linux",
              "Arch": _ARCH.get(platform.machine(), platform.machine())}
    server: Any = None
    error = None
    try:
        server = cli.client.get("/version")
    except (ApiError, DaemonUnavailable) as exc:
        error = exc
    if out is not None:
        cli.stdout.write(out.render({"Client": client, "Server": server}))
    else:
        lines = ["Client:"] + _kv([
            ("Version", VERSION), ("API version", API_VERSION),
            ("Python version", client["PythonVersion"]),
            ("OS/Arch", f"linux/{client['Arch']}")], " ")
        if server:
            lines += ["", "Server:", " Engine:"] + _kv([
                ("Version", server.get("Version", "")),
                ("API version", f"{server.get('ApiVersion', '')} (minimum version "
                                f"{server.get('MinAPIVersion', '')})"),
                ("Go version", server.get("GoVersion", "")),
                ("Git commit", server.get("GitCommit", "")),
                ("Built", server.get("BuildTime", "")),
                ("OS/Arch", f"{server.get('Os', '')}/{server.get('Arch', '')}"),
                ("Kernel version", server.get("KernelVersion", "")),
            ], "  ")
            for comp in server.get("Components") or []:
                if comp.get("Name") == "Engine":
                    continue
                lines += [f" {comp.get('Name')}:"] + _kv(
                    [("Version", comp.get("Version", ""))], "  ")
        cli.out("\n".join(lines))
    if error is not None:
        raise error
    return 0


def cmd_info(cli: Cli, argv: list[str]) -> int:
    p = parse(INFO, argv)
    out = None
    if p["format"]:
        from supervisor.cli.output import SYSTEM, ObjectFormat

        out = ObjectFormat(p["format"], json_all=False, wording=SYSTEM)
    info = cli.client.get("/info") or {}
    if out is not None:
        cli.stdout.write(out.render(info))
        return 0
    rows: list[tuple[str, Any]] = [
        ("Containers", info.get("Containers", 0)),
    ]
    lines = ["Server:"] + _kv(rows, " ", False) + _kv([
        ("Running", info.get("ContainersRunning", 0)),
        ("Paused", info.get("ContainersPaused", 0)),
        ("Stopped", info.get("ContainersStopped", 0)),
    ], "  ", False) + _kv([
        ("Images", info.get("Images", 0)),
        ("Server Version", info.get("ServerVersion", "")),
        ("Storage Driver", info.get("Driver", "")),
        ("Logging Driver", info.get("LoggingDriver", "")),
        ("Cgroup Driver", info.get("CgroupDriver", "")),
        ("Cgroup Version", info.get("CgroupVersion", "")),
        ("Default Runtime", info.get("DefaultRuntime", "")),
        ("Kernel Version", info.get("KernelVersion", "")),
        ("Operating System", info.get("OperatingSystem", "")),
        ("OSType", info.get("OSType", "")),
        ("Architecture", info.get("Architecture", "")),
        ("CPUs", info.get("NCPU", "")),
        ("Total Memory", fmt.bytes_size(float(info.get("MemTotal") or 0))),
        ("Name", info.get("Name", "")),
        ("ID", info.get("ID", "")),
        ("Corral Root Dir", info.get("DockerRootDir", "")),
    ], " ", False)
    cli.out("\n".join(lines))
    for warning in info.get("Warnings") or []:
        cli.err(f"WARNING: {warning}")
    return 0
