"""Sans-I/O HTTP/1.1 for corral's clients and its API server, in the shape of h11.

This module is what both halves read alike -- the HTTP/1.1 grammar and the body
framing; `server` holds `ServerConnection` (the API daemon's half: requests,
keep-alive, 100-continue, `switch_protocols` for Docker's hijack and the websocket's
101) and `client` holds `ClientConnection` (the response framing: HEAD/1xx/204/304,
close-delimited, the upgrade and the stream bytes read past its head): bytes in,
events out, a state table each.  `websocket` is the attach websocket's handshake and
frames.  The I/O is the adapters': blocking for the CLI (`supervisor.api.client`),
trio for the daemon (`supervisor.api.server`, `supervisor.api.websocket`), the compose
client (`supervisor.compose.client`) and the bench.

A request and a response differ in their first line and in how the body's framing
is chosen (RFC 9112 §6.3); everything else is one grammar, kept here once: header
lines, the end of a head, Content-Length values, chunk-size lines with their
extensions, trailers, and `BodyReader`, the state machine that cuts a body out of
a connection's buffer (by length, chunked, or up to EOF).  Read strictly where
leniency lets two parsers disagree about where a message ends (request smuggling,
`tests/test_api_http_oracle.py`): control characters in field values, obs-fold,
malformed chunk extensions and chunk lines not ended by CRLF are refused; a bare LF
ends a line only in the head and the trailers.

Why here and not in a `wire` module of its own: the CLI pays for every import on
every command, and a module costs its lookup (~0.7 M instructions, as much as all
of this code) beside its code; the package's module is loaded anyway.  So this,
like `client`, imports nothing (no `re`, `typing`, `dataclasses`); `server` needs
`re`, `urllib.parse`, `http`, and only the daemon loads it.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not `typing.TYPE_CHECKING`: importing typing costs the CLI ~4 ms
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

MAX_HEAD_SIZE = 64 * 1024
MAX_CHUNK_LINE = 4096

TCHAR = frozenset(b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_HEX = frozenset(b"0123456789abcdefABCDEF")
_CTL = frozenset(range(0x20)) - {0x09} | {0x7F}  # controls but HTAB (RFC 9110 §5.5)
_BLANK = frozenset(b" \t")
# quoted-string (RFC 9110 §5.6.4): qdtext, and what a backslash may quote
_QDTEXT = frozenset({0x09, 0x20, 0x21, *range(0x23, 0x5C), *range(0x5D, 0x7F), *range(0x80, 0x100)})
_QPAIR = frozenset({0x09, *range(0x20, 0x7F), *range(0x80, 0x100)})


class ProtocolError(Exception):
    """The peer broke HTTP; a server answers with `status` (400 unless said) and closes."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class Headers:
    """Header fields in arrival order; name lookups are case-insensitive."""

    __slots__ = ("raw",)

    def __init__(self, raw: Iterable[tuple[str, str]] = ()) -> None:
        self.raw: list[tuple[str, str]] = list(raw)

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value of `name`, or `default`."""
        lname = name.lower()
        for key, value in self.raw:
            if key.lower() == lname:
                return value
        return default

    def get_all(self, name: str) -> list[str]:
        lname = name.lower()
        return [value for key, value in self.raw if key.lower() == lname]

    def tokens(self, name: str) -> set[str]:
        """Comma-separated tokens of every `name` field, lower-cased (Connection, TE)."""
        return set(tokens(self.raw, name))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self.raw)

    def __repr__(self) -> str:
        return f"Headers({self.raw!r})"


# -- events both halves produce ---------------------------------------------------
class Data:
    """A piece of a message body."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Data) and other.data == self.data

    def __hash__(self) -> int:
        return hash(self.data)

    def __repr__(self) -> str:
        return f"Data({self.data!r})"


class EndOfMessage:
    """The body is over; `trailers` are the chunked body's trailer fields."""

    __slots__ = ("trailers",)

    def __init__(self, trailers: Headers | None = None) -> None:
        self.trailers = trailers if trailers is not None else Headers()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, EndOfMessage) and other.trailers.raw == self.trailers.raw

    def __hash__(self) -> int:
        return hash(tuple(self.trailers.raw))

    def __repr__(self) -> str:
        return f"EndOfMessage({self.trailers.raw!r})"


class NeedData:
    """Feed the connection more bytes (or EOF) before asking again."""

    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA = NeedData()


# -- the grammar --------------------------------------------------------------------
def is_token(name: bytes) -> bool:
    return bool(name) and TCHAR.issuperset(name)


