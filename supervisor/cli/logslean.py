"""`corral logs` on its lean path: the common forms (`logs [-f] [-t] [--details]
[-n N | --tail N] CONTAINER`) answered with nothing but the interpreter's own modules,
`_socket`, the HTTP core (`httpcore.client`) and the frame reader (`cli.frames`).

Why: `logs --tail 100` is one small request, and the full CLI's imports (`os` and its
`collections.abc`, the flag tables, the API client, JSON) cost about as many
instructions as the interpreter's own start.  The lean path only ever handles a
success: any other form, a host that is not a Unix socket, no daemon listening (the
full CLI starts one), or an answer that is not 200 is handed back (`None`) before a
byte is written, and the full CLI does the request as before, errors and all.  What
it prints, and its exit codes, are the full path's (`run_verb`'s for `logs`).
"""

from __future__ import annotations

import _socket
import posix  # `os` itself costs ~6 M instructions (collections.abc, posixpath)

from supervisor.cli.frames import STDERR, SYSERR, Demuxer
from supervisor.httpcore.client import NEED_DATA, ClientConnection, Data, ProtocolError, Response

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

DEFAULT_HOST = "unix:///run/corral/corral.sock"  # api.client's (a test holds them equal)
API_PREFIX = "/v1.44"
_SAFE = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
_RECV = 65536
_STREAM_RECV = 1 << 20
_FLAGS = {"-f": "follow", "--follow": "follow", "-t": "timestamps",
          "--timestamps": "timestamps", "--details": "details"}  # fmt: skip


def query(argv: Sequence[str]) -> str | None:
    """`logs`'s arguments -> the request target, or None for any form the full CLI
    must read (other flags, `--`, `-h`, bundled short flags, not one container, a
    name or `--tail` value needing quoting: the daemon's errors are the full CLI's).
    Pure."""
    seen: dict[str, str] = {}
    args: list[str] = []
    tail = "all"
    it = iter(argv)
    for arg in it:
        if arg in _FLAGS:
            seen[_FLAGS[arg]] = "1"
        elif arg in ("-n", "--tail"):
            tail = next(it, "")
            if not tail:
                return None
        elif arg.startswith("--tail="):
            tail = arg[len("--tail=") :]
        elif arg.startswith("-n") and len(arg) > 2 and arg[2:].isdigit():
            tail = arg[2:]
        elif arg.startswith("-"):
            return None
        else:
            args.append(arg)
    if len(args) != 1 or not _plain(args[0]) or not _plain(tail):
        return None
    parts = ["stdout=1", "stderr=1"]
    parts += [f"{k}=1" for k in ("follow", "timestamps", "details") if k in seen]
    parts.append(f"tail={tail}")
    return f"{API_PREFIX}/containers/{args[0]}/logs?" + "&".join(parts)


def _plain(text: str) -> bool:
    data = text.encode("utf-8", "surrogateescape")
    return bool(data) and not data.translate(None, bytes(_SAFE))


def socket_path(host: str) -> str | None:
    """`unix:///x.sock` or a bare absolute path -> the path; else None (the full CLI
    says what is wrong with it)."""
    path = host[len("unix://") :] if host.startswith("unix://") else host
    return path if path.startswith("/") else None


_tried = False


def main(argv: Sequence[str]) -> None:
    """`corral logs ARGS` from the launchers (scripts/setup's `.venv/bin/corral`,
    `python -m supervisor`) before `cli.main` loads: answered here, and the process
    ends at once with its exit code (`posix._exit`: every byte went out by
    `posix.write`, nothing is buffered; the interpreter's teardown is ~3 ms of a
    20 ms `logs --tail 100`), or this returns, nothing written, and the full CLI
    runs (`cli.main`, which does not try the lean path again)."""
    code = run(None, argv)
    if code is not None:
        posix._exit(code)


def run(host: str | None, argv: Sequence[str]) -> int | None:
    """The exit code, or None: the full CLI takes over, nothing was written.  Tried
    once per process: a second call (`cli.main` after a launcher's `main`) is None
    at once, so a form the full CLI must read is never asked of the daemon twice."""
    global _tried
    if _tried:
        return None
    _tried = True
    target = query(argv)
    if target is None:
        return None
    if host is None:
        env = posix.environ.get(b"CORRAL_HOST")
        host = env.decode("utf-8", "surrogateescape") if env else DEFAULT_HOST
    path = socket_path(host)
    if path is None:
        return None
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        try:
            sock.connect(path)
            conn = ClientConnection()
            headers = (("Host", "corral"), ("User-Agent", "corral-cli"),
                       ("X-Corral-Frames", "merged"))  # fmt: skip
            sock.sendall(conn.send_request("GET", target, headers))
            event = conn.next_event()
            while event is NEED_DATA:
                conn.receive_data(sock.recv(_RECV))
                event = conn.next_event()
        except (OSError, ProtocolError):
            return None  # the full CLI starts a daemon, or says what is wrong
        if not isinstance(event, Response) or event.status != 200:
            return None
        return _copy(sock, conn)
    except KeyboardInterrupt:
        return 130
    finally:
        sock.close()


def _copy(sock: _socket.socket, conn: ClientConnection) -> int:
    """The body's frames to fds 1 and 2, as `stream.copy_chunks` writes them."""
    demux = Demuxer()
    errors: list[str] = []
    size, total = _RECV, 0
    try:
        while True:
            event = conn.next_event()
            if event is NEED_DATA:
                data = sock.recv(size)
                if len(data) == size < _STREAM_RECV:  # a big body: larger reads
                    size *= 4
                conn.receive_data(data)
                continue
            if not isinstance(event, Data):
                break  # EndOfMessage
            total += len(event.data)
            if total > _STREAM_RECV:  # below a MiB, the pipe's 64 KiB cost less than
                _grow_stdout()  # fcntl's import (~0.4 ms of a `--tail 100`)
            for stream, payload in demux.feed(event.data):
                if stream == SYSERR:
                    errors.append(payload.decode("utf-8", "replace").strip())
                else:
                    _write(2 if stream == STDERR else 1, payload)
        rest = demux.leftover()
        if rest:
            _write(1, rest)
    except BrokenPipeError:
        _quiet_stdout()
        return 141
    except ProtocolError as exc:
        _say(f"corral: {exc}")
        return 1
    except ConnectionError as exc:
        _say(f"corral: lost the connection to the daemon: {exc}")
        return 1
    if errors:
        _say("corral: error from daemon in stream: " + "; ".join(errors))
        return 1
    return 0


_grown = False


def _grow_stdout() -> None:
    """`stream.grow_pipe`, once a body proves big: a 1 MiB stdout pipe."""
    global _grown
    if _grown:
        return
    _grown = True
    import fcntl
    import stat

    try:
        if stat.S_ISFIFO(posix.fstat(1).st_mode):
            fcntl.fcntl(1, fcntl.F_SETPIPE_SZ, 1 << 20)
    except OSError:
        pass  # not a pipe, or a smaller limit: as it is


def _write(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[posix.write(fd, view) :]


def _say(text: str) -> None:
    try:  # noqa: SIM105 - contextlib costs the start
        _write(2, (text + "\n").encode("utf-8", "replace"))
    except OSError:
        pass


def _quiet_stdout() -> None:
    """stdout went away (`logs | head`): fd 1 at /dev/null, so the interpreter's final
    flush does not complain (as `run_verb` does)."""
    devnull = posix.open("/dev/null", posix.O_WRONLY)
    posix.dup2(devnull, 1)
    posix.close(devnull)
