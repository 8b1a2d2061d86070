"""Live restore (issue 17): containers outlive their daemon.

The daemon of each test is private (`private_daemon`), killed with SIGKILL (or
stopped with `--live-restore`) and started again on the same root.  What a user
sees afterwards: the same containers running with the same PIDs, every numbered
line a writer wrote (the daemon away or not) in its log once and in order, the
published port answering, health checks and restart policies going on, an event
saying how many containers were restored, nothing left once they are removed.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path
from typing import Any

import docker.errors
import pytest
from conftest import (
    Daemon,
    assert_nothing_left,
    holder_pid,
    kill_holder,
    start_daemon,
    stop_daemon,
)

IMAGE = "busybox:latest"
MS = 1_000_000
# Each line numbered; 2 ms apart, so lines are written while no daemon runs.
WRITER = 'i=0; while :; do i=$((i+1)); echo "line $i"; usleep 2000; done'


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0] != "Z"
    except OSError:
        return False


def _load(d: Daemon, rootfs_tar: Path) -> Any:
    client = d.client()
    client.api.import_image_from_data(rootfs_tar.read_bytes(), repository="busybox", tag="latest")
    return client


def _kill_9(d: Daemon) -> None:
    d.proc.send_signal(signal.SIGKILL)
    d.proc.wait()


def _numbers(client: Any, name: str) -> list[int]:
    text = client.containers.get(name).logs(stdout=True, stderr=False).decode()
    return [int(line.split()[1]) for line in text.splitlines()]


def _ask(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        out = b""
        while chunk := s.recv(4096):
            out += chunk
    return out


def _served(port: int, want: bytes) -> bool:
    """httpd starts after its container does (no event says when it listens): a
    client cut before it listens is retried, bounded."""
    deadline = time.monotonic() + 20
    while True:
        try:
            answer = _ask(port)
        except ConnectionError:
            answer = b""  # the relay closes a client the upstream refused
        if answer or time.monotonic() > deadline:
            return want in answer


def _wait_event(client: Any, since: float, **filters: Any) -> dict[str, Any]:
    for e in client.events(since=since, until=time.time() + 30, decode=True, filters=filters):
        return dict(e)
    raise AssertionError(f"no event {filters} within 30 s")


def test_kill_9_keeps_containers_running_with_their_pids_logs_and_ports(
    private_daemon: Any, rootfs_tar: Path
) -> None:
    d = private_daemon()
    client = _load(d, rootfs_tar)
    writer = client.containers.run(IMAGE, ["sh", "-c", WRITER], name="writer", detach=True)
    web = client.containers.run(
        IMAGE,
        ["sh", "-c", "mkdir -p /www && echo hello-web > /www/index.html && "
                     "exec httpd -f -p 80 -h /www"],
        name="web", detach=True, ports={"80/tcp": ("127.0.0.1", None)},
    )
    port = int(client.api.port(web.id, 80)[0]["HostPort"])
    assert _served(port, b"hello-web")
    pids = {c.name: c.attrs["State"]["Pid"] for c in client.containers.list()}
    before = _numbers(client, "writer")
    client.close()
    _kill_9(d)
    # The daemon is gone; the containers are not.
    assert all(_alive(p) for p in pids.values())
    # The published port is still held: a connection made now waits in its backlog
    # and is answered once a daemon is back.
    waiting = socket.create_connection(("127.0.0.1", port), timeout=30)
    waiting.sendall(b"GET / HTTP/1.0\r\n\r\n")

    t0 = time.time()
    d2 = private_daemon()
    client = d2.client()
    restored = _wait_event(client, t0 - 5, type="daemon", event="restore")
    assert restored["Actor"]["Attributes"]["containers"] == "2"
    now = {c.name: c.attrs["State"]["Pid"] for c in client.containers.list()}
    assert now == pids  # the same processes, running
    assert client.containers.get("writer").attrs["State"]["Status"] == "running"
    answer = b""
    while chunk := waiting.recv(4096):
        answer += chunk
    waiting.close()
    assert b"hello-web" in answer
    assert b"hello-web" in _ask(port)
    assert client.info()["LiveRestoreEnabled"] is False  # not asked for: only crashes
    # Logs go on where they stopped: every line once, in order, through the kill.
    writer = client.containers.get("writer")
    writer.stop(timeout=0)
    assert writer.attrs["State"]["Pid"] == pids["writer"]
    lines = _numbers(client, "writer")
    assert lines[: len(before)] == before
    assert lines == list(range(1, len(lines) + 1))
    assert len(lines) > len(before)
    for c in client.containers.list(all=True):
        c.remove(force=True)
    client.close()


def test_an_exit_while_the_daemon_is_away_is_recorded_and_its_policy_obeyed(
    private_daemon: Any, rootfs_tar: Path
) -> None:
    d = private_daemon()
    client = _load(d, rootfs_tar)
    # Ends (code 3) only once the daemon is gone: it waits for the file the test makes.
    gate = d.root.parent / "gate"
    gate.mkdir()
    client.containers.run(
        IMAGE, ["sh", "-c", "while [ ! -e /gate/go ]; do usleep 10000; done; echo bye; exit 3"],
        name="quitter", detach=True, volumes={str(gate): {"bind": "/gate", "mode": "rw"}},
    )
    looper = client.containers.run(
        IMAGE, ["sh", "-c", "echo run; exit 1"], name="looper", detach=True,
        restart_policy={"Name": "always"},
    )
    client.close()
    _kill_9(d)
    (gate / "go").touch()
    t0 = time.time()
    d2 = private_daemon()
    client = d2.client()
    died = _wait_event(client, t0 - 5, type="container", event="die",
                       container="quitter")
    assert died["Actor"]["Attributes"]["exitCode"] == "3"
    q = client.containers.get("quitter")
    assert q.attrs["State"]["Status"] == "exited"
    assert q.attrs["State"]["ExitCode"] == 3
    assert q.logs() == b"bye\n"
    # The crash loop goes on under the new daemon.
    _wait_event(client, time.time(), type="container", event="start", container=looper.id)
    for c in client.containers.list(all=True):
        c.remove(force=True)
    client.close()


def test_health_checks_resume_after_a_kill_9(private_daemon: Any, rootfs_tar: Path) -> None:
    d = private_daemon()
    client = _load(d, rootfs_tar)
    c = client.containers.run(
        IMAGE, ["sleep", "1d"], name="checked", detach=True,
        healthcheck={"test": ["CMD", "true"], "interval": 100 * MS},
    )
    _wait_event(client, time.time() - 30, type="container", container=c.id,
                event="health_status: healthy")
    client.close()
    _kill_9(d)
    d2 = private_daemon()
    client = d2.client()
    # A probe of the new daemon: the state goes back to starting, then healthy again.
    _wait_event(client, time.time(), type="container", container=c.id,
                event="health_status: healthy")
    assert client.containers.get(c.id).attrs["State"]["Health"]["Status"] == "healthy"
    client.containers.get(c.id).remove(force=True)
    client.close()


def test_sigterm_with_live_restore_leaves_containers_running(
    private_daemon: Any, rootfs_tar: Path
) -> None:
    d = private_daemon("--live-restore")
    client = _load(d, rootfs_tar)
    assert client.info()["LiveRestoreEnabled"] is True
    client.containers.run(IMAGE, ["sleep", "1d"], name="stays", detach=True)
    pid = client.containers.get("stays").attrs["State"]["Pid"]
    client.close()
    stop_daemon(d.proc)
    assert _alive(pid)
    d2 = private_daemon()
    client = d2.client()
    c = client.containers.get("stays")
    assert (c.status, c.attrs["State"]["Pid"]) == ("running", pid)
    client.close()
    # Without live restore a SIGTERM stops them, as before.
    stop_daemon(d2.proc)
    assert not _alive(pid)
    d3 = private_daemon()
    client = d3.client()
    assert client.containers.get("stays").status == "exited"
    client.containers.get("stays").remove()
    client.close()


def test_a_line_half_read_at_the_kill_is_logged_whole_once(
    private_daemon: Any, rootfs_tar: Path
) -> None:
    # The daemon has read the start of a line (attach shows it) when it is killed; the
    # rest comes while no daemon runs.  The line is logged whole, once.
    d = private_daemon()
    client = _load(d, rootfs_tar)
    gate = d.root.parent / "gate"
    gate.mkdir()
    wait = "while [ ! -e /gate/{0} ]; do usleep 10000; done"
    c = client.containers.create(
        IMAGE,
        ["sh", "-c", f'{wait.format("a")}; printf "first "; {wait.format("b")}; '
                     'printf "half\\n"; echo second; exec sleep 1d'],
        name="halves", volumes={str(gate): {"bind": "/gate", "mode": "rw"}},
    )
    c.start()
    out = c.attach(stdout=True, stream=True, logs=False)
    (gate / "a").touch()
    seen = b""
    for chunk in out:
        seen += chunk
        if seen.endswith(b"first "):
            break  # read from the pipe by this daemon, held as the start of a line
    client.close()
    _kill_9(d)
    (gate / "b").touch()
    d = private_daemon()
    client = d.client()
    c = client.containers.get("halves")
    for line in c.logs(stream=True, follow=True):
        if b"second" in line:
            break
    assert c.logs() == b"first half\nsecond\n"
    c.remove(force=True)
    client.close()


def test_a_port_a_rollout_moved_answers_from_the_new_replica_after_kill_9(
    private_daemon: Any, rootfs_tar: Path
) -> None:
    """A rollout switches `web`'s published port to its new replica and ends (the old
    one removed); the daemon is then killed with SIGKILL.  After the restart the port
    still answers, from the new replica, which kept its PID."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    d = private_daemon()
    client = _load(d, rootfs_tar)

    def httpd(page: str) -> list[str]:
        return ["sh", "-c", f"mkdir -p /www && echo {page} > /www/index.html && "
                            "exec httpd -f -p 80 -h /www"]

    old = client.containers.run(IMAGE, httpd("replica-one"), name="web", detach=True,
                                ports={"80/tcp": ("127.0.0.1", port)})
    assert _served(port, b"replica-one")
    new = client.containers.create(
        IMAGE, httpd("replica-two"), name=f"{old.id[:12]}_web",
        ports={"80/tcp": ("127.0.0.1", port)},
        labels={"io.corral.rollout.successor-of": old.id},
    )
    body = {"From": old.id, "To": new.id, "Order": "start-first"}
    answer = client.api._post_json(client.api._url("/corral/rollouts"), data=body)
    answer.raise_for_status()
    rid = answer.json()["Id"]
    new.start()
    client.api._post(client.api._url("/corral/rollouts/{0}/switch", rid),
                     params={"drain": 0}).raise_for_status()
    old.remove(force=True)  # as the rollout executor does (stop_old, remove_old)
    client.api._post_json(client.api._url("/corral/rollouts/{0}/end", rid),
                          data={"Result": "succeeded"}).raise_for_status()
    assert [c.id for c in client.containers.list(all=True)] == [new.id]
    assert _served(port, b"replica-two")
    pid = client.containers.get(new.id).attrs["State"]["Pid"]
    client.close()
    _kill_9(d)
    assert _alive(pid)

    d = private_daemon()
    client = d.client()
    assert client.containers.get(new.id).attrs["State"]["Pid"] == pid
    assert b"replica-two" in _ask(port)
    client.close()


