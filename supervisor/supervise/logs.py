"""Each container's log: Docker's json-file format, rotated, read and followed.

Files: `<id>-json.log` (the live one) and, with `max-size`, rotated `<id>-json.log.1`
(newest) ... `.<max-file - 1>` (oldest), renamed exactly as Docker's json-file driver
does, so existing tools read them.  Records: see `framing`.

Reading and following work on *generations*: every file the writer creates gets the next
number, and a reader pins the files it still has to read by holding them open.  A
rotation renames or unlinks names, never the open files, so a reader finishes the file
it is in and moves to the next generation whatever the names are by then: no line is
missed or read twice however often the log rotates under it.  Files a reader pins after
rotation deleted them (a reader lagging more than `max-file` rotations behind) are kept
up to `orphan_limit` bytes; past that the oldest are let go and that reader skips them,
so a stuck `logs -f` client cannot fill the disk.

The writer wakes followers through a `trio.lowlevel.ParkingLot` after each append; the
trio thread is single, so "read to the end, then park" cannot miss a write and nothing
polls.

## The follow contract (for the engine)

- `follow()` yields what is stored (after `since`/`tail`), then every record as written.
- `open_writer(options)` begins a run; `append()` stores; `close_writer()` ends it.
- `close_writer()` (the default, `restarting=False`) means the container stopped for
  good: every follower ends once it has yielded what was written up to that moment.
- `close_writer(restarting=True)` means a policy restart may follow: followers keep
  waiting, and go on with the next run's lines after `open_writer()`.  If the restart is
  called off (user stop or kill during the backoff, a start that failed, give-up), call
  `close_writer()` then: that ends them at the same point.
- `close()` (container removed): followers end too, after what was written.
- A follower started while the writer is closed for good ends at the end of what is
  stored (like `docker logs -f` on a stopped container).
"""

from __future__ import annotations

import collections
import contextlib
import errno
import itertools
import os
import threading
import time
from collections.abc import AsyncGenerator, Callable, Generator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import structlog
import trio

from supervisor import durable
from supervisor.runtime.fds import OwnedFd
from supervisor.supervise.framing import (
    LogEntry,
    block_records,
    decode_records,
    encode_records,
    is_plain,
)
from supervisor.supervise.logconfig import LogOptions, rotated_path, rotation_moves

__all__ = ["ContainerLog", "LogEntry", "LogOptions"]

log = structlog.get_logger("corral.logs")

_CHUNK = 1 << 20  # bytes a reader takes at a time
_BACK = 1 << 16  # block size when reading a file backwards (tail)
ORPHAN_LIMIT = 64 << 20
# An append is stored in steps of at most STEP of the container's bytes (STEP_PIECES
# pieces), each rotating at most once: a pump yields between them (`store`).  A MiB of
# `yes` is ~36 MB of records, hundreds of rotations under `max-size: 100k`.
STEP = 1 << 16
STEP_PIECES = 4096
# A pump hands the live file's pages to writeback every WRITEBACK bytes (in a worker
# thread it does not wait for, `durable.start_writeback`): the container's exit
# unmounts its overlay, which syncs the whole filesystem the log is on, and `wait`
# would wait for all of it (a million 60 B lines: 130 MB, ~200 ms here).
WRITEBACK = 8 << 20

Position = tuple[int, int]  # (generation, byte offset)


class _Clock:
    """RFC 3339 nano timestamps, formatting the seconds part once per second."""

    def __init__(self) -> None:
        self._sec = -1
        self._prefix = ""

    def now(self) -> str:
        ns = time.time_ns()
        sec, frac = divmod(ns, 1_000_000_000)
        if sec != self._sec:
            self._sec = sec
            self._prefix = datetime.fromtimestamp(sec, UTC).strftime("%Y-%m-%dT%H:%M:%S.")
        return f"{self._prefix}{frac:09d}Z"


_clock = _Clock()
_epoch_of: dict[str, int] = {}


