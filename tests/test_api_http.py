"""Sans-I/O tests of the HTTP/1.1 server core and of stdcopy framing."""

from __future__ import annotations

import pytest

from supervisor.api.stdcopy import Demuxer, StdcopyError, demux_all, frame
from supervisor.httpcore.server import (
    NEED_DATA,
    ConnectionClosed,
    Data,
    EndOfMessage,
    Event,
    ProtocolError,
    Request,
    ServerConnection,
    format_chunk,
    format_response_head,
    keep_alive,
)


def drain(conn: ServerConnection) -> list[Event]:
    events: list[Event] = []
    while True:
        ev = conn.next_event()
        if ev is NEED_DATA:
            return events
        events.append(ev)
        if isinstance(ev, ConnectionClosed):
            return events


def body_of(events: list[Event]) -> bytes:
    return b"".join(e.data for e in events if isinstance(e, Data))


def test_simple_get_no_body() -> None:
    c = ServerConnection()
    c.feed(b"GET /v1.44/containers/json?all=1&filters=%7B%7D HTTP/1.1\r\nHost: x\r\n\r\n")
    events = drain(c)
    assert len(events) == 2
    req, end = events
    assert isinstance(req, Request) and isinstance(end, EndOfMessage)
    assert req.method == "GET"
    assert req.path == "/v1.44/containers/json"
    assert req.query == {"all": ["1"], "filters": ["{}"]}
    assert req.headers.get("HOST") == "x"
    assert req.headers.raw == [("Host", "x")]
    assert req.http_version == "1.1"
    assert keep_alive(req)


def test_content_length_body_in_pieces() -> None:
    c = ServerConnection()
    c.feed(b"POST /x HTTP/1.1\r\nContent-Length: 10\r\nContent-Type: a\r\n\r\n01234")
    events = drain(c)
    assert isinstance(events[0], Request)
    assert body_of(events) == b"01234"
    assert not any(isinstance(e, EndOfMessage) for e in events)
    c.feed(b"56789")
    events = drain(c)
    assert body_of(events) == b"56789"
    assert isinstance(events[-1], EndOfMessage)


def test_byte_by_byte() -> None:
    raw = b"POST /a%20b HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    c = ServerConnection()
    events: list[Event] = []
    for i in range(len(raw)):
        c.feed(raw[i : i + 1])
        events += drain(c)
    assert isinstance(events[0], Request) and events[0].path == "/a b"
    assert body_of(events) == b"abc"
    assert isinstance(events[-1], EndOfMessage)


def test_chunked_with_extensions_and_trailers() -> None:
    c = ServerConnection()
    c.feed(
        b"POST /build HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5;name=value\r\nhello\r\n"
        b'A ; x="y"\r\n0123456789\r\n'
        b"0;last\r\nX-Trailer: yes\r\nX-Other: 2\r\n\r\n"
    )
    events = drain(c)
    assert body_of(events) == b"hello0123456789"
    end = events[-1]
    assert isinstance(end, EndOfMessage)
    assert end.trailers.get("x-trailer") == "yes"


def test_pipelined_requests() -> None:
    c = ServerConnection()
    c.feed(
        b"GET /_ping HTTP/1.1\r\n\r\n"
        b"POST /a HTTP/1.1\r\nContent-Length: 3\r\n\r\nxyz"
        b"POST /b HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nq\r\n0\r\n\r\n"
        b"GET /c HTTP/1.1\r\nConnection: close\r\n\r\n"
    )
    events = drain(c)
    reqs = [e for e in events if isinstance(e, Request)]
    assert [r.path for r in reqs] == ["/_ping", "/a", "/b", "/c"]
    assert sum(isinstance(e, EndOfMessage) for e in events) == 4
    assert body_of(events) == b"xyzq"
    assert not keep_alive(reqs[-1])
    c.feed(b"")
    assert isinstance(c.next_event(), ConnectionClosed)


def test_expect_100_continue() -> None:
    c = ServerConnection()
    c.feed(b"POST /x HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n")
    req = c.next_event()
    assert isinstance(req, Request) and req.expects_continue
    assert c.next_event() is NEED_DATA
    assert c.continue_owed
    assert c.take_continue() == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert c.take_continue() == b""
    c.feed(b"ok")
    assert body_of(drain(c)) == b"ok"


