"""Published ports: a userland relay in the daemon, TCP and UDP.

A listener on the host (every IPv4 address by default, so 127.0.0.1 and the host's own
addresses both work without touching the host's firewall or `route_localnet`) relays
each connection or datagram flow to the container's address.  Listeners are bound
synchronously when the container starts, so a port in use fails the start before the
container runs; the relays run in the daemon's nursery under one cancel scope per
container and die with it (and with the daemon: a kill -9 leaves no listener).
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import socket

import trio

from supervisor.errors import Conflict
from supervisor.network.ports import PortRequest, bind_address

BUFFER = 256 * 1024
UDP_IDLE = 90.0  # Docker's userland-proxy UDP flow timeout (seconds)


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


async def serve(listener: socket.socket, proto: str, target: tuple[str, int]) -> None:
    """Relay until cancelled; owns (and closes) the listener."""
    sock = trio.socket.from_stdlib_socket(listener)
    with sock:
        if proto == "tcp":
            await _serve_tcp(sock, target)
        else:
            await _serve_udp(sock, target)


async def _serve_tcp(sock: trio.socket.SocketType, target: tuple[str, int]) -> None:
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
            n.start_soon(_relay_tcp, trio.SocketStream(conn), target)


async def _relay_tcp(client: trio.SocketStream, target: tuple[str, int]) -> None:
    async with client:
        try:
            upstream = await trio.open_tcp_stream(*target)
        except OSError:
            return  # nothing listens in the container: the client sees a closed connection
        async with upstream, trio.open_nursery() as n:
            n.start_soon(_pump, client, upstream)
            n.start_soon(_pump, upstream, client)


async def _pump(src: trio.SocketStream, dst: trio.SocketStream) -> None:
    with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        while data := await src.receive_some(BUFFER):
            await dst.send_all(data)
        await dst.send_eof()


async def _serve_udp(sock: trio.socket.SocketType, target: tuple[str, int]) -> None:
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
                flow = trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                await flow.connect(target)
                flows[peer] = flow
                n.start_soon(replies, flow, peer)
            with contextlib.suppress(OSError):
                await flow.send(data)
