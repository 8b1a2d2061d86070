"""The trio adapter of the attach WebSocket: an upgraded connection as a byte stream.

The protocol (handshake, frames, the decoder) is `supervisor.httpcore.websocket`'s,
sans-I/O; this holds only the I/O, so the attach session copies to and from a
websocket as it does to and from a hijacked socket.
"""

from __future__ import annotations

import contextlib

import trio

from supervisor.httpcore.websocket import (
    BINARY,
    CLOSE,
    CONTINUATION,
    PING,
    PONG,
    TEXT,
    Decoder,
    WebSocketError,
    close_frame,
    frame,
)


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

    async def _send(self, data: bytes, *, closing: bool = False) -> None:
        """One frame out; nothing after the close frame (RFC 6455 5.5.1): output that
        races the client's close is dropped, as the client asked to detach."""
        async with self._sending:
            if self._closed_sent:
                return
            self._closed_sent = closing
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
                    await self._send(frame(PONG, payload))
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
        await self._send(close_frame(code), closing=True)

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        if data:
            await self._send(frame(BINARY, bytes(data)))

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
