"""Image routes: list, inspect, history, tag, delete, import and pull (`POST /images/create`)."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from supervisor.api.handlers import image_views
from supervisor.api.handlers.images_pull import (
    make_auth,
    make_distribution,
    make_pull,
    make_push,
    make_search,
)
from supervisor.api.router import (
    ApiRequest,
    ApiResponse,
    EmptyResponse,
    JsonResponse,
    Router,
    StreamResponse,
)
from supervisor.distribution.jobs import Jobs
from supervisor.distribution.pull import Puller
from supervisor.distribution.push import Pusher
from supervisor.distribution.transport import HttpClient
from supervisor.engine.engine import Engine
from supervisor.errors import InvalidArgument
from supervisor.images.changes import parse_changes


def register(router: Router, engine: Engine) -> None:
    images = engine.images
    jobs = Jobs(engine.nursery)
    hosts = engine.registries
    http = HttpClient(tls_for=hosts.tls_context)
    puller = Puller(images, http, hosts=hosts)
    pull = make_pull(engine, jobs, puller)
    router.add("GET", "/distribution/{name:.*}/json", make_distribution(puller))
    pusher = Pusher(images, http, hosts=hosts)
    router.add("POST", "/images/{name:.*}/push", make_push(engine, jobs, pusher))
    router.add("POST", "/auth", make_auth(http, hosts))
    router.add("GET", "/images/search", make_search(http, hosts))

    @router.route("GET", "/images/json")
    async def list_(req: ApiRequest) -> ApiResponse:
        filters = req.query_filters()
        out = []
        for rec in images.list(all=req.query_bool("all")):
            tags = images.tags_of(rec.id)
            if "reference" in filters and not any(
                any(_ref_match(f, t) for t in tags) for f in filters["reference"]
            ):
                continue
            if "dangling" in filters and (bool(tags) == (filters["dangling"][0] in ("true", "1"))):
                continue
            out.append(image_views.list_row(images, rec.id, rec.created, rec.size, tags))
        return JsonResponse(out)

    @router.route("GET", "/images/{name:.*}/json")
    async def inspect(req: ApiRequest, name: str) -> ApiResponse:
        return JsonResponse(image_views.inspect(images, name))

    @router.route("GET", "/images/{name:.*}/history")
    async def history(req: ApiRequest, name: str) -> ApiResponse:
        platform = req.query_str("platform") or ""
        if platform:  # the image has one platform: it must be the one asked for
            import json as _json

            from supervisor.engine.create import check_platform

            try:
                want = _json.loads(platform)
            except ValueError:
                raise InvalidArgument(f"invalid platform: {platform}") from None
            if not isinstance(want, dict):
                raise InvalidArgument(f"invalid platform: {platform}")
            text = "/".join(str(want.get(k) or "") for k in ("os", "architecture", "variant"))
            check_platform(text.rstrip("/"), images.config(images.resolve(name).id))
        return JsonResponse(image_views.history(images, name))

    @router.route("POST", "/images/{name:.*}/tag")
    async def tag(req: ApiRequest, name: str) -> ApiResponse:
        repo = req.query_str("repo") or ""
        tag_ = req.query_str("tag") or ""
        if not repo:
            raise InvalidArgument("repository name must have at least one component")
        target = f"{repo}:{tag_}" if tag_ else repo
        await images.run(images.tag, name, target)
        engine.events.publish("image", "tag", images.resolve(target).id, {"name": target})
        return EmptyResponse(201)

    @router.route("DELETE", "/images/{name:.*}")
    async def delete(req: ApiRequest, name: str) -> ApiResponse:
        result = await images.run(
            images.delete, name, force=req.query_bool("force"),
            in_use=image_views.in_use_on_trio(engine.image_user),
        )
        for entry in result:
            if "Untagged" in entry:
                engine.events.publish("image", "untag", name, {"name": entry["Untagged"]})
            elif entry.get("Deleted", "").startswith("sha256:"):
                engine.events.publish("image", "delete", entry["Deleted"], {"name": name})
        return JsonResponse(result)

    @router.route("POST", "/images/create")
    async def create(req: ApiRequest) -> ApiResponse:
        src = req.query_str("fromSrc")
        if src is None:
            return await pull(req)
        if src != "-":
            raise InvalidArgument("import from a URL is not supported (no network); use -")
        repo = req.query_str("repo") or ""
        tag_ = req.query_str("tag") or ""
        ref = (f"{repo}:{tag_}" if tag_ else repo) or None
        changes = parse_changes(req.query_list("changes"))
        message = req.query_str("message") or ""
        tmpdir = engine.root / "tmp"
        tmpdir.mkdir(exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=tmpdir, suffix=".tar")
        os.close(fd)
        try:
            await req.save_body(tmp)
            rec = await images.run(
                images.import_tar, Path(tmp), ref, changes=changes, message=message
            )
            engine.events.publish("image", "import", rec.id, {"name": ref or ""})
        finally:
            os.unlink(tmp)

        async def body() -> AsyncIterator[bytes]:
            yield (json.dumps({"status": rec.id}) + "\n").encode()

        return StreamResponse(body(), "application/json")


def _ref_match(pattern: str, tag: str) -> bool:
    import fnmatch

    if ":" not in pattern.rsplit("/", 1)[-1]:  # no tag (a registry's :port is not one)
        return fnmatch.fnmatch(tag.rsplit(":", 1)[0], pattern)
    return fnmatch.fnmatch(tag, pattern)
