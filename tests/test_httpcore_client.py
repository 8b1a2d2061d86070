"""The sans-I/O client connection: bytes in, events out, no socket.

Every corral client (CLI, compose, bench) reads responses through it, so framing is
checked here once: Content-Length, chunked, close-delimited, body-less answers (HEAD,
204, 304), interim 100, the 101 upgrade with stream bytes already read, bad responses.
"""

from __future__ import annotations

from typing import Any

import pytest

from supervisor.httpcore.client import (
    NEED_DATA,
    ClientConnection,
    Data,
    EndOfMessage,
    ProtocolError,
    Response,
    Upgrade,
)


def exchange(
    raw: bytes | list[bytes],
    method: str = "GET",
    headers: list[tuple[str, str]] | None = None,
    eof: bool = True,
) -> tuple[ClientConnection, list[Any]]:
    """Feed a response (whole, or piece by piece) and collect every event."""
    conn = ClientConnection()
    conn.send_request(method, "/x", headers or [("Host", "corral")])
    events: list[Any] = []
    pieces = [raw] if isinstance(raw, bytes) else raw
    for piece in [*pieces, b""] if eof else pieces:
        conn.receive_data(piece)
        while True:
            event = conn.next_event()
            if event is NEED_DATA:
                break
            events.append(event)
            if isinstance(event, EndOfMessage | Upgrade):
                return conn, events
    return conn, events


def body(events: list[Any]) -> bytes:
    return b"".join(e.data for e in events if isinstance(e, Data))


def test_request_head_and_chunked_body_bytes() -> None:
    conn = ClientConnection()
    head = conn.send_request(
        "POST", "/v1.44/build?t=a", [("Host", "corral"), ("Transfer-Encoding", "chunked")]
    )
    assert head == (
        b"POST /v1.44/build?t=a HTTP/1.1\r\nHost: corral\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    assert conn.send_data(b"abc") == b"3\r\nabc\r\n"
    assert conn.send_data(b"") == b""  # an empty write must not end the body
    assert conn.send_end() == b"0\r\n\r\n"


def test_request_header_injection_is_refused() -> None:
    with pytest.raises(ValueError, match="bad header"):
        ClientConnection().send_request("GET", "/", [("X", "a\r\nEvil: 1")])
    empty = ClientConnection()
    empty.send_request("GET", "/", [("Content-Length", "0")])
    assert empty.send_data(b"") + empty.send_end() == b""
    with pytest.raises(ValueError, match="no request body"):
        empty.send_data(b"x")
    with pytest.raises(ValueError, match="longer than its Content-Length"):
        conn = ClientConnection()
        conn.send_request("POST", "/", [("Content-Length", "2")])
        conn.send_data(b"abc")


def test_content_length_body_split_anywhere() -> None:
    raw = b'HTTP/1.1 201 Created\r\nContent-Length: 11\r\nX-A: 1\r\n\r\n{"Id":"a"}\n'
    for cut in range(1, len(raw)):
        _, events = exchange([raw[:cut], raw[cut:]], eof=False)
        head = events[0]
        assert isinstance(head, Response)
        assert (head.status, head.reason, head.headers["x-a"]) == (201, "Created", "1")
        assert body(events) == b'{"Id":"a"}\n'
        assert isinstance(events[-1], EndOfMessage)


def test_chunked_body_with_extensions_and_trailers() -> None:
    raw = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3;name=v\r\nabc\r\n2\r\nde\r\n0\r\nX-Trailer: t\r\n\r\n"
    )
    for cut in range(1, len(raw)):
        _, events = exchange([raw[:cut], raw[cut:]], eof=False)
        assert body(events) == b"abcde"
        assert list(events[-1].trailers) == [("X-Trailer", "t")]


def test_close_delimited_body_runs_to_eof() -> None:
    _, events = exchange([b"HTTP/1.0 200 OK\r\n\r\nsome", b" data"])
    assert events[0].http_version == "1.0"
    assert body(events) == b"some data"
    assert isinstance(events[-1], EndOfMessage)


