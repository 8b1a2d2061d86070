"""The WebSocket (RFC 6455) of `GET /containers/{id}/attach/ws`: a sans-I/O codec.

Docker serves attach over a WebSocket for browsers: the handshake's accept key, then
the container's raw output as binary frames (API 1.42 and later; never multiplexed)
and the client's frames, text or binary, as its stdin.  Pure: `accept_key`, `frame`
and `Decoder` (bytes in, messages out, h11's shape); `trio` only in the adapter
`WebSocketStream`, which makes an upgraded connection look like the raw stream the
attach session copies to and from.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import struct
from typing import Final

import trio

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


class WebSocketStream(trio.abc.HalfCloseableStream):
    """An upgraded connection as a byte stream: data frames' payloads in, binary
    frames out; pings answered; a close frame is end of input (answered once)."""

    def __init__(self, inner: trio.abc.HalfCloseableStream) -> None:
        self.inner = inner
        self._decoder = Decoder()
        self._pending: list[bytes] = []
        self._eof = False
        self._closed_sent = False
        self._sending = trio.Lock()
        self.peer_closed = trio.Event()  # a close frame (or EOF) came: the session ends

    async def _send_raw(self, data: bytes) -> None:
        async with self._sending:
            await self.inner.send_all(data)

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        while not self._pending:
            if self._eof:
                self.peer_closed.set()
                return b""
            data = await self.inner.receive_some(65536)
            if not data:
                self._eof = True
                continue
            try:
                messages = self._decoder.feed(data)
            except WebSocketError as exc:
                self._eof = True
                await self._close(exc.code)
                continue
            for opcode, payload in messages:
                if opcode == PING:
                    await self._send_raw(frame(PONG, payload))
                elif opcode == CLOSE:
                    self._eof = True
                    await self._close(1000)
                    break
                elif opcode in (TEXT, BINARY, CONTINUATION) and payload:
                    self._pending.append(payload)
        data = self._pending.pop(0)
        if max_bytes is not None and len(data) > max_bytes:
            data, rest = data[:max_bytes], data[max_bytes:]
            self._pending.insert(0, rest)
        return data

    async def _close(self, code: int) -> None:
        if not self._closed_sent:
            self._closed_sent = True
            await self._send_raw(close_frame(code))

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        if data:
            await self._send_raw(frame(BINARY, bytes(data)))

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def send_eof(self) -> None:
        with (
            trio.CancelScope(shield=True),
            contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError),
        ):
            await self._close(1000)

    async def aclose(self) -> None:
        await self.send_eof()
        await self.inner.aclose()
