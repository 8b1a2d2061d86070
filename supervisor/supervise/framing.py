"""Log line framing: bytes from a pipe into lines, as Docker's json-file driver frames them.

Pure: a `LineFramer` is fed chunks and hands back complete lines (with their newline);
a line longer than `MAX_LINE` is cut into pieces so one chatty process cannot make the
daemon buffer without bound.  `flush` returns the unterminated tail at end of stream.
"""

from __future__ import annotations

MAX_LINE = 16 * 1024


class LineFramer:
    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = b""

    def feed(self, data: bytes) -> list[bytes]:
        buf = self._buf + data if self._buf else data
        lines = buf.split(b"\n")
        tail = lines.pop()
        out = [line + b"\n" for line in lines]
        while len(tail) >= MAX_LINE:
            out.append(tail[:MAX_LINE])
            tail = tail[MAX_LINE:]
        self._buf = tail
        # Overlong complete lines are cut too.
        if any(len(x) > MAX_LINE + 1 for x in out):
            cut: list[bytes] = []
            for line in out:
                while len(line) > MAX_LINE + 1:
                    cut.append(line[:MAX_LINE])
                    line = line[MAX_LINE:]
                cut.append(line)
            out = cut
        return out

    def flush(self) -> list[bytes]:
        tail, self._buf = self._buf, b""
        return [tail] if tail else []
