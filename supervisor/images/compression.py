"""Streaming decompressors for layer blobs, by the name a manifest's media type gives.

They have zlib's `decompressobj` shape (`decompress(chunk)`, `flush()`), which is what
`BlobDecoder` feeds (a pull's layer worker, `unpackd`), so a pull decompresses as bytes
arrive, never from a file afterwards.  zlib and sha256 release the GIL while they work,
so a worker decodes in one thread while it unpacks in another.  Standard library only
(zstandard when a layer is zstd): the layer worker imports this.
"""

from __future__ import annotations

import hashlib
from typing import Protocol

# ISA-L's inflate (igzip, PyPI `isal`, already the push's deflate): half zlib's CPU for
# a layer, with zlib's API (eof, unused_data, flush).
from isal import isal_zlib as _inflate

from supervisor.errors import DigestMismatch, InvalidArgument


class Decompressor(Protocol):
    """zlib's decompressobj shape: what `stage_stream` feeds compressed bytes to."""

    def decompress(self, data: bytes, /) -> bytes: ...
    def flush(self) -> bytes: ...


class Gzip:
    """gzip, possibly multi-member (pigz and some registries write several members;
    zlib stops at the end of each)."""

    def __init__(self) -> None:
        self._d = _inflate.decompressobj(wbits=31)
        self._fed = False  # the current member has had bytes (so must reach its end)

    def decompress(self, data: bytes, /) -> bytes:
        out = []
        while data:
            self._fed = True
            out.append(self._d.decompress(data))
            if not self._d.eof:
                break
            data = self._d.unused_data  # another member may follow
            self._d = _inflate.decompressobj(wbits=31)
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


class BlobDecoder:
    """A blob's bytes in, its decompressed bytes out; its length and digest held to
    its descriptor's.  A decompression error is kept until `finish`, so a tampered blob
    is reported as a digest mismatch (the truer error) rather than as bad gzip."""

    def __init__(self, *, digest: str, size: int, decompressor: Decompressor | None) -> None:
        self.digest = digest
        self.size = size
        self.decompressor = decompressor
        self.hash = hashlib.sha256()
        self.got = 0
        self.broken: InvalidArgument | None = None

    def feed(self, chunk: bytes) -> bytes:
        self.got += len(chunk)
        if self.got > self.size:
            raise DigestMismatch(
                f"blob {self.digest}: more than the manifest's {self.size} bytes"
            )
        self.hash.update(chunk)
        if self.decompressor is None:
            return chunk
        if self.broken is not None:
            return b""
        try:
            return self.decompressor.decompress(chunk)
        except Exception as e:  # noqa: BLE001 - zlib.error, zstd errors: the layer is bad
            self.broken = InvalidArgument(f"invalid compressed layer {self.digest}: {e}")
            return b""

    def finish(self) -> bytes:
        """At the blob's end: check it whole; the decompressor's last bytes."""
        if self.got > self.size:
            raise DigestMismatch(
                f"blob {self.digest}: more than the manifest's {self.size} bytes"
            )
        if self.got != self.size:
            raise DigestMismatch(
                f"blob {self.digest}: short read, {self.got} of {self.size} bytes"
            )
        if "sha256:" + self.hash.hexdigest() != self.digest:
            raise DigestMismatch(f"filesystem layer verification failed for digest {self.digest}")
        if self.broken is not None:
            raise self.broken
        if self.decompressor is None:
            return b""
        try:
            return self.decompressor.flush()
        except Exception as e:  # noqa: BLE001
            raise InvalidArgument(f"invalid compressed layer {self.digest}: {e}") from None
