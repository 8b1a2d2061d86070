"""Container routes: create, list, inspect, lifecycle, logs, attach, wait, remove."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable

import structlog
import trio

from supervisor.api import detachkeys, listing, schema, types, views, websocket
from supervisor.api.router import (
    ApiRequest,
    ApiResponse,
    EmptyResponse,
    FixedResponse,
    HijackResponse,
    JsonResponse,
    Router,
    StreamResponse,
    head_read,
)
from supervisor.api.stdcopy import frame
from supervisor.engine.engine import Engine
from supervisor.engine.execs import Exec
from supervisor.engine.timefmt import parse_rfc3339
from supervisor.errors import CorralError, InvalidArgument
from supervisor.httpcore.websocket import HandshakeError
from supervisor.httpcore.websocket import handshake as ws_handshake
from supervisor.images.changes import parse_changes
from supervisor.metadata.containers import Container
from supervisor.supervise.logread import MERGE_HEADER, Wire
from supervisor.supervise.logs import LogEntry

STREAM_IDS = {"stdin": 0, "stdout": 1, "stderr": 2}

log = structlog.get_logger()


def parse_time_param(value: str | None) -> float:
    """Docker's `since`/`until`: unix seconds (with fraction) or RFC 3339."""
    if not value:
        return 0.0
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return parse_rfc3339(value)
    except ValueError:
        raise InvalidArgument(f"invalid time value: {value!r}") from None


def _tty_size(req: ApiRequest) -> tuple[int, int]:
    """`h` and `w` of a resize: integers, as dockerd's strconv.Atoi reads them."""
    out = []
    for name in ("h", "w"):
        value = req.query_str(name) or ""
        if not value.lstrip("+-").isdigit():
            raise InvalidArgument(f'strconv.Atoi: parsing "{value}": invalid syntax ({name})')
        if not 0 <= int(value) <= 65535:  # what TIOCSWINSZ holds
            raise InvalidArgument(f"invalid resize {name}={value}: want a number 0-65535")
        out.append(int(value))
    return out[0], out[1]


