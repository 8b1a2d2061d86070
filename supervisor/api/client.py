"""A minimal HTTP/1.1 client for the corral API over a Unix socket.

Why hand-written: the CLI runs once per command, so its import cost is the user's latency.
`http.client` drags in `email.parser` and friends (~10 ms); this module needs only `socket`
and `json`. It also needs things `http.client` makes awkward: taking over the socket after
an upgrade (attach/exec "hijack") and streaming bodies both ways.

Model: one connection per request (a Unix socket connect costs microseconds), so there is
no pooling and a close-delimited body is simply "read to EOF".
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import Callable, Iterable, Iterator, Mapping

TYPE_CHECKING = False  # not `typing.TYPE_CHECKING`: importing typing costs ~4 ms per command
if TYPE_CHECKING:
    from typing import IO, Any, TypeAlias

    QueryValue: TypeAlias = str | int | bool | None | list[str]
    Query: TypeAlias = Mapping[str, QueryValue]
    Body: TypeAlias = bytes | IO[bytes] | Iterable[bytes] | None

API_VERSION = "1.44"
DEFAULT_HOST = "unix:///run/corral/corral.sock"
_RECV = 65536


class ApiError(Exception):
    """The daemon answered with a non-2xx status; `message` is its `{"message": ...}`."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


class DaemonUnavailable(Exception):
    """Nothing listens on the socket (ENOENT/ECONNREFUSED): the caller may start a daemon."""

    def __init__(self, host: str, reason: str) -> None:
        super().__init__(f"cannot connect to {host}: {reason}")
        self.host = host
        self.reason = reason


class ProtocolError(Exception):
    """The peer spoke something that is not the HTTP/1.1 we expect."""


def socket_path(host: str) -> str:
    """`unix:///run/x.sock` (or a bare absolute path) → `/run/x.sock`; anything else is an error.

    Only Unix sockets exist for now; a clear error beats a confusing connect failure.
    """
    if host.startswith("unix://"):
        path = host[len("unix://") :]
    elif host.startswith("/"):
        path = host
    else:
        raise ValueError(f"unsupported host {host!r}: only unix:///path is supported")
    if not path:
        raise ValueError(f"invalid host {host!r}: empty socket path")
    return path


_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def quote(text: str, safe: str = "") -> str:
    """Percent-encode like `urllib.parse.quote` (which costs a `re`/`urllib` import)."""
    keep = _SAFE | frozenset(safe.encode())
    return "".join(chr(b) if b in keep else f"%{b:02X}" for b in text.encode())


def encode_query(query: Query | None) -> str:
    """Docker's Go client conventions: bools as 1/0, lists as repeated keys, None omitted."""
    if not query:
        return ""
    parts: list[str] = []
    for key, value in query.items():
        if value is None:
            continue
        values = value if isinstance(value, list) else [value]
        for v in values:
            text = ("1" if v else "0") if isinstance(v, bool) else str(v)
            parts.append(f"{quote(key)}={quote(text)}")
    return "?" + "&".join(parts) if parts else ""


