"""Start a daemon in the background when none answers, so `corral run` just works.

Readiness comes from a pipe, not from polling the socket: the daemon gets the write end
as `--ready-fd N` and writes one line once it listens; if it dies first, the pipe closes
and we read EOF. Either way we know at once, with no sleep loop.
"""

from __future__ import annotations

import os
import sys

from supervisor.api.client import DaemonUnavailable, socket_path
from supervisor.cli.context import CliError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import TextIO


def daemon_command(host: str, ready_fd: int, environ: Mapping[str, str]) -> list[str]:
    """The daemon's command line: same interpreter, same socket, same root."""
    cmd = [sys.executable, "-m", "supervisor", "daemon", "--host", host,
           "--ready-fd", str(ready_fd)]
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


def start_daemon(
    host: str,
    stderr: TextIO,
    environ: Mapping[str, str],
    command: Sequence[str] | None = None,
) -> None:
    """Spawn a detached daemon and return once it listens (or raise CliError).

    `command` replaces the daemon's argv in tests; `{fd}` in it is replaced by the
    ready-pipe's descriptor.
    """
    path = socket_path(host)
    if os.geteuid() != 0:
        raise CliError(
            f"Cannot connect to the corral daemon at {host}: none is running, and starting "
            "one needs root (run as root, or start it yourself with 'corral daemon')"
        )
    import subprocess

    sockdir = os.path.dirname(path) or "."
    os.makedirs(sockdir, exist_ok=True)
    log_path = os.path.join(sockdir, "corral-daemon.log")
    r, w = os.pipe()
    if command is None:
        argv = daemon_command(host, w, environ)
    else:
        argv = [part.replace("{fd}", str(w)) for part in command]
    try:
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                pass_fds=(w,),
                start_new_session=True,
                env=dict(environ),
            )
    except OSError as exc:
        os.close(r)
        os.close(w)
        raise CliError(f"cannot start the corral daemon: {exc}") from None
    os.close(w)
    with os.fdopen(r, "rb") as ready:
        line = ready.readline()
    if not line:
        if _answers(host):  # another CLI started one first; ours lost the bind race
            return
        raise CliError(
            f"Cannot connect to the corral daemon at {host}: starting one failed "
            f"(see {log_path}){_log_tail(log_path)}"
        )
    stderr.write(
        f"corral: no daemon was running; started one in the background "
        f"(pid {proc.pid}, log {log_path})\n"
    )
    stderr.flush()
