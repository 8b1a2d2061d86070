"""A power cut keeps everything the API acknowledged (issue 12, item 7).

The state root is an ext4 filesystem on a loop device, mounted with a long journal
commit interval and without ext4's rename heuristic (`commit=600,noauto_da_alloc`),
so nothing reaches the device unless the daemon asks for it (fsync) within the test.
The power cut is a copy of the loop device's backing file taken while the
filesystem is mounted and the daemon running: exactly what the device holds at that
instant, page cache lost.  The copy is mounted (the journal replays) and a daemon
started on it must show every image, tag, container and volume made before the cut,
with their content.  The kernel here has no device-mapper (no dm-flakey), hence the
copy.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    IMAGE,
    Daemon,
    _needs_root,
    assert_nothing_left,
    kill_holder,
    start_daemon,
    stop_daemon,
)


def _run(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True)


def _mounts_under(path: Path) -> list[str]:
    """Mount points below `path`, deepest (latest) first."""
    prefix = str(path) + "/"
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        target = line.split()[4]
        if target.startswith(prefix):
            found.append(target)
    return found[::-1]


@pytest.fixture
def loop_fs(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """(image file, its mount point)."""
    _needs_root()
    if shutil.which("mkfs.ext4") is None:
        pytest.skip("mkfs.ext4 not installed")
    img, mnt = tmp_path / "disk.img", tmp_path / "mnt"
    mnt.mkdir()
    _run("truncate", "-s", "256M", str(img))
    _run("mkfs.ext4", "-q", "-F", str(img))
    _run("mount", "-o", "loop,commit=600,noauto_da_alloc", str(img), str(mnt))
    try:
        yield img, mnt
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)



def _clean_up(client: Any, proc: Any, root: Path) -> None:
    """After a test on the restored root: its containers removed, the daemon stopped,
    nothing of it left behind."""
    for x in client.containers.list(all=True):
        x.remove(force=True, v=True)
    client.close()
    stop_daemon(proc)
    assert_nothing_left(root)

def test_a_power_cut_keeps_what_was_acknowledged(
    loop_fs: tuple[Path, Path], rootfs_tar: Path, tmp_path: Path
) -> None:
    img, mnt = loop_fs
    proc = start_daemon(mnt / "root", tmp_path / "a.sock", tmp_path / "a.log")
    client: Any = Daemon(mnt / "root", tmp_path / "a.sock", proc, tmp_path / "a.log").client()
    client.api.import_image_from_data(rootfs_tar.read_bytes(), repository="busybox", tag="latest")
    client.api.tag(IMAGE, "durable", "v1")
    client.volumes.create("vol")
    cid = client.api.create_container(
        IMAGE,
        ["sh", "-c", "echo kept > /data/f; cat /data/f; hostname"],
        name="kept",
        hostname="kept",
        host_config=client.api.create_host_config(binds=["vol:/data"]),
    )["Id"]
    # a forced removal of a running container: its row's removal is acknowledged
    # (committed without its own fsync, the answer waits for a shared one: issue 18)
    gone = client.containers.run(IMAGE, ["sleep", "1d"], name="gone", detach=True,
                                 network_mode="none")
    gone.remove(force=True)
    client.close()

    # The cut: the device as it is now, whatever the page cache still holds.
    cut = tmp_path / "cut.img"
    _run("cp", "--sparse=always", str(img), str(cut))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    kill_holder(mnt / "root")  # a power cut ends the container holder too
    _run("umount", str(mnt))

    _run("mount", "-o", "loop", str(cut), str(mnt))  # at the same place: records hold paths
    root = mnt / "root"
    proc = start_daemon(root, tmp_path / "b.sock", tmp_path / "b.log")
    d = Daemon(root, tmp_path / "b.sock", proc, tmp_path / "b.log")
    client = d.client()
    try:
        tags = sorted(t for i in client.images.list() for t in i.tags)
        assert tags == ["busybox:latest", "durable:v1"]
        index = json.loads((root / "images" / "index.json").read_text())
        names = {m["annotations"]["org.opencontainers.image.ref.name"] for m in index["manifests"]}
        assert names == {"latest", "v1"}
        assert [v.name for v in client.volumes.list()] == ["vol"]
        c = client.containers.get("kept")
        assert c.id == cid
        assert [x.name for x in client.containers.list(all=True)] == ["kept"]
        c.start()
        assert c.wait(timeout=60)["StatusCode"] == 0
        assert c.logs() == b"kept\nkept\n"
        out = client.containers.run(IMAGE, ["sh", "-c", "ls /bin | wc -l"], remove=True)
        assert int(out) > 100, "the layer came back without its files"
    finally:
        _clean_up(client, proc, root)


def test_a_power_cut_keeps_a_start_once_acknowledged(
    loop_fs: tuple[Path, Path], rootfs_tar: Path, tmp_path: Path
) -> None:
    """The start's record commits without its own fsync; the WAL is synced in a worker
    thread while runc's init is released, and the answer waits for it (issue 18): a
    cut right after `start` answered finds the container started, not `created`."""
    img, mnt = loop_fs
    proc = start_daemon(mnt / "root", tmp_path / "a.sock", tmp_path / "a.log")
    client: Any = Daemon(mnt / "root", tmp_path / "a.sock", proc, tmp_path / "a.log").client()
    client.api.import_image_from_data(rootfs_tar.read_bytes(), repository="busybox", tag="latest")
    cid = client.api.create_container(
        IMAGE, ["sleep", "1d"], name="started",
        host_config=client.api.create_host_config(network_mode="none"),
    )["Id"]  # fmt: skip
    client.api.start(cid)
    pid = client.api.inspect_container(cid)["State"]["Pid"]
    client.close()

    cut = tmp_path / "cut.img"
    _run("cp", "--sparse=always", str(img), str(cut))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    kill_holder(mnt / "root")  # the cut ends the holder and the container, and
    os.kill(pid, signal.SIGKILL)  # takes its mounts: the old device is let go
    for target in _mounts_under(mnt / "root"):
        _run("umount", target)
    _run("umount", str(mnt))

    _run("mount", "-o", "loop", str(cut), str(mnt))
    root = mnt / "root"
    proc = start_daemon(root, tmp_path / "b.sock", tmp_path / "b.log")
    d = Daemon(root, tmp_path / "b.sock", proc, tmp_path / "b.log")
    client = d.client()
    try:
        state = client.api.inspect_container(cid)["State"]
        assert state["Status"] == "exited"  # it ran; the cut ended it
        assert not state["StartedAt"].startswith("0001-")
        client.api.start(cid)  # and it starts again
        assert client.api.inspect_container(cid)["State"]["Running"]
    finally:
        _clean_up(client, proc, root)
