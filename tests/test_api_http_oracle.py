"""corral's sans-I/O HTTP/1.1 parser held against h11 on requests parsers disagree about.

h11 (a test-only dependency) is the reference sans-I/O implementation corral's parser is
modelled on.  Each request below goes through both, fed in slices and then EOF; they
must agree on accept (a whole request: head, body, end) or refuse, and on what was
accepted (method, target, headers, body).  Where corral differs on purpose, the row
says so and why, and the test checks the difference is still there: if h11 changes,
the table has to be looked at again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import h11
import pytest

from supervisor.httpcore.server import (
    MAX_HEAD_SIZE,
    NEED_DATA,
    ConnectionClosed,
    Data,
    EndOfMessage,
    ProtocolError,
    Request,
    ServerConnection,
)

Outcome = Literal["accept", "refuse"]
# what an accepted request was: method, target, headers (name lower-cased), body
Parsed = tuple[str, str, list[tuple[str, str]], bytes]

SLICE = 4096  # h11 applies its size limit to what it buffers while waiting for more

GET = b"GET / HTTP/1.1\r\nHost: x\r\n"
POST = b"POST / HTTP/1.1\r\nHost: x\r\n"
CHUNKED = POST + b"Transfer-Encoding: chunked\r\n\r\n"


@dataclass(frozen=True)
class Case:
    name: str
    raw: bytes
    corral: Outcome
    why: str | None = None  # set when h11 answers the other way on purpose


CASES = [
    # -- request line ----------------------------------------------------------------
    Case("plain GET", GET + b"\r\n", "accept"),
    Case("lower-case method", b"get / HTTP/1.1\r\nHost: x\r\n\r\n", "accept"),
    Case("bad method character", b"G(T / HTTP/1.1\r\nHost: x\r\n\r\n", "refuse"),
    Case("two spaces", b"GET  / HTTP/1.1\r\nHost: x\r\n\r\n", "refuse"),
    Case("tab as separator", b"GET\t/ HTTP/1.1\r\nHost: x\r\n\r\n", "refuse"),
    Case("trailing space", b"GET / HTTP/1.1 \r\nHost: x\r\n\r\n", "refuse"),
    Case("HTTP/0.9 line", b"GET /\r\n\r\n", "refuse"),
    Case("lower-case version", b"GET / http/1.1\r\nHost: x\r\n\r\n", "refuse"),
    Case("HTTP/1.0 without Host", b"GET / HTTP/1.0\r\n\r\n", "accept"),
    Case("HTTP/1.2 is served as 1.1", b"GET / HTTP/1.2\r\nHost: x\r\n\r\n", "accept"),
    Case(
        "HTTP/2.0 in an HTTP/1 request line",
        b"GET / HTTP/2.0\r\nHost: x\r\n\r\n",
        "refuse",
        why="RFC 9110 §15.6.6: a major version the server does not speak gets 505; "
        "h11 reads any d.d as 1.1",
    ),
    Case("NUL in the target", b"GET /a\x00b HTTP/1.1\r\nHost: x\r\n\r\n", "refuse"),
    Case("non-ASCII target", b"GET /caf\xe9 HTTP/1.1\r\nHost: x\r\n\r\n", "refuse"),
    Case("absolute-form", b"GET http://docker/v1.44/info HTTP/1.1\r\nHost: x\r\n\r\n", "accept"),
    Case("asterisk-form", b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", "accept"),
    Case(
        "empty lines before the request line",
        b"\r\n\r\n" + GET + b"\r\n",
        "accept",
        why="RFC 9112 §2.2: a server SHOULD ignore at least one empty line before the "
        "request-line (a client's stray CRLF after a body); h11 does not",
    ),
    Case("request line over the limit", b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n", "refuse"),
    # -- header fields ---------------------------------------------------------------
    Case("empty value", GET + b"X-E:\r\n\r\n", "accept"),
    Case("tab inside a value", GET + b"X-A: a\tb\r\n\r\n", "accept"),
    Case("obs-text in a value", GET + b"X-A: caf\xe9\r\n\r\n", "accept"),
    Case("NUL in a value", GET + b"X-A: a\x00b\r\n\r\n", "refuse"),
    Case("bare CR in a value", GET + b"X-A: a\rb\r\n\r\n", "refuse"),
    Case("vertical tab in a value", GET + b"X-A: a\x0bb\r\n\r\n", "refuse"),
    Case("vertical tab before chunked", POST + b"Transfer-Encoding: \x0bchunked\r\n\r\n", "refuse"),
    *(
        Case(
            f"control character 0x{c:02x} in a value",
            GET + b"X-A: a" + bytes([c]) + b"b\r\n\r\n",
            "refuse",
            why="RFC 9110 §5.5: a field value holds no control character but HTAB; h11 "
            "only refuses NUL and whitespace controls",
        )
        for c in (0x01, 0x1B, 0x7F)
    ),
    Case("NUL in a name", GET + b"X\x00A: 1\r\n\r\n", "refuse"),
    Case("space before the colon", b"GET / HTTP/1.1\r\nHost : x\r\n\r\n", "refuse"),
    Case("no colon", b"GET / HTTP/1.1\r\nHost x\r\n\r\n", "refuse"),
    Case("empty name", GET + b": x\r\n\r\n", "refuse"),
    Case("bare LF line ends in the head", b"GET / HTTP/1.1\nHost: x\nX-A: 1\n\n", "accept"),
    Case(
        "whitespace before the first field",
        b"GET / HTTP/1.1\r\n X-A: 1\r\nHost: x\r\n\r\n",
        "refuse",
    ),
    Case(
        "obs-fold",
        GET + b"X-A: 1\r\n 2\r\n\r\n",
        "refuse",
        why="RFC 9112 §5.2 lets a server refuse obs-fold with 400; unfolding is what "
        "lets two parsers see different headers, and no Docker client folds",
    ),
    Case(
        "whitespace-only line in the head",
        GET + b" \r\n\r\n",
        "refuse",
        why="an obs-fold continuing the previous field (see obs-fold)",
    ),
    Case("two Host fields", GET + b"Host: y\r\n\r\n", "refuse"),
    Case(
        "HTTP/1.1 without Host",
        b"GET / HTTP/1.1\r\n\r\n",
        "accept",
        why="on a Unix socket there is no virtual host for Host to name; refusing would "
        "only break hand-typed requests (printf ... | nc -U)",
    ),
    Case("one huge header", GET + b"X-A: " + b"a" * 70_000 + b"\r\n\r\n", "refuse"),
    Case("a big header under the limit", GET + b"X-A: " + b"a" * 40_000 + b"\r\n\r\n", "accept"),
    Case(
        "many headers over the limit",
        GET + b"".join(b"X-%d: %s\r\n" % (i, b"v" * 90) for i in range(800)) + b"\r\n",
        "refuse",
    ),
    # -- message framing -------------------------------------------------------------
    Case("Content-Length body", POST + b"Content-Length: 3\r\n\r\nabc", "accept"),
    Case("Content-Length list of one value", POST + b"Content-Length: 3, 3\r\n\r\nabc", "accept"),
    Case(
        "Content-Length twice, equal",
        POST + b"Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
        "accept",
    ),
    Case("Content-Length list, different", POST + b"Content-Length: 3, 4\r\n\r\nabcd", "refuse"),
    Case("Content-Length with a plus", POST + b"Content-Length: +3\r\n\r\nabc", "refuse"),
    Case("Content-Length in hex", POST + b"Content-Length: 0x3\r\n\r\nabc", "refuse"),
    Case("Content-Length negative", POST + b"Content-Length: -1\r\n\r\n", "refuse"),
    Case("Content-Length with a space", POST + b"Content-Length: 3 3\r\n\r\nabc", "refuse"),
    Case("body shorter than Content-Length", POST + b"Content-Length: 5\r\n\r\nabc", "refuse"),
    Case(
        "Transfer-Encoding and Content-Length",
        POST + b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        "refuse",
        why="RFC 9112 §6.1 lets a server refuse both; which one wins is the classic "
        "request-smuggling disagreement, h11 lets chunked win",
    ),
    Case(
        "Transfer-Encoding upper case",
        POST + b"Transfer-Encoding: CHUNKED\r\n\r\n0\r\n\r\n",
        "accept",
    ),
    Case(
        "Transfer-Encoding gzip, chunked",
        POST + b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        "refuse",
    ),
    Case(
        "Transfer-Encoding twice",
        POST + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "refuse",
    ),
    Case("Transfer-Encoding identity", POST + b"Transfer-Encoding: identity\r\n\r\n", "refuse"),
    Case(
        "space before the colon of Transfer-Encoding",
        POST + b"Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
        "refuse",
    ),
    Case(
        "chunked on HTTP/1.0",
        b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        "accept",
    ),
    # -- chunks ----------------------------------------------------------------------
    Case("chunks", CHUNKED + b"5\r\nhello\r\n1\r\n!\r\n0\r\n\r\n", "accept"),
    Case(
        "chunk extensions",
        CHUNKED + b'5;name=value\r\nhello\r\n3;q="a b";x\r\nabc\r\n0;last\r\n\r\n',
        "accept",
    ),
    Case(
        "blank before a chunk extension",
        CHUNKED + b'5 ;x="y"\r\nhello\r\n0\r\n\r\n',
        "accept",
        why="RFC 9112 §7.1.1 allows BWS around ';' and '=' in chunk-ext; h11 does not",
    ),
    Case(
        "NUL in a chunk extension",
        CHUNKED + b"5;x\x00\r\nhello\r\n0\r\n\r\n",
        "refuse",
        why="a chunk-ext is token[=token/quoted-string] (RFC 9112 §7.1.1); h11 takes "
        "anything up to CRLF, which is how bytes hide in an extension",
    ),
    Case("bare LF inside a chunk extension", CHUNKED + b"5;x\nhello\r\n0\r\n\r\n", "refuse"),
    Case("bare LF after the chunk size", CHUNKED + b"3\nabc\r\n0\r\n\r\n", "refuse"),
    Case("bare LF after chunk data", CHUNKED + b"3\r\nabc\n0\r\n\r\n", "refuse"),
    Case("bare LF after the last chunk", CHUNKED + b"0\n\r\n", "refuse"),
    Case("no CRLF after chunk data", CHUNKED + b"3\r\nabcXY0\r\n\r\n", "refuse"),
    Case("blank after the chunk size", CHUNKED + b"5 \r\nhello\r\n0\r\n\r\n", "accept"),
    Case(
        "chunk size with leading zeros",
        CHUNKED + b"00000000000000005\r\nhello\r\n0\r\n\r\n",
        "accept",
    ),
    Case("chunk size 0x-prefixed", CHUNKED + b"0x5\r\nhello\r\n0\r\n\r\n", "refuse"),
    Case("chunk size negative", CHUNKED + b"-5\r\nhello\r\n0\r\n\r\n", "refuse"),
    Case("trailers", CHUNKED + b"5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n", "accept"),
    Case("trailers ended by bare LF", CHUNKED + b"0\r\nX-T: 1\n\n", "accept"),
    Case("NUL in a trailer", CHUNKED + b"5\r\nhello\r\n0\r\nX-T: \x00\r\n\r\n", "refuse"),
    Case("no last chunk before EOF", CHUNKED + b"5\r\nhello\r\n", "refuse"),
]


def run_corral(raw: bytes) -> tuple[Outcome, Parsed | None]:
    conn = ServerConnection()
    request: Request | None = None
    body = b""
    pieces = [raw[i : i + SLICE] for i in range(0, len(raw), SLICE)] + [b""]
    try:
        for piece in pieces:
            conn.feed(piece)
            while (event := conn.next_event()) is not NEED_DATA:
                if isinstance(event, Request):
                    request = event
                elif isinstance(event, Data):
                    body += event.data
                elif isinstance(event, EndOfMessage):
                    assert request is not None
                    headers = [(k.lower(), v) for k, v in request.headers]
                    return "accept", (request.method, request.target, headers, body)
                elif isinstance(event, ConnectionClosed):
                    return "refuse", None
    except ProtocolError:
        return "refuse", None
    return "refuse", None


def run_h11(raw: bytes) -> tuple[Outcome, Parsed | None]:
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD_SIZE)
    request = None
    body = b""
    pieces = [raw[i : i + SLICE] for i in range(0, len(raw), SLICE)] + [b""]
    try:
        for piece in pieces:
            conn.receive_data(piece)
            while (event := conn.next_event()) is not h11.NEED_DATA:
                if isinstance(event, h11.Request):
                    request = event
                elif isinstance(event, h11.Data):
                    body += bytes(event.data)
                elif isinstance(event, h11.EndOfMessage):
                    assert request is not None
                    headers = [(k.decode(), v.decode("latin-1")) for k, v in request.headers]
                    return "accept", (
                        request.method.decode(),
                        request.target.decode("latin-1"),
                        headers,
                        body,
                    )
                elif isinstance(event, h11.ConnectionClosed):
                    return "refuse", None
    except h11.RemoteProtocolError:
        return "refuse", None
    return "refuse", None


# h11 rewrites these two while validating (one Content-Length, lower-cased coding)
_NORMALIZED = {"content-length", "transfer-encoding"}


def comparable(parsed: Parsed) -> Parsed:
    method, target, headers, body = parsed
    return method, target, [h for h in headers if h[0] not in _NORMALIZED], body


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_corral_and_h11_agree(case: Case) -> None:
    ours, ours_parsed = run_corral(case.raw)
    theirs, theirs_parsed = run_h11(case.raw)
    assert ours == case.corral
    if case.why is None:
        assert theirs == ours, f"h11 says {theirs}"
        if ours_parsed is not None and theirs_parsed is not None:
            assert comparable(ours_parsed) == comparable(theirs_parsed)
    else:
        assert theirs != ours, f"h11 now agrees ({theirs}): drop the difference from the table"
