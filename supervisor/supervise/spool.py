"""Output between a container's pipe and its log, on disk: exactly once across a kill -9.

A pump that `read()`s a pipe and then writes the log loses what it read if the daemon
is killed between the two, and a line split across two reads loses its first part
with the framer that held it.  Live restore promises every line once, in order, so
the pump moves bytes out of the pipe with `splice(2)` straight into this spool file
(the bytes leave the pipe and are in the file in one system call: no instant where
they are in neither), frames them from there, and after each log append writes its
*mark*: how far into the spool the log holds complete lines, and the log file's
inode and size after that append.  A new daemon (`resume`):

- cuts the log back to the newest mark of its streams (an append whose mark was not
  written is undone: its bytes are still in the spool past the mark);
- feeds the framer the spool from the mark on (the partial line the old framer held,
  and what was spliced but not logged), then goes on splicing.

The spool is emptied (truncated) whenever everything in it is logged and it has
grown past `RESET_AT`; a mark beyond the file's end then means "all logged".  No
fsync: this guards against a killed daemon, not a power cut (the log is not fsynced
either).  A pty (a `Tty` container) cannot be spliced: its output is read as before.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import structlog

from supervisor.runtime.fds import OwnedFd

log = structlog.get_logger("corral.spool")

CHUNK = 65536
RESET_AT = 1024 * 1024
_MARK = struct.Struct("<QQQ")  # logged offset, log inode, log size


class Spool:
    @classmethod
    def open(cls, directory: Path, stream: str, *, resume: bool) -> Spool | None:
        """A spool, or None if the disk has no room for one (the pump reads as before)."""
        try:
            return cls(directory, stream, resume=resume)
        except OSError as exc:
            log.warning("spool.unavailable", stream=stream, error=str(exc))
            return None

    def __init__(self, directory: Path, stream: str, *, resume: bool) -> None:
        flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW
        self.stream = stream
        self.data = OwnedFd.open(directory / f"{stream}.spool", flags, f"{stream} spool", 0o600)
        try:
            self.mark = OwnedFd.open(directory / f"{stream}.mark", flags, f"{stream} mark", 0o600)
            self._load(resume)
        except BaseException:
            self.close()
            raise

    def _load(self, resume: bool) -> None:
        self.logged, self.log_ino, self.log_size = 0, 0, 0
        self.floor = 0  # bytes before this spool offset may be in the framer unspooled
        self.bypassed = 0  # reads that went around the spool (it could not take them)
        if resume:
            raw = os.pread(self.mark.fileno(), _MARK.size, 0)
            if len(raw) == _MARK.size:
                self.logged, self.log_ino, self.log_size = _MARK.unpack(raw)
            self.end = os.fstat(self.data.fileno()).st_size
            if self.logged > self.end:  # emptied after all was logged, mark not yet moved
                self.logged = 0
        else:
            os.ftruncate(self.data.fileno(), 0)
            self.end = 0
            self._write_mark()

    def pending(self) -> bytes:
        """What a new daemon must frame again: from the mark to the end."""
        return os.pread(self.data.fileno(), self.end - self.logged, self.logged)

    def take(self, pipe: int) -> bytes:
        """Move up to CHUNK bytes from the (non-blocking) pipe into the spool; those
        bytes, b"" at EOF.  BlockingIOError if the pipe is empty."""
        try:
            n = os.splice(pipe, self.data.fileno(), CHUNK, offset_dst=self.end,
                          flags=os.SPLICE_F_NONBLOCK)
        except BlockingIOError:
            raise
        except OSError as exc:
            # A full disk (or a file system without splice): the output goes around
            # the spool, straight to the log as before; only the exactly-once
            # guarantee across a kill is lost meanwhile, never the output.
            data = os.read(pipe, CHUNK)
            self.bypassed += 1
            if self.bypassed == 1:
                log.warning("spool.bypassed", stream=self.stream, error=str(exc))
            self.floor = self.end
            return data
        self.end += n
        return os.pread(self.data.fileno(), n, self.end - n) if n else b""

    def commit(self, held_back: int, log_position: tuple[int, int]) -> None:
        """The log holds everything but the last `held_back` bytes (a partial line the
        framer keeps); the log's (inode, size) after the append that did it."""
        self.logged = max(self.end - held_back, self.floor)
        self.log_ino, self.log_size = log_position
        if held_back == 0 and self.end >= RESET_AT:
            os.ftruncate(self.data.fileno(), 0)  # first: a mark past the end says "all"
            self.end = self.logged = 0
        self._write_mark()

    def _write_mark(self) -> None:
        os.pwrite(self.mark.fileno(), _MARK.pack(self.logged, self.log_ino, self.log_size), 0)

    def close(self) -> None:
        self.data.close()
        if hasattr(self, "mark"):
            self.mark.close()


def cut_back(log_path: Path, spools: list[Spool]) -> int:
    """Undo a log append whose mark was not written: the log file is cut to the newest
    mark of its streams (same inode only).  Returns how many bytes were cut."""
    try:
        st = os.stat(log_path)
    except FileNotFoundError:
        return 0
    sizes = [s.log_size for s in spools if s.log_ino == st.st_ino]
    if not sizes or st.st_size <= max(sizes):
        return 0
    os.truncate(log_path, max(sizes))
    return st.st_size - max(sizes)
