"""Docker's multiplexed stream frames, demultiplexed: `[stream, 0, 0, 0, size(uint32
big-endian)]` + payload; stream 0/1 go to stdout, 2 to stderr, 3 is an error from the
daemon.  Logs of a `-t` container and any peer that sends an unframed stream are passed
through raw: the first header is checked for plausibility instead of asking the daemon
(one request saved per `logs`).  Imports nothing: the lean `logs` path (`cli/logslean`)
reads frames with it before any other module of the CLI loads.
"""

from __future__ import annotations

STDOUT = 1
STDERR = 2
SYSERR = 3


def _kind(stream: int) -> int:
    return stream if stream in (STDERR, SYSERR) else STDOUT


class Demuxer:
    """Incremental frame parser: feed bytes, get `(stream, payload)` pairs back."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._raw: bool | None = None

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        if self._raw is None and data:
            self._buf += data
            if self._buf[0] > 3 or (len(self._buf) >= 4 and self._buf[1:4] != b"\0\0\0"):
                self._raw = True
                data = bytes(self._buf)
                self._buf.clear()
                return [(STDOUT, data)]
            if len(self._buf) < 4:
                return []
            self._raw = False
            data = b""
        if self._raw:
            return [(STDOUT, data)] if data else []
        self._buf += data
        # Consecutive frames of one stream come out as one payload (a `logs` of a million
        # lines is a million frames): an offset walks the buffer, which is cut once.
        buf = self._buf
        out: list[tuple[int, bytes]] = []
        pos, end, size_of = 0, len(buf), int.from_bytes
        current = -1
        run: list[memoryview] = []
        with memoryview(buf) as view:
            add = run.append
            while end - pos >= 8:
                nxt = pos + 8 + size_of(view[pos + 4 : pos + 8], "big")
                if nxt > end:
                    break
                if buf[pos] != current or current == SYSERR:
                    if run:
                        out.append((_kind(current), b"".join(run)))
                        run.clear()
                    current = buf[pos]
                add(view[pos + 8 : nxt])
                pos = nxt
            if run:
                out.append((_kind(current), b"".join(run)))
                run.clear()
        del buf[:pos]
        return out

    def leftover(self) -> bytes:
        """Bytes of an incomplete frame (or an unjudged prefix) left at EOF."""
        return bytes(self._buf)
