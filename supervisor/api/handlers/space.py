"""Disk space: `POST /containers/prune`, `POST /images/prune` and `GET /system/df`, in
Docker's shapes (filters in `engine/prune.py`).  Sizes are read in worker threads.

`SpaceReclaimed` of an image prune is the layers that went (a layer another image
still uses stays, and is not counted), as Docker counts it; of a container prune, the
writable layers removed.  `/system/df`'s build cache is empty: corral's classic
builder keeps its cache as images, which the Images list already counts.
"""

from __future__ import annotations

import time
from typing import Any

import trio

from supervisor.api import views
from supervisor.api.handlers import image_views
from supervisor.api.router import ApiRequest, ApiResponse, JsonResponse, Router
from supervisor.build.cache import BuildCache
from supervisor.engine import prune
from supervisor.engine.engine import Engine
from supervisor.engine.state import Status
from supervisor.engine.timefmt import parse_rfc3339
from supervisor.errors import CorralError, InvalidArgument

_ACTIVE = (Status.RUNNING, Status.PAUSED, Status.RESTARTING)
DF_TYPES = ("container", "image", "volume", "build-cache")


def _layer_sizes(engine: Engine) -> dict[str, int]:
    return engine.images.layer_sizes()


def _created(stamp: str) -> float:
    try:
        return parse_rfc3339(stamp)
    except ValueError:
        return 0.0


def register(router: Router, engine: Engine) -> None:
    @router.route("POST", "/containers/prune")
    async def containers_prune(req: ApiRequest) -> ApiResponse:
        flt = prune.parse_filters("containers", req.query_filters(), time.time())
        deleted: list[str] = []
        reclaimed = 0
        for c in engine.containers.all():
            if c.state.status in _ACTIVE or engine.live(c).removing:
                continue
            if flt.keeps(_created(c.created), c.config.get("Labels")):
                continue
            size = await trio.to_thread.run_sync(prune.du, engine.dir_of(c) / "upper")
            try:
                await engine.remove(c)
            except CorralError:
                continue  # started meanwhile: not prunable any more
            deleted.append(c.id)
            reclaimed += size
        engine.events.publish("container", "prune", "", {"reclaimed": str(reclaimed)})
        return JsonResponse({"ContainersDeleted": deleted or None, "SpaceReclaimed": reclaimed})

    @router.route("POST", "/images/prune")
    async def images_prune(req: ApiRequest) -> ApiResponse:
        flt = prune.parse_filters("images", req.query_filters(), time.time())
        dangling_only = flt.dangling is not False
        images = engine.images
        before = _layer_sizes(engine)
        records = images.list()
        parents = {r.parent for r in records if r.parent}
        report: list[dict[str, str]] = []
        for rec in records:
            if not images.exists(rec.id):
                continue  # went with a child deleted before it
            tags = images.tags_of(rec.id)
            if dangling_only and tags:
                continue
            if not tags and rec.id in parents:
                continue  # an intermediate image: its child's history
            if engine.image_user(rec.id) is not None:
                continue
            labels = (images.config(rec.id).get("config") or {}).get("Labels")
            if flt.keeps(rec.created, labels):
                continue
            for ref in tags or [rec.id]:
                try:
                    report.extend(await images.run(
                        images.delete, ref,
                        in_use=image_views.in_use_on_trio(engine.image_user)))
                except CorralError:
                    continue
        after = _layer_sizes(engine)
        reclaimed = sum(size for d, size in before.items() if d not in after)
        for entry in report:
            if "Untagged" in entry:
                engine.events.publish("image", "untag", entry["Untagged"],
                                      {"name": entry["Untagged"]})
            elif "Deleted" in entry:
                engine.events.publish("image", "delete", entry["Deleted"],
                                      {"name": entry["Deleted"]})
        engine.events.publish("image", "prune", "", {"reclaimed": str(reclaimed)})
        return JsonResponse({"ImagesDeleted": report or None, "SpaceReclaimed": reclaimed})

    @router.route("POST", "/build/prune")
    async def build_prune(req: ApiRequest) -> ApiResponse:
        """The classic builder's cache is a table of step keys -> images: pruning it
        forgets the keys (the images, untagged, go with `image prune`)."""
        flt = prune.parse_filters("build", req.query_filters(), time.time())
        db = BuildCache(engine.images.db).db  # its table made if no build ran yet
        rows = db.execute("SELECT key, created FROM build_cache").fetchall()
        keys = [str(r["key"]) for r in rows if not flt.keeps(float(r["created"]), {})]
        for key in keys:
            db.execute("DELETE FROM build_cache WHERE key = ?", (key,))
        return JsonResponse({"CachesDeleted": keys or None, "SpaceReclaimed": 0})

    @router.route("GET", "/system/df")
    async def df(req: ApiRequest) -> ApiResponse:
        wanted = req.query_list("type") or list(DF_TYPES)
        for t in wanted:
            if t not in DF_TYPES:
                raise InvalidArgument(f"unknown object type: {t}")
        body: dict[str, Any] = {"LayersSize": 0, "Images": None, "Containers": None,
                                "Volumes": None, "BuildCache": None}
        containers = engine.containers.all()
        if "image" in wanted:
            sizes = _layer_sizes(engine)
            body["LayersSize"] = sum(sizes.values())
            records = engine.images.list()
            users: dict[str, int] = {}
            for layer in (d for r in records for d in set(r.layers)):
                users[layer] = users.get(layer, 0) + 1
            body["Images"] = [
                {
                    "Id": r.id,
                    "ParentId": r.parent or "",
                    "RepoTags": engine.images.tags_of(r.id),
                    "RepoDigests": r.repo_digests,
                    "Created": int(r.created),
                    "Size": r.size,
                    "SharedSize": sum(sizes.get(d, 0) for d in set(r.layers)
                                      if users.get(d, 0) > 1),
                    "Labels": (engine.images.config(r.id).get("config") or {}).get("Labels")
                    or {},
                    "Containers": sum(1 for c in containers if c.image_id == r.id),
                }
                for r in records
            ]
        if "container" in wanted:
            out = []
            for c in containers:
                summary = views.container_summary(
                    c, engine.networks.ports_summary(c), engine.networks.summary_networks(c))
                size_rw = await trio.to_thread.run_sync(prune.du, engine.dir_of(c) / "upper")
                image_size = next((r.size for r in engine.images.list() if r.id == c.image_id),
                                  0)
                summary["SizeRw"] = size_rw
                summary["SizeRootFs"] = size_rw + image_size
                out.append(summary)
            body["Containers"] = out
        if "volume" in wanted:
            vols = []
            for v in engine.volumes.list_all():
                size = await trio.to_thread.run_sync(prune.du, v.mountpoint)
                refs = sum(1 for c in containers
                           if any(m.type == "volume" and m.name == v.name for m in c.mounts))
                vols.append({**v.to_api(), "UsageData": {"Size": size, "RefCount": refs}})
            body["Volumes"] = vols
        if "build-cache" in wanted:
            body["BuildCache"] = []
        return JsonResponse(body)
