"""Durable state: a daemon stopped or killed -9 comes back with every record, and
nothing of the previous run (process, mount, runc state, cgroup) is left alive.

Containers outlive a kill -9 of the daemon (live restore, tests/test_live_restore.py):
the tests here end the container holder too, as a reboot would, to see the clean-up
of a run nobody kept."""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path
from typing import Any

from conftest import Daemon, holder_pid, kill_holder, stop_daemon

IMAGE = "busybox:latest"
BOOTS = 8


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is not alive for our purposes.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0] != "Z"
    except OSError:
        return False


def _populate(d: Daemon, rootfs_tar: Path) -> tuple[Any, int]:
    client = d.client()
    client.api.import_image_from_data(rootfs_tar.read_bytes(), repository="busybox", tag="latest")
    client.volumes.create("keepme")
    cid = client.api.create_container(
        IMAGE,
        ["sleep", "1d"],
        name="survivor",
        stop_timeout=1,
        host_config=client.api.create_host_config(binds=["keepme:/data"]),
    )["Id"]
    client.api.start(cid)
    c = client.containers.get(cid)
    return client, c.attrs["State"]["Pid"]


def test_kill_9_then_restart_reports_exited_and_leaves_nothing(
    private_daemon: Any, rootfs_tar: Path
) -> None:
    d = private_daemon()
    client, pid = _populate(d, rootfs_tar)
    assert _alive(pid)
    d.proc.send_signal(signal.SIGKILL)
    d.proc.wait()
    kill_holder(d.root)
    client.close()

    d2 = private_daemon()
    client = d2.client()
    c = client.containers.get("survivor")
    st = c.attrs["State"]
    assert st["Status"] == "exited"
    assert "daemon" in st["Error"]
    assert not _alive(pid), "the container's process outlived the daemon restart"
    assert [i.tags for i in client.images.list()] == [[IMAGE]]
    assert client.volumes.get("keepme").name == "keepme"
    assert not (d2.root / "runc").exists() or list((d2.root / "runc").iterdir()) == []
    # The container is usable again: its writable layer and volume are intact.
    c.start()
    assert c.exec_run(["true"]).exit_code == 0
    c.remove(force=True)
    client.close()


def test_clean_stop_stops_containers_and_keeps_records(
    private_daemon: Any, rootfs_tar: Path
) -> None:
    d = private_daemon()
    client, pid = _populate(d, rootfs_tar)
    client.close()
    stop_daemon(d.proc)
    assert not _alive(pid)

    d2 = private_daemon()
    client = d2.client()
    c = client.containers.get("survivor")
    assert c.attrs["State"]["Status"] == "exited"
    assert c.attrs["State"]["ExitCode"] in (137, 143)
    c.remove(v=True)
    client.close()


def test_a_stop_waits_for_the_longest_stop_timeout_then_kills(
    private_daemon: Any, rootfs_tar: Path
) -> None:
    """As dockerd's ShutdownTimeout: a daemon's stop waits for the longest stop timeout
    of its containers (here 40 s, past the 30 s the daemon used to cut at, which left
    the container running with its mount and holder behind), kills what is left, and
    ends with nothing of it mounted or held."""
    d = private_daemon()
    client = d.client()
    client.api.import_image_from_data(rootfs_tar.read_bytes(), repository="busybox", tag="latest")
    # sleep as PID 1 ignores SIGTERM: only the SIGKILL after the timeout ends it.
    cid = client.api.create_container(IMAGE, ["sleep", "1d"], name="slow", stop_timeout=40)["Id"]
    client.api.start(cid)
    pid = client.containers.get(cid).attrs["State"]["Pid"]
    client.close()
    stop_daemon(d.proc, timeout=150)
    assert not _alive(pid), "the container outlived its daemon's stop"
    assert holder_pid(d.root) is None, "the holder outlived its daemon's stop"
    mounts = Path("/proc/self/mountinfo").read_text()
    assert str(d.root / "containers" / cid) not in mounts

    d2 = private_daemon()
    client = d2.client()
    st = client.containers.get(cid).attrs["State"]
    assert (st["Status"], st["ExitCode"]) == ("exited", 137)
    client.api.remove_container(cid)
    client.close()


