"""Docker's multiplexed stream framing and the copy loop around a hijacked connection.

Frames are `[stream, 0, 0, 0, size(uint32 big-endian)]` + payload; stream 0/1 go to
stdout, 2 to stderr, 3 is an error from the daemon. Logs of a `-t` container and any
peer that sends an unframed stream are passed through raw: the first header is checked
for plausibility instead of asking the daemon (one request saved per `logs`).
"""

from __future__ import annotations

import os

from supervisor import leanjson as json
from supervisor.cli.format import human_size

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from typing import Any, BinaryIO

    from supervisor.api.client import Hijacked

STDOUT = 1
STDERR = 2
SYSERR = 3


class StreamError(Exception):
    """The daemon reported an error inside a stream (frame 3, or `{"error": ...}`)."""


def message_error(msg: dict[str, Any]) -> str | None:
    """The error a JSON progress message carries (`error` or `errorDetail.message`)."""
    detail = msg.get("errorDetail") or {}
    if msg.get("error") or (isinstance(detail, dict) and detail.get("message")):
        return str(msg.get("error") or detail.get("message"))
    return None


def json_messages(lines: Iterable[bytes]) -> Iterator[dict[str, Any]]:
    """The JSON objects of a progress stream, one per line; blank, non-JSON and non-object
    lines are skipped (pull and build streams carry nothing else)."""
    for line in lines:
        line = line.strip()
        if not line:
            continue
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if isinstance(msg, dict):
            yield msg


def _kind(stream: int) -> int:
    return stream if stream in (STDERR, SYSERR) else STDOUT


class Demuxer:
    """Incremental frame parser: feed bytes, get `(stream, payload)` pairs back."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._raw: bool | None = None

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        if self._raw is None and data:
            self._buf += data
            if self._buf[0] > 3 or (len(self._buf) >= 4 and self._buf[1:4] != b"\0\0\0"):
                self._raw = True
                data = bytes(self._buf)
                self._buf.clear()
                return [(STDOUT, data)]
            if len(self._buf) < 4:
                return []
            self._raw = False
            data = b""
        if self._raw:
            return [(STDOUT, data)] if data else []
        self._buf += data
        # Consecutive frames of one stream come out as one payload (a `logs` of a million
        # lines is a million frames): an offset walks the buffer, which is cut once.
        buf = self._buf
        out: list[tuple[int, bytes]] = []
        pos, end, size_of = 0, len(buf), int.from_bytes
        current = -1
        run: list[memoryview] = []
        with memoryview(buf) as view:
            add = run.append
            while end - pos >= 8:
                nxt = pos + 8 + size_of(view[pos + 4 : pos + 8], "big")
                if nxt > end:
                    break
                if buf[pos] != current or current == SYSERR:
                    if run:
                        out.append((_kind(current), b"".join(run)))
                        run.clear()
                    current = buf[pos]
                add(view[pos + 8 : nxt])
                pos = nxt
            if run:
                out.append((_kind(current), b"".join(run)))
                run.clear()
        del buf[:pos]
        return out

    def leftover(self) -> bytes:
        """Bytes of an incomplete frame (or an unjudged prefix) left at EOF."""
        return bytes(self._buf)


class Sink:
    """Where demuxed output goes; stream 3 becomes a `StreamError` once output is flushed."""

    def __init__(self, out: BinaryIO, err: BinaryIO) -> None:
        self.out = out
        self.err = err
        self.errors: list[str] = []

    def write(self, frames: list[tuple[int, bytes]]) -> None:
        touched: set[int] = set()
        for stream, payload in frames:
            if stream == SYSERR:
                self.errors.append(payload.decode("utf-8", "replace").strip())
                continue
            target = self.err if stream == STDERR else self.out
            target.write(payload)
            touched.add(stream)
        for stream in touched:
            (self.err if stream == STDERR else self.out).flush()

    def finish(self, demux: Demuxer) -> None:
        rest = demux.leftover()
        if rest:
            self.out.write(rest)
            self.out.flush()
        if self.errors:
            raise StreamError("error from daemon in stream: " + "; ".join(self.errors))


def grow_pipe(f: BinaryIO) -> None:
    """A pipe we write a lot into (`logs | ...`) holds 1 MiB, not 64 KiB: a wake-up of
    its reader and of us per MiB, not per 64 KiB (pipe-max-size, unprivileged)."""
    import fcntl
    import stat

    try:
        fd = f.fileno()
        if stat.S_ISFIFO(os.fstat(fd).st_mode):
            fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, 1 << 20)
    except (OSError, ValueError, AttributeError):
        pass  # not a pipe, or a smaller limit: as it is


def copy_chunks(chunks: Iterable[bytes], out: BinaryIO, err: BinaryIO) -> None:
    """Demultiplex a plain (non-hijacked) response body, e.g. `logs`."""
    grow_pipe(out)
    demux = Demuxer()
    sink = Sink(out, err)
    for chunk in chunks:
        sink.write(demux.feed(chunk))
    sink.finish(demux)


def pump(conn: Hijacked, out: BinaryIO, err: BinaryIO, stdin_fd: int | None = None) -> None:
    """Copy a hijacked stream to out/err until the daemon closes it, feeding it stdin.

    One thread, one `select`: a CLI must not pay for threads. When stdin reaches EOF the
    write side is half-closed so the container sees EOF too, while output keeps flowing.
    """
    import select

    demux = Demuxer()
    sink = Sink(out, err)
    if conn.initial:
        sink.write(demux.feed(conn.initial))
    sock = conn.sock
    watch_stdin = stdin_fd is not None
    while True:
        rlist: list[int] = [sock.fileno()]
        if watch_stdin and stdin_fd is not None:
            rlist.append(stdin_fd)
        ready, _, _ = select.select(rlist, [], [])
        if watch_stdin and stdin_fd in ready:
            try:
                data = os.read(stdin_fd, 65536)
            except OSError:
                data = b""
            if data:
                try:
                    sock.sendall(data)
                except OSError:
                    watch_stdin = False
            else:
                watch_stdin = False
                conn.close_write()
        if sock.fileno() in ready:
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                data = b""
            if not data:
                break
            sink.write(demux.feed(data))
    sink.finish(demux)


def show_json_messages(lines: Iterable[bytes], out: BinaryIO) -> None:
    """Print a progress stream (import, commit...) the way docker does without a TTY.

    Each `{"status": ..., "id": ..., "progress": ...}` becomes one line; `{"error": ...}`
    raises `StreamError` after what came before was shown.
    """
    for line in lines:
        line = line.strip()
        if not line:
            continue
        try:
            msg = json.loads(line)
        except ValueError:
            out.write(line + b"\n")
            continue
        if not isinstance(msg, dict):
            continue
        error = message_error(msg)
        if error is not None:
            out.flush()
            raise StreamError(error)
        text = msg.get("stream")
        if isinstance(text, str):
            out.write(text.encode())
            continue
        status = msg.get("status")
        if status is None:
            continue
        parts = []
        if msg.get("id"):
            parts.append(f"{msg['id']}: ")
        parts.append(str(status))
        detail_p = msg.get("progressDetail") or {}
        if isinstance(detail_p, dict) and detail_p.get("total"):
            parts.append(
                f" {human_size(float(detail_p.get('current', 0)))}"
                f"/{human_size(float(detail_p['total']))}"
            )
        out.write(("".join(parts) + "\n").encode())
        out.flush()
