"""`compose watch` / `up --watch`: host edits carried into the running services.

The decisions are `config.watch`'s (which change means what); this module watches the
rules' paths with inotify (every directory under them, new ones added as they appear),
gathers one burst of changes (until the tree is quiet for `QUIET` seconds: an editor
saves in several steps), and carries each service's step out through `ComposeEngine`:
files copied in with `PUT /containers/{id}/archive` (a tar of them, at `/`), files gone
on the host removed with an exec of `rm -rf`, then a restart or the rule's exec; a
`rebuild` goes to the caller's `rebuild` (the CLI builds the image and converges the
service, as `up --build` would).  When the kernel's queue overflows (IN_Q_OVERFLOW:
events dropped), every file under the watch's roots counts as changed (a full resync;
a deletion in the lost events is not seen until the next).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import io
import json
import os
import struct
import tarfile
from collections.abc import Awaitable, Callable
from pathlib import Path

import structlog
import trio

from config.model import Project
from config.reconcile import PROJECT, SERVICE, Observed
from config.watch import Rule, Step, plan
from supervisor.api.client import ApiError

from .applier import ComposeError, hook_exec_body, run_exec
from .engine import ComposeEngine

log = structlog.get_logger("corral.watch")

IN_MODIFY = 0x002
IN_ATTRIB = 0x004
IN_CLOSE_WRITE = 0x008
IN_MOVED_FROM = 0x040
IN_MOVED_TO = 0x080
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_DELETE_SELF = 0x400
IN_ISDIR = 0x40000000
IN_IGNORED = 0x8000
IN_Q_OVERFLOW = 0x4000  # the kernel's queue (fs.inotify.max_queued_events) was full
MASK = IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_ATTRIB
QUIET = 0.1  # compose batches a burst of events the same way
_EVENT = struct.Struct("iIII")


class TreeWatch:
    """inotify on every directory under some roots; `changes()` yields changed paths."""

    def __init__(self, roots: list[str]) -> None:
        self.libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        fd = self.libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        self.fd = fd
        self.dirs: dict[int, str] = {}
        self._buf = b""
        # a rule on a file watches its directory; the rule filters the rest
        self.roots = [r if os.path.isdir(r) else os.path.dirname(r) for r in roots]
        self.overflows = 0
        try:
            for root in self.roots:
                self.add_tree(root)
        except BaseException:
            os.close(fd)
            raise

    def add_tree(self, top: str) -> list[str]:
        """Watch `top` and every directory under it; the files found (a directory moved
        in or made with files in it brings them all)."""
        files: list[str] = []
        for here, subdirs, names in os.walk(top):
            if os.path.basename(here) == ".git":
                subdirs[:] = []
                continue
            wd = self.libc.inotify_add_watch(self.fd, os.fsencode(here), MASK)
            if wd < 0:
                err = ctypes.get_errno()
                if here == top:
                    raise OSError(err, f"inotify_add_watch {here}: {os.strerror(err)}")
                continue
            self.dirs[wd] = here
            files += [os.path.join(here, n) for n in names]
        return files

    def _drain(self) -> set[str]:
        changed: set[str] = set()
        while True:
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                return changed
            self._buf += data
            while len(self._buf) >= _EVENT.size:
                wd, mask, _cookie, length = _EVENT.unpack_from(self._buf)
                if len(self._buf) < _EVENT.size + length:
                    break
                raw = self._buf[_EVENT.size : _EVENT.size + length].rstrip(b"\0")
                self._buf = self._buf[_EVENT.size + length :]
                if mask & IN_Q_OVERFLOW:
                    # events were dropped: which paths changed (and which directories
                    # appeared unwatched) is unknown, so every file under the roots counts
                    # as changed and the walk watches the new directories, as compose
                    # resyncs after an overflow
                    self.overflows += 1
                    log.warning("inotify queue overflowed: resyncing", roots=self.roots)
                    for root in self.roots:
                        try:
                            changed.update(self.add_tree(root))
                        except OSError as exc:  # gone, or out of watches: say, go on
                            log.warning("inotify resync", root=root, error=str(exc))
                    continue
                base = self.dirs.get(wd)
                if mask & IN_IGNORED:
                    self.dirs.pop(wd, None)
                    continue
                if base is None:
                    continue
                path = os.path.join(base, os.fsdecode(raw)) if raw else base
                changed.add(path)
                if mask & IN_ISDIR and mask & (IN_CREATE | IN_MOVED_TO):
                    changed.update(self.add_tree(path))

    async def changes(self) -> set[str]:
        """The paths changed in the next burst (returns once it has been quiet)."""
        changed: set[str] = set()
        while not changed:
            await trio.lowlevel.wait_readable(self.fd)
            changed |= await trio.to_thread.run_sync(self._drain)  # it may walk new dirs
        while True:
            with trio.move_on_after(QUIET) as scope:
                await trio.lowlevel.wait_readable(self.fd)
            if scope.cancelled_caught:
                return changed
            changed |= await trio.to_thread.run_sync(self._drain)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def sync_tar(copy: list[tuple[str, str]]) -> bytes:
    """A tar of the host files `copy` names, each at its container path (blocking)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for host, target in copy:
            try:
                tar.add(host, arcname=target.lstrip("/"), recursive=os.path.isdir(host))
            except FileNotFoundError:
                continue  # gone since: the next burst deletes it
    return buf.getvalue()


