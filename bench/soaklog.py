"""The soak's check of a writer's log: read as a stream through the Engine API, verified
incrementally, in constant memory.

A writer prints `line 1`, `line 2`, ... and, when stopped, `end N` (its count: the
line and the count are each one shell command, so the trap runs between them, never
inside).  `GET /containers/{id}/logs?stdout=1&stderr=1` (what `docker logs` asks for)
must then be exactly one stdcopy frame per line, `line 1` .. `line N` in order, then
`end N`.  The full soak's writers leave some 6 million lines each: reading that whole
into docker-py (`logs()` buffers the response, then walks it frame by frame) took more
than 40 minutes for 20 writers, so the check reads the response 1 MiB at a time and
compares it with the frames it expects, built for the next block of numbers (C-level
joins; no Python statement per line while all is well).  Where a block differs, that
block is walked frame by frame to count what is wrong (numbers skipped, frames going
backwards (repeats or late lines), foreign frames), and the stream goes on from there.
"""

from __future__ import annotations

import http.client
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import quote

BLOCK = 40_000  # lines compared at once (about 1 MiB of frames)
_HDR = struct.Struct(">BxxxI")


@dataclass
class LogFigures:
    lines: int = 0  # `line N` frames seen
    last: int = 0  # the highest N seen
    end: int | None = None  # the writer's own count, from its `end N` frame
    missing: int = 0  # numbers skipped going forward
    backwards: int = 0  # frames not above the highest number seen: repeats, or late
    foreign: int = 0  # frames that are neither (stderr, partial lines, other text)
    bytes: int = 0

    @property
    def whole(self) -> bool:
        """Every line the writer wrote, once, in order, and nothing else."""
        return (self.end is not None and self.end == self.last == self.lines
                and not (self.missing or self.backwards or self.foreign))


def expected(first: int, count: int) -> bytes:
    """The stdout frames of `line first` .. `line first+count-1`."""
    out = []
    n, stop = first, first + count
    while n < stop:
        width = len(str(n))
        upto = min(stop, 10**width)  # same width, same header
        hdr = _HDR.pack(1, 6 + width)
        out.append(b"".join([hdr + b"line %d\n" % i for i in range(n, upto)]))
        n = upto
    return b"".join(out)


class Checker:
    """Feed it the response's bytes in any pieces; it keeps at most a block and a bit."""

    def __init__(self) -> None:
        self.f = LogFigures()
        self._buf = b""
        self._seen_max = 0  # the highest number seen
        self._next = 1  # the number the next frame should carry
        self._want = (0, b"")  # the frames expected from (number)

    def feed(self, data: bytes) -> None:
        self.f.bytes += len(data)
        self._buf += data
        while True:
            if self._want[0] != self._next:
                self._want = (self._next, expected(self._next, BLOCK))
            want = self._want[1]
            if len(self._buf) < len(want):
                return
            if self._buf.startswith(want):
                self._buf = self._buf[len(want):]
                self._ok(BLOCK)
            else:
                before = len(self._buf)
                self._walk(final=False, limit=len(want))
                if len(self._buf) == before:  # a frame longer than what came yet
                    if before > 64 * BLOCK * 32:
                        raise RuntimeError(f"a log frame over {before} bytes")
                    return

    def close(self) -> LogFigures:
        self._walk(final=True, limit=len(self._buf))
        if self._buf:
            self.f.foreign += 1  # a torn frame at the end of the response
        return self.f

    def _ok(self, count: int) -> None:
        self.f.lines += count
        self._next += count
        self._seen_max = self.f.last = self._next - 1

    def _walk(self, *, final: bool, limit: int) -> None:
        """Frame by frame through the first `limit` bytes (whole frames only)."""
        buf, pos = self._buf, 0
        while pos + 8 <= len(buf) and (final or pos < limit):
            stream, size = _HDR.unpack_from(buf, pos)
            if pos + 8 + size > len(buf):
                break
            self._frame(stream, buf[pos + 8:pos + 8 + size])
            pos += 8 + size
        self._buf = buf[pos:]

    def _frame(self, stream: int, text: bytes) -> None:
        f = self.f
        parts = text.split()
        if stream != 1 or len(parts) != 2 or not text.endswith(b"\n") or not parts[1].isdigit():
            f.foreign += 1
            return
        n = int(parts[1])
        if parts[0] == b"end":
            if f.end is not None:
                f.foreign += 1
            f.end = n
            return
        if parts[0] != b"line":
            f.foreign += 1
            return
        f.lines += 1
        if n <= self._seen_max:
            f.backwards += 1  # seen before, or counted missing and now late
        else:
            f.missing += n - self._next
            self._next = n + 1
            self._seen_max = f.last = n


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self._path)


def stream_log(sock: str, name: str, timeout: float = 300) -> Iterator[bytes]:
    """The body of `GET /containers/NAME/logs?stdout=1&stderr=1`, 1 MiB at a time."""
    conn = _UnixConnection(sock, timeout)
    try:
        conn.request("GET", f"/v1.44/containers/{quote(name)}/logs?stdout=1&stderr=1")
        resp = conn.getresponse()
        if resp.status != 200:
            raise RuntimeError(f"logs {name}: {resp.status} {resp.read()[:200]!r}")
        while chunk := resp.read1(1 << 20):
            yield chunk
    finally:
        conn.close()


def check_log(sock: str, name: str) -> LogFigures:
    c = Checker()
    for chunk in stream_log(sock, name):
        c.feed(chunk)
    return c.close()
