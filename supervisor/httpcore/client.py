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
are skipped.  Malformed input raises `ProtocolError` and leaves the connection broken;
its messages name "the daemon": every user of this core talks to corral's.
No `re`, `typing` or `dataclasses` import: the CLI pays for every import per command.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not `typing.TYPE_CHECKING`: importing typing costs the CLI ~4 ms
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

MAX_HEAD_SIZE = 64 * 1024
MAX_CHUNK_LINE = 4096

_TCHAR = frozenset(b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_HEX = frozenset(b"0123456789abcdefABCDEF")
_BAD_VALUE = frozenset(range(0x20)) - {0x09} | {0x7F}  # controls but HTAB (RFC 9110 §5.5)


class ProtocolError(Exception):
    """The peer spoke something that is not the HTTP/1.1 we expect."""


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


class Data:
    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Data) and other.data == self.data

    def __repr__(self) -> str:
        return f"Data({self.data!r})"


class EndOfMessage:
    __slots__ = ("trailers",)

    def __init__(self, trailers: list[tuple[str, str]] | None = None) -> None:
        self.trailers = trailers or []

    def __repr__(self) -> str:
        return f"EndOfMessage({self.trailers!r})"


class NeedData:
    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA = NeedData()

# their (the server's) states; ours is IDLE -> SEND_BODY -> DONE
IDLE = "IDLE"  # no request sent yet
SEND_RESPONSE = "SEND_RESPONSE"  # the response head is awaited
BODY_LENGTH = "BODY_LENGTH"
CHUNK_SIZE = "CHUNK_SIZE"
CHUNK_DATA = "CHUNK_DATA"
CHUNK_CRLF = "CHUNK_CRLF"
TRAILERS = "TRAILERS"
BODY_TO_EOF = "BODY_TO_EOF"
END = "END"  # the body is complete; EndOfMessage is owed
DONE = "DONE"
SWITCHED = "SWITCHED"
ERROR = "ERROR"
SEND_BODY = "SEND_BODY"


def _tokens(headers: Iterable[tuple[str, str]], name: str) -> list[str]:
    return [
        t.strip().lower()
        for key, value in headers
        if key.lower() == name
        for t in value.split(",")
        if t.strip()
    ]


