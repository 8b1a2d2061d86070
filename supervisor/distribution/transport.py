"""HTTP/1.1 client on trio for registry traffic; h11 is the sans-I/O core.

h11 does the protocol (framing, chunked bodies, keep-alive rules); this module only
moves bytes: TCP (or TLS with the system CAs through `trio.SSLStream`), one idle
connection pool per origin, and connection failures turned into Docker-worded errors
(`Get "http://h/v2/": dial tcp h: connect: connection refused`).  Bodies stream: a
response is read chunk by chunk, so a 1 GB layer never sits in memory.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import h11
import trio

from supervisor.errors import CorralError

USER_AGENT = "corral/0.1 (distribution client)"
CONNECT_TIMEOUT = 30.0
READ_TIMEOUT = 120.0  # between two reads of one response; a stalled registry fails
# Up to 1 MiB per read: a layer's body is most of what comes, and under load each
# wake-up of the trio thread waits for a CPU; with 64 KiB a 73 MB pull was ~1,100 of
# them, now the socket's backlog is taken at once (fewer, larger hand-offs).
_RECEIVE = 1 << 20
_POOL_PER_ORIGIN = 8


class TransportError(CorralError):
    """The registry could not be reached or broke the connection (HTTP 500, as Docker)."""

    status = 500


@dataclass
class _Conn:
    stream: trio.abc.Stream
    proto: h11.Connection = field(default_factory=lambda: h11.Connection(h11.CLIENT))

    async def send(self, event: h11.Event) -> None:
        data = self.proto.send(event)
        if data:
            await self.stream.send_all(data)

    async def next_event(self) -> h11.Event | type[h11.PAUSED]:
        while True:
            event = self.proto.next_event()
            if event is not h11.NEED_DATA:
                return event  # type: ignore[return-value]
            with trio.fail_after(READ_TIMEOUT):
                data = await self.stream.receive_some(_RECEIVE)
            self.proto.receive_data(bytes(data))

    def reusable(self) -> bool:
        return self.proto.our_state is h11.DONE and self.proto.their_state is h11.DONE


@dataclass
class Response:
    """A response whose body is still on the wire: read it with `chunks()` or `read()`."""

    method: str
    url: str
    status: int
    reason: str
    headers: list[tuple[str, str]]
    _conn: _Conn
    _done: bool = False

    def header(self, name: str) -> str | None:
        name = name.lower()
        for k, v in self.headers:
            if k == name:
                return v
        return None

    def header_all(self, name: str) -> list[str]:
        name = name.lower()
        return [v for k, v in self.headers if k == name]

    async def chunks(self) -> AsyncIterator[bytes]:
        while not self._done:
            try:
                event = await self._conn.next_event()
            except (OSError, trio.BrokenResourceError, h11.RemoteProtocolError) as e:
                raise TransportError(f'{self.method.title()} "{self.url}": {_why(e)}') from None
            except trio.TooSlowError:
                raise TransportError(
                    f'{self.method.title()} "{self.url}": read timed out'
                ) from None
            if isinstance(event, h11.Data):
                yield bytes(event.data)
            elif isinstance(event, h11.EndOfMessage):
                self._done = True
            elif isinstance(event, h11.ConnectionClosed):
                raise TransportError(
                    f'{self.method.title()} "{self.url}": unexpected EOF'
                )

    async def read(self, limit: int) -> bytes:
        """The whole body, refused past `limit` bytes (manifests, configs, tokens)."""
        out = bytearray()
        async for chunk in self.chunks():
            out += chunk
            if len(out) > limit:
                raise TransportError(f"{self.url}: response larger than {limit} bytes")
        return bytes(out)


def _why(e: BaseException) -> str:
    # trio's happy eyeballs: "all attempts to connect ... failed", the causes in a group
    cause = e.__cause__
    while isinstance(cause, BaseExceptionGroup) and cause.exceptions:
        cause = cause.exceptions[0]
    if isinstance(cause, OSError):
        e = cause
    if isinstance(e, ConnectionRefusedError):
        return "connect: connection refused"
    if isinstance(e, OSError) and e.strerror:
        return e.strerror.lower()
    return str(e) or type(e).__name__


def _x509(e: ssl.SSLCertVerificationError) -> str:
    """Go's crypto/x509 wording for OpenSSL's verification failures."""
    why = (e.verify_message or str(e)).lower()
    if "issuer" in why or "self-signed" in why or "self signed" in why:
        return "certificate signed by unknown authority"
    if "expired" in why:
        return "certificate has expired or is not yet valid"
    return why


class HttpClient:
    """Connections to registries, kept alive per origin and reused."""

    def __init__(self, ssl_context: ssl.SSLContext | None = None,
                 tls_for: Callable[[str, bool], ssl.SSLContext] | None = None) -> None:
        """`tls_for(netloc, verify)` builds a host's context (certs.d's CAs and client
        certificate, `RegistryHosts.tls_context`); blocking, so run in a thread."""
        self._ssl = ssl_context
        self._tls_for = tls_for
        self._unverified: ssl.SSLContext | None = None
        self._idle: dict[tuple[str, str, int, bool], list[_Conn]] = {}
        # insecure registries' origins (`host:port`) that answered TLS in plain HTTP:
        # spoken to in plain HTTP at once next time (not one failed handshake per
        # pull and push); forgotten when plain HTTP fails there
        self.plain_http: set[str] = set()

    def _tls(self, verify: bool) -> ssl.SSLContext:
        if not verify:
            if self._unverified is None:
                ctx = ssl.create_default_context()
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
                self._unverified = ctx
            return self._unverified
        if self._ssl is None:
            self._ssl = ssl.create_default_context()
        return self._ssl

    async def _context(self, netloc: str, verify: bool) -> ssl.SSLContext:
        if self._tls_for is None:
            return self._tls(verify)
        return await trio.to_thread.run_sync(self._tls_for, netloc, verify)

    async def _connect(self, scheme: str, host: str, port: int, url: str, method: str,
                       verify: bool = True, netloc: str = "") -> _Conn:
        ctx: ssl.SSLContext | None = None
        if scheme == "https":
            try:
                ctx = await self._context(netloc or host, verify)
            except (OSError, ValueError, ssl.SSLError) as e:
                raise TransportError(f'{method.title()} "{url}": certs.d: {e}') from None
        try:
            with trio.fail_after(CONNECT_TIMEOUT):
                tcp = await trio.open_tcp_stream(host, port)
                stream: trio.abc.Stream = tcp
                if scheme == "https":
                    assert ctx is not None
                    tls = trio.SSLStream(tcp, ctx, server_hostname=host,
                                         https_compatible=True)
                    await tls.do_handshake()
                    stream = tls
        except trio.TooSlowError:
            raise TransportError(
                f'{method.title()} "{url}": dial tcp {host}:{port}: i/o timeout'
            ) from None
        except socket.gaierror:
            raise TransportError(
                f'{method.title()} "{url}": dial tcp: lookup {host}: no such host'
            ) from None
        except (OSError, trio.BrokenResourceError) as e:
            cause = e.__cause__ if isinstance(e, trio.BrokenResourceError) else e
            if isinstance(cause, ssl.SSLCertVerificationError):
                raise TransportError(
                    f'{method.title()} "{url}": tls: failed to verify certificate: '
                    f"x509: {_x509(cause)}") from None
            if isinstance(cause, ssl.SSLError):
                raise TransportError(f'{method.title()} "{url}": tls: {cause}') from None
            raise TransportError(
                f'{method.title()} "{url}": dial tcp {host}:{port}: {_why(cause or e)}'
            ) from None
        return _Conn(stream)

    @asynccontextmanager
    async def request(
        self,
        method: str,
        url: str,
        headers: list[tuple[str, str]] | None = None,
        body: bytes = b"",
        *,
        stream: Callable[[], AsyncIterator[bytes]] | None = None,
        length: int | None = None,
        verify: bool = True,
    ) -> AsyncIterator[Response]:
        """Send one request; yield the response with its body unread.  Leaving the
        block returns the connection to the pool if the body was read to its end.
        A large body comes from `stream()` (called once per attempt), `length` bytes.
        `verify=False` accepts any certificate (an insecure registry's)."""
        parts = urlsplit(url)
        scheme = parts.scheme
        host = parts.hostname or ""
        port = parts.port or (443 if scheme == "https" else 80)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        key = (scheme, host, port, verify)
        hdrs = [
            ("Host", parts.netloc),
            ("User-Agent", USER_AGENT),
            *(headers or []),
        ]
        if stream is not None:
            hdrs.append(("Content-Length", str(length or 0)))
        elif body or method in ("PUT", "POST", "PATCH"):
            hdrs.append(("Content-Length", str(len(body))))
        idle = self._idle.get(key, [])
        conn: _Conn | None = None
        while conn is None:
            fresh = not idle
            conn = idle.pop() if idle else await self._connect(
                scheme, host, port, url, method, verify, parts.netloc
            )
            try:
                await conn.send(h11.Request(method=method, target=target, headers=hdrs))
                if stream is not None:
                    async for chunk in stream():
                        await conn.send(h11.Data(data=chunk))
                elif body:
                    await conn.send(h11.Data(data=body))
                await conn.send(h11.EndOfMessage())
                event = await conn.next_event()
            except (OSError, trio.BrokenResourceError, h11.RemoteProtocolError,
                    trio.TooSlowError) as e:
                await trio.aclose_forcefully(conn.stream)
                if not fresh:  # a kept-alive connection the server closed meanwhile
                    conn = None
                    continue
                raise TransportError(f'{method.title()} "{url}": {_why(e)}') from None
        if not isinstance(event, h11.Response):
            await trio.aclose_forcefully(conn.stream)
            raise TransportError(f'{method.title()} "{url}": no response')
        resp = Response(
            method=method,
            url=url,
            status=event.status_code,
            reason=event.reason.decode("latin-1"),
            headers=[(k.decode("latin-1").lower(), v.decode("latin-1"))
                     for k, v in event.headers],
            _conn=conn,
        )
        if method == "HEAD":
            resp._done = True
            # h11 knows a HEAD response has no body; consume its EndOfMessage.
            try:
                while not isinstance(await conn.next_event(), h11.EndOfMessage):
                    pass
            except (OSError, trio.BrokenResourceError, h11.RemoteProtocolError):
                pass
        try:
            yield resp
        finally:
            if resp._done and conn.reusable():
                conn.proto.start_next_cycle()
                pool = self._idle.setdefault(key, [])
                if len(pool) < _POOL_PER_ORIGIN:
                    pool.append(conn)
                else:
                    await trio.aclose_forcefully(conn.stream)
            else:
                await trio.aclose_forcefully(conn.stream)

    async def aclose(self) -> None:
        for conns in self._idle.values():
            for c in conns:
                await trio.aclose_forcefully(c.stream)
        self._idle.clear()
