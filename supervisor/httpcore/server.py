"""Sans-I/O HTTP/1.1, server side, in the style of h11.

`ServerConnection` is pure state: `feed()` it the bytes read from the socket
(`b""` for EOF) and call `next_event()` until it answers `NEED_DATA`.  Events:

* `Request` -- a parsed request head;
* `Data` -- a chunk of the request body (Content-Length or chunked);
* `EndOfMessage` -- the body is over (also sent right after a body-less request);
* `ConnectionClosed` -- the peer closed cleanly between requests;
* `NEED_DATA` -- feed more bytes.

Malformed input raises `ProtocolError` (answer it with `.status`, then close).
The grammar is RFC 9112's, read strictly where leniency lets two parsers disagree
about where a message ends (request smuggling): header values with control
characters, obs-fold, Transfer-Encoding with Content-Length, chunk lines not ended
by CRLF and malformed chunk extensions are refused; bare LF ends a line only in the
head and the trailers.  `tests/test_api_http_oracle.py` holds this parser against
h11 on a table of such requests, with every deliberate difference explained.
Bytes after a request's end stay buffered: they are the next pipelined request,
or, after a protocol upgrade, raw stream data (`take_trailing_data()`).

Responses are serialized with `format_response_head()`, `format_chunk()` and
`LAST_CHUNK`; `keep_alive()` decides whether the connection outlives a response.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Final
from urllib.parse import parse_qs, unquote, urlsplit

MAX_HEAD_SIZE: Final = 64 * 1024
MAX_CHUNK_LINE: Final = 4096


class ProtocolError(Exception):
    """The peer broke HTTP; answer with `status` (400 unless said) and close."""

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
        out: set[str] = set()
        for value in self.get_all(name):
            out.update(t.strip().lower() for t in value.split(",") if t.strip())
        return out

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self.raw)

    def __repr__(self) -> str:
        return f"Headers({self.raw!r})"


@dataclass(frozen=True)
class Request:
    method: str
    target: str
    path: str  # percent-decoded, without the query
    query: dict[str, list[str]]
    headers: Headers
    http_version: str  # "1.1" or "1.0"

    @property
    def expects_continue(self) -> bool:
        return self.http_version == "1.1" and "100-continue" in self.headers.tokens("expect")

    @property
    def wants_upgrade(self) -> bool:
        """The client asked to take the connection over (docker attach / exec start)."""
        return "upgrade" in self.headers.tokens("connection") or "upgrade" in self.headers


@dataclass(frozen=True)
class Data:
    data: bytes


@dataclass(frozen=True)
class EndOfMessage:
    trailers: Headers = field(default_factory=Headers)


@dataclass(frozen=True)
class ConnectionClosed:
    pass


class NeedData:
    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA: Final = NeedData()

Event = Request | Data | EndOfMessage | ConnectionClosed | NeedData

_TCHAR = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]"
_TOKEN = re.compile(_TCHAR + rb"+")
# the target is ASCII without controls or spaces (RFC 3986 by way of RFC 9112 §3.2)
_REQUEST_LINE = re.compile(rb"(" + _TCHAR + rb"+) ([\x21-\x7e]+) HTTP/(\d)\.(\d)")
# field values: no control character but HTAB (RFC 9110 §5.5)
_CTL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_CTL_TEXT = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# chunk-size [ chunk-ext ] (RFC 9112 §7.1.1), trailing blanks tolerated as h11 and Go do
_QUOTED = rb'"(?:[\t !\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*"'
_CHUNK_EXT = (
    rb"(?:[ \t]*;[ \t]*" + _TCHAR + rb"+(?:[ \t]*=[ \t]*(?:" + _TCHAR + rb"+|" + _QUOTED + rb"))?)*"
)
_CHUNK_LINE = re.compile(rb"([0-9A-Fa-f]+)" + _CHUNK_EXT + rb"[ \t]*")

# states
_IDLE = "IDLE"  # waiting for a request head
_BODY_LENGTH = "BODY_LENGTH"
_CHUNK_SIZE = "CHUNK_SIZE"
_CHUNK_DATA = "CHUNK_DATA"
_CHUNK_CRLF = "CHUNK_CRLF"
_TRAILERS = "TRAILERS"
_CLOSED = "CLOSED"
_ERROR = "ERROR"


def parse_target(target: str) -> tuple[str, dict[str, list[str]]]:
    """Split a request target into the decoded path and the query dict."""
    if target == "*":  # asterisk-form (OPTIONS *): no route has it, the router answers 404
        return "*", {}
    if target.startswith("/"):
        raw_path, _, raw_query = target.partition("?")
        raw_path = raw_path.partition("#")[0]
    else:  # absolute-form
        try:
            parts = urlsplit(target)
        except ValueError:  # "http://[::1/x": a bracket the host never closes
            raise ProtocolError(f"invalid request target {target!r}") from None
        if not parts.scheme:
            raise ProtocolError(f"invalid request target {target!r}")
        raw_path, raw_query = parts.path or "/", parts.query
    query = parse_qs(raw_query, keep_blank_values=True) if raw_query else {}
    return unquote(raw_path), query


class ServerConnection:
    """The server half of one HTTP/1.1 connection, without I/O."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._eof = False
        self._state = _IDLE
        self._remaining = 0
        self._continue_pending = False
        self._pending_end = False
        self.request: Request | None = None  # the request being received / answered

    # -- input ------------------------------------------------------------------
    def feed(self, data: bytes) -> None:
        """Add bytes read from the peer; `b""` means the peer sent EOF."""
        if not data:
            self._eof = True
        else:
            self._buf += data

    @property
    def eof(self) -> bool:
        return self._eof

    @property
    def body_pending(self) -> bool:
        """The current request's body has bytes still to arrive (not just its end event)."""
        return self._state in (_BODY_LENGTH, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_CRLF, _TRAILERS)

    @property
    def broken(self) -> bool:
        return self._state == _ERROR

    @property
    def head_started(self) -> bool:
        """Bytes of a request head are buffered (the client is no longer idle)."""
        return self._state == _IDLE and bool(self._buf.strip(b"\r\n"))

    def timed_out(self) -> None:
        """The I/O shell gave up waiting for the rest of a request: no more requests."""
        self._state = _ERROR

    def take_continue(self) -> bytes:
        """Bytes of a `100 Continue` to send before reading the body, if owed (else b"")."""
        if self._continue_pending:
            self._continue_pending = False
            return b"HTTP/1.1 100 Continue\r\n\r\n"
        return b""

    def response_started(self) -> None:
        """Call when the final response head goes out: no `100 Continue` is owed any more."""
        self._continue_pending = False

    @property
    def continue_owed(self) -> bool:
        """The client waits for `100 Continue` and has not been sent one (nor a response)."""
        return self._continue_pending

    def take_trailing_data(self) -> bytes:
        """Everything buffered past the current request (raw data after an upgrade)."""
        data = bytes(self._buf)
        self._buf.clear()
        return data

    # -- events -----------------------------------------------------------------
    def next_event(self) -> Event:
        try:
            return self._next_event()
        except ProtocolError:
            self._state = _ERROR
            raise

    def _next_event(self) -> Event:
        if self._state == _ERROR:
            raise ProtocolError("connection is in an error state")
        if self._state == _CLOSED:
            return ConnectionClosed()
        if self._pending_end:
            self._pending_end = False
            return self._end()
        if self._state == _IDLE:
            return self._parse_head()
        if self._state == _BODY_LENGTH:
            if not self._buf:
                return self._need()
            data = self._take_body()
            if self._remaining == 0:
                self._pending_end = True
            return Data(data)
        # chunked
        while True:
            if self._state == _CHUNK_SIZE:
                line = self._line(MAX_CHUNK_LINE, "chunk size line", crlf=True)
                if line is None:
                    return self._need()
                m = _CHUNK_LINE.fullmatch(line)
                if not m:
                    raise ProtocolError(f"malformed chunk size line {line[:40]!r}")
                size_text = m.group(1).lstrip(b"0")
                if len(size_text) > 16:
                    raise ProtocolError(f"chunk size {m.group(1)[:20]!r} is too large")
                self._remaining = int(size_text or b"0", 16)
                self._state = _CHUNK_DATA if self._remaining else _TRAILERS
                self._trailers: list[tuple[str, str]] = []
                self._trailer_bytes = 0
                continue
            if self._state == _CHUNK_DATA:
                if not self._buf:
                    return self._need()
                data = self._take_body()
                if self._remaining == 0:
                    self._state = _CHUNK_CRLF
                return Data(data)
            if self._state == _CHUNK_CRLF:
                if self._buf[:2] == b"\r\n":
                    del self._buf[:2]
                elif not self._buf or self._buf == b"\r":
                    return self._need()
                else:
                    raise ProtocolError("missing CRLF after chunk data")
                self._state = _CHUNK_SIZE
                continue
            if self._state == _TRAILERS:
                line = self._line(MAX_HEAD_SIZE, "trailer")
                if line is None:
                    return self._need()
                if line == b"":
                    self._state = _IDLE
                    self.request_done()
                    return EndOfMessage(Headers(self._trailers))
                self._trailer_bytes += len(line)
                if self._trailer_bytes > MAX_HEAD_SIZE:
                    raise ProtocolError("trailers too large", 431)
                self._trailers.append(_parse_header_line(line))
                continue
            raise AssertionError(self._state)  # pragma: no cover

    def request_done(self) -> None:
        self._continue_pending = False

    def _take_body(self) -> bytes:
        """Up to `_remaining` buffered body bytes (Content-Length body or one chunk)."""
        n = min(self._remaining, len(self._buf))
        data = bytes(self._buf[:n])
        del self._buf[:n]
        self._remaining -= n
        self._got_body()
        return data

    def _got_body(self) -> None:
        self._continue_pending = False

    def _end(self) -> EndOfMessage:
        self._state = _IDLE
        self.request_done()
        return EndOfMessage()

    def _need(self) -> Event:
        if self._eof:
            if self._state == _IDLE and not self._buf.strip(b"\r\n"):
                self._state = _CLOSED
                return ConnectionClosed()
            raise ProtocolError("connection closed in the middle of a request")
        return NEED_DATA

    def _line(self, limit: int, what: str, *, crlf: bool = False) -> bytes | None:
        """The next line without its terminator; `crlf`: a bare LF is an error."""
        idx = self._buf.find(b"\n")
        if idx < 0:
            if len(self._buf) > limit:
                raise ProtocolError(f"{what} too long", 431 if what == "trailer" else 400)
            return None
        line = bytes(self._buf[:idx])
        del self._buf[: idx + 1]
        if line.endswith(b"\r"):
            return line[:-1]
        if crlf:
            raise ProtocolError(f"{what} {line[:40]!r} not ended by CRLF")
        return line

    def _parse_head(self) -> Event:
        # robustness: ignore empty lines before a request line (RFC 9112 §2.2)
        while self._buf[:2] == b"\r\n" or self._buf[:1] == b"\n":
            del self._buf[: 2 if self._buf[:1] == b"\r" else 1]
        end = self._buf.find(b"\r\n\r\n")
        sep = 4
        alt = self._buf.find(b"\n\n")
        if alt >= 0 and (end < 0 or alt < end):
            end, sep = alt, 2
        if end < 0:
            if len(self._buf) > MAX_HEAD_SIZE:
                raise ProtocolError("request head too large", 431)
            return self._need()
        if end > MAX_HEAD_SIZE:
            raise ProtocolError("request head too large", 431)
        head = bytes(self._buf[:end])
        del self._buf[: end + sep]
        lines = [ln[:-1] if ln.endswith(b"\r") else ln for ln in head.split(b"\n")]
        m = _REQUEST_LINE.fullmatch(lines[0])
        if not m:
            raise ProtocolError(f"malformed request line {lines[0][:100]!r}")
        method = m.group(1).decode("ascii")
        target = m.group(2).decode("ascii")
        major, minor = int(m.group(3)), int(m.group(4))
        if major != 1:
            raise ProtocolError(f"unsupported HTTP version {major}.{minor}", 505)
        version = "1.1" if minor >= 1 else "1.0"
        headers = Headers(_parse_header_line(ln) for ln in lines[1:])
        if len(headers.get_all("host")) > 1:
            raise ProtocolError("more than one Host header")  # RFC 9112 §3.2: MUST refuse
        path, query = parse_target(target)
        request = Request(method, target, path, query, headers, version)
        self.request = request
        self._setup_body(request)
        return request

    def _setup_body(self, request: Request) -> None:
        headers = request.headers
        te = headers.get_all("transfer-encoding")
        cl = headers.get_all("content-length")
        if te:
            if cl:
                raise ProtocolError("both Transfer-Encoding and Content-Length")
            codings = [t.strip().lower() for v in te for t in v.split(",") if t.strip()]
            if codings != ["chunked"]:
                raise ProtocolError(f"unsupported Transfer-Encoding {', '.join(te)!r}", 501)
            self._state = _CHUNK_SIZE
        elif cl:
            values = {v.strip() for c in cl for v in c.split(",")}
            if len(values) != 1:
                raise ProtocolError("conflicting Content-Length values")
            value = values.pop()
            # isascii: str.isdigit() also takes digits int() refuses ("\u00b2")
            if not (value.isascii() and value.isdigit()) or len(value) > 18:
                raise ProtocolError(f"invalid Content-Length {value[:20]!r}")
            self._remaining = int(value)
            self._state = _BODY_LENGTH if self._remaining else _IDLE
        else:
            self._state = _IDLE
        if self._state == _IDLE:
            self._pending_end = True
            self._continue_pending = False
        else:
            self._continue_pending = request.expects_continue


