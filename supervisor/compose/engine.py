"""The engine compose drives, as a small interface, and the daemon's in-process side of it.

The applier (`supervisor.compose.applier`) and the verbs speak to an engine only through
`ComposeEngine`: one call answered in full (`request`), one with a raw body (`send_raw`,
a tar for `PUT .../archive`), and a streamed answer (`open`/`stream`: events, pull
progress, logs). The calls are the Engine API's own paths and shapes, so the one
applier serves both sides:

- the CLI (`corral compose up`) over the daemon's socket: `supervisor.compose.client.AsyncApi`;
- the daemon itself (projects handed over by `up -d`, `--services DIR`): `InProcessEngine`,
  which hands each call to the daemon's router directly, without a socket or a
  connection, so the daemon never dials itself.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, AsyncIterator
from typing import TYPE_CHECKING, Any, Protocol

from supervisor.api.client import API_VERSION, ApiError, encode_query

if TYPE_CHECKING:  # the daemon's side only: the CLI's compose never loads the router
    from supervisor.api.router import Router


class ResponseBody(Protocol):
    """A streamed answer whose head has arrived; read it inside `async with`."""

    async def __aenter__(self) -> ResponseBody: ...

    async def __aexit__(self, *exc: object) -> None: ...

    def chunks(self) -> AsyncIterator[bytes]: ...


class ComposeEngine(Protocol):
    """What compose needs of an engine (non-2xx answers raise `ApiError`)."""

    async def request(
        self, method: str, path: str, query: dict[str, Any] | None = None, json_body: Any = None
    ) -> Any: ...

    async def send_raw(
        self, method: str, path: str, query: dict[str, Any], body: bytes, content_type: str
    ) -> None: ...

    async def open(
        self, method: str, path: str, query: dict[str, Any] | None = None, json_body: Any = None
    ) -> ResponseBody: ...

    def stream(
        self, method: str, path: str, query: dict[str, Any] | None = None, json_body: Any = None
    ) -> AsyncIterator[bytes]: ...


def check_answer(status: int, data: bytes) -> None:
    """A non-2xx answer raises `ApiError` with Docker's message (both engines)."""
    if not 200 <= status < 300:
        raise ApiError(status, error_message(data, status))


def json_answer(status: int, data: bytes) -> Any:
    """A request's answer as both engines decode it: 304 ("not modified": already
    started/stopped, which is what was asked) is None, non-2xx raises, else the JSON."""
    if status == 304:
        return None
    check_answer(status, data)
    return json.loads(data) if data.strip() else None


def error_message(data: bytes, status: int) -> str:
    """Docker's `{"message": ...}` error body as one line."""
    text = data.decode("utf-8", "replace").strip()
    try:
        doc = json.loads(text)
    except ValueError:
        return text or f"HTTP {status}"
    if isinstance(doc, dict) and isinstance(doc.get("message"), str):
        return str(doc["message"])
    return text or f"HTTP {status}"


class _LocalBody:
    """A router answer read in-process: the fixed body, or the handler's stream (closed
    on exit, as the server closes it when a client goes away)."""

    def __init__(self, body: bytes | AsyncIterable[bytes]) -> None:
        self._fixed = body if isinstance(body, bytes) else None
        self._iter = None if isinstance(body, bytes) else aiter(body)

    async def __aenter__(self) -> _LocalBody:
        return self

    async def __aexit__(self, *exc: object) -> None:
        aclose = getattr(self._iter, "aclose", None)
        if aclose is not None:
            await aclose()

    async def chunks(self) -> AsyncIterator[bytes]:
        if self._fixed is not None:
            if self._fixed:
                yield self._fixed
            return
        assert self._iter is not None
        async for chunk in self._iter:
            if chunk:
                yield chunk

    async def read(self) -> bytes:
        return b"".join([c async for c in self.chunks()])