def _parse_header(line: bytes) -> tuple[str, str]:
    if line[:1] in (b" ", b"\t"):
        raise ProtocolError("obsolete header line folding in the response")
    name, colon, value = line.partition(b":")
    if not colon or not name or not _TCHAR.issuperset(name):
        raise ProtocolError(f"malformed response header line {line[:100]!r}")
    if not _BAD_VALUE.isdisjoint(value):
        raise ProtocolError(f"response header {name.decode('ascii')} has a control character")
    return name.decode("ascii"), value.strip(b" \t").decode("latin-1")


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
        self._remaining = 0
        self._trailers: list[tuple[str, str]] = []
        self.response: Response | None = None

    # -- sending ------------------------------------------------------------------------
    def send_request(self, method: str, target: str, headers: Iterable[tuple[str, str]]) -> bytes:
        """The request head; its body (if any) follows with `send_data` and `send_end`."""
        if self.our_state != IDLE:
            raise ValueError("one request per connection")
        lines = [f"{method} {target} HTTP/1.1"]
        hdrs = list(headers)
        for name, value in hdrs:
            if not name or not _TCHAR.issuperset(name.encode("latin-1")) or (
                not _BAD_VALUE.isdisjoint(value.encode("latin-1"))
            ):
                raise ValueError(f"bad header {name!r}: {value!r}")
            lines.append(f"{name}: {value}")
        if " " in target or not target:
            raise ValueError(f"bad request target {target!r}")
        self._method = method
        self._upgrade = "upgrade" in _tokens(hdrs, "connection")
        self._chunked_out = "chunked" in _tokens(hdrs, "transfer-encoding")
        length = [v for k, v in hdrs if k.lower() == "content-length"]
        self._out_remaining = int(length[0]) if length and not self._chunked_out else None
        body = self._chunked_out or bool(self._out_remaining)
        self.our_state = SEND_BODY if body else DONE
        self.their_state = SEND_RESPONSE
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def send_data(self, data: bytes) -> bytes:
        """Bytes for one piece of the request body (chunk-framed if chunked)."""
        if not data:
            return b""  # never a last chunk: `send_end` ends the body
        if self.our_state != SEND_BODY:
            raise ValueError(f"no request body to send in state {self.our_state}")
        if self._chunked_out:
            return b"%x\r\n%s\r\n" % (len(data), data)
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
        return b"0\r\n\r\n" if self._chunked_out else b""

    # -- receiving ----------------------------------------------------------------------
    def receive_data(self, data: bytes) -> None:
        """Add bytes read from the server; `b""` means it sent EOF."""
        if data:
            self._buf += data
        else:
            self._eof = True

    def next_event(self) -> Response | Data | EndOfMessage | NeedData:
        handler = _RECEIVE.get(self.their_state)
        if handler is None:
            raise ProtocolError(f"no event to receive in state {self.their_state}")
        try:
            return handler(self)
        except ProtocolError:
            self.their_state = ERROR
            raise

    def _need(self, what: str) -> NeedData:
        if self._eof:
            raise ProtocolError(f"the daemon closed the connection {what}")
        return NEED_DATA

    def _line(self, limit: int, what: str) -> bytes | None:
        idx = self._buf.find(b"\n")
        if idx < 0:
            if len(self._buf) > limit:
                raise ProtocolError(f"{what} too long")
            return None
        line = bytes(self._buf[:idx])
        del self._buf[: idx + 1]
        return line[:-1] if line.endswith(b"\r") else line

    def _receive_head(self) -> Response | Data | EndOfMessage | NeedData:
        while True:
            end, sep = self._buf.find(b"\r\n\r\n"), 4
            alt = self._buf.find(b"\n\n")
            if alt >= 0 and (end < 0 or alt < end):
                end, sep = alt, 2
            if end < 0:
                if len(self._buf) > MAX_HEAD_SIZE:
                    raise ProtocolError("response head too large")
                if self._eof and not self._buf:
                    raise ProtocolError("the daemon closed the connection without answering")
                return self._need("in the middle of the response head")
            head = bytes(self._buf[:end])
            del self._buf[: end + sep]
            lines = [ln[:-1] if ln.endswith(b"\r") else ln for ln in head.split(b"\n")]
            status, reason, version = _parse_status_line(lines[0])
            response = Response(status, reason, [_parse_header(ln) for ln in lines[1:]], version)
            if 100 <= status < 200 and status != 101:
                continue  # interim answer (100 Continue): the real one follows
            return self._framing(response)

    def _framing(self, response: Response) -> Response | Data | EndOfMessage | NeedData:
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
        te = _tokens(raw, "transfer-encoding")
        lengths = {
            v.strip() for k, val in raw if k.lower() == "content-length" for v in val.split(",")
        }
        if self._method == "HEAD" or status in (204, 304):
            self.their_state = END
        elif te:
            if lengths:
                raise ProtocolError("response has both Transfer-Encoding and Content-Length")
            self.their_state = CHUNK_SIZE if te[-1] == "chunked" else BODY_TO_EOF
        elif lengths:
            value = lengths.pop()
            if lengths or not value.isdigit() or len(value) > 18:
                raise ProtocolError(f"bad Content-Length in the response: {value[:20]!r}")
            self._remaining = int(value)
            self.their_state = BODY_LENGTH if self._remaining else END
        else:
            self.their_state = BODY_TO_EOF
        return response

    def _take(self) -> Data:
        n = min(self._remaining, len(self._buf))
        data = bytes(self._buf[:n])
        del self._buf[:n]
        self._remaining -= n
        return Data(data)

    def _receive_length(self) -> Data | NeedData:
        if not self._buf:
            return self._need("before the end of the body")
        data = self._take()
        if self._remaining == 0:
            self.their_state = END
        return data

    def _receive_to_eof(self) -> Data | EndOfMessage | NeedData:
        if self._buf:
            data = Data(bytes(self._buf))
            self._buf.clear()
            return data
        if self._eof:
            self.their_state = DONE
            return EndOfMessage()
        return NEED_DATA

    def _receive_chunk_size(self) -> Response | Data | EndOfMessage | NeedData:
        line = self._line(MAX_CHUNK_LINE, "chunk size line")
        if line is None:
            return self._need("inside a chunked body")
        size_text = line.partition(b";")[0].strip(b" \t")
        if not size_text or not _HEX.issuperset(size_text) or len(size_text.lstrip(b"0")) > 16:
            raise ProtocolError(f"bad chunk size line {line[:40]!r}")
        self._remaining = int(size_text, 16)
        self.their_state = CHUNK_DATA if self._remaining else TRAILERS
        return self.next_event()

    def _receive_chunk_data(self) -> Data | NeedData:
        if not self._buf:
            return self._need("inside a chunk")
        data = self._take()
        if self._remaining == 0:
            self.their_state = CHUNK_CRLF
        return data

    def _receive_chunk_crlf(self) -> Response | Data | EndOfMessage | NeedData:
        if self._buf[:2] == b"\r\n":
            del self._buf[:2]
        elif not self._buf or self._buf == b"\r":
            return self._need("inside a chunked body")
        else:
            raise ProtocolError("missing CRLF after chunk data")
        self.their_state = CHUNK_SIZE
        return self.next_event()

    def _receive_trailers(self) -> EndOfMessage | NeedData:
        while True:
            line = self._line(MAX_HEAD_SIZE, "trailer")
            if line is None:
                return self._need("inside the trailers")
            if line == b"":
                self.their_state = DONE
                return EndOfMessage(self._trailers)
            self._trailers.append(_parse_header(line))

    def _receive_end(self) -> EndOfMessage:
        self.their_state = DONE
        return EndOfMessage()


# their state -> how the next event is read from the buffer
_RECEIVE: dict[str, Callable[[ClientConnection], Response | Data | EndOfMessage | NeedData]] = {
    SEND_RESPONSE: ClientConnection._receive_head,
    BODY_LENGTH: ClientConnection._receive_length,
    BODY_TO_EOF: ClientConnection._receive_to_eof,
    CHUNK_SIZE: ClientConnection._receive_chunk_size,
    CHUNK_DATA: ClientConnection._receive_chunk_data,
    CHUNK_CRLF: ClientConnection._receive_chunk_crlf,
    TRAILERS: ClientConnection._receive_trailers,
    END: ClientConnection._receive_end,
}
