"""`/version` and `/info`, as docker-py and the docker CLI see them.

Docker 28 / Engine API 1.44 is the reference: every key of its SystemInfo and
SystemVersion definitions, with values checked against the host itself.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
from conftest import Daemon

from supervisor.api.handlers import system
from supervisor.engine.state import Status
from supervisor.runtime import initbin
from supervisor.runtime.runc import parse_version

IMAGE = "busybox:latest"

# Engine API 1.44 (moby api/docs/v1.44.yaml), definitions SystemInfo and SystemVersion
SYSTEM_INFO_KEYS = {
    "ID", "Containers", "ContainersRunning", "ContainersPaused", "ContainersStopped",
    "Images", "Driver", "DriverStatus", "DockerRootDir", "Plugins", "MemoryLimit",
    "SwapLimit", "KernelMemoryTCP", "CpuCfsPeriod", "CpuCfsQuota", "CPUShares", "CPUSet",
    "PidsLimit", "OomKillDisable", "IPv4Forwarding", "BridgeNfIptables",
    "BridgeNfIp6tables", "Debug", "NFd", "NGoroutines", "SystemTime", "LoggingDriver",
    "CgroupDriver", "CgroupVersion", "NEventsListener", "KernelVersion", "OperatingSystem",
    "OSVersion", "OSType", "Architecture", "NCPU", "MemTotal", "IndexServerAddress",
    "RegistryConfig", "GenericResources", "HttpProxy", "HttpsProxy", "NoProxy", "Name",
    "Labels", "ExperimentalBuild", "ServerVersion", "Runtimes", "DefaultRuntime", "Swarm",
    "LiveRestoreEnabled", "Isolation", "InitBinary", "ContainerdCommit", "RuncCommit",
    "InitCommit", "SecurityOptions", "ProductLicense", "DefaultAddressPools", "Warnings",
    "CDISpecDirs",
}  # fmt: skip
SYSTEM_VERSION_KEYS = {
    "Platform", "Components", "Version", "ApiVersion", "MinAPIVersion", "GitCommit",
    "GoVersion", "Os", "Arch", "KernelVersion", "Experimental", "BuildTime",
}  # fmt: skip
# dockerd's Engine component details (daemon/info.go SystemVersion)
ENGINE_DETAILS = {
    "GitCommit", "ApiVersion", "MinAPIVersion", "GoVersion", "Os", "Arch", "BuildTime",
    "KernelVersion", "Experimental",
}  # fmt: skip
INACTIVE_SWARM = {
    "NodeID": "",
    "NodeAddr": "",
    "LocalNodeState": "inactive",
    "ControlAvailable": False,
    "Error": "",
    "RemoteManagers": None,
}


def host_runc() -> tuple[str, str]:
    """(version, commit) as `runc --version` prints them."""
    out = subprocess.run(["runc", "--version"], capture_output=True, text=True).stdout
    version = re.search(r"^runc version (\S+)", out, re.M)
    commit = re.search(r"^commit: (\S+)", out, re.M)
    assert version and commit, out
    return version.group(1), commit.group(1)


def host_mem_total() -> int:
    text = Path("/proc/meminfo").read_text()
    kib = re.search(r"^MemTotal:\s+(\d+) kB$", text, re.M)
    assert kib
    return int(kib.group(1)) * 1024


# -- /info and /version through docker-py ----------------------------------------------


def test_info_has_every_engine_api_key_with_the_hosts_values(dk: Any, daemon: Daemon) -> None:
    dk.containers.create(IMAGE, ["true"], name="made")
    dk.containers.run(IMAGE, ["sleep", "1d"], detach=True, name="up")
    info = dk.info()
    assert set(info) == SYSTEM_INFO_KEYS
    assert (info["Containers"], info["ContainersRunning"], info["ContainersStopped"]) == (2, 1, 1)
    assert info["ContainersPaused"] == 0
    assert info["Images"] == len(dk.images.list())
    uname = os.uname()
    assert info["KernelVersion"] == uname.release
    assert info["Architecture"] == uname.machine
    assert info["Name"] == uname.nodename
    assert info["NCPU"] == len(os.sched_getaffinity(0))
    assert info["MemTotal"] == host_mem_total()
    pretty = re.search(r'^PRETTY_NAME="?([^"\n]*)"?$', Path("/etc/os-release").read_text(), re.M)
    assert pretty and info["OperatingSystem"] == pretty.group(1)
    assert info["OSType"] == "linux" and info["DockerRootDir"] == str(daemon.root)
    forwarding = Path("/proc/sys/net/ipv4/ip_forward").read_text().strip() == "1"
    assert info["IPv4Forwarding"] is forwarding
    v2 = Path("/sys/fs/cgroup/cgroup.controllers").exists()  # cgroup2 at the root
    assert info["CgroupVersion"] == ("2" if v2 else "1")
    assert info["MemoryLimit"] is True  # the test machine limits memory (runtime tests do)
    version, commit = host_runc()
    assert info["RuncCommit"] == {"ID": commit, "Expected": commit}
    assert info["Runtimes"] == {"runc": {"path": "runc"}} and info["DefaultRuntime"] == "runc"
    assert info["Swarm"] == INACTIVE_SWARM
    assert set(info["Plugins"]) == {"Volume", "Network", "Authorization", "Log"}
    assert {n.attrs["Driver"] for n in dk.networks.list()} <= set(info["Plugins"]["Network"])
    assert info["LoggingDriver"] == "json-file" and info["Plugins"]["Log"] == ["json-file"]
    assert uuid.UUID(info["ID"]) and dk.info()["ID"] == info["ID"]
    assert info["SystemTime"].endswith("Z") and info["NFd"] > 0 and info["NGoroutines"] > 0


def test_info_counts_event_listeners(dk: Any) -> None:
    before = dk.info()["NEventsListener"]
    stream = dk.events(decode=True)
    try:
        assert dk.info()["NEventsListener"] == before + 1
    finally:
        stream.close()


def test_version_has_every_engine_api_key_and_the_runtime(dk: Any) -> None:
    v = dk.version()
    assert set(v) == SYSTEM_VERSION_KEYS
    engine, runtime = v["Components"]
    assert engine["Name"] == "Engine" and set(engine["Details"]) == ENGINE_DETAILS
    assert engine["Details"]["KernelVersion"] == v["KernelVersion"] == os.uname().release
    assert all(engine["Details"].values()), engine["Details"]
    version, commit = host_runc()
    assert runtime == {"Name": "runc", "Version": version, "Details": {"GitCommit": commit}}
    # docker-py reads these two without a guard (images.normalize_platform)
    assert (v["Os"], v["Arch"]) == ("linux", engine["Details"]["Arch"])
    assert v["Experimental"] is False


# -- the docker CLI -------------------------------------------------------------------


def test_docker_info_and_version_complain_about_nothing(corral: Daemon, dk: Any) -> None:
    warnings = dk.info()["Warnings"]
    r = corral.docker("info")
    assert r.returncode == 0, r.stderr
    assert r.stderr.splitlines() == warnings  # only the daemon's own warnings, if any
    _, commit = host_runc()
    assert " Swarm: inactive\n" in r.stdout
    assert f" runc version: {commit}\n" in r.stdout
    assert " containerd version: N/A\n" in r.stdout
    r = corral.docker("version")
    assert r.returncode == 0 and r.stderr == "", r.stderr
    server = r.stdout[r.stdout.index("Server:") :]
    fields = re.findall(r"^ {2}(\S[^:]*):\s*(.*)$", server, re.M)
    assert ("Version", host_runc()[0]) in fields
    assert [name for name, value in fields if not value] == []  # Go version, Git commit, Built...


# -- pure pieces ----------------------------------------------------------------------


def test_info_warns_as_dockerd_about_limits_the_host_lacks() -> None:
    host = system.HostFacts(
        kernel="6.1.0",
        os_name="Debian GNU/Linux 12 (bookworm)",
        os_version="12",
        machine="x86_64",
        ncpu=2,
        hostname="h",
        machine_id="m",
        backing_fs="extfs",
        cgroups=system.CgroupFeatures(version="2", memory=True, cpu_cfs=True, cpu_shares=True),
    )
    engine = system.EngineFacts(
        root="/r", runtime="/usr/bin/crun", log_driver="json-file",
        containers={Status.RUNNING: 2, Status.EXITED: 1, Status.CREATED: 1},
    )  # fmt: skip
    info = system.info_body(host, system.LiveFacts(), engine, "2024-01-01T00:00:00.000000000Z")
    assert set(info) == SYSTEM_INFO_KEYS
    assert info["Warnings"] == ["WARNING: No swap limit support"]
    assert (info["Containers"], info["ContainersRunning"], info["ContainersStopped"]) == (4, 2, 2)
    assert info["Runtimes"] == {"crun": {"path": "/usr/bin/crun"}}
    assert info["DefaultRuntime"] == "crun" and info["RuncCommit"]["ID"] == "N/A"
    other = system.info_body(host, system.LiveFacts(), system.EngineFacts("/s", "runc", "x"), "")
    assert other["ID"] != info["ID"]  # one ID per state root


def test_runtime_version_parsing() -> None:
    crun = parse_version("crun version 1.8.1\ncommit: f8a096be\nrundir: /run/crun\n+SYSTEMD\n")
    assert crun is not None and (crun.name, crun.version, crun.commit) == (
        "crun",
        "1.8.1",
        "f8a096be",
    )
    assert parse_version("something else\n") is None


def test_info_names_the_init_binary_and_its_version(corral: Daemon, dk: Any) -> None:
    """dockerd reports its docker-init and what `docker-init --version` says; corral
    the static tini `--init` bind-mounts (the daemon's `init-path` or the one on PATH)."""
    found = shutil.which("tini-static") or shutil.which("docker-init")
    if found is None:
        pytest.skip("no static tini on this host")
    path = os.path.realpath(found)
    said = subprocess.run([path, "--version"], capture_output=True, text=True).stdout
    m = re.search(r"git\.(\w+)", said) or re.search(r"tini version (\S+)", said)
    assert m is not None, said
    info = dk.info()
    assert info["InitBinary"] == path
    assert info["InitCommit"] == {"ID": m.group(1), "Expected": m.group(1)}
    r = corral.docker("info")
    assert f" init version: {m.group(1)}\n" in r.stdout


def test_init_version_parsing() -> None:
    assert initbin.parse_version("tini version 0.18.0 - git.fec3683\n") == "fec3683"
    assert initbin.parse_version("tini version 0.19.0\n") == "0.19.0"
    assert initbin.parse_version("catatonit v0.1.7\n") is None
