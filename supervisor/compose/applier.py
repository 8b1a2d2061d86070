"""Carry out a reconcile plan through the Docker Engine API (the I/O shell of `up`/`down`).

The decisions are `config.reconcile`'s; this module, written against `ComposeEngine`
(the CLI's socket client or the daemon's in-process router: the same code either way),
only observes containers by their compose labels, makes the project's networks and
volumes, runs each service's actions concurrently (services one after another in
dependency order, each waiting on its dependencies' conditions), and reports progress
lines as compose does.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

import trio

from config.container import (
    Injected,
    create_body,
    inherit_anonymous_volumes,
    injected_files,
)
from config.model import Project
from config.reconcile import (
    PROJECT,
    Action,
    Observed,
    Plan,
    UpOptions,
    container_name,
    plan_down,
    plan_up,
)
from config.rollout import rollout_of
from config.units import duration_ns
from supervisor.api.client import ApiError, quote
from supervisor.errors import CorralError

from .engine import ComposeEngine

# Containers acted on at once per service (compose's COMPOSE_PARALLEL_LIMIT sets it too).
CONCURRENCY = 16
# How long a reconcile at a daemon's boot leaves containers to the engine's own boot
# starts (`engine_boot_starts`) before treating them as its own to start.
ENGINE_BOOT_GRACE = 10.0
BOOT_POLICIES = ("always", "unless-stopped")


def parallel_limit() -> int | None:
    """COMPOSE_PARALLEL_LIMIT of this process, if set (the CLI sends it to the daemon)."""
    limit = os.environ.get("COMPOSE_PARALLEL_LIMIT", "")
    return int(limit) if limit.isdigit() and int(limit) > 0 else None


class ComposeError(Exception):
    """A failure of `up`/`down` to print as one line, exit 1."""


class Applier:
    def __init__(
        self, api: ComposeEngine, say: Callable[[str], None], limit: int | None = None
    ) -> None:
        self.api = api
        self.say = say
        self.limiter = trio.CapacityLimiter(limit or parallel_limit() or CONCURRENCY)
        self.networks_supported: bool | None = None
        self.timeout: int | None = None  # `up -t`: stops before recreate/remove
        self.no_start = False  # `create`, `up --no-start`: containers made, none started
        self.renew_anon_volumes = False  # `up -V`: recreated containers get new ones
        self.project: Project | None = None  # the one acted on: its hooks
        self._warned = False

    # -- observation -------------------------------------------------------------------
    async def observe(self, project_name: str) -> list[Observed]:
        filters = json.dumps({"label": [f"{PROJECT}={project_name}"]})
        found = await self.api.request("GET", "/containers/json", {"all": True, "filters": filters})
        return [Observed.from_summary(c) for c in found or []]

    async def image_ids(self, project: Project, services: list[str]) -> dict[str, str]:
        """Each service's image id; a missing image stops `up` before anything changes."""
        out: dict[str, str] = {}
        for name in services:
            svc = project.services[name]
            image = project.image(name)
            built = bool(svc.get("build"))
            policy = str(svc.get("pull_policy") or "missing")
            platform = str(svc.get("platform") or "")
            if policy == "always" and not built:
                await self.pull(name, image, platform)
            try:
                info = await self.api.request("GET", f"/images/{quote(image, '/:')}/json")
            except ApiError as exc:
                if exc.status == 404 and built:
                    raise ComposeError(
                        f'service "{name}": image {image} is not built: '
                        "run 'corral compose build' (or 'corral compose up --build')"
                    ) from None
                if exc.status != 404 or policy in ("never", "always"):
                    if exc.status == 404:
                        raise ComposeError(f'service "{name}": {exc.message}') from None
                    raise
                await self.pull(name, image, platform)
                info = await self.api.request("GET", f"/images/{quote(image, '/:')}/json")
            if platform:
                check_platform(name, image, platform, info)
            out[name] = str(info.get("Id", ""))
        return out

    async def pull(self, service: str, image: str, platform: str = "") -> None:
        """Pull `image` as compose does before creating: one `Pulling`/`Pulled` line
        per service; a registry error stops `up` naming the service."""
        from supervisor.distribution.reference import remote

        try:
            target = remote(image)
        except CorralError as exc:
            raise ComposeError(f'service "{service}": {exc.message}') from None
        self.say(f" {service} Pulling")
        query = {"fromImage": target.repository, "tag": target.digest or target.tag or "latest",
                 "platform": platform or None}
        try:
            buf = b""
            async for chunk in self.api.stream("POST", "/images/create", query):
                buf += chunk
                *lines, buf = buf.split(b"\n")
                for line in lines:
                    msg = json.loads(line) if line.strip() else {}
                    if isinstance(msg, dict) and msg.get("error"):
                        raise ComposeError(f'service "{service}": {msg["error"]}')
        except ApiError as exc:
            raise ComposeError(f'service "{service}": {exc.message}') from None
        self.say(f" {service} Pulled")

    async def engine_boot_starts(self, name: str) -> None:
        """At a daemon's boot, wait until the containers the engine starts itself (restart
        `always`, `unless-stopped`) have started, or ENGINE_BOOT_GRACE is over, so a
        reconcile never starts a container the engine is starting. Subscribed to `start`
        events before looking, so none is missed."""
        filters = json.dumps(
            {"type": ["container"], "event": ["start"], "label": [f"{PROJECT}={name}"]}
        )
        events = await self.api.open("GET", "/events", {"filters": filters})
        async with events:
            query = {"all": True, "filters": json.dumps({"label": [f"{PROJECT}={name}"]})}
            pending: set[str] = set()
            for c in await self.api.request("GET", "/containers/json", query) or []:
                if c.get("State") == "running":
                    continue
                info = await self.api.request("GET", f"/containers/{c['Id']}/json")
                policy = ((info.get("HostConfig") or {}).get("RestartPolicy") or {}).get("Name")
                if policy in BOOT_POLICIES and not (info.get("State") or {}).get("Running"):
                    pending.add(str(c["Id"]))
            if not pending:
                return
            buf = b""
            with trio.move_on_after(ENGINE_BOOT_GRACE):
                async for chunk in events.chunks():
                    buf += chunk
                    *lines, buf = buf.split(b"\n")
                    for line in lines:
                        if line.strip():
                            event = json.loads(line)
                            pending.discard(str((event.get("Actor") or {}).get("ID", "")))
                    if not pending:
                        return
            self.say(
                f"WARNING: the daemon did not start {len(pending)} container(s) of {name} "
                f"at boot within {ENGINE_BOOT_GRACE:.0f}s: starting them here"
            )

    # -- networks and volumes ----------------------------------------------------------
    async def _networks_api(self) -> bool:
        if self.networks_supported is None:
            try:
                await self.api.request("GET", "/networks")
                self.networks_supported = True
            except ApiError as exc:
                if exc.status not in (404, 405):
                    raise
                self.networks_supported = False
        return self.networks_supported

    def _warn_no_networks(self) -> None:
        if not self._warned:
            self._warned = True
            self.say(
                "WARNING: this daemon has no networks API yet: services join its default "
                "network, without name resolution between them"
            )

    async def ensure_networks(self, project: Project) -> None:
        used = {n for s in project.services.values() for n in (s.get("networks") or {})}
        nets = {k: v for k, v in (project.model.get("networks") or {}).items() if k in used}
        if not nets:
            return
        if not await self._networks_api():
            self._warn_no_networks()
            return
        for key, spec in nets.items():
            name = str(spec["name"])
            try:
                await self.api.request("GET", f"/networks/{quote(name)}")
                continue
            except ApiError as exc:
                if exc.status != 404:
                    raise
            if spec.get("external"):
                raise ComposeError(f"network {name} declared as external, but could not be found")
            labels = {str(k): str(v) for k, v in (spec.get("labels") or {}).items()}
            labels.update({PROJECT: project.name, "com.docker.compose.network": key})
            body = {
                "Name": name,
                "Driver": spec.get("driver") or "bridge",
                "Internal": bool(spec.get("internal")),
                "Labels": labels,
                "CheckDuplicate": True,
            }
            await self.api.request("POST", "/networks/create", json_body=body)
            self.say(f" Network {name}  Created")

    async def ensure_volumes(self, project: Project) -> None:
        for key, spec in (project.model.get("volumes") or {}).items():
            name = str(spec["name"])
            try:
                await self.api.request("GET", f"/volumes/{quote(name)}")
                continue
            except ApiError as exc:
                if exc.status != 404:
                    raise
            if spec.get("external"):
                raise ComposeError(f'external volume "{name}" not found')
            labels = {str(k): str(v) for k, v in (spec.get("labels") or {}).items()}
            labels.update({PROJECT: project.name, "com.docker.compose.volume": key})
            body = {
                "Name": name,
                "Driver": spec.get("driver") or "local",
                "DriverOpts": spec.get("driver_opts") or {},
                "Labels": labels,
            }
            await self.api.request("POST", "/volumes/create", json_body=body)
            self.say(f" Volume {name}  Created")

    # -- up ----------------------------------------------------------------------------
    async def up(self, project: Project, opts: UpOptions) -> Plan:
        self.project = project
        observed = await self.observe(project.name)
        plan = plan_up(project, observed, opts)
        opts.image_ids = await self.image_ids(project, [sp.service for sp in plan.services])
        plan = plan_up(project, observed, opts)
        for orphan in plan.orphans if not opts.remove_orphans else []:
            self.say(
                f"WARNING: Found orphan containers ([{orphan.name}]) for this project. If you "
                "removed or renamed this service in your compose file, you can run this "
                "command with the --remove-orphans flag to clean it up."
            )
        await self.ensure_networks(project)
        await self.ensure_volumes(project)
        if opts.remove_orphans and plan.orphans:
            async with trio.open_nursery() as nursery:
                for c in plan.orphans:
                    nursery.start_soon(self._remove_limited, c, 10)
        started: dict[str, list[str]] = {}  # service → container ids
        for c in observed:
            if c.service in project.services and not c.oneoff:
                started.setdefault(c.service, []).append(c.id)
        for sp in plan.services:
            svc = project.services[sp.service]
            for dep, spec in (svc.get("depends_on") or {}).items() if not self.no_start else ():
                await self.wait_condition(dep, str(spec.get("condition")), started.get(dep, []))
            acted = {a.container.id for a in sp.actions if a.container}
            for c in observed:
                if c.service == sp.service and c.id not in acted and c.running:
                    self.say(f" Container {c.name}  Running")
            new_ids: list[str] = []
            rolled = self._rolled_out(project, sp.actions)
            failures: list[str] = []
            async with trio.open_nursery() as nursery:
                for action in sp.actions:
                    if action not in rolled:
                        nursery.start_soon(self._act, project, action, new_ids)
                if rolled:
                    nursery.start_soon(self._roll, project, rolled, new_ids, failures)
            if failures:
                raise ComposeError(f'service "{sp.service}": rollout failed: {failures[0]}')
            gone = {
                a.container.id
                for a in sp.actions
                if a.container and a.kind in ("remove", "recreate")
            }
            started[sp.service] = [
                *[i for i in started.get(sp.service, []) if i not in gone],
                *new_ids,
            ]
        return plan

    # -- rollouts (deploy.update_config: config/rollout.py, supervisor/rollout/) ------
    def _rolled_out(self, project: Project, actions: list[Action]) -> list[Action]:
        """The recreates a rollout does instead: of running replicas of a service with
        `deploy.update_config` (a stopped one has nothing to keep serving)."""
        if self.no_start:
            return []
        return [
            a
            for a in actions
            if a.kind == "recreate"
            and a.container is not None
            and a.container.running
            and rollout_of(project.services[a.service], project.model.get("volumes") or {})
        ]

    async def _roll(
        self, project: Project, actions: list[Action], new_ids: list[str], failures: list[str]
    ) -> None:
        from supervisor.rollout.executor import Executor, Hooks, RolloutFailed  # rollouts only

        service = actions[0].service
        plan = rollout_of(project.services[service], project.model.get("volumes") or {})
        assert plan is not None
        timeout = self.timeout if self.timeout is not None else _stop_timeout(project, service)

        async def create(old: Observed, name: str, labels: dict[str, str]) -> str:
            mounts: list[dict[str, Any]] = []
            if not self.renew_anon_volumes:
                info = await self.api.request("GET", f"/containers/{old.id}/json")
                mounts = list(info.get("Mounts") or [])
            action = Action("recreate", service, old.number, old)
            return await self._create(project, action, mounts, name=name, labels=labels)

        async def post_start(svc: str, cid: str, name: str) -> None:
            try:
                await self.post_start(svc, cid, name)
            except ComposeError as exc:  # the replica fails: the rollout undoes it
                raise RolloutFailed(str(exc)) from None

        olds = [a.container for a in actions if a.container is not None]
        hooks = Hooks(post_start=post_start, pre_stop=self.pre_stop)
        outcome = await Executor(self.api, self.say, hooks).roll(
            project.name, service, olds, plan, create, timeout
        )
        new_ids.extend(outcome.new_ids)
        failures.extend(outcome.errors)

    async def _act(self, project: Project, action: Action, new_ids: list[str]) -> None:
        async with self.limiter:
            c = action.container
            timeout = (
                self.timeout if self.timeout is not None else _stop_timeout(project, action.service)
            )
            if action.kind == "remove" and c:
                await self._remove(c, timeout)
            elif action.kind == "start" and c and self.no_start:
                return
            elif action.kind == "start" and c:
                await self.api.request("POST", f"/containers/{c.id}/start")
                self.say(f" Container {c.name}  Started")
                await self.post_start(action.service, c.id, c.name)
            elif action.kind == "restart" and c:
                await self.pre_stop(action.service, c.id, c.name)
                await self.api.request("POST", f"/containers/{c.id}/restart", {"t": timeout})
                self.say(f" Container {c.name}  Restarted")
                await self.post_start(action.service, c.id, c.name)
            elif action.kind in ("create", "recreate"):
                old_mounts: list[dict[str, Any]] = []
                if c:
                    if not self.renew_anon_volumes:
                        info = await self.api.request("GET", f"/containers/{c.id}/json")
                        old_mounts = list(info.get("Mounts") or [])
                    if c.running:
                        await self.pre_stop(action.service, c.id, c.name)
                    await self.api.request("POST", f"/containers/{c.id}/stop", {"t": timeout})
                    await self.api.request("DELETE", f"/containers/{c.id}", {"force": True})
                new_ids.append(await self._create_start(project, action, old_mounts))

    async def _create_start(
        self, project: Project, action: Action, old_mounts: list[dict[str, Any]] | None = None
    ) -> str:
        cid = await self._create(project, action, old_mounts)
        if self.no_start:
            return cid
        name = container_name(project, action.service, action.number)
        try:
            await self.api.request("POST", f"/containers/{cid}/start")
        except ApiError as exc:
            raise ComposeError(f"Error response from daemon: {exc.message}") from None
        self.say(f" Container {name}  Started")
        await self.post_start(action.service, cid, name)
        return cid

    async def _create(
        self,
        project: Project,
        action: Action,
        old_mounts: list[dict[str, Any]] | None = None,
        *,
        name: str = "",
        labels: dict[str, str] | None = None,
    ) -> str:
        """The container of `action`, made and given its secrets/configs, not started;
        `name` and `labels` for a rollout's replacement (a temporary name, its
        predecessor's id)."""
        svc = project.services[action.service]
        mode = str(svc.get("network_mode") or "")
        resolved = None
        if mode.startswith("service:"):
            peers = [o for o in await self.observe(project.name) if o.service == mode[8:]]
            if not peers:
                raise ComposeError(
                    f'service "{action.service}" shares the network of '
                    f'"{mode[8:]}", which has no container'
                )
            resolved = f"container:{peers[0].id}"
        for v in svc.get("volumes") or []:
            if v.get("type") == "bind" and (v.get("bind") or {}).get("create_host_path"):
                os.makedirs(v["source"], exist_ok=True)  # as dockerd does for -v binds
        final, body = create_body(
            project,
            action.service,
            action.number,
            networks_supported=await self._networks_api(),
            network_mode=resolved,
        )
        name = name or final
        if labels:
            body["Labels"] = {**(body.get("Labels") or {}), **labels}
        if old_mounts:
            inherit_anonymous_volumes(body, old_mounts)
        try:
            files = injected_files(project, action.service)
        except ValueError as exc:
            raise ComposeError(f'service "{action.service}": {exc}') from None
        created = await self.api.request("POST", "/containers/create", {"name": name}, body)
        cid = str(created["Id"])
        if files:
            try:
                tar = await trio.to_thread.run_sync(secrets_tar, files)
                await self.api.send_raw("PUT", f"/containers/{cid}/archive", {"path": "/"},
                                        tar, "application/x-tar")
            except (OSError, ApiError) as exc:
                await self.api.request("DELETE", f"/containers/{cid}", {"force": True})
                raise ComposeError(
                    f'service "{action.service}": cannot copy its secrets/configs in: '
                    f"{getattr(exc, 'message', None) or exc}"
                ) from None
        done = "Created" if action.kind != "recreate" or name != final else "Recreated"
        self.say(f" Container {name}  {done}")
        return cid

    async def _remove_limited(self, c: Observed, timeout: int) -> None:
        async with self.limiter:
            await self._remove(c, timeout)

    async def _remove(self, c: Observed, timeout: int) -> None:
        if c.running:
            await self.pre_stop(c.service, c.id, c.name)
            self.say(f" Container {c.name}  Stopping")
            await self.api.request("POST", f"/containers/{c.id}/stop", {"t": timeout})
            self.say(f" Container {c.name}  Stopped")
        try:
            await self.api.request("DELETE", f"/containers/{c.id}", {"force": True})
        except ApiError as exc:
            if exc.status != 404:
                raise
        self.say(f" Container {c.name}  Removed")

    # -- hooks -------------------------------------------------------------------------
    def _hooks(self, service: str, which: str) -> list[dict[str, Any]]:
        from .engine import DryRunEngine

        project = self.project
        if project is None or service not in project.services:
            return []
        if isinstance(self.api, DryRunEngine):  # nothing runs: say what would
            for hook in project.services[service].get(which) or []:
                self.say(f" Service {service}  would run its {which} hook {hook['command']}")
            return []
        return list(project.services[service].get(which) or [])

    async def post_start(self, service: str, cid: str, name: str) -> None:
        """compose's `post_start`: each hook run in the started container, in order; one
        that fails fails the service (its container is left running, as compose)."""
        for hook in self._hooks(service, "post_start"):
            code = await self.run_hook(cid, hook)
            if code != 0:
                raise ComposeError(
                    f'service "{service}": container {name}: post_start hook exited with '
                    f"status {code}"
                )

    async def pre_stop(self, service: str, cid: str, name: str) -> None:
        """compose's `pre_stop`: each hook run before the container is stopped by
        compose (down, stop, a recreate); a failure is reported and the stop goes on."""
        for hook in self._hooks(service, "pre_stop"):
            try:
                code = await self.run_hook(cid, hook)
            except ApiError as exc:
                self.say(f"WARNING: container {name}: pre_stop hook: {exc.message}")
                continue
            if code != 0:
                self.say(f"WARNING: container {name}: pre_stop hook exited with status {code}")

    async def run_hook(self, cid: str, hook: dict[str, Any]) -> int:
        """One hook as a detached exec, its exit status read from its `exec_die` event
        (subscribed to before it starts, so it cannot be missed)."""
        return await run_exec(self.api, cid, hook_exec_body(hook))

    # -- conditions --------------------------------------------------------------------
    async def wait_condition(self, service: str, condition: str, ids: list[str]) -> None:
        if condition == "service_started":
            return
        for cid in ids:
            info = await self.api.request("GET", f"/containers/{cid}/json")
            name = str(info.get("Name", cid)).lstrip("/")
            if condition == "service_completed_successfully":
                result = await self.api.request(
                    "POST", f"/containers/{cid}/wait", {"condition": "not-running"}
                )
                code = int((result or {}).get("StatusCode", 0))
                if code != 0:
                    raise ComposeError(
                        f'service "{service}" didn\'t complete successfully: exit {code}'
                    )
                self.say(f" Container {name}  Exited")
            elif condition == "service_healthy":
                await self._wait_healthy(service, cid, name, info)
                self.say(f" Container {name}  Healthy")

    async def _wait_healthy(self, service: str, cid: str, name: str, info: Any) -> None:
        """Healthy, or fail at once when it never can be (unhealthy, exited, no check).

        Subscribes to the container's `health_status`/`die` events *before* reading its
        state, so no transition falls between the two; each event triggers one inspect.
        A daemon without /events is asked every half second instead.
        """
        filters = json.dumps({"container": [cid], "event": ["health_status", "die"]})
        try:
            events = await self.api.open("GET", "/events", {"filters": filters})
        except ApiError:
            events = None

        def verdict(state: Any) -> bool:
            health = (state or {}).get("Health")
            if not isinstance(health, dict) and not (info.get("Config") or {}).get("Healthcheck"):
                raise ComposeError(f"container {name} has no healthcheck configured")
            status = (health or {}).get("Status")
            if status == "healthy":
                return True
            if status == "unhealthy":
                raise ComposeError(f"dependency failed to start: container {name} is unhealthy")
            if not (state or {}).get("Running"):
                raise ComposeError(
                    f"dependency failed to start: container {name} exited "
                    f"({(state or {}).get('ExitCode')})"
                )
            return False

        async def state() -> Any:
            return (await self.api.request("GET", f"/containers/{cid}/json")).get("State")

        if events is None:
            while not verdict(await state()):
                await trio.sleep(0.5)
            return
        async with events:
            if verdict(await state()):
                return
            async for chunk in events.chunks():
                if b"\n" in chunk and verdict(await state()):
                    return
        raise ComposeError(f"lost the event stream while waiting for {name} to be healthy")

    # -- down --------------------------------------------------------------------------
    async def down(
        self,
        name: str,
        project: Project | None,
        *,
        remove_orphans: bool,
        volumes: bool,
        timeout: int | None,
    ) -> None:
        self.project = project
        observed = await self.observe(name)
        if project is not None:
            groups, orphans = plan_down(project, observed, remove_orphans)
        else:
            groups, orphans = [observed] if observed else [], []
        for orphan in orphans:
            self.say(f"WARNING: Found orphan containers ([{orphan.name}]) for this project.")
        for group in groups:
            async with trio.open_nursery() as nursery:
                for c in group:
                    t = (
                        timeout
                        if timeout is not None
                        else (_stop_timeout(project, c.service) if project else 10)
                    )
                    nursery.start_soon(self._remove_limited, c, t)
        await self._remove_networks(name)
        if volumes:
            await self._remove_volumes(name, project)

    async def _remove_networks(self, name: str) -> None:
        if not await self._networks_api():
            return
        filters = json.dumps({"label": [f"{PROJECT}={name}"]})
        for net in await self.api.request("GET", "/networks", {"filters": filters}) or []:
            try:
                await self.api.request("DELETE", f"/networks/{net['Id']}")
                self.say(f" Network {net['Name']}  Removed")
            except ApiError as exc:
                self.say(f"WARNING: network {net['Name']}: {exc.message}")

    async def _remove_volumes(self, name: str, project: Project | None) -> None:
        filters = json.dumps({"label": [f"{PROJECT}={name}"]})
        found = await self.api.request("GET", "/volumes", {"filters": filters}) or {}
        for vol in found.get("Volumes") or []:
            try:
                await self.api.request("DELETE", f"/volumes/{quote(vol['Name'])}")
                self.say(f" Volume {vol['Name']}  Removed")
            except ApiError as exc:
                self.say(f"WARNING: volume {vol['Name']}: {exc.message}")