def _follow_until(client: Any, name: str, count: int) -> None:
    """Block until the log holds `count` lines (a follow stream, not a sleep)."""
    seen = 0
    stream = client.containers.get(name).logs(stream=True, follow=True)
    try:
        for chunk in stream:
            seen += chunk.count(b"\n")
            if seen >= count:
                return
    finally:
        stream.close()
    raise AssertionError(f"{name}: the log ended at {seen} lines, before {count}")


def test_a_tty_containers_output_is_logged_once_in_order_across_kill_9(
    private_daemon: Any, rootfs_tar: Path
) -> None:
    """A `Tty` container's output goes through its pty: what it wrote while the
    daemon was killed, and the line it was half way through, are logged once, in order."""
    d = private_daemon()
    client = _load(d, rootfs_tar)
    # Each line written in two halves 20 ms apart: a kill finds one half-logged.
    halves = 'i=0; while :; do i=$((i+1)); printf "line $i"; usleep 20000; echo; done'
    client.containers.run(IMAGE, ["sh", "-c", halves], name="tty", tty=True, detach=True)
    _follow_until(client, "tty", 5)
    pid = client.containers.get("tty").attrs["State"]["Pid"]
    client.close()
    _kill_9(d)
    assert _alive(pid)

    t0 = time.time()
    d = private_daemon()
    client = d.client()
    _wait_event(client, t0 - 5, type="daemon", event="restore")
    total = len(client.containers.get("tty").logs().splitlines())
    _follow_until(client, "tty", total + 5)
    tty = client.containers.get("tty")
    tty.stop(timeout=0)
    assert tty.attrs["State"]["Pid"] == pid
    lines = [line.rstrip(b"\r").decode() for line in tty.logs().splitlines()]
    assert lines == [f"line {n}" for n in range(1, len(lines) + 1)]
    tty.remove(force=True)
    client.close()


