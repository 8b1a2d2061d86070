"""A small trio HTTP/1.1 client for corral's API socket, for scenarios that need
concurrency (the `corral` CLI is one process per request, which is what the start
scenarios time; `many` drives the API as fast as it answers).

One connection per request with `Connection: close`, body read to EOF: the simplest
correct client, and the same cost for every request.
"""

from __future__ import annotations

import json
from typing import Any

import trio

from supervisor.httpcore.client import ClientConnection, Data, ProtocolError, Response

API = "/v1.44"


class ApiError(Exception):
    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(f"HTTP {status}: {body[:200].decode(errors='replace')}")
        self.status = status


def parse_response(raw: bytes, method: str = "GET") -> tuple[int, bytes]:
    """Status and body of a complete response read to EOF (chunked or not), framed by
    corral's HTTP core (`supervisor.httpcore.client`) like the CLI's own responses."""
    conn = ClientConnection()
    conn.send_request(method, "/", [("Host", "corral")])
    conn.receive_data(raw)
    conn.receive_data(b"")
    status = 0
    body = bytearray()
    while True:
        try:
            event = conn.next_event()
        except ProtocolError as exc:
            raise ValueError(str(exc)) from None
        if isinstance(event, Response):
            status = event.status
        elif isinstance(event, Data):
            body += event.data
        else:  # EndOfMessage (NEED_DATA cannot come after EOF)
            return status, bytes(body)


class Api:
    def __init__(self, socket_path: str, version: str = API) -> None:
        """`version`: the path prefix; Docker Engine 20.10 answers up to /v1.41."""
        self.socket_path = socket_path
        self.version = version

    async def request(self, method: str, path: str, body: Any = None) -> Any:
        payload = b"" if body is None else json.dumps(body).encode()
        head = (
            f"{method} {self.version}{path} HTTP/1.1\r\nHost: corral\r\nConnection: close\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
        ).encode()
        stream = await trio.open_unix_socket(self.socket_path)
        async with stream:
            await stream.send_all(head + payload)
            raw = bytearray()
            while chunk := await stream.receive_some(65536):
                raw += chunk
        status, data = parse_response(bytes(raw))
        if not 200 <= status < 300:
            raise ApiError(status, data)
        return json.loads(data) if data.strip() else None
