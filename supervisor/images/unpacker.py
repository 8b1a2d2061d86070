"""The daemon's side of a layer worker (`unpackd.py`): a pull's layer unpacked in its
own process while it downloads.

`open_unpacker` starts the worker for one layer (a small one, up to `SMALL` bytes, is
kept in memory and unpacked by a thread of the daemon instead: a worker's start costs
more CPU than its unpack); the pull's task `feed`s it the blob's
bytes as they arrive (a write into its stdin pipe: the trio thread moves the bytes and
does nothing else with them) and `finish` ends the stream and reads the verdict: the
staged layer, or the worker's error raised here as the same class (a tampered blob a
`DigestMismatch`, a bad tar an `InvalidArgument`).  Leaving the context any other way
(a cancelled pull, a failed download) kills the worker and waits for it, so nothing
writes into the pull's scratch once it is being removed.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import cast

import trio

from supervisor.errors import CorralError, DigestMismatch, InvalidArgument, disk_full
from supervisor.images import unpackd
from supervisor.images.compression import BlobDecoder, decompressor
from supervisor.images.layers import StagedLayer

#: Layers up to this many (compressed) bytes are unpacked in the daemon, in a thread: a
#: worker process costs ~0.1 s of CPU to start (an interpreter and its imports), more
#: than such a layer's unpack.
SMALL = 1 << 20
_PIPE_SIZE = 1 << 20  # bytes in flight to a worker: a slow unpack slows the download
_F_SETPIPE_SZ = 1031
#: The package's root, put on the worker's sys.path (it runs isolated, `-I`).
_ROOT = str(Path(__file__).resolve().parents[2])
_BOOT = ("import sys; sys.path.insert(0, sys.argv.pop(1)); "
         "from supervisor.images.unpackd import main; main()")


class Unpacker:
    """One running layer worker (see the module doc)."""

    def __init__(self, proc: trio.Process, diffid: str) -> None:
        self.proc = proc
        self.diffid = diffid
        self.got = 0  # blob bytes fed

    async def feed(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        try:
            await self.proc.stdin.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            raise await self._failure() from None
        self.got += len(data)

    async def finish(self) -> StagedLayer:
        """The blob has ended: the worker's verdict (raised if a failure)."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        with contextlib.suppress(trio.BrokenResourceError):
            await self.proc.stdin.aclose()
        answer = await self._answer()
        if "error" in answer:
            raise _error(answer, self.diffid)
        return StagedLayer(diffid=self.diffid, tar=Path(str(answer["tar"])),
                           unpacked=Path(str(answer["unpacked"])),
                           size=int(answer["size"]))  # type: ignore[call-overload]

    async def _answer(self) -> dict[str, object]:
        assert self.proc.stdout is not None
        raw = bytearray()
        while chunk := await self.proc.stdout.receive_some(1 << 16):
            raw += chunk
        code = await self.proc.wait()
        try:
            answer = json.loads(raw)
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            return {"error": "os", "message": f"the layer worker exited with status {code}"}
        return answer

    async def _failure(self) -> CorralError:
        """The worker stopped reading before the blob's end: why."""
        answer = await self._answer()
        if "error" not in answer:
            answer = {"error": "os", "message": "the layer worker ended early"}
        return _error(answer, self.diffid)


class InThread:
    """A small layer: `Unpacker`'s interface, the bytes kept and unpacked at `finish`
    in a worker thread (`unpackd.stage_stream`, the worker's own code)."""

    def __init__(self, *, digest: str, size: int, compression: str, diffid: str,
                 workdir: Path, limiter: trio.CapacityLimiter | None) -> None:
        self.job = (digest, size, compression, diffid, workdir)
        self.limiter = limiter
        self.data = bytearray()
        self.got = 0

    async def feed(self, data: bytes) -> None:
        self.data += data
        self.got += len(data)

    async def finish(self) -> StagedLayer:
        digest, size, compression, diffid, workdir = self.job
        blob = bytes(self.data)
        self.data = bytearray()

        def stage() -> StagedLayer:
            decoder = BlobDecoder(digest=digest, size=size,
                                  decompressor=decompressor(compression))
            parts = iter([blob])
            tar, unpacked, layer_size = unpackd.stage_stream(
                lambda: next(parts, b""), decoder=decoder, diffid=diffid, workdir=workdir)
            return StagedLayer(diffid=diffid, tar=tar, unpacked=unpacked, size=layer_size)

        return await trio.to_thread.run_sync(stage, limiter=self.limiter)


#: What `open_unpacker` gives: a layer's bytes in (`feed`), the staged layer out.
LayerSink = Unpacker | InThread


def _error(answer: dict[str, object], diffid: str) -> CorralError:
    kind, message = answer.get("error"), str(answer.get("message"))
    if kind == "digest":
        return DigestMismatch(message)
    if kind == "invalid":
        return InvalidArgument(message)
    code, name = answer.get("errno"), answer.get("filename")
    if kind == "os" and isinstance(code, int) and (
        full := disk_full(OSError(code, os.strerror(code), name if isinstance(name, str) else None))
    ):
        return full
    return CorralError(f"unpacking layer {diffid}: {message}")


@contextlib.asynccontextmanager
async def open_unpacker(*, digest: str, size: int, compression: str, diffid: str,
                        workdir: Path, limiter: trio.CapacityLimiter | None = None,
                        small: int = SMALL) -> AsyncIterator[LayerSink]:
    """A layer worker unpacking into `workdir` (see the module doc); for a layer of at
    most `small` bytes, an `InThread` (its thread under `limiter`)."""
    if size <= small:
        yield InThread(digest=digest, size=size, compression=compression, diffid=diffid,
                       workdir=workdir, limiter=limiter)
        return
    job = json.dumps({"digest": digest, "size": size, "compression": compression,
                      "diffid": diffid, "workdir": str(workdir)})
    proc = await trio.lowlevel.open_process(
        [sys.executable, "-I", "-c", _BOOT, _ROOT, job],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, close_fds=True,
    )
    try:
        assert proc.stdin is not None
        with contextlib.suppress(OSError):  # a smaller pipe only slows the hand-off
            fcntl.fcntl(cast(trio.lowlevel.FdStream, proc.stdin).fileno(), _F_SETPIPE_SZ,
                        _PIPE_SIZE)
        yield Unpacker(proc, diffid)
    finally:
        with trio.CancelScope(shield=True):
            if proc.returncode is None:
                proc.kill()
            await proc.wait()
            for stream in (proc.stdin, proc.stdout):
                if stream is not None:
                    await stream.aclose()
