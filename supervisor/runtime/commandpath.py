"""runc's check of a command before it runs it, made by the daemon.

runc looks a container's command up (Go's `exec.LookPath`, then `access(X_OK)` as the
process's user) before `create` returns, so a missing or unexecutable command is a
start error (Docker's exit codes 127 and 126, the container left `created`), not an
exit of a container that ran.  Where the seccomp helper is the command runc execs
(runtime/seccompexec.py), runc finds the helper instead; so the daemon makes the same
check against the container's root as the parked init or the running container sees
it (`/proc/<pid>/root`, mounts included, through `openat2(RESOLVE_IN_ROOT)`), with
runc's wording.  The helper looks the command up again when it execs it.
"""

from __future__ import annotations

import errno
import os
import posixpath
import stat
from collections.abc import Sequence

from supervisor.runtime.inroot import open_in_root

ST_NOEXEC = 8  # statvfs f_flag (os.ST_NOEXEC)


def _env_path(env: Sequence[str]) -> str:
    """PATH as runc's init has it (os.Setenv of each entry in order: the last wins)."""
    found = ""
    for e in env:
        if e.startswith("PATH="):
            found = e[5:]
    return found


def candidates(name: str, env: Sequence[str]) -> list[str]:
    """Where Go's LookPath tries `name` (pure): itself if it has a slash, else each
    PATH entry ("" is ".")."""
    if "/" in name:
        return [name]
    path = _env_path(env)
    if not path:
        return []
    return [posixpath.join(d or ".", name) for d in path.split(":")]


def _executable_by(st: os.stat_result, uid: int, gids: Sequence[int]) -> bool:
    """access(X_OK) of a regular file's mode for this user (root: any x bit)."""
    if uid == 0:
        return bool(st.st_mode & 0o111)
    if st.st_uid == uid:
        return bool(st.st_mode & stat.S_IXUSR)
    if st.st_gid in gids:
        return bool(st.st_mode & stat.S_IXGRP)
    return bool(st.st_mode & stat.S_IXOTH)


def _stat_in(root_fd: int, path: str) -> tuple[os.stat_result, bool]:
    """The file's stat and whether its mount is noexec (access(X_OK) then fails)."""
    fd = open_in_root(root_fd, path, os.O_PATH | os.O_CLOEXEC)
    try:
        return os.fstat(fd), bool(os.fstatvfs(fd).f_flag & ST_NOEXEC)
    finally:
        os.close(fd)


def problem(pid: int, name: str, env: Sequence[str], cwd: str, uid: int,
            gids: Sequence[int]) -> str | None:
    """What runc would say of command `name` in the root of process `pid` (after
    "unable to start container process: "), or None if it would run it (blocking).
    OSError if the process (its root) is gone."""
    root_fd = os.open(f"/proc/{pid}/root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for cand in candidates(name, env):
            full = cand if cand.startswith("/") else posixpath.join(cwd or "/", cand)
            try:
                st, noexec = _stat_in(root_fd, full)
            except OSError as exc:
                if "/" in name:  # Go: the stat's error, for the name as given
                    what = os.strerror(exc.errno or errno.ENOENT).lower()
                    return f'exec: "{name}": stat {name}: {what}'
                continue
            if stat.S_ISDIR(st.st_mode) or not st.st_mode & 0o111:
                if "/" in name:
                    return f'exec: "{name}": permission denied'
                continue  # LookPath goes on to the next PATH entry
            # runc's eaccess(2) of what LookPath found, as the process's user
            if noexec or not _executable_by(st, uid, gids):
                return f"exec {cand}: permission denied"
            return None
        return f'exec: "{name}": executable file not found in $PATH'
    finally:
        os.close(root_fd)
