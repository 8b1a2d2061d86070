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
  written is undone: its bytes are still in the spool past the mark), and undoes the
  rotations such an append made (`plan_cut`);
- feeds the framer the spool from the mark on (the partial line the old framer held,
  and what was spliced but not logged), then goes on splicing.

The spool is emptied (truncated) whenever everything in it is logged and it has
grown past `RESET_AT`; a mark beyond the file's end then means "all logged".  No
fsync: this guards against a killed daemon, not a power cut (the log is not fsynced
either).  A pty (a `Tty` container) cannot be spliced into a file: the engine splices
it into a relay pipe the holder also keeps, and that pipe into the spool.
"""

from __future__ import annotations

import contextlib
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import structlog

from supervisor.runtime.fds import OwnedFd
from supervisor.supervise.logconfig import rotated_path

log = structlog.get_logger("corral.spool")

CHUNK = 65536  # what the console relay moves at a time
# What one splice may move out of a container's pipe: the whole 1 MiB pipe the engine
# makes (fewer wake-ups per stored MiB; the writer runs on while the daemon waits for
# a CPU).  A MiB of short lines is ~36 MB of json-file records, hundreds of rotations
# under a small `max-size`: the log stores it in steps of 64 KiB, one rotation at most
# each, and the pump yields between them (`ContainerLog.store`).
TAKE = 1 << 20
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
        """Move up to TAKE bytes from the (non-blocking) pipe into the spool; those
        bytes, b"" at EOF.  BlockingIOError if the pipe is empty."""
        try:
            n = os.splice(pipe, self.data.fileno(), TAKE, offset_dst=self.end,
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


@dataclass(frozen=True)
class CutPlan:
    """How to undo the one log append a kill left unmarked (`plan_cut`), by rotation
    index (0 the live file, k `<log>.k`): cut `truncate` = (index, size), unlink
    `unlink`, then rename `renames` (src, dst) in order so the indices are 0, 1, ...
    again.  Each step leaves a state `plan_cut` plans the rest from, so a kill
    during the undo is undone by the next daemon."""

    truncate: tuple[int, int] | None = None
    unlink: tuple[int, ...] = ()
    renames: tuple[tuple[int, int], ...] = ()

    @property
    def renamed(self) -> bool:
        return bool(self.unlink or self.renames)


def plan_cut(files: list[tuple[int, int, int]], marks: list[tuple[int, int]]) -> CutPlan:
    """The pure core of `cut_back`.  `files`: (rotation index, inode, size) of the log
    files on disk; `marks`: (inode, size) of each stream's mark.

    The pump appends and then marks with no checkpoint between, so at most one append
    is past the newest mark: the last one, which may have rotated the log (renamed
    the marked file to `.k`, and made k newer ones holding only its records).  The
    newest mark is the one in the newest file still on disk (files go oldest first);
    everything newer than its file and past its size is that append's.  If no mark's
    file is on disk (that append rotated them all away, or `max-file` 1 unlinked
    it), every file left is newer than every mark: all of them go."""
    files = sorted(files)
    marked = {ino for ino, _ in marks if ino}
    if not marked:
        return CutPlan()
    hit = next((n for n, (_, ino, _) in enumerate(files) if ino in marked), None)
    if hit is None:
        return CutPlan(unlink=tuple(index for index, _, _ in files))
    index, ino, size = files[hit]
    keep = max(s for i, s in marks if i == ino)
    kept = files[hit:]
    return CutPlan(
        truncate=(index, keep) if size > keep else None,
        unlink=tuple(i for i, _, _ in files[:hit]),
        renames=tuple((src, dst) for dst, (src, _, _) in enumerate(kept) if src != dst),
    )


def log_files(log_path: Path) -> list[tuple[int, int, int]]:
    """(rotation index, inode, size) of `<log>` and every `<log>.N` on disk, gaps and
    all (an undo killed half way leaves gaps)."""
    found: list[tuple[int, int, int]] = []
    for entry in os.scandir(log_path.parent):
        name = entry.name
        if name == log_path.name:
            index = 0
        elif name.startswith(log_path.name + ".") and name[len(log_path.name) + 1:].isdigit():
            index = int(name[len(log_path.name) + 1:])
        else:
            continue
        st = entry.stat(follow_symlinks=False)
        found.append((index, st.st_ino, st.st_size))
    return sorted(found)


def cut_back(log_path: Path, spools: list[Spool]) -> tuple[int, bool]:
    """Undo a log append whose mark was not written, a rotating one too (`plan_cut`).
    Returns how many bytes went and whether files were unlinked or renamed (the
    caller's `ContainerLog` must then count its files again)."""
    try:
        files = log_files(log_path)
    except FileNotFoundError:
        return 0, False
    plan = plan_cut(files, [(s.log_ino, s.log_size) for s in spools])
    sizes = {index: size for index, _, size in files}
    cut = 0
    if plan.truncate is not None:
        index, size = plan.truncate
        os.truncate(rotated_path(log_path, index), size)
        cut += sizes[index] - size
    for index in plan.unlink:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(rotated_path(log_path, index))
        cut += sizes[index]
    for src, dst in plan.renames:
        os.replace(rotated_path(log_path, src), rotated_path(log_path, dst))
    return cut, plan.renamed
