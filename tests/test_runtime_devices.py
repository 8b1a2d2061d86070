"""`--device` and `--device-cgroup-rule` as dockerd reads them (runtime/devices.py)."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest

from supervisor.errors import InvalidArgument
from supervisor.runtime.devices import (
    DeviceMapping,
    cgroup_rule,
    container_devices,
    device_mappings,
    devices_from_path,
    valid_device_mode,
)


def test_cgroup_rules_in_dockerds_format() -> None:
    assert cgroup_rule("c 1:3 rwm") == {
        "allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"}
    assert cgroup_rule("b *:* m") == {"allow": True, "type": "b", "access": "m"}  # any
    assert cgroup_rule("a 7:* rw") == {"allow": True, "type": "a", "major": 7, "access": "rw"}
    for bad in ("c 1:3", "c 1:3 rwx", "x 1:3 r", "c 1: r", " c 1:3 r", "c 1:3 rwmr", 5):
        with pytest.raises(InvalidArgument, match="invalid device cgroup rule format"):
            cgroup_rule(bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="invalid minor value in device cgroup rule"):
        cgroup_rule(f"c 1:{1 << 63} r")


def test_device_modes_and_mappings() -> None:
    assert [valid_device_mode(m) for m in ("r", "rw", "mwr", "", "rr", "rwx")] == [
        True, True, True, False, False, False]
    assert device_mappings([{"PathOnHost": "/dev/fuse"},
                            {"PathOnHost": "/dev/null", "PathInContainer": "/dev/x/../n",
                             "CgroupPermissions": "r"}]) == [
        DeviceMapping("/dev/fuse", "/dev/fuse", "rwm"), DeviceMapping("/dev/null", "/dev/n", "r")]
    bad: list[tuple[Any, str]] = [
        ({"PathOnHost": ""}, "PathOnHost: a device path on the host is required"),
        ({"PathOnHost": "/dev/null", "PathInContainer": "n"}, "'n' is not an absolute path"),
        ({"PathOnHost": "/dev/null", "CgroupPermissions": "rx"}, "invalid device mode 'rx'"),
        ("/dev/null", r"HostConfig.Devices\[0\] must be an object"),
    ]
    for entry, message in bad:
        with pytest.raises(InvalidArgument, match=message):
            device_mappings([entry])
    with pytest.raises(InvalidArgument, match="HostConfig.Devices must be a list"):
        device_mappings({"PathOnHost": "/dev/null"})


def test_devices_from_a_node_a_symlink_or_a_directory(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("mknod needs root")
    (tmp_path / "d" / "sub").mkdir(parents=True)
    os.mknod(tmp_path / "d" / "null", 0o600 | stat.S_IFCHR, os.makedev(1, 3))
    os.chmod(tmp_path / "d" / "null", 0o620)  # past the umask
    os.mknod(tmp_path / "d" / "sub" / "zero", 0o666 | stat.S_IFCHR, os.makedev(1, 5))
    (tmp_path / "d" / "file").write_text("not a device")
    (tmp_path / "link").symlink_to(tmp_path / "d" / "null")
    [null] = devices_from_path(DeviceMapping(str(tmp_path / "link"), "/dev/n"))
    assert (null.path, null.type, null.major, null.minor, null.file_mode) == (
        "/dev/n", "c", 1, 3, 0o620)
    found = devices_from_path(DeviceMapping(str(tmp_path / "d"), "/dev/x"))
    assert [(d.path, d.minor) for d in found] == [("/dev/x/null", 3), ("/dev/x/sub/zero", 5)]
    with pytest.raises(InvalidArgument, match=r'custom device ".*/file": not a device node'):
        devices_from_path(DeviceMapping(str(tmp_path / "d" / "file"), "/f"))
    with pytest.raises(InvalidArgument, match="no such file or directory"):
        devices_from_path(DeviceMapping(str(tmp_path / "nope"), "/f"))
    devices, rules = container_devices({
        "Devices": [{"PathOnHost": str(tmp_path / "d" / "null"), "PathInContainer": "/dev/n",
                     "CgroupPermissions": "rw"}],
        "DeviceCgroupRules": ["c 10:229 r"]})
    assert [d.path for d in devices] == ["/dev/n"]
    assert rules == [{"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rw"},
                     {"allow": True, "type": "c", "major": 10, "minor": 229, "access": "r"}]
