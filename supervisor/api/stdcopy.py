"""Docker's multiplexed stream framing ("stdcopy"), pure.

Each frame: 1 byte stream id (0 stdin, 1 stdout, 2 stderr, 3 systemerr),
3 zero bytes, big-endian uint32 payload length, payload.  Used on attach,
exec start and logs of containers without a TTY.
"""

from __future__ import annotations

import struct
from typing import Final

STDIN: Final = 0
STDOUT: Final = 1
STDERR: Final = 2
SYSTEMERR: Final = 3

HEADER_SIZE: Final = 8
MAX_FRAME: Final = 0xFFFFFFFF
_HEADER = struct.Struct(">BxxxI")


class StdcopyError(ValueError):
    pass


def frame(stream_id: int, data: bytes | bytearray | memoryview) -> bytes:
    """One frame (or several, if `data` exceeds 4 GiB); b"" for empty data."""
    data = bytes(data)
    if not 0 <= stream_id <= 3:
        raise ValueError(f"invalid stream id {stream_id}")
    if not data:
        return b""
    if len(data) <= MAX_FRAME:
        return _HEADER.pack(stream_id, len(data)) + data
    return b"".join(  # pragma: no cover - 4 GiB
        _HEADER.pack(stream_id, len(part)) + part
        for part in (data[i : i + MAX_FRAME] for i in range(0, len(data), MAX_FRAME))
    )


class Demuxer:
    """Incremental parser: feed bytes, get `(stream_id, payload)` pairs of complete frames."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        self._buf += data
        out: list[tuple[int, bytes]] = []
        while len(self._buf) >= HEADER_SIZE:
            stream_id, length = _HEADER.unpack_from(self._buf)
            if stream_id > 3:
                raise StdcopyError(f"invalid stream id {stream_id} in multiplexed stream")
            if len(self._buf) < HEADER_SIZE + length:
                break
            out.append((stream_id, bytes(self._buf[HEADER_SIZE : HEADER_SIZE + length])))
            del self._buf[: HEADER_SIZE + length]
        return out

    @property
    def pending(self) -> int:
        """Bytes held back waiting for the rest of a frame (non-zero at EOF = truncated)."""
        return len(self._buf)


def demux_all(data: bytes) -> list[tuple[int, bytes]]:
    """Parse a complete multiplexed byte string; raises if it ends mid-frame."""
    d = Demuxer()
    out = d.feed(data)
    if d.pending:
        raise StdcopyError("truncated multiplexed stream")
    return out
