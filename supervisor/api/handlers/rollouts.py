"""The daemon's side of a rollout (corral's own routes; the steps are the client's,
`supervisor/rollout/executor.py`, and the decisions `config/rollout.py`'s).

    POST /corral/rollouts               {Project, Service, From, To, Order, Hold} -> 201
                                        {Id}; event `rollout_start` (actor: From).  With
                                        `Hold: true` the answer is a stream: its first
                                        line is {Id}, and it stays open until `end`; a
                                        client that goes away before then (killed, its
                                        connection lost) leaves the rollout to the daemon,
                                        which finishes it (`abandon`)
    POST /corral/rollouts/{id}/switch   ?drain=SECONDS: From's published ports move to To
                                        (the relays' upstreams switched at once), then up
                                        to SECONDS for the connections open to From to
                                        end -> {Ports, Drained, Open}
    POST /corral/rollouts/{id}/end      {Result: succeeded|failed|rolled_back, Reason}
                                        -> 204; event `rollout_done` or `rollout_failed`
                                        (actor: To if it is still there, else From)
    GET  /corral/rollouts               those in progress (`compose ps` shows them)

Nothing is left half made: each record is also a file, `<root>/rollouts/<id>.json`,
from `begin` to `end`, so one the daemon finds at its start (it crashed, or was
killed, mid-rollout) is finished the same way as one whose client went away.
Finishing is `decide`'s choice: before the switch the new replica is removed and the
old one serves on (started again if it is not running: stop-first, or it died
meanwhile; after a daemon restart only if its restart policy starts it at boot, as
every container), `rolled_back`; once the ports have moved (or the old one is gone) the new
one is healthy and serving, so the rollout is completed instead (the old one stopped
and removed, the new one takes its name), `succeeded`.  Either way the event says
`reason: client went away` (or `daemon restarted`).
"""

from __future__ import annotations

import contextlib
import json
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import structlog
import trio

from supervisor.api.router import (
    ApiRequest,
    ApiResponse,
    EmptyResponse,
    JsonResponse,
    Router,
    StreamResponse,
)
from supervisor.durable import write_atomic
from supervisor.engine.engine import Engine
from supervisor.engine.state import Status, is_active
from supervisor.errors import Conflict, CorralError, InvalidArgument, NotFound, NotModified
from supervisor.supervise import restart as restarts

log = structlog.get_logger("corral.rollouts")

RESULTS = ("succeeded", "failed", "rolled_back")
# What a record's file holds (its Event and flag are this run's)
FILE_KEYS = ("id", "project", "service", "old", "new", "order", "phase", "started", "old_name")
GONE = "client went away"
RESTARTED = "daemon restarted"


@dataclass
class Record:
    id: str
    project: str
    service: str
    old: str  # container ids
    new: str
    order: str
    phase: str  # starting, draining
    started: float
    old_name: str = ""
    ended: trio.Event = field(default_factory=trio.Event, compare=False, repr=False)
    closing: bool = False  # `end` called, or the daemon finishing it

    def to_api(self) -> dict[str, object]:
        return {
            "Id": self.id,
            "Project": self.project,
            "Service": self.service,
            "From": self.old,
            "To": self.new,
            "Order": self.order,
            "Phase": self.phase,
            "Started": int(self.started),
        }

    def to_file(self) -> bytes:
        return json.dumps({k: getattr(self, k) for k in FILE_KEYS}).encode()

    @classmethod
    def from_file(cls, data: bytes) -> Record:
        doc = json.loads(data)
        return cls(**{k: doc[k] for k in FILE_KEYS if k in doc})


def decide(phase: str, old_exists: bool, new_exists: bool, new_running: bool) -> str:
    """How the daemon finishes a rollout its client left: `back` (remove the new
    replica, the old one serves), `forward` (the new one serves already: the old goes,
    the new takes its name), or `none` (nothing left to do but the record)."""
    if not new_exists:
        return "none"
    if not old_exists or (phase == "draining" and new_running):
        return "forward"
    return "back"


