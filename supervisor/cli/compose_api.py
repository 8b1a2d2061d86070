"""An async Docker Engine API client over trio, for the compose verbs.

Why not `supervisor.api.client`: it blocks, and `up` of 200 replicas must create and
start them concurrently, stream many containers' logs at once, and wait on events, all
in one structured nursery. Each request is one connection (`Connection: close`, a Unix
socket connect costs microseconds); bodies are read by Content-Length, chunked framing,
or to EOF.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import trio

from supervisor.api.client import API_VERSION, ApiError, ProtocolError, encode_query


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
            head = [
                f"{method} {self.prefix}{path}{encode_query(query)} HTTP/1.1",
                "Host: corral",
                "User-Agent: corral-compose",
                "Connection: close",
                f"Content-Length: {len(body)}",
            ]
            if json_body is not None:
                head.append("Content-Type: application/json")
            elif content_type:
                head.append(f"Content-Type: {content_type}")
            await stream.send_all(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
            reader = _Body(stream)
            status, headers = await reader.head(method)
        except BaseException:
            await stream.aclose()
            raise
        return status, headers, reader

    async def request(
        self, method: str, path: str, query: dict[str, Any] | None = None, json_body: Any = None
    ) -> Any:
        """One call; the decoded JSON answer (None if empty). Non-2xx raises ApiError."""
        status, _, body = await self._open(method, path, query, json_body)
        async with body:
            data = b"".join([c async for c in body.chunks()])
        if status == 304:  # "not modified": already started/stopped, which is what we asked
            return None
        if not 200 <= status < 300:
            raise ApiError(status, _message(data, status))
        return json.loads(data) if data.strip() else None

    async def send_raw(
        self, method: str, path: str, query: dict[str, Any], body: bytes, content_type: str
    ) -> None:
        """One call with a raw body (a tar for PUT .../archive); non-2xx raises."""
        status, _, reader = await self._open(method, path, query, None, body, content_type)
        async with reader:
            data = b"".join([c async for c in reader.chunks()])
        if not 200 <= status < 300:
            raise ApiError(status, _message(data, status))

    async def open(
        self, method: str, path: str, query: dict[str, Any] | None = None, json_body: Any = None
    ) -> _Body:
        """Send a request and return once the answer's head arrived (an event stream is
        subscribed from then on); read it with `.chunks()` inside `async with`."""
        status, _, body = await self._open(method, path, query, json_body)
        if not 200 <= status < 300:
            async with body:
                data = b"".join([c async for c in body.chunks()])
            raise ApiError(status, _message(data, status))
        return body

    async def stream(
        self, method: str, path: str, query: dict[str, Any] | None = None, json_body: Any = None
    ) -> AsyncIterator[bytes]:
        """Body bytes as they come (logs -f, events); errors raise before the first."""
        status, _, body = await self._open(method, path, query, json_body)
        async with body:
            if not 200 <= status < 300:
                data = b"".join([c async for c in body.chunks()])
                raise ApiError(status, _message(data, status))
            async for chunk in body.chunks():
                yield chunk


def _message(data: bytes, status: int) -> str:
    text = data.decode("utf-8", "replace").strip()
    try:
        doc = json.loads(text)
    except ValueError:
        return text or f"HTTP {status}"
    if isinstance(doc, dict) and isinstance(doc.get("message"), str):
        return str(doc["message"])
    return text or f"HTTP {status}"


class _Body:
    """Incremental response reader: head, then body chunks (length, chunked, or EOF)."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.buf = bytearray()
        self.eof = False
        self.length: int | None = None
        self.chunked = False

    async def __aenter__(self) -> _Body:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stream.aclose()

    async def _fill(self) -> bool:
        if self.eof:
            return False
        data = await self.stream.receive_some(65536)
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    async def _line(self) -> bytes:
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                line = bytes(self.buf[: i + 1])
                del self.buf[: i + 1]
                return line
            if not await self._fill():
                raise ProtocolError("the daemon closed the connection mid-response")

    async def head(self, method: str) -> tuple[int, dict[str, str]]:
        while True:
            parts = (await self._line()).decode("latin-1").split(" ", 2)
            if len(parts) < 2 or not parts[0].startswith("HTTP/"):
                raise ProtocolError("bad status line from the daemon")
            status = int(parts[1])
            headers: dict[str, str] = {}
            while True:
                line = await self._line()
                if line in (b"\r\n", b"\n"):
                    break
                k, _, v = line.decode("latin-1").partition(":")
                headers[k.strip().lower()] = v.strip()
            if status != 100:
                break
        self.chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        if "content-length" in headers and not self.chunked:
            self.length = int(headers["content-length"])
        if method == "HEAD" or status in (204, 304):
            self.length = 0
        return status, headers

    async def chunks(self) -> AsyncIterator[bytes]:
        if self.chunked:
            while True:
                size_line = await self._line()
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    return
                while len(self.buf) < size + 2:
                    if not await self._fill():
                        raise ProtocolError("the daemon closed the connection inside a chunk")
                data = bytes(self.buf[:size])
                del self.buf[: size + 2]
                yield data
        elif self.length is not None:
            remaining = self.length
            while remaining > 0:
                if not self.buf and not await self._fill():
                    raise ProtocolError("the daemon closed the connection before the body end")
                data = bytes(self.buf[:remaining])
                del self.buf[: len(data)]
                remaining -= len(data)
                yield data
        else:
            while True:
                if self.buf:
                    data = bytes(self.buf)
                    self.buf.clear()
                    yield data
                if not await self._fill():
                    return
