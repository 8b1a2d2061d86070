"""Sans-I/O HTTP/1.1, client side, in the style of h11.

`ClientConnection` is pure state for one request/response exchange (every corral client
opens one Unix-socket connection per request, so there is no keep-alive cycle):

* `send_request(method, target, headers)` -> the request head's bytes; the body framing
  follows the headers (Content-Length, `Transfer-Encoding: chunked`, or none);
  `send_data(data)` / `send_end()` -> the body's bytes, chunk-framed when chunked;
* `receive_data(data)` with what the socket gave (`b""` for EOF), then `next_event()`
  until it answers `NEED_DATA`.  Events: `Response` (the head), `Data`, `EndOfMessage`
  (also right after a body-less response), or `Upgrade` -- the server took the
  connection over (`101 Switching Protocols`, or Docker's historical `200` to an upgrade
  request); `Upgrade.trailing` holds the raw stream bytes already received past the head.

Response framing is RFC 9112 §6.3's: no body after HEAD, 204 or 304; a chunked body;
a Content-Length body; else the body runs to EOF.  Interim 1xx answers (100 Continue)
are skipped.  The grammar (header lines, Content-Length, chunked framing, trailers)
and the body's state machine are the package's own, shared with the server half, so the client
reads as strictly as the server.  Malformed input raises `ProtocolError` and leaves
the connection broken; its messages name "the daemon": every user of this core talks to corral's.
No `re`, `typing` or `dataclasses` import: the CLI pays for every import per command.
"""

from __future__ import annotations

