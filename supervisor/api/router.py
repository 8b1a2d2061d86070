"""Routing for the Docker Engine API: path templates, version prefix, requests, responses.

    router = Router()

    @router.route("GET", "/containers/{id}/json")
    async def inspect(req: ApiRequest, id: str) -> ApiResponse:
        return JsonResponse(engine.inspect(id))

Templates: `{name}` matches one path segment, `{name:.*}` (or `{name:path}`) matches
the rest including slashes (image references: `/images/{name:.*}/json`).  A leading
`/v1.NN` is stripped before matching and recorded as `req.api_version`.  HEAD falls
back to the GET handler (the body is not sent).  Handlers raise `CorralError`s;
the router turns them into Docker's `{"message": ...}` bodies.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any, Final, Protocol, runtime_checkable

import structlog
import trio

from supervisor.errors import CorralError, InvalidArgument, NotModified, disk_full
from supervisor.httpcore.server import Headers, ProtocolError, parse_target

from .schema import parse_json

API_VERSION: Final = "1.44"
MIN_API_VERSION: Final = "1.24"
OS_TYPE: Final = "linux"
SERVER_NAME: Final = "corral/0.1.0"

log = structlog.get_logger()


class PayloadTooLarge(CorralError):
    status = 413


def version_tuple(version: str) -> tuple[int, ...]:
    """Parse "1.44" -> (1, 44); raises ValueError on anything else."""
    parts = version.split(".")
    if not all(p.isdigit() for p in parts):
        raise ValueError(version)
    return tuple(int(p) for p in parts)


# -- responses ----------------------------------------------------------------------


class ApiResponse:
    """Base of all responses: a status and extra headers (`add_header` chains)."""

    def __init__(self, status: int, headers: Iterable[tuple[str, str]] = ()) -> None:
        self.status = status
        self.headers: list[tuple[str, str]] = list(headers)

    def add_header(self, name: str, value: str) -> ApiResponse:
        self.headers.append((name, value))
        return self

    def header(self, name: str) -> str | None:
        lname = name.lower()
        for key, value in self.headers:
            if key.lower() == lname:
                return value
        return None


class FixedResponse(ApiResponse):
    """A body known in full, sent with Content-Length."""

    def __init__(
        self,
        body: bytes,
        content_type: str | None,
        status: int = 200,
        headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        super().__init__(status, headers)
        self.body = body
        self.content_type = content_type


class JsonResponse(FixedResponse):
    def __init__(
        self, obj: Any, status: int = 200, headers: Iterable[tuple[str, str]] = ()
    ) -> None:
        body = (json.dumps(obj, separators=(",", ":"), ensure_ascii=False) + "\n").encode()
        super().__init__(body, "application/json", status, headers)
        self.obj = obj


class TextResponse(FixedResponse):
    def __init__(
        self,
        text: str,
        status: int = 200,
        content_type: str = "text/plain; charset=utf-8",
        headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        super().__init__(text.encode(), content_type, status, headers)
        self.text = text


class EmptyResponse(FixedResponse):
    def __init__(self, status: int = 204, headers: Iterable[tuple[str, str]] = ()) -> None:
        super().__init__(b"", None, status, headers)


class StreamResponse(ApiResponse):
    """A body produced over time (logs -f, events, pull/build progress, wait, export).

    The head is sent at once, before the first item; each non-empty item is written
    (and reaches the client) as soon as it is yielded.  If the client goes away the
    producer is cancelled and, if it is an async generator, closed.
    """

    def __init__(
        self,
        body: AsyncIterable[bytes],
        content_type: str = "application/json",
        status: int = 200,
        headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        super().__init__(status, headers)
        self.body = body
        self.content_type = content_type


HijackHandler = Callable[[trio.abc.HalfCloseableStream], Awaitable[None]]


@runtime_checkable
class _CatchesUp(Protocol):
    async def peer_caught_up(self) -> None: ...


async def head_read(stream: trio.abc.HalfCloseableStream) -> None:
    """Return once the client has read the hijacked answer's head, where the stream
    can tell (the server's hijacked socket: `peer_caught_up`; at most a short bound).

    docker-py reads the head through a buffered reader and the stream from the raw
    socket: bytes that arrive with the head land in that buffer and are lost.  An
    answer whose first bytes are ready at once (a refused exec's message, an exited
    container's log replay) waits for this first; a stream that cannot tell (the
    websocket's frames, whose client reads them all one way) does not wait."""
    if isinstance(stream, _CatchesUp):
        await stream.peer_caught_up()


class HijackResponse(ApiResponse):
    """Take over the connection (attach, exec start).

    `101 UPGRADED` (`Connection: Upgrade`, `Upgrade: tcp`) if the client asked for
    an upgrade, else `200 OK`; then `handler(stream)` owns the raw byte stream.
    The connection is closed when the handler returns.
    """

    def __init__(
        self,
        handler: HijackHandler,
        content_type: str = "application/vnd.docker.multiplexed-stream",
        headers: Iterable[tuple[str, str]] = (),
        upgrade: list[tuple[str, str]] | None = None,
    ) -> None:
        super().__init__(101, headers)
        self.handler = handler
        self.content_type = content_type
        #: A protocol switch other than Docker's `tcp` (the WebSocket's handshake
        #: headers): `101 Switching Protocols` with these, and only on an upgrade.
        self.upgrade = upgrade


def error_response(status: int, message: str) -> ApiResponse:
    if status == 304:
        return EmptyResponse(304)
    return JsonResponse({"message": message}, status)


# -- requests -----------------------------------------------------------------------


class BodySource(Protocol):
    async def receive(self) -> bytes:
        """The next piece of the request body; b"" once it is over."""
        ...


class _BytesBody:
    def __init__(self, data: bytes) -> None:
        self._data: bytes | None = data

    async def receive(self) -> bytes:
        data, self._data = self._data, None
        return data or b""


_FALSE = frozenset({"", "0", "no", "false", "none"})


class ApiRequest:
    """One API request as handlers see it."""

    def __init__(
        self,
        method: str,
        target: str,
        headers: Headers | Iterable[tuple[str, str]] = (),
        body: BodySource | bytes = b"",
        *,
        http_version: str = "1.1",
    ) -> None:
        self.method = method
        self.target = target
        self.raw_path, self.query = parse_target(target)
        self.path = self.raw_path  # without the /v1.NN prefix once routed
        self.headers = headers if isinstance(headers, Headers) else Headers(headers)
        self.http_version = http_version
        self.api_version = API_VERSION  # from the /v1.NN prefix, else the server's
        self.route = ""  # matched template, e.g. "/containers/{id}/json"
        self.params: dict[str, str] = {}
        self._body: BodySource = _BytesBody(body) if isinstance(body, bytes) else body
        self._body_done = False

    # -- query ------------------------------------------------------------------
    def query_str(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def query_list(self, name: str) -> list[str]:
        return list(self.query.get(name, []))

    def query_bool(self, name: str, default: bool = False) -> bool:
        """Docker's rule: absent -> default; "", 0, no, false, none -> False; else True."""
        value = self.query_str(name)
        if value is None:
            return default
        return value.strip().lower() not in _FALSE

    def query_int(self, name: str, default: int | None = None) -> int | None:
        value = self.query_str(name)
        if value is None or value == "":
            return default
        try:
            return int(value)
        except ValueError:
            raise InvalidArgument(
                f"invalid value for {name!r}: {value!r} is not an integer"
            ) from None

    def query_json(self, name: str, default: Any = None) -> Any:
        value = self.query_str(name)
        if value is None or value == "":
            return default
        try:
            return parse_json(value.encode())
        except InvalidArgument as e:
            detail = e.message.removeprefix("invalid JSON: ")
            raise InvalidArgument(f"invalid JSON in query parameter {name!r}: {detail}") from None

    def query_filters(self, name: str = "filters") -> dict[str, list[str]]:
        """Docker `filters=` in either form: `{"label":{"a=b":true}}` or `{"label":["a=b"]}`."""
        raw = self.query_json(name, {})
        if not isinstance(raw, dict):
            raise InvalidArgument(f"invalid filter: {name} must be a JSON object")
        out: dict[str, list[str]] = {}
        for key, value in raw.items():
            if isinstance(value, dict):
                out[str(key)] = [str(k) for k, v in value.items() if v]
            elif isinstance(value, list):
                out[str(key)] = [str(v) for v in value]
            elif isinstance(value, str):
                out[str(key)] = [value]
            else:
                raise InvalidArgument(f"invalid filter: bad value for {key!r}")
        return out

    # -- headers ----------------------------------------------------------------
    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name, default)

    # -- body -------------------------------------------------------------------
    async def _next_chunk(self) -> bytes:
        while not self._body_done:
            data = await self._body.receive()
            if not data:
                self._body_done = True
                break
            return data
        return b""

    async def body_chunks(self) -> AsyncIterator[bytes]:
        """The body piece by piece, as it arrives (for uploads too big to buffer)."""
        while True:
            chunk = await self._next_chunk()
            if not chunk:
                return
            yield chunk

    async def read_body(self, limit: int | None = None) -> bytes:
        """The whole (remaining) body; over `limit` bytes -> 413."""
        parts: list[bytes] = []
        size = 0
        async for chunk in self.body_chunks():
            size += len(chunk)
            if limit is not None and size > limit:
                raise PayloadTooLarge(f"request body exceeds {limit} bytes")
            parts.append(chunk)
        return b"".join(parts)

    async def read_json(self, default: Any = None, limit: int | None = 16 << 20) -> Any:
        """The body parsed as JSON; an empty body gives `default`; bad JSON -> 400.

        As dockerd's `httputils.ReadJSON`: a body sent with a Content-Type other than
        application/json is refused (none at all is let through: clients of the
        socket that never set one predate corral's checking it)."""
        body = await self.read_body(limit)
        if not body.strip():
            return default
        content_type = self.header("content-type")
        if content_type is not None:
            mime = content_type.partition(";")[0].strip().lower()
            if mime != "application/json":
                raise InvalidArgument(
                    f"unsupported Content-Type header ({content_type}): "
                    "must be 'application/json'"
                )
        return parse_json(body)

    async def read_typed(self, check: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
        """The JSON body decoded by a `schema` checker (`schema.check_create`, or
        `lambda b: schema.check(b, types.UPDATE_CONFIG)`); an empty body is `{}`."""
        return check(await self.read_json(default=None))

    async def save_body(self, path: Path | str) -> int:
        """Stream the body into a file (created/truncated); returns the byte count."""
        size = 0
        async with await trio.open_file(path, "wb") as f:
            async for chunk in self.body_chunks():
                await f.write(chunk)
                size += len(chunk)
        return size

    def __repr__(self) -> str:
        return f"<ApiRequest {self.method} {self.target}>"


# -- router -------------------------------------------------------------------------

Handler = Callable[..., Awaitable[ApiResponse]]
Observer = Callable[[str, str, int, float], None]

_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::([^}]*))?\}")
_VERSION_PREFIX = re.compile(r"^/v([0-9][0-9.]*)(/.*)$")
UNMATCHED: Final = "<unmatched>"