class _Reader:
    """Buffered reads over a socket that can hand back what it buffered (for hijacks)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()
        self.eof = False

    def _fill(self) -> bool:
        if self.eof:
            return False
        data = self.sock.recv(_RECV)
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def readline(self, limit: int = 65536) -> bytes:
        while True:
            idx = self.buf.find(b"\n")
            if idx >= 0:
                line = bytes(self.buf[: idx + 1])
                del self.buf[: idx + 1]
                return line
            if len(self.buf) > limit:
                raise ProtocolError("header line too long")
            if not self._fill():
                line = bytes(self.buf)
                self.buf.clear()
                return line

    def read_some(self, limit: int) -> bytes:
        """Up to `limit` bytes, blocking only if nothing is buffered; b"" at EOF."""
        if not self.buf and not self._fill():
            return b""
        chunk = bytes(self.buf[:limit])
        del self.buf[:limit]
        return chunk

    def read_exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not self._fill():
                raise ProtocolError("connection closed in the middle of a body")
        chunk = bytes(self.buf[:n])
        del self.buf[:n]
        return chunk

    def take_buffer(self) -> bytes:
        data = bytes(self.buf)
        self.buf.clear()
        return data


class Response:
    """A response whose body has not been read yet: read it whole or stream it."""

    def __init__(
        self, reader: _Reader, status: int, reason: str, headers: dict[str, str], method: str
    ) -> None:
        self._reader = reader
        self.status = status
        self.reason = reason
        self.headers = headers
        self._done = False
        te = headers.get("transfer-encoding", "").lower()
        self._chunked = "chunked" in te
        length = headers.get("content-length")
        self._remaining: int | None = None
        if length is not None and not self._chunked:
            self._remaining = int(length)
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            self._remaining = 0
            self._chunked = False

    def iter_chunks(self) -> Iterator[bytes]:
        """Body bytes as they arrive (Content-Length, chunked, or until close)."""
        if self._done:
            return
        try:
            if self._chunked:
                yield from self._iter_chunked()
            elif self._remaining is not None:
                while self._remaining > 0:
                    data = self._reader.read_some(min(self._remaining, _RECV))
                    if not data:
                        raise ProtocolError("connection closed before the end of the body")
                    self._remaining -= len(data)
                    yield data
            else:
                while True:
                    data = self._reader.read_some(_RECV)
                    if not data:
                        break
                    yield data
        finally:
            self._done = True
            self.close()

    def _iter_chunked(self) -> Iterator[bytes]:
        while True:
            line = self._reader.readline()
            if not line:
                raise ProtocolError("connection closed inside a chunked body")
            size_text = line.split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise ProtocolError(f"bad chunk size {size_text!r}") from None
            if size == 0:
                while self._reader.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return
            remaining = size
            while remaining > 0:
                data = self._reader.read_some(min(remaining, _RECV))
                if not data:
                    raise ProtocolError("connection closed inside a chunk")
                remaining -= len(data)
                yield data
            self._reader.read_exact(2)  # CRLF after the chunk data

    def iter_lines(self) -> Iterator[bytes]:
        """Newline-delimited records (events, progress JSON); the newline is stripped."""
        pending = b""
        for chunk in self.iter_chunks():
            pending += chunk
            *lines, pending = pending.split(b"\n")
            yield from lines
        if pending:
            yield pending

    def read(self) -> bytes:
        return b"".join(self.iter_chunks())

    def json(self) -> Any:
        data = self.read()
        return json.loads(data) if data.strip() else None

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._reader.sock.close()


class Hijacked:
    """The raw, bidirectional stream left after `101 Switching Protocols` (or a 200).

    `initial` holds bytes the header parser already received past the headers; read them
    before reading from `sock`.
    """

    def __init__(self, sock: socket.socket, initial: bytes, headers: dict[str, str]) -> None:
        self.sock = sock
        self.initial = initial
        self.headers = headers

    def close_write(self) -> None:
        """Half-close: tells the daemon stdin reached EOF while we keep reading output."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


def _error_message(data: bytes, fallback: str) -> str:
    text = data.decode("utf-8", "replace").strip()
    try:
        doc = json.loads(text)
    except ValueError:
        return text or fallback
    if isinstance(doc, dict) and isinstance(doc.get("message"), str):
        return str(doc["message"])
    return text or fallback


