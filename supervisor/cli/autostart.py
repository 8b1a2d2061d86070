"""When no daemon answers: wait for one that is starting, or start one, so `corral run` just works.

Nothing here sleeps or polls. A daemon holds a start gate beside its socket from its
first step until its API listens (see daemonlock.py); a CLI that finds no answer blocks
on that gate (with a timeout), so commands run while a daemon recovers after a crash
wait for it instead of starting a second one. Holding the gate, the CLI starts a
daemon only if none owns the socket, and hands both locks to it. The started daemon's
readiness comes from a pipe: it gets the write end as `--ready-fd N` and writes one
line once it listens; if it dies first, the pipe closes and we read EOF.

docker's CLI starts no daemon at all; corral's starts one only where the user's
intent is plain: the default socket (the daemon then takes its root from its config
file or /var/lib/corral), or any socket when CORRAL_ROOT names the root. With
CORRAL_HOST alone the CLI cannot know the root the user's daemon uses, and a daemon
on the default root would show an empty engine. CORRAL_NO_AUTOSTART=1 starts nothing.
"""

from __future__ import annotations

import os
import sys

from supervisor import daemonlock
from supervisor.api.client import DEFAULT_HOST, DaemonUnavailable, socket_path
from supervisor.cli.context import CliError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import TextIO


# How long a command waits for a daemon that is starting (recovering many containers
# after a crash takes a while), and how long before it says it is waiting.
START_TIMEOUT = 60.0
_QUIET_WAIT = 1.0

_ON = ("1", "true", "yes")
_OFF = ("", "0", "false", "no")


def autostart_refusal(host: str, environ: Mapping[str, str]) -> str | None:
    """Why the CLI must not start a daemon for `host` (None: it may). Pure."""
    flag = environ.get("CORRAL_NO_AUTOSTART", "")
    if flag.lower() in _ON:
        return f"none answers, and CORRAL_NO_AUTOSTART={flag} keeps corral from starting one"
    if flag.lower() not in _OFF:
        raise CliError(f"CORRAL_NO_AUTOSTART={flag!r}: expected 1 or 0")
    if environ.get("CORRAL_ROOT") or socket_path(host) == socket_path(DEFAULT_HOST):
        return None
    return ("none answers; corral starts one by itself on a socket other than the default "
            "only when CORRAL_ROOT names its state root")


def daemon_command(
    host: str, ready_fd: int, lock_fds: tuple[int, int], environ: Mapping[str, str]
) -> list[str]:
    """The daemon's command line: same interpreter, same socket, same root."""
    cmd = [sys.executable, "-m", "supervisor", "daemon", "--host", host,
           "--ready-fd", str(ready_fd), "--lock-fds", f"{lock_fds[0]},{lock_fds[1]}"]
    root = environ.get("CORRAL_ROOT")
    if root:
        cmd += ["--root", root]
    return cmd


def _log_tail(path: str, lines: int = 5) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 4096))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    tail = [ln for ln in text.splitlines() if ln.strip()][-lines:]
    return "".join(f"\n  {ln}" for ln in tail)


def _answers(host: str) -> bool:
    from supervisor.api.client import Client

    try:
        Client(host).connect().close()
    except (DaemonUnavailable, OSError):
        return False
    return True


def _wait_for_gate(gate: int, host: str, owner_path: str, stderr: TextIO, timeout: float) -> None:
    """Block until no daemon is starting on `host` (the gate is ours), or raise CliError."""
    if daemonlock.try_lock(gate):
        return
    quiet = min(_QUIET_WAIT, timeout)
    if daemonlock.lock_within(gate, quiet):
        return
    pid = daemonlock.read_pid(gate) or daemonlock.pid_in(owner_path)
    who = f" (pid {pid})" if pid else ""
    stderr.write(f"corral: waiting for the corral daemon{who} at {host} to finish starting\n")
    stderr.flush()
    if not daemonlock.lock_within(gate, timeout - quiet):
        raise CliError(
            f"Cannot connect to the corral daemon at {host}: the daemon{who} is still "
            f"starting after {timeout:g} s (see its log)"
        )


