"""`corral daemon --services DIR`: the daemon keeps a directory of service files true.

Each `*.yaml`/`*.yml` file in DIR is one project (named by its `name:` or its file name).
At boot every file is loaded and reconciled; afterwards a change in DIR (inotify: a file
written, moved in or out, deleted) or SIGHUP reloads them all. A file that does not load
is reported and its project left exactly as it was; a file that disappeared has its
project taken down (containers and networks; volumes are kept, as `down` without -v).

It runs inside the daemon as one trio task and drives containers in-process
(`InProcessEngine`) with the same applier `corral compose up -d` uses over the socket,
so there is one way to converge a project, whichever side asks.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import signal
from collections.abc import Callable
from pathlib import Path

import structlog
import trio

from config.errors import ConfigError
from config.model import Project
from config.project import load_project
from config.reconcile import UpOptions
from supervisor.runtime.fds import OwnedFd

from .applier import Applier, ComposeError
from .engine import ComposeEngine

log = structlog.get_logger("corral.services")

IN_CLOSE_WRITE = 0x008
IN_MOVED_FROM = 0x040
IN_MOVED_TO = 0x080
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC
SETTLE = 0.2  # editors write a file in several steps: reload once they are done


class Inotify:
    """A directory watch on a non-blocking inotify fd, read when trio says it is ready."""

    def __init__(self, directory: Path) -> None:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        fd = libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        mask = IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE
        self.fd = OwnedFd(fd, f"inotify on {directory}")
        if libc.inotify_add_watch(fd, os.fsencode(directory), mask) < 0:
            err = ctypes.get_errno()
            self.fd.close()
            raise OSError(err, f"inotify_add_watch {directory}")

    async def changed(self) -> None:
        """Return after at least one event, once events stop coming for SETTLE seconds."""
        await self._next()
        while True:
            with trio.move_on_after(SETTLE) as scope:
                await self._next()
            if scope.cancelled_caught:
                return

    async def _next(self) -> None:
        while True:
            await trio.lowlevel.wait_readable(self.fd.fileno())
            try:
                if os.read(self.fd.fileno(), 65536):
                    return
            except BlockingIOError:
                continue

    def close(self) -> None:
        self.fd.close()


def service_files(directory: Path) -> list[Path]:
    return sorted(
        p
        for p in directory.iterdir()
        if p.suffix in (".yaml", ".yml") and p.is_file() and not p.name.startswith(".")
    )


class ServicesDir:
    """What the directory asked for last time, and the reconcile of it."""

    def __init__(self, directory: Path, api: ComposeEngine) -> None:
        self.directory = directory
        self.api = api
        self.projects: dict[Path, Project] = {}  # file → the project it brought up
        self.booting = True  # the first pass runs as the daemon comes up

    def say(self, text: str) -> None:
        log.debug("services.progress", line=text.strip())

    async def reconcile(self) -> None:
        seen: dict[Path, Project] = {}
        for path in service_files(self.directory):
            try:
                project = load_project(
                    [str(path)],
                    cwd=str(self.directory),
                    environ=dict(os.environ),
                    default_name=path.stem,
                )
            except ConfigError as exc:
                for problem in exc.problems:
                    log.error("services.invalid", file=str(path), problem=str(problem))
                if path in self.projects:
                    seen[path] = self.projects[path]  # keep what runs
                continue
            for warning in project.warnings:
                log.warning("services.warning", file=str(path), problem=str(warning))
            seen[path] = project
            await self._up(path, project)
        names = {p.name for p in seen.values()}
        for path, old in self.projects.items():
            if path not in seen and old.name not in names:
                await self._down(path, old)
        self.projects = seen
        self.booting = False

    async def _up(self, path: Path, project: Project) -> None:
        applier = Applier(self.api, self.say)
        plan = None
        try:
            if self.booting:  # leave the engine its own boot starts
                await applier.engine_boot_starts(project.name)
            plan = await applier.up(project, UpOptions())
        except* (ComposeError, Exception) as group:
            for exc in group.exceptions:
                log.error(
                    "services.up_failed", file=str(path), project=project.name, error=str(exc)
                )
        if plan is None:
            return
        log.info(
            "services.reconciled",
            file=str(path),
            project=project.name,
            actions=[str(a) for a in plan.actions],
        )

    async def _down(self, path: Path, project: Project) -> None:
        name = project.name
        try:
            await Applier(self.api, self.say).down(
                name, project, remove_orphans=True, volumes=False, timeout=None
            )
        except* Exception as group:
            for exc in group.exceptions:
                log.error("services.down_failed", project=name, error=str(exc))
        else:
            log.info("services.removed", file=str(path), project=name)


async def run_services(
    directory: Path,
    engine: ComposeEngine,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    on_reconciled: Callable[[], None] | None = None,
) -> None:
    """Reconcile DIR now, then on every change or SIGHUP, until cancelled."""
    if not directory.is_dir():
        raise OSError(errno.ENOTDIR, f"--services {directory}: not a directory")
    watch = Inotify(directory)
    state = ServicesDir(directory, engine)
    wake = trio.Event()
    try:
        with trio.open_signal_receiver(signal.SIGHUP) as hups:
            task_status.started()
            async with trio.open_nursery() as nursery:

                async def on_hup() -> None:
                    async for _ in hups:
                        log.info("services.sighup")
                        wake.set()

                async def on_change() -> None:
                    while True:
                        await watch.changed()
                        wake.set()

                nursery.start_soon(on_hup)
                nursery.start_soon(on_change)
                while True:
                    try:
                        await state.reconcile()
                    except Exception as exc:  # a reload must never take the daemon down
                        log.error("services.reconcile_failed", error=repr(exc))
                    if on_reconciled:
                        on_reconciled()
                    await wake.wait()
                    wake = trio.Event()
    finally:
        watch.close()
