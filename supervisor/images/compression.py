"""Streaming decompressors for layer blobs, by the name a manifest's media type gives.

They have zlib's `decompressobj` shape (`decompress(chunk)`, `flush()`), which is what
`LayerStore.stage_stream` feeds, so a pull decompresses as bytes arrive, never from a
file afterwards.  zlib releases the GIL while it inflates, so several layers decompress
in parallel beside the trio thread.
"""

from __future__ import annotations

import zlib

from supervisor.errors import InvalidArgument
from supervisor.images.layers import Decompressor


class Gzip:
    """gzip, possibly multi-member (pigz and some registries write several members;
    zlib stops at the end of each)."""

    def __init__(self) -> None:
        self._d = zlib.decompressobj(wbits=31)
        self._fed = False  # the current member has had bytes (so must reach its end)

    def decompress(self, data: bytes, /) -> bytes:
        out = []
        while data:
            self._fed = True
            out.append(self._d.decompress(data))
            if not self._d.eof:
                break
            data = self._d.unused_data  # another member may follow
            self._d = zlib.decompressobj(wbits=31)
            self._fed = False
        return b"".join(out)

    def flush(self) -> bytes:
        tail = self._d.flush()
        if self._fed and not self._d.eof:
            raise InvalidArgument("invalid gzip layer: unexpected end of stream")
        return tail


def decompressor(kind: str) -> Decompressor | None:
    """For `manifests.layer_compression`'s answer: None means the bytes are the tar."""
    if kind == "none":
        return None
    if kind == "gzip":
        return Gzip()
    if kind == "zstd":  # every frame: `zstd:chunked` writes several
        import zstandard

        d: Decompressor = zstandard.ZstdDecompressor().decompressobj(read_across_frames=True)
        return d
    raise InvalidArgument(f"{kind}-compressed layers are not supported yet")