def tokens(headers: Iterable[tuple[str, str]], name: str) -> list[str]:
    """Comma-separated tokens of every `name` field, lower-cased, in order."""
    return [
        t.strip().lower()
        for key, value in headers
        if key.lower() == name
        for t in value.split(",")
        if t.strip()
    ]


def parse_header_line(line: bytes) -> tuple[str, str]:
    """`name: value` of one field line (RFC 9112 §5), value without its blanks."""
    if line[:1] in (b" ", b"\t"):
        raise ProtocolError("obsolete header line folding")
    name, colon, value = line.partition(b":")
    if not colon or not is_token(name):
        raise ProtocolError(f"malformed header line {line[:100]!r}")
    if not _CTL.isdisjoint(value):
        bad = next(b for b in value if b in _CTL)
        raise ProtocolError(f"header {name.decode('ascii')} contains control character 0x{bad:02x}")
    return name.decode("ascii"), value.strip(b" \t").decode("latin-1")


def take_head(buf: bytearray, what: str) -> list[bytes] | None:
    """Cut a whole head (start line and field lines, CR stripped) off `buf`; None if
    it has not all arrived.  A head ends at an empty line, CRLF or bare LF."""
    end, sep = buf.find(b"\r\n\r\n"), 4
    alt = buf.find(b"\n\n")
    if alt >= 0 and (end < 0 or alt < end):
        end, sep = alt, 2
    if end < 0 and len(buf) > MAX_HEAD_SIZE or end > MAX_HEAD_SIZE:
        raise ProtocolError(f"{what} head too large", 431)
    if end < 0:
        return None
    head = bytes(buf[:end])
    del buf[: end + sep]
    return [ln[:-1] if ln.endswith(b"\r") else ln for ln in head.split(b"\n")]


def content_length(values: list[str]) -> int:
    """The body length the Content-Length fields give (RFC 9110 §8.6): equal repeats
    are one value, different ones or anything but ASCII digits an error."""
    lengths = {v.strip() for value in values for v in value.split(",")}
    if len(lengths) != 1:
        raise ProtocolError("conflicting Content-Length values")
    value = lengths.pop()
    # isascii: str.isdigit() also takes digits int() refuses ("\u00b2")
    if not (value.isascii() and value.isdigit()) or len(value) > 18:
        raise ProtocolError(f"invalid Content-Length {value[:20]!r}")
    return int(value)


def _blanks(line: bytes, i: int) -> int:
    while i < len(line) and line[i] in _BLANK:
        i += 1
    return i


def _token_end(line: bytes, i: int) -> int:
    while i < len(line) and line[i] in TCHAR:
        i += 1
    return i


def _quoted_end(line: bytes, i: int) -> int:
    """Past the quoted-string opening at `i`; -1 if it is not one."""
    i += 1
    while i < len(line):
        b = line[i]
        if b == 0x22:
            return i + 1
        if b == 0x5C and i + 1 < len(line) and line[i + 1] in _QPAIR:
            i += 2
        elif b in _QDTEXT:
            i += 1
        else:
            return -1
    return -1


def parse_chunk_size(line: bytes) -> int:
    """The size of `chunk-size [ chunk-ext ]` (RFC 9112 §7.1.1); blanks around the
    extensions' separators and at the end are tolerated, as h11 and Go do."""
    n = len(line)
    i = 0
    while i < n and line[i] in _HEX:
        i += 1
    size_text = line[:i]
    ok = i > 0
    while ok:
        i = _blanks(line, i)
        if i == n:
            break
        if line[i] != 0x3B:  # ";"
            ok = False
            break
        start = _blanks(line, i + 1)
        i = _token_end(line, start)
        if i == start:
            ok = False
            break
        j = _blanks(line, i)
        if j < n and line[j] == 0x3D:  # "=" value
            start = _blanks(line, j + 1)
            if start < n and line[start] == 0x22:
                i = _quoted_end(line, start)
                ok = i > 0
            else:
                i = _token_end(line, start)
                ok = i > start
    if not ok:
        raise ProtocolError(f"malformed chunk size line {line[:40]!r}")
    digits = size_text.lstrip(b"0")
    if len(digits) > 16:
        raise ProtocolError(f"chunk size {size_text[:20]!r} is too large")
    return int(digits or b"0", 16)