def test_a_remove_at_boot_waits_for_the_boot_start_and_leaves_nothing(
    private_daemon: Any, rootfs_tar: Path
) -> None:
    """`corral down` right as a daemon boots (what scripts/demo does when it starts the
    daemon): the boot-time policy starts are in flight when the removals arrive.  Each
    removal waits for its container's start to end, so no init, published port, mount
    or directory is left (they were: the start went on under the removal)."""
    d = private_daemon()
    client = d.client()
    client.api.import_image_from_data(rootfs_tar.read_bytes(), repository="busybox", tag="latest")
    ports = []
    for i in range(BOOTS):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
        client.containers.run(IMAGE, ["sleep", "1d"], name=f"boot{i}", detach=True,
                              restart_policy={"Name": "always"},
                              ports={"80/tcp": ("127.0.0.1", ports[i])})
    client.close()
    stop_daemon(d.proc)

    d2 = private_daemon()
    client = d2.client()
    for i in reversed(range(BOOTS)):  # the last asked for are likeliest still starting
        client.api.remove_container(f"boot{i}", force=True)
    assert client.containers.list(all=True) == []
    client.close()
    assert list((d2.root / "containers").iterdir()) == []
    assert not (d2.root / "runc").exists() or list((d2.root / "runc").iterdir()) == []
    assert str(d2.root / "containers") not in Path("/proc/self/mountinfo").read_text()
    for port in ports:  # the published ports are free again
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", port))


def test_policies_decide_what_runs_again_after_kill_9(
    private_daemon: Any, rootfs_tar: Path
) -> None:
    import time

    d = private_daemon()
    client = d.client()
    client.api.import_image_from_data(rootfs_tar.read_bytes(), repository="busybox", tag="latest")
    run = {"detach": True, "command": ["sleep", "1d"]}
    client.containers.run(IMAGE, name="always", restart_policy={"Name": "always"}, **run)
    stopped = client.containers.run(
        IMAGE, name="always-stopped", restart_policy={"Name": "always"}, **run
    )
    client.containers.run(IMAGE, name="unless", restart_policy={"Name": "unless-stopped"}, **run)
    quiet = client.containers.run(
        IMAGE, name="unless-stopped-by-user", restart_policy={"Name": "unless-stopped"}, **run
    )
    client.containers.run(IMAGE, name="onfail", restart_policy={"Name": "on-failure"}, **run)
    client.containers.run(IMAGE, name="never", **run)
    stopped.stop(timeout=0)
    quiet.stop(timeout=0)
    client.close()
    d.proc.send_signal(signal.SIGKILL)
    d.proc.wait()
    kill_holder(d.root)

    t0 = time.time()
    d2 = private_daemon()
    client = d2.client()
    expected = {"always", "always-stopped", "unless"}
    started: set[str] = set()
    for e in client.events(
        since=t0,
        until=time.time() + 30,
        decode=True,
        filters={"type": "container", "event": "start"},
    ):
        started.add(e["Actor"]["Attributes"]["name"])
        if started >= expected:
            break
    assert started == expected  # as Docker: always (even user-stopped), unless-stopped
    states = {c.name: c.status for c in client.containers.list(all=True)}
    assert states == {
        "always": "running",
        "always-stopped": "running",
        "unless": "running",
        "unless-stopped-by-user": "exited",
        "onfail": "exited",
        "never": "exited",
    }
    for c in client.containers.list(all=True):
        c.remove(force=True)
    client.close()


def test_no_zombies_pile_up_under_the_daemon(daemon: Daemon, dk: Any) -> None:
    # The daemon is the subreaper: runc's own intermediate processes end up as its
    # children, and it must reap them (one per start otherwise, until pids run out).
    for _ in range(5):
        assert dk.containers.run(IMAGE, ["true"], remove=True) == b""
    assert dk.ping()  # one more turn of the daemon's loop after the last SIGCHLD

    def zombies() -> list[str]:
        found = []
        for task in Path(f"/proc/{daemon.proc.pid}/task").iterdir():
            for pid in (task / "children").read_text().split():
                try:
                    stat = Path(f"/proc/{pid}/stat").read_text()
                except OSError:
                    continue
                if stat[stat.rindex(")") + 2] == "Z":
                    found.append(stat[: stat.rindex(")") + 1])
        return found

    assert zombies() == []


