"""Compose is a component of its own: the daemon never loads the CLI, and drives its
projects in-process through `InProcessEngine` (the same applier the CLI runs over the
socket)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from supervisor.api.client import ApiError
from supervisor.api.router import (
    ApiRequest,
    ApiResponse,
    EmptyResponse,
    JsonResponse,
    Router,
    StreamResponse,
)
from supervisor.compose.engine import ComposeEngine, InProcessEngine
from supervisor.errors import NotFound

ROOT = Path(__file__).resolve().parent.parent


def _module_file(name: str) -> Path | None:
    base = ROOT / Path(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imports(path: Path, module: str) -> set[str]:
    """Every module `path` imports, at any depth (lazy imports inside functions too)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)
    return found


def daemon_closure() -> dict[str, str]:
    """The project's modules the daemon can load, each with one importer: followed from
    `supervisor.daemon` through every import, lazy ones included."""
    seen: dict[str, str] = {"supervisor.daemon": ""}
    todo = ["supervisor.daemon"]
    while todo:
        name = todo.pop()
        path = _module_file(name)
        if path is None:
            continue
        for dep in sorted(_imports(path, name)):
            top = dep.partition(".")[0]
            ours = top in ("supervisor", "config", "metrics")
            if ours and dep not in seen and _module_file(dep) is not None:
                seen[dep] = name
                todo.append(dep)
    return seen


def test_the_daemon_imports_no_cli_module() -> None:
    closure = daemon_closure()
    assert "supervisor.compose.projects" in closure  # the walk does reach compose
    assert "supervisor.compose.servicesdir" in closure
    offenders = {m: by for m, by in closure.items() if m.startswith("supervisor.cli")}
    assert offenders == {}, f"the daemon reaches the CLI: {offenders}"


def test_loading_the_daemons_modules_loads_no_cli_module() -> None:
    modules = sorted(m for m in daemon_closure() if not m.startswith("supervisor.cli"))
    code = (
        "import importlib, json, sys\n"
        f"for m in {modules!r}:\n"
        "    importlib.import_module(m)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('supervisor.cli'))))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert json.loads(out.stdout) == []


def test_the_clis_compose_loads_no_daemon_side_module() -> None:
    """`corral compose up` pays for its imports at every call (issue 18: a 20-replica
    up spent most of its CLI time importing): the API's router, its schema and the
    rollout executor are the daemon's (and a rollout's) only."""
    code = (
        "import json, sys\n"
        "import supervisor.cli.compose, supervisor.compose.applier, supervisor.compose.engine\n"
        "print(json.dumps(sorted(m for m in sys.modules if m in (\n"
        "    'supervisor.api.router', 'supervisor.api.schema', 'supervisor.rollout.executor'))))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert json.loads(out.stdout) == []


# -- InProcessEngine -------------------------------------------------------------------


def _router() -> Router:
    router = Router()

    async def inspect(req: ApiRequest, id: str) -> ApiResponse:
        if id == "nope":
            raise NotFound(f"No such container: {id}")
        return JsonResponse({"Id": id, "all": req.query_bool("all")})

    async def create(req: ApiRequest) -> ApiResponse:
        body = await req.read_json()
        return JsonResponse({"Id": "c1", "got": body, "name": req.query_str("name")}, 201)

    async def start(req: ApiRequest, id: str) -> ApiResponse:
        return EmptyResponse(304)  # already started

    closed: list[str] = []

    async def events(req: ApiRequest) -> ApiResponse:
        async def body() -> AsyncIterator[bytes]:
            try:
                for n in range(1000):
                    yield (json.dumps({"n": n}) + "\n").encode()
            finally:
                closed.append("events")

        return StreamResponse(body())

    async def archive(req: ApiRequest, id: str) -> ApiResponse:
        data = await req.read_body()
        if req.header("content-type") != "application/x-tar":
            raise NotFound("wrong type")
        return JsonResponse({"size": len(data)})

    router.add("GET", "/containers/{id}/json", inspect)
    router.add("POST", "/containers/create", create)
    router.add("POST", "/containers/{id}/start", start)
    router.add("GET", "/events", events)
    router.add("PUT", "/containers/{id}/archive", archive)
    router.closed = closed  # type: ignore[attr-defined]
    return router


async def test_in_process_engine_answers_as_the_socket_would() -> None:
    router = _router()
    engine: ComposeEngine = InProcessEngine(router)
    assert await engine.request("GET", "/containers/abc/json", {"all": True}) == {
        "Id": "abc",
        "all": True,
    }
    made = await engine.request("POST", "/containers/create", {"name": "p-web-1"}, {"Image": "x"})
    assert made == {"Id": "c1", "got": {"Image": "x"}, "name": "p-web-1"}
    assert await engine.request("POST", "/containers/c1/start") is None  # 304 is no error
    with pytest.raises(ApiError) as err:
        await engine.request("GET", "/containers/nope/json")
    assert (err.value.status, err.value.message) == (404, "No such container: nope")
    with pytest.raises(ApiError) as err:
        await engine.request("GET", "/no/such/route")
    assert err.value.status == 404
    await engine.send_raw("PUT", "/containers/c1/archive", {"path": "/"}, b"x" * 10,
                          "application/x-tar")


async def test_in_process_stream_is_closed_when_the_reader_leaves() -> None:
    router = _router()
    engine = InProcessEngine(router)
    body = await engine.open("GET", "/events")
    got = []
    async with body:
        async for chunk in body.chunks():
            got.append(json.loads(chunk))
            if len(got) == 3:
                break
    assert got == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert router.closed == ["events"]  # type: ignore[attr-defined]
