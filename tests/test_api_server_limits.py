"""The API socket's timeouts and connection bounds (issue 12, item 6), in process.

trio's autojump clock moves time past each timeout as soon as every task waits, so
these tests never wait in real time (pytest-trio uses the clock a test itself asks
for: each test names `autojump_clock`); the daemon-level test with 500 half-sent heads
is in `test_api_slowloris.py`.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio
import trio.testing
from test_api_server import RawClient, State, make_router

from supervisor.api.router import ApiRequest, ApiResponse, StreamResponse
from supervisor.api.server import Limits, serve_unix

LIMITS = Limits(header_timeout=10, idle_timeout=30, body_timeout=10, per_client=3, total=5)


@pytest.fixture
async def server(
    nursery: trio.Nursery, tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> tuple[Path, State, trio.Event]:
    state = State()
    more = trio.Event()
    router = make_router(state, tmp_path)

    @router.route("GET", "/logs")
    async def logs(req: ApiRequest) -> ApiResponse:
        async def produce() -> AsyncIterator[bytes]:
            yield b"first line\n"
            await more.wait()  # like `logs -f` on a quiet container
            yield b"second line\n"

        return StreamResponse(produce(), content_type="text/plain")

    path = tmp_path / "run" / "corral.sock"
    await nursery.start(functools.partial(serve_unix, limits=LIMITS), path, router)
    return path, state, more


async def test_a_half_sent_head_gets_408_and_is_closed(
    server: tuple[Path, State, trio.Event],
    autojump_clock: trio.testing.MockClock,
) -> None:
    c = await RawClient.connect(server[0])
    await c.stream.send_all(b"GET /version HTTP/1.1\r\nHost: x\r\n")  # no blank line
    status, headers, body = await c.read_response()
    assert status == 408 and headers["connection"] == "close"
    assert json.loads(body) == {"message": "timed out reading the request head"}
    assert await c.read_to_eof() == b""


async def test_a_silent_connection_is_closed(
    server: tuple[Path, State, trio.Event], autojump_clock: trio.testing.MockClock
) -> None:
    c = await RawClient.connect(server[0])
    assert await c.read_to_eof() == b""


async def test_an_idle_keep_alive_connection_is_closed(
    server: tuple[Path, State, trio.Event],
    autojump_clock: trio.testing.MockClock,
) -> None:
    c = await RawClient.connect(server[0])
    await c.stream.send_all(b"GET /version HTTP/1.1\r\nHost: x\r\n\r\n")
    status, headers, _ = await c.read_response()
    assert status == 200 and "connection" not in headers  # kept alive...
    assert await c.read_to_eof() == b""  # ...until idle too long: closed, no 408


async def test_a_half_sent_body_gets_408(
    server: tuple[Path, State, trio.Event], autojump_clock: trio.testing.MockClock
) -> None:
    c = await RawClient.connect(server[0])
    await c.stream.send_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhalf")
    status, headers, body = await c.read_response()
    assert status == 408 and headers["connection"] == "close"
    assert json.loads(body) == {"message": "timed out reading the request body"}
    assert await c.read_to_eof() == b""


async def test_streams_are_not_idle(
    server: tuple[Path, State, trio.Event], autojump_clock: trio.testing.MockClock
) -> None:
    """`logs -f`, events and attach outlive every timeout once their response began."""
    sock, state, more = server
    logs = await RawClient.connect(sock)
    await logs.stream.send_all(b"GET /logs HTTP/1.1\r\nHost: x\r\n\r\n")
    status, headers = await logs.read_head()
    assert status == 200 and headers["transfer-encoding"] == "chunked"
    events = await RawClient.connect(sock)
    await events.stream.send_all(b"GET /events?count=1 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (await events.read_head())[0] == 200
    attach = await RawClient.connect(sock)
    await attach.stream.send_all(
        b"POST /containers/c1/attach HTTP/1.1\r\nHost: x\r\n"
        b"Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n"
    )
    assert (await attach.read_head())[0] == 101

    autojump_clock.jump(10 * LIMITS.idle_timeout)  # past every timeout
    await trio.testing.wait_all_tasks_blocked()

    assert not state.stream_closed.is_set()
    more.set()
    while b"second line" not in logs.buf:
        assert await logs.fill(), "logs -f was closed"
    await attach.stream.send_all(b"still here")
    while b"STILL HERE" not in attach.buf:
        assert await attach.fill(), "attach was closed"
    for c in (logs, events, attach):
        await c.stream.aclose()


async def test_one_client_is_bounded(
    server: tuple[Path, State, trio.Event], autojump_clock: trio.testing.MockClock
) -> None:
    sock, _, _ = server
    held = []
    for _ in range(LIMITS.per_client):
        c = await RawClient.connect(sock)
        await c.stream.send_all(b"GET /version HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await c.read_response())[0] == 200  # accepted and counted
        held.append(c)
    extra = await RawClient.connect(sock)
    status, headers, body = await extra.read_response()
    assert status == 429 and headers["connection"] == "close"
    assert json.loads(body)["message"] == (
        f"too many API connections from process {os.getpid()}: the limit is "
        f"{LIMITS.per_client} per client (api-max-client-connections)"
    )
    assert await extra.read_to_eof() == b""
    await held.pop().stream.aclose()  # one goes away: room for another
    await trio.testing.wait_all_tasks_blocked()
    again = await RawClient.connect(sock)
    await again.stream.send_all(b"GET /version HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert (await again.read_response())[0] == 200


async def test_all_clients_are_bounded(
    nursery: trio.Nursery, tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    path = tmp_path / "total.sock"
    limits = Limits(per_client=100, total=2)
    router = make_router(State(), tmp_path)
    await nursery.start(functools.partial(serve_unix, limits=limits), path, router)
    held = []
    for _ in range(2):
        c = await RawClient.connect(path)
        await c.stream.send_all(b"GET /version HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await c.read_response())[0] == 200
        held.append(c)
    extra = await RawClient.connect(path)
    status, _, body = await extra.read_response()
    assert status == 503
    assert "the limit is 2 (api-max-connections)" in json.loads(body)["message"]


def test_daemon_flags_and_defaults_give_the_limits() -> None:
    from supervisor.daemon import api_limits, apply_config, parse_args

    args = parse_args(["--config", ""])
    assert apply_config(args, {}) == []
    assert api_limits(args) == Limits()  # header 60s, idle 5m (dockerd's), body 60s
    argv = ["--config", "", "--api-header-timeout", "2m", "--api-max-client-connections", "8"]
    args = parse_args(argv)
    assert apply_config(args, {}) == []
    assert api_limits(args) == Limits(header_timeout=120.0, per_client=8)
    args = parse_args(["--config", "", "--api-idle-timeout", "soon"])
    assert apply_config(args, {}) == [
        "corral daemon: --api-idle-timeout: invalid duration 'soon' (e.g. 30s, 5m, 1m30s)"
    ]
