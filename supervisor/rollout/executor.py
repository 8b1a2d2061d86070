"""A rollout carried out through the API: `config.rollout`'s steps, one replica at a
time within a batch's concurrency, with the daemon's `/corral/rollouts` routes for the
port switch-over, the events and the metric.

The applier hands over the replicas of a changed service with `deploy.update_config`
(`Applier.up`) and a way to create a replacement (`Create`: its create body, a
temporary name, an extra label, not started); everything else here is waiting and
ordering.  Waits are on the daemon's events (`health_status`, `die`), subscribed to
before the container's state is read, so no transition falls between the two.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import trio

from config.reconcile import Observed
from config.rollout import (
    SUCCESSOR_LABEL,
    Rollout,
    UpdateConfig,
    batches,
    health_bound,
    temporary_name,
    verdict,
)
from supervisor.api.client import ApiError
from supervisor.compose.engine import ComposeEngine
from supervisor.rollout.clone import clone_body

# (replica being replaced, temporary name, extra labels) -> the new container's id
Create = Callable[[Observed, str, dict[str, str]], Awaitable[str]]
# (service, container id, container name): compose's post_start/pre_stop hooks
Hook = Callable[[str, str, str], Awaitable[None]]


async def _no_hook(service: str, cid: str, name: str) -> None:
    return None


@dataclass(frozen=True)
class Hooks:
    """The service's lifecycle hooks, run as a recreate runs them: `post_start` on a
    replica once started (raising RolloutFailed fails it, as a failing hook fails `up`),
    `pre_stop` on a running one before it is stopped (it reports its own failures)."""

    post_start: Hook = _no_hook
    pre_stop: Hook = _no_hook


class RolloutFailed(Exception):
    """A replica failed its rollout; the message names the container and the check."""


@dataclass
class Outcome:
    new_ids: list[str]  # the service's replicas that serve now and were made here
    errors: list[str]  # one line per replica that failed


class Executor:
    def __init__(
        self, api: ComposeEngine, say: Callable[[str], None], hooks: Hooks | None = None
    ) -> None:
        self.api = api
        self.say = say
        self.hooks = hooks or Hooks()

    async def roll(
        self,
        project: str,
        service: str,
        replicas: list[Observed],
        plan: Rollout,
        create: Create,
        grace: int,
    ) -> Outcome:
        """Every replica in `replicas` updated by `plan.update`, in its batches; a
        failure past `max_failure_ratio` stops the rollout (`pause`, `rollback`)."""
        cfg = plan.update
        if plan.forced:
            self.say(f" Service {service}  {plan.forced}")
        by_number = {c.number: c for c in replicas}
        out = Outcome([], [])
        # (new id, the replica it replaced, that one's inspect and its image's)
        updated: list[tuple[str, Observed, dict[str, Any], dict[str, Any]]] = []
        failed = 0
        todo = batches(list(by_number), cfg.parallelism)
        for i, batch in enumerate(todo):
            if i and cfg.delay:
                await trio.sleep(cfg.delay)  # update_config.delay: the user's pause between batches

            async def one(c: Observed) -> None:
                try:
                    before = await self._snapshot(c)
                    new_id = await self.replica(project, service, c, cfg, create, grace)
                except RolloutFailed as exc:
                    out.errors.append(str(exc))
                else:
                    out.new_ids.append(new_id)
                    updated.append((new_id, c, *before))

            before = len(out.errors)
            async with trio.open_nursery() as n:
                for number in batch:
                    n.start_soon(one, by_number[number])
            failed += len(out.errors) - before
            action = verdict(cfg, failed, len(replicas))
            if action != "go":
                left = [by_number[x] for b in todo[i + 1 :] for x in b]
                if left:
                    self.say(
                        f" Service {service}  rollout stopped ({cfg.failure_action}): "
                        f"{len(left)} replica(s) left as they were"
                    )
                if action == "rollback" and updated:
                    await self._roll_back(project, service, updated, plan, grace, out)
                break
        return out

    async def _snapshot(self, c: Observed) -> tuple[dict[str, Any], dict[str, Any]]:
        """What a rollback needs to make `c` again once it is gone."""
        info = await self.api.request("GET", f"/containers/{c.id}/json")
        image = await self.api.request("GET", f"/images/{info.get('Image')}/json")
        return info, image

    async def _roll_back(
        self,
        project: str,
        service: str,
        updated: list[tuple[str, Observed, dict[str, Any], dict[str, Any]]],
        plan: Rollout,
        grace: int,
        out: Outcome,
    ) -> None:
        """`failure_action: rollback`: the replicas this rollout updated go back to what
        they were (the old container's settings and image), as `rollback_config` says,
        in its batches."""
        self.say(f" Service {service}  rolling back {len(updated)} replica(s)")
        cfg = plan.rollback
        for i, batch in enumerate(batches(list(range(len(updated))), cfg.parallelism)):
            if i and cfg.delay:
                await trio.sleep(cfg.delay)

            async def back(k: int) -> None:
                new_id, old, info, image = updated[k]
                now = Observed(new_id, old.name, old.service, old.number, "", "running")
                body = clone_body(info, image, str(info.get("Image")))

                async def create(_: Observed, name: str, labels: dict[str, str]) -> str:
                    made = {**body, "Labels": {**(body.get("Labels") or {}), **labels}}
                    answer = await self.api.request(
                        "POST", "/containers/create", {"name": name}, made
                    )
                    self.say(f" Container {name}  Created")
                    return str(answer["Id"])

                try:
                    back_id = await self.replica(
                        project, service, now, cfg, create, grace,
                        result_on_failure="failed", result_on_success="rolled_back",
                    )
                except RolloutFailed as exc:
                    out.errors.append(f"rollback of {old.name} failed: {exc}")
                else:
                    out.new_ids.remove(new_id)
                    out.new_ids.append(back_id)

            async with trio.open_nursery() as n:
                for k in batch:
                    n.start_soon(back, k)

    async def replica(
        self,
        project: str,
        service: str,
        old: Observed,
        cfg: UpdateConfig,
        create: Create,
        grace: int,
        result_on_failure: str = "",
        result_on_success: str = "succeeded",
    ) -> str:
        """One replica through `cfg.steps`; its new id.  On failure what was done is
        undone (`cfg.undo`), the old replica serves on, and RolloutFailed is raised."""
        tmp = temporary_name(old.id, old.name)
        failure = result_on_failure or (
            "rolled_back" if cfg.failure_action == "rollback" else "failed"
        )
        # the begin answer held open until `end`: if this process dies mid-rollout the
        # daemon sees its connection go and finishes the rollout itself
        hold = contextlib.AsyncExitStack()
        async with hold:
            return await self._steps(
                project, service, old, cfg, create, grace, tmp, failure,
                result_on_success, hold,
            )

    async def _steps(
        self,
        project: str,
        service: str,
        old: Observed,
        cfg: UpdateConfig,
        create: Create,
        grace: int,
        tmp: str,
        failure: str,
        result_on_success: str,
        hold: contextlib.AsyncExitStack,
    ) -> str:
        new_id = ""
        rollout_id = ""
        reached: list[str] = []
        try:
            for step in cfg.steps:
                if step == "create":
                    labels = {SUCCESSOR_LABEL: old.id} if cfg.order == "start-first" else {}
                    new_id = await create(old, tmp, labels)
                    rollout_id = await self._begin(
                        project, service, old, new_id, cfg.order, hold
                    )
                elif step == "start":
                    try:
                        await self.api.request("POST", f"/containers/{new_id}/start")
                    except ApiError as exc:
                        raise RolloutFailed(
                            f"container {tmp} did not start: {exc.message}"
                        ) from None
                    self.say(f" Container {tmp}  Started")
                    await self.hooks.post_start(service, new_id, tmp)
                elif step == "healthy":
                    await self.wait_ready(new_id, tmp, cfg.monitor)
                    self.say(f" Container {tmp}  Healthy")
                elif step == "switch":
                    answer = await self.api.request(
                        "POST", f"/corral/rollouts/{rollout_id}/switch", {"drain": grace}
                    )
                    if answer.get("Ports"):
                        self.say(f" Container {tmp}  Ports switched")
                elif step == "stop_old":
                    if old.running:
                        await self.hooks.pre_stop(service, old.id, old.name)
                    self.say(f" Container {old.name}  Stopping")
                    await self.api.request("POST", f"/containers/{old.id}/stop", {"t": grace})
                    self.say(f" Container {old.name}  Stopped")
                elif step == "remove_old":
                    await self.api.request("DELETE", f"/containers/{old.id}", {"force": True})
                    self.say(f" Container {old.name}  Removed")
                elif step == "rename":
                    await self.api.request(
                        "POST", f"/containers/{new_id}/rename", {"name": old.name}
                    )
                    self.say(f" Container {old.name}  Recreated")
                reached.append(step)
        except (RolloutFailed, ApiError) as exc:
            reason = str(exc) if isinstance(exc, RolloutFailed) else exc.message
            if "remove_old" in reached:  # the old is gone: the new one is all there is
                raise RolloutFailed(f"container {old.name}: {reason}") from None
            await self._undo(cfg, service, old, new_id, reached)
            if rollout_id:
                await self._end(rollout_id, failure, reason)
            self.say(f" Container {old.name}  Kept ({failure.replace('_', ' ')})")
            raise RolloutFailed(reason) from None
        await self._end(rollout_id, result_on_success, "")
        return new_id

    async def _undo(
        self, cfg: UpdateConfig, service: str, old: Observed, new_id: str, reached: list[str]
    ) -> None:
        for step in cfg.undo:
            try:
                if step == "remove_new" and new_id:
                    await self.api.request("DELETE", f"/containers/{new_id}", {"force": True})
                elif step == "start_old" and "stop_old" in reached:
                    await self.api.request("POST", f"/containers/{old.id}/start")
                    self.say(f" Container {old.name}  Started")
                    await self.hooks.post_start(service, old.id, old.name)
            except RolloutFailed as exc:  # the old one serves again all the same
                self.say(f"WARNING: {exc}")
            except ApiError as exc:
                if exc.status != 404:
                    self.say(f"WARNING: {old.name}: undoing the rollout: {exc.message}")

    async def _begin(self, project: str, service: str, old: Observed, new_id: str,
                     order: str, hold: contextlib.AsyncExitStack) -> str:
        body = {"Project": project, "Service": service, "From": old.id, "To": new_id,
                "Order": order, "Hold": True}
        answer = await hold.enter_async_context(
            await self.api.open("POST", "/corral/rollouts", json_body=body)
        )
        line = b""
        async for chunk in answer.chunks():
            line += chunk
            if b"\n" in line:
                break
        return str(json.loads(line.split(b"\n")[0])["Id"])

    async def _end(self, rollout_id: str, result: str, reason: str) -> None:
        try:
            await self.api.request(
                "POST", f"/corral/rollouts/{rollout_id}/end",
                json_body={"Result": result, "Reason": reason},
            )
        except ApiError as exc:
            if exc.status != 404:
                raise

    # -- readiness ---------------------------------------------------------------------
    async def wait_ready(self, cid: str, name: str, monitor: float) -> None:
        """Healthy (its healthcheck), or with none still running after `monitor` s."""
        filters = json.dumps({"container": [cid], "event": ["health_status", "die"]})
        events = await self.api.open("GET", "/events", {"filters": filters})
        async with events:
            info = await self.api.request("GET", f"/containers/{cid}/json")
            test = ((info.get("Config") or {}).get("Healthcheck") or {}).get("Test") or []
            has_check = bool(test) and test[0] != "NONE"
            if not has_check:
                ready(info, name, False)  # exited already: raises
                with trio.move_on_after(monitor):
                    async for chunk in events.chunks():
                        if b"\n" in chunk:
                            ready(await self._inspect(cid), name, False)
                return
            if ready(info, name, True):
                return
            bound, how = health_bound((info.get("Config") or {}).get("Healthcheck") or {})
            with trio.move_on_after(bound):
                async for chunk in events.chunks():
                    if b"\n" in chunk and ready(await self._inspect(cid), name, True):
                        return
                raise RolloutFailed(f"lost the event stream while waiting for {name}")
            raise RolloutFailed(
                f"container {name} did not become healthy within {bound:g}s "
                f"(the rollout's bound: {how})"
            )
        raise RolloutFailed(f"lost the event stream while waiting for {name}")

    async def _inspect(self, cid: str) -> Any:
        return await self.api.request("GET", f"/containers/{cid}/json")


def ready(info: Any, name: str, has_check: bool) -> bool:
    """True: healthy.  Raises RolloutFailed naming the check (its command and its last
    output) when the replica is unhealthy or exited.  False: not yet."""
    state = info.get("State") or {}
    health = state.get("Health") or {}
    if has_check and health.get("Status") == "unhealthy":
        test = ((info.get("Config") or {}).get("Healthcheck") or {}).get("Test") or []
        shown = " ".join(str(t) for t in test[1:]) if test else "?"
        last = (health.get("Log") or [{}])[-1]
        output = str(last.get("Output") or "").strip().replace("\n", " ")[:200]
        raise RolloutFailed(
            f"container {name} is unhealthy: health check {shown!r} failed "
            f"(exit {last.get('ExitCode')}{': ' + output if output else ''})"
        )
    if not state.get("Running"):
        raise RolloutFailed(f"container {name} exited ({state.get('ExitCode')})")
    return bool(has_check and health.get("Status") == "healthy")