class Rollouts:
    """The table of rollouts in progress, its files, and the daemon's own finishing of
    those left to it.  One owner: the routes below."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.table: dict[str, Record] = {}
        self.dir = Path(engine.root) / "rollouts"

    def find(self, id: str) -> Record:
        try:
            return self.table[id]
        except KeyError:
            raise NotFound(f"no such rollout: {id}") from None

    # -- the files -------------------------------------------------------------------
    async def save(self, rec: Record) -> None:
        def write() -> None:
            self.dir.mkdir(mode=0o700, exist_ok=True)
            write_atomic(self.dir / f"{rec.id}.json", rec.to_file(), mode=0o600)

        await trio.to_thread.run_sync(write)

    async def forget(self, rec: Record) -> None:
        path = self.dir / f"{rec.id}.json"
        await trio.to_thread.run_sync(lambda: path.unlink(missing_ok=True))

    def _read_left(self) -> list[Record]:
        if not self.dir.is_dir():
            return []
        out = []
        for p in sorted(self.dir.iterdir()):
            if p.name.startswith("."):  # a write the crash cut short
                p.unlink(missing_ok=True)
                continue
            try:
                out.append(Record.from_file(p.read_bytes()))
            except (ValueError, KeyError, TypeError) as exc:
                log.warning("rollout.bad_record", path=str(p), error=str(exc))
                p.unlink(missing_ok=True)
        return out

    async def recover(self) -> None:
        """At daemon start: rollouts a crash left unfinished are finished now."""
        try:
            left = await trio.to_thread.run_sync(self._read_left)
        except OSError as exc:  # an unreadable directory: said, not fatal
            log.error("rollout.recover_failed", error=str(exc))
            return
        for rec in left:
            if rec.id not in self.table:
                self.table[rec.id] = rec
                await self.abandon(rec, RESTARTED)

    # -- events ----------------------------------------------------------------------
    def publish(self, rec: Record, action: str, actor: str, **extra: str) -> None:
        attrs = {
            "project": rec.project,
            "service": rec.service,
            "from": rec.old,
            "to": rec.new,
            "order": rec.order,
            **extra,
        }
        try:
            c = self.engine.containers.get(actor)
            attrs = {**(c.config.get("Labels") or {}), "name": c.name, "image": c.image, **attrs}
        except CorralError:
            pass
        self.engine.events.publish("container", action, actor, attrs)

    async def finish(self, rec: Record, result: str, reason: str) -> None:
        """The record ends: its file goes, the event says how."""
        self.table.pop(rec.id, None)
        await self.forget(rec)
        rec.ended.set()
        extra = {"result": result, **({"reason": reason} if reason else {})}
        # the actor is the container that serves on: the new one if it is still there
        # (succeeded; a rollback's re-made replica), else the old one kept
        try:
            serving = self.engine.containers.get(rec.new).id
        except CorralError:
            serving = rec.old
        action = "rollout_done" if result == "succeeded" else "rollout_failed"
        await self.engine.networks.relay_only(serving, False)  # (a rollback's old one)
        self.publish(rec, action, serving, **extra)

    # -- the daemon's own finishing --------------------------------------------------
    def _exists(self, cid: str) -> bool:
        try:
            self.engine.containers.get(cid)
        except CorralError:
            return False
        return True

    async def abandon(self, rec: Record, why: str) -> None:
        """Finish a rollout its client left (see the module's docstring); never raises:
        what fails is logged and the record still ends, so none is left behind."""
        if rec.closing:
            return
        rec.closing = True
        e = self.engine
        how = "none"
        try:
            async with contextlib.AsyncExitStack() as locks:
                # no start of either is under way meanwhile (a boot start after a
                # crash, a restart policy's): each would bind ports under us
                for cid in (rec.old, rec.new):
                    if self._exists(cid):
                        c = e.containers.get(cid)
                        await locks.enter_async_context(e.live(c).start_lock)
                new_running = self._exists(rec.new) and is_active(
                    e.containers.get(rec.new).state.status
                )
                how = decide(rec.phase, self._exists(rec.old), self._exists(rec.new), new_running)
                log.info("rollout.abandoned", id=rec.id, why=why, how=how)
                if how == "back":
                    await e.remove(e.containers.get(rec.new), force=True)
                elif how == "forward":
                    await self._complete(rec)
            if how == "back":
                old = e.containers.get(rec.old)
                policy = restarts.Policy.from_api(old.host_config.get("RestartPolicy"))
                wanted = why == GONE or restarts.starts_at_boot(policy, old.state.user_stopped)
                if wanted and old.state.status not in (Status.RUNNING, Status.RESTARTING):
                    with contextlib.suppress(NotModified):  # its boot start came first
                        await e.start(old)  # its ports are bound again at its start
            result = "succeeded" if how == "forward" else "rolled_back"
        except Exception as exc:  # noqa: BLE001 - in the daemon's nursery: never fatal
            log.warning("rollout.abandon_failed", id=rec.id, error=str(exc))
            why = f"{why}; finishing it: {exc}"
            result = "failed"
        await self.finish(rec, result, why)

    async def _complete(self, rec: Record) -> None:
        """The new replica serves (or is all there is): the old one goes (drained for
        its stop grace period), the new one takes its name."""
        e = self.engine
        new = e.containers.get(rec.new)
        if is_active(new.state.status):
            held = set(e.networks.listener_fds(rec.old))
            e.networks.takeover(rec.old, rec.new)  # the ports it still waits for
            await e.ports_moved(rec.old, rec.new, held)
        name = rec.old_name
        if self._exists(rec.old):
            old = e.containers.get(rec.old)
            name = name or old.name
            if is_active(old.state.status):
                with contextlib.suppress(NotModified):
                    await e.stop(old, None)
            await e.remove(old, force=True)
        if name and new.name != name:
            e.rename(new, name)

    async def hold(self, rec: Record) -> AsyncIterator[bytes]:
        """The begin answer of a held rollout: its Id, then open until `end`."""
        try:
            yield json.dumps({"Id": rec.id}).encode() + b"\n"
            await rec.ended.wait()
        finally:
            if not rec.ended.is_set() and not rec.closing:
                # the client went away (the server cancels us when its peer is gone):
                # the daemon's nursery finishes the rollout, not this cancelled stream
                self.engine.nursery.start_soon(self.abandon, rec, GONE)


def register(router: Router, engine: Engine) -> None:
    rollouts = Rollouts(engine)
    engine.nursery.start_soon(rollouts.recover)
    table = rollouts.table

    @router.route("POST", "/corral/rollouts")
    async def begin(req: ApiRequest) -> ApiResponse:
        body = await req.read_json({})
        if not isinstance(body, dict):
            raise InvalidArgument("a rollout is a JSON object")
        fields = {k: str(body.get(k) or "") for k in ("Project", "Service", "From", "To", "Order")}
        for k in ("From", "To"):
            if not fields[k]:
                raise InvalidArgument(f"rollout: {k} is required")
        old = engine.containers.get(fields["From"])
        new = engine.containers.get(fields["To"]).id
        rec = Record(
            secrets.token_hex(8),
            fields["Project"],
            fields["Service"],
            old.id,
            new,
            fields["Order"] or "start-first",
            "starting",
            time.time(),
            old.name,
        )
        for other in list(table.values()):  # an unheld rollout whose client went away
            if not rollouts._exists(other.new) and not other.closing:
                await rollouts.finish(other, "failed", GONE)
        table[rec.id] = rec
        await engine.networks.relay_only(rec.old)  # the switch drains what the relay counts
        await rollouts.save(rec)
        rollouts.publish(rec, "rollout_start", rec.old)
        if body.get("Hold"):
            return StreamResponse(rollouts.hold(rec), status=201)
        return JsonResponse({"Id": rec.id}, 201)

    @router.route("POST", "/corral/rollouts/{id}/switch")
    async def switch(req: ApiRequest, id: str) -> ApiResponse:
        rec = rollouts.find(id)
        if rec.closing:
            raise Conflict(f"rollout {id} is ending")
        drain = float(req.query_str("drain") or 0)
        if drain < 0:
            raise InvalidArgument(f"invalid drain {drain}: want seconds, 0 or more")
        held = set(engine.networks.listener_fds(rec.old))
        switched = engine.networks.takeover(rec.old, rec.new)
        await engine.ports_moved(rec.old, rec.new, held)
        rec.phase = "draining"
        await rollouts.save(rec)
        with trio.move_on_after(drain):
            for upstream, target in switched:
                await upstream.drained(target)
        left = sum(upstream.open_to(target) for upstream, target in switched)
        return JsonResponse({"Ports": len(switched), "Drained": left == 0, "Open": left})

    @router.route("POST", "/corral/rollouts/{id}/end")
    async def end(req: ApiRequest, id: str) -> ApiResponse:
        rec = rollouts.find(id)
        body = await req.read_json({})
        result = str((body or {}).get("Result") or "")
        if result not in RESULTS:
            raise InvalidArgument(f"rollout result {result!r}: want one of {', '.join(RESULTS)}")
        if rec.closing:
            raise Conflict(f"rollout {id} is ending")
        rec.closing = True
        await rollouts.finish(rec, result, str((body or {}).get("Reason") or ""))
        return EmptyResponse(204)

    @router.route("GET", "/corral/rollouts")
    async def index(req: ApiRequest) -> ApiResponse:
        return JsonResponse([r.to_api() for r in table.values()])
