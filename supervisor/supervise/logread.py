"""json-file records straight to the bytes `GET /containers/{id}/logs` sends, pure.

The general reader (`framing.decode_records`) builds a `LogEntry` per record and the API
then framed each one: ~4.5 s of CPU for a million lines.  Nearly every record corral or
Docker writes has one shape, a line with no escape but its final `\\n`:
`{"log":"TEXT\\n","stream":"stdout","time":"..."}`, whose stored TEXT *is* the
container's bytes.  And corral stores a whole pipe read (an append) with one time, so
a log is made of *runs*: consecutive records of one stream and one time, each ending
with the same bytes `KEY` = `\\n","stream":"S","time":"T"}\\n`.

`Wire` cuts a blob into runs without a Python statement per record: from a run's first
record it knows KEY, gallops and bisects over line ends to the run's last record (a
few dozen `find`s, never a scan of the blob per run), then one `bytes.replace` of
`KEY{"log":"` by a newline turns the run into its texts (no list of lines: a frame per
record, for docker-py, splits the result).  Whether the run really has the shape is
checked on the result: one separator replaced per line end but the last, and texts
with no `"` and no `\\`, hold exactly when every
record of the run was `{"log":"TEXT\\n` + KEY with a TEXT free of escapes (the
separator holds quotes, an escape a backslash; what is left of any other line holds
one of them).  A run that fails (escapes, partial lines, non-UTF-8 stored as
`\\udcXX`, foreign writers, attrs) goes record by record through the general path, so
the output is byte for byte the same either way: one stdcopy frame per record
(docker-py's `logs(stream=True)` yields a frame at a time, so frames are not merged
unless the client asked: corral's CLI sends `X-Corral-Frames: merged` and gets one
frame per run, which any stdcopy reader demultiplexes to the same bytes), raw bytes
with a TTY.

Why not orjson: the cost was never JSON parsing (the fast shape needs none), it was the
per-record Python objects; a native parser would still build them.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from itertools import repeat

from supervisor.supervise.framing import decode_records

__all__ = ["MERGE_HEADER", "Run", "Wire", "runs"]

MERGE_HEADER = "X-Corral-Frames"  # value "merged": one frame per run, not per record
_START = b'{"log":"'
_STREAM = b'","stream":"'
_TIME = b'","time":"'
_END = b'"}\n'
_STEP = 4096  # the gallop's first stride, bytes (~30 records of 60 bytes)
_IDS = {"stdout": 1, "stderr": 2, b"stdout": 1, b"stderr": 2}
_pack = struct.Struct(">BxxxI").pack

# A run: (stream, time, the records' texts joined by newlines: no text holds one), or
# (None, None, stored lines) for lines that go through the general decoder.
Run = tuple[bytes | None, bytes | None, bytes]


def _run_key(blob: bytes, a: int) -> tuple[bytes, bytes, int] | None:
    """(stream, time, end) of the record at `a` if it has the fast shape, else None."""
    if not blob.startswith(_START, a):
        return None
    e = blob.find(b"\n", a) + 1
    if e <= 0 or not blob.startswith(_END, e - 3):
        return None
    i = blob.rfind(_STREAM, a, e)
    j = blob.find(_TIME, i + 12, e) if i > 0 else -1
    if j < 0 or not blob.startswith(b"\\n", i - 2):
        return None
    stream = blob[i + 12 : j]
    if stream not in (b"stdout", b"stderr"):
        return None
    time = blob[j + 10 : e - 3]
    text = blob[a + 8 : i - 2]
    if b'"' in time or b"\\" in time or b'"' in text or b"\\" in text:
        return None
    return stream, time, e


def _run_end(blob: bytes, key: bytes, good: int) -> int:
    """The end of the last line from `good` on that ends with `key`, where the lines
    ending so are a prefix (gallop, then bisect over line ends)."""
    end = len(blob)
    size = len(key)
    step = _STEP
    while True:  # gallop
        p = good + step
        q = end if p >= end else blob.find(b"\n", p) + 1
        if q <= 0:
            q = end
        if not blob.startswith(key, q - size):
            bad = q
            break
        good = q
        if q >= end:
            return good
        step *= 2
    while True:  # bisect: `good` ends a line that ends with `key`, `bad` one that does not
        q = blob.find(b"\n", (good + bad) // 2) + 1
        if q >= bad or q <= good:
            q = blob.find(b"\n", good) + 1
            if q >= bad:
                return good
        if blob.startswith(key, q - size):
            good = q
        else:
            bad = q


def _clean(text: bytes) -> bool:
    return b'"' not in text and b"\\" not in text


def runs(blob: bytes) -> Iterator[Run]:
    """The runs of a blob of whole json-file lines, in order (see the module doc)."""
    pos, end = 0, len(blob)
    slow = -1  # where lines for the general decoder began
    broken = 0  # runs cut short in a row (a few are tried again, then decoded whole)
    while pos < end:
        head = _run_key(blob, pos)
        if head is None:  # decoded, with the lines next to it that are not of the shape
            if slow < 0:
                slow = pos
            nl = blob.find(b"\n", pos) + 1
            pos = nl if nl > 0 else end
            continue
        stream, time, first = head
        key = b'\\n","stream":"' + stream + b'","time":"' + time + b'"}\n'
        stop = _run_end(blob, key, first)
        # The run's texts with one replace: its junctions (KEY then the next record's
        # start) become newlines.  It is all of the shape exactly when every newline
        # but the last is a junction and no text holds a quote or backslash.
        body = blob[pos + 8 : stop - len(key)]
        joined = body.replace(key + _START, b"\n")
        junctions = (len(body) - len(joined)) // (len(key) + len(_START) - 1)
        if junctions == blob.count(b"\n", pos, stop) - 1 and _clean(joined):
            if slow >= 0:
                yield None, None, blob[slow:pos]
                slow = -1
            yield stream, time, joined
            broken = 0
            pos = stop
            continue
        # Not all of the shape: the records before the first that is not are fast,
        # that one is decoded, the next are tried again (decoded after a few such
        # tries: each costs the rest of the run).  Each line is one record.
        lines = blob[pos:stop].split(b"\n")
        lines.pop()  # the empty piece after the last newline
        suffix = key[:-1]
        good = 0
        for line in lines:
            if not (line.startswith(_START) and line.endswith(suffix)
                    and _clean(line[8 : 1 - len(key)])):  # fmt: skip
                break
            good += 1
        if good:
            if slow >= 0:
                yield None, None, blob[slow:pos]
                slow = -1
            yield stream, time, b"\n".join(line[8 : 1 - len(key)] for line in lines[:good])
        if good == len(lines):  # (cannot be: then every newline was a junction)
            pos = stop
            continue
        bad = pos + sum(map(len, lines[:good])) + good  # the line that is not
        if slow < 0:
            slow = bad
        broken += 1
        pos = stop if broken > 2 else bad + len(lines[good]) + 1
    if slow >= 0:
        yield None, None, blob[slow:end]


class Wire:
    """What one logs request sends for a blob of whole json-file lines (see module doc)."""

    __slots__ = ("_merged", "_timestamps", "_tty", "_want")

    def __init__(
        self, *, stdout: bool, stderr: bool, timestamps: bool, tty: bool, merged: bool = False
    ) -> None:
        self._want = {b"stdout": stdout, b"stderr": stderr, "stdout": stdout, "stderr": stderr}
        self._timestamps = timestamps
        self._tty = tty
        self._merged = merged

    def __call__(self, blob: bytes) -> bytes:
        if not blob:
            return b""
        out: list[bytes] = []
        for stream, time, joined in runs(blob):
            if stream is None:
                self._slow(joined, out)
            elif self._want[stream]:
                assert time is not None
                self._run(_IDS[stream], time, joined, out)
        return b"".join(out)

    def _run(self, sid: int, time: bytes, joined: bytes, out: list[bytes]) -> None:
        stamp = time + b" " if self._timestamps else b""
        if (self._tty or self._merged) and not stamp:
            if not self._tty:
                out.append(_pack(sid, len(joined) + 1))
            out += (joined, b"\n")
            return
        texts = joined.split(b"\n")
        if self._tty or self._merged:
            data = stamp + (b"\n" + stamp).join(texts) + b"\n"
            if not self._tty:
                out.append(_pack(sid, len(data)))
            out.append(data)
            return
        # A frame per record: [head, stamp+text, "\n"] each, interleaved by slices.
        count = len(texts)
        extra = len(stamp) + 1
        parts = [b"\n"] * (3 * count)
        parts[0::3] = map(_pack, repeat(sid, count), map(extra.__add__, map(len, texts)))
        parts[1::3] = map(stamp.__add__, texts) if stamp else texts
        out.extend(parts)

    def _slow(self, blob: bytes, out: list[bytes]) -> None:
        for e in decode_records(blob):
            if not self._want.get(e.stream, False):
                continue
            data = e.time.encode() + b" " + e.data if self._timestamps else e.data
            if not data:
                continue
            if not self._tty:
                out.append(_pack(_IDS.get(e.stream, 1), len(data)))
            out.append(data)
