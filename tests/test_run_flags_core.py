"""The pure side of the `run` flags: the CLI's body, dockerd's and runc's checks
(engine/namespaces.py), and what the OCI spec gets (runtime/spec.py)."""

from __future__ import annotations

from typing import Any

import pytest

from supervisor.cli.flags import RUN, container_body
from supervisor.cli.parser import UsageError, parse
from supervisor.engine import namespaces
from supervisor.errors import InvalidArgument
from supervisor.runtime.spec import ContainerSpec, ProcessSpec, Resources, build_config


def body(*flags: str) -> dict[str, Any]:
    return container_body(parse(RUN, [*flags, "img"]), {})[1]


def test_cli_body_of_the_resource_and_namespace_flags() -> None:
    hc = body("--shm-size", "1g", "--memory-reservation", "32m", "-c", "512",
              "--cpuset-cpus", "0-1", "--cpuset-mems", "0", "--oom-kill-disable",
              "--oom-score-adj", "-200", "--sysctl", "net.ipv4.ip_forward=1",
              "--group-add", "audio", "--ipc", "shareable", "--pid", "host",
              "--uts", "host")["HostConfig"]  # fmt: skip
    assert hc["ShmSize"] == 1 << 30 and hc["MemoryReservation"] == 32 << 20
    assert (hc["CpuShares"], hc["CpusetCpus"], hc["CpusetMems"]) == (512, "0-1", "0")
    assert (hc["OomKillDisable"], hc["OomScoreAdj"]) == (True, -200)
    assert hc["Sysctls"] == {"net.ipv4.ip_forward": "1"}
    assert hc["GroupAdd"] == ["audio"]
    assert (hc["IpcMode"], hc["PidMode"], hc["UTSMode"]) == ("shareable", "host", "host")


def test_cli_attach_streams() -> None:
    cfg = body("-a", "STDERR")
    assert (cfg["AttachStdin"], cfg["AttachStdout"], cfg["AttachStderr"]) == (False, False, True)
    cfg = body("-i", "-a", "stdout")
    assert (cfg["AttachStdin"], cfg["StdinOnce"], cfg["AttachStdout"]) == (True, True, True)
    with pytest.raises(UsageError, match="valid streams are STDIN, STDOUT and STDERR"):
        body("-a", "stdio")


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--ipc", "container:"], "--ipc: invalid IPC mode"),
        (["--pid", "private"], "--pid: invalid PID mode"),
        (["--uts", "container:x"], "--uts: invalid UTS mode"),
        (["--sysctl", "vm.swappiness=1"], "sysctl 'vm.swappiness=1' is not allowed"),
        (["--sysctl", "net.ipv4.ip_forward"], "sysctl 'net.ipv4.ip_forward' is not allowed"),
    ],
)
def test_cli_refusals(flags: list[str], message: str) -> None:
    with pytest.raises(UsageError, match=message.replace(".", r"\.")):
        body(*flags)


