"""Volumes' steps in a container's lifecycle (`engine/hooks.py`).

Volumes with the local driver's options (`type`/`device`/`o`) are mounted on their
`_data` for their first user and unmounted after the last (`volopts.Mounts` keeps
that count): at a start, and for `cp` of a stopped container (`rootview.py`).  A
start and an exit publish Docker's volume `mount`/`unmount` events; a removal with
`-v` removes the container's anonymous volumes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from supervisor.engine import volopts
from supervisor.engine.hooks import NoHooks
from supervisor.engine.volumes import VolumeStore
from supervisor.errors import CorralError
from supervisor.metadata.containers import Container
from supervisor.supervise.events import EventBus


class VolumeHooks(NoHooks):
    def __init__(
        self, volumes: VolumeStore, events: EventBus, in_use_by: Callable[[str], str | None]
    ) -> None:
        self.volumes = volumes
        self.events = events
        self.in_use_by = in_use_by
        self.mounts = volopts.Mounts()  # which option volumes are mounted, for whom

    async def mount(self, c: Container, holder: str = "") -> None:
        """Volumes with the local driver's options are mounted for their first user
        (moby's localVolume.Mount; a start, or `cp` of a stopped container, its own
        `holder`); a failure releases what this one took."""
        holder = holder or c.id
        try:
            for m in c.mounts:
                if m.type != "volume":
                    continue
                vol = self.volumes.find(m.name)
                if vol is not None and volopts.needs_mount(vol.options):
                    await self.mounts.acquire(vol.name, vol.options, vol.mountpoint, holder)
        except BaseException:
            self.release(c, holder)
            raise

    def release(self, c: Container, holder: str = "") -> None:
        """The container no longer uses its volumes: the last user's unmount them."""
        for m in c.mounts:
            if m.type == "volume":
                path = self.volumes.dir / m.name / "_data"
                self.mounts.release(m.name, path, holder or c.id)

    def adopt(self, c: Container) -> None:
        """Live restore: its option volumes stay mounted, for it."""
        for m in c.mounts:
            if m.type == "volume":
                self.mounts.adopt(m.name, c.id)

    def _emit(self, c: Container, action: str) -> None:
        for m in c.mounts:
            if m.type == "volume":
                attrs = {"container": c.id, "driver": "local", "destination": m.destination}
                if action == "mount":
                    attrs["read/write"] = str(not m.read_only).lower()
                    attrs["propagation"] = ""
                self.events.publish("volume", action, m.name, attrs)

    async def starting(self, c: Container) -> None:
        await self.mount(c)

    async def start_failed(self, c: Container) -> None:
        self.release(c)

    def started(self, c: Container) -> None:
        self._emit(c, "mount")

    async def exited(self, c: Container) -> None:
        self.release(c)

    def died(self, c: Container) -> None:
        self._emit(c, "unmount")

    def removed(self, c: Container, *, volumes: bool) -> None:
        if not volumes:
            return
        for m in c.mounts:
            if m.type == "volume" and m.anonymous:
                with contextlib.suppress(CorralError):
                    self.volumes.remove(m.name, in_use_by=self.in_use_by)
                    self.events.publish("volume", "destroy", m.name, {"driver": "local"})