def test_a_kill_9_mid_restart_loop_recovers_with_one_root_mount(
    private_daemon: Any, rootfs_tar: Path
) -> None:
    # A zero-backoff loop keeps its root mounted between runs: a daemon killed there
    # leaves it mounted, and the next one must neither stack a second overlay on it
    # nor leave it behind.
    d = private_daemon()
    client = _load(d, rootfs_tar)
    t0 = time.time()
    looper = client.containers.run(
        IMAGE, ["sh", "-c", "echo run >> /runs; exit 1"], name="looper", detach=True,
        labels={"corral.restart.backoff": "0s,0s,0s"}, restart_policy={"Name": "always"},
    )
    dies = 0
    for _e in client.events(since=t0, until=time.time() + 90, decode=True,
                            filters={"container": looper.id, "event": "die"}):
        dies += 1
        if dies == 5:
            break
    assert dies >= 2, "the loop did not run"
    client.close()
    _kill_9(d)
    t1 = time.time()
    d2 = private_daemon()
    client = d2.client()
    started = client.events(since=t1, until=time.time() + 90, decode=True,
                            filters={"container": looper.id, "event": "start"})
    assert next(iter(started), None) is not None, "the loop did not go on"
    rootfs = str(d.root / "containers" / looper.id / "rootfs")
    mounts = [ln for ln in Path("/proc/self/mountinfo").read_text().splitlines()
              if ln.split()[4] == rootfs]
    assert len(mounts) <= 1  # running (or between two runs): one overlay at most
    stopped = client.containers.get("looper")
    stopped.update(restart_policy={"Name": "no"})  # the loop ends at its next exit
    stopped.wait(timeout=90)
    runs = b"".join(stopped.get_archive("/runs")[0])
    assert runs.count(b"run\n") > dies  # its writable layer kept across the kill
    assert looper.id not in Path("/proc/self/mountinfo").read_text()  # stopped: unmounted
    stopped.remove()
    client.close()


