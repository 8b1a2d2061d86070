"""A layer's gzip, compressed in parallel blocks (as pigz): one gzip member whose
deflate stream is cut every `BLOCK` input bytes, each block deflated on its own in a
worker thread (zlib releases the GIL) with the 32 KiB before it as its dictionary, and
ended with a sync flush so the blocks join into one valid stream.  The result is a
plain single-member gzip any reader takes (Go's compress/gzip, containers/image,
dockerd, Python's), deterministic for a given input (no name, mtime 0, fixed block
size and level), so the same layer pushed twice gets the same digest.

The deflate is ISA-L's (`isal`, Intel's igzip) at its default level when installed:
about 10x faster than zlib's level 6 for some 10% more bytes (the same trade
containers/image makes with pgzip, dockerd keeps compress/gzip's level in one
goroutine); a push is CPU-bound on compression long before it is on the network.
Without it, zlib at gzip's default level 6.  Either is deterministic; the two differ
from each other, so the same layer pushed by both gets two digests (as with Docker
against Podman).  The CRC and the output's sha256 are computed on the way (no second
pass over the bytes).  Pure functions for the block work, trio for the pipeline.
"""

from __future__ import annotations

import collections
import hashlib
import os
import struct
import types
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import trio

_deflate: types.ModuleType
try:
    from isal import isal_zlib

    _deflate, LEVEL = isal_zlib, isal_zlib.ISAL_DEFAULT_COMPRESSION
    _crc32 = isal_zlib.crc32  # the same CRC, about 4x zlib's
except ImportError:  # pragma: no cover - isal is a dependency; zlib if it is missing
    _deflate, LEVEL = zlib, 6  # gzip's default, as dockerd's compress/gzip
    _crc32 = zlib.crc32

BLOCK = 1 << 20
_READ = 1 << 20
_WINDOW = 32 << 10  # deflate's window: what a block may refer back to
# magic, deflate, no flags, mtime 0, no extra flags, OS unix (as zlib's wbits=31 writes)
HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03"


def workers() -> int:
    """Threads compressing at once (shared by every layer being pushed)."""
    return max(1, min(os.cpu_count() or 1, 8))


def deflate_block(data: bytes, dictionary: bytes, last: bool, level: int = LEVEL) -> bytes:
    """Raw deflate of one block, primed with the input before it; ends on a byte
    boundary (sync flush) unless `last`, which closes the stream.  Worker thread."""
    if dictionary:
        c = _deflate.compressobj(level, zlib.DEFLATED, -15, zdict=dictionary)
    else:
        c = _deflate.compressobj(level, zlib.DEFLATED, -15)
    out: bytes = c.compress(data) + c.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH)
    return out


def trailer(crc: int, size: int) -> bytes:
    return struct.pack("<II", crc & 0xFFFFFFFF, size & 0xFFFFFFFF)


@dataclass
class _Slot:
    done: trio.Event = field(default_factory=trio.Event)
    data: bytes = b""
    read: int = 0  # uncompressed bytes up to the end of this block


@dataclass
class _Reader:
    """Reads the source block by block, keeping the CRC and size of what it read."""
    f: BinaryIO
    crc: int = 0
    size: int = 0
    tail: bytes = b""

    def next(self) -> tuple[bytes, bytes, bool]:
        """(block, its dictionary, whether it is the last).  Worker thread."""
        data = self.f.read(BLOCK)
        dictionary = self.tail
        self.crc = _crc32(data, self.crc)
        self.size += len(data)
        self.tail = data[-_WINDOW:] if len(data) >= _WINDOW else (self.tail + data)[-_WINDOW:]
        # a short read is the end (a regular file); an empty one after a full block too
        return data, dictionary, len(data) < BLOCK


