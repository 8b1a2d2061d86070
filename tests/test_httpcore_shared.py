"""The HTTP core's two halves read one grammar: what the server refuses in a request
body, the client refuses in a response body, and the other way round.

Until the core was one, the client had its own laxer copy (a chunk-size line ended by
a bare LF, or `5;;`, read as a size); the server's strictness is what
tests/test_api_http_oracle.py holds against h11.  Also here: the upgrade (Docker's
hijack, the websocket's 101) decided by the server connection, and the websocket
handshake the core answers.
"""

from __future__ import annotations

from typing import Any

import pytest

from supervisor import httpcore as wire
from supervisor.httpcore.client import ClientConnection, Upgrade
from supervisor.httpcore.server import ProtocolError, Request, ServerConnection
from supervisor.httpcore.websocket import HandshakeError, accept_key, handshake

# chunked bodies (after the head), accepted with their content or refused
BODIES: list[tuple[bytes, bytes | None]] = [
    (b"5\r\nhello\r\n0\r\n\r\n", b"hello"),
    (b"5;name=value\r\nhello\r\n0\r\n\r\n", b"hello"),
    (b'5 ; q="a \\" b"\r\nhello\r\n0\r\n\r\n', b"hello"),
    (b"5;a;b=c\t \r\nhello\r\n0\r\nX-T: 1\r\n\r\n", b"hello"),
    (b"00005\r\nhello\r\n0\r\n\r\n", b"hello"),
    (b"5\nhello\r\n0\r\n\r\n", None),  # chunk line ended by a bare LF
    (b"5;;\r\nhello\r\n0\r\n\r\n", None),  # empty extension name
    (b"5;a=\r\nhello\r\n0\r\n\r\n", None),  # extension without its value
    (b'5;a="x\r\nhello\r\n0\r\n\r\n', None),  # quoted string never closed
    (b"5 x\r\nhello\r\n0\r\n\r\n", None),  # junk after the size
    (b";a\r\nhello\r\n0\r\n\r\n", None),  # no size
    (b"-5\r\nhello\r\n0\r\n\r\n", None),
    (b"1" + b"0" * 16 + b"\r\n", None),  # 2**64: too large
    (b"5\r\nhelloX\r\n0\r\n\r\n", None),  # no CRLF after the data
    (b"5\r\nhello\r\n0\r\nBad Header: x\r\n\r\n", None),  # malformed trailer
    (b"5\r\nhello\r\n0\r\nX: a\x01b\r\n\r\n", None),  # control character in a trailer
]


def server_body(chunked: bytes) -> bytes:
    conn = ServerConnection()
    conn.feed(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked)
    conn.feed(b"")
    out = b""
    assert isinstance(conn.next_event(), Request)
    while True:
        event = conn.next_event()
        if isinstance(event, wire.EndOfMessage):
            return out
        assert isinstance(event, wire.Data), event
        out += event.data


def client_body(chunked: bytes) -> bytes:
    conn = ClientConnection()
    conn.send_request("GET", "/", [("Host", "corral")])
    conn.receive_data(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked)
    conn.receive_data(b"")
    out = b""
    assert conn.next_event().__class__.__name__ == "Response"
    while True:
        event = conn.next_event()
        if isinstance(event, wire.EndOfMessage):
            return out
        assert isinstance(event, wire.Data), event
        out += event.data


@pytest.mark.parametrize(("chunked", "expected"), BODIES)
def test_both_halves_frame_chunked_bodies_alike(chunked: bytes, expected: bytes | None) -> None:
    for read in (server_body, client_body):
        if expected is None:
            with pytest.raises(ProtocolError):
                read(chunked)
        else:
            assert read(chunked) == expected, read.__name__


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["5"], 5),
        (["5, 5"], 5),
        (["5", "5"], 5),
        (["5", "6"], None),
        (["+5"], None),
        (["0x5"], None),
        (["\u00b2"], None),
        (["1" * 19], None),
        ([""], None),
    ],
)
def test_content_length_rule_is_one_for_both(values: list[str], expected: int | None) -> None:
    lines = b"".join(b"Content-Length: %s\r\n" % v.encode() for v in values)
    server, client = ServerConnection(), ClientConnection()
    server.feed(b"POST / HTTP/1.1\r\nHost: x\r\n" + lines + b"\r\n")
    client.send_request("GET", "/", [])
    client.receive_data(b"HTTP/1.1 200 OK\r\n" + lines + b"\r\n")
    for conn in (server, client):
        if expected is None:
            with pytest.raises(ProtocolError, match="Content-Length"):
                conn.next_event()
        else:
            head: Any = conn.next_event()
            assert head.__class__.__name__ in ("Request", "Response")
    if expected is not None:
        server.feed(b"x" * expected)
        assert server.next_event() == wire.Data(b"x" * expected)


