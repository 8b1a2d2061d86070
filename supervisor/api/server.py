"""The I/O edge: serve a `Router` on a Unix socket with the sans-I/O `http` core.

One task per connection, keep-alive loop; fixed bodies carry Content-Length,
`StreamResponse`s are sent chunked (HTTP/1.1; close-delimited for HTTP/1.0) and
cancelled when the peer goes away; `HijackResponse`s get the raw stream.

`Limits` bound what a client can hold (slowloris): a request head must arrive within
`header_timeout` of its first byte (of the accept, for a connection's first request:
Go's ReadHeaderTimeout), a keep-alive connection may sit `idle_timeout` between
requests, a body may pause `body_timeout` between reads; each is a trio cancel scope
around the socket read, so once a response has begun (logs -f, events, wait, stats,
attach) nothing times out.  A partial head or body gets a 408, an idle connection
is just closed (a 408 there would race the client's next request).  Connections are
counted per client process (SO_PEERCRED pid: on a root-only socket every client has
uid 0, so a uid says nothing) and in all; past either bound a new connection gets a
429/503 naming the limit at once and is closed.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import socket as _stdsocket
import stat
import struct
import sys
import termios
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import structlog
import trio

from supervisor.httpcore.server import (
    ConnectionClosed,
    Data,
    EndOfMessage,
    Event,
    NeedData,
    ProtocolError,
    Request,
    ServerConnection,
    format_response_head,
    keep_alive,
)

from .router import (
    ApiRequest,
    ApiResponse,
    FixedResponse,
    HijackResponse,
    Router,
    StreamResponse,
    common_headers,
    error_response,
)

log = structlog.get_logger()

RECEIVE_SIZE: Final = 64 * 1024
DRAIN_LIMIT: Final = 1 << 20  # unread request body we skip to keep a connection alive
_ACCEPT_RETRY_ERRNOS: Final = {errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS}

_GONE = (trio.BrokenResourceError, trio.ClosedResourceError)
LINGER: Final = 1.0  # how long a refused connection's request is read and dropped
#: how long an error sent at once after a hijacked head waits for the head to be read
PEER_CATCH_UP: Final = 0.25


STREAM_SNDBUF = 4 << 20
FIXED_INLINE: Final = 128 * 1024  # a fixed body beyond this gets the bigger buffer too


def _grow_send_buffer(stream: trio.abc.Stream) -> None:
    """A streamed body (`logs` of a big log) queues up to 4 MiB in the kernel, not the
    default ~200 KiB: the daemon hands a MiB blob over in one write and the client
    reads on while the daemon waits for a CPU (a wake-up per 4 MiB, not per 200 KiB).
    Room is taken only as bytes wait; SO_SNDBUFFORCE as root, else up to wmem_max."""
    sock = getattr(stream, "socket", None)
    if sock is None:
        return
    for opt in (getattr(_stdsocket, "SO_SNDBUFFORCE", None), _stdsocket.SO_SNDBUF):
        if opt is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(_stdsocket.SOL_SOCKET, opt, STREAM_SNDBUF)
                return


@dataclass(frozen=True)
class Limits:
    """Timeouts (seconds) and connection bounds of the API socket (daemon settings
    `api-header-timeout`, `api-idle-timeout`, `api-body-timeout`,
    `api-max-client-connections`, `api-max-connections`).

    Why these defaults: dockerd sets ReadHeaderTimeout to 5 minutes, and Go uses it
    for idle keep-alive connections too: 5 minutes idle here.  A head takes a client
    milliseconds to send, so 60 s (nginx's client_header_timeout) leaves room for any
    client and none for a slowloris; a body may stall 60 s between reads (nginx's
    client_body_timeout).  docker compose holds a few connections per service
    (attach, wait, events): 256 per process is far above that; 2048 in all stays
    under the daemon's open-file limit with room for containers' pipes.
    """

    header_timeout: float = 60.0
    idle_timeout: float = 300.0
    body_timeout: float = 60.0
    per_client: int = 256
    total: int = 2048


def peer_pid(stream: trio.SocketStream) -> int:
    """The connecting process (SO_PEERCRED); 0 if the kernel does not say."""
    try:
        raw = stream.socket.getsockopt(
            _stdsocket.SOL_SOCKET, _stdsocket.SO_PEERCRED, struct.calcsize("3i")
        )
    except OSError:
        return 0
    pid, _uid, _gid = struct.unpack("3i", raw)
    return int(pid)


class _PrefixedStream(trio.abc.HalfCloseableStream):
    """The hijacked socket, handing out bytes already buffered by the parser first."""

    def __init__(self, inner: trio.SocketStream, prefix: bytes) -> None:
        self.inner = inner
        self._prefix = prefix

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        if self._prefix:
            await trio.lowlevel.checkpoint()
            n = len(self._prefix) if max_bytes is None else max_bytes
            data, self._prefix = self._prefix[:n], self._prefix[n:]
            return data
        return await self.inner.receive_some(max_bytes)

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self.inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def send_eof(self) -> None:
        await self.inner.send_eof()

    async def aclose(self) -> None:
        await self.inner.aclose()

    async def peer_caught_up(self, limit: float = PEER_CATCH_UP) -> None:
        """Return once the client has read what was sent (the socket's send queue,
        SIOCOUTQ, is empty), or after `limit` seconds.

        docker-py reads a hijacked answer's head through a buffered reader, then
        the stream from the raw socket: bytes that arrived with the head are in
        that buffer and lost.  Docker's own answers follow the head only after a
        runtime round trip; ours can follow at once (an exec refused by the
        daemon's own check of its command), so such an answer waits for the head
        to be read first.  There is no event for it: a short bounded wait, on
        error paths only."""
        fd = self.inner.socket.fileno()
        buf = bytearray(4)
        with trio.move_on_after(limit):
            while True:
                try:
                    fcntl.ioctl(fd, termios.TIOCOUTQ, buf)
                except OSError:
                    return
                if int.from_bytes(buf, sys.byteorder) == 0:
                    return
                await trio.sleep(0.001)


class _SocketBody:
    """`BodySource` reading the current request's body off the connection."""

    def __init__(self, conn: _Connection) -> None:
        self._conn = conn
        self.done = trio.Event()

    async def receive(self) -> bytes:
        while not self.done.is_set():
            event = await self._conn.next_body_event()
            if isinstance(event, Data):
                if event.data:
                    return event.data
            elif isinstance(event, EndOfMessage):
                self.done.set()
            else:  # pragma: no cover - the parser never does this mid-body
                raise ProtocolError(f"unexpected {event!r} in request body")
        return b""


class _Connection:
    def __init__(
        self,
        stream: trio.SocketStream,
        router: Router,
        limits: Limits = Limits(),  # noqa: B008
    ) -> None:
        self.stream = stream
        self.router = router
        self.limits = limits
        self.conn = ServerConnection()

    async def _receive(self) -> None:
        try:
            data = await self.stream.receive_some(RECEIVE_SIZE)
        except _GONE:
            data = b""
        self.conn.feed(data)

    def _receive_now(self) -> bool:
        """What the client already sent, read without waiting (False: nothing yet).

        A connection's first request is read this way before waiting: a client sends
        its request right after connecting, and trio's `receive_some` yields after a
        read that succeeds, so the handler would run one pass of the event loop later,
        behind whatever else is runnable then (50 crash-looping containers' restart
        steps): each pass is one more wait in a request's latency.  The response's
        send still yields, so a connection cannot keep the loop to itself.  Any error
        is left to `_receive` (False), which reports it as trio does."""
        try:
            data = os.read(self.stream.socket.fileno(), RECEIVE_SIZE)
        except OSError:  # BlockingIOError: nothing yet; others: `_receive` says what
            return False
        if not data:
            return False  # EOF: `_receive` sees it too
        self.conn.feed(data)
        return True

    async def next_body_event(self) -> Event:
        """The next event of the request body; a pause of `body_timeout` is a 408."""
        while True:
            event = self.conn.next_event()
            if not isinstance(event, NeedData):
                return event
            cont = self.conn.take_continue()
            if cont:
                await self.stream.send_all(cont)
            with trio.move_on_after(self.limits.body_timeout):
                await self._receive()
                continue
            self.conn.timed_out()
            log.debug("api.body_timeout", timeout=self.limits.body_timeout)
            raise ProtocolError("timed out reading the request body", 408)

    async def next_request(self, first: bool) -> Event | None:
        """The next request head; None when the client sent none in time.

        Idle (nothing of a head received) the wait is `idle_timeout`, but for a
        connection's first request; from a head's first byte, `header_timeout`."""
        idle = not first
        with trio.move_on_after(
            self.limits.idle_timeout if idle else self.limits.header_timeout
        ) as scope:
            while True:
                event = self.conn.next_event()
                if not isinstance(event, NeedData):
                    return event
                if idle and self.conn.head_started:
                    idle = False
                    scope.deadline = trio.current_time() + self.limits.header_timeout
                if first:
                    first = False  # one read without waiting per connection
                    if self._receive_now():
                        continue
                await self._receive()
        partial = self.conn.head_started
        self.conn.timed_out()
        if not partial:
            log.debug("api.idle_timeout", timeout=self.limits.idle_timeout)
            return None
        log.debug("api.header_timeout", timeout=self.limits.header_timeout)
        with trio.move_on_after(LINGER):  # a client that reads nothing gets no 408
            await self._send_fixed_error(408, "timed out reading the request head")
        return None

    async def run(self) -> None:
        first = True
        try:
            while True:
                try:
                    event = await self.next_request(first)
                except ProtocolError as e:
                    log.debug("api.bad_request", error=e.message)
                    await self._send_fixed_error(e.status, e.message)
                    return
                first = False
                if event is None or isinstance(event, ConnectionClosed):
                    return
                assert isinstance(event, Request), event
                if not await self._exchange(event):
                    return
        except _GONE:
            pass
        finally:
            await trio.aclose_forcefully(self.stream)

    async def _send_fixed_error(self, status: int, message: str) -> None:
        resp = error_response(status, message)
        assert isinstance(resp, FixedResponse)
        headers = [*common_headers(), ("Content-Type", "application/json")]
        headers += [("Content-Length", str(len(resp.body))), ("Connection", "close")]
        with contextlib.suppress(*_GONE):
            await self.stream.send_all(self.conn.send_response(status, headers) + resp.body)

    # -- one request/response exchange --------------------------------------------
    async def _exchange(self, request: Request) -> bool:
        started = time.monotonic()
        body = _SocketBody(self)
        if not self.conn.body_pending:
            await body.receive()  # consume the EndOfMessage of a body-less request
        req = ApiRequest(
            request.method, request.target, request.headers, body, http_version=request.http_version
        )
        resp = await self.router.dispatch(req)
        status = resp.status
        try:
            if isinstance(resp, HijackResponse):
                status = 101 if request.wants_upgrade else 200
                await self._hijack(request, body, resp)
                return False
            if isinstance(resp, StreamResponse):
                return await self._stream(request, body, resp)
            assert isinstance(resp, FixedResponse), resp
            return await self._fixed(request, body, resp)
        finally:
            self.router.observe(req.method, req.route, status, time.monotonic() - started)

    async def _finish_body(self, body: _SocketBody) -> bool:
        """Skip what the handler left of the body; False if the connection can't go on."""
        if body.done.is_set():
            return not self.conn.broken
        if self.conn.continue_owed or self.conn.broken:
            return False  # the client waits for our word before sending: close instead
        drained = 0
        try:
            while drained <= DRAIN_LIMIT:
                chunk = await body.receive()
                if not chunk:
                    return True
                drained += len(chunk)
        except ProtocolError:
            pass
        return False

    def _headers(self, resp: ApiResponse, content_type: str | None) -> list[tuple[str, str]]:
        names = {name.lower() for name, _ in resp.headers}
        headers = [(n, v) for n, v in common_headers() if n.lower() not in names]
        if content_type is not None and "content-type" not in names:
            headers.append(("Content-Type", content_type))
        headers += resp.headers
        return headers

    async def _fixed(self, request: Request, body: _SocketBody, resp: FixedResponse) -> bool:
        keep = await self._finish_body(body) and keep_alive(request, resp.headers)
        headers = self._headers(resp, resp.content_type)
        no_body = resp.status in (204, 304) or resp.status < 200
        if not no_body:
            headers.append(("Content-Length", str(len(resp.body))))
        if not keep:
            headers.append(("Connection", "close"))
        elif request.http_version == "1.0":
            headers.append(("Connection", "keep-alive"))
        payload = self.conn.send_response(resp.status, headers)
        if request.method != "HEAD" and not no_body:
            payload += resp.body
        if len(payload) > FIXED_INLINE:
            # a listing of 1,000 containers is ~700 KB: in the default ~200 KB of room
            # it goes in 4 writes, each after a wait for the client's read (one write
            # at 200: ~140 KB, strace)
            _grow_send_buffer(self.stream)
        await self.stream.send_all(payload)
        return keep

    async def _stream(self, request: Request, body: _SocketBody, resp: StreamResponse) -> bool:
        chunked = request.http_version == "1.1"
        headers = self._headers(resp, resp.content_type)
        if chunked:
            headers.append(("Transfer-Encoding", "chunked"))
        else:
            headers.append(("Connection", "close"))
        iterator = aiter(resp.body)
        completed = False
        try:
            await self.stream.send_all(self.conn.send_response(resp.status, headers))
            if request.method == "HEAD":
                return False
            _grow_send_buffer(self.stream)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._watch_peer, body, nursery.cancel_scope)
                try:
                    async for chunk in iterator:
                        if chunk:
                            await self.stream.send_all(self.conn.send_data(chunk))
                    if end := self.conn.send_end():  # the last chunk (close-delimited: none)
                        await self.stream.send_all(end)
                    completed = True
                except _GONE:
                    log.debug("api.stream_client_gone", path=request.path)
                except Exception:
                    log.exception("api.stream_failed", method=request.method, path=request.path)
                finally:
                    nursery.cancel_scope.cancel()
        finally:
            await _aclose_iterator(iterator)
        if not completed or self.conn.eof:
            return False
        return chunked and keep_alive(request, resp.headers) and await self._finish_body(body)

    async def _watch_peer(self, body: _SocketBody, scope: trio.CancelScope) -> None:
        """Cancel `scope` when the client goes away while the producer is waiting."""
        await body.done.wait()  # until then the body reader owns the socket
        while not self.conn.eof:
            await self._receive()  # pipelined bytes stay buffered for the next request
        log.debug("api.stream_peer_eof")
        scope.cancel()

    async def _hijack(self, request: Request, body: _SocketBody, resp: HijackResponse) -> None:
        if not await self._finish_body(body):
            await self._send_fixed_error(400, "request body not consumed before hijack")
            return
        try:  # the core decides the head (101 UPGRADED, 101 websocket, 200) or refuses
            head = self.conn.switch_protocols(self._headers(resp, resp.content_type), resp.upgrade)
        except ProtocolError as e:
            await self._send_fixed_error(e.status, e.message)
            return
        await self.stream.send_all(head)
        raw = _PrefixedStream(self.stream, self.conn.take_trailing_data())
        try:
            await resp.handler(raw)
        except _GONE:
            log.debug("api.hijack_client_gone", path=request.path)
        except Exception:
            log.exception("api.hijack_failed", method=request.method, path=request.path)


async def _aclose_iterator(iterator: AsyncIterator[bytes]) -> None:
    aclose = getattr(iterator, "aclose", None)
    if aclose is None:
        return
    with trio.move_on_after(5) as scope:
        scope.shield = True
        try:
            await aclose()
        except Exception:
            log.exception("api.stream_close_failed")


def _prepare_path(path: Path) -> None:
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True)
        os.chmod(path.parent, 0o700)
    try:
        st = path.lstat()
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise FileExistsError(f"{path} exists and is not a socket")
    probe = _stdsocket.socket(_stdsocket.AF_UNIX, _stdsocket.SOCK_STREAM)
    try:
        probe.connect(str(path))
    except OSError:
        path.unlink(missing_ok=True)  # stale: nobody listens
    else:
        raise OSError(errno.EADDRINUSE, f"{path}: another daemon is listening there")
    finally:
        probe.close()


