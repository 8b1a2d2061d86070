"""Sans-I/O HTTP/1.1, server side, in the style of h11.

`ServerConnection` is pure state: `feed()` it the bytes read from the socket
(`b""` for EOF) and call `next_event()` until it answers `NEED_DATA`.  Events:

* `Request` -- a parsed request head;
* `Data` -- a chunk of the request body (Content-Length or chunked);
* `EndOfMessage` -- the body is over (also sent right after a body-less request);
* `ConnectionClosed` -- the peer closed cleanly between requests;
* `NEED_DATA` -- feed more bytes.

Malformed input raises `ProtocolError` (answer it with `.status`, then close).
The grammar (header lines, Content-Length, chunked framing, trailers) is the package's,
shared with the client half: RFC 9112's, read strictly where leniency lets two parsers
disagree about where a message ends (request smuggling): header values with control
characters, obs-fold, Transfer-Encoding with Content-Length, chunk lines not ended
by CRLF and malformed chunk extensions are refused; bare LF ends a line only in the
head and the trailers.  `tests/test_api_http_oracle.py` holds this parser against
h11 on a table of such requests, with every deliberate difference explained.
Bytes after a request's end stay buffered: they are the next pipelined request,
or, after a protocol upgrade, raw stream data (`take_trailing_data()`).

Responses go out as h11 sends them: `send_response()` (the head), `send_data()` and
`send_end()`, the body framed as the headers sent say (chunked, or as it is);
`keep_alive()` decides whether the connection outlives a response;
`switch_protocols()` is the upgrade (Docker's hijack, a websocket's 101).
`format_response_head()` serves the answer to a connection refused before it has one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from http import HTTPStatus
from urllib.parse import parse_qs, unquote, urlsplit

from . import (
    LAST_CHUNK,
    MAX_CHUNK_LINE,
    MAX_HEAD_SIZE,
    NEED_DATA,
    BodyReader,
    Data,
    EndOfMessage,
    Headers,
    NeedData,
    ProtocolError,
    content_length,
    format_chunk,
    format_head,
    parse_header_line,
    take_head,
    tokens,
)

__all__ = [
    "LAST_CHUNK",
    "MAX_CHUNK_LINE",
    "MAX_HEAD_SIZE",
    "NEED_DATA",
    "ConnectionClosed",
    "Data",
    "EndOfMessage",
    "Event",
    "Headers",
    "NeedData",
    "ProtocolError",
    "Request",
    "ServerConnection",
    "format_chunk",
    "format_response_head",
    "keep_alive",
    "parse_target",
    "reason_phrase",
]


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
class ConnectionClosed:
    pass


Event = Request | Data | EndOfMessage | ConnectionClosed | NeedData

# the target is ASCII without controls or spaces (RFC 3986 by way of RFC 9112 §3.2)
_REQUEST_LINE = re.compile(rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+) ([\x21-\x7e]+) HTTP/(\d)\.(\d)")

# states (the body's own are `BodyReader`'s)
_IDLE = "IDLE"  # waiting for a request head
_BODY = "BODY"  # the request's body (or just its end) is being received
_SWITCHED = "SWITCHED"  # the connection was handed over to another protocol
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
        self._body: BodyReader | None = None
        self._continue_pending = False
        self._chunked_out = False  # the response being sent is chunk-framed
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
        return self._state == _BODY and self._body is not None and self._body.pending

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
        """The final response head goes out: no `100 Continue` is owed any more."""
        self._continue_pending = False

    # -- sending (h11's shape: what to send in, its bytes out) --------------------
    def send_response(
        self, status: int, headers: Iterable[tuple[str, str]], reason: str | None = None
    ) -> bytes:
        """The response head's bytes.  The body's framing follows the headers, as in
        h11: `Transfer-Encoding: chunked` makes `send_data` chunk-frame and `send_end`
        write the last chunk; else the bytes go as they are (Content-Length or close)."""
        hdrs = list(headers)
        self.response_started()
        self._chunked_out = "chunked" in tokens(hdrs, "transfer-encoding")
        return format_response_head(status, reason, hdrs)

    def send_data(self, data: bytes) -> bytes:
        """Bytes for one piece of the response body (never a last chunk: `send_end`)."""
        if not data:
            return b""
        return format_chunk(data) if self._chunked_out else bytes(data)

    def send_end(self) -> bytes:
        """Bytes that end the response body (the last chunk when chunked)."""
        chunked, self._chunked_out = self._chunked_out, False
        return LAST_CHUNK if chunked else b""

    @property
    def continue_owed(self) -> bool:
        """The client waits for `100 Continue` and has not been sent one (nor a response)."""
        return self._continue_pending

    # -- the upgrade (hijack) ---------------------------------------------------
    def switch_protocols(
        self,
        headers: Iterable[tuple[str, str]] = (),
        upgrade: Iterable[tuple[str, str]] | None = None,
    ) -> bytes:
        """The head that hands the connection over to a raw stream (attach, exec
        start, websocket); after it the connection has no more HTTP events and
        `take_trailing_data()` gives the stream bytes the client already sent.

        `upgrade`: the route speaks one protocol only (a websocket): its 101 headers,
        and a request that did not ask to upgrade is refused.  Else Docker's hijack:
        `101 UPGRADED` with `Upgrade: tcp` when asked, or (the historical form a
        plain POST gets) `200 OK` and the raw stream right after the head.
        Refusals raise `ProtocolError` with the status to answer (nothing switched)."""
        request = self.request
        if request is None or self._state not in (_IDLE, _BODY) or self.body_pending:
            raise ProtocolError("request body not consumed before hijack")
        if request.method == "HEAD":
            raise ProtocolError("cannot hijack a HEAD request", 405)
        if upgrade is not None:
            if not request.wants_upgrade:
                raise ProtocolError("this route needs a protocol upgrade")
            head = format_head("HTTP/1.1 101 Switching Protocols", upgrade)
        elif request.wants_upgrade:
            hdrs = [*headers, ("Connection", "Upgrade"), ("Upgrade", "tcp")]
            head = format_head("HTTP/1.1 101 UPGRADED", hdrs)
        else:
            head = format_response_head(200, None, headers)
        self._state = _SWITCHED
        self._continue_pending = False
        return head

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
        if self._state == _SWITCHED:
            raise ProtocolError("the connection was handed over to another protocol")
        if self._state == _CLOSED:
            return ConnectionClosed()
        if self._state == _IDLE:
            return self._parse_head()
        assert self._body is not None
        event = self._body.next_event(self._buf, self._eof)
        if isinstance(event, NeedData):
            return self._need()
        if isinstance(event, Data):
            self._continue_pending = False  # the client sends without waiting
        else:
            self._state = _IDLE
            self.request_done()
        return event

    def request_done(self) -> None:
        self._continue_pending = False

    def _need(self) -> Event:
        if self._eof:
            if self._state == _IDLE and not self._buf.strip(b"\r\n"):
                self._state = _CLOSED
                return ConnectionClosed()
            raise ProtocolError("connection closed in the middle of a request")
        return NEED_DATA

    def _parse_head(self) -> Event:
        # robustness: ignore empty lines before a request line (RFC 9112 §2.2)
        while self._buf[:2] == b"\r\n" or self._buf[:1] == b"\n":
            del self._buf[: 2 if self._buf[:1] == b"\r" else 1]
        lines = take_head(self._buf, "request")
        if lines is None:
            return self._need()
        m = _REQUEST_LINE.fullmatch(lines[0])
        if not m:
            raise ProtocolError(f"malformed request line {lines[0][:100]!r}")
        method = m.group(1).decode("ascii")
        target = m.group(2).decode("ascii")
        major, minor = int(m.group(3)), int(m.group(4))
        if major != 1:
            raise ProtocolError(f"unsupported HTTP version {major}.{minor}", 505)
        version = "1.1" if minor >= 1 else "1.0"
        headers = Headers(parse_header_line(ln) for ln in lines[1:])
        if len(headers.get_all("host")) > 1:
            raise ProtocolError("more than one Host header")  # RFC 9112 §3.2: MUST refuse
        path, query = parse_target(target)
        request = Request(method, target, path, query, headers, version)
        self.request = request
        self._body = _request_body(headers)
        self._state = _BODY
        self._continue_pending = self._body.pending and request.expects_continue
        return request


def _request_body(headers: Headers) -> BodyReader:
    """A request's body framing (RFC 9112 §6.3): chunked, Content-Length, or none."""
    te = headers.get_all("transfer-encoding")
    cl = headers.get_all("content-length")
    if te:
        if cl:
            raise ProtocolError("both Transfer-Encoding and Content-Length")
        codings = [t.strip().lower() for v in te for t in v.split(",") if t.strip()]
        if codings != ["chunked"]:
            raise ProtocolError(f"unsupported Transfer-Encoding {', '.join(te)!r}", 501)
        return BodyReader.chunked()
    return BodyReader.length(content_length(cl) if cl else 0)


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
    reason = reason if reason is not None else reason_phrase(status)
    return format_head(f"HTTP/1.1 {status} {reason}", headers)


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
