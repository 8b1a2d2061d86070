"""Volume routes: create, list, inspect, remove, prune."""

from __future__ import annotations

from supervisor.api import schema, types
from supervisor.api.router import ApiRequest, ApiResponse, EmptyResponse, JsonResponse, Router
from supervisor.engine.engine import Engine
from supervisor.errors import InvalidArgument


def register(router: Router, engine: Engine) -> None:
    vols = engine.volumes

    @router.route("POST", "/volumes/create")
    async def create(req: ApiRequest) -> ApiResponse:
        body = await req.read_typed(lambda b: schema.check(b, types.VOLUME_CREATE))
        driver = body.get("Driver") or "local"
        if driver != "local":
            raise InvalidArgument(f"volume driver {driver!r} is not supported (only local)")
        vol, new = vols.create(
            body.get("Name") or "", body.get("Labels") or {}, options=body.get("DriverOpts") or {}
        )
        if new:
            engine.events.publish("volume", "create", vol.name, {"driver": "local"})
        return JsonResponse(vol.to_api(), 201)

    @router.route("GET", "/volumes")
    async def list_(req: ApiRequest) -> ApiResponse:
        filters = req.query_filters()
        out = []
        for v in vols.list_all():
            if "name" in filters and not any(f in v.name for f in filters["name"]):
                continue
            if "dangling" in filters:
                dangling = engine.volume_user(v.name) is None
                if (
                    str(dangling).lower() not in [x.lower() for x in filters["dangling"]]
                    and ("1" if dangling else "0") not in filters["dangling"]
                ):
                    continue
            if "label" in filters and not all(
                (v.labels.get(k) == val) if sep else (k in v.labels)
                for k, sep, val in (x.partition("=") for x in filters["label"])
            ):
                continue
            out.append(v.to_api())
        return JsonResponse({"Volumes": out, "Warnings": []})

    @router.route("GET", "/volumes/{name}")
    async def inspect(req: ApiRequest, name: str) -> ApiResponse:
        return JsonResponse(vols.get(name).to_api())

    @router.route("DELETE", "/volumes/{name}")
    async def remove(req: ApiRequest, name: str) -> ApiResponse:
        vols.remove(name, in_use_by=engine.volume_user, force=req.query_bool("force"))
        engine.events.publish("volume", "destroy", name, {"driver": "local"})
        return EmptyResponse(204)

    @router.route("POST", "/volumes/prune")
    async def prune(req: ApiRequest) -> ApiResponse:
        from supervisor.engine.prune import parse_filters

        flt = parse_filters("volumes", req.query_filters(), 0.0)
        removed, space = vols.prune(in_use_by=engine.volume_user, all_volumes=flt.all,
                                    keep=lambda v: flt.keeps(0.0, v.labels))
        for name in removed:
            engine.events.publish("volume", "destroy", name, {"driver": "local"})
        return JsonResponse({"VolumesDeleted": removed, "SpaceReclaimed": space})