def _upgrade_request(conn: ServerConnection, raw: bytes) -> Request:
    conn.feed(raw)
    request = conn.next_event()
    assert isinstance(request, Request)
    assert isinstance(conn.next_event(), wire.EndOfMessage)
    return request


def test_the_server_switches_to_docker_raw_stream_and_the_client_reads_it() -> None:
    server = ServerConnection()
    client = ClientConnection()
    head = client.send_request(
        "POST",
        "/containers/x/attach",
        [("Host", "d"), ("Connection", "Upgrade"), ("Upgrade", "tcp")],
    )
    _upgrade_request(server, head + b"early stdin")
    answer = server.switch_protocols([("Content-Type", "application/vnd.docker.raw-stream")])
    assert answer.startswith(b"HTTP/1.1 101 UPGRADED\r\n")
    assert server.take_trailing_data() == b"early stdin"  # the stream's, not HTTP's
    with pytest.raises(ProtocolError, match="handed over"):
        server.next_event()
    client.receive_data(answer + b"output")
    event = client.next_event()
    assert isinstance(event, Upgrade) and event.status == 101 and event.trailing == b"output"
    assert event.headers["upgrade"] == "tcp"


def test_a_plain_post_gets_the_historical_200_and_head_is_refused() -> None:
    plain = ServerConnection()
    _upgrade_request(plain, b"POST /exec/x/start HTTP/1.1\r\nHost: d\r\nContent-Length: 0\r\n\r\n")
    assert plain.switch_protocols([("Content-Type", "x")]).startswith(b"HTTP/1.1 200 OK\r\n")
    head = ServerConnection()
    _upgrade_request(head, b"HEAD /containers/x/attach HTTP/1.1\r\nHost: d\r\n\r\n")
    with pytest.raises(ProtocolError) as err:
        head.switch_protocols()
    assert err.value.status == 405


def test_websocket_handshake_and_its_101() -> None:
    key = "dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455 §1.3's example
    conn = ServerConnection()
    request = _upgrade_request(
        conn,
        b"GET /containers/x/attach/ws HTTP/1.1\r\nHost: d\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Key: " + key.encode() + b"\r\n"
        b"Sec-WebSocket-Version: 13\r\n\r\n",
    )
    headers = handshake(request.headers)
    assert ("Sec-WebSocket-Accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") in headers  # RFC's answer
    assert accept_key(key) == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    assert conn.switch_protocols([], headers).startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    plain = ServerConnection()
    req = _upgrade_request(plain, b"GET /containers/x/attach/ws HTTP/1.1\r\nHost: d\r\n\r\n")
    with pytest.raises(ProtocolError, match="needs a protocol upgrade"):
        plain.switch_protocols([], headers)
    with pytest.raises(HandshakeError, match="must upgrade to websocket"):
        handshake(req.headers)
    bad = wire.Headers([("Upgrade", "websocket"), ("Sec-WebSocket-Key", "short")])
    with pytest.raises(HandshakeError, match="bad Sec-WebSocket-Key"):
        handshake(bad)


@pytest.mark.parametrize(
    "headers",
    [[("Transfer-Encoding", "chunked")], [("Content-Length", "10")], [("Connection", "close")]],
)
def test_what_the_server_half_sends_the_client_half_reads(headers: list[tuple[str, str]]) -> None:
    """The response body's framing follows the headers sent, as in h11."""
    server = ServerConnection()
    _upgrade_request(server, b"GET /logs HTTP/1.1\r\nHost: d\r\n\r\n")
    wire_bytes = server.send_response(200, headers)
    for piece in (b"hello", b"", b"world"):
        wire_bytes += server.send_data(piece)
    wire_bytes += server.send_end()
    assert (b"5\r\nhello\r\n" in wire_bytes) == ("chunked" in str(headers))
    client = ClientConnection()
    client.send_request("GET", "/logs", [("Host", "d")])
    client.receive_data(wire_bytes)
    client.receive_data(b"")  # the server closes after the response
    events = []
    while not isinstance(event := client.next_event(), wire.EndOfMessage):
        events.append(event)
    assert b"".join(e.data for e in events if isinstance(e, wire.Data)) == b"helloworld"