def test_expect_100_continue_not_owed_without_body_or_after_response() -> None:
    c = ServerConnection()
    c.feed(b"GET /x HTTP/1.1\r\nExpect: 100-continue\r\n\r\n")
    drain(c)
    assert c.take_continue() == b""
    c.feed(b"PUT /x HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
    drain(c)
    c.response_started()
    assert c.take_continue() == b""


@pytest.mark.parametrize(
    "raw",
    [
        b"GARBAGE\r\n\r\n",
        b"GET / HTTP/2.0\r\n\r\n",
        b"GET /\r\n\r\n",
        b"GET / HTTP/1.1\r\nNo colon here\r\n\r\n",
        b"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabXY",
    ],
)
def test_malformed_raises(raw: bytes) -> None:
    c = ServerConnection()
    c.feed(raw)
    with pytest.raises(ProtocolError) as info:
        drain(c)
    assert info.value.status in (400, 501, 505)
    assert c.broken
    with pytest.raises(ProtocolError):
        c.next_event()


def test_head_too_large() -> None:
    c = ServerConnection()
    c.feed(b"GET / HTTP/1.1\r\n" + b"X-A: " + b"a" * 70000)
    with pytest.raises(ProtocolError) as info:
        drain(c)
    assert info.value.status == 431


def test_eof_mid_body_is_an_error_and_idle_eof_is_clean() -> None:
    c = ServerConnection()
    c.feed(b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nab")
    drain(c)
    c.feed(b"")
    with pytest.raises(ProtocolError):
        c.next_event()
    c2 = ServerConnection()
    c2.feed(b"")
    assert isinstance(c2.next_event(), ConnectionClosed)


def test_trailing_data_after_upgrade_request() -> None:
    c = ServerConnection()
    c.feed(
        b"POST /containers/x/attach HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
        b"\r\nstdin bytes"
    )
    events = drain(c)
    req = events[0]
    assert isinstance(req, Request) and req.wants_upgrade
    assert c.take_trailing_data() == b"stdin bytes"


def test_http10_and_absolute_form() -> None:
    c = ServerConnection()
    c.feed(b"GET http://docker/v1.44/info?x=1 HTTP/1.0\r\n\r\n")
    req = c.next_event()
    assert isinstance(req, Request)
    assert req.path == "/v1.44/info" and req.query == {"x": ["1"]}
    assert not keep_alive(req)
    c.feed(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    drain(c)
    assert req.http_version == "1.0"


def test_http10_chunked_request_closes_the_connection() -> None:
    """RFC 9112 §6.1: Transfer-Encoding in HTTP/1.0 is faulty framing, keep-alive or not."""
    c = ServerConnection()
    c.feed(b"POST / HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"2\r\nok\r\n0\r\n\r\n")  # fmt: skip
    events = drain(c)
    req = events[0]
    assert isinstance(req, Request) and body_of(events) == b"ok"
    assert not keep_alive(req)


def test_keep_alive_response_close() -> None:
    c = ServerConnection()
    c.feed(b"GET / HTTP/1.1\r\n\r\n")
    req = c.next_event()
    assert isinstance(req, Request)
    assert keep_alive(req)
    assert not keep_alive(req, [("Connection", "close")])


def test_format_response_head() -> None:
    head = format_response_head(200, None, [("Content-Length", "2")])
    assert head == b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n"
    assert format_response_head(101, "UPGRADED").startswith(b"HTTP/1.1 101 UPGRADED\r\n")
    with pytest.raises(ValueError):
        format_response_head(200, None, [("X", "a\r\nEvil: 1")])
    with pytest.raises(ValueError):
        format_response_head(200, None, [("X", "a\x00b")])
    with pytest.raises(ValueError):
        format_response_head(200, None, [("X Y", "1")])
    assert format_chunk(b"hello") == b"5\r\nhello\r\n"


# -- stdcopy ------------------------------------------------------------------------


def test_frame_header() -> None:
    assert frame(1, b"hi") == b"\x01\x00\x00\x00\x00\x00\x00\x02hi"
    assert frame(2, b"x" * 256)[:8] == b"\x02\x00\x00\x00\x00\x00\x01\x00"
    assert frame(1, b"") == b""
    with pytest.raises(ValueError):
        frame(7, b"x")


def test_demuxer_incremental() -> None:
    raw = frame(1, b"out") + frame(2, b"err!") + frame(1, b"x" * 1000)
    d = Demuxer()
    got: list[tuple[int, bytes]] = []
    for i in range(0, len(raw), 3):
        got += d.feed(raw[i : i + 3])
    assert got == [(1, b"out"), (2, b"err!"), (1, b"x" * 1000)]
    assert d.pending == 0
    assert demux_all(raw) == got
    with pytest.raises(StdcopyError):
        demux_all(raw[:-1])
    with pytest.raises(StdcopyError):
        Demuxer().feed(b"\x09\x00\x00\x00\x00\x00\x00\x01x")
