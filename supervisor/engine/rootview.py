"""A descriptor of a container's `/` as its processes see it, for `cp`.

A running (or paused) container: `/proc/<init pid>/root`, its own mount namespace,
so volumes, binds and tmpfs mounts are where Docker resolves them.  A created or
exited one has no mounted root: a view is made just for the copy under tmp/cp/ (an
overlay of its layers and upper, its volumes and binds bound at their destinations,
all nosuid,nodev,noexec, read-only where the container has them read-only) and taken
down after.  The container's start lock is held meanwhile: a start must not mount the
same upper while the view exists.  A daemon that dies mid-copy leaves the view under
tmp/, which the next start sweeps (mounts included).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

from supervisor.engine.paths import secure_join
from supervisor.engine.state import Status
from supervisor.errors import Conflict
from supervisor.metadata.containers import Container
from supervisor.rmtree import discard_tree
from supervisor.runtime.rootfs import bind_mount, mount_overlay, unmount

if TYPE_CHECKING:
    from supervisor.engine.engine import Engine

_RUNNING = (Status.RUNNING, Status.PAUSED)


@contextlib.asynccontextmanager
async def container_root(engine: Engine, c: Container, *, write: bool) -> AsyncIterator[int]:
    """Yield an O_PATH descriptor of the container's root (closed after)."""
    if c.state.status in _RUNNING and c.state.pid:
        fd = os.open(f"/proc/{c.state.pid}/root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            yield fd
        finally:
            os.close(fd)
        return
    live = engine.live(c)
    async with live.start_lock:
        await engine.root_settled(c)  # the last exit's superblock gone first
        if c.state.status in _RUNNING:
            raise Conflict(f"container {c.name} started during the copy: try again")
        if c.state.status is Status.RESTARTING or live.removing:
            raise Conflict(f"container {c.name} is {c.state.status.value}: try again")
        scratch = engine.root / "tmp" / "cp"
        scratch.mkdir(mode=0o700, parents=True, exist_ok=True)
        view = Path(tempfile.mkdtemp(dir=scratch, prefix=c.short_id + "-"))
        cdir = engine.dir_of(c)
        lowers = engine.lowers_of(c)
        mounted = False
        holder = f"cp:{view.name}"  # the local driver's option volumes, mounted for cp
        try:
            await engine.volume_hooks.mount(c, holder)
            # rw even to read: volume mount points may have to be made (as a start
            # makes them); docker's read-only refusals are checked by the caller.
            idmap = engine.userns_path if engine._remap_of(c) is not None else None
            # an --rm container's upper was mounted volatile: so again (its mark)
            mount_overlay(lowers, cdir / "upper", cdir / "work", view, host_only=True,
                          idmap=idmap, volatile=bool(c.host_config.get("AutoRemove")))
            mounted = True
            for m in c.mounts:
                if m.type not in ("volume", "bind") or not m.source:
                    continue
                target = secure_join(view, m.destination)
                source = Path(m.source)
                if not source.exists():
                    continue
                if source.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                else:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.touch(exist_ok=True)
                bind_mount(source, target, read_only=m.read_only)
            fd = os.open(view, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                yield fd
            finally:
                os.close(fd)
        finally:
            if mounted:
                unmount(view)  # lazy and recursive: the binds go with it
            engine.volume_hooks.release(c, holder)
            discard_tree(view)