def _files_under(paths: list[str]) -> set[str]:
    out: set[str] = set()
    for path in paths:
        if os.path.isdir(path):
            out |= {str(p) for p in Path(path).rglob("*") if p.is_file()}
        elif os.path.exists(path):
            out.add(path)
    return out


Rebuild = Callable[[str], Awaitable[None]]


class Watcher:
    """One `compose watch`: the rules, the engine, and how to say what it did."""

    def __init__(
        self,
        engine: ComposeEngine,
        project: Project,
        found: list[Rule],
        say: Callable[[str], None],
        rebuild: Rebuild,
    ) -> None:
        self.api = engine
        self.project = project
        self.rules = found
        self.say = say
        self.rebuild = rebuild

    async def containers(self, service: str) -> list[Observed]:
        labels = [f"{PROJECT}={self.project.name}", f"{SERVICE}={service}"]
        found = await self.api.request(
            "GET", "/containers/json", {"filters": json.dumps({"label": labels})}
        )
        return [o for o in (Observed.from_summary(c) for c in found or []) if not o.oneoff]

    async def apply(self, step: Step) -> None:
        if step.rebuild:
            self.say(f'Rebuilding service "{step.service}" after changes were detected...')
            await self.rebuild(step.service)
            self.say(f'service "{step.service}" successfully built')
            return
        running = await self.containers(step.service)
        if not running:
            self.say(f'service "{step.service}" has no running container: changes not synced')
            return
        if step.copy or step.delete:
            self.say(
                f'Syncing service "{step.service}" after {step.changes} changes were detected'
            )
        tar = await trio.to_thread.run_sync(sync_tar, step.copy) if step.copy else b""
        for c in running:
            if tar:
                await self.api.send_raw(
                    "PUT", f"/containers/{c.id}/archive", {"path": "/"}, tar, "application/x-tar"
                )
            if step.delete:
                code = await run_exec(
                    self.api, c.id, hook_exec_body({"command": ["rm", "-rf", "--", *step.delete]})
                )
                if code:
                    self.say(f"WARNING: {c.name}: removing {' '.join(step.delete)}: exit {code}")
            if step.restart:
                await self.api.request("POST", f"/containers/{c.id}/restart")
                self.say(f" Container {c.name}  Restarted")
            for hook in step.execs:
                code = await run_exec(self.api, c.id, hook_exec_body(hook))
                if code:
                    self.say(f"WARNING: {c.name}: sync+exec command exited with status {code}")
        if step.copy or step.delete:
            self.say(f'Synced service "{step.service}"')

    async def initial_sync(self) -> None:
        """`initial_sync: true` rules copy their whole path in before watching."""
        first = [r for r in self.rules if r.initial_sync and r.action.startswith("sync")]
        if not first:
            return
        changed = await trio.to_thread.run_sync(_files_under, [r.path for r in first])
        for step in await trio.to_thread.run_sync(plan, first, changed, os.path.exists):
            await self.apply(step)

    async def run(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Watch until cancelled; ready (inotify armed) when started."""
        watch = await trio.to_thread.run_sync(TreeWatch, sorted({r.path for r in self.rules}))
        try:
            await self.initial_sync()
            task_status.started()
            self.say("Watch enabled")
            while True:
                changed = await watch.changes()
                steps = await trio.to_thread.run_sync(plan, self.rules, changed, os.path.exists)
                for step in steps:
                    try:
                        await self.apply(step)
                    except ComposeError as exc:
                        self.say(f"WARNING: {exc}")
                    except ApiError as exc:
                        self.say(f'WARNING: service "{step.service}": {exc.message}')
        finally:
            watch.close()
