"""The layer worker: one process per layer a pull downloads, unpacking it as it arrives.

A layer's bytes go once through: the blob's sha256 and length, decompression, the diff
ID's sha256, the layer's tar written to scratch (kept as its content blob) and the
unpack (`tarsafe`).  The unpack is Python code (`tarstream`'s header parsing and ~7
syscalls an entry) holding the GIL; in the daemon it shared one interpreter with the
trio thread and the other layers' workers, so a big pull stretched `/_ping` and
serialised the layers.  In its own process it has its own GIL and CPU share: the
daemon's trio thread only moves the downloaded bytes into this process's stdin pipe
(`unpacker.py`), and inside, a reader thread decodes (zlib, zstd and sha256 release
the GIL) while the main thread unpacks.

Wire: the job (JSON: digest, size, compression, diffid, workdir) comes in the fork
server's message (`serve`) with two pipes: the first carries the blob's bytes exactly
as its descriptor names them (a resumed download's bytes follow on, the daemon skips
any repeat); on the second, once the first has ended, one JSON line: the
staged layer (`tar`, `unpacked`, `size`) or the failure (`error`: "digest",
"invalid" or "os", and its `message`).  A failure removes what this process made in
`workdir`; a process killed mid-way leaves scratch the pull removes (the daemon waits
for this process to end first) or, after a crash, the store's sweep.

Only the standard library, `errors`, `rmtree`, `durable`, `compression` and `tarsafe`
are imported (zstandard for zstd layers).  The daemon starts it once, as a fork server
(`serve`), and each layer's worker is a fork of it: no interpreter start per layer.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import queue
import signal
import socket
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from supervisor import durable
from supervisor.errors import DigestMismatch, InvalidArgument
from supervisor.images.compression import BlobDecoder, decompressor
from supervisor.images.tarsafe import unpack_chunks
from supervisor.rmtree import remove_tree

_READ = 1 << 18  # bytes read from the pipe at once
_QUEUE = 16  # decoded chunks between the reader and the unpacker

Source = Callable[[], bytes]


def hex_of(digest: str) -> str:
    return digest.partition(":")[2]


_FS_IOC_GETFLAGS, _FS_IOC_SETFLAGS = 0x80086601, 0x40086602
_FS_TOPDIR_FL = 0x00020000  # chattr +T: subdirectories are spread as top-level ones


def spread_children(path: Path) -> None:
    """Mark `path` a top of directory hierarchies (`chattr +T`), so ext4 places each
    directory made in it as its allocator places top-level ones: in a block group
    chosen afresh (Orlov), not next to the parent, and each layer's inodes away
    from the last removed layer's.  Without a journal (this VM's disk), ext4 skips
    inodes freed in the last minute while it allocates, reading each one's inode
    block (`recently_deleted`): a layer unpacked where the last one was removed
    (every cold pull after an rmi) scanned thousands of them per file, most of
    the unpack's kernel time (Debian minbase: 5-9 s of wall, 4-12 s of system CPU;
    1.6-2.3 s and 0.7-0.9 s marked).  Other filesystems, or no permission: nothing
    changes."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            buf = bytearray(8)
            fcntl.ioctl(fd, _FS_IOC_GETFLAGS, buf)
            flags = int.from_bytes(buf[:4], "little")
            if not flags & _FS_TOPDIR_FL:
                fcntl.ioctl(fd, _FS_IOC_SETFLAGS,
                            (flags | _FS_TOPDIR_FL).to_bytes(4, "little") + bytes(4))
        finally:
            os.close(fd)


def new_dir(workdir: Path) -> Path:
    """A fresh directory in `workdir` for a layer's tree (`spread_children`)."""
    spread_children(workdir)
    d = Path(tempfile.mkdtemp(dir=workdir, prefix="layer-"))
    os.chmod(d, 0o755)
    return d