def test_a_state_root_too_deep_for_a_unix_socket_path_still_keeps_containers(
    tmp_path: Path, rootfs_tar: Path
) -> None:
    """`holder.sock` under a root deeper than sun_path's 108 bytes: the daemon used to
    exit with a traceback (`OSError: AF_UNIX path too long`); now it starts, and a kill -9
    still leaves its container to the holder, reached again by the next daemon."""
    root = tmp_path / ("deep-" + "r" * 110) / "root"
    assert len(str(root / "holder.sock")) > 108
    sock, log = tmp_path / "d.sock", tmp_path / "d.log"
    procs = []
    try:
        procs.append(start_daemon(root, sock, log))
        d = Daemon(root=root, sock=sock, proc=procs[-1], log=log)
        client = _load(d, rootfs_tar)
        client.containers.run(IMAGE, ["sleep", "1d"], name="deep", detach=True)
        pid = client.containers.get("deep").attrs["State"]["Pid"]
        client.close()
        assert holder_pid(root) is not None
        _kill_9(d)
        assert _alive(pid)
        procs.append(start_daemon(root, sock, log))
        client = Daemon(root=root, sock=sock, proc=procs[-1], log=log).client()
        c = client.containers.get("deep")
        assert (c.status, c.attrs["State"]["Pid"]) == ("running", pid)
        c.remove(force=True)
        client.close()
    finally:
        for p in procs:
            if p.poll() is None:
                stop_daemon(p)
        kill_holder(root)
    assert "Traceback" not in log.read_text()
    assert not _alive(pid)
    assert_nothing_left(root)


