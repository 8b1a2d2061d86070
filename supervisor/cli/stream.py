"""Docker's multiplexed stream framing (`frames`) and the copy loop around a hijacked
connection."""

from __future__ import annotations

import os

from supervisor import leanjson as json
from supervisor.cli.format import human_size
from supervisor.cli.frames import STDERR, STDOUT, SYSERR, Demuxer

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from typing import Any, BinaryIO

    from supervisor.api.client import Hijacked

__all__ = ["STDERR", "STDOUT", "SYSERR", "Demuxer", "Sink", "StreamError", "copy_chunks"]


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