def stage_stream(source: Source, *, decoder: BlobDecoder | None, diffid: str,
                 workdir: Path) -> tuple[Path, Path, int]:
    """A layer in one pass: `source` gives its bytes (b"" at the end), checked and
    decompressed here by `decoder`, or already decoded when there is none; the tar is
    written to `workdir`, unpacked beside it and flushed.  Returns the tar, the
    unpacked tree and the layer's size.  The diff ID is checked before anything is
    kept; a failure leaves nothing in `workdir`."""
    tar = workdir / f"{hex_of(diffid)}.tar"
    stream = LayerStream(source, open(tar, "xb"), decoder)  # noqa: SIM115
    unpack_to: Path | None = None
    try:
        unpack_to = new_dir(workdir)
        try:
            layer_size = unpack_chunks(stream.chunk, unpack_to)
        except InvalidArgument:
            stream.check_blob()  # tampered bytes are named as such, not as a bad tar
            raise
        stream.finish(diffid)
        durable.syncfs(unpack_to)
    except BaseException:
        stream.out.close()
        tar.unlink(missing_ok=True)
        if unpack_to is not None:
            remove_tree(unpack_to)
        raise
    return tar, unpack_to, layer_size


class LayerStream:
    """The chunks `tarstream` reads in `stage_stream`: source bytes in (decoded by
    `decoder` if there is one), the tar out, teed to `out` and hashed on the way."""

    def __init__(self, source: Source, out: BinaryIO, decoder: BlobDecoder | None) -> None:
        self.source = source
        self.out = out
        self.decoder = decoder
        self.plain = hashlib.sha256()
        self.buf = b""  # decompressed bytes not yet read, from `pos` on
        self.pos = 0
        self.eof = False

    def _more(self) -> bool:
        """Pull and decode the next chunk into `buf`; False at the end."""
        while not self.eof:
            chunk = self.source()
            if not chunk:
                self.eof = True
                tail = self.decoder.finish() if self.decoder is not None else b""
                if tail:
                    self._emit(tail)
                    return True
                return False
            data = chunk if self.decoder is None else self.decoder.feed(chunk)
            if data:
                self._emit(data)
                return True
        return False

    def _emit(self, data: bytes) -> None:
        self.plain.update(data)
        self.out.write(data)
        self.buf, self.pos = data, 0

    def chunk(self) -> bytes:
        """The next decoded chunk (b"" at the end), as `tarstream` reads them."""
        if self.pos < len(self.buf):
            out = self.buf[self.pos:] if self.pos else self.buf
            self.buf, self.pos = b"", 0
            return out
        if not self._more():
            return b""
        out, self.buf, self.pos = self.buf, b"", 0
        return out

    def check_blob(self) -> None:
        """After a failure downstream: read the rest of the blob (not decompressed)
        and raise its own error if it has one (a digest mismatch is the truer error)."""
        d = self.decoder
        if d is None or self.eof:
            return
        d.broken = d.broken or InvalidArgument("no more decompressing")
        try:
            while chunk := self.source():
                d.feed(chunk)
            self.eof = True
            d.finish()
        except DigestMismatch:
            raise
        except InvalidArgument:
            pass  # the blob is as its descriptor says: the downstream error stands

    def finish(self, diffid: str) -> None:
        """After the tar's end: drain the rest (padding), then check the diff ID."""
        while self._more():
            pass
        self.buf, self.pos = b"", 0
        self.out.close()
        got = "sha256:" + self.plain.hexdigest()
        if got != diffid:
            raise DigestMismatch(
                f"layer diff ID mismatch: the layer unpacks to {got}, its image config says "
                f"{diffid}"
            )


