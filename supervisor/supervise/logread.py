"""json-file records straight to the bytes `GET /containers/{id}/logs` sends, pure.

The general reader (`framing.decode_records`) builds a `LogEntry` per record and the API
then framed each one: ~4.5 s of CPU for a million lines, most of what `logs` took.
Nearly every record corral or Docker writes has one shape, a line with no escape but its
final `\\n`: `{"log":"TEXT\\n","stream":"stdout","time":"..."}`, whose stored TEXT *is*
the container's bytes.  `Wire` turns a blob of such lines into output without a Python
statement per record: one `re.split` cuts out the texts (and streams and times when they
matter), `map` builds the frame headers and list slice assignment interleaves the
parts, all in C.  Whether the whole blob has the shape is checked by counting: every
line ends with the separator the split consumed, and such a line has exactly one
backslash and twelve quotes only when its TEXT has none (JSON escapes every `"` and
`\\` in it).  A blob that fails (escapes, partial lines, non-UTF-8, foreign writers,
a stream not asked for among others) goes record by record through the general path,
so the output is byte for byte the same either way: one stdcopy frame per record
(docker-py's `logs(stream=True)` yields a frame at a time, so frames are never merged),
raw bytes with a TTY.

Why not orjson: the cost was never JSON parsing (the fast shape needs none), it was the
per-record Python objects; a native parser would still build them.
"""

from __future__ import annotations

import operator
import re
import struct
from itertools import repeat

from supervisor.supervise.framing import decode_records

__all__ = ["Wire"]

_END = rb'"\}\n(?:\{"log":"|\Z)'  # a record's end and the next one's start
# One stream, times not wanted: the texts only.
_ONE = {
    s: re.compile(rb'\\n","stream":"' + s + rb'","time":"[^"\\\n]*' + _END)
    for s in (b"stdout", b"stderr")
}
# Either stream, or times wanted: text, stream, time, text, stream, time, ...
_ANY = re.compile(rb'\\n","stream":"(stdout|stderr)","time":"([^"\\\n]*)' + _END)
_QUOTES = 12  # in a fast-shape record: 2 per key (3), 2 each around log, stream, time
_PREFIX = b'{"log":"'
_IDS = {"stdout": 1, "stderr": 2, b"stdout": 1, b"stderr": 2}
_pack = struct.Struct(">BxxxI").pack


class Wire:
    """What one logs request sends for a blob of whole json-file lines (see module doc)."""

    __slots__ = ("_timestamps", "_tty", "_want")

    def __init__(self, *, stdout: bool, stderr: bool, timestamps: bool, tty: bool) -> None:
        self._want = {"stdout": stdout, "stderr": stderr}
        self._timestamps = timestamps
        self._tty = tty

    def __call__(self, blob: bytes) -> bytes:
        if not blob:
            return b""
        fast = self._fast(blob)
        return self._slow(blob) if fast is None else fast

    def _fast(self, blob: bytes) -> bytes | None:
        n = blob.count(b"\n")
        if blob.count(b"\\") != n or blob.count(b'"') != _QUOTES * n:
            return None
        if not blob.startswith(_PREFIX) or not blob.endswith(b"\n"):
            return None
        has = [s for s in ("stdout", "stderr") if f'","stream":"{s}"'.encode() in blob]
        if not all(self._want[s] for s in has):
            if any(self._want[s] for s in has):
                return None  # mixed with a stream not asked for: record by record
            return b""
        if len(has) == 1 and not self._timestamps:
            pieces = _ONE[has[0].encode()].split(blob, n)
            if len(pieces) != n + 1:
                return None
            pieces[0] = pieces[0][len(_PREFIX) :]
            if self._tty:
                return b"\n".join(pieces)
            texts = pieces[:-1]
            heads = map(_pack, repeat(_IDS[has[0]]), map((1).__add__, map(len, texts)))
            out = [b"\n"] * (3 * n)
            out[0::3] = heads
            out[1::3] = texts
            return b"".join(out)
        pieces = _ANY.split(blob, n)
        if len(pieces) != 3 * n + 1:
            return None
        pieces[0] = pieces[0][len(_PREFIX) :]
        texts = pieces[0:-1:3]
        if not self._timestamps:
            parts, step = [b"\n"] * (3 * n), 3
            parts[1::3] = texts
            sizes = map((1).__add__, map(len, texts))
        else:
            times = pieces[2::3]
            parts, step = [b" "] * (5 * n), 5
            parts[1::5] = times
            parts[3::5] = texts
            parts[4::5] = repeat(b"\n", n)
            sizes = map((2).__add__, map(operator.add, map(len, times), map(len, texts)))
        if self._tty:
            del parts[0::step]
        else:
            parts[0::step] = map(_pack, map(_IDS.__getitem__, pieces[1::3]), sizes)
        return b"".join(parts)

    def _slow(self, blob: bytes) -> bytes:
        out: list[bytes] = []
        for e in decode_records(blob):
            if not self._want.get(e.stream, False):
                continue
            data = e.time.encode() + b" " + e.data if self._timestamps else e.data
            if not data:
                continue
            if not self._tty:
                out.append(_pack(_IDS.get(e.stream, 1), len(data)))
            out.append(data)
        return b"".join(out)
