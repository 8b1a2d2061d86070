"""Bytes from a container's pipe into json-file records, and records back into bytes.

Pure.  A `LineFramer` is fed chunks and hands back pieces as Docker's json-file driver
stores them: each complete line with its newline; a line longer than `MAX_LINE` (16 KiB,
Docker's copier buffer) cut into pieces without newline, the last one carrying it; at
end of stream the unterminated tail as a piece without newline.  Concatenating the
pieces gives back the exact bytes the container wrote, which is what `logs` prints.

Records are `{"log":"...","stream":"stdout","time":"...Z"}` lines.  The `log` text is
the piece decoded as UTF-8 with `surrogateescape`, then JSON-escaped to ASCII: valid
UTF-8 reads back as itself in any JSON reader, and bytes that are not UTF-8 are stored
as `\\udcXX` escapes, which corral turns back into the very bytes (Docker would have
stored U+FFFD there; other readers show exactly that).  Encoding and decoding are
written for speed (a million records a second or so): one C-level string escape per
record, and reading our own fixed record shape without building a dict.
"""

from __future__ import annotations

import ctypes
import json
import json.decoder
from collections.abc import Callable
from typing import NamedTuple, cast

MAX_LINE = 16 * 1024

_escape = json.encoder.encode_basestring_ascii  # the C one where there is one
_scanstring: Callable[[str, int], tuple[str, int]] = json.decoder.scanstring  # type: ignore[attr-defined]


class LineFramer:
    """Pieces as Docker stores them; the unterminated tail is kept as a list of chunks,
    so a process writing a long line a few bytes at a time costs linear time."""

    __slots__ = ("_parts", "_size")

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._size = 0

    def feed(self, data: bytes) -> list[bytes]:
        if b"\n" not in data and self._size + len(data) < MAX_LINE:
            if data:
                self._parts.append(data)
                self._size += len(data)
            return []
        buf = b"".join([*self._parts, data]) if self._parts else data
        lines = buf.split(b"\n")
        tail = lines.pop()
        out = [line + b"\n" for line in lines]
        if any(len(x) > MAX_LINE + 1 for x in out):
            cut: list[bytes] = []
            for line in out:
                while len(line) > MAX_LINE + 1:
                    cut.append(line[:MAX_LINE])
                    line = line[MAX_LINE:]
                cut.append(line)
            out = cut
        while len(tail) >= MAX_LINE:
            out.append(tail[:MAX_LINE])
            tail = tail[MAX_LINE:]
        self._parts = [tail] if tail else []
        self._size = len(tail)
        return out

    def feed_block(self, data: bytes) -> bytes | list[bytes]:
        """`feed`, but the whole lines as one block (each ending with its newline) when
        none is longer than `MAX_LINE`: the pieces then are the block's lines, and
        `encode_block` stores them without a Python statement per line."""
        cut = data.rfind(b"\n") + 1
        if not cut or len(data) - cut >= MAX_LINE:
            return self.feed(data)
        # one copy: the carried start of a line joined with the lines after it
        block = b"".join([*self._parts, memoryview(data)[:cut]]) if self._parts else data[:cut]
        pos, end = 0, len(block)
        while end - pos > MAX_LINE + 1:  # hop newline to newline, 16 KiB at most each
            nl = block.rfind(b"\n", pos, pos + MAX_LINE + 1)
            if nl < 0:
                return self.feed(data)  # a long line: `feed` cuts it
            pos = nl + 1
        tail = data[cut:]
        self._parts = [tail] if tail else []
        self._size = len(tail)
        return block

    @property
    def held(self) -> int:
        """How many bytes fed so far are held back (the start of a line)."""
        return self._size

    def flush(self) -> list[bytes]:
        """End of stream: the unterminated tail, stored as a partial record."""
        tail = b"".join(self._parts)
        self._parts, self._size = [], 0
        return [tail] if tail else []


class LogEntry(NamedTuple):
    stream: str  # stdout | stderr
    data: bytes  # exactly what the container wrote (a line, or a piece of one)
    time: str  # RFC 3339 with nanoseconds