def test_start_after_a_power_cut_remakes_what_create_did_not_fsync(
    private_daemon: Any, rootfs_tar: Path
) -> None:
    """A container's directories and /etc files and a volume's directory are made at
    create without fsync (issue 12, item 7: they are derived from the rows, which
    are durable); what a power cut took of them is made again at the next start."""
    import shutil

    d = private_daemon()
    client = d.client()
    client.api.import_image_from_data(rootfs_tar.read_bytes(), repository="busybox", tag="latest")
    client.volumes.create("kept")
    cid = client.api.create_container(
        IMAGE,
        ["sh", "-c", "hostname; grep -c localhost /etc/hosts; echo hi > /data/f; cat /data/f"],
        hostname="cut",
        host_config=client.api.create_host_config(binds=["kept:/data"]),
    )["Id"]
    client.close()
    stop_daemon(d.proc)

    cdir = d.root / "containers" / cid
    assert not (cdir / "init").exists()  # the init layer is the root's, shared
    for sub in ("upper", "work", "rootfs"):
        shutil.rmtree(cdir / sub)
    shutil.rmtree(d.root / "init-layer")
    (cdir / "hostname").unlink()
    (cdir / "hosts").write_bytes(b"")  # renamed in, its data never written
    shutil.rmtree(d.root / "volumes" / "kept")

    d2 = private_daemon()
    client = d2.client()
    c = client.containers.get(cid)
    c.start()
    assert c.wait(timeout=60)["StatusCode"] == 0
    assert c.logs() == b"cut\n2\nhi\n"
    # the init layer made again: runc found its mount points there, not in the upper
    # (the volume's mount point is the upper's, as in Docker)
    assert client.api.diff(cid) == [{"Path": "/data", "Kind": 1}]
    client.close()


def test_a_daemon_that_dies_of_a_fatal_signal_leaves_its_stack_in_its_log(
    private_daemon: Any,
) -> None:
    """A SIGSEGV (a C call gone wrong) or SIGBUS ends a process before any Python code
    can log: the daemon's log still names where it was (faulthandler), so a daemon that
    vanished is never a mystery, and the next daemon starts on its root as after kill -9."""
    d = private_daemon()
    d.proc.send_signal(signal.SIGSEGV)
    assert d.proc.wait(timeout=30) == -signal.SIGSEGV
    log = d.log.read_text()
    assert "Fatal Python error: Segmentation fault" in log, log[-2000:]
    assert "trio" in log.split("Fatal Python error: Segmentation fault", 1)[1]  # its stack
    d2 = private_daemon()
    assert d2.client().ping()


def test_another_process_reading_the_database_neither_crashes_the_daemon_nor_loses_writes(
    private_daemon: Any,
) -> None:
    """A user's `sqlite3 corral.db` (or a backup tool) opened while the daemon runs must
    see the daemon as a live connection: SQLite's locks on the -shm say so, and they are
    POSIX locks, dropped by any close of any fd of the file in the daemon's process.  Had
    the daemon dropped them, that reader would take itself for the only one: it would
    truncate the shared index under the daemon's mapping (SIGBUS) and, closing, checkpoint
    and delete the WAL the daemon still writes to (its later writes lost at restart)."""
    import sqlite3

    d = private_daemon()
    client = d.client()
    client.volumes.create("before")
    reader = sqlite3.connect(d.root / "corral.db", timeout=30)  # read-write, as the CLI
    assert reader.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    reader.close()  # a last connection would checkpoint and delete the WAL here
    assert (d.root / "corral.db-wal").exists()
    client.volumes.create("after")
    assert {"before", "after"} <= {v.name for v in client.volumes.list()}
    client.close()
    d.proc.kill()
    assert d.proc.wait(timeout=30) == -signal.SIGKILL  # it was alive until this kill
    d2 = private_daemon()
    assert {"before", "after"} <= {v.name for v in d2.client().volumes.list()}
