"""A full disk is an error for the operation that needs space, never for the daemon
(issue 12, item 4).

The daemon's state root sits on a small tmpfs.  A container fills it with `dd` and
exits: the daemon must record the exit (with its exit code), keep answering, refuse
a create with Docker's "no space left on device" 500, leave nothing half made, start
again on the still full disk, and work as before once space is freed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from conftest import IMAGE, Daemon, _needs_root, assert_nothing_left, start_daemon, stop_daemon

SIZE = "64m"


def fill(path: Path) -> None:
    """Write `path` until the filesystem has no block left."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC  # full already
        return
    try:
        for size in (1 << 20, 4096):
            chunk = b"\0" * size
            try:
                while True:
                    os.write(fd, chunk)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)


class SmallDisk:
    def __init__(self, base: Path) -> None:
        self.fs = base / "fs"
        self.root = self.fs / "root"
        self.sock = base / "d.sock"
        self.log = base / "d.log"
        self.ballast = self.fs / "ballast"
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> Daemon:
        p = start_daemon(self.root, self.sock, self.log)
        self.procs.append(p)
        return Daemon(root=self.root, sock=self.sock, proc=p, log=self.log)


@contextlib.contextmanager
def mounted_small_disk(base: Path, options: str = "") -> Iterator[SmallDisk]:
    """A tmpfs of SIZE (and `options`, e.g. `nr_inodes=N`) for a daemon's root; at the
    end its containers are removed, its daemons stopped, nothing is left, unmounted."""
    _needs_root()
    disk = SmallDisk(base)
    disk.fs.mkdir()
    opts = f"size={SIZE},mode=0700" + (f",{options}" if options else "")
    subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(disk.fs)], check=True)
    try:
        yield disk
    finally:
        disk.ballast.unlink(missing_ok=True)
        if disk.procs and all(p.poll() is not None for p in disk.procs) and (
            disk.root / "holder.sock"
        ).exists():
            disk.start()  # containers outlived a daemon that died: one to remove them
        for p in disk.procs:
            if p.poll() is None:
                client = docker.DockerClient(base_url=f"unix://{disk.sock}", version="1.44")
                for c in client.containers.list(all=True):
                    c.remove(force=True, v=True)
                client.close()
                stop_daemon(p)
        assert_nothing_left(disk.root)
        subprocess.run(["umount", str(disk.fs)], check=True)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[SmallDisk]:
    with mounted_small_disk(tmp_path) as disk:
        yield disk


def states(client: Any) -> dict[str, tuple[str, int]]:
    out = {}
    for c in client.api.containers(all=True):
        st = client.api.inspect_container(c["Id"])["State"]
        out[c["Names"][0].lstrip("/")] = (st["Status"], st["ExitCode"])
    return out


def test_full_disk_fails_operations_not_the_daemon(
    small_disk: SmallDisk, rootfs_tar: Path
) -> None:
    d = small_disk.start()
    client = d.client()
    client.api.import_image_from_data(rootfs_tar.read_bytes(), repository="busybox", tag="latest")
    waiter = client.containers.run(IMAGE, ["sleep", "1d"], name="waiter", detach=True)
    client.containers.run(  # started again at boot, on the full disk
        IMAGE, ["sleep", "1d"], name="always", detach=True, restart_policy={"Name": "always"}
    )

    # A container fills the disk and exits: the exit is recorded, the daemon lives.
    filler = client.containers.run(
        IMAGE, ["sh", "-c", "dd if=/dev/zero of=/fill bs=1M; exit 3"], name="filler", detach=True
    )
    assert filler.wait(timeout=120)["StatusCode"] == 3
    assert d.proc.poll() is None, "the daemon died on a full disk"
    assert client.ping()
    assert states(client)["filler"] == ("exited", 3)
    filler.logs()  # what the json-file log kept (it drops what it cannot write)

    # No room at all now (the reserve, if the exit needed it, is gone too).
    fill(small_disk.ballast)
    assert client.ping()
    with pytest.raises(docker.errors.APIError) as err:
        client.containers.create(IMAGE, ["true"], name="nospace")
    assert err.value.response.status_code == 500
    assert "no space left on device" in str(err.value.explanation).lower()
    assert "nospace" not in states(client), "a failed create left a container"
    assert sorted(os.listdir(d.root / "containers")) == sorted(
        c.id for c in client.containers.list(all=True)
    ), "a failed create left its directory"
    with pytest.raises(docker.errors.APIError, match="(?i)no space left on device"):
        client.volumes.create("nospace")

    # An exit on the full disk is known at once, and written once there is room.
    waiter.kill()
    assert waiter.wait(timeout=60)["StatusCode"] == 137
    assert d.proc.poll() is None
    assert states(client)["waiter"] == ("exited", 137)
    small_disk.ballast.unlink(missing_ok=True)
    client.volumes.create("room")  # a write that succeeds carries the held ones
    small_disk.ballast.unlink(missing_ok=True)

    # A restart on a full disk starts, with every exit as it was recorded.
    fill(small_disk.ballast)
    stop_daemon(d.proc)
    d = small_disk.start()
    client = d.client()
    assert client.ping()
    assert d.proc.poll() is None, "a boot start on the full disk ended the daemon"
    got = states(client)
    assert got["filler"] == ("exited", 3)
    assert got["waiter"] == ("exited", 137)
    assert [v.name for v in client.volumes.list()] == ["room"]

    # Space back: everything works again.
    small_disk.ballast.unlink(missing_ok=True)
    client.containers.get("filler").remove()
    client.volumes.get("room").remove()
    ran = client.containers.run(IMAGE, ["sh", "-c", "echo ok"], name="after", detach=True)
    assert ran.wait(timeout=60)["StatusCode"] == 0
    assert ran.logs() == b"ok\n"
    client.close()