def check_platform(service: str, image: str, platform: str, info: dict[str, Any]) -> None:
    """compose's `platform:` against the image's: corral runs no emulation, so an image
    of another OS/architecture is refused naming both, before anything is created."""
    want = platform.lower().split("/")[:2]
    have = [str(info.get("Os") or "linux"), str(info.get("Architecture") or "")]
    if want != have[: len(want)]:
        raise ComposeError(
            f'service "{service}": image {image} is {"/".join(have)}, not the platform '
            f"{platform} asked for (corral runs images of this host's platform only)"
        )


def hook_exec_body(hook: dict[str, Any]) -> dict[str, Any]:
    """`POST /containers/{id}/exec`'s body for a compose hook (or `develop.watch` exec)."""
    import shlex

    cmd = hook.get("command")
    argv = shlex.split(cmd) if isinstance(cmd, str) else [str(a) for a in cmd or []]
    env = hook.get("environment") or {}
    pairs = (
        [f"{k}={'' if v is None else v}" for k, v in env.items()]
        if isinstance(env, dict)
        else [str(e) for e in env]
    )
    return {
        "Cmd": argv,
        "User": str(hook.get("user") or ""),
        "Privileged": bool(hook.get("privileged", False)),
        "WorkingDir": str(hook.get("working_dir") or ""),
        "Env": pairs,
        "AttachStdin": False,
        "AttachStdout": False,
        "AttachStderr": False,
    }