class InProcessEngine:
    """`ComposeEngine` on the daemon's own router: each call is dispatched as a request
    would be, through the same handlers and checks, with no socket in between."""

    def __init__(self, router: Router) -> None:
        self.router = router
        self.prefix = f"/v{API_VERSION}"

    async def _dispatch(
        self, method: str, path: str, query: dict[str, Any] | None, body: bytes, ctype: str
    ) -> tuple[int, _LocalBody]:
        from supervisor.api.router import ApiRequest, FixedResponse, StreamResponse

        headers = [("Host", "corral"), ("User-Agent", "corral-compose (in-process)")]
        if ctype:
            headers.append(("Content-Type", ctype))
        target = f"{self.prefix}{path}{encode_query(query)}"
        resp = await self.router.dispatch(ApiRequest(method, target, headers, body))
        if isinstance(resp, FixedResponse):
            return resp.status, _LocalBody(resp.body)
        if isinstance(resp, StreamResponse):
            return resp.status, _LocalBody(resp.body)
        raise ApiError(500, f"{method} {path}: an upgraded connection cannot be used in-process")

    @staticmethod
    def _json(json_body: Any) -> tuple[bytes, str]:
        if json_body is None:
            return b"", ""
        return json.dumps(json_body).encode(), "application/json"

    async def request(
        self, method: str, path: str, query: dict[str, Any] | None = None, json_body: Any = None
    ) -> Any:
        status, body = await self._dispatch(method, path, query, *self._json(json_body))
        async with body:
            data = await body.read()
        return json_answer(status, data)

    async def send_raw(
        self, method: str, path: str, query: dict[str, Any], body: bytes, content_type: str
    ) -> None:
        status, answer = await self._dispatch(method, path, query, body, content_type)
        async with answer:
            data = await answer.read()
        check_answer(status, data)

    async def open(
        self, method: str, path: str, query: dict[str, Any] | None = None, json_body: Any = None
    ) -> _LocalBody:
        status, body = await self._dispatch(method, path, query, *self._json(json_body))
        if not 200 <= status < 300:
            async with body:
                data = await body.read()
            raise ApiError(status, error_message(data, status))
        return body

    async def stream(
        self, method: str, path: str, query: dict[str, Any] | None = None, json_body: Any = None
    ) -> AsyncIterator[bytes]:
        body = await self.open(method, path, query, json_body)
        async with body:
            async for chunk in body.chunks():
                yield chunk


class _Empty:
    """A streamed answer with nothing in it (a faked pull)."""

    async def __aenter__(self) -> _Empty:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def chunks(self) -> AsyncIterator[bytes]:
        return
        yield b""  # pragma: no cover - makes this an async generator


DRY_PREFIX = "dryrun-"


class DryRunEngine:
    """`--dry-run`: what compose would do, done to nothing. Reads go to the real engine
    (so the plan is the real one); every change is answered as a success without being
    sent, a created container gets a made-up id whose inspect is a running, healthy
    container (so dependency conditions pass), and a missing image is taken as pulled."""

    def __init__(self, inner: ComposeEngine) -> None:
        self.inner = inner

    async def request(
        self, method: str, path: str, query: dict[str, Any] | None = None, json_body: Any = None
    ) -> Any:
        parts = path.strip("/").split("/")
        if method == "GET":
            if len(parts) >= 2 and parts[0] == "containers" and parts[1].startswith(DRY_PREFIX):
                name = parts[1][len(DRY_PREFIX) :]
                return {"Id": parts[1], "Name": f"/{name}", "Config": {}, "Mounts": [],
                        "State": {"Running": True, "Status": "running", "ExitCode": 0,
                                  "Health": {"Status": "healthy"}}}
            try:
                return await self.inner.request(method, path, query, json_body)
            except ApiError as exc:
                if exc.status == 404 and parts[0] == "images":
                    return {"Id": "sha256:" + "0" * 64}  # it would have been pulled or built
                raise
        if path == "/containers/create":
            return {"Id": DRY_PREFIX + str((query or {}).get("name") or "container")}
        if path.endswith("/wait"):
            return {"StatusCode": 0}
        if path.endswith("/exec"):
            return {"Id": DRY_PREFIX + "exec"}
        return None

    async def send_raw(
        self, method: str, path: str, query: dict[str, Any], body: bytes, content_type: str
    ) -> None:
        return None

    async def open(
        self, method: str, path: str, query: dict[str, Any] | None = None, json_body: Any = None
    ) -> ResponseBody:
        if method == "GET":
            return await self.inner.open(method, path, query, json_body)
        return _Empty()

    async def stream(
        self, method: str, path: str, query: dict[str, Any] | None = None, json_body: Any = None
    ) -> AsyncIterator[bytes]:
        if method == "GET":
            async for chunk in self.inner.stream(method, path, query, json_body):
                yield chunk
