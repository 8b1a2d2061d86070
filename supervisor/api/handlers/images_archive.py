"""Image archive routes: `GET /images/get`, `GET /images/{name}/get` (docker save) and
`POST /images/load` (docker load).  The archive format lives in `images/archive.py`.

Save streams the tar as it is produced (blob files are opened before the first byte,
so a concurrent rmi cannot cut it short).  Load stores the upload in scratch, reads and
verifies it in a worker thread (no rows are touched there), then commits every image
at once on the trio thread; a failure anywhere leaves nothing behind.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import trio

from supervisor.api.router import ApiRequest, ApiResponse, Router, StreamResponse
from supervisor.engine.engine import Engine
from supervisor.errors import InvalidArgument
from supervisor.images import archive
from supervisor.rmtree import discard_tree


def register(router: Router, engine: Engine) -> None:
    images = engine.images

    async def save(names: list[str]) -> ApiResponse:
        if not names:
            raise InvalidArgument("no images to save: give at least one name")
        items = archive.select_images(images, names)
        plan = archive.SavePlan(images, items)
        for item in items:
            engine.events.publish("image", "save", item.image.id, {"name": item.image.id})
        return StreamResponse(plan.stream(), "application/x-tar")

    @router.route("GET", "/images/get")
    async def get_many(req: ApiRequest) -> ApiResponse:
        return await save(req.query_list("names"))

    @router.route("GET", "/images/{name:.*}/get")
    async def get_one(req: ApiRequest, name: str) -> ApiResponse:
        return await save([name])

    @router.route("POST", "/images/load")
    async def load(req: ApiRequest) -> ApiResponse:
        workdir = Path(tempfile.mkdtemp(dir=images.tmp, prefix="load-"))
        try:
            upload = workdir / "upload"
            if await req.save_body(upload) == 0:
                raise InvalidArgument("invalid image archive: the request body is empty")
            staged = await images.run(
                archive.read_archive, images, upload, workdir, images.layer_ids()
            )
            added = await images.run(images.add_images, staged)
        finally:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(discard_tree, workdir)
        for a in added:
            engine.events.publish("image", "load", a.id, {"name": a.tags[0] if a.tags else a.id})
        lines = archive.loaded_lines(added)

        async def body() -> AsyncIterator[bytes]:
            for line in lines:
                yield (json.dumps({"stream": line + "\n"}) + "\n").encode()

        return StreamResponse(body(), "application/json")
