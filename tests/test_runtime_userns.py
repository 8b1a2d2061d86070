"""`userns-remap`'s pure parts: settings, /etc/subuid ranges, the spec's namespace."""

from __future__ import annotations

import pytest

from supervisor.runtime.spec import ContainerSpec, ProcessSpec, UserNamespace, build_config
from supervisor.runtime.userns import check_setting, next_free_start, subordinate_ranges

SUBUID = "alice:100000:65536\n# a comment\nbob:165536:65536\n1001:231072:1000\nbad:line\n"


def test_subordinate_ranges_by_name_or_number() -> None:
    assert subordinate_ranges(SUBUID, "alice", 1000) == [(100000, 65536)]
    assert subordinate_ranges(SUBUID, "carol", 1001) == [(231072, 1000)]
    assert subordinate_ranges(SUBUID, "dave", 1002) == []
    assert subordinate_ranges("alice:x:1\nalice:5:0\nalice:7:2\n", "alice", 1) == [(7, 2)]


def test_a_new_range_starts_after_every_range_in_use() -> None:
    assert next_free_start(["", ""]) == 100000  # dockerd's first id
    assert next_free_start([SUBUID, "x:300000:10\n"]) == 300010


def test_settings() -> None:
    for ok in ("default", "dockremap", "remap:remap", "1000:1000", "svc$"):
        check_setting(ok)
    for bad in ("a:b:c", "", "-x", "a b"):
        with pytest.raises(ValueError, match="want default, USER or USER:GROUP"):
            check_setting(bad)


def test_a_remapped_container_joins_the_namespace_with_its_mapping() -> None:
    spec = ContainerSpec(
        id="c", rootfs="/r", hostname="h", process=ProcessSpec(args=["sh"], env=[]),
        userns=UserNamespace("/root/userns", 100000, 200000, 65536),
    )
    linux = build_config(spec, 1024)["linux"]
    assert {"type": "user", "path": "/root/userns"} in linux["namespaces"]
    assert linux["uidMappings"] == [{"containerID": 0, "hostID": 100000, "size": 65536}]
    assert linux["gidMappings"] == [{"containerID": 0, "hostID": 200000, "size": 65536}]
    # only mapped gids may ping (the kernel refuses Docker's 0..2^31-1 in a namespace)
    assert linux["sysctl"]["net.ipv4.ping_group_range"] == "0 65535"
    plain = build_config(ContainerSpec(id="c", rootfs="/r", hostname="h",
                                       process=ProcessSpec(args=["sh"], env=[])), 1024)["linux"]
    assert "uidMappings" not in plain
    assert all(n["type"] != "user" for n in plain["namespaces"])