def format_head(start_line: str, headers: Iterable[tuple[str, str]]) -> bytes:
    """A head to send: the start line, field lines, the empty line.  A name that is
    not a token or a value with a control character is a bug of ours: ValueError."""
    lines = [start_line]
    for name, value in headers:
        if not is_token(name.encode("latin-1")) or not _CTL.isdisjoint(value.encode("latin-1")):
            raise ValueError(f"bad header {name!r}: {value!r}")
        lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def format_chunk(data: bytes) -> bytes:
    """One chunk of a chunked body (never pass b"": that ends the body)."""
    return b"%x\r\n%s\r\n" % (len(data), data)


LAST_CHUNK = b"0\r\n\r\n"

# -- body framing ------------------------------------------------------------------
LENGTH = "LENGTH"  # Content-Length bytes
CHUNK_SIZE = "CHUNK_SIZE"
CHUNK_DATA = "CHUNK_DATA"
CHUNK_CRLF = "CHUNK_CRLF"
TRAILERS = "TRAILERS"
TO_EOF = "TO_EOF"  # a response without framing: the body runs to EOF
END = "END"  # all of it arrived; EndOfMessage is owed
DONE = "DONE"

#: where in a body a peer that stops sending left it (for the error message)
WHERE = {
    LENGTH: "before the end of the body",
    CHUNK_SIZE: "inside a chunked body",
    CHUNK_DATA: "inside a chunk",
    CHUNK_CRLF: "inside a chunked body",
    TRAILERS: "inside the trailers",
}


class BodyReader:
    """One message body cut out of a connection's buffer: `next_event(buf, eof)` gives
    `Data`, then `EndOfMessage`, or `NEED_DATA` (at EOF the caller says who broke
    off: each side words it for its reader).  `state` is the table's key."""

    __slots__ = ("_remaining", "_trailer_bytes", "_trailers", "state")

    def __init__(self, state: str, length: int = 0) -> None:
        self.state = END if state == LENGTH and not length else state
        self._remaining = length
        self._trailers: list[tuple[str, str]] = []
        self._trailer_bytes = 0

    @classmethod
    def chunked(cls) -> BodyReader:
        return cls(CHUNK_SIZE)

    @classmethod
    def length(cls, n: int) -> BodyReader:
        return cls(LENGTH, n)

    @property
    def pending(self) -> bool:
        """Bytes of the body are still to come (not just its end)."""
        return self.state not in (END, DONE)

    def next_event(self, buf: bytearray, eof: bool) -> Data | EndOfMessage | NeedData:
        while True:
            state = self.state
            if state == END:
                self.state = DONE
                return EndOfMessage(Headers(self._trailers))
            if state in (LENGTH, CHUNK_DATA):
                if not buf:
                    return NEED_DATA
                n = min(self._remaining, len(buf))
                data = bytes(buf[:n])
                del buf[:n]
                self._remaining -= n
                if not self._remaining:
                    self.state = END if state == LENGTH else CHUNK_CRLF
                return Data(data)
            if state == TO_EOF:
                if buf:
                    data = bytes(buf)
                    buf.clear()
                    return Data(data)
                if not eof:
                    return NEED_DATA
                self.state = END
            elif state == CHUNK_SIZE:
                line = _line(buf, MAX_CHUNK_LINE, "chunk size line", crlf=True)
                if line is None:
                    return NEED_DATA
                self._remaining = parse_chunk_size(line)
                self.state = CHUNK_DATA if self._remaining else TRAILERS
            elif state == CHUNK_CRLF:
                if buf[:2] == b"\r\n":
                    del buf[:2]
                elif not buf or buf == b"\r":
                    return NEED_DATA
                else:
                    raise ProtocolError("missing CRLF after chunk data")
                self.state = CHUNK_SIZE
            elif state == TRAILERS:
                line = _line(buf, MAX_HEAD_SIZE, "trailer")
                if line is None:
                    return NEED_DATA
                if line == b"":
                    self.state = END
                    continue
                self._trailer_bytes += len(line)
                if self._trailer_bytes > MAX_HEAD_SIZE:
                    raise ProtocolError("trailers too large", 431)
                self._trailers.append(parse_header_line(line))
            else:
                raise ProtocolError(f"no body event to receive in state {state}")


def _line(buf: bytearray, limit: int, what: str, *, crlf: bool = False) -> bytes | None:
    """The next line without its terminator; `crlf`: a bare LF is an error."""
    idx = buf.find(b"\n")
    if idx < 0:
        if len(buf) > limit:
            raise ProtocolError(f"{what} too long", 431 if what == "trailer" else 400)
        return None
    line = bytes(buf[:idx])
    del buf[: idx + 1]
    if line.endswith(b"\r"):
        return line[:-1]
    if crlf:
        raise ProtocolError(f"{what} {line[:40]!r} not ended by CRLF")
    return line
