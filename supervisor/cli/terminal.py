"""The client's side of an interactive session: raw mode, window size, the copy loop.

`docker run -it` puts the user's terminal in raw mode so every key (Ctrl-C too) goes
to the container's terminal, whose line discipline does the echo and the signals;
the user's terminal must come back exactly as it was on every way out (the container
exits, the daemon goes away, Ctrl-P Ctrl-Q, SIGTERM/SIGHUP to the client, an
exception): `RawTerminal` restores it in `__exit__`, and turns SIGTERM, SIGHUP and
SIGQUIT into an exception so that `__exit__` runs.  SIGWINCH becomes a resize
request.  One thread, one `select`, like `stream.pump`: a CLI must not pay for
threads.
"""

from __future__ import annotations

import contextlib
import os

from supervisor.api.detachkeys import DEFAULT, DetachScanner, parse

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any, BinaryIO

    from supervisor.api.client import Hijacked


class Interrupted(Exception):
    """A signal that ends the client (SIGTERM, SIGHUP...) arrived in raw mode."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def check_tty(attach_stdin: bool, tty: bool, stdin_fd: int = 0) -> None:
    """docker's CheckTty: `-it` with stdin not a terminal is refused (exit 1)."""
    from supervisor.cli.context import CliError

    if tty and attach_stdin and not os.isatty(stdin_fd):
        raise CliError("the input device is not a TTY", 1)


def size(fd: int = 1) -> tuple[int, int] | None:
    """(height, width) of the client's terminal (stdout's, else stdin's), or None."""
    for f in (fd, 0):
        with contextlib.suppress(OSError):
            cols, rows = os.get_terminal_size(f)
            if rows and cols:
                return rows, cols
    return None


def detach_keys(flag: str | None, environ: Mapping[str, str]) -> tuple[str, bytes]:
    """`--detach-keys`, else `detachKeys` in the docker CLI's config.json, else
    ctrl-p,ctrl-q: (as written, "" for the default; the bytes).  A value that does
    not parse is an error naming it (exit 125)."""
    from supervisor.cli.context import CliError

    raw = flag or _config_detach_keys(environ)
    try:
        return raw, parse(raw or DEFAULT)
    except ValueError as exc:
        raise CliError(str(exc), 125) from None


def _config_detach_keys(environ: Mapping[str, str]) -> str:
    import json

    home = environ.get("DOCKER_CONFIG") or os.path.join(environ.get("HOME") or "~", ".docker")
    path = os.path.join(os.path.expanduser(home), "config.json")
    try:
        with open(path, "rb") as f:
            config = json.load(f)
    except (OSError, ValueError):
        return ""
    value = config.get("detachKeys") if isinstance(config, dict) else None
    return value if isinstance(value, str) else ""


class RawTerminal:
    """Raw mode on `fd` while inside (nothing if `fd` is not a terminal); SIGWINCH
    calls `on_resize(height, width)`; SIGTERM/SIGHUP/SIGQUIT raise `Interrupted`."""

    ENDING = ("SIGTERM", "SIGHUP", "SIGQUIT")

    def __init__(self, fd: int, on_resize: Callable[[int, int], None] | None = None) -> None:
        self.fd = fd
        self.on_resize = on_resize
        self._saved: list[Any] | None = None
        self._handlers: dict[int, Any] = {}

    def __enter__(self) -> RawTerminal:
        import signal

        if os.isatty(self.fd):
            import termios
            import tty

            self._saved = termios.tcgetattr(self.fd)
            tty.setraw(self.fd, termios.TCSANOW)
        for name in self.ENDING:
            signum = getattr(signal, name)
            self._handlers[signum] = signal.signal(signum, self._interrupt)
        if self.on_resize is not None:
            self._handlers[signal.SIGWINCH] = signal.signal(signal.SIGWINCH, self._winch)
        return self

    def _interrupt(self, signum: int, frame: object) -> None:
        raise Interrupted(signum)

    def _winch(self, signum: int, frame: object) -> None:
        self.resize()

    def resize(self) -> None:
        current = size()
        if current is not None and self.on_resize is not None:
            with contextlib.suppress(Exception):  # a resize that fails must not end it
                self.on_resize(*current)

    def __exit__(self, *exc: object) -> None:
        import signal

        # The terminal first: a signal landing in here may raise, but only after it.
        if self._saved is not None:
            import termios

            saved, self._saved = self._saved, None
            with contextlib.suppress(OSError):
                termios.tcsetattr(self.fd, termios.TCSADRAIN, saved)
        for signum, handler in self._handlers.items():
            signal.signal(signum, handler)
        self._handlers.clear()


def pump_raw(conn: Hijacked, out: BinaryIO, stdin_fd: int | None, keys: bytes = b"") -> bool:
    """Copy a TTY session: the daemon's raw bytes to `out`, `stdin_fd` to the daemon.

    Returns True if the user typed the detach keys (the session is left running),
    False when the daemon ended the stream (the process exited, or the daemon went).
    At stdin's EOF the write side is half-closed and output keeps flowing.
    """
    import select

    if conn.initial:
        out.write(conn.initial)
        out.flush()
    sock = conn.sock
    scanner = DetachScanner(keys) if keys else None
    watch_stdin = stdin_fd is not None
    while True:
        rlist: list[int] = [sock.fileno()]
        if watch_stdin and stdin_fd is not None:
            rlist.append(stdin_fd)
        try:
            ready, _, _ = select.select(rlist, [], [])
        except InterruptedError:  # pragma: no cover - PEP 475 retries select
            continue
        if watch_stdin and stdin_fd is not None and stdin_fd in ready:
            try:
                data = os.read(stdin_fd, 65536)
            except OSError:
                data = b""
            if not data:  # EOF: the container's input ends, its output goes on
                watch_stdin = False
                if scanner is not None:
                    data = scanner.flush()
                if data:
                    with contextlib.suppress(OSError):
                        sock.sendall(data)
                conn.close_write()
            else:
                detached = False
                if scanner is not None:
                    data, detached = scanner.feed(data)
                try:
                    if data:
                        sock.sendall(data)
                except OSError:
                    watch_stdin = False
                if detached:
                    return True
        if sock.fileno() in ready:
            try:
                data = sock.recv(65536)
            except (ConnectionResetError, OSError):
                data = b""
            if not data:
                return False
            out.write(data)
            out.flush()