def encode_records(stream: str, pieces: list[bytes], time: str) -> list[str]:
    """One json-file record (ASCII, newline-terminated) per piece."""
    tail = f',"stream":"{stream}","time":"{time}"}}\n'
    esc = _escape
    return ['{"log":' + esc(p.decode("utf-8", "surrogateescape")) + tail for p in pieces]


# What `encode_basestring_ascii` keeps as it is: printable ASCII but `"` and `\\`.
_PLAIN = bytes(sorted(set(range(0x20, 0x7F)) - set(b'"\\'))) + b"\n"


_HEAD = b'{"log":"'


def _libc_strspn() -> Callable[[bytes, bytes], int] | None:
    """libc's strspn(3), called on a bytes object's own buffer (no copy; the GIL let
    go meanwhile); None where there is no libc to load."""
    try:
        fn = ctypes.CDLL(None).strspn
    except (OSError, AttributeError):
        return None
    fn.restype = ctypes.c_size_t
    fn.argtypes = (ctypes.c_char_p, ctypes.c_char_p)
    return cast(Callable[[bytes, bytes], int], fn)


_strspn = _libc_strspn()
# Below this a translate is cheaper than a foreign call (about a microsecond).
_SPAN_FROM = 512


def is_plain(block: bytes) -> bool:
    """No byte of `block` needs a JSON escape (a newline is the records' separator).

    A pump checks every MiB it stores: `strspn` over the plain bytes runs at about
    four bytes a nanosecond, twice `translate`'s pace (a third of the store's user
    CPU for a million short lines).  It stops at the first byte not in the set or
    at the NUL CPython keeps after every bytes object's data, so a NUL inside the
    block (which needs an escape) ends the span early too: plain exactly when the
    span is the whole block."""
    if _strspn is None or len(block) < _SPAN_FROM:
        return not block.translate(None, _PLAIN)
    return bool(_strspn(block, _PLAIN) == len(block))


def block_records(
    stream: str, block: bytes, time: str, *, plain: bool = False
) -> tuple[bytes, memoryview, int] | None:
    """`encode_block`'s records as two buffers to write one after the other, so the
    records are made by one `replace` and copied by nothing else (the log writes
    them with one `writev`), and how many bytes each record adds to its line (the
    number of records is then a division, not a count); None when a byte needs an
    escape (`plain`: known already that none does)."""
    if not plain and not is_plain(block):
        return None
    tail = f'\\n","stream":"{stream}","time":"{time}"}}\n'.encode()
    body = block.replace(b"\n", tail + _HEAD)  # each line's record, the next's head
    return _HEAD, memoryview(body)[: len(body) - len(_HEAD)], len(tail) + len(_HEAD) - 1


def encode_block(stream: str, block: bytes, time: str) -> bytes | None:
    """The records of a block of whole lines (`feed_block`), as `encode_records` makes
    them, when no byte needs an escape; None otherwise (then record by record)."""
    parts = block_records(stream, block, time)
    return None if parts is None else b"".join(parts[:2])


def _to_bytes(text: str) -> bytes:
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate some other writer escaped
        return text.encode("utf-8", "replace")


def decode_record(line: str) -> LogEntry | None:
    """One record (without its newline); None for a line that is not one (skipped)."""
    if line.startswith('{"log":"') and line.endswith('"}'):
        # corral's and Docker's shape: log, stream, time in this order, no attrs.
        i = line.rfind(',"stream":"')
        j = line.find('","time":"', i + 11)
        stream = line[i + 11 : j]
        if i > 0 and j > 0 and '"' not in stream:
            text = line[8 : i - 1]
            if "\\" in text:
                text = _scanstring(line, 8)[0]
            return LogEntry(stream, _to_bytes(text), line[j + 10 : -2])
    try:
        rec = json.loads(line)
        return LogEntry(str(rec["stream"]), _to_bytes(str(rec["log"])), str(rec["time"]))
    except (ValueError, KeyError, TypeError):
        return None


def decode_records(blob: bytes) -> list[LogEntry]:
    """The records of whole lines of a json-file log; lines that are not records skipped."""
    out: list[LogEntry] = []
    add = out.append
    for line in blob.decode("utf-8", "surrogateescape").split("\n"):
        if line:
            entry = decode_record(line)
            if entry is not None:
                add(entry)
    return out