async def _refuse(stream: trio.SocketStream, status: int, message: str) -> None:
    """Answer a connection over a bound at once, then close it.

    The request is read and dropped for a moment after the answer: closing a Unix
    socket with unread data resets it, and the client would see ECONNRESET instead."""
    resp = error_response(status, message)
    assert isinstance(resp, FixedResponse)
    headers = [*common_headers(), ("Content-Type", "application/json")]
    headers += [("Content-Length", str(len(resp.body))), ("Connection", "close")]
    try:
        with contextlib.suppress(*_GONE, OSError), trio.move_on_after(LINGER):
            await stream.send_all(format_response_head(status, None, headers) + resp.body)
            await stream.send_eof()
            while await stream.receive_some(RECEIVE_SIZE):
                pass
    finally:
        await trio.aclose_forcefully(stream)


class _Admission:
    """Connections held per client process and in all."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.by_pid: Counter[int] = Counter()
        self.total = 0

    def refusal(self, pid: int) -> tuple[int, str] | None:
        if self.total >= self.limits.total:
            return 503, (
                f"too many API connections: {self.total} open, the limit is "
                f"{self.limits.total} (api-max-connections)"
            )
        if pid and self.by_pid[pid] >= self.limits.per_client:
            return 429, (
                f"too many API connections from process {pid}: the limit is "
                f"{self.limits.per_client} per client (api-max-client-connections)"
            )
        return None

    async def serve(self, conn: _Connection, pid: int) -> None:
        self.by_pid[pid] += 1
        self.total += 1
        try:
            await conn.run()
        except Exception:
            # A bug on one connection (a parser or handler exception that escaped the
            # 400/500 paths) ends that connection, never the server's nursery and with
            # it the daemon; the fuzz suite found two such requests.
            log.exception("api.connection_failed")
        finally:
            self.total -= 1
            self.by_pid[pid] -= 1
            if not self.by_pid[pid]:
                del self.by_pid[pid]


async def serve_unix(
    path: Path | str,
    router: Router,
    *,
    backlog: int = 128,
    limits: Limits = Limits(),  # noqa: B008 - frozen
    task_status: trio.TaskStatus[Path] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve `router` on the Unix socket `path` (mode 0600) until cancelled."""
    path = Path(path)
    admission = _Admission(limits)
    _prepare_path(path)
    sock = trio.socket.socket(trio.socket.AF_UNIX, trio.socket.SOCK_STREAM)
    ino: int | None = None
    try:
        await sock.bind(str(path))
        ino = path.lstat().st_ino
        os.chmod(path, 0o600)
        sock.listen(backlog)
        listener = trio.SocketListener(sock)
        async with listener, trio.open_nursery() as nursery:
            log.info("api.listening", socket=str(path))
            task_status.started(path)
            while True:
                try:
                    stream = await listener.accept()
                except OSError as e:
                    if e.errno not in _ACCEPT_RETRY_ERRNOS:
                        raise
                    log.error("api.accept_failed", error=str(e))
                    await trio.sleep(0.1)
                    continue
                pid = peer_pid(stream)
                refusal = admission.refusal(pid)
                if refusal is not None:
                    log.debug("api.connection_refused", pid=pid, reason=refusal[1])
                    nursery.start_soon(_refuse, stream, *refusal)
                    continue
                nursery.start_soon(admission.serve, _Connection(stream, router, limits), pid)
    finally:
        sock.close()
        if ino is not None:
            with contextlib.suppress(OSError):
                if path.lstat().st_ino == ino:
                    path.unlink()