def record_seconds(ts: str) -> float:
    """Seconds since the epoch of a record's time, fast (the date part is cached)."""
    head = ts[:19]
    base = _epoch_of.get(head)
    if base is None:
        try:
            dt = datetime.strptime(head, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
        except ValueError:
            return 0.0
        base = _epoch_of[head] = int(dt.timestamp())
        if len(_epoch_of) > 4096:
            _epoch_of.clear()
    frac = ts[19:].rstrip("Z")
    if frac.startswith("."):
        with contextlib.suppress(ValueError):
            return base + float(frac)
    return float(base)


class _Segment:
    """One generation of the log file, held open for the readers that still need it."""

    __slots__ = ("file", "gen", "orphan", "refs")

    def __init__(self, gen: int, file: OwnedFd) -> None:
        self.gen = gen
        self.file: OwnedFd | None = file
        self.refs = 0
        self.orphan = 0  # its size, once rotation deleted its name

    @property
    def fd(self) -> int:
        """The descriptor to read now (-1 once let go); never kept across an await."""
        return -1 if self.file is None or self.file.closed else self.file.fileno()

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None

    def size(self) -> int:
        return os.fstat(self.fd).st_size if self.fd >= 0 else 0


class _Cursor:
    """A reader's place in the log: the segments it pinned and its offset in the first."""

    def __init__(self, owner: ContainerLog, segments: list[_Segment]) -> None:
        self.owner = owner
        self.segments = collections.deque(segments)
        self.offset = 0
        self.carry = b""  # an incomplete record at the end of what was read

    def position(self) -> Position:
        if not self.segments:
            return (self.owner.generation + 1, 0)
        return (self.segments[0].gen, self.offset)

    def end(self) -> Position:
        """Where the log ends now."""
        if not self.segments:
            return self.position()
        last = self.segments[-1]
        return (last.gen, last.size())

    def _drop_first(self) -> None:
        self.owner._unpin(self.segments.popleft())
        self.offset = 0
        self.carry = b""

    def seek(self, pos: Position) -> None:
        while self.segments and self.segments[0].gen < pos[0]:
            self._drop_first()
        if self.segments and self.segments[0].gen == pos[0]:
            self.offset = pos[1]
            self.carry = b""

    def pull(self, stop: Position | None) -> tuple[list[LogEntry], bool]:
        """The next records (up to about `_CHUNK` bytes); `progressed` False at the end."""
        blob, progressed = self.pull_raw(stop)
        return (decode_records(blob) if blob else []), progressed

    def pull_raw(self, stop: Position | None) -> tuple[bytes, bool]:
        """The next whole lines as stored (up to about `_CHUNK` bytes), not decoded."""
        while self.segments:
            seg = self.segments[0]
            want = _CHUNK
            if stop is not None:
                if (seg.gen, self.offset) >= stop:
                    return b"", False
                if seg.gen == stop[0]:
                    want = min(want, stop[1] - self.offset)
            data = os.pread(seg.fd, want, self.offset) if seg.fd >= 0 else b""
            if data:
                self.offset += len(data)
                blob = self.carry + data if self.carry else data
                cut = blob.rfind(b"\n") + 1
                self.carry = blob[cut:]
                return blob[:cut], True
            if seg.fd < 0 or seg.gen < self.owner.generation:
                # Finished for good: the writer is in a newer file.
                self._drop_first()
                continue
            return b"", False
        return b"", False

    def release(self) -> None:
        while self.segments:
            self.owner._unpin(self.segments.popleft())
        self.owner._cursors.discard(self)
        self.owner._prune_marks()


class ContainerLog:
    """Owner of one container's log files, its writer, and its readers' wake-ups."""

    def __init__(self, path: Path, options: LogOptions | None = None) -> None:
        self.path = path
        self.options = options or LogOptions()
        self.orphan_limit = ORPHAN_LIMIT
        self._file: OwnedFd | None = None  # the writer's
        self._size = 0
        self._ino = 0
        self._written_back = 0  # the live file's bytes handed to writeback
        self._writeback_idle = threading.Event()  # no writeback call in flight
        self._writeback_idle.set()
        # The live file is generation `generation`; `<path>.k` is `generation - k`.
        self.generation = 0
        while rotated_path(path, self.generation + 1).exists():
            self.generation += 1
        self._rotated = self.generation  # rotated files on disk: .1 .. .<this>
        self._lot = trio.lowlevel.ParkingLot()
        self._state = "ended"  # open | restarting | ended
        self._removed = False
        self._ends = 0  # how many times the writer closed for good
        self._marks: dict[int, Position] = {}  # end number -> where it ended
        self._cursors: set[_Cursor] = set()
        self._pinned: dict[int, _Segment] = {}
        self._orphans: collections.deque[_Segment] = collections.deque()
        self._orphan_bytes = 0
        self.rotations = 0
        self.write_errors = 0
        # Counters for metrics: records stored and the bytes the container wrote.
        self.lines = {"stdout": 0, "stderr": 0}
        self.bytes = {"stdout": 0, "stderr": 0}

    @property
    def closed(self) -> bool:
        """No writer now."""
        return self._state != "open"

    # ------------------------------------------------------------- writer
    def open_writer(self, options: LogOptions | None = None) -> None:
        """A new run of the container: followers wait for its lines again."""
        if options is not None:
            self.options = options
        if self._file is None and not self._removed:
            created = not self.path.exists()
            # 0600: output holds what containers print, secrets too (Docker: 0640 root:root)
            self._file = OwnedFd.open(
                self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, "json-file log", 0o600
            )
            st = os.fstat(self._file.fileno())
            self._size, self._ino = st.st_size, st.st_ino
            self._written_back = st.st_size
            if created:
                if self.generation in self._pinned:  # the old live file went away
                    self.generation += 1
                self._pin_new()
        self._state = "open"

    def position(self) -> tuple[int, int]:
        """(inode, size) of the live file after the last append (live restore's spool
        marks it, `spool.cut_back` undoes an append past the mark); (0, 0) if closed."""
        if self._file is None:
            return (0, 0)
        return (self._ino, self._size)  # the live file's inode, kept from its open

    def append(self, stream: str, lines: list[bytes] | bytes) -> None:
        """Store pieces from `LineFramer` (or a block of whole lines from `feed_block`),
        rotating as `max-size` says, and wake followers: all of `appending` at once."""
        for _ in self.appending(stream, lines):
            pass

    async def store(
        self, stream: str, lines: list[bytes] | bytes, mark: Callable[[int], None] | None = None
    ) -> None:
        """`appending` for a pump: after each step, `mark(left)` (a spooled pump's mark:
        append, then mark, with no checkpoint between), then a checkpoint, so a flood
        rotating a small `max-size` many times per read never holds the trio thread
        for more than a step; `mark(0)` once all is stored."""
        for left in self.appending(stream, lines):
            if mark is not None:
                mark(left)
            await trio.lowlevel.checkpoint()
        if mark is not None:
            mark(0)
        if self._file is not None and self._size - self._written_back >= WRITEBACK:
            self._write_back()

    def _write_back(self) -> None:
        """The live file's pages written since the last call, handed to writeback in a
        worker thread the pump does not wait for: block allocation may wait on the
        disk's queue, and a burst the disk is slower than stays in the page cache as
        it would without us (the pump is never held to the disk's pace).  One at a
        time: while one runs, the next call finds it busy and the range grows.  A copy
        of the descriptor, as a rotation may close the writer's meanwhile."""
        if not self._writeback_idle.is_set():
            return
        assert self._file is not None
        start, end = self._written_back, self._size
        fd = os.dup(self._file.fileno())
        self._written_back = end
        self._writeback_idle.clear()

        def kick() -> None:
            try:
                durable.start_writeback(fd, start, end - start)
            finally:
                os.close(fd)

        def done(result: object) -> None:  # in the worker thread; pacing only: an
            self._writeback_idle.set()  # error leaves the pages to the kernel's flusher

        trio.lowlevel.start_thread_soon(kick, done)

    def appending(self, stream: str, lines: list[bytes] | bytes) -> Iterator[int]:
        """`append` in steps: each stores at most `STEP` of the container's bytes
        (a block needing no escape, without max-size, is one step: nothing rotates) (or
        `STEP_PIECES` pieces) and rotates the log at most once; after every step but
        the last it yields how many bytes of `lines` are not stored yet.  A step is
        whole records, so what is stored after any step is a prefix of `lines` and
        what is left begins at a piece's start.  Left unfinished (the caller stops
        iterating), the rest is never stored."""
        if not lines or (self._file is None and self._state != "open"):
            return  # (open without a file: a rotation could not make the new one)
        now = _clock.now()
        # Without max-size no step rotates, and a block no byte of which needs an
        # escape costs one `replace`: one step, no copy of it cut into steps.
        plain = (
            self.options.max_size < 0
            and isinstance(lines, bytes)
            and lines.endswith(b"\n")
            and is_plain(lines)
        )
        units = [lines] if plain else list(_units(lines))
        left = len(lines) if isinstance(lines, bytes) else sum(map(len, lines))
        try:
            for n, unit in enumerate(units):
                parts, raw_of = self._encode(stream, unit, now, plain)
                for stored in self._write_rotating(parts):
                    self._lot.unpark_all()
                    yield left - raw_of(*stored)
                left -= len(unit) if isinstance(unit, bytes) else sum(map(len, unit))
                self._lot.unpark_all()
                if n + 1 < len(units):
                    yield left
        except OSError as exc:
            self.write_errors += 1
            if self.write_errors == 1 or self.write_errors % 10000 == 0:
                log.warning("logs.write_failed", path=str(self.path), error=str(exc),
                            count=self.write_errors)  # fmt: skip
            self._lot.unpark_all()

    def _encode(
        self, stream: str, unit: bytes | list[bytes], now: str, plain: bool = False
    ) -> tuple[tuple[bytes | memoryview, ...], Callable[[int, int], int]]:
        """A unit's records (buffers to write in order), and how many of its bytes the
        first k records (e bytes of them) hold; counted for metrics.  `plain`: the
        unit is known to need no escape."""
        if isinstance(unit, bytes):
            self.bytes[stream] = self.bytes.get(stream, 0) + len(unit)
            ends = unit.endswith(b"\n")
            block = block_records(stream, unit, now, plain=plain) if ends else None
            if block is not None:
                # every record is its line and the same number of bytes more
                head, body, per = block
                count = (len(head) + len(body) - len(unit)) // per
                self.lines[stream] = self.lines.get(stream, 0) + count
                return (head, body), lambda k, e: e - k * per
            *whole, last = unit.split(b"\n")  # escapes: record by record
            pieces = [line + b"\n" for line in whole] + ([last] if last else [])
            self.lines[stream] = self.lines.get(stream, 0) + len(pieces)
        else:
            pieces = unit
            self.lines[stream] = self.lines.get(stream, 0) + len(pieces)
            self.bytes[stream] = self.bytes.get(stream, 0) + sum(map(len, pieces))
        # one record per piece, each with one newline (JSON escapes the piece's own)
        sums = list(itertools.accumulate(map(len, pieces), initial=0))
        data = "".join(encode_records(stream, pieces, now)).encode("ascii")
        return (data,), lambda k, e: sums[k]

    def _write_rotating(self, parts: tuple[bytes | memoryview, ...]) -> Iterator[tuple[int, int]]:
        """Write whole records, rotating as Docker does: the records that begin before
        the file reaches max-size stay in it, the next begins a new file.  Yields after
        each rotation (records, bytes) of the records written so far."""
        max_size = self.options.max_size
        total = sum(map(len, parts))
        if max_size < 0 or self._size + total <= max_size:
            self._write(*parts)
            return
        data = parts[0] if len(parts) == 1 and isinstance(parts[0], bytes) else b"".join(parts)
        view = memoryview(data)
        done = records = 0
        while self._size + len(data) - done > max_size:
            room = max_size - self._size
            cut = done if room <= 0 else data.find(b"\n", done + room - 1) + 1
            if room > 0 and cut in (0, len(data)):
                break  # the last record reaches it: the next append rotates
            self._write(view[done:cut])
            records += data.count(b"\n", done, cut)
            done = cut
            self._rotate()
            yield records, done
        self._write(view[done:])

    def _write(self, *parts: bytes | memoryview) -> None:
        """Write buffers in order (one `writev`), all or, on an error, none."""
        if self._file is None:
            if self._state != "open":
                raise OSError(errno.EBADF, f"{self.path}: not open for writing")
            # a rotation whose new file the full disk refused: made now, or this
            # append fails too (counted) and the next one tries again
            self._new_file(os.O_WRONLY | os.O_APPEND | os.O_CREAT)
            assert self._file is not None
        fd, start = self._file.fileno(), self._size
        try:
            if len(parts) == 1:
                view = memoryview(parts[0])
            else:
                n = os.writev(fd, parts)
                self._size += n
                if n == sum(map(len, parts)):
                    return
                view = memoryview(b"".join(parts))[n:]  # a short write: the rest
            while view:
                n = os.write(fd, view)
                self._size += n
                view = view[n:]
        except OSError:
            # A full disk took part of the batch: cut it off again, or a torn record
            # would run into the next append's first one (two records lost, and a
            # line no json-file reader decodes).  Shrinking needs no space.
            if self._size != start:
                os.ftruncate(fd, start)
                self._size = start
                self._written_back = min(self._written_back, start)
            raise

    def _rotate(self) -> None:
        file, self._file = self._file, None
        self._size = 0  # the next file's, even if the disk refuses it now
        if file is not None:
            file.close()
        moves = rotation_moves(self.path, self.options.max_file, self._rotated)
        if moves:
            for src, dst in moves:
                with contextlib.suppress(FileNotFoundError):
                    os.replace(src, dst)
            self._rotated = len(moves)
        else:
            # max-file 1: a fresh file; readers keep the old one open (Docker truncates).
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
        self._new_file(os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_TRUNC)

    def _new_file(self, flags: int) -> None:
        """The live file after a rotation: a new generation."""
        self._file = OwnedFd.open(self.path, flags, "json-file log", 0o600)
        st = os.fstat(self._file.fileno())
        self._size, self._ino = st.st_size, st.st_ino
        self._written_back = st.st_size
        self.generation += 1
        self.rotations += 1
        self._pin_new()
        self._limit_orphans()

    def close_writer(self, *, restarting: bool = False) -> None:
        """The run ended. `restarting`: a policy restart may follow, followers wait for
        it; otherwise the container stopped for good and followers end here."""
        file, self._file = self._file, None
        if file is not None:
            file.close()
        if restarting and not self._removed:
            self._state = "restarting"
        else:
            self._ends += 1
            if self._cursors:
                self._marks[self._ends] = self._live_end()
            self._state = "ended"
        self._lot.unpark_all()

    def close(self) -> None:
        """The container is removed: followers end after what was written."""
        self._removed = True
        self.close_writer()

    def _live_end(self) -> Position:
        try:
            return (self.generation, self.path.stat().st_size)
        except FileNotFoundError:
            return (self.generation, 0)

    # ------------------------------------------------------------- pinning
    def _pin_new(self) -> None:
        """The writer made a new file: every reader will need it."""
        if not self._cursors:
            return
        try:
            fd = OwnedFd.open(self.path, os.O_RDONLY, "json-file log reader")
        except FileNotFoundError:
            return
        seg = _Segment(self.generation, fd)
        self._pinned[seg.gen] = seg
        for cursor in self._cursors:
            seg.refs += 1
            cursor.segments.append(seg)

    def _open_cursor(self) -> _Cursor:
        """A reader pinning every file there is now, oldest first."""
        segments: list[_Segment] = []
        k = 0
        while k <= self.generation:  # the live file, then .1, .2... while they exist
            gen = self.generation - k
            seg = self._pinned.get(gen)
            if seg is None or seg.fd < 0:
                try:
                    fd = OwnedFd.open(
                        rotated_path(self.path, k), os.O_RDONLY, "json-file log reader"
                    )
                except FileNotFoundError:
                    if k == 0:
                        k += 1
                        continue
                    break
                if seg is None:
                    seg = self._pinned[gen] = _Segment(gen, fd)
                else:
                    seg.file = fd
            seg.refs += 1
            segments.append(seg)
            k += 1
        segments.reverse()
        cursor = _Cursor(self, segments)
        self._cursors.add(cursor)
        return cursor

    def _unpin(self, seg: _Segment) -> None:
        seg.refs -= 1
        if seg.refs <= 0:
            if seg.fd >= 0:
                seg.close()
                self._orphan_bytes -= seg.orphan
            self._pinned.pop(seg.gen, None)
            while self._orphans and self._orphans[0].fd < 0:
                self._orphans.popleft()

    def _limit_orphans(self) -> None:
        """Count the file rotation just deleted if a reader pins it; past `orphan_limit`
        bytes of such files, let go of the oldest (their readers skip to the next)."""
        gone = self._pinned.get(self.generation - max(self.options.max_file, 1))
        if gone is not None and gone.fd >= 0 and not gone.orphan:
            gone.orphan = gone.size()
            self._orphans.append(gone)
            self._orphan_bytes += gone.orphan
        while self._orphan_bytes > self.orphan_limit and self._orphans:
            seg = self._orphans.popleft()
            if seg.fd >= 0 and seg.orphan:
                log.warning("logs.reader_lagging", path=str(self.path), dropped_bytes=seg.orphan)
                self._orphan_bytes -= seg.orphan
                seg.close()

    def _prune_marks(self) -> None:
        if not self._cursors:
            self._marks.clear()

    # ------------------------------------------------------------- readers
    def _start_at(self, cursor: _Cursor, since: float, tail: int, stop: Position) -> None:
        """Put a new cursor where `since` and `tail` say reading starts."""
        if since:
            # Skip whole files whose last record is older than `since`.
            while len(cursor.segments) > 1:
                last = _last_record_time(cursor.segments[0])
                if last is None or last >= since:
                    break
                cursor._drop_first()
        if tail >= 0:
            cursor.seek(_tail_position(list(cursor.segments), tail, stop))

    def read(
        self, *, since: float = 0.0, until: float = 0.0, tail: int = -1
    ) -> Generator[LogEntry, None, None]:
        """What is stored now, oldest first: records at or after `since`, up to the first
        after `until`, the last `tail` of those (-1: all). Lazy: rotation while the
        caller is between records changes nothing it gets."""
        for batch in self.read_batches(since=since, until=until, tail=tail):
            yield from batch

    def read_batches(
        self, *, since: float = 0.0, until: float = 0.0, tail: int = -1
    ) -> Generator[list[LogEntry], None, None]:
        """`read` in lists of up to about a MiB of records: one API write per list."""
        cursor = self._open_cursor()
        try:
            stop = cursor.end()
            if until and tail >= 0:
                # The last `tail` before `until`: keep a window while reading up to it.
                window: collections.deque[LogEntry] = collections.deque(maxlen=tail)
                self._start_at(cursor, since, -1, stop)
                for batch in _filtered(cursor, stop, since, until):
                    window.extend(batch)
                if window:
                    yield list(window)
                return
            self._start_at(cursor, since, tail, stop)
            yield from _filtered(cursor, stop, since, until)
        finally:
            cursor.release()

    async def follow(self, *, since: float = 0.0, tail: int = -1) -> AsyncGenerator[LogEntry, None]:
        """What is stored (as `read`), then every record written, across policy restarts,
        until the writer closes for good or the log is removed (see the module doc)."""
        async with contextlib.aclosing(self.follow_batches(since=since, tail=tail)) as batches:
            async for batch in batches:
                for entry in batch:
                    yield entry

    async def follow_batches(
        self, *, since: float = 0.0, tail: int = -1
    ) -> AsyncGenerator[list[LogEntry], None]:
        """`follow` in lists: each holds what was there to read at once (never empty)."""
        async with contextlib.aclosing(self.follow_raw(since=since, tail=tail)) as blobs:
            async for blob in blobs:
                entries = decode_records(blob)
                if since:
                    entries = [e for e in entries if record_seconds(e.time) >= since]
                if entries:
                    yield entries

    async def follow_raw(
        self, *, since: float = 0.0, tail: int = -1
    ) -> AsyncGenerator[bytes, None]:
        """`follow_batches` as stored whole lines (never empty), not decoded: for
        `logread.Wire`.  `since` only skips whole files here; the caller filters."""
        cursor = self._open_cursor()
        first_end = self._ends + 1
        stop: Position | None = cursor.end() if self._state == "ended" else None
        try:
            self._start_at(cursor, since, tail, stop or cursor.end())
            while True:
                if stop is None and first_end in self._marks:
                    stop = self._marks[first_end]  # stopped for good since it began
                blob, progressed = cursor.pull_raw(stop)
                if progressed:
                    if blob:
                        yield blob
                    await trio.lowlevel.checkpoint()
                    continue
                if stop is not None:
                    return
                await self._lot.park()
        finally:
            cursor.release()

    def read_raw(self, *, tail: int = -1) -> Generator[bytes, None, None]:
        """What is stored now (the last `tail` records, -1: all) as whole lines in
        blobs of about a MiB, not decoded: for `logread.Wire`."""
        cursor = self._open_cursor()
        try:
            stop = cursor.end()
            self._start_at(cursor, 0.0, tail, stop)
            while True:
                blob, progressed = cursor.pull_raw(stop)
                if not progressed:
                    return
                if blob:
                    yield blob
        finally:
            cursor.release()


def _units(lines: list[bytes] | bytes) -> Iterator[bytes | list[bytes]]:
    """An append's steps: a block cut at line ends into `STEP`s (its lines are at most
    `MAX_LINE` + 1 long), pieces in runs of at most `STEP` bytes or `STEP_PIECES`."""
    if isinstance(lines, bytes):
        pos, end = 0, len(lines)
        while end - pos > STEP:
            cut = lines.rfind(b"\n", pos, pos + STEP) + 1
            if cut <= pos:  # not a `feed_block` block: a line longer than a step
                cut = lines.find(b"\n", pos + STEP) + 1 or end
            yield lines[pos:cut]
            pos = cut
        if pos < end:
            yield lines[pos:] if pos else lines
        return
    i = 0
    while i < len(lines):
        j, size = i + 1, len(lines[i])
        while j < len(lines) and j - i < STEP_PIECES and size + len(lines[j]) <= STEP:
            size += len(lines[j])
            j += 1
        yield lines[i:j] if i or j < len(lines) else lines
        i = j


def _filtered(
    cursor: _Cursor, stop: Position, since: float, until: float
) -> Iterator[list[LogEntry]]:
    while True:
        entries, progressed = cursor.pull(stop)
        if not progressed:
            return
        if since or until:
            kept: list[LogEntry] = []
            for e in entries:
                t = record_seconds(e.time)
                if since and t < since:
                    continue
                if until and t > until:
                    if kept:
                        yield kept
                    return
                kept.append(e)
            entries = kept
        if entries:
            yield entries


def _tail_position(segments: list[_Segment], tail: int, stop: Position) -> Position:
    """Where the last `tail` records start, counting newlines backwards from `stop`."""
    need = tail
    for seg in reversed(segments):
        if seg.gen > stop[0]:
            continue
        end = stop[1] if seg.gen == stop[0] else seg.size()
        found = 0
        pos = end
        while pos > 0:
            start = max(0, pos - _BACK)
            block = os.pread(seg.fd, pos - start, start)
            idx = len(block)
            while (idx := block.rfind(b"\n", 0, idx)) >= 0:
                found += 1
                if found == need + 1:
                    return (seg.gen, start + idx + 1)
            pos = start
        need -= found
        if need <= 0:
            return (seg.gen, 0)
    return (segments[0].gen, 0) if segments else (0, 0)


def _last_record_time(seg: _Segment) -> float | None:
    """The time of a file's last record, reading backwards only as far as needed."""
    end = seg.size()
    pos = end
    buf = b""
    while pos > 0:
        start = max(0, pos - _BACK)
        buf = os.pread(seg.fd, pos - start, start) + buf
        pos = start
        body = buf.rstrip(b"\n")
        nl = body.rfind(b"\n")
        if nl >= 0 or pos == 0:
            entries = decode_records(body[nl + 1 :] + b"\n")
            return record_seconds(entries[-1].time) if entries else None
    return None