class _Decoded:
    """The reader thread: the blob's bytes from `fd`, checked and decoded by `decoder`,
    queued for the unpacker (`source`).  Its failure is queued too, in order, so the
    unpacker raises the blob's own error where its bytes end."""

    def __init__(self, fd: int, decoder: BlobDecoder) -> None:
        self.fd = fd
        self.decoder = decoder
        self.q: queue.Queue[bytes | BaseException | None] = queue.Queue(_QUEUE)
        self.ended = False
        self.thread = threading.Thread(target=self._run, name="layer-decode", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            while chunk := os.read(self.fd, _READ):
                data = self.decoder.feed(chunk)
                if data:
                    self.q.put(data)
            tail = self.decoder.finish()
            if tail:
                self.q.put(tail)
            self.q.put(None)
        except BaseException as e:  # noqa: BLE001 - handed to the unpacker, raised there
            self.q.put(e)

    def source(self) -> bytes:
        if self.ended:
            return b""
        item = self.q.get()
        if item is None or isinstance(item, BaseException):
            self.ended = True
            if item is not None:
                raise item
            return b""
        return item

    def verdict(self) -> None:
        """After a bad tar: the rest of the blob, not decompressed, and its own error
        if it has one (a tampered blob is named as such, not as a bad tar)."""
        self.decoder.broken = self.decoder.broken or InvalidArgument("no more decompressing")
        while not self.ended:
            try:
                self.source()
            except DigestMismatch:
                raise
            except InvalidArgument:
                return  # the blob is as its descriptor says: the tar's error stands


def run(job: dict[str, object], fd: int) -> dict[str, object]:
    """One job (see the module doc) reading the blob from `fd`; the answer's object."""
    decoder = BlobDecoder(digest=str(job["digest"]), size=int(job["size"]),  # type: ignore[call-overload]
                          decompressor=decompressor(str(job["compression"])))
    reader = _Decoded(fd, decoder)
    try:
        try:
            tar, unpacked, size = stage_stream(reader.source, decoder=None,
                                               diffid=str(job["diffid"]),
                                               workdir=Path(str(job["workdir"])))
        except DigestMismatch:
            raise
        except InvalidArgument:
            reader.verdict()
            raise
    except DigestMismatch as e:
        return {"error": "digest", "message": e.message}
    except InvalidArgument as e:
        return {"error": "invalid", "message": e.message}
    except OSError as e:  # errno and path too: a full disk is worded as dockerd words it
        name = e.filename if isinstance(e.filename, str) else None
        return {"error": "os", "message": str(e), "errno": e.errno, "filename": name}
    return {"tar": str(tar), "unpacked": str(unpacked), "size": size}


def serve(fd: int) -> None:
    """The fork server: one process per daemon, its imports done once (an interpreter
    and these imports are ~0.1 s of CPU, as much as a 24 MB layer's unpack), forking
    a worker per layer.  On `fd` (SOCK_SEQPACKET) each message is a job with two
    descriptors (the blob's pipe, the answer's pipe); the reply is the worker's pid
    with a pidfd, so the daemon can kill it and wait for its end though it is not its
    child.  The daemon closing its end ends this process (running workers end as
    their pipes do)."""
    def reap(*_: object) -> None:
        try:
            while os.waitpid(-1, os.WNOHANG)[0] > 0:
                pass
        except ChildProcessError:
            pass

    with contextlib.suppress(ImportError):  # what a zstd layer's worker imports: once, here
        import zstandard  # noqa: F401
    sock = socket.socket(fileno=fd)
    signal.signal(signal.SIGCHLD, reap)
    while True:
        msg, fds, _flags, _addr = socket.recv_fds(sock, 1 << 16, 2)
        if not msg:
            return
        # SIGCHLD held until the pidfd is open: the worker cannot be reaped before
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
        try:
            pid = os.fork()
            if pid == 0:
                _worker(sock, msg, fds)
            for d in fds:
                os.close(d)
            pidfd = os.pidfd_open(pid)
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
        socket.send_fds(sock, [str(pid).encode()], [pidfd])
        os.close(pidfd)


def _worker(sock: socket.socket, msg: bytes, fds: list[int]) -> None:
    """A forked worker: the job on its two pipes, then exit (never back to `serve`)."""
    code = 1
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
        sock.close()
        blob, out = fds
        answer = run(json.loads(msg), blob)
        os.write(out, json.dumps(answer).encode() + b"\n")
        code = 0
    finally:
        os._exit(code)
