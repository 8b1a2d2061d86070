"""Network routes: list, inspect, create, remove, connect, disconnect, prune."""

from __future__ import annotations

from typing import Any

from supervisor.api import schema, types
from supervisor.api.router import ApiRequest, ApiResponse, EmptyResponse, JsonResponse, Router
from supervisor.engine.engine import Engine
from supervisor.errors import InvalidArgument


def _matches(view: dict[str, Any], filters: dict[str, list[str]]) -> bool:
    for key, values in filters.items():
        if not values:
            continue
        if key == "name":
            ok = any(v in view["Name"] for v in values)
        elif key == "id":
            ok = any(view["Id"].startswith(v) for v in values)
        elif key == "driver":
            ok = view["Driver"] in values
        elif key == "type":
            builtin = view["Name"] in ("bridge", "host", "none")
            ok = ("builtin" in values and builtin) or ("custom" in values and not builtin)
        elif key == "label":
            labels = view.get("Labels") or {}
            ok = all(
                (labels.get(k) == v) if sep else (k in labels)
                for k, sep, v in (x.partition("=") for x in values)
            )
        elif key == "dangling":
            dangling = not view["Containers"] and view["Name"] not in ("bridge", "host", "none")
            ok = any(v.lower() in (("true", "1") if dangling else ("false", "0")) for v in values)
        else:
            raise InvalidArgument(f"invalid filter '{key}'")
        if not ok:
            return False
    return True


def register(router: Router, engine: Engine) -> None:
    nets = engine.networks

    @router.route("GET", "/networks")
    async def list_(req: ApiRequest) -> ApiResponse:
        filters = req.query_filters()
        return JsonResponse([v for v in nets.views() if _matches(v, filters)])

    @router.route("GET", "/networks/{id}")
    async def inspect(req: ApiRequest, id: str) -> ApiResponse:
        return JsonResponse(nets.lookup_view(id))

    @router.route("POST", "/networks/create")
    async def create(req: ApiRequest) -> ApiResponse:
        body = await req.read_typed(lambda b: schema.check(b, types.NETWORK_CREATE))
        net = nets.create_network(body)
        return JsonResponse({"Id": net.id, "Warning": ""}, 201)

    @router.route("DELETE", "/networks/{id}")
    async def remove(req: ApiRequest, id: str) -> ApiResponse:
        nets.remove_network(id)
        return EmptyResponse(204)

    @router.route("POST", "/networks/{id}/connect")
    async def connect(req: ApiRequest, id: str) -> ApiResponse:
        body = await req.read_typed(schema.check_network_connect)
        c = engine.containers.get(str(body.get("Container") or ""))
        await nets.connect(id, c, body.get("EndpointConfig") or {}, engine.dir_of(c))
        return EmptyResponse(200)

    @router.route("POST", "/networks/{id}/disconnect")
    async def disconnect(req: ApiRequest, id: str) -> ApiResponse:
        body = await req.read_typed(lambda b: schema.check(b, types.NETWORK_DISCONNECT))
        c = engine.containers.get(str(body.get("Container") or ""))
        await nets.disconnect(id, c, engine.dir_of(c))
        return EmptyResponse(200)

    @router.route("POST", "/networks/prune")
    async def prune(req: ApiRequest) -> ApiResponse:
        import time

        from supervisor.engine.prune import parse_filters
        from supervisor.engine.timefmt import parse_rfc3339

        flt = parse_filters("networks", req.query_filters(), time.time())

        def keep(net: Any) -> bool:
            view = nets.view(net)
            try:
                created = parse_rfc3339(str(view.get("Created") or ""))
            except ValueError:
                created = 0.0
            return flt.keeps(created, view.get("Labels"))

        return JsonResponse({"NetworksDeleted": nets.prune(keep)})