def register(router: Router, engine: Engine) -> None:
    get = engine.containers.get
    listing_cache = listing.Listing(engine.networks)

    @router.route("POST", "/containers/create")
    async def create(req: ApiRequest) -> ApiResponse:
        body = await req.read_typed(schema.check_create)
        warnings: list[str] = []
        c = engine.create(
            body, req.query_str("name", "") or "", platform=req.query_str("platform") or "",
            warnings=warnings, durable=False,
        )
        # acknowledged once on disk, one fsync for the creates in flight; a failed sync
        # is logged, as a start's and a removal's are: the container exists either way
        await engine.sync_records()
        return JsonResponse({"Id": c.id, "Warnings": warnings}, 201)

    @router.route("GET", "/containers/json")
    async def list_(req: ApiRequest) -> ApiResponse:
        show_all = req.query_bool("all")
        limit = req.query_int("limit", -1) or -1
        filters = req.query_filters()
        views.check_ps_filters(filters)
        everything = engine.containers.all()
        shown = [
            c for c in everything
            if (show_all or filters.get("status")
                or c.state.status.value in ("running", "paused", "restarting"))
            and (not filters or views.matches_filters(c, filters))
        ]
        if limit > 0:
            shown = shown[:limit]
        return FixedResponse(listing_cache.render(shown, everything), "application/json")

    @router.route("GET", "/containers/{id}/json")
    async def inspect(req: ApiRequest, id: str) -> ApiResponse:
        c = get(id)
        return JsonResponse(
            views.container_inspect(
                c,
                container_dir=str(engine.dir_of(c)),
                layer_dirs=[str(p) for p in engine.images.layer_dirs(c.image_id)],
                runtime=engine.runtime_name,
                network_settings=engine.networks.settings(c),
            )
        )

    @router.route("POST", "/containers/{id}/start")
    async def start(req: ApiRequest, id: str) -> ApiResponse:
        await engine.start(get(id))
        return EmptyResponse(204)

    @router.route("POST", "/containers/{id}/stop")
    async def stop(req: ApiRequest, id: str) -> ApiResponse:
        await engine.stop(get(id), req.query_int("t"), stop_signal=req.query_str("signal"))
        return EmptyResponse(204)

    @router.route("POST", "/containers/{id}/restart")
    async def restart(req: ApiRequest, id: str) -> ApiResponse:
        await engine.restart(get(id), req.query_int("t"), req.query_str("signal"))
        return EmptyResponse(204)

    @router.route("POST", "/containers/{id}/kill")
    async def kill(req: ApiRequest, id: str) -> ApiResponse:
        await engine.kill(get(id), req.query_str("signal") or "SIGKILL")
        return EmptyResponse(204)

    @router.route("POST", "/containers/{id}/pause")
    async def pause(req: ApiRequest, id: str) -> ApiResponse:
        await engine.pause(get(id))
        return EmptyResponse(204)

    @router.route("POST", "/containers/{id}/unpause")
    async def unpause(req: ApiRequest, id: str) -> ApiResponse:
        await engine.unpause(get(id))
        return EmptyResponse(204)

    @router.route("POST", "/containers/{id}/update")
    async def update(req: ApiRequest, id: str) -> ApiResponse:
        body = await req.read_typed(schema.check_update)
        return JsonResponse({"Warnings": await engine.update(get(id), body)})

    @router.route("POST", "/containers/{id}/rename")
    async def rename(req: ApiRequest, id: str) -> ApiResponse:
        new = req.query_str("name") or ""
        if not new:
            raise InvalidArgument("name cannot be empty")
        engine.rename(get(id), new)
        return EmptyResponse(204)

    @router.route("POST", "/containers/{id}/resize")
    async def resize(req: ApiRequest, id: str) -> ApiResponse:
        c = get(id)
        height, width = _tty_size(req)
        engine.resize(c, height, width)
        engine.emit(c, "resize", height=str(height), width=str(width))
        return EmptyResponse(200)

    @router.route("POST", "/containers/{id}/wait")
    async def wait(req: ApiRequest, id: str) -> ApiResponse:
        c = get(id)
        # The waiter is armed now, before the head goes out: a client that starts the
        # container once it has the head (docker run does) can not miss the exit.
        waiter = engine.waiter(c, req.query_str("condition") or "not-running")

        async def body() -> AsyncIterator[bytes]:
            result = await waiter()
            yield (json.dumps(result) + "\n").encode()

        return StreamResponse(body(), "application/json")

    @router.route("DELETE", "/containers/{id}")
    async def remove(req: ApiRequest, id: str) -> ApiResponse:
        await engine.remove(get(id), force=req.query_bool("force"), volumes=req.query_bool("v"))
        return EmptyResponse(204)

    @router.route("GET", "/containers/{id}/logs")
    async def logs(req: ApiRequest, id: str) -> ApiResponse:
        c = get(id)
        want = {"stdout": req.query_bool("stdout"), "stderr": req.query_bool("stderr")}
        if not any(want.values()):
            raise InvalidArgument("Bad parameters: you must choose at least one stream")
        follow = req.query_bool("follow")
        timestamps = req.query_bool("timestamps")
        tail_raw = req.query_str("tail") or "all"
        try:
            tail = -1 if tail_raw == "all" else int(tail_raw)
        except ValueError:
            raise InvalidArgument(f"invalid value for tail: {tail_raw!r}") from None
        since = parse_time_param(req.query_str("since"))
        until = parse_time_param(req.query_str("until"))
        tty = bool(c.config.get("Tty"))  # one stream, sent raw, as Docker does

        def entry_wire(e: LogEntry) -> bytes:
            data = (e.time.encode() + b" " + e.data) if timestamps else e.data
            return data if tty else frame(STREAM_IDS[e.stream], data)

        async def body() -> AsyncIterator[bytes]:
            # One write per batch: a frame per write made reading 1M lines take 25 s.
            if not since and not until:  # the stored lines, framed without decoding
                wire = Wire(
                    stdout=want["stdout"], stderr=want["stderr"], timestamps=timestamps, tty=tty,
                    merged=req.header(MERGE_HEADER) == "merged",
                )  # fmt: skip
                async for blob in engine.log_blobs(c, follow=follow, tail=tail):
                    if out := wire(blob):
                        yield out
                return
            batches = engine.log_batches(c, follow=follow, since=since, until=until, tail=tail)
            async for batch in batches:
                out = b"".join(entry_wire(e) for e in batch if want[e.stream])
                if out:
                    yield out

        return StreamResponse(body(), "application/vnd.docker.raw-stream" if tty else STDCOPY)

    @router.route("POST", "/containers/{id}/attach")
    async def attach(req: ApiRequest, id: str) -> ApiResponse:
        c = get(id)
        tty = bool(c.config.get("Tty"))
        content = "application/vnd.docker.raw-stream" if tty else STDCOPY
        return HijackResponse(attach_session(req, c, mux=not tty), content)

    @router.route("GET", "/containers/{id}/attach/ws")
    async def attach_ws(req: ApiRequest, id: str) -> ApiResponse:
        """Docker's attach for browsers: a WebSocket, raw (never multiplexed) both ways."""
        c = get(id)
        try:
            upgrade = ws_handshake(req.headers)
        except HandshakeError as e:
            raise InvalidArgument(f"attach/ws: {e}") from None
        ws_session = attach_session(req, c, mux=False)

        reads_input = req.query_bool("stdin") and bool(c.config.get("OpenStdin"))

        async def handler(stream: trio.abc.HalfCloseableStream) -> None:
            ws = websocket.WebSocketStream(stream)

            async def drain() -> None:  # no stdin: still answer pings and see the close
                while await ws.receive_some():
                    pass

            async def run(cancel: trio.CancelScope) -> None:
                await ws_session(ws)
                cancel.cancel()

            try:
                async with trio.open_nursery() as n:
                    n.start_soon(run, n.cancel_scope)
                    if not reads_input:
                        n.start_soon(drain)
                    await ws.peer_closed.wait()  # the client's close ends the attach
                    n.cancel_scope.cancel()
            finally:
                with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                    await ws.send_eof()

        return HijackResponse(handler, upgrade=upgrade)

    def attach_session(
        req: ApiRequest, c: Container, *, mux: bool
    ) -> Callable[[trio.abc.HalfCloseableStream], Awaitable[None]]:
        """The attach of `c` the query asks for, as a session over a raw stream."""
        live = engine.live(c)
        tty = bool(c.config.get("Tty"))
        keys = _detach_keys(req.query_str("detachKeys")) if tty else b""
        want = {"stdout": req.query_bool("stdout"), "stderr": req.query_bool("stderr")}
        use_stdin = req.query_bool("stdin") and bool(c.config.get("OpenStdin"))
        replay = engine.logs(c, follow=False) if req.query_bool("logs") else None
        # Subscribed now, before the response: output of a start that follows is not lost.
        channel = live.output.subscribe() if req.query_bool("stream") else None
        engine.emit(c, "attach")

        def wire(s: str, data: bytes) -> bytes:
            # A TTY has one stream and the client reads it raw (Docker does the same).
            return frame(STREAM_IDS[s], data) if mux else data

        async def session(stream: trio.abc.HalfCloseableStream) -> None:
            async with trio.open_nursery() as n:
                if use_stdin:
                    # With a TTY, StdinOnce never closes the terminal's input (Docker).
                    once = bool(c.config.get("StdinOnce")) and not tty

                    def detached() -> None:
                        engine.emit(c, "detach")
                        n.cancel_scope.cancel()

                    n.start_soon(_copy_stdin, engine, c.id, stream, once, keys, detached)
                if replay is not None:
                    await head_read(stream)  # the log is ready at once: docker-py's race
                    async for s, data, _ts in replay:
                        if want[s] or tty:
                            await stream.send_all(wire(s, data))
                if channel is not None:
                    async with channel:
                        async for s, data in channel:
                            if want[s] or (tty and any(want.values())):
                                await stream.send_all(wire(s, data))
                n.cancel_scope.cancel()

        async def handler(stream: trio.abc.HalfCloseableStream) -> None:
            try:
                await session(stream)
            except* (trio.BrokenResourceError, trio.ClosedResourceError):
                log.debug("api.attach_client_gone", id=c.short_id)

        return handler

    @router.route("POST", "/containers/{id}/exec")
    async def exec_create(req: ApiRequest, id: str) -> ApiResponse:
        body = await req.read_typed(schema.check_exec)
        ex = engine.exec_create(get(id), body)
        return JsonResponse({"Id": ex.id}, 201)

    @router.route("POST", "/exec/{id}/start")
    async def exec_start(req: ApiRequest, id: str) -> ApiResponse:
        ex = engine.execs.get(id)
        body = await req.read_typed(lambda b: schema.check(b, types.EXEC_START_OPTIONS))
        engine.exec_ready(ex)  # a stopped container or a used exec: an error, no stream
        if body.get("Detach"):
            await engine.nursery.start(_run_detached, engine, ex)  # start errors answer here
            return EmptyResponse(200)

        tty = ex.tty or bool(body.get("Tty"))
        keys = _detach_keys(ex.detach_keys or None) if tty else b""

        async def handler(stream: trio.abc.HalfCloseableStream) -> None:
            sending = trio.Lock()  # stdout and stderr pumps share the one connection

            async def emit(s: str, data: bytes) -> None:
                if tty:
                    if ex.attach_stdout or ex.attach_stderr:
                        async with sending:
                            await stream.send_all(data)
                elif (s == "stdout" and ex.attach_stdout) or (s == "stderr" and ex.attach_stderr):
                    async with sending:
                        await stream.send_all(frame(STREAM_IDS[s], data))

            async with trio.open_nursery() as n:
                source: trio.abc.ReceiveStream | None = None
                if ex.attach_stdin:

                    def detached() -> None:
                        engine.emit(
                            engine.containers.get(ex.container_id), "exec_detach", execID=ex.id
                        )
                        n.cancel_scope.cancel()

                    source = _DetachingInput(stream, keys, detached) if keys else stream
                try:
                    await engine.exec_run(ex, source, emit)
                except CorralError as exc:
                    # Docker writes a start failure on the stdout stream, then ends it,
                    # once the client has read the head (`head_read`).
                    msg = f"{exc.message}\r\n".encode()
                    await head_read(stream)
                    await stream.send_all(msg if tty else frame(STREAM_IDS["stdout"], msg))

        content = "application/vnd.docker.raw-stream" if tty else STDCOPY
        return HijackResponse(handler, content)

    @router.route("GET", "/exec/{id}/json")
    async def exec_inspect(req: ApiRequest, id: str) -> ApiResponse:
        return JsonResponse(engine.execs.get(id).to_api())

    @router.route("POST", "/exec/{id}/resize")
    async def exec_resize(req: ApiRequest, id: str) -> ApiResponse:
        ex = engine.execs.get(id)
        height, width = _tty_size(req)
        engine.exec_resize(ex, height, width)
        return EmptyResponse(201)

    @router.route("POST", "/commit")
    async def commit(req: ApiRequest) -> ApiResponse:
        c = get(req.query_str("container") or "")
        repo = req.query_str("repo") or ""
        tag = req.query_str("tag") or ""
        ref = f"{repo}:{tag}" if repo and tag else (repo or None)
        body = await req.read_typed(lambda b: schema.check(b, types.CREATE_REQUEST))
        changes = parse_changes(req.query_list("changes"))
        if body:
            changes = {**{k: v for k, v in body.items() if v}, **changes}
        image_id = await engine.commit(
            c,
            ref,
            comment=req.query_str("comment") or "",
            author=req.query_str("author") or "",
            changes=changes,
            pause=req.query_bool("pause", True),
        )
        return JsonResponse({"Id": image_id}, 201)


