"""An `--rm` container's root is a volatile overlay (as Podman mounts those): its upper
goes with the container, so nothing of it is ever synced, and its exit does not wait
for the unmount's sync of the host filesystem.  Every other container keeps Docker's
plain overlay.  A volatile upper leaves a mark the kernel refuses to mount again;
the container's next mount (a start cut short by a crash, a `cp` view) clears it,
and a daemon or holder gone meanwhile still ends with the container removed.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import docker
import pytest
from conftest import Daemon, kill_holder

from supervisor.runtime.rootfs import mount_overlay, unmount, volatile_mark

IMAGE = "busybox:latest"


def _super_options(target: Path) -> set[str]:
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split(" ")
        if fields[4] == str(target):
            return set(line.split(" - ", 1)[1].split(" ")[2].split(","))
    raise AssertionError(f"{target} is not mounted")


def _is_volatile(options: set[str]) -> bool:
    return "volatile" in options or "fsync=volatile" in options  # the latter from 6.6


def test_a_volatile_overlay_mounts_again_after_its_unmount(tmp_path: Path) -> None:
    base, upper, work, merged = (tmp_path / n for n in ("base", "up", "wk", "m"))
    for d in (base, upper, work, merged):
        d.mkdir()
    (base / "a").write_text("base")
    for _ in range(2):  # the mark the first one leaves does not stop the second
        mount_overlay([base], upper, work, merged, volatile=True)
        try:
            assert _is_volatile(_super_options(merged))
            (merged / "b").write_text("new")
        finally:
            unmount(merged)
        assert volatile_mark(work).is_dir()
    assert (upper / "b").read_text() == "new"
    mount_overlay([base], upper, work, merged, host_only=True, volatile=True)  # a cp view
    unmount(merged)


def _root_options(mounts: str) -> set[str]:
    line = next(line for line in mounts.splitlines() if line.split(" ")[1] == "/")
    return set(line.split(" ")[3].split(","))


def test_only_an_rm_containers_root_is_volatile(corral: Daemon) -> None:
    removed = corral.cli("run", "--rm", IMAGE, "cat", "/proc/mounts")
    assert removed.returncode == 0
    assert _is_volatile(_root_options(removed.stdout))
    kept = corral.cli("run", "--name", "kept", IMAGE, "cat", "/proc/mounts")
    assert kept.returncode == 0
    assert not _is_volatile(_root_options(kept.stdout))


def test_an_rm_container_whose_upper_carries_the_mark_starts(dk: Any) -> None:
    """What a start cut short (a kill -9 after the mount) leaves: the next start mounts."""
    c = dk.containers.create(IMAGE, ["echo", "ran"], auto_remove=True)
    work = Path(c.attrs["GraphDriver"]["Data"]["WorkDir"])
    mark = volatile_mark(work)
    mark.mkdir(parents=True)
    (mark / "dirty").touch()
    t0 = time.time()
    c.start()
    died = _event(dk, t0 - 1, c.id, "die")
    assert died["Actor"]["Attributes"]["exitCode"] == "0"
    _event(dk, t0 - 1, c.id, "destroy")
    with pytest.raises(docker.errors.NotFound):
        dk.containers.get(c.id)
    assert not work.exists()


def _event(client: Any, since: float, cid: str, action: str) -> dict[str, Any]:
    for e in client.events(since=since, until=time.time() + 30, decode=True,
                           filters={"type": "container", "event": action, "container": cid}):
        return dict(e)
    raise AssertionError(f"no {action} event of {cid[:12]} within 30 s")


def _load(d: Daemon, rootfs_tar: Path) -> Any:
    client = d.client()
    client.api.import_image_from_data(rootfs_tar.read_bytes(), repository="busybox", tag="latest")
    return client


@pytest.mark.parametrize("holder_too", [False, True], ids=["live-restore", "reboot"])
def test_an_rm_container_is_removed_after_a_kill_9(
    private_daemon: Any, rootfs_tar: Path, holder_too: bool
) -> None:
    """Its exit while no daemon ran (or its end with the holder, as at a reboot) is
    finished by the next daemon: removed, its volatile root unmounted, nothing left."""
    d = private_daemon()
    client = _load(d, rootfs_tar)
    gate = d.root.parent / "gate"
    gate.mkdir()
    c = client.containers.run(
        IMAGE, ["sh", "-c", "while [ ! -e /gate/go ]; do usleep 10000; done"],
        auto_remove=True, detach=True, volumes={str(gate): {"bind": "/gate", "mode": "rw"}},
    )
    cdir = Path(c.attrs["GraphDriver"]["Data"]["UpperDir"]).parent
    assert _is_volatile(_super_options(cdir / "rootfs"))
    client.close()
    d.proc.send_signal(signal.SIGKILL)
    d.proc.wait()
    if holder_too:
        kill_holder(d.root)
    (gate / "go").touch()
    t0 = time.time()
    d2 = private_daemon()
    client = d2.client()
    _event(client, t0 - 5, c.id, "destroy")
    assert client.containers.list(all=True) == []
    assert not cdir.exists()
    client.close()
    assert str(d2.root) not in Path("/proc/self/mountinfo").read_text()