class Client:
    """Talks to one daemon. `autostart` is called once, the first time nobody answers."""

    def __init__(
        self,
        host: str = DEFAULT_HOST,
        *,
        version: str | None = API_VERSION,
        autostart: Callable[[], None] | None = None,
    ) -> None:
        self.host = host
        self.path = socket_path(host)
        self.prefix = f"/v{version}" if version else ""
        self._autostart = autostart

    # -- connection ---------------------------------------------------------------------
    def _connect_once(self) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(self.path)
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            sock.close()
            raise DaemonUnavailable(self.host, exc.strerror or str(exc)) from None
        except OSError:
            sock.close()
            raise
        return sock

    def connect(self) -> socket.socket:
        try:
            return self._connect_once()
        except DaemonUnavailable:
            start, self._autostart = self._autostart, None
            if start is None:
                raise
            start()
            return self._connect_once()

    # -- requests -----------------------------------------------------------------------
    def _send(
        self,
        sock: socket.socket,
        method: str,
        path: str,
        query: Query | None,
        body: Body,
        headers: Mapping[str, str] | None,
    ) -> None:
        lines = [f"{method} {self.prefix}{path}{encode_query(query)} HTTP/1.1", "Host: corral"]
        lines.append("User-Agent: corral-cli")
        hdrs = dict(headers or {})
        payload: bytes | None = None
        stream: Iterable[bytes] | None = None
        if body is None:
            if method in ("POST", "PUT"):
                hdrs.setdefault("Content-Length", "0")
        elif isinstance(body, bytes | bytearray):
            payload = bytes(body)
            hdrs["Content-Length"] = str(len(payload))
        else:
            size = _file_size(body)
            if size is not None:
                hdrs["Content-Length"] = str(size)
            else:
                hdrs["Transfer-Encoding"] = "chunked"
            stream = _file_chunks(body) if hasattr(body, "read") else body  # type: ignore[arg-type]
        lines.extend(f"{k}: {v}" for k, v in hdrs.items())
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        if payload is not None and len(payload) < 65536:
            sock.sendall(head + payload)
            return
        sock.sendall(head)
        if payload is not None:
            sock.sendall(payload)
        elif stream is not None:
            chunked = "Transfer-Encoding" in hdrs
            try:
                for chunk in stream:
                    if not chunk:
                        continue
                    if chunked:
                        sock.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
                    else:
                        sock.sendall(chunk)
                if chunked:
                    sock.sendall(b"0\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):
                pass  # the daemon answered early (e.g. an error): read that answer instead

    @staticmethod
    def _read_head(reader: _Reader) -> tuple[int, str, dict[str, str]]:
        while True:
            line = reader.readline()
            if not line:
                raise ProtocolError("the daemon closed the connection without answering")
            parts = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
            if len(parts) < 2 or not parts[0].startswith("HTTP/"):
                raise ProtocolError(f"bad status line {line!r}")
            status = int(parts[1])
            reason = parts[2] if len(parts) > 2 else ""
            headers: dict[str, str] = {}
            while True:
                h = reader.readline()
                if h in (b"\r\n", b"\n", b""):
                    break
                name, _, value = h.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            if status == 100:  # "Continue" interim answer: the real one follows
                continue
            return status, reason, headers

    def request(
        self,
        method: str,
        path: str,
        query: Query | None = None,
        *,
        json_body: Any = None,
        body: Body = None,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        """Send one request; raise `ApiError` on non-2xx, else return the unread response."""
        hdrs = dict(headers or {})
        if json_body is not None:
            body = json.dumps(json_body).encode()
            hdrs["Content-Type"] = "application/json"
        sock = self.connect()
        try:
            self._send(sock, method, path, query, body, hdrs)
            reader = _Reader(sock)
            status, reason, rh = self._read_head(reader)
        except BaseException:
            sock.close()
            raise
        resp = Response(reader, status, reason, rh, method)
        # docker's client takes any status below 400 as success: a 304 (start of a
        # running container, stop of a stopped one) prints the name and exits 0.
        if not 200 <= status < 400:
            raise ApiError(status, _error_message(resp.read(), reason or f"HTTP {status}"))
        return resp

    def get(self, path: str, query: Query | None = None) -> Any:
        return self.request("GET", path, query).json()

    def post(self, path: str, query: Query | None = None, json_body: Any = None) -> Any:
        return self.request("POST", path, query, json_body=json_body).json()

    def delete(self, path: str, query: Query | None = None) -> Any:
        return self.request("DELETE", path, query).json()

    def hijack(
        self, path: str, query: Query | None = None, json_body: Any = None
    ) -> Hijacked:
        """POST asking for an upgrade to a raw stream (attach, exec start).

        Docker answers 101 UPGRADED (or, historically, 200 followed by the raw stream).
        """
        hdrs = {"Connection": "Upgrade", "Upgrade": "tcp"}
        body: bytes | None = None
        if json_body is not None:
            body = json.dumps(json_body).encode()
            hdrs["Content-Type"] = "application/json"
        sock = self.connect()
        try:
            self._send(sock, "POST", path, query, body, hdrs)
            reader = _Reader(sock)
            status, reason, rh = self._read_head(reader)
        except BaseException:
            sock.close()
            raise
        if status in (101, 200):
            return Hijacked(sock, reader.take_buffer(), rh)
        resp = Response(reader, status, reason, rh, "POST")
        raise ApiError(status, _error_message(resp.read(), reason or f"HTTP {status}"))


def _file_size(body: object) -> int | None:
    """Size of a regular file body (so it goes out with Content-Length), else None."""
    fileno = getattr(body, "fileno", None)
    if fileno is None:
        return None
    try:
        st = os.fstat(fileno())
        pos = body.tell() if hasattr(body, "tell") else 0
    except (OSError, ValueError):
        return None
    import stat

    if not stat.S_ISREG(st.st_mode):
        return None
    return int(st.st_size - pos)


def _file_chunks(f: IO[bytes]) -> Iterator[bytes]:
    while True:
        data = f.read(_RECV)
        if not data:
            return
        yield data
