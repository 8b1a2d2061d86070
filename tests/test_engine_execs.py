"""What Docker answers for an exec the runtime could not start (its setExitCodeFromError)."""

from __future__ import annotations

import pytest

from supervisor.engine.execs import runtime_start_error

PREFIX = "exec failed: unable to start container process: "


@pytest.mark.parametrize(
    ("runc_says", "code", "status", "suffix"),
    [
        ('exec: "nosuch": executable file not found in $PATH', 127, 400, ": unknown"),
        ('chdir to cwd ("/nowhere") set in config.json failed: no such file or directory',
         127, 400, ": unknown"),
        ('exec: "/etc/passwd": permission denied', 126, 400, ": unknown"),
        ('exec: "/": is a directory', 126, 400, ": unknown: permission denied"),
        ("mount /x: not a directory", 127, 400, "Check if the specified host path exists "
         "and is the expected type"),
        ("setns: operation not permitted", 128, 500, ": unknown"),
    ],
)
def test_runtime_start_error(runc_says: str, code: int, status: int, suffix: str) -> None:
    err = runtime_start_error(PREFIX + runc_says)
    assert err.message.startswith(f"OCI runtime exec failed: {PREFIX}{runc_says}: unknown")
    assert err.message.endswith(suffix)
    assert (err.exit_code, err.status) == (code, status)
