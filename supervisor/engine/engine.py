"""The engine: the one owner of containers, images and volumes.

Every operation the API offers ends up here.  The engine keeps records in the metadata
store, asks the image store for layers, mounts roots and talks to the OCI runtime
through `supervisor.runtime`, and runs one supervision task per running container in
the nursery it is given (the daemon's).  That task holds the container's pipes and its
pidfd: the daemon is the container init's subreaper, so no runc process stays behind
per container and nothing polls.

Failure paths undo what they did, in reverse: a create or start that fails leaves no
row, directory, mount, cgroup or runc state behind.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import secrets
import shutil
import signal
import stat
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import structlog
import trio

from supervisor import stateroot
from supervisor.engine import create as plan
from supervisor.engine import names, restore, unsupported
from supervisor.engine import namespaces as nsmodes
from supervisor.engine import update as updates
from supervisor.engine.caps import bounding_caps, capabilities
from supervisor.engine.execs import Exec, ExecStartError, ExecStore, runtime_start_error
from supervisor.engine.hooks import Draft, Hooks
from supervisor.engine.live import Live
from supervisor.engine.paths import secure_join
from supervisor.engine.settings import EngineSettings
from supervisor.engine.state import Event, Status, is_active, next_status, transition
from supervisor.engine.timefmt import rfc3339_nano
from supervisor.engine.users import ResolvedUser, resolve_user
from supervisor.engine.volumehooks import VolumeHooks
from supervisor.engine.volumes import VolumeStore
from supervisor.errors import Conflict, CorralError, InvalidArgument, NotModified, disk_full
from supervisor.images.changes import apply_changes
from supervisor.images.store import ImageStore
from supervisor.metadata.containers import Container, ContainerStore, MountPoint, State
from supervisor.metadata.database import Database
from supervisor.metadata.inits import InitStore
from supervisor.network import links as netlinks
from supervisor.network.hooks import NetworkHooks
from supervisor.network.manager import Networks, has_sandbox, network_mode
from supervisor.pods import members as pod_members
from supervisor.pods.infra import InfraImages
from supervisor.pods.labels import POD_LABEL
from supervisor.pods.prober import ProbeHooks
from supervisor.rmtree import discard_tree
from supervisor.runtime import cgroups, seccompexec, securityopt, userns
from supervisor.runtime.console import Console, with_console_socket
from supervisor.runtime.devices import check_devices, container_devices
from supervisor.runtime.fds import OwnedFd, close_all
from supervisor.runtime.holder import Handover, HeldPid, Holder, HolderLost, start_ticks
from supervisor.runtime.process import PidFd
from supervisor.runtime.rootfs import is_mounted, mount_overlay, mount_shm, unmount
from supervisor.runtime.runc import Runtime, check_command
from supervisor.runtime.seccomp import Profile, host_platform
from supervisor.runtime.seccompexec import Filters
from supervisor.runtime.spec import (
    DEFAULT_CAPABILITIES,
    DEFAULT_MASKED_PATHS,
    DEFAULT_READONLY_PATHS,
    DEFAULT_SHM_SIZE,
    ContainerSpec,
    Device,
    Mount,
    ProcessSpec,
    Resources,
    Rlimit,
    UserNamespace,
    all_capabilities,
)
from supervisor.runtime.spec import build_config as build_oci_config
from supervisor.runtime.userns import Remap
from supervisor.supervise import healthstate
from supervisor.supervise import restart as restarts
from supervisor.supervise.events import EventBus
from supervisor.supervise.framing import LineFramer
from supervisor.supervise.health import HealthHooks
from supervisor.supervise.logconfig import resolve_log_config
from supervisor.supervise.loghooks import LogHooks
from supervisor.supervise.logs import ContainerLog, LogEntry
from supervisor.supervise.spool import CHUNK, Spool

#: container actions that can change a pod's readiness (with every `health_status`)
_GATING = ("create", "start", "die", "pause", "unpause", "destroy")

log = structlog.get_logger("corral.engine")

DEFAULT_STOP_TIMEOUT = 10
# After a shutdown's grace: how long the killed containers' exits may take to finish.
SHUTDOWN_FINISH_S = 60


def _stop_timeout(c: Container) -> int:
    """A container's stop timeout for the daemon's shutdown (a negative one, Docker's
    "wait for ever", counts as the default: a shutdown must end)."""
    t = c.config.get("StopTimeout")
    return t if isinstance(t, int) and t >= 0 else DEFAULT_STOP_TIMEOUT
#: Docker's `Kill`: seconds to wait for the exit after SIGKILL before `runc kill --all`,
#: then seconds more before `kill` gives up with an error.
KILL_TIMEOUT = 10
KILL_GIVE_UP = 2
RECOVERED_ERROR = "the corral daemon stopped while the container was running"
#: Policy restarts whose start runs at once; the others wait their turn, in order.  A
#: fleet crash-looping with no backoff would otherwise keep the event loop's every
#: round full of starts, and the API would answer after all of them.
RESTARTS_IN_FLIGHT = 2
#: A policy restart due within this many seconds keeps the exited run's root (and shm)
#: mounted for the next run, as its writable layer is kept (Docker's): no unmount and
#: mount again per crash of a loop.  A longer backoff unmounts, as a stop does.
KEEP_ROOT_S = 1.0


@contextlib.asynccontextmanager
async def open_engine(
    root: Path, settings: EngineSettings | None = None
) -> AsyncIterator[Engine]:
    """The engine with the nursery its containers' tasks run in, one owner for both.

    Inside, the caller serves (and calls `recover` first).  Leaving normally (a
    signal, the API's end) stops the containers, as Docker does (or leaves them to
    the holder with live restore), then cancels every task of theirs,
    then closes the image store and the database: that order is this function's,
    whatever the caller does.  Left by an exception, nothing is stopped (a crash is
    a live restore: the holder keeps them); the tasks end and the stores close.
    """
    from supervisor.runtime.process import reap_runtime_orphans_forever

    engine: Engine | None = None
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(reap_runtime_orphans_forever)
            settings = settings or EngineSettings()
            engine = Engine(root, nursery, settings)
            # the default bridge's IPv6 (dockerd's --ipv6/--fixed-cidr-v6), before any start
            engine.networks.configure_default(settings.ipv6, settings.fixed_cidr_v6)
            yield engine
            await engine.shutdown()  # bounded by its own grace periods
            nursery.cancel_scope.cancel()
    finally:
        if engine is not None:
            engine.images.close()
            engine.db.close()
            if engine.runtime.filters is not None:
                engine.runtime.filters.close()


def _signal_number(sig: str | int) -> int:
    """`SIGTERM`, `TERM`, `15` → 15, as Docker accepts them."""
    if isinstance(sig, int):
        return sig
    s = sig.strip().upper()
    if s.isdigit():
        return int(s)
    if not s.startswith("SIG"):
        s = "SIG" + s
    try:
        return int(signal.Signals[s])
    except KeyError:
        raise InvalidArgument(f"Invalid signal: {sig}") from None


def _write_bundle(
    bundle: Path, spec: ContainerSpec, marker: seccompexec.Marker | None
) -> dict[str, Any] | None:
    """The bundle's config.json from a spec (blocking: a worker thread's); given a
    marker, the seccomp helper in front of the command where the process allows it
    (then the marker is written beside it: every exec goes the same way).  The OCI
    process the helper will exec if it did, else None."""
    import json

    config = build_oci_config(spec, _host_nofile_hard())
    wrapped = None if marker is None else seccompexec.wrap_config(config, marker)
    if wrapped is not None and marker is not None:
        stateroot.write_private_file(bundle / seccompexec.MARKER, marker.text())
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(bundle / seccompexec.MARKER)
    process = config["process"] if wrapped is not None else None
    if wrapped is not None:
        config = wrapped
    stateroot.write_private_file(bundle / "config.json", json.dumps(config).encode())
    return process


def _host_nofile_hard() -> int:
    import resource

    return resource.getrlimit(resource.RLIMIT_NOFILE)[1]


def _copy_or_full(src: str, dst: str) -> object:
    """shutil.copy2 for copytree, but a full disk stops the copy at once: copytree
    collects OSErrors and goes on, and one file that did not fit dooms the rest."""
    try:
        return shutil.copy2(src, dst)
    except OSError as exc:
        if (full := disk_full(exc)) is not None:
            raise full from exc
        raise


class Engine:
    def __init__(
        self, root: Path, nursery: trio.Nursery, settings: EngineSettings | None = None
    ) -> None:
        settings = settings or EngineSettings()
        self.root = root
        self.cgroup_parent = settings.cgroup_parent.strip("/")
        self.log_defaults = settings.log_defaults
        # `--init`: the host's static init binary ("" if none) and the daemon's
        # `init` setting, the default for a container whose HostConfig.Init is null.
        self.init_path = settings.init_path
        self.init_default = settings.init_default
        # daemon.yaml's insecure-registries, registry-mirrors, certs-dir
        self.registries = settings.registries
        stateroot.prepare(root)  # 0700 skeleton, an older root's modes fixed, tmp/ swept
        # Docker's "-init" layer, the same for every container: one shared lower, made
        # (again, after a power cut) here rather than 7 entries per create and removal
        self.init_layer = root / "init-layer"
        _make_init_layer(self.init_layer)
        self.db = Database(root / "corral.db")
        nursery.start_soon(self.db.keep_pending)  # records held while the disk is full
        self.images: ImageStore = InfraImages(root, self.db)  # + pod infra (pods/infra.py)
        self.volumes = VolumeStore(root, self.db)
        self.containers = ContainerStore(self.db)
        self.execs = ExecStore()
        self.runtime = Runtime(settings.runtime, state_dir=root / "runc")
        # execs into containers an earlier daemon made with the helper need it whatever
        # this one's setting; the setting is whether new starts use it
        self.runtime.filters = Filters(root, settings.runtime, settings.cgroup_parent,
                                       enabled=settings.seccomp_helper)
        self.runtime_name = settings.runtime
        self.nursery = nursery
        self.events = EventBus(self.db)
        self._live: dict[str, Live] = {}
        # networking (supervisor/network): bridges, namespaces, published ports, names
        self.networks = Networks(root, self.db, self.containers, nursery,
                                 kernel_nat=not settings.userland_proxy)
        # what the other components do at each step of a container's lifecycle
        # (engine/hooks.py): set up in this order, taken down in the reverse
        self.volume_hooks = VolumeHooks(self.volumes, self.events, self.volume_user)
        self.hooks: list[Hooks] = [
            NetworkHooks(self.networks),
            self.volume_hooks,
            LogHooks(self._live),
            HealthHooks(self, nursery, self._on_health, self.containers.save),
            ProbeHooks(self, nursery, self.emit, self._probe_kill, self.containers.save),
        ]
        # `userns-remap`: the range, and the namespace holding it (runtime/userns.py)
        remap = self.remap = settings.remap
        self.userns_path = root / "userns"
        if remap is not None:
            userns.make_holder(self.userns_path, remap)
            self.networks.remap_userns = self.userns_path
            for d in (root, root / "containers", root / "volumes"):
                stateroot.open_to_group(d, remap.gid)
        else:
            userns.release(self.userns_path)
        # live restore (engine/restore.py): the holder parents every init and keeps
        # its descriptors, so containers outlive this daemon; `live_restore` says
        # whether a SIGTERM leaves them running too (daemon.yaml `live-restore`)
        self.holder = Holder(root)
        self.inits = InitStore(self.db)
        self.live_restore = settings.live_restore
        self.shutting_down = False
        self._restarts = trio.CapacityLimiter(RESTARTS_IN_FLIGHT)
        for c in self.containers.all():
            self._live[c.id] = Live(log=ContainerLog(self.log_path(c)))

    def _remap_of(self, c: Container | dict[str, Any]) -> Remap | None:
        """The range a container's root is mapped to: the daemon's, unless the
        container asked for the host's user namespace (`--userns=host`)."""
        hc = c if isinstance(c, dict) else c.host_config
        return None if (hc.get("UsernsMode") or "") == "host" else self.remap

    def _chown_to_remap(self, c: Container, *paths: Path) -> None:
        r = self._remap_of(c)
        if r is not None:
            for p in paths:
                with contextlib.suppress(FileNotFoundError):
                    os.chown(p, r.uid, r.gid)

    # ------------------------------------------------------------------ paths
    def lowers_of(self, c: Container) -> list[Path]:
        """The overlay's lower layers, bottom first: the image's, then the init layer
        (a container made before the init layer was shared has its own copy, unused)."""
        return [*self.images.layer_dirs(c.image_id), self.init_layer]

    def dir_of(self, c: Container) -> Path:
        return self.root / "containers" / c.id

    def log_path(self, c: Container) -> Path:
        return self.dir_of(c) / f"{c.id}-json.log"

    def rootfs_of(self, c: Container) -> Path:
        return self.dir_of(c) / "rootfs"

    async def _prewarm_seccomp(self) -> None:
        """A default container's filter made now, beside the boot (once per root and
        runc: it is kept on disk), so the first start does not wait ~1 s for runc
        to make it."""
        filters, caps = self.runtime.filters, list(DEFAULT_CAPABILITIES)
        try:
            section = securityopt.SecurityOptions().linux_seccomp(caps, host_platform())
            if filters is not None and section is not None and self.holder.preserves and (
                    marker := await filters.marker_for(section, caps)) is not None:
                await filters.prepare(section, marker)  # a failure is logged there
        except OSError as exc:  # no runtime to ask: the first start says so
            log.warning("seccomp.prewarm_failed", error=str(exc))

    async def _seccomp_helper(
        self, spec: ContainerSpec
    ) -> tuple[seccompexec.Marker | None, OwnedFd | None]:
        """The marker and sealed helper that install this start's seccomp filter in
        runc's stead (runtime/seccompexec.py), or (None, None): runc's own path (the
        setting off, a profile of the user's, a holder too old to pass descriptors)."""
        filters = self.runtime.filters
        if (filters is None or spec.seccomp is None or not spec.seccomp_default
                or not self.holder.preserves):
            return None, None
        caps = spec.process.capabilities
        marker = await filters.marker_for(
            spec.seccomp, list(DEFAULT_CAPABILITIES if caps is None else caps))
        if marker is None:
            return None, None
        helper = await filters.prepare(spec.seccomp, marker)
        return (marker, helper) if helper is not None else (None, None)

    def cgroup_path(self, c: Container) -> str:
        return f"/{self.cgroup_parent}/{c.id}"

    def live(self, c: Container) -> Live:
        return self._live[c.id]

    # ---------------------------------------------------------------- events
    def emit(self, c: Container, action: str, **extra: object) -> None:
        """A container event with Docker's attributes: name, image and the labels."""
        attrs: dict[str, str] = {**(c.config.get("Labels") or {}), "image": c.image,
                                 "name": c.name}
        attrs.update({k: str(v) for k, v in extra.items()})
        self.events.publish("container", action, c.id, attrs)
        from supervisor.pods.events import pod_event

        if (pod := pod_event(c.config.get("Labels"), action)) is not None:
            self.events.publish("pod", pod[0], c.id, pod[1])  # a pod's infra is the pod
        if action in _GATING or action.startswith("health_status"):
            self._gate_pod(c)

    def _gate_pod(self, c: Container) -> None:
        """A pod's published ports (its infra's) take new connections only while the
        pod is ready (every member running and ready), as a Service's endpoints."""
        labels = c.config.get("Labels") or {}
        pod = str(labels.get(POD_LABEL) or "")
        if not pod:
            return
        try:
            infra = pod_members.find_infra(pod, self.containers.all())
        except CorralError:
            return
        members = pod_members.members_of(infra, self.containers.all())
        self.networks.set_ready(infra.id, pod_members.pod_ready(
            (m.state.status is Status.RUNNING, m.state.health.status if m.state.health
             else None) for m in members))

    # ------------------------------------------------------------- recovery
    async def recover(self) -> None:
        """After a restart (clean or kill -9): nothing of the previous run stays alive.

        Containers that were running are killed (their init was reparented away from
        us when the old daemon died) and reported exited with a clear reason; runc
        state, mounts and cgroups of any container are cleaned; half-made container
        directories without a row are removed.
        """
        known = {c.id for c in self.containers.all()}
        # runc's sealed memfd made now, off the trio thread (an 8.7 MB copy)
        await trio.to_thread.run_sync(self.runtime.sealed.exe)
        # live restore: what the holder kept running for us is adopted, not killed
        chosen, refused = restore.choose(self, await self.holder.open(self.nursery))
        self.runtime.spawner = self.holder.spawn
        self.nursery.start_soon(self._prewarm_seccomp)
        kept = frozenset(c.id for c, _ in chosen)
        listed = await self.runtime.list_ids()
        for rid in listed:
            if rid in kept:
                continue
            await self.runtime.delete(rid, force=True)
            cgroups.cleanup(f"/{self.cgroup_parent}/{rid}")
        for rid in self.runtime.sweep_unlisted(kept, listed):  # torn by a power cut
            log.warning("runtime.state_swept", id=rid[:12])
            cgroups.cleanup(f"/{self.cgroup_parent}/{rid}")
        for rid in refused:
            await self.holder.forget(rid)  # killed above, if it still ran
        self.networks.recover(kept)  # networking: netns, veths, addresses of the last run
        was_restarting: set[str] = set()
        for c in self.containers.all():
            if c.id in kept:
                continue
            if is_mounted(self.rootfs_of(c)):
                unmount(self.rootfs_of(c))
            unmount(self.dir_of(c) / "shm")  # --ipc shareable
            if self.inits.get(c.id) is not None:
                self.inits.drop(c.id)
            if c.state.status is Status.RESTARTING:
                was_restarting.add(c.id)  # its policy restart is carried out below
            if c.state.status in (Status.RUNNING, Status.PAUSED, Status.RESTARTING):
                cgroups.cleanup(self.cgroup_path(c))
                transition(c.state, Event.EXIT, c.name)
                c.state.exit_code = 255
                c.state.pid = 0
                c.state.error = RECOVERED_ERROR
                c.state.finished_at = rfc3339_nano()
                self.containers.save(c)
                log.info("container.recovered", id=c.short_id, name=c.name)
                if c.host_config.get("AutoRemove"):
                    await self.remove(c, force=True, volumes=True)
        for c in self.containers.all():
            try:
                self._remake_lost(c)
            except OSError as exc:  # a full disk: its start will say so
                log.error("container.remake_failed", id=c.short_id, error=str(exc))
        held_volumes = {m.name for c in self.containers.all() if c.id in kept
                        for m in c.mounts if m.type == "volume"}  # fmt: skip
        for c in self.containers.all():
            if c.id in kept:  # live restore: its option volumes stay mounted, for it
                self.volume_hooks.adopt(c)
        try:
            self.volumes.remake_lost(frozenset(held_volumes))
        except OSError as exc:
            log.error("volume.remake_failed", error=str(exc))
        for d in (self.root / "containers").iterdir():
            if d.name not in known:
                for sub in ("rootfs", "shm"):
                    if is_mounted(d / sub):
                        unmount(d / sub)
                discard_tree(d)
        restored = 0
        for c, h in chosen:
            restored += await restore.adopt(self, c, h)
        self.networks.adopted()  # no DNAT rule of a container not adopted stays
        if chosen:
            self.events.publish("daemon", "restore", "", {
                "containers": str(restored),
                "message": f"daemon restored {restored} containers",
            })
            log.info("daemon.restored", containers=restored)
        wanted = []
        for c in self.containers.all():
            if c.id in kept:
                continue
            policy = restarts.Policy.from_api(c.host_config.get("RestartPolicy"))
            if c.state.status is Status.EXITED and (
                restarts.starts_at_boot(policy, c.state.user_stopped)
                or c.id in was_restarting
            ):
                wanted.append((c.id, c.name, nsmodes.depends_on(c.host_config)))
        if wanted:
            self.nursery.start_soon(self._boot_starts, nsmodes.boot_waves(wanted))

    async def _boot_starts(self, waves: list[list[str]]) -> None:
        """Boot starts, wave after wave: a container that joins or links to another
        starts once that one has (its own wave's starts run together)."""
        for wave in waves:
            async with trio.open_nursery() as n:
                for cid in wave:
                    try:
                        c = self.containers.get(cid)
                    except CorralError:
                        continue  # removed meanwhile
                    n.start_soon(self._start_quietly, c)

    async def _start_quietly(self, c: Container) -> None:
        try:
            await self.start(c, by_user=False)
        except Exception as exc:  # noqa: BLE001 - e.g. ENOSPC: a boot start never ends the daemon
            message = exc.message if isinstance(exc, CorralError) else str(exc)
            log.warning("container.boot_start_failed", id=c.short_id, name=c.name,
                        error=message)

    def _remake_lost(self, c: Container) -> None:
        """What `create` made beside the row (directories, init layer, /etc files) is
        derived from the record and not fsynced (about 15 fsyncs, 50 ms inline per
        create on the development VM): a power cut may take it, so it is made again
        here, at the start after one, if missing or empty."""
        cdir = self.dir_of(c)
        stateroot.make_private_dir(cdir)
        for sub in ("upper", "work", "rootfs"):
            (cdir / sub).mkdir(exist_ok=True)
        if self.remap is not None and self._remap_of(c) is not None:
            stateroot.open_to_group(cdir, self.remap.gid)
            for sub in ("upper", "work"):
                if not any((cdir / sub).iterdir()):  # remade: the range's root's again
                    self._chown_to_remap(c, cdir / sub)
        names = ("hostname", "hosts", "resolv.conf")
        if any(not (cdir / n).is_file() or (cdir / n).stat().st_size == 0 for n in names):
            log.warning("container.etc_files_remade", id=c.short_id, name=c.name)
            self._write_etc_files(c)

    async def shutdown(self) -> None:
        """Stop every running container, as Docker does when its daemon stops; with
        live restore leave them to the holder instead, for the next daemon."""
        if self.live_restore:
            self.networks.shutdown(keep=True)  # bridges stay with their containers
            self.holder.close()
            log.info("daemon.live_restore", running=sum(
                1 for c in self.containers.all() if is_active(c.state.status)))
            return
        self.shutting_down = True
        for live in self._live.values():
            if live.restart_scope is not None:
                live.restart_scope.cancel()
        for c in self.containers.all():  # no restart comes now: the kept roots go
            if (kept := self._live.get(c.id)) is not None:
                await self._release_root(c, kept)
        active = [c for c in self.containers.all() if is_active(c.state.status)]
        # As dockerd's ShutdownTimeout: the longest stop timeout of those running (at
        # least the default) and a margin; then what is left is killed, and its exit's
        # cleanup (unmounts, runc state, endpoints) still gets its time: a loaded host
        # finishing 100 exits at once needs more than any fixed cap (a 30 s cap left
        # stopped containers mounted, their runc state and the holder behind).
        grace = max([DEFAULT_STOP_TIMEOUT, *(_stop_timeout(c) for c in active)]) + 5
        with trio.move_on_after(grace) as cut:
            async with trio.open_nursery() as n:
                for c in active:
                    n.start_soon(self._stop_quietly, c)
        if cut.cancelled_caught:
            left = [lv for c in active if (lv := self._live.get(c.id)) is not None
                    and not lv.exited.is_set()]
            log.warning("daemon.shutdown_kill", left=len(left), grace_s=grace)
            for c in active:
                if c.id in self._live:
                    self._send(c, signal.SIGKILL)
            with trio.move_on_after(SHUTDOWN_FINISH_S):
                for lv in left:
                    await lv.exited.wait()
        self.networks.shutdown()  # networking: bridges go with the daemon
        await self.holder.quit()  # it holds nothing now
        if self.remap is not None:
            userns.release(self.userns_path)  # the next daemon makes its own

    async def _stop_quietly(self, c: Container) -> None:
        with contextlib.suppress(CorralError):
            await self.stop(c, None, by_user=False)

    # ---------------------------------------------------------------- create
    def create(
        self,
        body: dict[str, Any],
        name: str = "",
        platform: str = "",
        warnings: list[str] | None = None,
        *,
        durable: bool = True,
    ) -> Container:
        """A container record and its directory; nothing is left if any step fails.
        dockerd's warnings for the create's answer are appended to `warnings`.
        `durable=False`: committed without the WAL's fsync, for a caller that awaits
        `db.synced()` before it answers (the API: a fleet's creates share fsyncs)."""
        image_ref = body.get("Image") or ""
        if not image_ref:
            raise InvalidArgument("no image specified")
        pod_members.join(body, self.containers.all())  # a pod's member: its infra's network
        unsupported.check_body(body, runtime=self.runtime_name)  # refused, never dropped
        image = self.images.resolve(image_ref)
        host_config: dict[str, Any] = dict(body.get("HostConfig") or {})
        capabilities(host_config)  # an unknown --cap-add name is refused now
        if host_config.get("Privileged") and self._remap_of(host_config) is not None:
            raise InvalidArgument(  # dockerd's words
                "privileged mode is incompatible with user namespaces.  You must run the "
                "container in the host namespace when running privileged mode"
            )
        check_devices(host_config)  # a bad --device or --device-cgroup-rule too
        for key in ("CapAdd", "CapDrop"):  # stored as lists, as Docker's StrSlice
            if isinstance(host_config.get(key), str):
                host_config[key] = [host_config[key]]
        self._init_binary(host_config)  # and --init with no init binary on the host
        plan.fill_path_defaults(host_config, DEFAULT_MASKED_PATHS, DEFAULT_READONLY_PATHS)
        name = names.validate(name) if name else names.generate(self.containers.names())
        self.containers.check_name_free(name)
        image_json = self.images.config(image.id)
        plan.check_platform(platform, image_json)  # `--platform`
        image_cfg = image_json.get("config") or {}
        config = plan.merge_config(image_cfg, body)
        path, args = plan.command_line(config)
        mounts = plan.plan_mounts(config, host_config)
        mounts += self._volumes_from(host_config, mounts)
        cid = secrets.token_hex(32)
        draft = Draft(cid, name, body, host_config, config)
        for hook in self.hooks:  # networking: its plan, ports and --link
            hook.check_create(draft)
        nsmodes.check_modes(host_config, config)  # --ipc --pid --uts --shm-size ...
        nsmodes.check_sysctls(host_config, network_mode(host_config) == "host")
        self._check_resources(host_config)
        nsmodes.check_memory(host_config)
        if warnings is not None:
            warnings += nsmodes.warnings(host_config)
        securityopt.parse(host_config.get("SecurityOpt"), securityopt.host_security())
        if config.get("StopSignal"):
            _signal_number(config["StopSignal"])  # refuse a bad --stop-signal at create
        policy = restarts.Policy.from_api(host_config.get("RestartPolicy"))
        if policy.name != "no" and host_config.get("AutoRemove"):
            raise Conflict("conflicting options: cannot specify both --restart and --rm")
        restarts.Tuning.from_labels(config.get("Labels"))
        healthstate.validate(body.get("Healthcheck"))
        host_config["LogConfig"] = resolve_log_config(
            host_config.get("LogConfig"), self.log_defaults
        )

        c = Container(
            id=cid,
            name=name,
            image_id=image.id,
            image=image_ref,
            created=rfc3339_nano(),
            path=path,
            args=args,
            config=config,
            host_config=host_config,
            mounts=mounts,
        )
        if not config["Hostname"]:
            # the host's UTS namespace: its name is the container's (as dockerd's)
            uts_host = host_config.get("UTSMode") == "host"
            config["Hostname"] = os.uname().nodename if uts_host else cid[:12]
        made_volumes: list[str] = []
        cdir = self.dir_of(c)
        # `--mount type=bind` wants an existing source; `-v` creates it (at start).
        strict_binds = {
            x.get("Source")
            for x in host_config.get("Mounts") or []
            if x.get("Type") == "bind"
            and not (x.get("BindOptions") or {}).get("CreateMountpoint")  # made at start
        }
        try:
            # volumes, endpoints and record: one transaction, so a failure anywhere (a
            # full disk) rolls every row back, with nothing to delete on a disk that has
            # no room for the delete; one WAL fsync (or the caller's `synced`)
            with self.db.transaction(durable=durable):
                for m in mounts:
                    if m.type == "volume":
                        vol, new = self.volumes.create(m.name, m.volume_labels,
                                                       anonymous=m.anonymous,
                                                       options=m.driver_opts)  # fmt: skip
                        m.name = vol.name
                        m.source = str(vol.mountpoint)
                        if new:
                            made_volumes.append(vol.name)
                    elif m.source in strict_binds and not Path(m.source).exists():
                        raise InvalidArgument(
                            f'invalid mount config for type "bind": bind source path '
                            f"does not exist: {m.source}"
                        )
                stateroot.make_private_dir(cdir)
                for sub in ("upper", "work", "rootfs"):
                    (cdir / sub).mkdir()
                self._write_etc_files(c)  # (not fsynced: `recover` makes them again if lost)
                if self.remap is not None and self._remap_of(c) is not None:
                    stateroot.open_to_group(cdir, self.remap.gid)  # its root reaches its rootfs
                    self._chown_to_remap(c, cdir / "upper", cdir / "work")
                for hook in self.hooks:  # networking: endpoint rows
                    hook.created(c, draft)
                self.containers.add(c)
        except BaseException:
            self.containers.forget(cid)  # rolled back: out of the in-memory index too
            for hook in reversed(self.hooks):
                hook.create_failed(cid)
            discard_tree(cdir)
            for v in made_volumes:  # their rows rolled back with the container's
                self.volumes.discard_dir(v)
            raise
        for v in made_volumes:
            self.events.publish("volume", "create", v, {"driver": "local"})
        self._live[c.id] = Live(log=ContainerLog(self.log_path(c)))
        self.emit(c, "create")
        log.info("container.create", id=c.short_id, name=c.name, image=image_ref)
        return c

    def _volumes_from(self, hc: dict[str, Any], own: list[MountPoint]) -> list[MountPoint]:
        """`--volumes-from NAME[:ro|rw]`: the volumes and binds of another container, as
        dockerd copies them (its mode or the one given; the container's own mounts win
        on a shared destination).  A volume copied is the same volume, anonymous if it
        was (dockerd copies the mount's spec): the last `rm -v` of its users removes it."""
        taken = {m.destination.rstrip("/") for m in own}
        out: list[MountPoint] = []
        for spec in hc.get("VolumesFrom") or []:
            if not isinstance(spec, str) or not spec:
                raise InvalidArgument(f"invalid VolumesFrom entry: {spec!r}")
            name, _, mode = spec.partition(":")
            if mode not in ("", "ro", "rw", "z", "Z"):  # z/Z: SELinux, nothing here
                raise InvalidArgument(f"invalid mode: {mode}")
            try:
                source = self.containers.get(name)
            except CorralError as exc:  # dockerd's InvalidParameter: a 404 reads as no image
                raise InvalidArgument(exc.message) from None
            for m in source.mounts:
                if m.type == "tmpfs" or m.destination.rstrip("/") in taken:
                    continue
                copy = replace(m)
                if mode in ("ro", "rw"):
                    copy.read_only = mode == "ro"
                out.append(copy)
                taken.add(m.destination.rstrip("/"))
        return out

    def _check_resources(self, hc: dict[str, Any]) -> None:
        mem = hc.get("Memory") or 0
        if mem and mem < 6 * 1024 * 1024:
            raise InvalidArgument("Minimum memory limit allowed is 6MB")
        if (hc.get("NanoCpus") or 0) < 0:
            raise InvalidArgument("Range of CPUs is from 0.01 to the number of CPUs")
        # the host's cpusets read only for a create that names some (a fleet's creates
        # name none: two sysfs reads and a mountinfo walk each)
        wants = hc.get("CpusetCpus") or hc.get("CpusetMems")
        updates.check_cpu(hc, updates.host_cpusets() if wants else ("", ""))
        swap = hc.get("MemorySwap") or 0
        if swap > 0 and not mem:
            raise InvalidArgument(
                "You should always set the Memory limit when using Memoryswap limit, see usage"
            )
        if swap > 0 and swap < mem:
            raise InvalidArgument(
                "Minimum memoryswap limit should be larger than memory limit, see usage"
            )
        if mem and not swap:
            hc["MemorySwap"] = 2 * mem  # dockerd stores its default (inspect shows it)

    def _write_etc_files(self, c: Container) -> None:
        cdir = self.dir_of(c)
        host_mode = (c.host_config.get("NetworkMode") or "") == "host"
        hostname = os.uname().nodename if host_mode else c.config["Hostname"]
        (cdir / "hostname").write_text(hostname + "\n")
        if has_sandbox(network_mode(c.host_config)):
            self.networks.write_etc_files(c, cdir)  # networking: hosts, resolv.conf, --dns
            return
        hosts = [
            "127.0.0.1\tlocalhost",
            "::1\tlocalhost ip6-localhost ip6-loopback",
            "fe00::0\tip6-localnet",
            "ff00::0\tip6-mcastprefix",
            "ff02::1\tip6-allnodes",
            "ff02::2\tip6-allrouters",
        ]
        if host_mode:
            with contextlib.suppress(OSError):
                hosts = Path("/etc/hosts").read_text().splitlines()
        for extra in c.host_config.get("ExtraHosts") or []:
            host, _, addr = extra.partition(":")
            hosts.append(f"{addr}\t{host}")
        (cdir / "hosts").write_text("\n".join(hosts) + "\n")
        try:
            resolv = Path("/etc/resolv.conf").read_text()
        except OSError:
            resolv = ""
        if not host_mode:
            # A container without the host's network can not reach a loopback resolver.
            resolv = (
                "\n".join(
                    line
                    for line in resolv.splitlines()
                    if not line.strip().startswith("nameserver 127.")
                )
                + "\n"
            )
        (cdir / "resolv.conf").write_text(resolv)

    # ----------------------------------------------------------------- start
    async def start(self, c: Container, *, by_user: bool = True) -> None:
        """Start (or, from the restart policy, restart) a container.

        A start asked for by a user resets the policy's bookkeeping, as Docker's does.
        Starts of one container are serialised: two at once (a boot-time policy start
        and a service reconcile, say) would both mount the root and both run `runc
        create`; the second now finds it running and is told so (304).
        """
        async with self.live(c).start_lock:
            await self._start(c, by_user=by_user)

    async def _start(self, c: Container, *, by_user: bool) -> None:
        next_status(c.state.status, Event.START, c.name)
        live = self.live(c)
        if live.restart_scope is not None:
            live.restart_scope.cancel()
            live.restart_scope = None
        if live.removing:
            raise Conflict(f"container {c.name} is marked for removal and cannot be started")
        cdir = self.dir_of(c)
        rootfs = self.rootfs_of(c)
        await self.root_settled(c)  # the last exit's root let go before it is mounted
        # Everything below is undone on a failure, in reverse, by `undo`; on success
        # `pop_all` keeps it, each piece with its owner (the supervision task, `live`).
        async with contextlib.AsyncExitStack() as undo:
            undo.push_async_exit(self._start_failed(c, live))
            for hook in self.hooks:  # networking: ports, netns, veth; option volumes
                await hook.starting(c)
                undo.push_async_callback(_shielded, hook.start_failed, c)
            remapped = self._remap_of(c) is not None
            kept, live.root_kept = live.root_kept, False  # the undo below unmounts it too
            undo.callback(unmount, cdir / "shm")
            undo.callback(unmount, rootfs)  # one not mounted is fine
            undo.callback(cgroups.cleanup, self.cgroup_path(c))  # runc's, if it made one
            # The root's blocking work in one worker thread: mount(2) waits for the mount
            # namespace's lock, which the unmounts of exiting containers (worker threads
            # too) hold meanwhile, and the user's passwd/group files are read from the
            # root; a crash-looping fleet must leave the event loop free for the API.
            devices, user = await trio.to_thread.run_sync(functools.partial(
                self._prepare_root, c, rootfs, self.lowers_of(c) if not kept else None,
                remapped=remapped))
            spec = self._runtime_spec(c, rootfs, devices, user)
            marker, helper = await self._seccomp_helper(spec)
            # the bundle's JSON made and written off the trio thread too (~1-2 ms a start)
            helped = await trio.to_thread.run_sync(_write_bundle, cdir, spec, marker)
            if helped is None:
                helper = None
            pid_file = cdir / "init.pid"
            out_r = err_r = in_w = None
            # Done while `runc create` runs, the trio thread's idle time: the spools
            # opened and a user's start's record written ahead, its WAL synced in a
            # worker thread meanwhile (`_write_ahead`); undone by the first undo below.
            started_at = rfc3339_nano()
            ahead: list[int] = []  # the record's revision once written ahead
            synced = trio.Event()
            undo.push(self._unwrite_ahead(c, ahead))
            undo.callback(_drop_spools, live)

            def meanwhile() -> None:
                for name in ("stdout",) if c.config.get("Tty") else ("stdout", "stderr"):
                    # exactly once across a kill -9 (supervise/spool.py); a pty through
                    # a relay
                    if (spool := Spool.open(cdir, name, resume=False)) is not None:
                        live.spools[name] = spool
                if by_user:
                    ahead.append(self._write_ahead(c, started_at, synced))

            handover: Handover | None = None
            if c.config.get("Tty"):
                # The init's stdio is the pty runc makes; runc's own is /dev/null.
                null = undo.enter_context(
                    OwnedFd.open(os.devnull, os.O_RDWR, "/dev/null (runc's stdio)"))
                # a failed handover of the pty leaves runc's state too
                undo.push_async_callback(_shielded, self._delete_state, c)
                pid, console = await with_console_socket(
                    lambda path: self.runtime.create(
                        c.id,
                        cdir,
                        stdin=null.fileno(),
                        stdout=null.fileno(),
                        stderr=null.fileno(),
                        pid_file=pid_file,
                        console_socket=path,
                        helper=helper,
                        meanwhile=meanwhile,
                        background=not by_user,
                    )
                )
                undo.callback(console.close)
                if c.config.get("OpenStdin"):
                    # input goes to the terminal
                    in_w = undo.enter_context(console.dup("stdin (the terminal)"))
                child_ends: list[OwnedFd] = [null]
            else:
                console = None
                out_r, out_w = (undo.enter_context(f) for f in OwnedFd.pipe("stdout"))
                err_r, err_w = (undo.enter_context(f) for f in OwnedFd.pipe("stderr"))
                restore.raise_pipe_size(out_r)  # room to write while no daemon reads
                restore.raise_pipe_size(err_r)
                if c.config.get("OpenStdin"):
                    in_r, in_w = (undo.enter_context(f) for f in OwnedFd.pipe("stdin"))
                    os.set_blocking(in_w.fileno(), False)
                else:
                    in_r = undo.enter_context(OwnedFd.devnull())
                child_ends = [out_w, err_w, in_r]
                # The holder keeps the init and copies of the pipes' read ends (and
                # ports' listeners) as runc exits, answering with its pid: no round
                # trip of its own (`_hand_to_holder` for an older holder, or a pty).
                handover = Handover(c.id, str(pid_file), self._holder_copies(c, out_r, err_r))
                undo.push_async_callback(_shielded, self._forget_held, c)
                try:
                    pid = await self.runtime.create(
                        c.id,
                        cdir,
                        stdin=in_r.fileno(),
                        stdout=out_w.fileno(),
                        stderr=err_w.fileno(),
                        pid_file=pid_file,
                        helper=helper,
                        meanwhile=meanwhile,
                        adopt=handover,
                        background=not by_user,  # a policy restart yields the CPU
                    )
                finally:
                    close_all(*handover.fds.values())
                undo.push_async_callback(_shielded, self._delete_state, c)
            if helped is not None:
                # runc looked up the helper: the command is checked as it would have
                await trio.to_thread.run_sync(
                    check_command, pid, helped, "runc create failed: ")
            # The holder parents the init (it ran `runc create`) and keeps copies of
            # what must stay open while no daemon runs (engine/restore.py).
            pidfd = undo.enter_context(
                HeldPid(pid, f"container {c.short_id} init", self.holder, c.id))
            relay: dict[str, OwnedFd] = {}
            if console is not None and live.spools:
                live.tty_relay = OwnedFd.pipe("tty relay")
                os.set_blocking(live.tty_relay[0].fileno(), False)
                relay = {"ttyrelay_r": live.tty_relay[0], "ttyrelay_w": live.tty_relay[1]}
            if handover is not None and handover.pid == pid:
                start_time = handover.start  # the holder has it
            else:
                start_time = start_ticks(pid)
                # Not stdin's write end: a copy in the holder would keep the pipe open
                # after the client's input ended (StdinOnce), and the container would
                # never see EOF; with no daemon, stdin ends (EOF), as Docker's does.
                await self._hand_to_holder(c, pid, start_time, out_r, err_r, console, relay)
            self.inits.record(c.id, pid, start_time)
            next_status(c.state.status, Event.START, c.name)  # still startable: else undo
            undo.pop_all()  # started: each piece has its owner now
        close_all(*child_ends)  # the container has its copies
        live.pidfd = pidfd
        live.stdin_w = in_w
        live.console = console
        started, live.started = live.started, trio.Event()
        started.set()
        live.stopped = trio.Event()
        _mark_started(c.state, c.name, pid, started_at, by_user=by_user)
        if by_user:
            live.delay = 0.0
            live.recent_restarts.clear()
        live.killed_by_user = False
        live.started_clock = trio.current_time()
        # Committed without its fsync.  A user's start awaits, before answering, the
        # sync of the record it wrote ahead (the same but for the pid, meaningless
        # after a power cut), or, if the record was written meanwhile (a rename), a
        # sync now: an acknowledged start is on disk (Docker fsyncs its record at
        # start too).  A policy restart does not wait: a step of the loop
        # (ContainerStore.save).
        rewritten = by_user and (not ahead or self.containers.revision(c.id) != ahead[0])
        self.containers.save(c, durable=False)
        if rewritten:
            synced = trio.Event()
            self.nursery.start_soon(self.sync_records, synced)
        elif not by_user:
            synced.set()
        for hook in self.hooks:  # the log's writer, health checks, probes
            hook.running(c, live, restored=False)
        start_done = trio.Event()
        self.nursery.start_soon(
            self._supervise,
            c,
            live,
            pidfd,
            out_r.stream() if out_r is not None else None,
            err_r.stream() if err_r is not None else None,
            start_done,
        )
        try:
            # no `runc start` process; a policy restart opens the fifo off the trio thread
            await self.runtime.start(c.id, init=pidfd, hop=not by_user)
        except CorralError as exc:
            c.state.error = exc.message
            await self.runtime.delete(c.id, force=True)
            raise
        finally:
            start_done.set()
        for hook in self.hooks:
            hook.started(c)
        self.emit(c, "start")
        await synced.wait()
        log.info("container.start", id=c.short_id, name=c.name, pid=pid)
        self._rejoin_pod(c)

    def _write_ahead(self, c: Container, started_at: str, synced: trio.Event) -> int:
        """A user's start, while runc creates the init: the record as it will be once
        started (pid 0) committed without its fsync, and the WAL synced in a worker
        thread (`synced` set after), overlapping runc's work rather than following
        it.  A power cut before the start's answer may find it `running` (then
        recovered as exited, 255, as any container whose host went down); an error
        writes the record back (`_unwrite_ahead`).  The record's revision after."""
        state = replace(c.state)
        _mark_started(state, c.name, 0, started_at, by_user=True)
        # may fail: the reserve a full disk releases is for exits, not for starts
        self.containers.save(replace(c, state=state), durable=False, may_fail=True)
        self.nursery.start_soon(self.sync_records, synced)
        return self.containers.revision(c.id)

    def _unwrite_ahead(
        self, c: Container, ahead: list[int]
    ) -> Callable[[type[BaseException] | None, BaseException | None, object], bool]:
        """The undo of `_write_ahead` (if it ran): the record as it is in memory
        written back over the `running` one, durably unless `_start_failed`'s save,
        which a CorralError gets, follows."""

        def undo(_type: type[BaseException] | None, exc: BaseException | None,
                 _tb: object) -> bool:  # fmt: skip
            if ahead:
                self.containers.save(c, durable=not isinstance(exc, CorralError))
            return False

        return undo

    async def sync_records(self, done: trio.Event | None = None) -> None:
        """The WAL's fsync off the trio thread (`Database.synced`: shared by the
        starts, creates and removals in flight); `done` set after, whatever happened
        (a failure is logged: the commit stands, its durability is what the disk made
        of it, as SQLite's own failed fsync would leave it)."""
        try:
            await self.db.synced()
        except OSError as exc:
            log.error("metadata.sync_failed", error=str(exc))
        finally:
            if done is not None:
                done.set()

    def _start_failed(
        self, c: Container, live: Live
    ) -> Callable[[type[BaseException] | None, BaseException | None, object], Awaitable[bool]]:
        """The last undo of a failed start: its error on the record, and an
        auto-remove container removed (`_remove_after_failed_start`)."""

        async def failed(
            _type: type[BaseException] | None, exc: BaseException | None, _tb: object
        ) -> bool:
            if isinstance(exc, CorralError):
                c.state.error = exc.message
                c.state.exit_code = getattr(exc, "exit_code", 128)
                self.containers.save(c)
            if isinstance(exc, Exception):
                await self._remove_after_failed_start(c, live)
            return False  # the error goes on

        return failed

    async def _forget_held(self, c: Container) -> None:
        await self.holder.forget(c.id)

    async def _delete_state(self, c: Container) -> None:
        await self.runtime.delete(c.id, force=True)

    def _rejoin_pod(self, infra: Container) -> None:
        """A pod's infra started again: members still running are in the namespaces of
        the one that died, so they are killed and their restart policies decide, as
        the kubelet restarts a pod's containers after a new sandbox."""
        for m in pod_members.members_of(infra, self.containers.values()):
            if m.state.status is Status.RUNNING:
                log.info("container.pod_rejoin", id=m.short_id, name=m.name)
                self._send(m, signal.SIGKILL)

    async def _hand_to_holder(
        self,
        c: Container,
        pid: int,
        start_time: int,
        out_r: OwnedFd | None,
        err_r: OwnedFd | None,
        console: Console | None,
        extra: dict[str, OwnedFd] | None = None,
    ) -> None:
        """The holder keeps init `pid` and copies of what `_holder_copies` names."""
        copies = self._holder_copies(c, out_r, err_r, console, extra)
        try:
            await self.holder.adopt(c.id, pid, start_time, copies)
        finally:
            close_all(*copies.values())

    def _holder_copies(
        self,
        c: Container,
        out_r: OwnedFd | None,
        err_r: OwnedFd | None,
        console: Console | None = None,
        extra: dict[str, OwnedFd] | None = None,
    ) -> dict[str, OwnedFd]:
        """Copies for the holder of the output pipes' read ends, the pty master (and
        its relay pipe) and the ports' listeners (ours stay ours), the caller's to
        close once sent."""
        copies: dict[str, OwnedFd] = {}
        try:
            for name, kept in (extra or {}).items():
                copies[name] = kept.dup(f"{name} for the holder")
            for name, fd in (("stdout", out_r), ("stderr", err_r)):
                if fd is not None:
                    copies[name] = fd.dup(f"{name} for the holder")
            if console is not None:
                copies["console"] = console.dup("pty master for the holder")
            for name, raw in self.networks.listener_fds(c.id).items():
                copies[name] = OwnedFd(os.dup(raw), f"{name} for the holder")
        except BaseException:
            close_all(*copies.values())
            raise
        return copies

    async def ports_moved(self, old_id: str, new_id: str, old_names: set[str]) -> None:
        """A rollout's switch moved ports from `old_id` to `new_id` (`old_names`: the
        old one's listener names before it): the holder keeps them under the new one,
        so a kill -9 after the switch leaves them to the new replica, not to an old
        one about to be removed (whose removal would close them)."""
        moved = self.networks.listener_fds(new_id)
        gone = tuple(sorted(old_names - set(self.networks.listener_fds(old_id))))
        with contextlib.suppress(HolderLost):
            await self.holder.keep(new_id, moved)  # first: a kill between, both hold it
            if gone:
                await self.holder.keep(old_id, {}, drop=gone)

    async def _remove_after_failed_start(self, c: Container, live: Live) -> None:
        """An auto-remove container whose start failed is removed before the error
        goes out, as dockerd's start does: nothing is left, and the `docker run --rm`
        waiter (`condition=removed`, armed before the start) answers."""
        if not c.host_config.get("AutoRemove") or live.removing:
            return
        with trio.CancelScope(shield=True):
            try:
                await self.remove(c, force=True, volumes=True)
            except (CorralError, OSError) as exc:
                log.error("container.autoremove_failed", id=c.short_id, error=str(exc))

    def _remap_files(self, c: Container, cdir: Path) -> None:
        """userns-remap: the /etc files and new volumes are the mapped root's, and a
        volume's directory lets it through, as dockerd makes them."""
        assert self.remap is not None
        self._chown_to_remap(c, cdir / "hosts", cdir / "hostname", cdir / "resolv.conf")
        for m in c.mounts:
            if m.type == "volume":
                data = Path(m.source)
                stateroot.open_to_group(data.parent, self.remap.gid)
                st = data.stat()
                if (st.st_uid, st.st_gid) == (0, 0) and not any(data.iterdir()):
                    self._chown_to_remap(c, data)

    def _init_binary(self, hc: dict[str, Any]) -> str:
        """The host path of the init to run as PID 1, "" for none (`--init`, or the
        daemon's `init` setting when the container left it null)."""
        wanted = hc.get("Init")
        if not (self.init_default if wanted is None else wanted):
            return ""
        if not self.init_path or not Path(self.init_path).is_file():
            raise InvalidArgument(
                "--init (HostConfig.Init): no init binary on this host: install Debian's "
                "tini package (/usr/bin/tini-static) or set the daemon's init-path"
            )
        return self.init_path

    def _runtime_spec(
        self,
        c: Container,
        rootfs: Path,
        devices: tuple[list[Device], list[dict[str, Any]]],
        user: ResolvedUser,
    ) -> ContainerSpec:
        """The container's runtime spec; `devices` and `user` are `_prepare_root`'s
        (read from the host and the root in a worker thread)."""
        cfg, hc = c.config, c.host_config
        env = list(cfg.get("Env") or [])
        if not any(e.startswith("HOME=") for e in env):
            env.append(f"HOME={user.home}")
        if not any(e.startswith("HOSTNAME=") for e in env):
            env.append(f"HOSTNAME={cfg['Hostname']}")
        env += self._link_env(c)
        caps = capabilities(hc)
        remap = self._remap_of(c)
        security = securityopt.of_container(hc)
        rlimits = [
            Rlimit(type=f"RLIMIT_{u['Name'].upper()}", soft=int(u["Soft"]), hard=int(u["Hard"]))
            for u in hc.get("Ulimits") or []
        ]
        size = hc.get("ConsoleSize") or [0, 0]
        process = ProcessSpec(
            terminal=bool(cfg.get("Tty")),
            console_size=(int(size[0]), int(size[1])) if any(size) else None,
            args=[c.path, *c.args],
            env=env,
            cwd=cfg.get("WorkingDir") or "/",
            uid=user.uid,
            gid=user.gid,
            additional_gids=user.additional_gids,
            capabilities=caps,
            rlimits=rlimits,
            no_new_privileges=securityopt.no_new_privileges(hc),
            oom_score_adj=hc.get("OomScoreAdj") or None,
        )
        cdir = self.dir_of(c)
        mounts = [
            Mount(
                destination="/etc/resolv.conf",
                source=str(cdir / "resolv.conf"),
                options=["rbind", "rprivate"],
                daemon=True,
            ),
            Mount(
                destination="/etc/hostname",
                source=str(cdir / "hostname"),
                options=["rbind", "rprivate"],
                daemon=True,
            ),
            Mount(
                destination="/etc/hosts",
                source=str(cdir / "hosts"),
                options=["rbind", "rprivate"],
                daemon=True,
            ),
        ]
        for m in c.mounts:
            mounts.append(_oci_mount(m, _subpath_source(m)))
            if m.type == "bind" and not Path(m.source).exists():
                Path(m.source).mkdir(parents=True, exist_ok=True)  # as `docker run -v`
        pids = hc.get("PidsLimit") or 0
        resources = Resources(
            memory=hc.get("Memory") or None,
            memory_swap=hc.get("MemorySwap") or None,
            nano_cpus=hc.get("NanoCpus") or None,
            cpu_shares=hc.get("CpuShares") or None,
            pids_limit=pids if pids > 0 else None,
            cpu_quota=hc.get("CpuQuota") or None,
            cpu_period=hc.get("CpuPeriod") or None,
            cpuset_cpus=hc.get("CpusetCpus") or "",
            cpuset_mems=hc.get("CpusetMems") or "",
            memory_reservation=hc.get("MemoryReservation") or None,
            oom_kill_disable=bool(hc.get("OomKillDisable")),
        )
        spaces = {
            "pid": self._namespace_of(hc, "pid", "PidMode", "PID"),
            "ipc": self._namespace_of(hc, "ipc", "IpcMode", "IPC"),
            "uts": "host" if hc.get("UTSMode") == "host" else "",
        }
        # a pod's member: its infra's uts namespace (ipc is its IpcMode, pods/members.py)
        spaces.update(pod_members.namespaces(c, self.containers.values(), _running_pid))
        network = self.networks.spec_network(c)  # networking: none, host or netns path
        return ContainerSpec(
            id=c.id,
            rootfs=str(rootfs),
            hostname=cfg["Hostname"],
            process=process,
            mounts=mounts,
            readonly_rootfs=bool(hc.get("ReadonlyRootfs")),
            network=network,
            resources=resources,
            cgroups_path=self.cgroup_path(c),
            seccomp=security.linux_seccomp(
                DEFAULT_CAPABILITIES if caps is None else caps,
                host_platform(),
                privileged=bool(hc.get("Privileged")),
            ),
            seccomp_default=not isinstance(security.seccomp, Profile),
            masked_paths=list(_or(hc.get("MaskedPaths"), DEFAULT_MASKED_PATHS)),
            readonly_paths=list(_or(hc.get("ReadonlyPaths"), DEFAULT_READONLY_PATHS)),
            domainname=cfg.get("Domainname") or "",
            privileged=bool(hc.get("Privileged")),
            devices=devices[0],
            device_rules=devices[1],
            userns=None if remap is None else UserNamespace(
                str(self.userns_path), remap.uid, remap.gid, remap.size
            ),
            init=self._init_binary(hc),
            namespaces=spaces,
            shm_size=hc.get("ShmSize") or DEFAULT_SHM_SIZE,
            shm_source=self._shm_source(c),
            sysctls=dict(hc.get("Sysctls") or {}),
            rootfs_propagation=_check_propagation(c.mounts),
        )

    def _link_env(self, c: Container) -> list[str]:
        """`--link`: each linked container must run (dockerd's words); its variables."""
        env: list[str] = []
        for spec in c.host_config.get("Links") or []:
            link = netlinks.parse(spec)
            child = self.containers.get(link.name)
            ip = self.networks.default_bridge_ip(child.id)
            if child.state.status not in (Status.RUNNING, Status.PAUSED) or not ip:
                raise Conflict(
                    f"Cannot link to a non running container: /{child.name} AS "
                    f"/{c.name}/{link.alias}"
                )
            exposed = (child.config.get("ExposedPorts") or {}).keys()
            env += netlinks.environment(link, c.name, ip, exposed, child.config.get("Env") or [])
        return env

    def _namespace_of(self, hc: dict[str, Any], kind: str, key: str, what: str) -> str:
        """`--pid`/`--ipc` for the spec: "" a new namespace, "host", or the path of a
        running container's to join (dockerd's getPIDContainer/getIPCContainer)."""
        mode = hc.get(key) or ""
        if mode == "host":
            return "host"
        name = nsmodes.joined(mode)
        if not name:
            return ""
        other = self.containers.get(name)
        if other.state.status not in (Status.RUNNING, Status.PAUSED) or not other.state.pid:
            raise Conflict(f"cannot join {what} of a non running container: {other.id}")
        if kind == "ipc" and other.host_config.get("IpcMode") not in ("shareable", "host"):
            raise InvalidArgument(
                f"container {other.id}: non-shareable IPC (hint: use IpcMode:shareable "
                "for the donor container)"
            )
        if other.host_config.get(key) == "host":
            return "host"
        return f"/proc/{other.state.pid}/ns/{kind}"

    def _shm_source(self, c: Container) -> str:
        """/dev/shm by `--ipc`: "" a private tmpfs, the host's, the donor's, or none."""
        mode = c.host_config.get("IpcMode") or ""
        if mode == "host":
            return "/dev/shm"
        if mode == "none":
            return "none"
        if mode == "shareable":
            return str(self.dir_of(c) / "shm")
        name = nsmodes.joined(mode)
        if not name:
            return ""
        other = self.containers.get(name)
        if other.host_config.get("IpcMode") == "host":
            return "/dev/shm"
        return str(self.dir_of(other) / "shm")

    def _prepare_root(
        self, c: Container, rootfs: Path, lowers: list[Path] | None, *, remapped: bool
    ) -> tuple[tuple[list[Device], list[dict[str, Any]]], ResolvedUser]:
        """Blocking, in one worker thread (each hop is a wait on a loaded host): the
        overlay on `lowers` (None: kept mounted from the last run) and a shareable
        IPC's /dev/shm, the remapped root's files, the volumes' copy-up, the
        container's devices, and its user as the root's passwd/group files name it."""
        cdir = self.dir_of(c)
        hc = c.host_config
        if lowers is not None:
            # an --rm container's upper goes with it: no sync of it, at exit least of all
            mount_overlay(lowers, cdir / "upper", cdir / "work", rootfs,
                          idmap=self.userns_path if remapped else None,
                          volatile=bool(hc.get("AutoRemove")))
            if hc.get("IpcMode") == "shareable":
                mount_shm(cdir / "shm", hc.get("ShmSize") or DEFAULT_SHM_SIZE)
        if remapped:
            self._remap_files(c, cdir)
        self._copy_up_volumes(c, rootfs)
        user = resolve_user(rootfs, c.config.get("User") or "", hc.get("GroupAdd") or None)
        return container_devices(hc), user

    def _copy_up_volumes(self, c: Container, rootfs: Path) -> None:
        """A new, empty volume gets the image's content at its path, as in Docker
        (blocking file work: called in a worker thread).

        A copy that fails (a full disk) empties the volume again: "empty" is what says
        a volume is new, so a half copy kept would be taken for the volume's content
        by the next start and never completed."""
        for m in c.mounts:
            if m.type != "volume" or m.nocopy or m.subpath:
                continue
            data = Path(m.source)
            if any(data.iterdir()):
                continue
            src = secure_join(rootfs, m.destination)
            if src.is_dir() and not src.is_symlink():
                try:
                    shutil.copytree(src, data, symlinks=True, dirs_exist_ok=True,
                                    copy_function=_copy_or_full)
                except BaseException:
                    for child in data.iterdir():
                        discard_tree(child)
                    raise
                # and the directory's own owner and mode, as dockerd's copyOwnership
                st = src.stat()
                os.chown(data, st.st_uid, st.st_gid)
                os.chmod(data, stat.S_IMODE(st.st_mode))

    # ---------------------------------------- health checks (supervise/health.py)
    def _on_health(self, c: Container, old: str, new: str) -> None:
        """Where health turns into events (and restart-on-unhealthy): it must not
        await; start tasks in the nursery instead (supervise/health.py)."""
        self.emit(c, f"health_status: {new}")
        tuning = restarts.Tuning.from_labels(c.config.get("Labels"))
        if new == "unhealthy" and c.state.status is Status.RUNNING and (
            tuning.restart_on_unhealthy
        ):
            # Podman's --health-on-failure=restart: kill it; _restart_decision
            # restarts it whatever the restart policy says.
            self._live[c.id].unhealthy_restart = True
            self._send(c, signal.SIGKILL)

    def _probe_kill(self, c: Container) -> None:
        if c.state.status is Status.RUNNING:
            self.emit(c, "kill", signal="9")
            self._send(c, signal.SIGKILL)

    def probe_address(self, c: Container) -> str:
        """Where httpGet/tcpSocket probes connect: the IP of the network `c` is in."""
        mode = network_mode(c.host_config)
        if mode.startswith("container:"):
            c = self.containers.get(mode.split(":", 1)[1])
            mode = network_mode(c.host_config)
        if mode == "host":
            return "127.0.0.1"
        return next((ep.ip for ep in self.networks.store.endpoints_of(c.id) if ep.ip), "")

    # ------------------------------------------------------ end health checks

    # ----------------------------------------------------------- supervision
    async def _supervise(
        self,
        c: Container,
        live: Live,
        pidfd: PidFd,
        out: trio.lowlevel.FdStream | None,  # None with a TTY: `live.console` has it all
        err: trio.lowlevel.FdStream | None,
        start_done: trio.Event,
    ) -> None:
        """One task per running container: pump its output, wait for its exit.

        It owns the init's pidfd and the read ends of the output pipes (the streams);
        `live.pidfd` and `live.stdin_w` are cleared when they close, so nothing can
        signal or write through a number that has moved on.

        A command that exits at once (`run --rm busybox true`) can end before `runc
        start` has returned; `_finish` waits for `start_done` so that its `runc delete`
        never pulls the state from under a `runc start` still running.
        """
        code = 255
        try:
            async with trio.open_nursery() as n:
                if live.console is not None:
                    n.start_soon(self._pump_console, live, live.console)
                if out is not None:
                    n.start_soon(self._pump, live, out, "stdout")
                if err is not None:
                    n.start_soon(self._pump, live, err, "stderr")
                code = await pidfd.wait()
        finally:
            if live.pidfd is pidfd:
                live.pidfd = None
            pidfd.close()
            stdin_w, live.stdin_w = live.stdin_w, None
            close_all(stdin_w)  # a client writing to it is woken (ClosedResourceError)
            console, live.console = live.console, None
            if console is not None:
                console.close()
        with trio.CancelScope(shield=True):
            await start_done.wait()
            try:
                await self._finish(c, live, code)
            except Exception:  # noqa: BLE001 - one container's exit never ends the daemon
                log.exception("container.finish_failed", id=c.short_id, name=c.name)

    async def _pump(self, live: Live, pipe: trio.lowlevel.FdStream, stream: str) -> None:
        spool = live.spools.pop(stream, None)
        if spool is not None:
            await self._pump_spooled(live, pipe, stream, spool)
            return
        framer = LineFramer()
        async with pipe:
            while True:
                data = await pipe.receive_some(65536)
                if not data:
                    break
                live.output.publish(stream, data)
                await live.log.store(stream, framer.feed_block(data))
        await live.log.store(stream, framer.flush())

    async def _pump_spooled(
        self, live: Live, pipe: trio.lowlevel.FdStream, stream: str, spool: Spool
    ) -> None:
        """The pump through the spool: spliced out of the pipe, framed, logged, then
        the mark moved; what an earlier daemon left past the mark is framed first.
        Cancelled (a daemon stopping with live restore), it leaves the rest where it
        is: in the pipe or past the mark."""
        framer = LineFramer()

        def mark(left: int) -> None:  # the log holds all but `left` + the framer's
            spool.commit(framer.held + left, live.log.position())

        try:
            async with pipe:
                # Marked before the first append too: an unmarked first append is undone.
                await live.log.store(stream, framer.feed_block(spool.pending()), mark)
                while True:
                    try:
                        data = spool.take(pipe.fileno())
                    except BlockingIOError:
                        await trio.lowlevel.wait_readable(pipe.fileno())
                        continue
                    if not data:
                        break
                    live.output.publish(stream, data)
                    await live.log.store(stream, framer.feed_block(data), mark)
                    await trio.lowlevel.checkpoint()  # a flood must not starve the rest
            await live.log.store(stream, framer.flush(), mark)
        finally:
            spool.close()

    async def _pump_console(self, live: Live, console: Console) -> None:
        """A TTY's output: one stream, logged as `stdout` (Docker does the same)."""
        spool = live.spools.pop("stdout", None)
        relay, live.tty_relay = live.tty_relay, None
        if spool is not None and relay is not None:
            await self._pump_console_spooled(live, console, spool, relay)
            return
        if spool is not None:
            spool.close()
        if relay is not None:
            close_all(*relay)
        framer = LineFramer()
        while data := await console.read():
            live.output.publish("stdout", data)
            await live.log.store("stdout", framer.feed_block(data))
        await live.log.store("stdout", framer.flush())

    async def _pump_console_spooled(
        self, live: Live, console: Console, spool: Spool, relay: tuple[OwnedFd, OwnedFd]
    ) -> None:
        """A pty cannot be spliced into a file, but into a pipe: its output moves pty ->
        relay pipe -> spool, each step one splice, so no byte is ever only in our
        memory (the holder keeps the pty master and both relay ends while no daemon
        runs; what is in the relay when a daemon dies is spooled by the next one)."""
        r, w = relay
        framer = LineFramer()

        def mark(left: int) -> None:  # the log holds all but `left` + the framer's
            spool.commit(framer.held + left, live.log.position())

        async def spool_relay() -> None:  # the relay is emptied into the spool, and logged
            while True:
                try:
                    data = spool.take(r.fileno())
                except BlockingIOError:
                    return
                if not data:
                    return
                live.output.publish("stdout", data)
                await live.log.store("stdout", framer.feed_block(data), mark)

        try:
            await live.log.store("stdout", framer.feed_block(spool.pending()), mark)
            while True:
                await spool_relay()  # so the relay is empty: EAGAIN below means "pty empty"
                try:
                    n = os.splice(console.fileno(), w.fileno(), CHUNK,
                                  flags=os.SPLICE_F_NONBLOCK)
                except BlockingIOError:
                    try:
                        await trio.lowlevel.wait_readable(console.fileno())
                    except trio.ClosedResourceError:
                        break
                    continue
                except trio.ClosedResourceError:
                    break
                except OSError as exc:
                    if exc.errno == errno.EIO:  # every holder of the slave end is gone
                        break
                    raise
                if n == 0:
                    break
                await trio.lowlevel.checkpoint()  # a flood must not starve the rest
            await spool_relay()
            await live.log.store("stdout", framer.flush(), mark)
        finally:
            spool.close()
            close_all(r, w)

    def resize(self, c: Container, height: int, width: int) -> None:
        """`POST /containers/{id}/resize`: the container's terminal gets the new size.

        As dockerd (daemon/resize.go): a container not running is a 409, before its
        start too (the first size is `HostConfig.ConsoleSize`); one without a TTY
        answers 200 and nothing changes, since containerd's shim resizes a process
        without a console as a no-op."""
        live = self._require_running(c)
        console = live.console
        if console is None or console.closed:
            return  # no TTY (or one going with its exiting init): nothing to size
        console.resize(height, width)

    def _exit_files(
        self, c: Container, own_pidns: bool, unmount_root: bool
    ) -> tuple[bool, bool, int | None]:
        """Blocking, in a worker thread: the exited run's OOM kills counted, then (with
        its own PID namespace) its cgroups and runc state removed and, if that went,
        its root detached (`_detach_exited`); (whether it was OOM-killed, whether
        runc's state is gone, the root's pin)."""
        path = self.cgroup_path(c)
        oom = cgroups.oom_kill_count(path) > 0
        gone = own_pidns and self.runtime.discard_exited(c.id, path)
        pin = self._detach_exited(c) if gone and unmount_root else None
        return oom, gone, pin

    def _detach_exited(self, c: Container) -> int | None:
        """Blocking: `_unmount_exited`, the root's superblock held meanwhile by an
        O_PATH descriptor of its top (None if it cannot be opened), which is returned.

        The last reference to an overlay's superblock syncs its upper filesystem
        (overlayfs's sync_fs: every dirty page of the file system the state root is
        on, the log just written too; 3 to 30 ms here, more under another writer), so
        an unmount that drops it would hold the exit's record, and `wait`, for all
        of it.  With the pin the mount is gone from the namespace at once, as before,
        and `_finish` closes the descriptor (the sync) once the exit is recorded."""
        pin: int | None = None
        with contextlib.suppress(OSError):
            pin = os.open(self.rootfs_of(c), os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            self._unmount_exited(c)
        except BaseException:
            if pin is not None:
                os.close(pin)
            raise
        return pin

    async def _release_pin(self, live: Live) -> None:
        """The exit's root let go (the sync in a worker thread), and whoever waits to
        mount its upper again woken."""
        pin, live.root_pin = live.root_pin, None
        if pin is None:
            return
        try:
            await trio.to_thread.run_sync(os.close, pin)
        finally:
            released, live.root_released = live.root_released, trio.Event()
            released.set()

    async def root_settled(self, c: Container) -> None:
        """Wait until the last exit's root is let go (`_detach_exited`): a mount of
        the same upper and work directories while the old superblock lives would
        share them with it.  Callers hold the container's `start_lock` or remove it."""
        live = self.live(c)
        while live.root_pin is not None:
            await live.root_released.wait()

    def _unmount_exited(self, c: Container) -> None:
        """The rootfs (and shm) mounts: syscalls run in a worker thread (a
        crash-looping fleet exits many times a second, and the event loop must stay
        free for the API)."""
        unmount(self.rootfs_of(c))
        unmount(self.dir_of(c) / "shm")

    async def _finish(self, c: Container, live: Live, code: int) -> None:
        ran_for = trio.current_time() - live.started_clock
        decision = self._restart_decision(c, live, code, ran_for)
        # A restart due at once finds its root mounted (the writable layer is the
        # container's across restarts anyway); anything else unmounts.  Whoever takes
        # the kept root (a start) or calls the restart off owns it.
        live.root_kept = decision.restart and decision.delay <= KEEP_ROOT_S
        try:
            await self._finish_run(c, live, code, ran_for, decision)
        finally:
            await self._release_pin(live)  # an exit that failed half way: let go too

    async def _finish_run(
        self, c: Container, live: Live, code: int, ran_for: float,
        decision: restarts.Decision,
    ) -> None:
        own_pidns = not c.host_config.get("PidMode")
        # one worker thread for the exit's files: on a loaded host each hop is a wait
        oom, gone, live.root_pin = await trio.to_thread.run_sync(
            self._exit_files, c, own_pidns, not live.root_kept)
        if not gone:  # runc's delete first (what is left in the cgroup), then the root
            await self.runtime.delete_exited(c.id, self.cgroup_path(c),
                                             own_pid_namespace=False)
            if not live.root_kept:
                live.root_pin = await trio.to_thread.run_sync(self._detach_exited, c)
        for hook in reversed(self.hooks):  # option volumes; networking: relays, netns
            try:
                await hook.exited(c)
            except Exception as exc:  # noqa: BLE001 - the exit is recorded whatever fails
                log.error("container.exit_hook_failed", id=c.short_id, name=c.name,
                          hook=type(hook).__name__, error=str(exc))
        st = c.state
        transition(st, Event.EXIT, c.name)
        st.exit_code = code
        st.oom_killed = oom
        st.pid = 0
        st.finished_at = rfc3339_nano()
        # A hook's await above may have called the restart off (a removal): asked again.
        decision = self._restart_decision(c, live, code, ran_for)
        live.unhealthy_restart = False  # asked once, for this exit
        # Booked and scheduled before any await, so a user's stop from here on finds
        # the restart pending and calls it off; it begins once this exit is finished.
        scheduled = decision.restart and self._schedule_restart(c, live, decision)
        # One save for the exit and the restarting that follows (a step of the loop,
        # `ContainerStore.save`); durable below if no restart follows.
        self.containers.save(c, durable=False)
        self.inits.drop(c.id)
        await self.holder.forget(c.id)  # its exit is recorded: the holder lets it go
        live.log.close_writer(restarting=True)  # followers wait: a policy restart may follow
        live.output.close()
        exited, live.exited = live.exited, trio.Event()
        exited.set()
        if oom:
            self.emit(c, "oom")
        self.emit(c, "die", exitCode=code, execDuration=int(ran_for))
        for hook in self.hooks:
            hook.died(c)
        log.info("container.die", id=c.short_id, name=c.name, exit_code=code, oom=oom)
        if scheduled:
            await self._release_pin(live)  # the exit is recorded and told: now the sync
            live.stopped.set()
            return
        await self._release_root(c, live)  # not restarted after all
        if decision.give_up:
            c.state.error = decision.give_up
            self.emit(c, "restart_limit", reason=decision.give_up)
            log.warning("container.restart_limit", id=c.short_id, name=c.name,
                        reason=decision.give_up)
        live.log.close_writer()  # stopped for good: followers end here
        # the exit for good, durable (the save above was not); under a removal (an
        # --rm container's comes next) the row goes next and the removal's answer
        # waits for its fsync in a worker thread (`remove`), not this one's inline
        auto_remove = bool(c.host_config.get("AutoRemove")) and not live.removing
        # before the event loop's next pass, as before the `die` reaches a client
        # (moby checkpoints the exit before it logs `die`)
        self.containers.save(c, durable=not (live.removing or auto_remove))
        live.stopped.set()
        await self._release_pin(live)  # recorded, `wait` answered: now the sync
        if auto_remove:
            await self.remove(c, force=True, volumes=True)

    async def _release_root(self, c: Container, live: Live) -> None:
        """The root an exit kept mounted for a restart that will not come, unmounted."""
        if live.root_kept:
            live.root_kept = False
            await trio.to_thread.run_sync(self._unmount_exited, c)

    def _restart_decision(
        self, c: Container, live: Live, code: int, ran_for: float
    ) -> restarts.Decision:
        """What the policy says of this exit (nothing changes: `_enter_restarting`
        applies a restart)."""
        if live.removing:
            return restarts.Decision(restart=False)
        policy = restarts.Policy.from_api(c.host_config.get("RestartPolicy"))
        if live.unhealthy_restart:
            policy = restarts.Policy("always")
        tuning = restarts.Tuning.from_labels(c.config.get("Labels"))
        return restarts.decide(
            policy, tuning, exit_code=code,
            stopped_by_user=c.state.user_stopped or live.killed_by_user,
            shutting_down=self.shutting_down, restart_count=c.state.restart_count,
            ran_for=ran_for, previous_delay=live.delay, recent_restarts=live.recent_restarts,
            now=trio.current_time(),
        )

    def _schedule_restart(self, c: Container, live: Live, decision: restarts.Decision) -> bool:
        """The policy's restart, booked (the backoff remembered, state `restarting`)
        and due after its backoff, once this exit's supervision ends (`live.stopped`);
        a cancel scope per pending restart, so a user stop calls it off."""
        now = trio.current_time()
        live.delay = decision.delay
        live.recent_restarts = [t for t in live.recent_restarts if now - t <= 3600] + [now]
        transition(c.state, Event.RESTART_WAIT, c.name)
        scope = trio.CancelScope()
        live.restart_scope = scope
        self.nursery.start_soon(self._restart_later, c, live, scope, decision.delay,
                                live.stopped)
        return True

    async def _restart_later(
        self, c: Container, live: Live, scope: trio.CancelScope, delay: float,
        finished: trio.Event,
    ) -> None:
        """Wait out the backoff, then start the container again under its start lock.

        Until the lock is held the restart can be called off (`_cancel_restart`
        cancels `scope` or finds the status changed); once the start runs, callers
        wait for it through the lock and then deal with a running container.  No
        failure of a restart may end the daemon: anything unexpected is logged.
        """
        with scope:
            await finished.wait()  # the exit's last steps (the holder lets it go) first
            await trio.sleep(delay)
            await self._restarts.acquire_on_behalf_of(scope)  # RESTARTS_IN_FLIGHT
        if scope.cancelled_caught:
            return
        try:
            await self._restart_now(c, live)
        finally:
            self._restarts.release_on_behalf_of(scope)

    async def _restart_now(self, c: Container, live: Live) -> None:
        async with live.start_lock:
            live.restart_scope = None
            if c.state.status is not Status.RESTARTING or live.removing:
                return  # called off while the backoff ended
            c.state.restart_count += 1
            try:
                await self._start(c, by_user=False)
            except Exception as exc:
                message = exc.message if isinstance(exc, CorralError) else repr(exc)
                if c.state.status is Status.RESTARTING:
                    transition(c.state, Event.START_FAILED, c.name)
                await self._release_root(c, live)  # refused before it took the root
                live.log.close_writer()  # no run follows: followers end here
                c.state.error = message
                self.containers.save(c)
                log.warning("container.restart_failed", id=c.short_id, name=c.name,
                            error=message)

    async def _cancel_restart(self, c: Container) -> bool:
        """A pending policy restart is called off (user stop/rm/restart).

        True if it was pending (the container is now exited); False if there was none
        or it had already begun: then this waits for that start to end, so the caller
        finds a running (or exited) container rather than a half-started one.
        """
        live = self.live(c)
        if c.state.status is not Status.RESTARTING:
            return False
        if live.restart_scope is None:
            async with live.start_lock:
                pass
            return False
        live.restart_scope.cancel()
        live.restart_scope = None
        transition(c.state, Event.EXIT, c.name)
        await self._release_root(c, live)
        self.containers.save(c)
        live.log.close_writer()  # no run follows: followers end here
        return True

    # ------------------------------------------------------- stop and friends
    def _require_running(self, c: Container) -> Live:
        if c.state.status not in (Status.RUNNING, Status.PAUSED):
            raise Conflict(f"container {c.id} is not running")  # errNotRunning, docker 28
        return self.live(c)

    def _send(self, c: Container, sig: int) -> None:
        """Signal the init through its pidfd (no pid-reuse race).

        No pidfd means the init has exited and been reaped (its supervision task is
        finishing): there is nothing to signal, and its pid may already name another
        process, so it is never used.  A pidfd that cannot take the signal is a bug
        (each pidfd has one owner now): it is logged as an error and raised.
        """
        live = self.live(c)
        if live.pidfd is None:
            return
        try:
            live.pidfd.send_signal(sig)
        except OSError as exc:
            log.error("container.signal_failed", id=c.short_id, name=c.name, signal=sig,
                      pidfd=repr(live.pidfd), error=str(exc))
            raise CorralError(f"cannot signal container {c.name}: {exc}") from exc

    async def stop(
        self,
        c: Container,
        timeout: int | None,
        *,
        by_user: bool = True,
        stop_signal: str | None = None,
    ) -> None:
        """`stop_signal` (the API's `signal`, `docker stop -s`) overrides StopSignal."""
        sig = _signal_number(stop_signal or c.config.get("StopSignal") or "SIGTERM")
        if by_user and await self._cancel_restart(c):
            c.state.user_stopped = True
            self.containers.save(c)
            self.emit(c, "stop")
            return
        if c.state.status not in (Status.RUNNING, Status.PAUSED):
            raise NotModified(f"container {c.name} is already stopped")
        live = self.live(c)
        done = live.exited
        if by_user:
            c.state.user_stopped = True
            self.containers.save(c)
        if timeout is None:
            timeout = c.config.get("StopTimeout")
        if timeout is None:
            timeout = DEFAULT_STOP_TIMEOUT
        self.emit(c, "kill", signal=sig)
        self._send(c, sig)
        if c.state.status is Status.PAUSED:
            await self._resume_quietly(c)
        if timeout >= 0:
            with trio.move_on_after(timeout):
                await done.wait()
        if not done.is_set():
            self.emit(c, "kill", signal=int(signal.SIGKILL))
            self._send(c, signal.SIGKILL)
            await done.wait()
        self.emit(c, "stop")
        log.info("container.stop", id=c.short_id, name=c.name)

    async def _resume_quietly(self, c: Container) -> None:
        with contextlib.suppress(CorralError):
            await self.runtime.resume(c.id)
        if c.state.status is Status.PAUSED:
            transition(c.state, Event.UNPAUSE, c.name)
            self.containers.save(c)

    async def kill(self, c: Container, sig: str | int = "SIGKILL") -> None:
        if c.state.status is Status.RESTARTING:
            raise Conflict(f"Container {c.id} is restarting, wait until the container is running")
        self._require_running(c)
        num = _signal_number(sig)
        live = self.live(c)
        live.killed_by_user = True
        if num == signal.SIGKILL:
            await self._kill_and_wait(c, live.exited, give_up_after=KILL_GIVE_UP)
            return
        self.emit(c, "kill", signal=num)
        self._send(c, num)  # any other signal answers at once, as in Docker

    async def _kill_and_wait(
        self, c: Container, done: trio.Event, *, give_up_after: float | None
    ) -> None:
        """SIGKILL the init and return once `done` (an exit event of this run) is set.

        As Docker's `Kill`: the answer comes after the exit, so an inspect that follows
        sees it.  Not gone KILL_TIMEOUT s after the signal: runc kills every process it
        knows; then wait `give_up_after` seconds more and fail (None: until it exits).
        """
        self.emit(c, "kill", signal=int(signal.SIGKILL))
        self._send(c, signal.SIGKILL)
        if c.state.status is Status.PAUSED:
            await self._resume_quietly(c)
        with trio.move_on_after(KILL_TIMEOUT):
            await done.wait()
        if done.is_set():
            return
        log.warning("container.kill_escalated", id=c.short_id, name=c.name)
        with contextlib.suppress(CorralError):
            await self.runtime.kill(c.id, "KILL", all=True)
        if give_up_after is None:
            await done.wait()
            return
        with trio.move_on_after(give_up_after):
            await done.wait()
        if not done.is_set():
            raise CorralError("tried to kill container, but did not receive an exit event")

    async def restart(
        self, c: Container, timeout: int | None, stop_signal: str | None = None
    ) -> None:
        if stop_signal:
            _signal_number(stop_signal)  # a bad one is refused before anything stops
        await self._cancel_restart(c)
        if is_active(c.state.status):
            await self.stop(c, timeout, stop_signal=stop_signal)
            await self.live(c).stopped.wait()
        await self.start(c)
        self.emit(c, "restart")

    async def pause(self, c: Container) -> None:
        next_status(c.state.status, Event.PAUSE, c.name)  # refused before runc is asked
        await self.runtime.pause(c.id)
        transition(c.state, Event.PAUSE, c.name)
        self.containers.save(c)
        self.emit(c, "pause")

    async def unpause(self, c: Container) -> None:
        next_status(c.state.status, Event.UNPAUSE, c.name)  # refused before runc is asked
        await self.runtime.resume(c.id)
        transition(c.state, Event.UNPAUSE, c.name)
        self.containers.save(c)
        self.emit(c, "unpause")

    def waiter(
        self, c: Container, condition: str = "not-running"
    ) -> Callable[[], Awaitable[dict[str, Any]]]:
        """Arm a wait now (synchronously), to be awaited later.

        Arming before the API answers is what lets `docker run` send its wait, get the
        response head, and only then start the container without missing the exit.
        """
        live = self.live(c)
        event: trio.Event | None
        if condition == "removed":
            event = live.removed
        elif condition == "next-exit":
            event = live.exited
        elif condition in ("not-running", ""):
            active = (Status.RUNNING, Status.PAUSED, Status.RESTARTING)
            event = live.exited if c.state.status in active else None
        else:
            raise InvalidArgument(f'invalid condition: "{condition}"')

        # Already met: the answer is today's exit code, whatever a start racing the
        # response body does to it (Docker's conditionAlreadyMet answers at once).
        code_now = c.state.exit_code

        async def wait() -> dict[str, Any]:
            if event is None:
                return {"StatusCode": code_now, "Error": None}
            await event.wait()
            return {"StatusCode": c.state.exit_code, "Error": None}

        return wait

    # ---------------------------------------------------------------- remove
    async def remove(self, c: Container, *, force: bool = False, volumes: bool = False) -> None:
        for member in pod_members.check_remove(c, self.containers.all(), force=force):
            await self.remove(self.containers.get(member.id), force=True, volumes=volumes)
        live = self.live(c)
        if live.removing:
            await live.removed.wait()
            return
        held = live.start_lock.statistics()
        if held.locked and held.owner is not trio.lowlevel.current_task():  # not our own
            # A start in flight (a boot-time policy start, say) ends first, started or
            # undone: removed under it, its init, published ports and files were left.
            async with live.start_lock:
                pass
        if c.state.status is Status.RESTARTING:
            if not force:
                raise Conflict(
                    f'cannot remove container "/{c.name}": container is restarting: '
                    "stop the container before removing or force remove"
                )
            await self._cancel_restart(c)
        if is_active(c.state.status):
            if not force:
                raise Conflict(
                    f'cannot remove container "/{c.name}": container is running: '
                    "stop the container before removing or force remove"
                )
            live.removing = True
            await self._kill_and_wait(c, live.stopped, give_up_after=None)
        live.removing = True
        transition(c.state, Event.REMOVE, c.name)
        with trio.CancelScope(shield=True):  # half removed is not a state
            await self.root_settled(c)
            await trio.to_thread.run_sync(self._discard_files, c)
        self.containers.delete(c, durable=False)  # durable below, before the answer
        self.execs.drop_container(c.id)
        for hook in reversed(self.hooks):  # the log, -v's volumes, networking's rows
            hook.removed(c, volumes=volumes)
        del self._live[c.id]
        self.emit(c, "destroy")
        # Removal wakes every waiter, as Docker's: a `next-exit` wait on a container
        # that never ran (its start failed, say) would otherwise wait for ever.
        live.exited.set()
        live.removed.set()
        log.info("container.destroy", id=c.short_id, name=c.name)
        await self.sync_records()  # the row's removal on disk: answered

    def _discard_files(self, c: Container) -> None:
        """A removed container's mounts and directory, in a worker thread (a fleet's
        removal would otherwise spend the event loop in unlink and rmdir).  umount2
        answers EINVAL for what is not mounted: no mountinfo read first."""
        unmount(self.rootfs_of(c))
        unmount(self.dir_of(c) / "shm")
        discard_tree(self.dir_of(c))

    def volume_user(self, name: str) -> str | None:
        c = self.containers.using_volume(name)
        return c.id if c else None

    def image_user(self, image_id: str) -> str | None:
        c = self.containers.using_image(image_id)
        return c.id if c else None

    # ---------------------------------------------------------------- commit
    async def commit(
        self,
        c: Container,
        ref: str | None,
        *,
        comment: str = "",
        author: str = "",
        changes: dict[str, Any] | None = None,
        pause: bool = True,
    ) -> str:
        """`docker commit`: the upper dir as a new image's top layer.

        The tar and hash of the upper dir (any size: a container may have written
        gigabytes) and the layer's unpacking run in worker threads, so the daemon
        answers everyone else meanwhile; the container stays paused from before the
        tar is made until the image is stored, as under Docker, whose events are
        `pause`, `commit`, `unpause`.
        """
        if self._remap_of(c) is not None:
            # its upper holds the range's ids: a layer made of it would be owned by them
            raise InvalidArgument(
                "commit of a container under userns-remap is not supported yet "
                "(run it with --userns=host to commit it)"
            )
        cfg = {k: v for k, v in c.config.items() if k not in ("Hostname", "Image")}
        cfg = apply_changes(cfg, changes or {})
        paused_here = False
        if pause and c.state.status is Status.RUNNING:
            paused_here = await self._pause_unless_exited(c)
            if paused_here:
                self.emit(c, "pause")
        try:
            layer = await self.images.run(self.images.prepare_layer, self.dir_of(c) / "upper")
            try:
                store = functools.partial(
                    self.images.commit_layer, layer, c.image_id, cfg, ref,
                    comment=comment, author=author, created_by=" ".join([c.path, *c.args]),
                )  # fmt: skip
                record = await self.images.run(store)
            finally:
                if layer is not None:
                    layer.discard()
            self.emit(c, "commit", comment=comment)
        finally:
            if paused_here:
                with trio.CancelScope(shield=True):  # never leave it frozen
                    await self._resume_unless_exited(c)
                self.emit(c, "unpause")
        return record.id

    async def _pause_unless_exited(self, c: Container) -> bool:
        """Freeze a running container for a commit; False if it exits meanwhile.

        As in Docker, the pause applies only while the container runs: one whose init
        has just exited (runc: "not running", or already deleted) is committed as it
        is, before the supervision task has recorded the exit.
        """
        try:
            await self.runtime.pause(c.id)
        except CorralError:
            if await self._runc_status(c) in ("running", "paused"):
                raise
            return False
        return True

    async def _resume_unless_exited(self, c: Container) -> None:
        """Thaw after a commit; a container killed meanwhile has nothing to resume."""
        try:
            await self.runtime.resume(c.id)
        except CorralError:
            if await self._runc_status(c) == "paused":
                raise

    async def _runc_status(self, c: Container) -> str:
        state = await self.runtime.state(c.id)
        return str(state.get("status", "")) if state else "deleted"

    # ---------------------------------------------------------- update/rename
    async def update(self, c: Container, body: dict[str, Any]) -> list[str]:
        """`docker update`: the restart policy and resource limits, applied at once.

        As Docker: the limits go into the running (or paused) container's cgroup now
        (`runc update`) and are stored for every later start; a field corral does
        not apply is refused by name (`engine/update.py`); a limit the kernel
        refuses (memory below what the container uses: EBUSY) is the error and
        nothing is stored.
        """
        updates.check(body, updates.host_cpusets())
        policy = None
        if "RestartPolicy" in body and body["RestartPolicy"]:
            policy = restarts.Policy.from_api(body["RestartPolicy"])
            if policy.name != "no" and c.host_config.get("AutoRemove"):
                raise Conflict("Restart policy cannot be updated because AutoRemove is enabled "
                               "for the container")
        try:
            hc = updates.merged(c.host_config, body)
        except CorralError as exc:
            raise type(exc)(f"Cannot update container {c.id}: {exc.message}") from None
        resources, before = updates.live_resources(hc), updates.live_resources(c.host_config)
        if c.state.status in (Status.RUNNING, Status.PAUSED) and resources != before:
            try:
                await self.runtime.update(c.id, resources)
            except CorralError as exc:
                if await self._runc_status(c) in ("running", "paused"):
                    with contextlib.suppress(CorralError):  # memory went, memsw did not
                        await self.runtime.update(c.id, before)
                    raise CorralError(f"Cannot update container {c.id}: {exc.message}") from None
                # it exited meanwhile: the stored limits apply at its next start
        if policy is not None:
            hc["RestartPolicy"] = {"Name": policy.name, "MaximumRetryCount": policy.max_retries}
        c.host_config = hc
        self.containers.save(c)
        self.emit(c, "update")
        return []

    def rename(self, c: Container, new_name: str) -> None:
        new_name = names.validate(new_name)
        if new_name == c.name:
            raise Conflict("Renaming a container with the same name as its current name")
        self.containers.check_name_free(new_name)
        old = c.name
        c.name = new_name
        self.containers.save(c)
        self.emit(c, "rename", oldName="/" + old)

    # ------------------------------------------------------------------ logs
    async def logs(
        self,
        c: Container,
        *,
        follow: bool,
        since: float = 0.0,
        until: float = 0.0,
        tail: int = -1,
    ) -> AsyncIterator[tuple[str, bytes, str]]:
        """(stream, data, time) per record; see `log_batches`."""
        async for batch in self.log_batches(c, follow=follow, since=since, until=until, tail=tail):
            for e in batch:
                yield e.stream, e.data, e.time

    async def log_batches(
        self,
        c: Container,
        *,
        follow: bool,
        since: float = 0.0,
        until: float = 0.0,
        tail: int = -1,
    ) -> AsyncIterator[list[LogEntry]]:
        """Records in lists of what could be read at once, so the API writes a list at
        a time; following goes on across policy restarts (see supervise/logs.py)."""
        live = self.live(c)
        following = is_active(c.state.status) or c.state.status is Status.RESTARTING
        if follow and following and not until:
            async with contextlib.aclosing(live.log.follow_batches(since=since, tail=tail)) as b:
                async for batch in b:
                    yield batch
            return
        for batch in live.log.read_batches(since=since, until=until, tail=tail):
            yield batch
            await trio.lowlevel.checkpoint()

    async def log_blobs(
        self, c: Container, *, follow: bool, tail: int = -1
    ) -> AsyncIterator[bytes]:
        """`log_batches` without time filters, as stored whole lines (for `logread.Wire`,
        which sends them without a Python object per record)."""
        live = self.live(c)
        following = is_active(c.state.status) or c.state.status is Status.RESTARTING
        if follow and following:
            async with contextlib.aclosing(live.log.follow_raw(tail=tail)) as b:
                async for blob in b:
                    yield blob
            return
        for blob in live.log.read_raw(tail=tail):
            yield blob
            await trio.lowlevel.checkpoint()

    # ------------------------------------------------------------------ exec
    def exec_create(self, c: Container, body: dict[str, Any]) -> Exec:
        if c.state.status is Status.PAUSED:
            raise Conflict(f"Container {c.id} is paused, unpause the container before exec")
        self._require_running(c)
        cmd = body.get("Cmd") or []
        if not cmd:
            raise InvalidArgument("No exec command specified")
        ex = self.execs.add(c.id, body)
        self.emit(c, "exec_create: " + " ".join(ex.cmd), execID=ex.id)
        return ex

    def exec_ready(self, ex: Exec) -> Container:
        """The exec's container, if the exec can start now (else Conflict, as Docker)."""
        c = self.containers.get(ex.container_id)
        if c.state.status is Status.PAUSED:
            raise Conflict(f"Container {c.id} is paused, unpause the container before exec")
        self._require_running(c)
        if ex.running or ex.exit_code is not None:
            raise Conflict(f"Error: Exec command {ex.id} has already run")
        return c

    async def exec_run(
        self,
        ex: Exec,
        stdin: trio.abc.ReceiveStream | None,
        emit: Any,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> int:
        """Run an exec instance; `emit(stream, data)` is awaited for each output chunk.

        `runc exec --detach` starts the command, so a command that cannot start is
        told apart from one that runs: runc's error never reaches the output pipes'
        reader, and `ExecStartError` (with Docker's text and exit code) is raised
        before `task_status.started()`.  Once started the command is our child, waited
        on through a pidfd; should this task end before it exits (the client went
        away, or detached), the command runs on, as in Docker, and its exit is still
        recorded.  A `Tty` exec has its own terminal instead of pipes (`_tty_session`).
        """
        c = self.exec_ready(ex)
        ex.running = True
        self.emit(c, "exec_start: " + " ".join(ex.cmd), execID=ex.id)
        try:
            if ex.tty:
                pidfd, console = await self._exec_start_tty(c, ex)
            else:
                pidfd, out_r, err_r, in_w = await self._exec_start(c, ex, stdin is not None)
        except BaseException as exc:
            if not ex.pid:  # else a start cancelled half way left it running, adopted
                ex.running = False
            if isinstance(exc, CorralError):  # Docker's default for a failed start: 126
                ex.exit_code = exc.exit_code if isinstance(exc, ExecStartError) else 126
            raise
        ex.pid = pidfd.pid
        task_status.started()
        if ex.tty:
            return await self._tty_session(c, ex, pidfd, console, stdin, emit)
        code: int | None = None

        async def pump(pipe: trio.lowlevel.FdStream, stream: str) -> None:
            async with pipe:
                while data := await pipe.receive_some(65536):
                    await emit(stream, data)

        async def feed(src: trio.abc.ReceiveStream, pipe: trio.lowlevel.FdStream) -> None:
            async with pipe:
                with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                    while data := await src.receive_some(65536):
                        await pipe.send_all(data)

        try:
            async with trio.open_nursery() as session:
                if stdin is not None and in_w is not None:
                    session.start_soon(feed, stdin, in_w.stream())
                async with trio.open_nursery() as output:
                    output.start_soon(pump, out_r.stream(), "stdout")
                    output.start_soon(pump, err_r.stream(), "stderr")
                    code = await pidfd.wait()
                # Output ended with the process; the client's stdin may stay open.
                session.cancel_scope.cancel()
        finally:
            close_all(out_r, err_r, in_w)  # those no stream took over
            if code is None:
                self.nursery.start_soon(self._exec_exited, c, ex, pidfd)  # it owns it now
            else:
                pidfd.close()
                self._exec_died(c, ex, code)  # even if the client has gone meanwhile
        return code

    async def _tty_session(
        self,
        c: Container,
        ex: Exec,
        pidfd: PidFd,
        console: Console,
        stdin: trio.abc.ReceiveStream | None,
        emit: Any,
    ) -> int:
        """An attached `Tty` exec: its terminal's output to `emit` (one stream), the
        client's input to the terminal, until the command exits.

        Once it has exited only the wait for more output is called off (a background
        child may hold the terminal open), never a chunk on its way to the client, and
        what is left in the master's buffer still goes out.  If this ends first (a
        detach, the client gone), `_exec_exited` takes the pidfd and the console.
        """
        code: int | None = None
        finished = trio.Event()
        reading: list[trio.CancelScope] = []

        async def pump() -> None:
            while not finished.is_set():
                with trio.CancelScope() as scope:
                    reading.append(scope)
                    data = await console.read()
                reading.clear()
                if scope.cancelled_caught:
                    break
                if not data:
                    return
                await emit("stdout", data)
            if rest := console.read_ready():
                await emit("stdout", rest)

        async def feed(src: trio.abc.ReceiveStream) -> None:
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                while data := await src.receive_some(65536):
                    await console.write(data)

        try:
            async with trio.open_nursery() as session:
                if stdin is not None:
                    session.start_soon(feed, stdin)
                async with trio.open_nursery() as output:
                    output.start_soon(pump)
                    code = await pidfd.wait()
                    finished.set()
                    for scope in reading:
                        scope.cancel()
                session.cancel_scope.cancel()  # the client's input may stay open
        finally:
            if code is None:
                # Detached, or the client went away: it runs on, its terminal too.
                self.nursery.start_soon(self._exec_exited, c, ex, pidfd, console)
            else:
                pidfd.close()
                console.close()
                ex.console = None
                self._exec_died(c, ex, code)
        return code

    def _exec_process(self, c: Container, ex: Exec) -> ProcessSpec:
        try:
            user = resolve_user(
                self.rootfs_of(c),
                ex.user or c.config.get("User") or "",
                c.host_config.get("GroupAdd") or None,  # as dockerd's getUser
            )
        except CorralError as exc:
            raise ExecStartError(exc.message) from None
        env = plan.merge_env(c.config.get("Env"), ex.env)
        if not any(e.startswith("HOME=") for e in env):
            env.append(f"HOME={user.home}")
        return ProcessSpec(
            terminal=ex.tty,
            console_size=ex.console_size,
            args=ex.cmd,
            env=env,
            cwd=ex.working_dir or c.config.get("WorkingDir") or "/",
            uid=user.uid,
            gid=user.gid,
            additional_gids=user.additional_gids,
            # `exec --privileged`: every capability for this command (dockerd's
            # execSetPlatformOpt); the container's seccomp filter stays.
            capabilities=all_capabilities(bounding_caps())
            if ex.privileged
            else capabilities(c.host_config),
            no_new_privileges=securityopt.no_new_privileges(c.host_config),
        )

    async def _exec_start(
        self, c: Container, ex: Exec, with_stdin: bool
    ) -> tuple[PidFd, OwnedFd, OwnedFd, OwnedFd | None]:
        """Start the exec's command: (its pidfd, stdout_r, stderr_r, stdin_w or None).

        Raises `ExecStartError` if it cannot start; nothing of it is left then.
        """
        process = self._exec_process(c, ex)
        pid_file = self.dir_of(c) / f"exec-{ex.id}.pid"
        out_r, out_w = OwnedFd.pipe("exec stdout")
        err_r, err_w = OwnedFd.pipe("exec stderr")
        in_r, in_w = OwnedFd.pipe("exec stdin") if with_stdin else (None, None)
        try:
            try:
                pid = await self.runtime.exec_detached(
                    c.id,
                    process,
                    bundle=self.dir_of(c),
                    init_pid=c.state.pid,
                    stdin=in_r.fileno() if in_r is not None else None,
                    stdout=out_w.fileno(),
                    stderr=err_w.fileno(),
                    pid_file=pid_file,
                )
            except CorralError as exc:
                # runc also printed its error on the pipes: closing them drops it.
                raise runtime_start_error(exc.message) from None
            except BaseException:
                # Cancelled while runc was starting it: a command it started runs on.
                self._adopt_exec(c, ex, pid_file)
                raise
            # Our unreaped child now (subreaper): no reuse race; claimed from here on,
            # so the orphan reaper leaves it be even if it dies before its execve.
            pidfd = PidFd(pid, f"container {c.short_id} exec {ex.id[:12]}")
        except BaseException:
            close_all(out_r, err_r, in_w)
            raise
        finally:
            close_all(out_w, err_w, in_r)
            with contextlib.suppress(FileNotFoundError):
                pid_file.unlink()
        return pidfd, out_r, err_r, in_w

    async def _exec_start_tty(self, c: Container, ex: Exec) -> tuple[PidFd, Console]:
        """Start a `Tty` exec: (its pidfd, the master of its own pty)."""
        process = self._exec_process(c, ex)
        pid_file = self.dir_of(c) / f"exec-{ex.id}.pid"
        with OwnedFd.open(os.devnull, os.O_RDWR, "/dev/null (runc's stdio)") as null:
            try:
                try:
                        pid, console = await with_console_socket(
                        lambda path: self.runtime.exec_detached(
                            c.id,
                            process,
                            bundle=self.dir_of(c),
                            init_pid=c.state.pid,
                            stdin=null.fileno(),
                            stdout=null.fileno(),
                            stderr=null.fileno(),
                            pid_file=pid_file,
                            console_socket=path,
                        )
                    )
                except CorralError as exc:
                    raise runtime_start_error(exc.message) from None
                except BaseException:
                    self._adopt_exec(c, ex, pid_file)
                    raise
                try:
                    pidfd = PidFd(pid, f"container {c.short_id} exec {ex.id[:12]}")
                except BaseException:
                    console.close()
                    raise
            finally:
                with contextlib.suppress(FileNotFoundError):
                    pid_file.unlink()
        ex.console = console
        if ex.console_size is not None:  # a resize that came while runc was starting it
            with contextlib.suppress(OSError):
                console.resize(*ex.console_size)
        return pidfd, console

    def exec_resize(self, ex: Exec, height: int, width: int) -> None:
        """`POST /exec/{id}/resize`: the exec's terminal gets the new size.

        Before its start the size is kept and given to its pty when runc makes it
        (dockerd waits up to 10 s for the start, then resizes: the same size wins).
        Without a TTY it is 200 and nothing changes, as dockerd (the shim's no-op)."""
        if not ex.tty:
            return
        if ex.console is None or ex.console.closed:
            if ex.exit_code is not None:
                raise Conflict(f"exec {ex.id} is not running")
            ex.console_size = (height, width)  # not started yet: its first size
            return
        ex.console.resize(height, width)

    def _adopt_exec(self, c: Container, ex: Exec, pid_file: Path) -> None:
        """Reap (and record) an exec command whose start was cancelled half way."""
        try:
            pidfd = PidFd(int(pid_file.read_text().strip()), f"container {c.short_id} exec")
        except (OSError, ValueError, CorralError):
            return  # runc had not started it
        ex.pid = pidfd.pid
        ex.running = True
        self.nursery.start_soon(self._exec_exited, c, ex, pidfd)

    async def _exec_exited(
        self, c: Container, ex: Exec, pidfd: PidFd, console: Console | None = None
    ) -> None:
        """Wait out an exec command nobody is attached to any more; owns `pidfd` (and
        its terminal's `console`, read and dropped meanwhile so that it never blocks
        on a full terminal).

        Runs in the daemon's nursery, so nothing may escape it but a cancellation.
        """

        async def drain(console: Console) -> None:
            with contextlib.suppress(OSError):
                while await console.read():
                    pass

        with pidfd:
            try:
                async with trio.open_nursery() as n:
                    if console is not None:
                        n.start_soon(drain, console)
                    code = await pidfd.wait()
                    n.cancel_scope.cancel()
            except Exception:
                log.exception("exec.wait_failed", id=c.short_id, exec_id=ex.id, pid=pidfd.pid)
                code = 255
            finally:
                if console is not None:
                    console.close()
                    ex.console = None
        self._exec_died(c, ex, code)

    def _exec_died(self, c: Container, ex: Exec, code: int) -> None:
        ex.running = False
        ex.exit_code = code
        self.emit(c, "exec_die", execID=ex.id, exitCode=code)


async def _shielded(undo: Callable[[Container], Awaitable[None]], c: Container) -> None:
    """An undo step that must run to its end, even when the start was cancelled."""
    with trio.CancelScope(shield=True):
        await undo(c)


def _mark_started(st: State, name: str, pid: int, started_at: str, *, by_user: bool) -> None:
    """A record's state once its init runs (a user's start resets the restart count,
    as Docker's does)."""
    transition(st, Event.START, name)
    st.pid = pid
    st.exit_code = 0
    st.error = ""
    st.oom_killed = False
    st.user_stopped = False
    st.started_at = started_at
    if by_user:
        st.restart_count = 0


def _drop_spools(live: Live) -> None:
    """A failed start's spools and tty relay: closed, and gone from `live`."""
    for spool in live.spools.values():
        spool.close()
    live.spools.clear()
    if live.tty_relay is not None:
        close_all(*live.tty_relay)
        live.tty_relay = None


def _running_pid(c: Container) -> int | None:
    st = c.state
    return st.pid if st.status in (Status.RUNNING, Status.PAUSED) and st.pid else None


def _or(value: list[str] | None, default: tuple[str, ...]) -> list[str] | tuple[str, ...]:
    """A HostConfig path list, or the default when the record has none (older ones)."""
    return default if value is None else value


def _make_init_layer(init: Path) -> None:
    """Docker's "-init" layer: mount points the runtime needs, kept out of the upper.

    runc creates a missing mount target inside the root, which would land in the
    container's writable layer and so in every `commit`; a read-only layer just below
    the upper that already holds them keeps the writable layer to the user's changes.
    Its content is the same for every container (empty directories and files, root's),
    and overlay never writes a lower, so one copy serves them all.
    """
    # 0700, as every entry of the state root: overlay reaches a lower with the
    # mounter's credentials, and what the container sees are its subdirectories
    stateroot.make_private_dir(init)
    for d in ("proc", "sys", "dev", "etc"):
        (init / d).mkdir(parents=True, exist_ok=True)
    for f in ("etc/hosts", "etc/hostname", "etc/resolv.conf"):
        (init / f).touch()


def _oci_mount(m: MountPoint, source: str = "") -> Mount:
    """A user mount for the spec; `source` a volume's subpath, resolved in it."""
    if m.type == "tmpfs":
        opts = ["nosuid", "nodev", "noexec", *m.options]
        if m.read_only:
            opts.append("ro")
        return Mount(destination=m.destination, source="tmpfs", type="tmpfs", options=opts)
    opts = ["bind" if m.non_recursive else "rbind", m.propagation or "rprivate",
            "ro" if m.read_only else "rw"]  # fmt: skip
    return Mount(destination=m.destination, source=source or m.source, type="bind", options=opts)


def _subpath_source(m: MountPoint) -> str:
    """`volume-subpath`: the directory in the volume, resolved inside it (a symlink in
    the volume can not lead out of it); it must exist, as dockerd requires."""
    if m.type != "volume" or not m.subpath:
        return ""
    root = Path(m.source)
    path = secure_join(root, m.subpath)
    real = os.path.realpath(path)
    if not path.exists() or not (real + "/").startswith(str(root.resolve()) + "/"):
        raise InvalidArgument(
            f"cannot mount subpath {m.subpath} of volume {m.name}: no such file or directory"
        )
    return real


def _check_propagation(mounts: list[MountPoint]) -> str:
    """dockerd's ensureShared/ensureSharedOrSlave for binds of shared or slave
    propagation, and the root's propagation they need ("" for runc's default)."""
    from supervisor.runtime.mountinfo import mount_of, read_mountinfo

    wanted = [
        m for m in mounts if m.type == "bind" and m.propagation.lstrip("r") in ("shared", "slave")
    ]
    if not wanted:
        return ""
    entries = read_mountinfo()
    root = "rslave"
    for m in wanted:
        path = os.path.realpath(m.source)
        entry = mount_of(path, entries)
        have = entry.propagation if entry is not None else "private"
        where = entry.mount_point if entry is not None else "/"
        if m.propagation.lstrip("r") == "shared":
            root = "rshared"
            if have != "shared":
                raise InvalidArgument(
                    f"path {path} is mounted on {where} but it is not a shared mount"
                )
        elif have not in ("shared", "slave"):
            raise InvalidArgument(
                f"path {path} is mounted on {where} but it is not a shared or slave mount"
            )
    return root


__all__ = ["Engine", "Live", "State"]
