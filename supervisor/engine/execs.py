"""Exec instances: a command run inside a running container, Docker's two-step way.

`POST /containers/{id}/exec` makes an instance (kept in memory, as Docker keeps them),
`POST /exec/{id}/start` runs it, `GET /exec/{id}/json` tells its exit code.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from supervisor.errors import CorralError, InvalidArgument, NotFound
from supervisor.runtime.console import Console

#: Docker's exit code for an exec that could not start for a reason the runtime did
#: not report (a user not in passwd...): its `ContainerExecStart` defaults to 126.
START_FAILED = 126


@dataclass
class Exec:
    id: str
    container_id: str
    cmd: list[str]
    env: list[str] = field(default_factory=list)
    user: str = ""
    working_dir: str = ""
    attach_stdin: bool = False
    attach_stdout: bool = True
    attach_stderr: bool = True
    tty: bool = False
    console_size: tuple[int, int] | None = None  # (height, width) at the start
    detach_keys: str = ""
    console: Console | None = None  # the pty master while a `tty` exec runs (owner)
    #: `exec --privileged`: every capability for this command alone.
    privileged: bool = False
    running: bool = False
    exit_code: int | None = None
    pid: int = 0

    def to_api(self) -> dict[str, Any]:
        return {
            "ID": self.id,
            "Running": self.running,
            "ExitCode": self.exit_code,
            "ProcessConfig": {
                "tty": self.tty,
                "entrypoint": self.cmd[0] if self.cmd else "",
                "arguments": self.cmd[1:],
                "privileged": self.privileged,
                "user": self.user,
            },
            "OpenStdin": self.attach_stdin,
            "OpenStderr": self.attach_stderr,
            "OpenStdout": self.attach_stdout,
            "CanRemove": False,
            "ContainerID": self.container_id,
            "DetachKeys": self.detach_keys,
            "Pid": self.pid,
        }


class ExecStartError(CorralError):
    """An exec that never ran; `exit_code` is what `GET /exec/{id}/json` reports.

    Docker answers an attached start with the message on the stdout stream and a
    detached one with an error response (400 for a bad command, else 500).
    """

    def __init__(self, message: str, exit_code: int = START_FAILED, status: int = 500) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.status = status


def runtime_start_error(message: str) -> ExecStartError:
    """Docker's answer when the runtime cannot start an exec (`setExitCodeFromError`).

    The text is what containerd and Docker make of runc's error line:
    `OCI runtime exec failed: <runc's message>: unknown`.  The exit code is 126 for
    EACCES/EISDIR, 127 for a missing binary or working directory (any ENOENT) or
    ENOTDIR, else 128.
    """
    text = f"OCI runtime exec failed: {message}: unknown"
    low = text.lower()
    if "permission denied" in low:
        return ExecStartError(text, 126, 400)
    if "is a directory" in low:
        return ExecStartError(text + ": permission denied", 126, 400)
    if "not a directory" in low:
        hint = (
            ": Are you trying to mount a directory onto a file (or vice-versa)? "
            "Check if the specified host path exists and is the expected type"
        )
        return ExecStartError(text + hint, 127, 400)
    if "executable file not found" in low or "no such file or directory" in low:
        return ExecStartError(text, 127, 400)
    return ExecStartError(text, 128, 500)


class ExecStore:
    def __init__(self) -> None:
        self._execs: dict[str, Exec] = {}

    def add(self, container_id: str, body: dict[str, Any]) -> Exec:
        ex = Exec(
            id=secrets.token_hex(32),
            container_id=container_id,
            cmd=list(body.get("Cmd") or []),
            env=list(body.get("Env") or []),
            user=body.get("User") or "",
            working_dir=body.get("WorkingDir") or "",
            attach_stdin=bool(body.get("AttachStdin")),
            attach_stdout=body.get("AttachStdout", True) is not False,
            attach_stderr=body.get("AttachStderr", True) is not False,
            tty=bool(body.get("Tty")),
            console_size=_console_size(body.get("ConsoleSize")),
            detach_keys=str(body.get("DetachKeys") or ""),
            privileged=bool(body.get("Privileged")),
        )
        self._execs[ex.id] = ex
        return ex

    def get(self, exec_id: str) -> Exec:
        ex = self._execs.get(exec_id)
        if ex is None:
            matches = (
                [e for e in self._execs.values() if e.id.startswith(exec_id)] if exec_id else []
            )
            if len(matches) != 1:
                raise NotFound(f"No such exec instance: {exec_id}")
            ex = matches[0]
        return ex

    def drop_container(self, container_id: str) -> None:
        for k in [k for k, e in self._execs.items() if e.container_id == container_id]:
            del self._execs[k]


def _console_size(value: Any) -> tuple[int, int] | None:
    """Docker's `ConsoleSize`: [height, width], both unsigned; [0, 0] or null: none."""
    if value is None:
        return None
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 65536 for v in value)
    ):
        raise InvalidArgument(f"invalid ConsoleSize {value!r}: want [height, width]")
    return (value[0], value[1]) if any(value) else None