async def run_exec(api: ComposeEngine, cid: str, body: dict[str, Any]) -> int:
    """Run an exec detached in container `cid` and return its exit status, from the
    `exec_die` event (subscribed to first: no exit falls between start and watch)."""
    from .engine import DryRunEngine

    if isinstance(api, DryRunEngine):  # made up, never run: nothing will exit
        return 0
    filters = json.dumps({"container": [cid], "event": ["exec_die"]})
    events = await api.open("GET", "/events", {"filters": filters})
    async with events:
        made = await api.request("POST", f"/containers/{cid}/exec", json_body=body)
        eid = str(made["Id"])
        await api.request("POST", f"/exec/{eid}/start", json_body={"Detach": True})
        buf = b""
        async for chunk in events.chunks():
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for line in filter(bytes.strip, lines):
                attrs = (json.loads(line).get("Actor") or {}).get("Attributes") or {}
                if attrs.get("execID") == eid:
                    return int(attrs.get("exitCode", -1))
    raise ComposeError(f"lost the event stream while waiting for an exec in {cid[:12]}")


def secrets_tar(files: list[Injected]) -> bytes:
    """The tar PUT at `/` that places each secret/config at its target, with its mode
    and owner (parents 0755, root's); a file source is read here (blocking: run in a
    thread)."""
    import io
    import tarfile

    buf = io.BytesIO()
    dirs: set[str] = set()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for f in files:
            if f.file:
                with open(f.file, "rb") as src:
                    data = src.read()
            else:
                data = f.content.encode()
            parts = f.target.strip("/").split("/")
            for n in range(1, len(parts)):
                d = "/".join(parts[:n])
                if d not in dirs:
                    dirs.add(d)
                    info = tarfile.TarInfo(d)
                    info.type = tarfile.DIRTYPE
                    info.mode = 0o755
                    tar.addfile(info)
            info = tarfile.TarInfo("/".join(parts))
            info.size = len(data)
            info.mode = f.mode
            info.uid, info.gid = f.uid, f.gid
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _stop_timeout(project: Project | None, service: str) -> int:
    if project is None or service not in project.services:
        return 10
    grace = project.services[service].get("stop_grace_period")
    return 10 if grace is None else duration_ns(grace) // 10**9
