"""One daemon per socket and per root: commands wait for a daemon that is starting
instead of starting a second one, a second daemon refuses naming the first, and the CLI
starts a daemon only where the root it would use is plain (CORRAL_NO_AUTOSTART=1: never).
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from conftest import IMAGE, Daemon, cgroup_parent

from supervisor import daemonlock
from supervisor.api.client import DaemonUnavailable
from supervisor.cli.autostart import autostart_refusal, start_daemon
from supervisor.cli.context import CliError

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="locks and daemons need root")


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "supervisor", *args],
        env=env, capture_output=True, text=True, timeout=120,
    )


def started_pids(stderr: str) -> list[int]:
    """Daemons a command says it started (killed at the end, should a test fail)."""
    return [int(p) for p in re.findall(r"started one in the background \(pid (\d+)", stderr)]


def other_root_config(tmp_path: Path) -> dict[str, str]:
    """The environment of a user whose default daemon root is elsewhere: a daemon the CLI
    started without CORRAL_ROOT would use `other-root` (and no metrics port)."""
    conf = tmp_path / "daemon.yaml"
    conf.write_text(f"root: {tmp_path / 'other-root'}\nmetrics-addr: ''\n")
    return {"CORRAL_CONFIG": str(conf)}


@pytest.fixture
def reaper() -> Iterator[list[int]]:
    """Pids of daemons a test may have started by mistake: killed at its end."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def test_autostart_rule_like_docker() -> None:
    """Started only where the root is plain: the default socket, or CORRAL_ROOT given."""
    default = "unix:///run/corral/corral.sock"
    assert autostart_refusal(default, {}) is None
    assert autostart_refusal("/run/corral/corral.sock", {}) is None
    assert autostart_refusal("unix:///tmp/x.sock", {"CORRAL_ROOT": "/tmp/r"}) is None
    assert "CORRAL_ROOT" in (autostart_refusal("unix:///tmp/x.sock", {}) or "")
    for on in ("1", "true", "YES"):
        refusal = autostart_refusal(default, {"CORRAL_NO_AUTOSTART": on})
        assert refusal and f"CORRAL_NO_AUTOSTART={on}" in refusal
    assert autostart_refusal(default, {"CORRAL_NO_AUTOSTART": "0"}) is None
    with pytest.raises(CliError, match="CORRAL_NO_AUTOSTART='maybe': expected 1 or 0"):
        autostart_refusal(default, {"CORRAL_NO_AUTOSTART": "maybe"})


@needs_root
def test_no_autostart_gives_dockers_connect_error(tmp_path: Path, reaper: list[int]) -> None:
    sock = tmp_path / "run" / "d.sock"
    env = dict(os.environ, CORRAL_HOST=f"unix://{sock}", CORRAL_ROOT=str(tmp_path / "root"),
               CORRAL_NO_AUTOSTART="1")
    ps, run = cli(env, "ps"), cli(env, "run", "--rm", IMAGE, "true")
    reaper += started_pids(ps.stderr + run.stderr)
    message = (f"corral: Cannot connect to the corral daemon at unix://{sock}. Is the corral "
               "daemon running? (none answers, and CORRAL_NO_AUTOSTART=1 keeps corral from "
               "starting one)\n")
    # docker's exit codes: 1, and 125 for run (docker create: 1 as well)
    assert (ps.returncode, ps.stderr) == (1, message)
    assert (run.returncode, run.stderr) == (125, message)
    assert not sock.parent.exists() and not (tmp_path / "root").exists()


@needs_root
def test_custom_socket_without_root_starts_nothing(tmp_path: Path, reaper: list[int]) -> None:
    """CORRAL_HOST alone names no root: a daemon on the default one would show the user
    an empty engine, so none is started (docker starts none either)."""
    sock = tmp_path / "run" / "d.sock"
    env = dict(os.environ, CORRAL_HOST=f"unix://{sock}", **other_root_config(tmp_path))
    env.pop("CORRAL_ROOT", None)
    env.pop("CORRAL_NO_AUTOSTART", None)
    ps = cli(env, "ps")
    reaper += started_pids(ps.stderr)
    assert (ps.returncode, ps.stderr) == (1, (
        f"corral: Cannot connect to the corral daemon at unix://{sock}. Is the corral daemon "
        "running? (none answers; corral starts one by itself on a socket other than the "
        "default only when CORRAL_ROOT names its state root)\n"))
    assert not sock.parent.exists() and not (tmp_path / "other-root").exists()


@needs_root
def test_a_daemon_that_holds_the_socket_but_does_not_answer(
    tmp_path: Path, reaper: list[int]
) -> None:
    """Owner lock held, gate open, no answer: a daemon shutting down. No second one."""
    sock = tmp_path / "d.sock"
    owner_path, _ = daemonlock.socket_locks(str(sock))
    fd = daemonlock.open_lock(owner_path)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        daemonlock.write_pid(fd, 4321)
        env = dict(os.environ, CORRAL_HOST=f"unix://{sock}", CORRAL_ROOT=str(tmp_path / "r"))
        ps = cli(env, "ps")
        reaper += started_pids(ps.stderr)
    finally:
        os.close(fd)
    assert (ps.returncode, ps.stderr) == (1, (
        f"corral: Cannot connect to the corral daemon at unix://{sock}: its daemon (pid 4321) "
        "runs but does not answer (is it shutting down?)\n"))
    assert not (tmp_path / "r").exists()


