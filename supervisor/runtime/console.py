"""Pseudo-terminals for containers and execs made with `Tty: true`.

runc makes the pty inside the container (`process.terminal: true`) and, with
`--console-socket PATH`, connects to PATH and sends the master end over SCM_RIGHTS
(runc's docs/terminals.md, "detached new terminal").  The daemon listens on a
private socket per `runc create`/`runc exec`, takes the master and keeps it in a
`Console`: the one owner of that descriptor for the life of the process.  The
container's output is read from it, attached clients' input written to it, and
`TIOCSWINSZ` on it is a resize.  `close()` is idempotent and tells trio first, so a
task parked on the descriptor wakes instead of waiting on a reused number.
"""

from __future__ import annotations

import array
import contextlib
import errno
import fcntl
import os
import shutil
import socket
import struct
import tempfile
import termios
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Final, TypeVar

import trio

from supervisor.errors import CorralError
from supervisor.runtime.fds import OwnedFd

#: How long runc may take, after it exited successfully, to have handed us the master.
HANDOVER_TIMEOUT: Final = 10.0

T = TypeVar("T")


class Console:
    """The master end of a container's (or an exec's) pty; one owner, closed once.

    The descriptor is an `OwnedFd` (runtime/fds.py): a close wakes whoever waits on
    it, and a closed console answers `ClosedFd`, never a number that moved on.
    """

    def __init__(self, fd: int) -> None:
        self._fd = OwnedFd(fd, "pty master")
        os.set_blocking(fd, False)

    @property
    def closed(self) -> bool:
        return self._fd.closed

    def fileno(self) -> int:
        return self._fd.fileno()

    def dup(self, what: str) -> OwnedFd:
        """A second descriptor on the master (a container's stdin writer holds one)."""
        return self._fd.dup(what)

    def resize(self, height: int, width: int) -> None:
        """`TIOCSWINSZ`: the kernel tells the foreground process group (SIGWINCH)."""
        fcntl.ioctl(self.fileno(), termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))

    def size(self) -> tuple[int, int]:
        raw = fcntl.ioctl(self.fileno(), termios.TIOCGWINSZ, b"\0" * 8)
        height, width, _, _ = struct.unpack("HHHH", raw)
        return height, width

    async def read(self, max_bytes: int = 65536) -> bytes:
        """The next output; b"" once every holder of the terminal's slave end is gone
        (Linux answers EIO then) or the console was closed."""
        while True:
            try:
                await trio.lowlevel.wait_readable(self.fileno())
                return os.read(self.fileno(), max_bytes)
            except BlockingIOError:
                continue
            except trio.ClosedResourceError:
                return b""
            except OSError as exc:
                if exc.errno == errno.EIO:
                    return b""
                raise

    def read_ready(self, max_bytes: int = 65536) -> bytes:
        """What can be read now without waiting (the rest of an exited process's output)."""
        chunks = []
        with contextlib.suppress(OSError, trio.ClosedResourceError):
            while data := os.read(self.fileno(), max_bytes):
                chunks.append(data)
        return b"".join(chunks)

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        """Input for the terminal, as typed; waits while the line discipline is full."""
        view = memoryview(data)
        while view:
            await trio.lowlevel.wait_writable(self.fileno())
            try:
                view = view[os.write(self.fileno(), view) :]
            except BlockingIOError:
                continue

    def close(self) -> None:
        self._fd.close()


def _fds_of(ancdata: list[tuple[int, int, bytes]]) -> list[int]:
    """The descriptors of one message's SCM_RIGHTS control data."""
    fds = array.array("i")
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[: len(data) - len(data) % fds.itemsize])
    return list(fds)


async def _accept_master(listener: trio.socket.SocketType) -> Console:
    conn, _ = await listener.accept()
    with conn:
        _msg, ancdata, _flags, _addr = await conn.recvmsg(
            4096, socket.CMSG_SPACE(16 * array.array("i").itemsize), socket.MSG_CMSG_CLOEXEC
        )
    fds = _fds_of(ancdata)
    if not fds:
        raise CorralError("runc closed the console socket without sending the terminal")
    for extra in fds[1:]:
        OwnedFd(extra, "an extra descriptor runc sent").close()
    return Console(fds[0])


async def with_console_socket(run: Callable[[str], Awaitable[T]]) -> tuple[T, Console]:
    """`run(path)` (a runc command given `--console-socket path`) and the master runc
    sends there.  The socket lives in a fresh 0700 directory (mkdtemp), so only root
    can connect, and is gone when this returns; nothing stays open on failure."""
    tmp = Path(tempfile.mkdtemp(prefix="corral-tty-"))
    path = tmp / "console.sock"
    raw = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        raw.bind(str(path))
        raw.listen(1)
        listener = trio.socket.from_stdlib_socket(raw)
        got: list[Console] = []
        received = trio.Event()

        async def receive() -> None:
            got.append(await _accept_master(listener))
            received.set()

        try:
            async with trio.open_nursery() as n:
                n.start_soon(receive)
                try:
                    result = await run(str(path))
                except BaseException:
                    n.cancel_scope.cancel()
                    raise
                with trio.move_on_after(HANDOVER_TIMEOUT):
                    await received.wait()
                n.cancel_scope.cancel()
            if not got:
                raise CorralError("runc did not hand over the container's terminal")
        except BaseException:
            for console in got:
                console.close()
            raise
        return result, got[0]
    finally:
        raw.close()
        shutil.rmtree(tmp, ignore_errors=True)
