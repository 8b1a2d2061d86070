"""`corral daemon --services DIR`: files there are brought up at boot and followed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import _needs_root, assert_nothing_left, cgroup_parent, cleanup

SERVICE = (
    "services:\n  web:\n    image: busybox\n    command: [sleep, '1000']\n"
    "    stop_grace_period: 1s\n"
)


@pytest.fixture
def services_daemon(tmp_path: Path, rootfs_tar: Path) -> Iterator[tuple[Path, Any, int]]:
    _needs_root()
    root, sock, sdir = tmp_path / "root", tmp_path / "d.sock", tmp_path / "services"
    sdir.mkdir()
    (sdir / "a.yaml").write_text(SERVICE)
    r, w = os.pipe()
    with (tmp_path / "daemon.log").open("ab") as logf:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "supervisor.daemon",
                "--root",
                str(root),
                "--host",
                f"unix://{sock}",
                "--ready-fd",
                str(w),
                "--cgroup-parent",
                cgroup_parent(root),
                "--services",
                str(sdir),
            ],
            stdin=subprocess.DEVNULL,
            stdout=logf,
            stderr=logf,
            pass_fds=(w,),
        )
    os.close(w)
    with os.fdopen(r, "rb") as ready:
        assert ready.readline().strip() == b"ready", (tmp_path / "daemon.log").read_text()
    import docker

    client = docker.DockerClient(base_url=f"unix://{sock}", version="1.44", timeout=60)
    try:
        with rootfs_tar.open("rb") as f:
            client.api.import_image_from_data(f.read(), repository="busybox", tag="latest")
        yield sdir, client, proc.pid
    finally:
        cleanup(client)
        client.close()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        assert_nothing_left(root)


class Watch:
    """Subscribed to container events *before* the action that causes them."""

    def __init__(self, client: Any, action: str, timeout: float = 60) -> None:
        self.action = action
        self.events = client.events(
            decode=True, until=time.time() + timeout,
            filters={"event": action, "type": "container"},
        )  # fmt: skip

    def until(self, *names: str) -> None:
        """Block until each of `names` had the event; the stream ends at the deadline,
        and then the test fails naming the ones that never had it."""
        left = set(names)
        try:
            for e in self.events:
                left.discard((e.get("Actor") or {}).get("Attributes", {}).get("name"))
                if not left:
                    return
        finally:
            self.events.close()
        raise AssertionError(f"no {self.action} event for {sorted(left)} before the deadline")


def test_services_directory_is_reconciled_at_boot_and_on_change(
    services_daemon: tuple[Path, Any, int],
) -> None:
    sdir, client, pid = services_daemon
    started = Watch(client, "start")
    os.kill(pid, signal.SIGHUP)  # the image was imported after boot: SIGHUP reloads
    started.until("a-web-1")
    web = client.containers.get("a-web-1")
    assert web.labels["com.docker.compose.project"] == "a"

    started = Watch(client, "start")
    (sdir / "b.yaml").write_text("services:\n  web:\n    imagee: busybox\n")  # invalid
    (sdir / "a.yaml").write_text(SERVICE + "    scale: 2\n")
    started.until("a-web-2")
    assert client.containers.get("a-web-1").id == web.id  # unchanged: untouched
    assert [c.name for c in client.containers.list(all=True) if c.name.startswith("b-")] == []

    destroyed = Watch(client, "destroy")
    (sdir / "a.yaml").unlink()
    destroyed.until("a-web-1", "a-web-2")
    assert client.containers.list(all=True) == []
