"""Published ports: a userland relay in the daemon, TCP and UDP.

A listener on the host (every IPv4 address by default, so 127.0.0.1 and the host's own
addresses both work without touching the host's firewall or `route_localnet`) relays
each connection or datagram flow to the container's address.  Listeners are bound
synchronously when the container starts, so a port in use fails the start before the
container runs; the relays run in the daemon's nursery under one cancel scope per
container and die with it (and with the daemon: a kill -9 leaves no listener).

TCP bytes never enter Python: each direction is splice(2)d socket -> pipe (1 MiB) ->
socket, driven by trio's epoll (`wait_readable`/`wait_writable`), about one splice per
MiB.  Measured (1 GiB to 127.0.0.1:PORT vs straight to the container's address, 2 CPUs
shared with other test runs, three A/B rounds of six pairs): the daemon spends
~0.3 s of CPU per GiB either way, nearly all of it the kernel's TCP work for the second
connection (Python's part ~0.07 s with splice, about the same with 256 KiB userland
copies); the share of direct throughput was 0.65-0.79 before and 0.62-0.81 after, the
same within the noise.  What is left is the price of a second TCP connection, which
only kernel DNAT avoids: this host's own TCP connections over IPv4 take DNAT rules
(network/nat.py, with its guard for `route_localnet`); the relay serves the rest and
holds every port.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import ipaddress
import os
import socket
import struct

import trio

from supervisor.errors import Conflict
from supervisor.network.ports import PortRequest, bind_address
from supervisor.runtime.fds import OwnedFd, close_all

PIPE_SIZE = 1024 * 1024  # the kernel's default fs.pipe-max-size: fewer, bigger splices
F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
SPLICE_FLAGS = os.SPLICE_F_MOVE | os.SPLICE_F_NONBLOCK
UDP_IDLE = 90.0  # Docker's userland-proxy UDP flow timeout (seconds)


class Upstream:
    """Where a listener's connections go, switchable while it serves.

    A connection takes `target` when it is accepted (synchronously, so a switch never
    splits one) and holds it to the end; `drained(t)` waits until none holds `t`.
    While not `ready` (a pod whose readiness failed: Kubernetes sends a Service's
    traffic to ready pods only) new connections are reset and new UDP flows dropped;
    open ones go on, as conntrack keeps a removed endpoint's.
    """

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.ready = True
        self._open: dict[tuple[str, int], int] = {}
        self._changed = trio.Event()

    def switch(self, target: tuple[str, int]) -> tuple[str, int]:
        """New connections go to `target` from now on; returns the previous one."""
        old, self.target = self.target, target
        return old

    def opened(self) -> tuple[str, int]:
        target = self.target
        self._open[target] = self._open.get(target, 0) + 1
        return target

    def closed(self, target: tuple[str, int]) -> None:
        left = self._open.get(target, 0) - 1
        if left > 0:
            self._open[target] = left
        else:
            self._open.pop(target, None)
        self._changed.set()
        self._changed = trio.Event()

    def open_to(self, target: tuple[str, int]) -> int:
        return self._open.get(target, 0)

    async def drained(self, target: tuple[str, int]) -> None:
        """Until no connection to `target` is open (bound it with a cancel scope)."""
        while self._open.get(target):
            await self._changed.wait()


def _family(host_ip: str) -> int:
    return socket.AF_INET6 if ipaddress.ip_address(host_ip).version == 6 else socket.AF_INET


def _bind_one(proto: str, host_ip: str, port: int) -> socket.socket:
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    sock = socket.socket(_family(host_ip), kind)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if kind == socket.SOCK_STREAM:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host_ip, port))
        if kind == socket.SOCK_STREAM:
            sock.listen(1024)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def bind(req: PortRequest) -> socket.socket:
    """The listening socket for one request; a busy port is a Conflict naming it."""
    host_ip = bind_address(req.host_ip)
    ports = [0] if req.host_lo == 0 else list(range(req.host_lo, req.host_hi + 1))
    last: OSError | None = None
    for port in ports:
        try:
            return _bind_one(req.proto, host_ip, port)
        except OSError as exc:
            last = exc
            if exc.errno != errno.EADDRINUSE:
                break
    shown = f"{req.host_lo}" if req.fixed else f"{req.host_lo}-{req.host_hi}"
    if last is not None and last.errno == errno.EADDRINUSE:
        raise Conflict(f"Bind for {host_ip}:{shown} failed: port is already allocated")
    reason = last.strerror if last is not None else "no port"
    raise Conflict(f"failed to bind port {host_ip}:{shown}/{req.proto}: {reason}")


def check_free(req: PortRequest) -> None:
    """At create: refuse a fixed host port something already listens on."""
    if req.fixed:
        bind(req).close()


async def serve(listener: socket.socket, proto: str, target: Upstream) -> None:
    """Relay until cancelled; owns (and closes) the listener."""
    sock = trio.socket.from_stdlib_socket(listener)
    with sock:
        if proto == "tcp":
            await _serve_tcp(sock, target)
        else:
            await _serve_udp(sock, target)


async def _serve_tcp(sock: trio.socket.SocketType, upstream: Upstream) -> None:
    async with trio.open_nursery() as n:
        while True:
            try:
                conn, _addr = await sock.accept()
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    await trio.sleep(0.1)  # out of descriptors: back off rather than spin
                    continue
                if exc.errno in (errno.ECONNABORTED, errno.EPROTO):
                    continue
                raise
            if not upstream.ready:
                _reset(conn)
                continue
            n.start_soon(_relay_tcp, conn, upstream, upstream.opened())


def _reset(conn: trio.socket.SocketType) -> None:
    """Close an accepted connection with a reset (linger on, 0 s): the client is
    refused at once, not handed an empty stream it might wait on."""
    with conn, contextlib.suppress(OSError):
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


async def _relay_tcp(
    client: trio.socket.SocketType, upstream: Upstream, target: tuple[str, int]
) -> None:
    """One connection: both directions spliced until each has seen EOF (a half-close is
    passed on as shutdown(SHUT_WR), the other way keeps flowing); a reset or error
    on either side closes both.  No error of one connection reaches the daemon."""
    try:
        await _relay_to(client, target)
    finally:
        upstream.closed(target)


async def _relay_to(client: trio.socket.SocketType, target: tuple[str, int]) -> None:
    with client:
        try:
            upstream = trio.socket.socket(_family(target[0]), socket.SOCK_STREAM)
        except OSError:
            return  # out of descriptors: this client sees a closed connection
        with upstream:
            try:
                await upstream.connect(target)
                upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                return  # nothing listens in the container: the client sees a closed connection
            async with trio.open_nursery() as n:
                n.start_soon(_pump, client, upstream, n.cancel_scope)
                n.start_soon(_pump, upstream, client, n.cancel_scope)


def _pipe() -> tuple[OwnedFd, OwnedFd]:
    r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    pipe = OwnedFd(r, "relay pipe (read end)"), OwnedFd(w, "relay pipe (write end)")
    with contextlib.suppress(OSError):  # above fs.pipe-max-size: keep the default 64 KiB
        fcntl.fcntl(w, F_SETPIPE_SZ, PIPE_SIZE)
    return pipe


async def _pump(
    src: trio.socket.SocketType, dst: trio.socket.SocketType, both: trio.CancelScope
) -> None:
    """src -> pipe -> dst with splice(2): the bytes never enter this process.

    Each round moves what is there; it waits (epoll, through trio) only on the end that
    blocked: `src` readable when the pipe is empty and `src` had nothing, `dst` writable
    when it took nothing.  A round that moved bytes yields once to the scheduler (no
    connection starves the others, cancellation is seen).
    """
    try:
        r, w = _pipe()
    except OSError:
        both.cancel()  # out of descriptors: this connection goes
        return
    sfd, dfd = src.fileno(), dst.fileno()  # the sockets outlive this task (`_relay_tcp`)
    held = 0  # bytes in the pipe
    eof = False
    try:
        while not eof or held:
            moved = False
            src_dry = False
            if not eof:
                try:
                    n = os.splice(sfd, w.fileno(), PIPE_SIZE, flags=SPLICE_FLAGS)
                except BlockingIOError:
                    src_dry = True  # nothing to read, or the pipe is full
                else:
                    if n == 0:
                        eof = True
                    held += n
                    moved = n > 0
            dst_full = False
            if held:
                try:
                    n = os.splice(r.fileno(), dfd, held, flags=SPLICE_FLAGS)
                except BlockingIOError:
                    dst_full = True
                else:
                    held -= n
                    moved = moved or n > 0
            if dst_full:
                await trio.lowlevel.wait_writable(dst)
            elif src_dry and not held and not moved:
                await trio.lowlevel.wait_readable(src)
            else:
                await trio.lowlevel.checkpoint()
        dst.shutdown(socket.SHUT_WR)
    except OSError:
        both.cancel()  # a reset or a broken pipe: the whole connection goes
    finally:
        close_all(r, w)


async def _serve_udp(sock: trio.socket.SocketType, upstream: Upstream) -> None:
    """Datagram flows: each takes the upstream's target at its first datagram."""
    flows: dict[tuple[object, ...], trio.socket.SocketType] = {}

    async def replies(flow: trio.socket.SocketType, peer: tuple[object, ...]) -> None:
        with flow:
            try:
                while True:
                    with trio.move_on_after(UDP_IDLE) as idle:
                        data = await flow.recv(65535)
                    if idle.cancelled_caught:
                        return
                    await sock.sendto(data, peer)
            except OSError:
                return
            finally:
                flows.pop(peer, None)

    async with trio.open_nursery() as n:
        while True:
            try:
                data, peer = await sock.recvfrom(65535)
            except OSError:
                continue
            flow = flows.get(peer)
            if flow is None:
                if not upstream.ready:
                    continue  # no new flow to a pod that is not ready
                target = upstream.target
                try:
                    flow = trio.socket.socket(_family(target[0]), socket.SOCK_DGRAM)
                except OSError:
                    continue  # out of descriptors: this datagram is dropped
                try:
                    await flow.connect(target)
                except OSError:
                    flow.close()
                    continue
                flows[peer] = flow
                n.start_soon(replies, flow, peer)
            with contextlib.suppress(OSError):
                await flow.send(data)