@needs_root
def test_wait_for_a_starting_daemon_gives_up_after_the_timeout(tmp_path: Path) -> None:
    sock = tmp_path / "d.sock"
    _, gate_path = daemonlock.socket_locks(str(sock))
    fd = daemonlock.open_lock(gate_path)
    stderr = io.StringIO()
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        daemonlock.write_pid(fd, 4321)
        with pytest.raises(CliError) as info:
            start_daemon(f"unix://{sock}", stderr,
                         {"CORRAL_ROOT": str(tmp_path / "r")}, timeout=0.2)
    finally:
        os.close(fd)
    assert info.value.message == (
        f"Cannot connect to the corral daemon at unix://{sock}: the daemon (pid 4321) is "
        "still starting after 0.2 s (see its log)")
    assert not (tmp_path / "r").exists()


@needs_root
def test_without_a_gate_file_nothing_waits(tmp_path: Path) -> None:
    with pytest.raises(DaemonUnavailable, match="CORRAL_NO_AUTOSTART=1"):
        start_daemon(f"unix://{tmp_path}/d.sock", io.StringIO(), {"CORRAL_NO_AUTOSTART": "1"})
    assert list(tmp_path.iterdir()) == []


def daemon_argv(root: Path, sock: Path) -> list[str]:
    return [sys.executable, "-m", "supervisor.daemon", "--root", str(root), "--host",
            f"unix://{sock}", "--log-level", "debug", "--cgroup-parent", cgroup_parent(root),
            "--metrics-addr", ""]


def start_until_locked(root: Path, sock: Path, log: Path) -> subprocess.Popen[bytes]:
    """Start a daemon and return once it holds its locks, long before it listens.

    Its log line `daemon.starting`, read from a pipe (60 s at most), says it has them;
    the rest of its log is copied to `log`.
    """
    proc = subprocess.Popen(daemon_argv(root, sock), stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    fd = proc.stderr.fileno()
    seen = b""
    deadline = time.monotonic() + 60
    while b"daemon.starting" not in seen:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        chunk = os.read(fd, 65536) if ready else b""
        if not chunk:
            proc.kill()
            proc.wait()
            raise AssertionError(f"no daemon.starting in the daemon's log: {seen.decode()}")
        seen += chunk
    logf = log.open("ab")
    logf.write(seen)

    def copy() -> None:
        with logf:
            shutil.copyfileobj(proc.stderr, logf)  # type: ignore[misc]

    threading.Thread(target=copy, daemon=True).start()
    return proc


def daemons_on(sock: Path) -> list[int]:
    """Pids of corral daemons whose command line names this socket."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"unix://{sock}".encode() in argv and (b"supervisor.daemon" in argv
                                                  or b"daemon" in argv):
            found.append(int(entry.name))
    return found


@needs_root
def test_commands_wait_for_a_recovering_daemon_and_start_no_second(
    private_daemon: Any, rootfs_tar: Path, tmp_path: Path, reaper: list[int]
) -> None:
    d: Daemon = private_daemon()
    client = d.client()
    client.api.import_image_from_data(rootfs_tar.read_bytes(), repository="busybox", tag="latest")
    ids = sorted(client.containers.run(IMAGE, ["sleep", "1d"], detach=True).id for _ in range(6))
    client.close()
    d.proc.send_signal(signal.SIGKILL)  # leaves the socket file and six containers to recover
    d.proc.wait()

    restarted = start_until_locked(d.root, d.sock, d.log)
    try:
        # Commands from users who set only CORRAL_HOST (whose default root is elsewhere)
        # and from users who set CORRAL_ROOT too, all while the daemon recovers.
        host_only = dict(os.environ, CORRAL_HOST=d.host, **other_root_config(tmp_path))
        host_only.pop("CORRAL_ROOT", None)
        both = dict(host_only, CORRAL_ROOT=str(d.root))
        envs = [host_only, both] * 3
        with ThreadPoolExecutor(len(envs)) as pool:
            results = list(pool.map(lambda env: cli(env, "ps", "-aq", "--no-trunc"), envs))
        for r in results:
            reaper.extend(started_pids(r.stderr))
        for r in results:
            assert r.returncode == 0, r.stderr
            assert sorted(r.stdout.split()) == ids  # the recovered root, not an empty one
            assert "started one" not in r.stderr
        assert daemons_on(d.sock) == [restarted.pid]
        assert restarted.poll() is None
        assert not (d.sock.parent / "corral-daemon.log").exists()
        assert not (tmp_path / "other-root").exists()
    finally:
        client = Daemon(root=d.root, sock=d.sock, proc=restarted, log=d.log).client()
        for c in client.containers.list(all=True):
            c.remove(force=True)
        client.close()
        restarted.send_signal(signal.SIGTERM)
        restarted.wait(timeout=60)


@needs_root
def test_second_daemon_refuses_naming_the_first(
    private_daemon: Any, tmp_path: Path, reaper: list[int]
) -> None:
    d: Daemon = private_daemon()
    same_root = subprocess.Popen(daemon_argv(d.root, tmp_path / "other.sock"),
                                 stderr=subprocess.PIPE, text=True)
    same_socket = subprocess.Popen(daemon_argv(tmp_path / "other-root", d.sock),
                                   stderr=subprocess.PIPE, text=True)
    reaper += [same_root.pid, same_socket.pid]
    _, root_err = same_root.communicate(timeout=60)
    _, sock_err = same_socket.communicate(timeout=60)
    assert (same_root.returncode, root_err) == (
        1, f"corral daemon: another corral daemon (pid {d.proc.pid}) is using root {d.root}\n")
    assert (same_socket.returncode, sock_err) == (1, (
        f"corral daemon: another corral daemon (pid {d.proc.pid}) is using socket "
        f"unix://{d.sock}\n"))
    # the first daemon is untouched: it still answers on its socket
    assert d.cli("ps", "-q").returncode == 0
    assert not (tmp_path / "other.sock").exists()
