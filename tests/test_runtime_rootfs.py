"""Overlay mounting via mount(2) and the mountinfo/cgroup helpers."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from supervisor.errors import CorralError
from supervisor.runtime import cgroups
from supervisor.runtime.mountinfo import parse_mountinfo
from supervisor.runtime.rootfs import is_mounted, mount_overlay, overlay_options, unmount


def test_overlay_options_top_first() -> None:
    opts = overlay_options(
        [Path("/l/base"), Path("/l/mid"), Path("/l/top")], Path("/u"), Path("/w")
    )
    assert opts == "lowerdir=/l/top:/l/mid:/l/base,upperdir=/u,workdir=/w"
    with pytest.raises(CorralError):
        overlay_options([Path("/a:b")], Path("/u"), Path("/w"))
    with pytest.raises(CorralError):
        overlay_options([], Path("/u"), Path("/w"))


def test_parse_mountinfo_unescapes() -> None:
    line = (
        "36 35 98:0 /mnt1 /mnt\\040with\\040space rw,noatime master:1 - ext3 /dev/root "
        "rw,errors=continue\n"
        "40 1 0:33 / /sys/fs/cgroup/memory rw shared:5 - cgroup cgroup rw,memory\n"
    )
    a, b = parse_mountinfo(line)
    assert a.mount_point == "/mnt with space" and a.root == "/mnt1" and a.fstype == "ext3"
    assert b.fstype == "cgroup" and "memory" in b.super_options


def test_cgroup_version_detected() -> None:
    v2 = cgroups.is_v2()
    assert v2 == (
        Path("/sys/fs/cgroup/cgroup.controllers").exists()
        and not Path("/sys/fs/cgroup/memory").is_dir()
    )
    assert cgroups.oom_kill_count("/corral-no-such-cgroup") == 0
    assert cgroups.memory_usage("/corral-no-such-cgroup") is None
    assert cgroups.cleanup("/corral-no-such-cgroup") == []


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
def test_mount_overlay_layers(tmp_path: Path) -> None:
    base, top, upper, work, merged = (tmp_path / n for n in ("base", "top", "up", "wk", "m"))
    for d in (base, top, upper, work, merged):
        d.mkdir()
    (base / "a").write_text("base")
    (base / "b").write_text("base")
    (top / "a").write_text("top")
    mount_overlay([base, top], upper, work, merged)
    try:
        assert is_mounted(merged)
        assert (merged / "a").read_text() == "top"
        assert (merged / "b").read_text() == "base"
        (merged / "c").write_text("new")
        assert (upper / "c").read_text() == "new"
        assert not (base / "c").exists()
    finally:
        unmount(merged)
    assert not is_mounted(merged)
    unmount(merged)  # not mounted: fine
    unmount(tmp_path / "gone")  # missing: fine


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
def test_mount_overlay_error_names_path(tmp_path: Path) -> None:
    target = tmp_path / "missing-target"
    with pytest.raises(CorralError) as info:
        mount_overlay([tmp_path], tmp_path / "u", tmp_path / "w", target)
    assert str(target) in info.value.message


def _mount_options(target: Path) -> set[str]:
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split(" ")
        if fields[4] == str(target):
            return set(fields[5].split(","))
    raise AssertionError(f"{target} is not mounted")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
def test_a_host_only_overlay_is_nosuid_nodev_noexec_and_a_containers_is_not(
    tmp_path: Path,
) -> None:
    base, upper, work, view, root = (tmp_path / n for n in ("base", "up", "wk", "view", "root"))
    for d in (base, upper, work, view, root, tmp_path / "up2", tmp_path / "wk2"):
        d.mkdir()
    mount_overlay([base], upper, work, view, host_only=True)
    try:
        assert {"nosuid", "nodev", "noexec"} <= _mount_options(view)
        # The daemon still writes a setuid file into it (a COPY), and the bit is kept
        # in the upper a commit turns into a layer; only running it from here fails.
        prog = view / "prog"
        prog.write_bytes(Path("/bin/true").read_bytes())
        os.chmod(prog, 0o4755)
        assert os.stat(upper / "prog").st_mode & 0o7777 == 0o4755
        with pytest.raises(PermissionError):
            subprocess.run([prog], check=False)
    finally:
        unmount(view)
    mount_overlay([base], tmp_path / "up2", tmp_path / "wk2", root)
    try:
        assert not {"nosuid", "nodev", "noexec"} & _mount_options(root)
    finally:
        unmount(root)
