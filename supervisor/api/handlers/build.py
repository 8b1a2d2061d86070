"""`POST /build`: Docker's classic (non-BuildKit) build endpoint.

The body is the build context as a tar (plain or compressed); the query carries `t`
(repeatable), `dockerfile`, `buildargs` and `labels` (JSON), `target`, `nocache`, `q`,
`networkmode`.  The answer is the classic builder's JSON-lines stream, so
`DOCKER_BUILDKIT=0 docker build` and docker-py's `images.build` read it as Docker's;
a failure ends the stream with `{"errorDetail": {"message": ...}, "error": ...}`.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import structlog
import trio

from supervisor.api import schema
from supervisor.api.router import ApiRequest, ApiResponse, Router, StreamResponse
from supervisor.build.builder import Builder, BuildOptions, sweep, validate_tags
from supervisor.engine.engine import Engine
from supervisor.errors import CorralError, InvalidArgument
from supervisor.images.tarsafe import unpack_layer
from supervisor.rmtree import discard_tree

log = structlog.get_logger("corral.build")


def _json_map(req: ApiRequest, name: str) -> dict[str, Any]:
    """`buildargs` (Go: map[string]*string, so null values) or `labels` (map[string]string)."""
    value = req.query_json(name, {}) or {}
    if not isinstance(value, dict):
        raise InvalidArgument(f"{name} must be a JSON object")
    for v in value.values():
        if not isinstance(v, str) and not (v is None and name == "buildargs"):
            kind = schema.json_kind(v) if v is not None else "null"
            raise InvalidArgument(
                f"invalid {name}: json: cannot unmarshal {kind} into Go value of type string"
            )
    return value


def options_from_query(req: ApiRequest) -> BuildOptions:
    """The build's options from Docker's query parameters (pure over the request)."""
    if req.query_str("version") == "2":
        raise InvalidArgument(
            "BuildKit is not supported by corral; use the classic builder (DOCKER_BUILDKIT=0)"
        )
    if req.query_str("remote"):
        raise InvalidArgument("remote build contexts are not supported (no network)")
    args = _json_map(req, "buildargs")
    labels = _json_map(req, "labels")
    return BuildOptions(
        dockerfile=req.query_str("dockerfile") or "Dockerfile",
        tags=validate_tags([t for t in req.query_list("t") if t]),
        build_args={str(k): (None if v is None else str(v)) for k, v in args.items()},
        target=req.query_str("target") or "",
        no_cache=req.query_bool("nocache"),
        labels={str(k): str(v) for k, v in labels.items()},
        network_mode=req.query_str("networkmode") or "",
        quiet=req.query_bool("q"),
        pull=req.query_bool("pull"),
    )


def _line(obj: dict[str, Any]) -> bytes:
    return (json.dumps(obj) + "\r\n").encode()


def register(router: Router, engine: Engine) -> None:
    sweep(engine.root)

    @router.route("POST", "/build")
    async def build(req: ApiRequest) -> ApiResponse:
        opts = options_from_query(req)
        workdir = engine.root / "tmp" / "build" / secrets.token_hex(8)
        context = workdir / "context"
        try:
            context.mkdir(parents=True)
            tar = workdir / "context.tar"
            await req.save_body(tar)
            if tar.stat().st_size == 0:
                raise InvalidArgument("the build context is empty (send a tar of it)")
            await trio.to_thread.run_sync(_unpack, tar, context)
            tar.unlink()
        except BaseException:
            discard_tree(workdir)
            raise
        builder = Builder(engine, context, workdir, opts)

        async def body() -> AsyncIterator[bytes]:
            # The last line is held back until the scratch directory is gone, so a
            # client that sees the end of the build sees nothing of it left behind.
            last: bytes | None = None
            try:
                async for msg in builder.run():
                    if opts.quiet and "stream" in msg:
                        continue
                    if last is not None:
                        yield last
                    last = _line(msg)
                    if opts.quiet and "aux" in msg:
                        yield last
                        last = _line({"stream": msg["aux"]["ID"] + "\n"})
            except CorralError as e:
                log.info("build.failed", error=e.message)
                if last is not None:
                    yield last
                last = _line({"errorDetail": {"message": e.message}, "error": e.message})
            finally:
                with trio.CancelScope(shield=True):
                    await trio.to_thread.run_sync(_remove_workdir, workdir)
            if last is not None:
                yield last

        return StreamResponse(body(), "application/json")


def _remove_workdir(workdir: Path) -> None:
    """The build's scratch; never through a mount (a step's overlay is unmounted by
    then, but a crash mid-step must not make rmtree reach into image layers)."""
    from supervisor.runtime.rootfs import is_mounted, unmount

    for mp in workdir.glob("step-*/rootfs"):
        if is_mounted(mp):
            unmount(mp)
    discard_tree(workdir)


def _unpack(tar: Path, dest: Path) -> None:
    try:
        unpack_layer(tar, dest)
    except InvalidArgument as e:
        raise InvalidArgument(f"invalid build context: {e.message}") from None
