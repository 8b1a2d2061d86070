"""The WebSocket (RFC 6455) of `GET /containers/{id}/attach/ws`, sans-I/O.

Docker serves attach over a WebSocket for browsers: the handshake's accept key, then
the container's raw output as binary frames (API 1.42 and later; never multiplexed)
and the client's frames, text or binary, as its stdin.  Pure, beside the HTTP core
whose upgrade (`ServerConnection.switch_protocols`) it rides on: `handshake` (the
101's headers, or why not), `frame` and `Decoder` (bytes in, messages out, h11's
shape).  The trio adapter is `supervisor.api.websocket.WebSocketStream`.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from typing import Final

from . import Headers

GUID: Final = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
MAX_PAYLOAD: Final = 1 << 20  # a client frame larger than this is refused (1009)


class WebSocketError(Exception):
    """The peer broke the protocol; `code` is the close code to answer with."""

    def __init__(self, message: str, code: int = 1002) -> None:
        super().__init__(message)
        self.code = code


def accept_key(key: str) -> str:
    """`Sec-WebSocket-Accept` for a handshake's `Sec-WebSocket-Key`."""
    digest = hashlib.sha1((key.strip() + GUID).encode()).digest()
    return base64.b64encode(digest).decode()


def valid_key(key: str) -> bool:
    """A `Sec-WebSocket-Key` is 16 random bytes, base64-encoded."""
    try:
        return len(base64.b64decode(key.strip(), validate=True)) == 16
    except ValueError:
        return False


def frame(opcode: int, payload: bytes = b"") -> bytes:
    """One final, unmasked frame (what a server sends)."""
    n = len(payload)
    head = bytes([0x80 | opcode])
    if n < 126:
        head += bytes([n])
    elif n < 1 << 16:
        head += bytes([126]) + struct.pack("!H", n)
    else:
        head += bytes([127]) + struct.pack("!Q", n)
    return head + payload


def close_frame(code: int = 1000, reason: str = "") -> bytes:
    return frame(CLOSE, struct.pack("!H", code) + reason.encode()[:123])


class Decoder:
    """Client frames in (`feed`), `(opcode, payload)` messages out.

    Clients must mask (RFC 6455 5.1); fragments of a data message come out as they
    arrive (stdin is a byte stream, so nothing waits for the message's end), control
    frames must be final and short.
    """

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes | bytearray) -> list[tuple[int, bytes]]:
        self._buf += data
        out: list[tuple[int, bytes]] = []
        while True:
            parsed = self._one()
            if parsed is None:
                return out
            out.append(parsed)

    def _one(self) -> tuple[int, bytes] | None:
        buf = self._buf
        if len(buf) < 2:
            return None
        fin, opcode, masked, n = buf[0] & 0x80, buf[0] & 0x0F, buf[1] & 0x80, buf[1] & 0x7F
        if buf[0] & 0x70:
            raise WebSocketError("reserved bits set without an extension")
        if not masked:
            raise WebSocketError("client frames must be masked")
        if opcode >= 0x8 and (not fin or n > 125):
            raise WebSocketError("a control frame must be final and at most 125 bytes")
        if opcode not in (CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG):
            raise WebSocketError(f"unknown opcode {opcode:#x}")
        at = 2
        if n == 126:
            if len(buf) < 4:
                return None
            n, at = struct.unpack("!H", buf[2:4])[0], 4
        elif n == 127:
            if len(buf) < 10:
                return None
            n, at = struct.unpack("!Q", buf[2:10])[0], 10
        if n > MAX_PAYLOAD:
            raise WebSocketError(f"frame of {n} bytes is too big", 1009)
        if len(buf) < at + 4 + n:
            return None
        mask = bytes(buf[at : at + 4])
        body = _unmask(bytes(buf[at + 4 : at + 4 + n]), mask)
        del buf[: at + 4 + n]
        return opcode, body


def _unmask(payload: bytes, mask: bytes) -> bytes:
    """XOR with the repeated 4-byte mask, as one big integer (fast for 1 MB frames)."""
    n = len(payload)
    if not n:
        return b""
    key = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")


class HandshakeError(Exception):
    """The request cannot become a websocket (answered 400 with this message)."""


def handshake(headers: Headers) -> list[tuple[str, str]]:
    """The `101 Switching Protocols` headers for a client's opening handshake
    (RFC 6455 §4.2.1), or `HandshakeError` naming what is wrong with it."""
    if "websocket" not in (headers.get("upgrade") or "").lower():
        raise HandshakeError("the request must upgrade to websocket")
    key = headers.get("sec-websocket-key") or ""
    if not valid_key(key):
        raise HandshakeError(f"bad Sec-WebSocket-Key {key!r}")
    if (headers.get("sec-websocket-version") or "").strip() != "13":
        raise HandshakeError("Sec-WebSocket-Version must be 13")
    return [
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Accept", accept_key(key)),
    ]
