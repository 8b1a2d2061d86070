"""Pure tests of the OCI config builder: every Docker default we copy is pinned here."""

from __future__ import annotations

import pytest

from supervisor.errors import InvalidArgument
from supervisor.runtime.spec import (
    DEFAULT_CAPABILITIES,
    ContainerSpec,
    Mount,
    ProcessSpec,
    Resources,
    Rlimit,
    build_config,
    parse_cpus,
    parse_memory,
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