@pytest.mark.parametrize(
    ("hc", "config", "message"),
    [
        ({"IpcMode": "bogus"}, {}, "invalid IPC mode: bogus"),
        ({"PidMode": "container"}, {}, "invalid PID mode: container"),
        ({"UTSMode": "private"}, {}, "invalid UTS mode: private"),
        ({"UTSMode": "host"}, {"Hostname": "x"}, "conflicting options: hostname and the UTS mode"),
        ({"ShmSize": -1}, {}, "SHM size can not be less than 0"),
        ({"OomScoreAdj": -1001}, {}, r"Invalid value -1001, range for oom score adj is"),
    ],
)
def test_dockerd_mode_checks(hc: dict[str, Any], config: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        namespaces.check_modes(hc, config)


def test_empty_ipc_mode_is_stored_as_private() -> None:
    hc: dict[str, Any] = {"IpcMode": ""}
    namespaces.check_modes(hc, {})
    assert hc["IpcMode"] == "private"


@pytest.mark.parametrize(
    ("hc", "host_net", "message"),
    [
        ({"Sysctls": {"net.core.somaxconn": "1"}}, True, "not allowed in the hosts network"),
        ({"Sysctls": {"fs.mqueue.msg_max": "1"}, "IpcMode": "host"}, False, "hosts ipc"),
        ({"Sysctls": {"kernel.hostname": "x"}}, False, "use the hostname config"),
        ({"Sysctls": {"vm.swappiness": "1"}}, False, "not in a separate kernel namespace"),
        ({"Sysctls": {"kernel.domainname": "x"}, "UTSMode": "host"}, False, "separate kernel"),
    ],
)
def test_runc_sysctl_checks(hc: dict[str, Any], host_net: bool, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        namespaces.check_sysctls(hc, host_net)
    namespaces.check_sysctls({"Sysctls": {"net.core.somaxconn": "1", "kernel.sem": "1"}}, False)


def _config(**kw: Any) -> dict[str, Any]:
    process = ProcessSpec(args=["sh"], env=[], oom_score_adj=kw.pop("oom", None))
    spec = ContainerSpec(id="c", rootfs="/r", hostname="h", process=process, **kw)
    return build_config(spec, 1 << 20)


def test_spec_namespaces_shm_and_memory() -> None:
    cfg = _config(
        namespaces={"pid": "host", "ipc": "/proc/7/ns/ipc", "uts": "host"},
        shm_source="/var/lib/corral/containers/x/shm",
        resources=Resources(memory_reservation=32 << 20, oom_kill_disable=True),
        oom=-5,
    )
    kinds = {n["type"]: n.get("path", "") for n in cfg["linux"]["namespaces"]}
    assert "pid" not in kinds and "uts" not in kinds and kinds["ipc"] == "/proc/7/ns/ipc"
    assert "hostname" not in cfg  # runc refuses one without a UTS namespace
    shm = [m for m in cfg["mounts"] if m["destination"] == "/dev/shm"]
    assert shm == [{"destination": "/dev/shm", "type": "bind",
                    "source": "/var/lib/corral/containers/x/shm",
                    "options": ["rbind", "nosuid", "noexec", "nodev"]}]  # fmt: skip
    assert cfg["linux"]["resources"]["memory"] == {
        "reservation": 32 << 20, "disableOOMKiller": True}  # fmt: skip
    assert cfg["process"]["oomScoreAdj"] == -5
    plain = _config(shm_size=1 << 30)
    assert [n["type"] for n in plain["linux"]["namespaces"]][:3] == ["pid", "ipc", "uts"]
    assert plain["hostname"] == "h" and "oomScoreAdj" not in plain["process"]
    (shm_default,) = [m for m in plain["mounts"] if m["destination"] == "/dev/shm"]
    assert f"size={1 << 30}" in shm_default["options"]
    none = _config(shm_source="none")
    assert not [m for m in none["mounts"] if m["destination"] == "/dev/shm"]


def test_mountinfo_propagation_and_the_mount_a_path_is_on() -> None:
    from supervisor.runtime.mountinfo import mount_of, parse_mountinfo

    entries = parse_mountinfo(
        "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n"
        "40 27 0:50 / /srv rw shared:7 - tmpfs t rw\n"
        "41 40 0:51 / /srv/in rw master:7 - tmpfs t rw\n"
    )
    assert [e.propagation for e in entries] == ["private", "shared", "slave"]
    assert mount_of("/srv/in/x", entries) is entries[2]
    assert mount_of("/srv/inner", entries) is entries[1]  # a prefix of the name only
    assert mount_of("/etc", entries) is entries[0]


def test_mount_options_become_the_specs() -> None:
    from supervisor.engine import create as plan

    bind = plan.parse_mount({"Type": "bind", "Source": "/a", "Target": "/b", "BindOptions": {
        "Propagation": "rslave", "NonRecursive": True}})  # fmt: skip
    assert (bind.propagation, bind.non_recursive) == ("rslave", True)
    assert bind.to_api()["Propagation"] == "rslave"
    vol = plan.parse_mount({"Type": "volume", "Source": "vol", "Target": "/b",
                            "VolumeOptions": {"Subpath": "./a//b/"}})  # fmt: skip
    assert vol.subpath == "a/b"
    with pytest.raises(InvalidArgument, match="invalid propagation mode: up"):
        plan.parse_mount({"Type": "bind", "Source": "/a", "Target": "/b",
                          "BindOptions": {"Propagation": "up"}})  # fmt: skip
    with pytest.raises(InvalidArgument, match="field BindOptions must not be specified"):
        plan.parse_mount({"Type": "volume", "Target": "/b",
                          "BindOptions": {"Propagation": "shared"}})  # fmt: skip


def test_link_parse_store_and_environment() -> None:
    from supervisor.network import links

    assert links.parse("db") == links.Link("db", "db")
    assert links.parse("/db:/web/alias") == links.Link("db", "alias")
    assert links.stored([links.Link("db", "alias")], "web") == ["/db:/web/alias"]
    assert links.host_names(links.Link("db", "db"), "h") == ("db", "h")
    env = links.environment(links.Link("db", "my-db"), "web", "10.0.0.2",
                            ["53/udp", "53/tcp", "8080"], ["PATH=/x", "HOME=/", "A=b=c"])
    assert env[0] == "MY_DB_PORT=tcp://10.0.0.2:53"  # lowest number, tcp first
    assert env[-2:] == ["MY_DB_NAME=/web/my-db", "MY_DB_ENV_A=b=c"]
    assert "MY_DB_PORT_8080_TCP_PORT=8080" in env
    with pytest.raises(InvalidArgument, match="invalid link"):
        links.parse(":x")


def test_boot_waves_start_what_is_joined_first() -> None:
    deps = namespaces.depends_on({"IpcMode": "container:donor", "PidMode": "host",
                                  "NetworkMode": "container:abc", "Links": ["/db:/web/db"]})
    assert deps == {"donor", "abc", "db"}
    waves = namespaces.boot_waves([("j1", "joiner", {"donor"}), ("d1", "donor", set()),
                                   ("x1", "other", {"gone"}), ("l1", "late", {"j1"})])
    assert waves == [["d1", "x1"], ["j1"], ["l1"]]
    cycle = namespaces.boot_waves([("a1", "a", {"b"}), ("b1", "b", {"a"})])
    assert cycle == [["a1", "b1"]]  # no order is possible: together, as Docker would try
