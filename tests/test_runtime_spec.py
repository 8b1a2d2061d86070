"""Pure tests of the OCI config builder: every Docker default we copy is pinned here."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from supervisor.errors import InvalidArgument
from supervisor.runtime.devices import host_devices
from supervisor.runtime.spec import (
    ALL_CAPABILITIES,
    DEFAULT_CAPABILITIES,
    ContainerSpec,
    Device,
    Mount,
    ProcessSpec,
    Resources,
    Rlimit,
    build_config,
    capability_names,
    parse_cpus,
    parse_memory,
    tweak_capabilities,
)

DOCKER_CAPEFF = 0x00000000A80425FB
CAP_NUMBERS = {
    "CAP_CHOWN": 0,
    "CAP_DAC_OVERRIDE": 1,
    "CAP_FOWNER": 3,
    "CAP_FSETID": 4,
    "CAP_KILL": 5,
    "CAP_SETGID": 6,
    "CAP_SETUID": 7,
    "CAP_SETPCAP": 8,
    "CAP_NET_BIND_SERVICE": 10,
    "CAP_NET_RAW": 13,
    "CAP_SYS_CHROOT": 18,
    "CAP_MKNOD": 27,
    "CAP_AUDIT_WRITE": 29,
    "CAP_SETFCAP": 31,
}


def make_spec(**kw: object) -> ContainerSpec:
    process = ProcessSpec(args=["sh"], env=["PATH=/bin"])
    fields: dict[str, object] = {
        "id": "c1",
        "rootfs": "/var/lib/corral/c1/merged",
        "hostname": "c1host",
        "process": process,
        "cgroups_path": "/corral/c1",
    }
    fields.update(kw)
    return ContainerSpec(**fields)  # type: ignore[arg-type]


def test_default_capabilities_are_dockers() -> None:
    cfg = build_config(make_spec(), 1 << 20)
    caps = cfg["process"]["capabilities"]
    assert set(caps) == {"bounding", "effective", "permitted"}
    for kind in ("bounding", "effective", "permitted"):
        assert sorted(caps[kind]) == sorted(DEFAULT_CAPABILITIES)
    mask = sum(1 << CAP_NUMBERS[c] for c in DEFAULT_CAPABILITIES)
    assert mask == DOCKER_CAPEFF
    assert cfg["process"]["noNewPrivileges"] is True


def test_explicit_capabilities_normalised() -> None:
    proc = ProcessSpec(args=["sh"], env=[], capabilities=["chown", "CAP_KILL"])
    cfg = build_config(make_spec(process=proc), 1024)
    assert cfg["process"]["capabilities"]["effective"] == ["CAP_CHOWN", "CAP_KILL"]


def test_process_fields() -> None:
    proc = ProcessSpec(
        args=["a", "b"], env=["X=1"], cwd="/w", uid=33, gid=33, additional_gids=[5], terminal=True
    )
    p = build_config(make_spec(process=proc), 1024)["process"]
    assert p["args"] == ["a", "b"] and p["env"] == ["X=1"] and p["cwd"] == "/w"
    assert p["user"] == {"uid": 33, "gid": 33, "additionalGids": [5]}
    assert p["terminal"] is True


def test_top_level() -> None:
    cfg = build_config(make_spec(readonly_rootfs=True, annotations={"a": "b"}), 1024)
    assert cfg["ociVersion"] == "1.0.2"
    assert cfg["root"] == {"path": "/var/lib/corral/c1/merged", "readonly": True}
    assert cfg["hostname"] == "c1host"
    assert cfg["linux"]["cgroupsPath"] == "/corral/c1"
    assert cfg["annotations"] == {"a": "b"}


def test_masked_and_readonly_paths() -> None:
    linux = build_config(make_spec(), 1024)["linux"]
    assert linux["maskedPaths"] == [
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
    ]
    assert linux["readonlyPaths"] == [
        "/proc/bus",
        "/proc/fs",
        "/proc/irq",
        "/proc/sys",
        "/proc/sysrq-trigger",
    ]


def ns_types(cfg: dict[str, object]) -> list[dict[str, str]]:
    return cfg["linux"]["namespaces"]  # type: ignore[index, no-any-return]


def test_namespaces_network_none() -> None:
    cfg = build_config(make_spec(network="none"), 1024)
    assert ns_types(cfg) == [
        {"type": "pid"},
        {"type": "ipc"},
        {"type": "uts"},
        {"type": "mount"},
        {"type": "network"},
    ]
    assert cfg["linux"]["sysctl"]["net.ipv4.ip_unprivileged_port_start"] == "0"


def test_namespaces_network_host() -> None:
    cfg = build_config(make_spec(network="host"), 1024)
    assert {"type": "network"} not in ns_types(cfg)
    assert all(ns["type"] != "network" for ns in ns_types(cfg))
    assert "sysctl" not in cfg["linux"]


def test_namespaces_network_join_path() -> None:
    cfg = build_config(make_spec(network="/run/netns/n1"), 1024)
    assert {"type": "network", "path": "/run/netns/n1"} in ns_types(cfg)


def test_default_mounts_then_user_mounts() -> None:
    user = [
        Mount("/data", "/srv/data"),
        Mount("/tmp", "tmpfs", type="tmpfs", options=["nosuid", "size=1m"]),
    ]
    mounts = build_config(make_spec(mounts=user), 1024)["mounts"]
    dests = [m["destination"] for m in mounts]
    assert dests == [
        "/proc",
        "/dev",
        "/dev/pts",
        "/dev/shm",
        "/dev/mqueue",
        "/sys",
        "/sys/fs/cgroup",
        "/data",
        "/tmp",
    ]
    by = {m["destination"]: m for m in mounts}
    assert by["/proc"]["type"] == "proc"
    assert by["/dev"]["type"] == "tmpfs"
    assert "mode=755" in by["/dev"]["options"] and "size=65536k" in by["/dev"]["options"]
    for opt in ("newinstance", "ptmxmode=0666", "mode=0620", "gid=5"):
        assert opt in by["/dev/pts"]["options"]
    assert by["/dev/shm"]["type"] == "tmpfs" and "size=67108864" in by["/dev/shm"]["options"]
    assert by["/dev/mqueue"]["type"] == "mqueue"
    assert by["/sys"]["type"] == "sysfs" and "ro" in by["/sys"]["options"]
    assert by["/sys/fs/cgroup"]["type"] == "cgroup" and "ro" in by["/sys/fs/cgroup"]["options"]
    assert by["/data"] == {
        "destination": "/data",
        "type": "bind",
        "source": "/srv/data",
        "options": ["rbind", "rprivate"],
    }
    assert by["/tmp"]["type"] == "tmpfs"


def test_device_rules_deny_all_then_allow_standard() -> None:
    devices = build_config(make_spec(), 1024)["linux"]["resources"]["devices"]
    assert devices[0] == {"allow": False, "access": "rwm"}
    allowed = {(d.get("type"), d.get("major"), d.get("minor")) for d in devices[1:] if d["allow"]}
    for dev in [(1, 3), (1, 5), (1, 7), (1, 8), (1, 9), (5, 0), (5, 1), (5, 2)]:
        assert ("c", *dev) in allowed
    assert ("c", 136, None) in allowed


def test_resources_mapping() -> None:
    res = Resources(
        memory=512 << 20,
        memory_swap=1 << 30,
        nano_cpus=1_500_000_000,
        cpu_shares=512,
        pids_limit=100,
    )
    r = build_config(make_spec(resources=res), 1024)["linux"]["resources"]
    assert r["memory"] == {"limit": 512 << 20, "swap": 1 << 30}
    assert r["cpu"] == {"quota": 150000, "period": 100000, "shares": 512}
    assert r["pids"] == {"limit": 100}


def test_resources_defaults() -> None:
    r = build_config(make_spec(resources=Resources(memory=64 << 20)), 1024)["linux"]["resources"]
    assert r["memory"] == {"limit": 64 << 20, "swap": 128 << 20}  # Docker: swap = 2×memory
    assert "cpu" not in r and "pids" not in r
    r = build_config(make_spec(resources=Resources(memory=1, memory_swap=-1)), 1)["linux"][
        "resources"
    ]
    assert r["memory"]["swap"] == -1
    r = build_config(make_spec(resources=Resources(pids_limit=-1)), 1)["linux"]["resources"]
    assert "pids" not in r and "memory" not in r


def test_rlimit_nofile_clamped_to_host() -> None:
    rl = build_config(make_spec(), 20000)["process"]["rlimits"]
    assert rl == [{"type": "RLIMIT_NOFILE", "hard": 20000, "soft": 20000}]
    rl = build_config(make_spec(), 1 << 30)["process"]["rlimits"]
    assert rl == [{"type": "RLIMIT_NOFILE", "hard": 1048576, "soft": 1048576}]


def test_user_rlimits() -> None:
    proc = ProcessSpec(
        args=["sh"],
        env=[],
        rlimits=[Rlimit("RLIMIT_NOFILE", 100, 50), Rlimit("RLIMIT_NPROC", 10, 10)],
    )
    rl = build_config(make_spec(process=proc), 20000)["process"]["rlimits"]
    assert rl == [
        {"type": "RLIMIT_NOFILE", "hard": 100, "soft": 50},
        {"type": "RLIMIT_NPROC", "hard": 10, "soft": 10},
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("512m", 512 << 20),
        ("1g", 1 << 30),
        ("1G", 1 << 30),
        ("1024", 1024),
        ("1.5g", 3 << 29),
        ("64MiB", 64 << 20),
        ("10k", 10240),
        ("2 gb", 2 << 30),
    ],
)
def test_parse_memory(text: str, expected: int) -> None:
    assert parse_memory(text) == expected


@pytest.mark.parametrize("text", ["x", "", "-1m", "1x", "m", "1.2.3g"])
def test_parse_memory_bad(text: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_memory(text)
    assert info.value.message == f"invalid size: '{text}'"


def test_parse_cpus() -> None:
    assert parse_cpus("1.5") == 1_500_000_000
    assert parse_cpus("0.1") == 100_000_000
    assert parse_cpus("2") == 2_000_000_000
    for bad in ("abc", "-1", "nan", ""):
        with pytest.raises(InvalidArgument):
            parse_cpus(bad)


EVERY_CAP = (1 << 41) - 1  # CapBnd of a host that withholds nothing (Linux 5.9+)


def test_privileged_is_dockers() -> None:
    dev = Device("/dev/loop-control", "c", 10, 237, 0o660, 0, 6)
    cfg = build_config(make_spec(privileged=True, devices=[dev]), 1024)
    linux = cfg["linux"]
    assert linux["maskedPaths"] == [] and linux["readonlyPaths"] == []
    assert linux["resources"]["devices"] == [{"allow": True, "access": "rwm"}]
    assert linux["devices"] == [
        {"path": "/dev/loop-control", "type": "c", "major": 10, "minor": 237,
         "fileMode": 0o660, "uid": 0, "gid": 6}
    ]
    by = {m["destination"]: m for m in cfg["mounts"]}
    assert "ro" not in by["/sys"]["options"] and "nosuid" in by["/sys"]["options"]
    assert "ro" not in by["/sys/fs/cgroup"]["options"]
    assert "devices" not in build_config(make_spec(), 1024)["linux"]


def test_capabilities_as_docker_tweaks_them() -> None:
    assert tweak_capabilities([], [], bounding=EVERY_CAP) is None
    every = tweak_capabilities([], [], privileged=True, bounding=EVERY_CAP)
    assert every == list(ALL_CAPABILITIES) and len(every) == 41
    assert sum(1 << ALL_CAPABILITIES.index(c) for c in DEFAULT_CAPABILITIES) == DOCKER_CAPEFF
    # only what the daemon itself may hold: a host without CAP_SYS_RESOURCE (bit 24)
    withheld = EVERY_CAP & ~(1 << 24)
    assert "CAP_SYS_RESOURCE" not in (
        tweak_capabilities([], [], privileged=True, bounding=withheld) or []
    )
    all_but = tweak_capabilities(["ALL"], ["net_raw"], bounding=EVERY_CAP) or []
    assert "CAP_SYS_ADMIN" in all_but and "CAP_NET_RAW" not in all_but
    assert tweak_capabilities(["chown"], ["ALL"], bounding=EVERY_CAP) == ["CAP_CHOWN"]
    tweaked = tweak_capabilities(["net_admin"], ["kill"], bounding=EVERY_CAP) or []
    assert "CAP_NET_ADMIN" in tweaked and "CAP_KILL" not in tweaked
    with pytest.raises(InvalidArgument, match='invalid CapAdd: unknown capability: "CAP_FOO"'):
        tweak_capabilities(["foo"], [], bounding=EVERY_CAP)
    with pytest.raises(InvalidArgument, match='invalid CapDrop: unknown capability: "CAP_BAR"'):
        tweak_capabilities([], ["CAP_BAR"], bounding=EVERY_CAP)


def test_init_runs_as_pid_1_with_the_command_its_child() -> None:
    proc = ProcessSpec(args=["sh", "-c", "exit 3"], env=[])
    cfg = build_config(make_spec(process=proc, init="/usr/bin/tini-static"), 1024)
    assert cfg["process"]["args"] == ["/sbin/docker-init", "--", "sh", "-c", "exit 3"]
    assert cfg["mounts"][-1] == {
        "destination": "/sbin/docker-init",
        "type": "bind",
        "source": "/usr/bin/tini-static",
        "options": ["bind", "ro"],
    }
    plain = build_config(make_spec(process=proc), 1024)
    assert plain["process"]["args"] == ["sh", "-c", "exit 3"]
    assert all(m["destination"] != "/sbin/docker-init" for m in plain["mounts"])


def test_domainname() -> None:
    cfg = build_config(make_spec(domainname="example.org", network="host"), 1024)
    assert cfg["linux"]["sysctl"] == {"kernel.domainname": "example.org"}  # as Docker sets it
    assert "kernel.domainname" not in build_config(make_spec(), 1024)["linux"]["sysctl"]


def test_host_devices_are_dev_nodes_as_containerd_lists_them(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("mknod needs root")
    (tmp_path / "net").mkdir()
    (tmp_path / "pts").mkdir()
    def node(name: str, mode: int, kind: int, major: int, minor: int) -> None:
        os.mknod(tmp_path / name, kind, os.makedev(major, minor))
        os.chmod(tmp_path / name, mode)  # not the umask's

    node("null", 0o666, stat.S_IFCHR, 1, 3)
    node("net/tun", 0o600, stat.S_IFCHR, 10, 200)
    node("loop0", 0o660, stat.S_IFBLK, 7, 0)
    node("pts/0", 0o620, stat.S_IFCHR, 136, 0)
    node("console", 0o600, stat.S_IFCHR, 5, 1)
    os.mkfifo(tmp_path / "initctl")
    (tmp_path / "stdin").symlink_to("/proc/self/fd/0")
    (tmp_path / "core").write_text("")
    found = host_devices(str(tmp_path))
    assert [(Path(d.path).relative_to(tmp_path).as_posix(), d.type, d.major, d.minor,
             d.file_mode) for d in found] == [
        ("loop0", "b", 7, 0, 0o660),
        ("net/tun", "c", 10, 200, 0o600),
        ("null", "c", 1, 3, 0o666),
    ]


def test_capability_lists_read_as_dockers_strslice() -> None:
    assert capability_names(None, "CapAdd") == []
    assert capability_names("ALL", "CapAdd") == ["ALL"]  # not "A", "L", "L"
    assert capability_names(["chown", "CAP_KILL"], "CapDrop") == ["chown", "CAP_KILL"]
    for bad in (5, {"ALL": True}, ["ALL", 3], True):
        with pytest.raises(InvalidArgument, match="invalid CapAdd: want a list of capability"):
            capability_names(bad, "CapAdd")
    # case-insensitive, with or without CAP_: the same capability
    assert tweak_capabilities(["cap_net_admin"], ["Cap_Kill"], bounding=EVERY_CAP) == [
        c for c in tweak_capabilities(["NET_ADMIN"], ["kill"], bounding=EVERY_CAP) or []
    ]
    assert tweak_capabilities(["NET_BIND_SERVICE"], ["all"], bounding=EVERY_CAP) == [
        "CAP_NET_BIND_SERVICE"
    ]


def test_read_only_root_makes_the_daemons_mounts_read_only_as_docker() -> None:
    etc = Mount(destination="/etc/hosts", source="/c/hosts", daemon=True)
    user = Mount(destination="/data", source="/d")
    tmp = Mount(destination="/tmp", source="tmpfs", type="tmpfs", options=["nosuid"])
    cfg = build_config(make_spec(readonly_rootfs=True, mounts=[etc, user, tmp]), 1024)
    ro = {m["destination"]: "ro" in m["options"] for m in cfg["mounts"]}
    assert cfg["root"]["readonly"] is True
    assert ro == {"/proc": False, "/dev": False, "/dev/pts": False, "/dev/shm": False,
                  "/dev/mqueue": False, "/sys": True, "/sys/fs/cgroup": True,
                  "/etc/hosts": True, "/data": False, "/tmp": False}
    # a privileged container's /sys is writable, but not under a read-only root
    cfg = build_config(make_spec(readonly_rootfs=True, privileged=True), 1024)
    assert all("ro" in m["options"] for m in cfg["mounts"] if m["destination"] == "/sys")
    plain = build_config(make_spec(mounts=[etc]), 1024)
    assert "ro" not in plain["mounts"][-1]["options"]


def test_device_rules_follow_dockers_defaults() -> None:
    rule = {"allow": True, "type": "c", "major": 10, "minor": 229, "access": "r"}
    cfg = build_config(make_spec(device_rules=[rule]), 1024)
    rules = cfg["linux"]["resources"]["devices"]
    assert rules[0] == {"allow": False, "access": "rwm"}  # deny all first
    assert rules[-1] == rule  # then Docker's allow-list, then the container's own