@pytest.mark.parametrize(
    ("method", "status"),
    [("HEAD", "200 OK"), ("GET", "204 No Content"), ("POST", "304 Not Modified")],
)
def test_bodyless_answers_ignore_their_length(method: str, status: str) -> None:
    raw = f"HTTP/1.1 {status}\r\nContent-Length: 42\r\n\r\n".encode()
    _, events = exchange(raw, method=method, eof=False)
    assert [type(e) for e in events] == [Response, EndOfMessage]


def test_interim_100_continue_is_skipped() -> None:
    raw = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    _, events = exchange(raw, eof=False)
    assert events[0].status == 200
    assert body(events) == b"ok"


def test_upgrade_keeps_the_stream_bytes_read_past_the_head() -> None:
    raw = b"HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n\x01\x00\x00\x00"
    hdrs = [("Host", "corral"), ("Connection", "Upgrade"), ("Upgrade", "tcp")]
    conn, events = exchange(raw, method="POST", headers=hdrs, eof=False)
    [up] = events
    assert isinstance(up, Upgrade)
    assert (up.status, up.headers["upgrade"], up.trailing) == (101, "tcp", b"\x01\x00\x00\x00")
    with pytest.raises(ProtocolError):
        conn.next_event()  # the connection is a raw stream now


def test_docker_200_to_an_upgrade_request_is_a_hijack_too() -> None:
    hdrs = [("Connection", "Upgrade"), ("Upgrade", "tcp")]
    _, events = exchange(b"HTTP/1.1 200 OK\r\n\r\nraw", method="POST", headers=hdrs, eof=False)
    assert isinstance(events[0], Upgrade)
    assert events[0].trailing == b"raw"


def test_an_upgrade_refused_is_an_ordinary_response() -> None:
    hdrs = [("Connection", "Upgrade"), ("Upgrade", "tcp")]
    raw = b'HTTP/1.1 404 Not Found\r\nContent-Length: 15\r\n\r\n{"message":"x"}'
    _, events = exchange(raw, method="POST", headers=hdrs, eof=False)
    assert not isinstance(events[0], Upgrade)
    assert body(events) == b'{"message":"x"}'


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (b"", "without answering"),
        (b"HTTP/1.1 200 OK\r\nContent-", "in the middle of the response head"),
        (b"SSH-2.0-OpenSSH\r\n\r\n", "bad status line"),
        (b"HTTP/2 200 OK\r\n\r\n", "bad status line"),
        (b"HTTP/1.1 2000 OK\r\n\r\n", "bad status line"),
        (b"HTTP/1.1 200 OK\r\nBad Header: x\r\n\r\n", "malformed header line"),
        (b"HTTP/1.1 200 OK\r\n folded\r\n\r\n", "folding"),
        (b"HTTP/1.1 200 OK\r\nX: a\x00b\r\n\r\n", "control character"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nabc", "before the end of the body"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\na", "Content-Length"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "Content-Length"),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
            "both Transfer-Encoding and Content-Length",
        ),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "malformed chunk size"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX", "missing CRLF"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nab", "inside a chunk"),
        (b"HTTP/1.1 101 Switching Protocols\r\n\r\n", "asked no upgrade"),
    ],
)
def test_bad_responses_raise_a_protocol_error(raw: bytes, error: str) -> None:
    conn = ClientConnection()
    conn.send_request("GET", "/", [])
    with pytest.raises(ProtocolError, match=error):
        exchange(raw)
    conn.receive_data(raw)
    conn.receive_data(b"")
    with pytest.raises(ProtocolError):
        while conn.next_event() is not NEED_DATA:
            pass
    with pytest.raises(ProtocolError):  # broken for good
        conn.next_event()


def test_head_too_large_is_refused_before_it_ends() -> None:
    conn = ClientConnection()
    conn.send_request("GET", "/", [])
    conn.receive_data(b"HTTP/1.1 200 OK\r\nX: " + b"a" * 70000)
    with pytest.raises(ProtocolError, match="too large"):
        conn.next_event()