def start_daemon(
    host: str,
    stderr: TextIO,
    environ: Mapping[str, str],
    command: Sequence[str] | None = None,
    timeout: float = START_TIMEOUT,
) -> None:
    """Called when nothing answers at `host`: return once a daemon listens there (one
    that was starting, or one started here), or raise DaemonUnavailable / CliError.

    `command` replaces the daemon's argv in tests; `{fd}` in it is replaced by the
    ready-pipe's descriptor.
    """
    path = socket_path(host)
    refusal = autostart_refusal(host, environ)
    if os.geteuid() != 0:  # the locks live in a root-only directory, as the socket does
        if refusal:
            raise DaemonUnavailable(host, refusal)
        raise CliError(
            f"Cannot connect to the corral daemon at {host}: none is running, and starting "
            "one needs root (run as root, or start it yourself with 'corral daemon')"
        )
    owner_path, gate_path = daemonlock.socket_locks(path)
    sockdir = os.path.dirname(path) or "."
    if refusal is None and not os.path.isdir(sockdir):
        os.makedirs(sockdir, mode=0o700)
    try:
        gate = daemonlock.open_lock(gate_path, create=refusal is None)
    except FileNotFoundError:  # no daemon ever started here
        raise DaemonUnavailable(host, refusal or "no such socket") from None
    owner = -1
    launched: tuple[int, int, str] | None = None
    try:
        _wait_for_gate(gate, host, owner_path, stderr, timeout)
        if _answers(host):  # a daemon was starting, and now listens
            return
        try:
            owner = daemonlock.open_lock(owner_path, create=refusal is None)
        except FileNotFoundError:
            raise DaemonUnavailable(host, refusal or "no such socket") from None
        if not daemonlock.try_lock(owner):
            pid = daemonlock.read_pid(owner)
            who = f" (pid {pid})" if pid else ""
            raise CliError(
                f"Cannot connect to the corral daemon at {host}: its daemon{who} runs "
                "but does not answer (is it shutting down?)"
            )
        if refusal:
            raise DaemonUnavailable(host, refusal)
        launched = _launch(host, environ, command, (owner, gate))
    finally:
        # The daemon has its own copies: from here it alone holds the locks, so its gate
        # opens when it listens, and both go when it dies.
        os.close(gate)
        if owner >= 0:
            os.close(owner)
    if launched is not None:
        _await_ready(host, stderr, *launched)


def _launch(
    host: str,
    environ: Mapping[str, str],
    command: Sequence[str] | None,
    locks: tuple[int, int],
) -> tuple[int, int, str]:
    """Start a detached daemon that inherits `locks` (owner, gate): (pid, ready-pipe
    read end, log path)."""
    import subprocess

    sockdir = os.path.dirname(socket_path(host)) or "."
    log_path = os.path.join(sockdir, "corral-daemon.log")
    r, w = os.pipe()
    if command is None:
        argv = daemon_command(host, w, locks, environ)
    else:
        argv = [part.replace("{fd}", str(w)) for part in command]
    try:
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                pass_fds=(w, *locks),
                start_new_session=True,
                env=dict(environ),
            )
    except OSError as exc:
        os.close(r)
        os.close(w)
        raise CliError(f"cannot start the corral daemon: {exc}") from None
    os.close(w)
    for fd in locks:  # for the messages of commands that wait meanwhile
        daemonlock.write_pid(fd, proc.pid)
    return proc.pid, r, log_path


def _await_ready(host: str, stderr: TextIO, pid: int, r: int, log_path: str) -> None:
    with os.fdopen(r, "rb") as ready:
        line = ready.readline()
    if not line:
        raise CliError(
            f"Cannot connect to the corral daemon at {host}: starting one failed "
            f"(see {log_path}){_log_tail(log_path)}"
        )
    stderr.write(
        f"corral: no daemon was running; started one in the background "
        f"(pid {pid}, log {log_path})\n"
    )
    stderr.flush()