def _parse_header_line(line: bytes) -> tuple[str, str]:
    if line[:1] in (b" ", b"\t"):
        raise ProtocolError("obsolete header line folding")
    name, colon, value = line.partition(b":")
    if not colon or not _TOKEN.fullmatch(name):
        raise ProtocolError(f"malformed header line {line[:100]!r}")
    bad = _CTL.search(value)
    if bad:
        raise ProtocolError(
            f"header {name.decode('ascii')} contains control character 0x{bad.group()[0]:02x}"
        )
    return name.decode("ascii"), value.strip(b" \t").decode("latin-1")


# -- responses --------------------------------------------------------------------


def reason_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def format_response_head(
    status: int, reason: str | None = None, headers: Iterable[tuple[str, str]] = ()
) -> bytes:
    """`HTTP/1.1 <status> <reason>` + header lines + blank line."""
    lines = [f"HTTP/1.1 {status} {reason if reason is not None else reason_phrase(status)}"]
    for name, value in headers:
        if _CTL_TEXT.search(value) or not _TOKEN.fullmatch(name.encode("latin-1")):
            raise ValueError(f"bad header {name!r}: {value!r}")
        lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def format_chunk(data: bytes) -> bytes:
    """One chunk of a chunked response body (never pass b"": that ends the body)."""
    return b"%x\r\n%s\r\n" % (len(data), data)


LAST_CHUNK: Final = b"0\r\n\r\n"


def keep_alive(request: Request, response_headers: Iterable[tuple[str, str]] = ()) -> bool:
    """Whether the connection may serve another request after this exchange."""
    tokens = request.headers.tokens("connection")
    for name, value in response_headers:
        if name.lower() == "connection":
            tokens.update(t.strip().lower() for t in value.split(","))
    if "close" in tokens:
        return False
    if request.http_version == "1.0":
        if "transfer-encoding" in request.headers:
            return False  # RFC 9112 §6.1: faulty framing, close after this one
        return "keep-alive" in request.headers.tokens("connection")
    return True