async def gzip_stream(src: Path, sink: Callable[[bytes], Awaitable[None]], *,
                      limiter: trio.CapacityLimiter,
                      progress: Callable[[int], None] | None = None,
                      store: Callable[[bytes], None] | None = None) -> tuple[str, int]:
    """Compress `src`, giving `sink` the gzip stream's pieces in order as they are
    ready; (sha256 digest, size) of the whole stream.  Blocks are deflated up to
    `limiter`'s tokens at once; at most twice that many are held in memory.
    `progress` hears the uncompressed bytes done after each block (as dockerd counts
    a push's progress: the layer's own bytes).  `store`, blocking, is given each
    piece in the worker thread that hashes it, before `sink` (one thread hop for
    both: a spool's file write)."""
    h = hashlib.sha256()
    total = 0

    def hash_and_store(data: bytes) -> None:
        h.update(data)
        if store is not None:
            store(data)

    async def out(data: bytes) -> None:
        nonlocal total
        if data:
            await trio.to_thread.run_sync(hash_and_store, data)
            total += len(data)
            await sink(data)

    f = await trio.to_thread.run_sync(open, src, "rb")
    try:
        reader = _Reader(f)
        send, recv = trio.open_memory_channel[_Slot](max(2, int(limiter.total_tokens) * 2))

        async def deflate(slot: _Slot, data: bytes, dictionary: bytes, last: bool) -> None:
            slot.data = await trio.to_thread.run_sync(deflate_block, data, dictionary,
                                                      last, limiter=limiter)
            slot.done.set()

        async def produce(nursery: trio.Nursery) -> None:
            async with send:
                last = False
                while not last:
                    data, dictionary, last = await trio.to_thread.run_sync(reader.next)
                    slot = _Slot(read=reader.size)
                    await send.send(slot)  # waits while the window is full
                    nursery.start_soon(deflate, slot, data, dictionary, last)

        await out(HEADER)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(produce, nursery)
            async with recv:
                async for slot in recv:
                    await slot.done.wait()
                    await out(slot.data)
                    if progress is not None:
                        progress(slot.read)
        await out(trailer(reader.crc, reader.size))
    finally:
        await trio.to_thread.run_sync(f.close)
    return "sha256:" + h.hexdigest(), total


def gzip_small(src: Path, limit: int) -> tuple[str, bytes, int] | None:
    """The same gzip `gzip_stream` makes (byte for byte: the same blocks, each primed
    with the input before it), in this thread and in memory, for a layer of at most
    `limit` bytes: (sha256 digest, blob, the layer's size); None for a larger one.  A
    small layer then costs one worker hop, not one per piece.  Blocking: a worker
    thread."""
    with open(src, "rb") as f:
        if os.fstat(f.fileno()).st_size > limit:
            return None
        reader = _Reader(f)
        out = [HEADER]
        last = False
        while not last:
            data, dictionary, last = reader.next()
            out.append(deflate_block(data, dictionary, last))
        out.append(trailer(reader.crc, reader.size))
    blob = b"".join(out)
    return "sha256:" + hashlib.sha256(blob).hexdigest(), blob, reader.size


class Spool:
    """A blob being written (a layer being compressed) that an upload reads while it
    grows: bytes go to a file (`store`, in the compressing worker thread; `grew` then
    says so on the trio thread), so a retried part reads them again; the last `keep`
    bytes are also held in memory, so the upload that follows the compression
    closely sends them without reading the file back.  `ready` waits for the bytes a
    part needs.  The digest is known once `finish` is called."""

    def __init__(self, fd: int, keep: int = 0) -> None:
        self.fd = fd
        self.size = 0
        self.complete = False
        self.keep = keep
        self._stored = 0  # bytes in the file (worker thread's count)
        self._recent: collections.deque[tuple[int, bytes]] = collections.deque()
        self._held = 0
        self._digest = ""
        self._grew = trio.Event()

    @property
    def digest(self) -> str:
        assert self.complete, "a spool's digest before it is complete"
        return self._digest

    def store(self, data: bytes) -> None:
        """Append to the file.  Blocking: the compressing worker thread."""
        os.pwrite(self.fd, data, self._stored)
        self._stored += len(data)

    async def grew(self, data: bytes) -> None:
        """`data`, already stored, is the spool's next piece (trio thread)."""
        if self.keep:
            self._recent.append((self.size, data))
            self._held += len(data)
            while self._held - len(self._recent[0][1]) >= self.keep:
                self._held -= len(self._recent.popleft()[1])
        self.size += len(data)
        self._grew.set()
        self._grew = trio.Event()

    async def write(self, data: bytes) -> None:
        await trio.to_thread.run_sync(self.store, data)
        await self.grew(data)

    def finish(self, digest: str) -> None:
        self._digest = digest
        self.complete = True
        self._grew.set()

    async def ready(self, start: int, n: int) -> int:
        while not self.complete and self.size < start + n:
            await self._grew.wait()
        return min(start + n, self.size)

    def _from_memory(self, start: int, end: int) -> list[bytes] | None:
        if not self._recent or self._recent[0][0] > start or end > self.size:
            return None
        out = []
        for off, data in list(self._recent):
            lo, hi = max(start, off), min(end, off + len(data))
            if lo < hi:
                out.append(data[lo - off : hi - off])
        return out

    async def part(self, start: int, end: int) -> AsyncIterator[bytes]:
        held = self._from_memory(start, end)
        if held is not None:
            for piece in held:
                yield piece
            return
        while start < end:
            data = await trio.to_thread.run_sync(os.pread, self.fd, min(_READ, end - start),
                                                 start)
            if not data:
                raise OSError(f"spool truncated at {start}")
            start += len(data)
            yield data
