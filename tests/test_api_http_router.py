"""Router tests, without sockets (`Router.request`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from supervisor.api.router import (
    API_VERSION,
    UNMATCHED,
    ApiRequest,
    ApiResponse,
    EmptyResponse,
    FixedResponse,
    JsonResponse,
    Router,
    TextResponse,
)
from supervisor.errors import Conflict, NotFound, NotModified


def body_json(resp: ApiResponse) -> object:
    assert isinstance(resp, FixedResponse)
    return json.loads(resp.body)


def make_router() -> Router:
    r = Router()

    @r.route("GET", "/containers/json")
    async def ps(req: ApiRequest) -> ApiResponse:
        return JsonResponse(
            {
                "route": req.route,
                "version": req.api_version,
                "all": req.query_bool("all"),
                "limit": req.query_int("limit", -1),
                "filters": req.query_filters(),
            }
        )

    @r.route("GET", "/containers/{id}/json")
    async def inspect(req: ApiRequest, id: str) -> ApiResponse:
        if id == "missing":
            raise NotFound(f"No such container: {id}")
        return JsonResponse({"Id": id, "route": req.route, "path": req.path})

    @r.route("POST", "/containers/{id}/start")
    async def start(req: ApiRequest, id: str) -> ApiResponse:
        if id == "running":
            raise NotModified("already started")
        if id == "conflict":
            raise Conflict("nope")
        if id == "boom":
            raise RuntimeError("kaboom")
        return EmptyResponse()

    @r.route("GET", "/images/{name:.*}/json")
    async def image(req: ApiRequest, name: str) -> ApiResponse:
        return JsonResponse({"name": name})

    @r.route("DELETE", "/images/{name:.*}")
    async def rmi(req: ApiRequest, name: str) -> ApiResponse:
        return JsonResponse([{"Deleted": name}])

    @r.route("POST", "/containers/create")
    async def create(req: ApiRequest) -> ApiResponse:
        body = await req.read_json()
        return JsonResponse({"got": body, "name": req.query_str("name")}, status=201)

    return r


async def test_params_and_version_prefix() -> None:
    r = make_router()
    resp = await r.request("GET", "/v1.41/containers/abc/json")
    assert resp.status == 200
    assert body_json(resp) == {
        "Id": "abc",
        "route": "/containers/{id}/json",
        "path": "/containers/abc/json",
    }
    resp = await r.request("GET", "/containers/json?all=1&limit=3")
    assert body_json(resp) == {
        "route": "/containers/json",
        "version": API_VERSION,
        "all": True,
        "limit": 3,
        "filters": {},
    }
    resp = await r.request("GET", "/v1.30/containers/json?all=false")
    data = body_json(resp)
    assert isinstance(data, dict) and data["version"] == "1.30" and data["all"] is False


async def test_greedy_params() -> None:
    r = make_router()
    resp = await r.request("GET", "/v1.44/images/library/busybox:latest/json")
    assert body_json(resp) == {"name": "library/busybox:latest"}
    resp = await r.request("DELETE", "/images/reg.io:5000/a/b:1")
    assert body_json(resp) == [{"Deleted": "reg.io:5000/a/b:1"}]


async def test_version_too_new_and_too_old() -> None:
    r = make_router()
    resp = await r.request("GET", "/v1.50/containers/json")
    assert resp.status == 400
    assert body_json(resp) == {
        "message": "client version 1.50 is too new. Maximum supported API version is 1.44"
    }
    resp = await r.request("GET", "/v1.12/containers/json")
    assert resp.status == 400
    msg = body_json(resp)
    assert isinstance(msg, dict) and "too old" in msg["message"]


async def test_404_and_405() -> None:
    r = make_router()
    resp = await r.request("GET", "/v1.44/nope")
    assert resp.status == 404 and body_json(resp) == {"message": "page not found"}
    resp = await r.request("DELETE", "/containers/abc/json")
    assert resp.status == 405
    assert resp.header("allow") == "GET"


async def test_error_mapping() -> None:
    r = make_router()
    resp = await r.request("GET", "/containers/missing/json")
    assert resp.status == 404 and body_json(resp) == {"message": "No such container: missing"}
    resp = await r.request("POST", "/containers/running/start")
    assert resp.status == 304 and isinstance(resp, FixedResponse) and resp.body == b""
    resp = await r.request("POST", "/containers/conflict/start")
    assert resp.status == 409
    resp = await r.request("POST", "/containers/boom/start")
    assert resp.status == 500 and body_json(resp) == {"message": "kaboom"}
    resp = await r.request("POST", "/containers/ok/start")
    assert resp.status == 204


async def test_json_body() -> None:
    r = make_router()
    resp = await r.request("POST", "/containers/create?name=web", b'{"Image": "busybox"}')
    assert resp.status == 201
    assert body_json(resp) == {"got": {"Image": "busybox"}, "name": "web"}
    resp = await r.request("POST", "/containers/create", b"{bad json")
    assert resp.status == 400
    msg = body_json(resp)
    assert isinstance(msg, dict) and msg["message"].startswith("invalid JSON: ")
    resp = await r.request("POST", "/containers/create", b"")
    assert body_json(resp) == {"got": None, "name": None}


async def test_ping_get_and_head() -> None:
    r = Router()
    for method in ("GET", "HEAD"):
        resp = await r.request(method, "/_ping")
        assert isinstance(resp, TextResponse) and resp.text == "OK"
        assert resp.header("api-version") == API_VERSION
        assert resp.header("ostype") == "linux"


async def test_head_falls_back_to_get() -> None:
    r = make_router()
    resp = await r.request("HEAD", "/containers/abc/json")
    assert resp.status == 200


def test_query_helpers() -> None:
    req = ApiRequest(
        "GET",
        "/x?a=1&b=True&c=0&d=false&e=&f=no&n=12&bad=x&j=%7B%22k%22%3A1%7D"
        "&filters=%7B%22label%22%3A%7B%22a%3Db%22%3Atrue%7D%2C%22name%22%3A%5B%22x%22%5D%7D",
    )
    assert [req.query_bool(k) for k in "abcdef"] == [True, True, False, False, False, False]
    assert req.query_bool("missing", True) is True
    assert req.query_int("n") == 12 and req.query_int("missing", 5) == 5
    with pytest.raises(Exception, match="not an integer"):
        req.query_int("bad")
    assert req.query_json("j") == {"k": 1}
    with pytest.raises(Exception, match="invalid JSON"):
        req.query_json("bad")
    assert req.query_filters() == {"label": ["a=b"], "name": ["x"]}


async def test_body_helpers(tmp_path: Path) -> None:
    req = ApiRequest("POST", "/x", body=b"abc")
    assert await req.read_body() == b"abc"
    assert await req.read_body() == b""
    req = ApiRequest("POST", "/x", body=b"payload")
    assert await req.save_body(tmp_path / "f") == 7
    assert (tmp_path / "f").read_bytes() == b"payload"
    req = ApiRequest("POST", "/x", body=b"0123456789")
    with pytest.raises(Exception, match="exceeds"):
        await req.read_body(limit=5)


async def test_observer_and_unmatched() -> None:
    seen: list[tuple[str, str, int, float]] = []
    r = Router(observer=lambda m, t, s, d: seen.append((m, t, s, d)))
    req = ApiRequest("GET", "/v1.44/what")
    resp = await r.dispatch(req)
    assert resp.status == 404 and req.route == UNMATCHED
    r.observe("GET", req.route, resp.status, 0.5)
    assert seen == [("GET", UNMATCHED, 404, 0.5)]


async def test_route_replacement() -> None:
    r = Router()

    @r.route("GET", "/_ping")
    async def ping(req: ApiRequest) -> ApiResponse:
        return TextResponse("custom")

    resp = await r.request("GET", "/_ping")
    assert isinstance(resp, TextResponse) and resp.text == "custom"