async def _run_detached(
    engine: Engine, ex: Exec, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    """A detached exec, output dropped: what fails before its start fails the request."""

    async def discard(_s: str, _d: bytes) -> None:
        return None

    try:
        await engine.exec_run(ex, None, discard, task_status=task_status)
    except Exception:
        if not ex.pid:
            raise  # not started: `nursery.start` hands it to the request
        log.exception("api.exec_detached_failed", exec_id=ex.id)


STDCOPY = "application/vnd.docker.multiplexed-stream"


def _detach_keys(raw: str | None) -> bytes:
    """The `detachKeys` query (or exec's DetachKeys), Docker's default when unset."""
    try:
        return detachkeys.parse(raw or detachkeys.DEFAULT)
    except ValueError as exc:
        raise InvalidArgument(str(exc)) from None


class _DetachingInput(trio.abc.ReceiveStream):
    """A client's input with the detach keys taken out; the keys end it (and call
    `on_detach`), as moby's escape proxy does."""

    def __init__(
        self, inner: trio.abc.ReceiveStream, keys: bytes, on_detach: Callable[[], None]
    ) -> None:
        self.inner = inner
        self.scanner = detachkeys.DetachScanner(keys)
        self.on_detach = on_detach

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        while True:
            if self.scanner.detached:
                return b""
            data = await self.inner.receive_some(max_bytes)
            if not data:
                return self.scanner.flush()
            passed, detached = self.scanner.feed(data)
            if detached:
                self.on_detach()
            if passed or detached:
                return passed

    async def aclose(self) -> None:
        await self.inner.aclose()


async def _copy_stdin(
    engine: Engine,
    cid: str,
    stream: trio.abc.HalfCloseableStream,
    once: bool,
    keys: bytes = b"",
    on_detach: Callable[[], None] = lambda: None,
) -> None:
    """Client bytes into the container's stdin pipe; end of input closes it if StdinOnce.

    An attach usually comes before the start (docker run does that), so the pipe may not
    exist yet: wait for the start rather than drop what the client sends.  With
    `keys` (a TTY), the detach keys end the attach and the container runs on.
    """
    c = engine.containers.get(cid)
    live = engine.live(c)
    source: trio.abc.ReceiveStream = _DetachingInput(stream, keys, on_detach) if keys else stream
    if live.stdin_w is None:
        await live.started.wait()
    # The pipe is held by its owner, never by number: if the run ends while this waits
    # on a full pipe, the close wakes it (ClosedResourceError) and no write can land
    # in whatever descriptor takes the number next.
    try:
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            while data := await source.receive_some(65536):
                pipe = live.stdin_w
                if pipe is None:
                    return
                view = memoryview(data)
                while view:
                    await trio.lowlevel.wait_writable(pipe.fileno())
                    view = view[os.write(pipe.fileno(), view) :]
    finally:
        # StdinOnce: the first attach's end (EOF, or the client gone) is the input's.
        if once and live.stdin_w is not None:
            pipe, live.stdin_w = live.stdin_w, None
            pipe.close()
