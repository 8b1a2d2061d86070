"""The published-port relay on its own: bulk data, half-close either way, UDP, and a
cancel that closes every relayed connection and the listener.  Only 127.0.0.1."""

from __future__ import annotations

import hashlib
import socket
from collections.abc import Awaitable, Callable
from functools import partial

import pytest
import trio
import trio.testing

from supervisor.network import proxy
from supervisor.network.ports import PortRequest

Handler = Callable[[trio.SocketStream], Awaitable[None]]


async def read_all(stream: trio.SocketStream) -> bytes:
    chunks = []
    while data := await stream.receive_some(1 << 20):
        chunks.append(data)
    return b"".join(chunks)


async def start_upstream(nursery: trio.Nursery, handler: Handler) -> int:
    """A TCP server on 127.0.0.1 (the container's side); its port."""
    listeners = await nursery.start(partial(trio.serve_tcp, handler, 0, host="127.0.0.1"))
    return int(listeners[0].socket.getsockname()[1])


async def start_relay(nursery: trio.Nursery, proto: str, target_port: int) -> int:
    """proxy.serve on a fresh 127.0.0.1 port towards 127.0.0.1:target_port; its port."""
    listener = proxy.bind(PortRequest(target_port, proto, "127.0.0.1", 0, 0))
    port = int(listener.getsockname()[1])
    nursery.start_soon(proxy.serve, listener, proto, proxy.Upstream(("127.0.0.1", target_port)))
    return port


async def closed_by_peer(stream: trio.SocketStream) -> bool:
    """True once the other end closed: a clean EOF or a reset."""
    try:
        return await stream.receive_some(10) == b""
    except trio.BrokenResourceError:
        return True


def payload(size: int) -> bytes:
    block = hashlib.sha256(b"corral").digest() * 2048  # 64 KiB, not all one byte
    return (block * (size // len(block) + 1))[:size]


async def test_bulk_data_and_client_half_close() -> None:
    """The client's EOF reaches the container, whose answer still comes back."""

    async def digest(stream: trio.SocketStream) -> None:
        data = await read_all(stream)  # ends only if the relay passed the EOF on
        await stream.send_all(f"{len(data)} {hashlib.sha256(data).hexdigest()}".encode())

    sent = payload(24 * 1024 * 1024 + 123)
    with trio.fail_after(30):
        async with trio.open_nursery() as n:
            port = await start_relay(n, "tcp", await start_upstream(n, digest))
            client = await trio.open_tcp_stream("127.0.0.1", port)
            async with client:
                await client.send_all(sent)
                await client.send_eof()
                answer = await read_all(client)
            assert answer.decode() == f"{len(sent)} {hashlib.sha256(sent).hexdigest()}"
            n.cancel_scope.cancel()


async def test_container_half_close_first_client_keeps_sending() -> None:
    """The container says its piece and shuts its write side; the client sees EOF and
    may still send, and all of it arrives."""
    received = trio.Event()
    got: list[bytes] = []

    async def greet_then_listen(stream: trio.SocketStream) -> None:
        await stream.send_all(b"hello")
        await stream.send_eof()
        got.append(await read_all(stream))
        received.set()

    with trio.fail_after(30):
        async with trio.open_nursery() as n:
            port = await start_relay(n, "tcp", await start_upstream(n, greet_then_listen))
            client = await trio.open_tcp_stream("127.0.0.1", port)
            async with client:
                assert await read_all(client) == b"hello"  # EOF passed on to the client
                await client.send_all(payload(3 * 1024 * 1024))
                await client.send_eof()
                await received.wait()
            assert got == [payload(3 * 1024 * 1024)]
            n.cancel_scope.cancel()


async def test_nothing_listening_in_the_container_closes_the_client() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]  # bound, never listening: connect is refused
        with trio.fail_after(10):
            async with trio.open_nursery() as n:
                port = await start_relay(n, "tcp", dead_port)
                client = await trio.open_tcp_stream("127.0.0.1", port)
                async with client:
                    assert await closed_by_peer(client)
                n.cancel_scope.cancel()


async def test_cancel_closes_relayed_connections_and_the_listener() -> None:
    """What the engine does when a container stops: every connection and the listening
    socket are closed, even with data in flight and a peer that never closes."""
    flowing = trio.Event()

    async def hold(stream: trio.SocketStream) -> None:
        await stream.send_all(b"x")
        await trio.sleep_forever()

    with trio.fail_after(10):
        async with trio.open_nursery() as outer:
            port_up = await start_upstream(outer, hold)
            relay_scope = trio.CancelScope()

            async def relay() -> None:
                with relay_scope:
                    async with trio.open_nursery() as n:
                        relay_port.append(await start_relay(n, "tcp", port_up))
                        flowing.set()

            relay_port: list[int] = []
            outer.start_soon(relay)
            await flowing.wait()
            client = await trio.open_tcp_stream("127.0.0.1", relay_port[0])
            async with client:
                assert await client.receive_some(1) == b"x"
                relay_scope.cancel()
                assert await closed_by_peer(client)
            with pytest.raises(OSError):
                await trio.open_tcp_stream("127.0.0.1", relay_port[0])
            outer.cancel_scope.cancel()


async def test_udp_round_trip() -> None:
    with trio.fail_after(10):
        server = trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        await server.bind(("127.0.0.1", 0))
        with server:
            async with trio.open_nursery() as n:
                port = await start_relay(n, "udp", server.getsockname()[1])
                client = trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                with client:
                    await client.sendto(b"ping", ("127.0.0.1", port))
                    data, peer = await server.recvfrom(100)
                    assert data == b"ping"
                    await server.sendto(b"pong", peer)
                    assert (await client.recvfrom(100))[0] == b"pong"
                n.cancel_scope.cancel()


async def test_switched_upstream_new_connections_go_to_it_open_ones_drain_from_the_old() -> None:
    """A rollout's switch: accepted-after connections reach the new upstream, one open
    before keeps talking to the old one to its end, and `drained` waits for it."""

    def named(name: bytes) -> Handler:
        async def answer(stream: trio.SocketStream) -> None:
            while data := await stream.receive_some(100):
                await stream.send_all(name + b":" + data)

        return answer

    with trio.fail_after(30):
        async with trio.open_nursery() as n:
            old_port = await start_upstream(n, named(b"old"))
            new_port = await start_upstream(n, named(b"new"))
            listener = proxy.bind(PortRequest(old_port, "tcp", "127.0.0.1", 0, 0))
            port = int(listener.getsockname()[1])
            upstream = proxy.Upstream(("127.0.0.1", old_port))
            n.start_soon(proxy.serve, listener, "tcp", upstream)
            held = await trio.open_tcp_stream("127.0.0.1", port)
            await held.send_all(b"1")
            assert await held.receive_some(100) == b"old:1"
            previous = upstream.switch(("127.0.0.1", new_port))
            assert previous == ("127.0.0.1", old_port)
            async with await trio.open_tcp_stream("127.0.0.1", port) as fresh:
                await fresh.send_all(b"2")
                assert await fresh.receive_some(100) == b"new:2"
            await held.send_all(b"3")  # the open connection still reaches the old one
            assert await held.receive_some(100) == b"old:3"
            assert upstream.open_to(previous) == 1
            drained = trio.Event()

            async def drain() -> None:
                await upstream.drained(previous)
                drained.set()

            n.start_soon(drain)
            await trio.testing.wait_all_tasks_blocked()
            assert not drained.is_set()
            await held.aclose()
            await drained.wait()
            assert upstream.open_to(previous) == 0
            n.cancel_scope.cancel()