from . import (
    CHUNK_SIZE,
    LAST_CHUNK,
    LENGTH,
    MAX_HEAD_SIZE,
    NEED_DATA,
    TO_EOF,
    WHERE,
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

TYPE_CHECKING = False  # not `typing.TYPE_CHECKING`: importing typing costs the CLI ~4 ms
if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = [
    "MAX_HEAD_SIZE",
    "NEED_DATA",
    "ClientConnection",
    "Data",
    "EndOfMessage",
    "Headers",
    "NeedData",
    "ProtocolError",
    "Response",
    "Upgrade",
]


class Response:
    """A response head. `headers`: lower-case names; repeated fields joined by ", "."""

    __slots__ = ("headers", "http_version", "raw_headers", "reason", "status")

    def __init__(
        self, status: int, reason: str, raw_headers: list[tuple[str, str]], http_version: str
    ) -> None:
        self.status = status
        self.reason = reason
        self.raw_headers = raw_headers
        self.http_version = http_version
        headers: dict[str, str] = {}
        for name, value in raw_headers:
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        self.headers = headers

    def __repr__(self) -> str:
        return f"Response({self.status}, {self.reason!r}, {self.raw_headers!r})"


class Upgrade(Response):
    """The server switched protocols; `trailing` is raw stream data already received."""

    __slots__ = ("trailing",)

    def __init__(self, head: Response, trailing: bytes) -> None:
        super().__init__(head.status, head.reason, head.raw_headers, head.http_version)
        self.trailing = trailing


# their (the server's) states, beside the body's (`BodyReader`'s);
# ours is IDLE -> SEND_BODY -> DONE
IDLE = "IDLE"  # no request sent yet
SEND_RESPONSE = "SEND_RESPONSE"  # the response head is awaited
BODY = "BODY"  # the response body (or just its end) is being received
DONE = "DONE"
SWITCHED = "SWITCHED"
ERROR = "ERROR"
SEND_BODY = "SEND_BODY"


def _parse_status_line(line: bytes) -> tuple[int, str, str]:
    version, _, rest = line.partition(b" ")
    code, _, reason = rest.partition(b" ")
    if version not in (b"HTTP/1.1", b"HTTP/1.0") or len(code) != 3 or not code.isdigit():
        raise ProtocolError(f"bad status line {line[:100]!r}")
    return int(code), reason.decode("latin-1"), version[5:].decode("ascii")


class ClientConnection:
    """The client half of one HTTP/1.1 exchange, without I/O."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._eof = False
        self.our_state = IDLE
        self.their_state = IDLE
        self._method = ""
        self._upgrade = False
        self._chunked_out = False
        self._out_remaining: int | None = None
        self._body: BodyReader | None = None
        self.response: Response | None = None

    # -- sending ------------------------------------------------------------------------
    def send_request(self, method: str, target: str, headers: Iterable[tuple[str, str]]) -> bytes:
        """The request head; its body (if any) follows with `send_data` and `send_end`."""
        if self.our_state != IDLE:
            raise ValueError("one request per connection")
        if " " in target or not target:
            raise ValueError(f"bad request target {target!r}")
        hdrs = list(headers)
        head = format_head(f"{method} {target} HTTP/1.1", hdrs)
        self._method = method
        self._upgrade = "upgrade" in tokens(hdrs, "connection")
        self._chunked_out = "chunked" in tokens(hdrs, "transfer-encoding")
        length = [v for k, v in hdrs if k.lower() == "content-length"]
        self._out_remaining = int(length[0]) if length and not self._chunked_out else None
        body = self._chunked_out or bool(self._out_remaining)
        self.our_state = SEND_BODY if body else DONE
        self.their_state = SEND_RESPONSE
        return head

    def send_data(self, data: bytes) -> bytes:
        """Bytes for one piece of the request body (chunk-framed if chunked)."""
        if not data:
            return b""  # never a last chunk: `send_end` ends the body
        if self.our_state != SEND_BODY:
            raise ValueError(f"no request body to send in state {self.our_state}")
        if self._chunked_out:
            return format_chunk(data)
        if self._out_remaining is not None:
            if len(data) > self._out_remaining:
                raise ValueError("request body longer than its Content-Length")
            self._out_remaining -= len(data)
        return bytes(data)

    def send_end(self) -> bytes:
        """Bytes that end the request body (the last chunk when chunked)."""
        if self.our_state == DONE:
            return b""
        self.our_state = DONE
        return LAST_CHUNK if self._chunked_out else b""

    # -- receiving ----------------------------------------------------------------------
    def receive_data(self, data: bytes) -> None:
        """Add bytes read from the server; `b""` means it sent EOF."""
        if data:
            self._buf += data
        else:
            self._eof = True

    def next_event(self) -> Response | Data | EndOfMessage | NeedData:
        try:
            if self.their_state == SEND_RESPONSE:
                return self._receive_head()
            if self.their_state == BODY and self._body is not None:
                event = self._body.next_event(self._buf, self._eof)
                if isinstance(event, NeedData):
                    if self._eof:
                        where = WHERE.get(self._body.state, "in the body")
                        raise ProtocolError(f"the daemon closed the connection {where}")
                elif isinstance(event, EndOfMessage):
                    self.their_state = DONE
                return event
            raise ProtocolError(f"no event to receive in state {self.their_state}")
        except ProtocolError:
            self.their_state = ERROR
            raise

    def _receive_head(self) -> Response | Data | EndOfMessage | NeedData:
        while True:
            lines = take_head(self._buf, "response")
            if lines is None:
                if not self._eof:
                    return NEED_DATA
                if not self._buf:
                    raise ProtocolError("the daemon closed the connection without answering")
                raise ProtocolError(
                    "the daemon closed the connection in the middle of the response head"
                )
            status, reason, version = _parse_status_line(lines[0])
            fields = [parse_header_line(ln) for ln in lines[1:]]
            response = Response(status, reason, fields, version)
            if 100 <= status < 200 and status != 101:
                continue  # interim answer (100 Continue): the real one follows
            return self._framing(response)

    def _framing(self, response: Response) -> Response:
        """Which body follows the head (RFC 9112 §6.3), or the switch to a raw stream."""
        status = response.status
        self.response = response
        if self._upgrade and status in (101, 200):
            self.their_state = SWITCHED
            trailing = bytes(self._buf)
            self._buf.clear()
            return Upgrade(response, trailing)
        if status == 101:
            raise ProtocolError("101 Switching Protocols to a request that asked no upgrade")
        raw = response.raw_headers
        te = tokens(raw, "transfer-encoding")
        lengths = [v for k, v in raw if k.lower() == "content-length"]
        if self._method == "HEAD" or status in (204, 304):
            self._body = BodyReader.length(0)
        elif te:
            if lengths:
                raise ProtocolError("response has both Transfer-Encoding and Content-Length")
            # a response's body whose last coding is not chunked runs to EOF (§6.3 ¶4)
            self._body = BodyReader(CHUNK_SIZE if te[-1] == "chunked" else TO_EOF)
        elif lengths:
            self._body = BodyReader(LENGTH, content_length(lengths))
        else:
            self._body = BodyReader(TO_EOF)
        self.their_state = BODY
        return response