class Route:
    def __init__(self, method: str, template: str, handler: Handler, order: int) -> None:
        self.method = method
        self.template = template
        self.handler = handler
        pattern, pos, literal = "", 0, 0
        for m in _PARAM.finditer(template):
            pattern += re.escape(template[pos : m.start()])
            literal += m.start() - pos
            kind = m.group(2)
            if kind in (None, ""):
                pattern += f"(?P<{m.group(1)}>[^/]+)"
            elif kind in (".*", ".+", "path"):
                pattern += f"(?P<{m.group(1)}>.+)"
            else:
                pattern += f"(?P<{m.group(1)}>{kind})"
            pos = m.end()
        pattern += re.escape(template[pos:])
        literal += len(template) - pos
        self.regex = re.compile(f"^{pattern}$")
        self.sort_key = (-literal, order)

    def __repr__(self) -> str:
        return f"<Route {self.method} {self.template}>"


class Router:
    def __init__(self, *, observer: Observer | None = None, ping: bool = True) -> None:
        self.routes: list[Route] = []
        self.observer = observer
        if ping:
            self.add("GET", "/_ping", ping_handler)
            self.add("HEAD", "/_ping", ping_handler)

    def add(self, method: str, template: str, handler: Handler) -> None:
        """Register (or replace) the handler of `method template`."""
        method = method.upper()
        self.routes = [
            r for r in self.routes if not (r.method == method and r.template == template)
        ]
        self.routes.append(Route(method, template, handler, len(self.routes)))
        self.routes.sort(key=lambda r: r.sort_key)

    def route(self, method: str, template: str) -> Callable[[Handler], Handler]:
        def decorator(handler: Handler) -> Handler:
            self.add(method, template, handler)
            return handler

        return decorator

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | list[str]:
        """The route and params for `method path`, or the methods allowed there."""
        allowed: list[str] = []
        fallback: tuple[Route, dict[str, str]] | None = None
        for route in self.routes:
            m = route.regex.match(path)
            if not m:
                continue
            if route.method == method:
                return route, m.groupdict()
            if method == "HEAD" and route.method == "GET" and fallback is None:
                fallback = route, m.groupdict()
            allowed.append(route.method)
        if fallback is not None:
            return fallback
        return allowed

    async def dispatch(self, req: ApiRequest) -> ApiResponse:
        """Route `req`, run its handler, map errors; never raises (but Cancelled)."""
        path = req.raw_path
        version: str | None = None
        m = _VERSION_PREFIX.match(path)
        if m:
            version, path = m.group(1), m.group(2)
        req.path = path
        found = self.match(req.method, path)
        if isinstance(found, list):
            req.route = UNMATCHED
            if found:
                resp = error_response(405, "method not allowed")
                resp.add_header("Allow", ", ".join(sorted(set(found))))
                return resp
            return error_response(404, "page not found")
        route, params = found
        req.route = route.template
        req.params = params
        if version is not None:
            try:
                vt = version_tuple(version)
            except ValueError:
                return error_response(400, f"invalid API version {version!r}")
            if vt > version_tuple(API_VERSION):
                return error_response(
                    400,
                    f"client version {version} is too new. "
                    f"Maximum supported API version is {API_VERSION}",
                )
            if vt < version_tuple(MIN_API_VERSION):
                return error_response(
                    400,
                    f"client version {version} is too old. Minimum supported API version "
                    f"is {MIN_API_VERSION}, please upgrade your client to a newer version",
                )
            req.api_version = version
        try:
            resp = await route.handler(req, **params)
        except NotModified:
            return EmptyResponse(304)
        except CorralError as e:
            return error_response(e.status, e.message)
        except ProtocolError as e:
            return error_response(e.status, e.message)
        except trio.Cancelled:
            raise
        except Exception as e:
            if (full := disk_full(e)) is not None:  # the operation fails, as dockerd's does
                log.warning("api.disk_full", method=req.method, path=req.raw_path,
                            error=full.message)
                return error_response(full.status, full.message)
            log.exception("api.handler_failed", method=req.method, path=req.raw_path)
            return error_response(500, str(e) or type(e).__name__)
        if not isinstance(resp, ApiResponse):
            log.error("api.bad_handler_result", route=route.template, result=repr(resp))
            return error_response(500, f"handler for {route.template} returned {resp!r}")
        return resp

    async def request(
        self,
        method: str,
        target: str,
        body: bytes = b"",
        headers: Iterable[tuple[str, str]] = (),
    ) -> ApiResponse:
        """Call the API without a socket (for handler tests)."""
        return await self.dispatch(ApiRequest(method, target, headers, body))

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        if self.observer is None:
            return
        try:
            self.observer(method, route, status, seconds)
        except Exception:
            log.exception("api.observer_failed")


