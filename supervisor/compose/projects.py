"""Projects the daemon owns: `corral up -d` hands a project over and the daemon keeps it.

The daemon stores the project (its normalized model, `config.handover`) in its SQLite
database and converges it with the same `Applier` as `corral compose up` and
`--services DIR`: at once, streaming compose's progress lines back to the CLI, and again
at every boot, so a daemon restart (clean or kill -9) brings the project back, services
without a restart policy included. `corral down` takes it back (DELETE), then tears
the containers down as before. The routes are corral's own, beside Docker's:

    POST   /corral/projects          the handover body → JSON lines: {"status": line}...
                                     then {"error": message} per failure; kept on success
    GET    /corral/projects          [{Name, WorkingDir, ConfigFiles, Services, Scale,
                                     Status, Error, Created, Updated}]; `?wait=1` answers
                                     once the boot-time reconcile of every project is over
    DELETE /corral/projects/{name}   forget it (a reconcile under way is called off): 204

Between boots the containers are kept by their restart policies, as compose leaves them;
a removed container comes back at the next `up -d` or daemon start.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections import defaultdict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import structlog
import trio

from config.handover import Handover, HandoverError, from_wire
from supervisor.api.client import ApiError
from supervisor.api.router import (
    ApiRequest,
    ApiResponse,
    EmptyResponse,
    JsonResponse,
    Router,
    StreamResponse,
)
from supervisor.errors import InvalidArgument, NotFound

from .applier import Applier, ComposeError
from .engine import ComposeEngine

if TYPE_CHECKING:
    from supervisor.metadata.database import Database

log = structlog.get_logger("corral.projects")

DDL = """
CREATE TABLE IF NOT EXISTS compose_projects (
    name    TEXT PRIMARY KEY,
    spec    TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL
);
"""


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for e in exc.exceptions for leaf in _leaves(e)]
    return [exc]


class Keeper:
    """The stored projects, one reconcile at a time per project."""

    def __init__(self, db: Database, engine: ComposeEngine) -> None:
        self.db = db
        db.ensure_schema(DDL)
        self.api = engine
        self._nursery: trio.Nursery | None = None
        self._running = trio.Event()
        self.booted = trio.Event()
        self._locks: defaultdict[str, trio.Lock] = defaultdict(trio.Lock)
        self._scopes: dict[str, trio.CancelScope] = {}  # reconcile under way, per project
        self._status: dict[str, tuple[str, str]] = {}  # name → (status, error)

    # -- storage -----------------------------------------------------------------------
    def _rows(self) -> list[tuple[Handover, float, float]]:
        out = []
        for row in self.db.execute("SELECT * FROM compose_projects ORDER BY name"):
            try:
                out.append((from_wire(json.loads(row["spec"])), row["created"], row["updated"]))
            except (ValueError, HandoverError) as exc:
                log.error("projects.bad_row", project=row["name"], error=str(exc))
        return out

    def _store(self, h: Handover) -> None:
        now = time.time()
        self.db.execute(
            "INSERT INTO compose_projects (name, spec, created, updated) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(name) DO UPDATE SET spec = excluded.spec, updated = excluded.updated",
            (h.project.name, json.dumps(h.kept().to_wire()), now, now),
        )

    # -- the task ----------------------------------------------------------------------
    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Own every reconcile (handed-over ones outlive their client); at start, bring
        every stored project up. The engine is the daemon's own, in-process."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            self._running.set()
            task_status.started()
            async with trio.open_nursery() as boot:
                for h, _, _ in self._rows():
                    boot.start_soon(self._boot, h)
            self.booted.set()
            log.info("projects.booted")
            await trio.sleep_forever()

    async def _boot(self, h: Handover) -> None:
        name = h.project.name

        def say(line: str) -> None:
            log.debug("projects.progress", project=name, line=line.strip())

        try:
            await Applier(self.api, say).engine_boot_starts(name)
        except Exception as exc:  # the reconcile below reports what is still wrong
            log.warning("projects.boot_wait_failed", project=name, error=repr(exc))
        errors = await self.reconcile(h, say, store=False)
        for error in errors:
            log.error("projects.boot_failed", project=name, error=error)
        if not errors:
            log.info("projects.reconciled", project=name)

    async def reconcile(self, h: Handover, say: Callable[[str], None], *, store: bool) -> list[str]:
        """Converge one project; its errors as compose would print them (empty: up).
        Stored only once it is up, so a failed first `up -d` leaves no row."""
        name = h.project.name
        async with self._locks[name]:
            self._status[name] = ("reconciling", "")
            errors: list[str] = []
            with trio.CancelScope() as scope:
                self._scopes[name] = scope
                try:
                    applier = Applier(self.api, say, h.parallel_limit)
                    applier.timeout = h.timeout
                    applier.renew_anon_volumes = h.renew_anon_volumes
                    await applier.up(h.project, h.options())
                except* ComposeError as group:
                    errors += [str(e) for e in _leaves(group)]
                except* ApiError as group:
                    errors += [
                        f"Error response from daemon: {getattr(e, 'message', e)}"
                        for e in _leaves(group)
                    ]
                except* Exception as group:
                    for e in _leaves(group):
                        log.error("projects.reconcile_crashed", project=name, error=repr(e))
                        errors.append(f"internal error: {e!r}")
                finally:
                    del self._scopes[name]
            if scope.cancelled_caught:
                errors = [f"project {name} was taken down while it was being brought up"]
            if store and not errors:
                self._store(h)
            self._status[name] = ("failed", "; ".join(errors)) if errors else ("up", "")
        return errors

    async def _handover(self, h: Handover, send: trio.MemorySendChannel[dict[str, Any]]) -> None:
        def emit(item: dict[str, Any]) -> None:
            # the client may have gone away; the project is brought up all the same
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                send.send_nowait(item)

        async with send:
            try:
                errors = await self.reconcile(h, lambda line: emit({"status": line}), store=True)
            except Exception as exc:  # a handover must never take the daemon down
                log.exception("projects.handover_failed", project=h.project.name)
                errors = [f"internal error: {exc!r}"]
            for error in errors:
                emit({"error": error, "errorDetail": {"message": error}})

    # -- routes ------------------------------------------------------------------------
    def register(self, router: Router) -> None:
        router.add("POST", "/corral/projects", self.post)
        router.add("GET", "/corral/projects", self.index)
        router.add("DELETE", "/corral/projects/{name}", self.delete)

    async def post(self, req: ApiRequest) -> ApiResponse:
        try:
            h = from_wire(await req.read_json())
        except HandoverError as exc:
            raise InvalidArgument(str(exc)) from None
        await self._running.wait()
        assert self._nursery is not None
        send, recv = trio.open_memory_channel[dict[str, Any]](math.inf)
        self._nursery.start_soon(self._handover, h, send)

        async def body() -> Any:
            async with recv:
                async for item in recv:
                    yield (json.dumps(item) + "\n").encode()

        return StreamResponse(body())

    async def index(self, req: ApiRequest) -> ApiResponse:
        if req.query_bool("wait"):
            await self.booted.wait()
        out = []
        for h, created, updated in self._rows():
            status, error = self._status.get(h.project.name, ("stored", ""))
            out.append(
                {
                    "Name": h.project.name,
                    "WorkingDir": h.project.working_dir,
                    "ConfigFiles": h.project.config_files,
                    "Services": h.services or list(h.project.services),
                    "Scale": h.scale,
                    "Status": status,
                    "Error": error,
                    "Created": int(created),
                    "Updated": int(updated),
                }
            )
        return JsonResponse(out)

    async def delete(self, req: ApiRequest, name: str) -> ApiResponse:
        scope = self._scopes.get(name)
        if scope is not None:
            scope.cancel()
        async with self._locks[name]:
            gone = self.db.execute("DELETE FROM compose_projects WHERE name = ?", (name,)).rowcount
            self._status.pop(name, None)
        if not gone and scope is None:
            raise NotFound(f"no such project: {name}")
        log.info("projects.removed", project=name)
        return EmptyResponse(204)
