"""Looking into a container: `GET /containers/{id}/top` (the host's ps, filtered to the
container's cgroup, `engine/top.py`) and `GET /containers/{id}/changes` (its writable
layer against its image, `engine/fschanges.py`)."""

from __future__ import annotations

import trio

from supervisor.api.router import ApiRequest, ApiResponse, JsonResponse, Router
from supervisor.engine import top
from supervisor.engine.engine import Engine
from supervisor.engine.fschanges import upper_changes
from supervisor.engine.state import Status
from supervisor.errors import Conflict, CorralError


class PsFailed(CorralError):
    status = 500


def register(router: Router, engine: Engine) -> None:
    get = engine.containers.get

    @router.route("GET", "/containers/{id}/top")
    async def top_(req: ApiRequest, id: str) -> ApiResponse:
        ps_args = req.query_str("ps_args") or top.DEFAULT_PS_ARGS
        top.validate_ps_args(ps_args)
        c = get(id)
        if c.state.status is Status.RESTARTING:
            raise Conflict(f"Container {c.id} is restarting, wait until the container is running")
        if c.state.status not in (Status.RUNNING, Status.PAUSED):
            raise Conflict(f"container {c.id} is not running")
        pids = await trio.to_thread.run_sync(top.container_pids, engine.cgroup_path(c))
        result = await trio.run_process(top.ps_argv(ps_args, pids), capture_stdout=True,
                                        capture_stderr=True, check=False)
        if result.returncode != 0:
            # some ps options (f) cannot go with -q: docker runs ps again without
            result = await trio.run_process(top.ps_argv(ps_args, None), capture_stdout=True,
                                            capture_stderr=True, check=False)
            if result.returncode != 0:
                why = result.stderr.decode(errors="replace").split("\n", 1)[0]
                raise PsFailed(f"ps: {why or f'exit status {result.returncode}'}")
        body = top.parse_ps_output(result.stdout.decode(errors="replace"), set(pids))
        engine.emit(c, "top")
        return JsonResponse(body)

    @router.route("GET", "/containers/{id}/changes")
    async def changes(req: ApiRequest, id: str) -> ApiResponse:
        c = get(id)
        cdir = engine.dir_of(c)
        lowers = engine.lowers_of(c)[::-1]  # the nearest first
        found = await trio.to_thread.run_sync(upper_changes, cdir / "upper", lowers)
        return JsonResponse([{"Path": path, "Kind": kind} for path, kind in found])