def common_headers() -> list[tuple[str, str]]:
    """Headers Docker's version middleware puts on every response."""
    return [("Api-Version", API_VERSION), ("Server", f"{SERVER_NAME} ({OS_TYPE})")]


def ping_headers() -> list[tuple[str, str]]:
    return [
        ("Api-Version", API_VERSION),
        ("Builder-Version", "1"),
        ("Docker-Experimental", "false"),
        ("Ostype", OS_TYPE),
        ("Swarm", "inactive"),
        ("Cache-Control", "no-cache, no-store, must-revalidate"),
        ("Pragma", "no-cache"),
    ]


async def ping_handler(req: ApiRequest) -> ApiResponse:
    """GET/HEAD /_ping, as Docker answers it (the CLI negotiates the version from it)."""
    return TextResponse("OK", headers=ping_headers())


__all__ = [
    "API_VERSION",
    "MIN_API_VERSION",
    "UNMATCHED",
    "ApiRequest",
    "ApiResponse",
    "BodySource",
    "EmptyResponse",
    "FixedResponse",
    "HijackHandler",
    "HijackResponse",
    "JsonResponse",
    "Observer",
    "PayloadTooLarge",
    "Route",
    "Router",
    "StreamResponse",
    "TextResponse",
    "error_response",
    "ping_handler",
]
