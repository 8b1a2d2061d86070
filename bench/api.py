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

API = "/v1.44"


class ApiError(Exception):
    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(f"HTTP {status}: {body[:200].decode(errors='replace')}")
        self.status = status


def parse_response(raw: bytes) -> tuple[int, bytes]:
    """Status and body of a complete response read to EOF (chunked or not)."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        raise ValueError("response ended inside its headers")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip().lower()
    if b"chunked" in headers.get(b"transfer-encoding", b""):
        return status, dechunk(body)
    if b"content-length" in headers:
        return status, body[: int(headers[b"content-length"])]
    return status, body


def dechunk(data: bytes) -> bytes:
    out = bytearray()
    pos = 0
    while True:
        end = data.index(b"\r\n", pos)
        size = int(data[pos:end].split(b";")[0], 16)
        if size == 0:
            return bytes(out)
        start = end + 2
        out += data[start : start + size]
        pos = start + size + 2


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
