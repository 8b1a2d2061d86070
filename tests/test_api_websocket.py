"""The attach WebSocket's codec (RFC 6455) and the detach-key scanner: pure cores."""

from __future__ import annotations

import os
import struct

import pytest

from supervisor.api import detachkeys
from supervisor.httpcore.websocket import (
    BINARY,
    CLOSE,
    PING,
    TEXT,
    Decoder,
    WebSocketError,
    accept_key,
    close_frame,
    frame,
    valid_key,
)


def masked(opcode: int, payload: bytes, mask: bytes | None = None, fin: bool = True) -> bytes:
    """A client frame, written out by hand (RFC 6455 5.2)."""
    mask = mask or os.urandom(4)
    n = len(payload)
    head = bytes([(0x80 if fin else 0) | opcode])
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 1 << 16:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def test_the_handshake_key_of_the_rfc() -> None:
    assert accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    assert valid_key("dGhlIHNhbXBsZSBub25jZQ==")
    assert not valid_key("short") and not valid_key("")


def test_the_rfcs_masked_hello_and_frames_split_anywhere() -> None:
    hello = bytes([0x81, 0x85, 0x37, 0xFA, 0x21, 0x3D, 0x7F, 0x9F, 0x4D, 0x51, 0x58])
    assert Decoder().feed(hello) == [(TEXT, b"Hello")]
    big = os.urandom(70000)
    stream = masked(BINARY, b"x" * 300) + masked(BINARY, big) + masked(PING, b"p")
    d = Decoder()
    got = [m for i in range(0, len(stream), 777) for m in d.feed(stream[i : i + 777])]
    assert got == [(BINARY, b"x" * 300), (BINARY, big), (PING, b"p")]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (bytes([0x82, 0x03]) + b"abc", "client frames must be masked"),
        (masked(PING, b"x", fin=False), "a control frame must be final"),
        (masked(0x3, b"x"), "unknown opcode 0x3"),
        (bytes([0xC2, 0x80, 0, 0, 0, 0]), "reserved bits"),
    ],
)
def test_protocol_errors_name_the_fault(data: bytes, message: str) -> None:
    with pytest.raises(WebSocketError, match=message):
        Decoder().feed(data)


def test_server_frames_are_final_and_unmasked() -> None:
    assert frame(BINARY, b"hi") == b"\x82\x02hi"
    assert frame(BINARY, b"a" * 200)[:4] == b"\x82\x7e\x00\xc8"
    assert close_frame(1000) == bytes([0x80 | CLOSE, 2, 0x03, 0xE8])


async def test_nothing_follows_the_close_frame() -> None:
    """Output racing the client's close is dropped, not sent after the close answer
    (RFC 6455 5.5.1: the close frame is the last); a ping after it gets no pong."""
    import trio.testing

    from supervisor.api.websocket import WebSocketStream

    ours, theirs = trio.testing.memory_stream_pair()
    ws = WebSocketStream(ours)
    await theirs.send_all(masked(BINARY, b"in"))
    assert await ws.receive_some() == b"in"
    await ws.send_all(b"before")
    await theirs.send_all(masked(CLOSE, b"\x03\xe8"))
    assert await ws.receive_some() == b""  # the close: answered, end of input
    await ws.send_all(b"after")
    await ws.aclose()
    got = b""
    while chunk := await theirs.receive_some():
        got += chunk
    assert got == frame(BINARY, b"before") + close_frame(1000)
    assert ws.peer_closed.is_set()


def test_detach_keys_parse_as_docker_writes_them() -> None:
    assert detachkeys.parse(detachkeys.DEFAULT) == b"\x10\x11"
    assert detachkeys.parse("ctrl-a,d,ctrl-@,ctrl-_") == b"\x01d\x00\x1f"
    for bad in ("ctrl-", "ctrl-1", "ab", "", "ctrl-A"):
        with pytest.raises(ValueError, match=r"Invalid detach keys \(.*\) provided"):
            detachkeys.parse(bad)


def test_the_scanner_holds_a_partial_sequence_and_lets_a_broken_one_through() -> None:
    s = detachkeys.DetachScanner(b"\x10\x11")
    assert s.feed(b"ab\x10") == (b"ab", False)  # held: it may be the start
    assert s.feed(b"c") == (b"\x10c", False)  # it was not: sent on, in order
    assert s.feed(b"\x10\x10") == (b"\x10", False)  # the second ctrl-p starts again
    assert s.feed(b"\x11rest") == (b"", True)  # detached: nothing after is sent
    t = detachkeys.DetachScanner(b"\x10\x11")
    t.feed(b"x\x10")
    assert t.flush() == b"\x10"  # at EOF what was held goes on
