"""The daemon's side of a layer worker (`unpackd.py`): a pull's layer unpacked in its
own process while it downloads.

`open_unpacker` starts the worker for one layer (a small one, up to `SMALL` bytes, is
kept in memory and unpacked by a thread of the daemon instead: even a fork costs more
than its unpack).  A worker is a fork of the daemon's fork server (`unpackd.serve`,
started at the first large layer and kept for the daemon's run): an interpreter's
start and imports per layer were ~0.1 s of CPU, as much as a 24 MB layer's unpack,
and slowed a small pull below the thread path.  The pull's task `feed`s it the blob's
bytes as they arrive (a write into its stdin pipe: the trio thread moves the bytes and
does nothing else with them) and `finish` ends the stream and reads the verdict: the
staged layer, or the worker's error raised here as the same class (a tampered blob a
`DigestMismatch`, a bad tar an `InvalidArgument`).  Leaving the context any other way
(a cancelled pull, a failed download) kills the worker and waits for it, so nothing
writes into the pull's scratch once it is being removed.
"""

from __future__ import annotations

import array
import contextlib
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

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
_SPAWN_TIMEOUT = 60.0  # seconds for the fork server to fork a worker (a loaded host)
_BOOT = ("import sys; sys.path.insert(0, sys.argv.pop(1)); "
         "from supervisor.images.unpackd import serve; serve(int(sys.argv[1]))")


class Worker:
    """A forked layer worker: its two pipes and its pidfd (it is the fork server's
    child, not the daemon's: killed and waited for through the pidfd)."""

    def __init__(self, pid: int, pidfd: int, stdin: trio.lowlevel.FdStream,
                 stdout: trio.lowlevel.FdStream) -> None:
        self.pid = pid
        self.pidfd = pidfd
        self.stdin = stdin
        self.stdout = stdout
        self.ended = False

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)

    async def wait(self) -> None:
        """Until the worker has exited (its pidfd turns readable)."""
        if not self.ended:
            await trio.lowlevel.wait_readable(self.pidfd)
            self.ended = True

    async def aclose(self) -> None:
        for stream in (self.stdin, self.stdout):
            await stream.aclose()
        trio.lowlevel.notify_closing(self.pidfd)
        os.close(self.pidfd)


class _ForkServer:
    """The daemon's one fork server (`unpackd.serve`), for the trio run it started
    in: a system task owns the process and ends it (its socket closed) with the run."""

    def __init__(self) -> None:
        self.lock = trio.Lock()  # one request and its reply at a time
        self.sock: trio.socket.SocketType | None = None

    async def spawn(self, job: bytes) -> Worker:
        async with self.lock:
            if self.sock is None:
                await self._start()
            assert self.sock is not None
            blob_r, blob_w = os.pipe2(os.O_CLOEXEC)
            out_r, out_w = os.pipe2(os.O_CLOEXEC)
            try:
                # shielded: a request cancelled between its send and its reply would
                # leave that reply for the next request (a fork is quick; a server
                # that does not answer in time is dropped and the next layer starts one)
                with trio.CancelScope(shield=True), trio.fail_after(_SPAWN_TIMEOUT):
                    await self.sock.sendmsg([job], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                                    array.array("i", [blob_r, out_w]))])
                    msg, ancdata, _flags, _addr = await self.sock.recvmsg(
                        32, socket.CMSG_SPACE(array.array("i").itemsize))
            except trio.TooSlowError:
                for fd in (blob_w, out_r):
                    os.close(fd)
                self.sock.close()
                self.sock = None
                raise CorralError("the layer fork server did not answer") from None
            except BaseException:
                for fd in (blob_w, out_r):
                    os.close(fd)
                raise
            finally:
                for fd in (blob_r, out_w):
                    os.close(fd)
            fds = array.array("i")
            for level, kind, data in ancdata:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    fds.frombytes(data[:len(data) - len(data) % fds.itemsize])
            if not msg or len(fds) != 1:
                for fd in (blob_w, out_r, *fds):
                    os.close(fd)
                self.sock = None  # it died: the next layer starts another
                raise CorralError("the layer fork server ended")
            return Worker(int(msg), fds[0], trio.lowlevel.FdStream(blob_w),
                          trio.lowlevel.FdStream(out_r))

    async def _start(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            proc = await trio.lowlevel.open_process(
                [sys.executable, "-I", "-c", _BOOT, _ROOT, str(theirs.fileno())],
                stdin=subprocess.DEVNULL, pass_fds=(theirs.fileno(),), close_fds=True)
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self.sock = trio.socket.from_stdlib_socket(ours)
        trio.lowlevel.spawn_system_task(self._own, proc, self.sock)

    async def _own(self, proc: trio.Process, sock: trio.socket.SocketType) -> None:
        try:
            await proc.wait()
        finally:  # the run ends: EOF ends it; a stuck one is killed
            with trio.CancelScope(shield=True):
                if self.sock is sock:
                    self.sock = None
                sock.close()
                with trio.move_on_after(5):
                    await proc.wait()
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()


_SERVER: trio.lowlevel.RunVar[_ForkServer] = trio.lowlevel.RunVar("unpack_fork_server")


def _fork_server() -> _ForkServer:
    try:
        return _SERVER.get()
    except LookupError:
        server = _ForkServer()
        _SERVER.set(server)
        return server


class Unpacker:
    """One running layer worker (see the module doc)."""

    def __init__(self, proc: Worker, diffid: str) -> None:
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
        await self.proc.wait()
        try:
            answer = json.loads(raw)
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            return {"error": "os", "message": "the layer worker ended without an answer"}
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
    proc = await _fork_server().spawn(job.encode())
    try:
        with contextlib.suppress(OSError):  # a smaller pipe only slows the hand-off
            fcntl.fcntl(proc.stdin.fileno(), _F_SETPIPE_SZ, _PIPE_SIZE)
        yield Unpacker(proc, diffid)
    finally:
        with trio.CancelScope(shield=True):
            if not proc.ended:
                proc.kill()
            await proc.wait()
            await proc.aclose()
