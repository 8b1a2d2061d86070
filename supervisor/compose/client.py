"""An async Docker Engine API client over trio: the CLI's `ComposeEngine` (compose verbs).

Why not `supervisor.api.client`: it blocks, and `up` of 200 replicas must create and
start them concurrently, stream many containers' logs at once, and wait on events, all
in one structured nursery. Each request is one connection (`Connection: close`, a Unix
socket connect costs microseconds); the response framing (Content-Length, chunked, or to
EOF) is `supervisor.httpcore.client`'s, shared with the CLI client.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import trio

from supervisor.api.client import API_VERSION, ApiError, encode_query
from supervisor.httpcore.client import (
    ClientConnection,
    Data,
    EndOfMessage,
    NeedData,
    ProtocolError,
    Response,
)

from .engine import check_answer, error_message, json_answer


class AsyncApi:
    def __init__(self, socket_path: str, version: str = API_VERSION) -> None:
        self.path = socket_path
        self.prefix = f"/v{version}"

    async def _open(
        self, method: str, path: str, query: dict[str, Any] | None, json_body: Any,
        raw: bytes | None = None, content_type: str = "",
    ) -> tuple[int, dict[str, str], _Body]:
        stream = await trio.open_unix_socket(self.path)
        try:
            body = raw if raw is not None else (
                b"" if json_body is None else json.dumps(json_body).encode()
            )
            headers = [
                ("Host", "corral"),
                ("User-Agent", "corral-compose"),
                ("Connection", "close"),
                ("Content-Length", str(len(body))),
            ]
            if json_body is not None:
                headers.append(("Content-Type", "application/json"))
            elif content_type:
                headers.append(("Content-Type", content_type))
            reader = _Body(stream)
            conn = reader.conn
            target = f"{self.prefix}{path}{encode_query(query)}"
            head = conn.send_request(method, target, headers)
            await stream.send_all(head + conn.send_data(body) + conn.send_end())
            response = await reader.head()
        except BaseException:
            await stream.aclose()
            raise
        return response.status, response.headers, reader

    async def request(
        self, method: str, path: str, query: dict[str, Any] | None = None, json_body: Any = None
    ) -> Any:
        """One call; the decoded JSON answer (None if empty). Non-2xx raises ApiError."""
        status, _, body = await self._open(method, path, query, json_body)
        async with body:
            data = b"".join([c async for c in body.chunks()])
        return json_answer(status, data)

    async def send_raw(
        self, method: str, path: str, query: dict[str, Any], body: bytes, content_type: str
    ) -> None:
        """One call with a raw body (a tar for PUT .../archive); non-2xx raises."""
        status, _, reader = await self._open(method, path, query, None, body, content_type)
        async with reader:
            data = b"".join([c async for c in reader.chunks()])
        check_answer(status, data)

    async def open(
        self, method: str, path: str, query: dict[str, Any] | None = None, json_body: Any = None
    ) -> _Body:
        """Send a request and return once the answer's head arrived (an event stream is
        subscribed from then on); read it with `.chunks()` inside `async with`."""
        status, _, body = await self._open(method, path, query, json_body)
        if not 200 <= status < 300:
            async with body:
                data = b"".join([c async for c in body.chunks()])
            raise ApiError(status, error_message(data, status))
        return body

    async def stream(
        self, method: str, path: str, query: dict[str, Any] | None = None, json_body: Any = None
    ) -> AsyncIterator[bytes]:
        """Body bytes as they come (logs -f, events); errors raise before the first."""
        status, _, body = await self._open(method, path, query, json_body)
        async with body:
            if not 200 <= status < 300:
                data = b"".join([c async for c in body.chunks()])
                raise ApiError(status, error_message(data, status))
            async for chunk in body.chunks():
                yield chunk


class _Body:
    """The trio adapter of the HTTP core: the response head, then its body chunks."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.conn = ClientConnection()

    async def __aenter__(self) -> _Body:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stream.aclose()

    async def _next(self) -> Response | Data | EndOfMessage:
        while True:
            event = self.conn.next_event()
            if not isinstance(event, NeedData):
                return event
            self.conn.receive_data(await self.stream.receive_some(65536))

    async def head(self) -> Response:
        event = await self._next()
        if not isinstance(event, Response):  # pragma: no cover - the core yields a head first
            raise ProtocolError(f"expected a response head, got {event!r}")
        return event

    async def chunks(self) -> AsyncIterator[bytes]:
        while True:
            event = await self._next()
            if not isinstance(event, Data):
                return  # EndOfMessage
            if event.data:
                yield event.data
