"""Tree removal: any depth, never through a symlink, never into another mount."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from pathlib import Path

import pytest
from deeptree import plant_deep_tree

from supervisor.rmtree import MountInTree, discard_tree, remove_tree


def test_a_tree_deeper_than_path_max_and_the_recursion_limit_is_removed(tmp_path: Path) -> None:
    top = tmp_path / "deep"
    top.mkdir()
    plant_deep_tree(top, 3000)
    remove_tree(top)
    assert not top.exists()


def test_a_wide_tree_with_every_kind_of_entry_is_removed(tmp_path: Path) -> None:
    top = tmp_path / "wide"
    for i in range(50):
        d = top / f"dir{i}" / "sub"
        d.mkdir(parents=True)
        (d / "f").write_text("x")
        (top / f"file{i}").write_text("y")
        os.symlink("/nonexistent", top / f"dangling{i}")
    os.mkfifo(top / "fifo")
    (top / "locked").mkdir(mode=0o000)  # overlay's work/work is 0000
    remove_tree(top)
    assert not top.exists()


def test_symlinks_are_removed_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("keep")
    top = tmp_path / "tree"
    (top / "a").mkdir(parents=True)
    os.symlink(outside, top / "a" / "link")
    os.symlink(outside, tmp_path / "toplink")
    remove_tree(top)
    remove_tree(tmp_path / "toplink")
    assert not top.exists() and not (tmp_path / "toplink").exists()
    assert (outside / "keep").read_text() == "keep"


def test_files_and_missing_paths(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    remove_tree(tmp_path / "f")
    remove_tree(tmp_path / "missing")
    remove_tree(tmp_path / "missing" / "below")
    assert list(tmp_path.iterdir()) == []


def _mount_tmpfs(target: Path) -> None:
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    if libc.mount(b"tmpfs", bytes(target), b"tmpfs", 0, b"size=1m") != 0:
        pytest.skip(f"cannot mount tmpfs: {os.strerror(ctypes.get_errno())}")


def _unmount(target: Path) -> None:
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    libc.umount2(bytes(target), 2)


def test_a_mount_point_inside_stops_the_removal_and_is_left_alone(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to mount")
    top = tmp_path / "tree"
    mnt = top / "a" / "mnt"
    mnt.mkdir(parents=True)
    _mount_tmpfs(mnt)
    try:
        (mnt / "precious").write_text("on another filesystem")
        with pytest.raises(MountInTree) as err:
            remove_tree(top)
        assert err.value.filename == str(mnt)
        assert (mnt / "precious").read_text() == "on another filesystem"
        assert discard_tree(top) is False  # logged, not raised
        # A mount at the top itself is refused too.
        with pytest.raises(MountInTree):
            remove_tree(mnt)
        assert (mnt / "precious").exists()
    finally:
        _unmount(mnt)
    remove_tree(top)
    assert not top.exists()
