"""`GET /events`: history from `since`, then live events until `until` (or forever)."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator

import trio

from supervisor.api.handlers.containers import parse_time_param
from supervisor.api.router import ApiRequest, ApiResponse, Router, StreamResponse
from supervisor.engine.engine import Engine
from supervisor.supervise.events import Event, matches


def _encode(e: Event) -> bytes:
    return (json.dumps(e.to_api()) + "\n").encode()


def register(router: Router, engine: Engine) -> None:
    @router.route("GET", "/events")
    async def events(req: ApiRequest) -> ApiResponse:
        filters = req.query_filters()
        since = parse_time_param(req.query_str("since"))
        until = parse_time_param(req.query_str("until"))
        now = time.time()
        since_ns = int(since * 1e9)
        until_ns = int(until * 1e9)
        live = not until or until > now
        past, channel = engine.events.open_stream(since_ns, until_ns, live=live)
        last_seq = past[-1].seq if past else 0

        async def body() -> AsyncIterator[bytes]:
            for e in past:
                if matches(e, filters):
                    yield _encode(e)
            if channel is None:
                return
            deadline = trio.current_time() + (until - now) if until else float("inf")
            async with channel:
                while True:
                    # The cancel scope wraps only the receive: a yield inside a cancel
                    # scope in an async generator would corrupt trio's scope stack.
                    with trio.move_on_at(deadline) as scope:
                        try:
                            e = await channel.receive()
                        except trio.EndOfChannel:
                            return
                    if scope.cancelled_caught:
                        return
                    if e.seq > last_seq and matches(e, filters):
                        yield _encode(e)

        return StreamResponse(body(), "application/json")
