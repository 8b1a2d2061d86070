"""A minimal HTTP/1.1 client for the corral API over a Unix socket.

Why hand-written: the CLI runs once per command, so its import cost is the user's latency.
`http.client` drags in `email.parser` and friends (~10 ms); this module needs only `socket`
and `json`. It also needs things `http.client` makes awkward: taking over the socket after
an upgrade (attach/exec "hijack") and streaming bodies both ways.

Model: one connection per request (a Unix socket connect costs microseconds), so there is
no pooling and a close-delimited body is simply "read to EOF". The HTTP itself (request
framing, response framing, the upgrade and the bytes read past its head) is the sans-I/O
`supervisor.httpcore.client.ClientConnection`; this module is its blocking socket adapter.
"""

from __future__ import annotations

import _socket  # socket.py's IntEnum tables, selectors and array cost the CLI ~2 ms
import os

from supervisor import leanjson as json
from supervisor.httpcore.client import NEED_DATA, ClientConnection, Data, Upgrade
from supervisor.httpcore.client import ProtocolError as ProtocolError  # re-exported for callers

TYPE_CHECKING = False  # not `typing.TYPE_CHECKING`: importing typing costs ~4 ms per command
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Mapping  # `collections`: ~2 ms
    from typing import IO, Any, TypeAlias

    from supervisor.httpcore.client import Response as _Head

    QueryValue: TypeAlias = str | int | bool | None | list[str]
    Query: TypeAlias = Mapping[str, QueryValue]
    Body: TypeAlias = bytes | IO[bytes] | Iterable[bytes] | None

API_VERSION = "1.44"
DEFAULT_HOST = "unix:///run/corral/corral.sock"
_RECV = 65536
_STREAM_RECV = 1 << 20  # a big streamed body (`logs`): what the daemon queued, at once


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


def _next_event(sock: _socket.socket, conn: ClientConnection) -> Any:
    """The connection's next event, reading the socket while it needs data."""
    while True:
        event = conn.next_event()
        if event is not NEED_DATA:
            return event
        conn.receive_data(sock.recv(_RECV))


class Response:
    """A response whose body has not been read yet: read it whole or stream it."""

    def __init__(self, sock: _socket.socket, conn: ClientConnection, head: _Head) -> None:
        self._sock = sock
        self._conn = conn
        self.status = head.status
        self.reason = head.reason
        self.headers = head.headers
        self._done = False

    def iter_chunks(self) -> Iterator[bytes]:
        """Body bytes as they arrive (Content-Length, chunked, or until close)."""
        if self._done:
            return
        size = _RECV
        try:
            while True:
                event = self._conn.next_event()
                if event is NEED_DATA:
                    data = self._sock.recv(size)
                    if len(data) == size < _STREAM_RECV:  # a big body: larger reads
                        size *= 4
                    self._conn.receive_data(data)
                    continue
                if not isinstance(event, Data):
                    break  # EndOfMessage
                if event.data:
                    yield event.data
        finally:
            self._done = True
            self.close()

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
        _close(self._sock)


class Hijacked:
    """The raw, bidirectional stream left after `101 Switching Protocols` (or a 200).

    `initial` holds bytes the header parser already received past the headers; read them
    before reading from `sock`.
    """

    def __init__(self, sock: _socket.socket, initial: bytes, headers: dict[str, str]) -> None:
        self.sock = sock
        self.initial = initial
        self.headers = headers

    def close_write(self) -> None:
        """Half-close: tells the daemon stdin reached EOF while we keep reading output."""
        try:  # noqa: SIM105 - contextlib costs the CLI's start (see `_close`)
            self.sock.shutdown(_socket.SHUT_WR)
        except OSError:
            pass

    def close(self) -> None:
        _close(self.sock)


def _close(sock: _socket.socket) -> None:
    """Close, whatever state the socket is in (no `contextlib.suppress`: contextlib
    costs every command's start ~3 M instructions)."""
    try:  # noqa: SIM105
        sock.close()
    except OSError:
        pass


def _error_message(data: bytes, fallback: str) -> str:
    text = data.decode("utf-8", "replace").strip()
    try:
        doc = json.loads(text)
    except ValueError:
        return text or fallback
    if isinstance(doc, dict) and isinstance(doc.get("message"), str):
        return str(doc["message"])
    return text or fallback


def _api_error(resp: Response) -> ApiError:
    return ApiError(resp.status, _error_message(resp.read(), resp.reason or f"HTTP {resp.status}"))


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
    def _connect_once(self) -> _socket.socket:
        sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        try:
            sock.connect(self.path)
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            sock.close()
            raise DaemonUnavailable(self.host, exc.strerror or str(exc)) from None
        except OSError:
            sock.close()
            raise
        return sock

    def connect(self) -> _socket.socket:
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
        sock: _socket.socket,
        conn: ClientConnection,
        method: str,
        path: str,
        query: Query | None,
        body: Body,
        headers: Mapping[str, str] | None,
    ) -> None:
        hdrs = {"Host": "corral", "User-Agent": "corral-cli"}
        hdrs.update(headers or {})
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
        target = f"{self.prefix}{path}{encode_query(query)}"
        head = conn.send_request(method, target, hdrs.items())
        if payload is not None and len(payload) < 65536:
            sock.sendall(head + conn.send_data(payload) + conn.send_end())
            return
        sock.sendall(head)
        if payload is not None:
            sock.sendall(conn.send_data(payload))
        elif stream is not None:
            try:
                for chunk in stream:
                    if chunk:
                        sock.sendall(conn.send_data(chunk))
                sock.sendall(conn.send_end())
            except (BrokenPipeError, ConnectionResetError):
                pass  # the daemon answered early (e.g. an error): read that answer instead

    def _exchange(
        self, method: str, path: str, query: Query | None, body: Body, headers: dict[str, str]
    ) -> tuple[_socket.socket, ClientConnection, Any]:
        """Connect, send the request, and read the answer's head (a Response or Upgrade)."""
        sock = self.connect()
        conn = ClientConnection()
        try:
            self._send(sock, conn, method, path, query, body, headers)
            head = _next_event(sock, conn)
        except BaseException:
            sock.close()
            raise
        return sock, conn, head

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
        sock, conn, head = self._exchange(method, path, query, body, hdrs)
        resp = Response(sock, conn, head)
        # docker's client takes any status below 400 as success: a 304 (start of a
        # running container, stop of a stopped one) prints the name and exits 0.
        if not 200 <= resp.status < 400:
            raise _api_error(resp)
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

        Docker answers 101 UPGRADED (or, historically, 200 followed by the raw stream);
        the HTTP core reports either as an `Upgrade` carrying the bytes read past the head.
        """
        hdrs = {"Connection": "Upgrade", "Upgrade": "tcp"}
        body: bytes | None = None
        if json_body is not None:
            body = json.dumps(json_body).encode()
            hdrs["Content-Type"] = "application/json"
        sock, conn, head = self._exchange("POST", path, query, body, hdrs)
        if isinstance(head, Upgrade):
            return Hijacked(sock, head.trailing, head.headers)
        resp = Response(sock, conn, head)
        raise _api_error(resp)


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
