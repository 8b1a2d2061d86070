"""Auto-update: running containers labelled `corral.auto-update` (or Podman's
`io.containers.autoupdate`) are checked against their image and, when it changed,
rolled out as a compose rollout is (start-first, waited on until healthy, ports
switched, the old one drained; stop-first when it mounts an exclusive volume), with a
failing replacement removed and the old one kept (`rolled_back`).

Policies, as Podman's:
- `registry`: the registry's manifest digest for the container's image reference
  (`GET /distribution/NAME/json`) against the digests the local image is known by; a
  new one is pulled, and the container rolled out if the pull gave another image;
- `local`: the image its reference names locally now (a `corral build`, `tag`, `load`)
  against the one the container runs.

`corral auto-update [--dry-run]` runs it once (`--dry-run`: `pending` where an update
would be made, nothing pulled or changed); the daemon runs it every
`auto-update-interval` (daemon.yaml or the flag; 0, the default, never).  Everything
goes through the API, so the CLI and the daemon run the same code.

The replacement is made from the old container's inspect (`clone.clone_body`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog
import trio

from config.reconcile import PROJECT, SERVICE, Observed
from config.rollout import EXCLUSIVE_LABEL, UpdateConfig
from supervisor.api.client import ApiError, quote
from supervisor.compose.engine import ComposeEngine
from supervisor.rollout.clone import clone_body
from supervisor.rollout.executor import Executor, RolloutFailed

log = structlog.get_logger("corral.autoupdate")

LABELS = ("corral.auto-update", "io.containers.autoupdate")
POLICIES = ("registry", "local")


@dataclass
class Candidate:
    container: Observed
    image: str  # the reference it was created from
    policy: str
    updated: str = "false"  # false, pending (dry run), true, rolled_back, failed
    reason: str = ""


def policy_of(labels: dict[str, str]) -> str:
    for key in LABELS:
        value = str(labels.get(key) or "").strip()
        if value:
            return value
    return ""


class AutoUpdate:
    def __init__(self, api: ComposeEngine, say: Callable[[str], None]) -> None:
        self.api = api
        self.say = say

    async def candidates(self) -> list[Candidate]:
        out: dict[str, Candidate] = {}
        for key in LABELS:
            filters = json.dumps({"label": [key]})
            for c in await self.api.request("GET", "/containers/json",
                                            {"filters": filters}) or []:
                policy = policy_of(c.get("Labels") or {})
                obs = Observed.from_summary(c)
                cand = Candidate(obs, str(c.get("Image", "")), policy)
                if policy not in POLICIES:
                    cand.updated, cand.reason = "failed", f"unknown policy {policy!r}"
                out.setdefault(obs.id, cand)
        return sorted(out.values(), key=lambda c: c.container.name)

    async def run(self, dry_run: bool = False) -> list[Candidate]:
        found = await self.candidates()
        for cand in found:
            if cand.reason:
                continue
            try:
                await self.one(cand, dry_run)
            except (ApiError, RolloutFailed) as exc:
                cand.updated = "rolled_back" if isinstance(exc, RolloutFailed) else "failed"
                cand.reason = exc.message if isinstance(exc, ApiError) else str(exc)
            log.info("autoupdate.checked", container=cand.container.name,
                     policy=cand.policy, updated=cand.updated, reason=cand.reason)
        return found

    async def one(self, cand: Candidate, dry_run: bool) -> None:
        c = cand.container
        info = await self.api.request("GET", f"/containers/{c.id}/json")
        ref = str((info.get("Config") or {}).get("Image") or cand.image)
        cand.image = ref
        current = str(info.get("Image", ""))
        if cand.policy == "registry":
            desc = await self.api.request("GET", f"/distribution/{quote(ref, '/:@')}/json")
            digest = str((desc.get("Descriptor") or {}).get("digest", ""))
            held = await self.api.request("GET", f"/images/{current}/json")
            if any(d.endswith("@" + digest) for d in held.get("RepoDigests") or []):
                return
            if dry_run:
                cand.updated = "pending"
                return
            await self._pull(ref)
        elif dry_run:
            local = await self._image_id(ref)
            cand.updated = "pending" if local and local != current else "false"
            return
        new_image = await self._image_id(ref)
        if not new_image or new_image == current:
            return
        old_image = await self.api.request("GET", f"/images/{current}/json")
        body = clone_body(info, old_image, ref)
        cfg = UpdateConfig(order=await self._order(info), failure_action="rollback")

        async def create(old: Observed, name: str, labels: dict[str, str]) -> str:
            made = {**body, "Labels": {**body.get("Labels", {}), **labels}}
            created = await self.api.request("POST", "/containers/create", {"name": name}, made)
            self.say(f" Container {name}  Created")
            return str(created["Id"])

        labels = info.get("Config", {}).get("Labels") or {}
        grace = int((info.get("Config") or {}).get("StopTimeout") or 10)
        await Executor(self.api, self.say).replica(
            str(labels.get(PROJECT, "")), str(labels.get(SERVICE, "")), c, cfg, create, grace
        )
        cand.updated = "true"

    async def _order(self, info: dict[str, Any]) -> str:
        """stop-first when it mounts a volume labelled exclusive, else start-first."""
        for m in info.get("Mounts") or []:
            if m.get("Type") != "volume":
                continue
            vol = await self.api.request("GET", f"/volumes/{quote(str(m.get('Name')))}")
            if str((vol.get("Labels") or {}).get(EXCLUSIVE_LABEL, "")).lower() == "true":
                return "stop-first"
        return "start-first"

    async def _image_id(self, ref: str) -> str:
        try:
            return str((await self.api.request("GET", f"/images/{quote(ref, '/:@')}/json"))["Id"])
        except ApiError as exc:
            if exc.status == 404:
                return ""
            raise

    async def _pull(self, ref: str) -> None:
        from supervisor.distribution.reference import remote

        target = remote(ref)
        query = {"fromImage": target.repository, "tag": target.digest or target.tag or "latest"}
        buf = b""
        async for chunk in self.api.stream("POST", "/images/create", query):
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for line in lines:
                msg = json.loads(line) if line.strip() else {}
                if isinstance(msg, dict) and msg.get("error"):
                    raise ApiError(500, str(msg["error"]))
        self.say(f" Image {ref}  Pulled")


async def run_every(interval: float, engine: ComposeEngine,
                    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """The daemon's timer: one pass every `interval` seconds, for as long as it runs
    (a registry can tell nobody that a tag moved, so this one wait is a timer), through
    the daemon's in-process engine."""
    task_status.started()
    updater = AutoUpdate(engine, lambda line: log.info("autoupdate", line=line))
    while True:
        await trio.sleep(interval)
        try:
            await updater.run()
        except Exception:  # one bad pass must not end the timer, nor the daemon
            log.exception("autoupdate.failed")
