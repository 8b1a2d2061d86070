"""Live output of a running container, fanned out to attached clients.

The pump that reads a container's pipes stores lines in the log and hands the raw
chunks here; each `attach` gets its own bounded channel.  A client that cannot keep up
is dropped (its channel closed) rather than stalling the container's output.
"""

from __future__ import annotations

import trio

Chunk = tuple[str, bytes]  # (stream, data)

_BUFFER = 4096


class Fanout:
    def __init__(self) -> None:
        self._subscribers: set[trio.MemorySendChannel[Chunk]] = set()

    def subscribe(self) -> trio.MemoryReceiveChannel[Chunk]:
        send, recv = trio.open_memory_channel[Chunk](_BUFFER)
        self._subscribers.add(send)
        return recv

    def publish(self, stream: str, data: bytes) -> None:
        for send in list(self._subscribers):
            try:
                send.send_nowait((stream, data))
            except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
                self._subscribers.discard(send)
                send.close()

    def close(self) -> None:
        """End of this run's output: every subscriber sees end-of-channel."""
        for send in self._subscribers:
            send.close()
        self._subscribers.clear()