def test_containers_keep_the_daemons_scheduling_policy_while_the_holder_runs_batch(
    private_daemon: Any, rootfs_tar: Path
) -> None:
    """The holder is SCHED_BATCH (a request wakes it without preempting the daemon),
    and neither runc nor a container inherits that: they run as the daemon does."""
    d = private_daemon()
    client = _load(d, rootfs_tar)
    client.containers.run(IMAGE, ["sleep", "1d"], name="policy", detach=True)
    pid = client.containers.get("policy").attrs["State"]["Pid"]
    # an exec'd process too: runc exec runs where runc create does
    child = client.containers.get("policy").exec_run(["cat", "/proc/self/sched"])
    holder = holder_pid(d.root)
    assert holder is not None and os.sched_getscheduler(holder) == os.SCHED_BATCH
    assert os.sched_getscheduler(pid) == os.sched_getscheduler(d.proc.pid) == os.SCHED_OTHER
    assert child.exit_code == 0
    policy = [line for line in child.output.decode().splitlines() if line.startswith("policy")]
    assert policy and policy[0].split()[-1] == str(os.SCHED_OTHER)
    client.containers.get("policy").remove(force=True)
    client.close()


def test_a_failed_start_leaves_the_record_as_it_was_across_a_kill_9(
    private_daemon: Any, rootfs_tar: Path, tmp_path: Path
) -> None:
    """A start that fails in runc create (its spools opened and the init's adoption
    asked for meanwhile, issue 18) leaves the record as it was: the container is
    `created` (or `exited`, as its last run left it) in the next daemon too, not
    `running` nor recovered as a crash (exit 255)."""
    d = private_daemon()
    client = _load(d, rootfs_tar)
    fresh = client.containers.create(IMAGE, ["nosuch"], name="fresh")
    src = tmp_path / "src"
    src.mkdir()
    ran = client.containers.run(IMAGE, ["true"], name="ran", detach=True,
                                volumes={str(src): {"bind": "/src", "mode": "rw"}})
    assert ran.wait(timeout=60)["StatusCode"] == 0
    ran.reload()
    last_run = ran.attrs["State"]
    src.rmdir()  # its next start cannot mount it: a file over the directory it made
    src.write_text("a file now\n")
    for c in (fresh, ran):
        with pytest.raises(docker.errors.APIError):
            c.start()
    client.close()
    _kill_9(d)

    client = private_daemon().client()
    fresh_state = client.containers.get("fresh").attrs["State"]
    assert (fresh_state["Status"], fresh_state["Pid"]) == ("created", 0)
    assert fresh_state["StartedAt"].startswith("0001-")
    assert "nosuch" in fresh_state["Error"]
    ran_state = client.containers.get("ran").attrs["State"]
    assert (ran_state["Status"], ran_state["Pid"]) == ("exited", 0)
    assert ran_state["StartedAt"] == last_run["StartedAt"]
    assert ran_state["FinishedAt"] == last_run["FinishedAt"]
    client.close()
