"""Each container's log: every line with its stream and a nanosecond timestamp.

Stored in Docker's json-file format (`{"log": "...\\n", "stream": "stdout", "time":
"...Z"}` one per line) in `<container dir>/<id>-json.log`, so existing tools read it.
The writer appends and then wakes followers through a `trio.lowlevel.ParkingLot`; a
follower reads the file from its own offset, so every line reaches it exactly once and
nothing polls.  Because the trio thread is single, "read to end, then park" can not miss
a write.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import trio

from supervisor.engine.timefmt import parse_rfc3339


@dataclass(frozen=True)
class LogEntry:
    stream: str  # stdout | stderr
    data: bytes
    time: str  # RFC 3339, nanoseconds


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


class ContainerLog:
    """Owner of one container's log file and of its followers' wake-ups."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = None if not path.parent.exists() else path.open("ab")
        self._lot = trio.lowlevel.ParkingLot()
        self.closed = False  # no writer now: followers stop at end of file

    def open_writer(self) -> None:
        """A new run of the container: followers wait for its lines again."""
        if self._file is None:
            self._file = self.path.open("ab")
        self.closed = False

    def append(self, stream: str, lines: list[bytes]) -> None:
        if not lines or self._file is None:
            return
        ts = _clock.now()
        dumps = json.dumps
        out = [
            dumps({"log": line.decode("utf-8", "replace"), "stream": stream, "time": ts})
            for line in lines
        ]
        self._file.write(("\n".join(out) + "\n").encode())
        self._file.flush()
        self._lot.unpark_all()

    def close_writer(self) -> None:
        """The container stopped: followers finish once they reach the end."""
        self.closed = True
        self._lot.unpark_all()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        self.close_writer()

    def read(self, *, since: float = 0.0, until: float = 0.0, tail: int = -1) -> list[LogEntry]:
        entries = list(self._entries_from(0)[0])
        if since or until:
            entries = [
                e
                for e in entries
                if (not since or parse_rfc3339(e.time) >= since)
                and (not until or parse_rfc3339(e.time) <= until)
            ]
        if tail >= 0:
            entries = entries[-tail:] if tail else []
        return entries

    def _entries_from(self, offset: int) -> tuple[Iterator[LogEntry], int]:
        try:
            with self.path.open("rb") as f:
                f.seek(offset)
                blob = f.read()
        except FileNotFoundError:
            return iter(()), offset
        end = blob.rfind(b"\n") + 1
        complete = blob[:end]

        def gen() -> Iterator[LogEntry]:
            for raw in complete.splitlines():
                rec = json.loads(raw)
                yield LogEntry(rec["stream"], rec["log"].encode(), rec["time"])

        return gen(), offset + end

    def end_offset(self) -> int:
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    async def follow(self, *, since: float = 0.0, tail: int = -1) -> AsyncIterator[LogEntry]:
        """What is stored (filtered), then every new line until the writer closes."""
        offset = self.end_offset()
        for entry in self.read(since=since, tail=tail):
            yield entry
        while True:
            entries, offset = self._entries_from(offset)
            for entry in entries:
                yield entry
            if self.closed:
                # One last read: lines written just before the close.
                entries, offset = self._entries_from(offset)
                for entry in entries:
                    yield entry
                return
            await self._lot.park()
