"""runc's binary as a sealed memfd, made once per daemon and exec'd from.

Every `runc create`/`exec` starts a `runc init` that must not run from the host's
binary (CVE-2019-5736: a container could write it through /proc/self/exe).  runc 1.1
guards against that on its own at each init: it bind-mounts /proc/self/exe read-only
on a temporary file in the host's mount table (three mount calls and a lazy unmount,
or an 8.7 MB copy into a memfd where it cannot mount), then re-execs itself from that
(a second Go start).  It skips all of it when /proc/self/exe is already a memfd
carrying exactly F_SEAL_SEAL|SHRINK|GROW|WRITE (`is_self_cloned` in runc's
libcontainer/nsenter/cloned_binary.c): such a file can never be written, so sharing
it is safe.  `SealedBinary` makes that file once and hands out its descriptor; runc is
exec'd as `/proc/self/fd/N` (the kernel resolves the path before close-on-exec
closes N, so runc never holds the descriptor).

An upgrade of runc under a running daemon (dpkg renames a new file into place) is
seen by the path's identity (device, inode, size, mtime, ctime), checked at each use:
a changed binary gets a new memfd.  Where a memfd cannot be made (no memfd_create,
sealing refused) or the runtime is not an ELF binary (a script's interpreter could
not open a closed /proc/self/fd/N), runc runs from its path, with one log line.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from typing import Any

import structlog

log = structlog.get_logger("corral.runtime")

#: the seals runc's `is_self_cloned` wants, no more and no fewer
RUNC_SEALS = fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE
#: the memfd's name, as /proc/PID/exe shows it: `/memfd:corral-runc:<path> (deleted)`
NAME_PREFIX = "corral-runc:"

Identity = tuple[int, int, int, int, int]


def identity(st: os.stat_result) -> Identity:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def seal_copy(path: str) -> int:
    """A close-on-exec memfd holding `path`'s bytes, sealed as runc wants; its fd.
    Raises OSError (the memfd closed) if it cannot be made or the file changed
    while it was copied."""
    with open(path, "rb") as src:
        before = os.fstat(src.fileno())
        if src.read(4) != b"\x7fELF":
            raise OSError(f"{path}: not an ELF binary")
        fd = os.memfd_create(NAME_PREFIX + path, os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
        try:
            offset = 0
            while offset < before.st_size:
                sent = os.sendfile(fd, src.fileno(), offset, before.st_size - offset)
                if sent == 0:
                    raise OSError(f"{path}: shrank while copied")
                offset += sent
            if identity(os.fstat(src.fileno())) != identity(before):
                raise OSError(f"{path}: changed while copied")
            fcntl.fcntl(fd, fcntl.F_ADD_SEALS, RUNC_SEALS)
        except BaseException:
            os.close(fd)
            raise
    return fd


def _identity_of(path: str | None) -> Identity | None:
    try:
        return identity(os.stat(path)) if path else None
    except OSError:
        return None


class SealedBinary:
    """The one owner of the runtime's sealed memfd (one per daemon)."""

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self._fd = -1
        self._path: str | None = None  # where the binary was found last
        self._made_of: Identity | None = None
        self._refused: Identity | None = None  # the file a memfd failed for (logged once)
        # memfds of a binary since replaced: kept open, a worker thread's Popen may be
        # exec'ing one this instant (one per upgrade of runc under the daemon)
        self._old: list[int] = []

    def resolve(self) -> str | None:
        """The binary's path, looked up in PATH."""
        return self.binary if "/" in self.binary else shutil.which(self.binary)

    def exe(self) -> int | None:
        """The memfd's descriptor to exec (`/proc/self/fd/N`), made again when the
        binary changed; None: exec the path (runc then protects itself).  Called at
        every runc call: one stat of the path found last, PATH walked again only when
        nothing is there (an upgrade renames the new file onto the same path)."""
        path = self._path
        now = _identity_of(path)
        if now is None:
            path = self._path = self.resolve()
            now = _identity_of(path)
        if now is None:
            return None  # the exec of the name fails as it would without us
        if now == self._made_of:
            return self._fd
        if now == self._refused:
            return None
        assert path is not None
        try:
            fd = seal_copy(path)
        except OSError as exc:
            self._refused = now
            log.warning("runtime.unsealed", binary=path, reason=str(exc))
            return None
        if self._fd >= 0:
            self._old.append(self._fd)
        self._fd, self._made_of = fd, now
        log.info("runtime.sealed", binary=path, bytes=now[2], fd=fd)
        return fd

    def popen_args(self) -> dict[str, Any]:
        """`executable` and `pass_fds` for a runc child of this process: the memfd as
        `/proc/self/fd/N` (N passed: subprocess closes every other descriptor before
        the exec; runc holding a sealed copy of its own binary reaches nothing it
        does not already reach as /proc/self/exe, and its init closes it before the
        container's command runs), or nothing (the path)."""
        fd = self.exe()
        return {} if fd is None else {"executable": f"/proc/self/fd/{fd}", "pass_fds": (fd,)}

    def close(self) -> None:
        for fd in [self._fd, *self._old]:
            if fd >= 0:
                os.close(fd)
        self._fd, self._made_of, self._old = -1, None, []
