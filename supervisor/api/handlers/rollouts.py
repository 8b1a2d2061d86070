"""The daemon's side of a rollout (corral's own routes; the steps are the client's,
`supervisor/rollout/executor.py`, and the decisions `config/rollout.py`'s).

    POST /corral/rollouts               {Project, Service, From, To, Order} -> 201 {Id};
                                        event `rollout_start` (actor: From)
    POST /corral/rollouts/{id}/switch   ?drain=SECONDS: From's published ports move to To
                                        (the relays' upstreams switched at once), then up
                                        to SECONDS for the connections open to From to
                                        end -> {Ports, Drained, Open}
    POST /corral/rollouts/{id}/end      {Result: succeeded|failed|rolled_back, Reason}
                                        -> 204; event `rollout_done` or `rollout_failed`
                                        (actor: To if it is still there, else From)
    GET  /corral/rollouts               those in progress (`compose ps` shows them)

A rollout whose client went away stays listed until its `To` container is gone.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

import trio

from supervisor.api.router import ApiRequest, ApiResponse, EmptyResponse, JsonResponse, Router
from supervisor.engine.engine import Engine
from supervisor.errors import CorralError, InvalidArgument, NotFound

RESULTS = ("succeeded", "failed", "rolled_back")


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


def register(router: Router, engine: Engine) -> None:
    table: dict[str, Record] = {}

    def find(id: str) -> Record:
        try:
            return table[id]
        except KeyError:
            raise NotFound(f"no such rollout: {id}") from None

    def publish(rec: Record, action: str, actor: str, **extra: str) -> None:
        attrs = {
            "project": rec.project,
            "service": rec.service,
            "from": rec.old,
            "to": rec.new,
            "order": rec.order,
            **extra,
        }
        try:
            c = engine.containers.get(actor)
            attrs = {**(c.config.get("Labels") or {}), "name": c.name, "image": c.image, **attrs}
        except CorralError:
            pass
        engine.events.publish("container", action, actor, attrs)

    @router.route("POST", "/corral/rollouts")
    async def begin(req: ApiRequest) -> ApiResponse:
        body = await req.read_json({})
        if not isinstance(body, dict):
            raise InvalidArgument("a rollout is a JSON object")
        fields = {k: str(body.get(k) or "") for k in ("Project", "Service", "From", "To", "Order")}
        for k in ("From", "To"):
            if not fields[k]:
                raise InvalidArgument(f"rollout: {k} is required")
        old = engine.containers.get(fields["From"]).id
        new = engine.containers.get(fields["To"]).id
        rec = Record(
            secrets.token_hex(8),
            fields["Project"],
            fields["Service"],
            old,
            new,
            fields["Order"] or "start-first",
            "starting",
            time.time(),
        )
        for other in list(table.values()):  # what a client that went away left
            try:
                engine.containers.get(other.new)
            except CorralError:
                del table[other.id]
        table[rec.id] = rec
        publish(rec, "rollout_start", rec.old)
        return JsonResponse({"Id": rec.id}, 201)

    @router.route("POST", "/corral/rollouts/{id}/switch")
    async def switch(req: ApiRequest, id: str) -> ApiResponse:
        rec = find(id)
        drain = float(req.query_str("drain") or 0)
        if drain < 0:
            raise InvalidArgument(f"invalid drain {drain}: want seconds, 0 or more")
        switched = engine.networks.takeover(rec.old, rec.new)
        rec.phase = "draining"
        with trio.move_on_after(drain):
            for upstream, target in switched:
                await upstream.drained(target)
        left = sum(upstream.open_to(target) for upstream, target in switched)
        return JsonResponse({"Ports": len(switched), "Drained": left == 0, "Open": left})

    @router.route("POST", "/corral/rollouts/{id}/end")
    async def end(req: ApiRequest, id: str) -> ApiResponse:
        rec = find(id)
        body = await req.read_json({})
        result = str((body or {}).get("Result") or "")
        if result not in RESULTS:
            raise InvalidArgument(f"rollout result {result!r}: want one of {', '.join(RESULTS)}")
        del table[id]
        reason = str((body or {}).get("Reason") or "")
        extra = {"result": result, **({"reason": reason} if reason else {})}
        # the actor is the container that serves on: the new one if it is still there
        # (succeeded; a rollback's re-made replica), else the old one kept
        try:
            serving = engine.containers.get(rec.new).id
        except CorralError:
            serving = rec.old
        action = "rollout_done" if result == "succeeded" else "rollout_failed"
        publish(rec, action, serving, **extra)
        return EmptyResponse(204)

    @router.route("GET", "/corral/rollouts")
    async def index(req: ApiRequest) -> ApiResponse:
        return JsonResponse([r.to_api() for r in table.values()])
