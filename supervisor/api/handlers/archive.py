"""`docker cp` and `docker export` routes: `HEAD/GET/PUT /containers/{id}/archive`,
`GET /containers/{id}/export`.  Path rules and tar work live in `engine/archive.py`;
the container's root comes from `engine/rootview.py`.  Every blocking step (walks,
reads, writes, the upload's check) runs in a worker thread.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import trio

from supervisor.api.router import ApiRequest, ApiResponse, EmptyResponse, Router, StreamResponse
from supervisor.engine import archive
from supervisor.engine.engine import Engine
from supervisor.engine.rootview import container_root
from supervisor.engine.state import Status
from supervisor.engine.users import resolve_user
from supervisor.errors import Conflict, InvalidArgument
from supervisor.metadata.containers import Container
from supervisor.rmtree import _mount_id, discard_tree
from supervisor.runtime.rootfs import is_mounted, mount_overlay, unmount


async def _threaded(chunks: Callable[[], Iterator[bytes]]) -> AsyncIterator[bytes]:
    """A blocking chunk generator driven from worker threads, one piece at a time."""
    it = await trio.to_thread.run_sync(chunks)
    done = b""
    try:
        while True:
            chunk = await trio.to_thread.run_sync(next, it, done)
            if chunk is done:
                return
            if chunk:
                yield chunk
    finally:
        close = getattr(it, "close", None)
        if close is not None:
            await trio.to_thread.run_sync(close)


def _check_writable(c: Container, root_fd: int, dest: str) -> None:
    """docker's refusals for a read-only destination, before anything is written."""
    from supervisor.runtime.inroot import open_in_root

    fd = open_in_root(root_fd, dest, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if os.fstatvfs(fd).f_flag & os.ST_RDONLY and _mount_id(fd) != _mount_id(root_fd):
            raise InvalidArgument("mounted volume is marked read-only")
        if c.host_config.get("ReadonlyRootfs") and _mount_id(fd) == _mount_id(root_fd):
            raise InvalidArgument("container rootfs is marked read-only")
    finally:
        os.close(fd)


def register(router: Router, engine: Engine) -> None:
    get = engine.containers.get

    def _require_path(req: ApiRequest) -> str:
        path = req.query_str("path")
        if not path:
            raise InvalidArgument("path is required")
        return path

    @router.route("HEAD", "/containers/{id}/archive")
    async def head(req: ApiRequest, id: str) -> ApiResponse:
        c = get(id)
        path = _require_path(req)
        async with container_root(engine, c, write=False) as root_fd:
            pst = await trio.to_thread.run_sync(archive.stat_path, root_fd, path, id)
        return EmptyResponse(200, [(archive.STAT_HEADER, pst.header())])

    @router.route("GET", "/containers/{id}/archive")
    async def get_archive(req: ApiRequest, id: str) -> ApiResponse:
        c = get(id)
        path = _require_path(req)
        async with container_root(engine, c, write=False) as root_fd:
            pst = await trio.to_thread.run_sync(archive.stat_path, root_fd, path, id)

        async def body() -> AsyncIterator[bytes]:
            async with container_root(engine, c, write=False) as root_fd:
                remap = engine._remap_of(c)
                async for chunk in _threaded(
                    lambda: archive.tar_chunks(root_fd, path, id, remap)
                ):
                    yield chunk

        engine.emit(c, "archive-path")
        return StreamResponse(body(), "application/x-tar",
                              headers=[(archive.STAT_HEADER, pst.header())])

    @router.route("PUT", "/containers/{id}/archive")
    async def put_archive(req: ApiRequest, id: str) -> ApiResponse:
        c = get(id)
        path = _require_path(req)
        opts_no_overwrite = req.query_bool("noOverwriteDirNonDir")
        copy_ids = req.query_bool("copyUIDGID")
        scratch = engine.root / "tmp" / "cp"
        scratch.mkdir(mode=0o700, parents=True, exist_ok=True)
        upload = Path(tempfile.mkstemp(dir=scratch, prefix="upload-")[1])
        try:
            await req.save_body(upload)

            def check() -> None:
                with open(upload, "rb") as f:
                    archive.check_tar(f)

            await trio.to_thread.run_sync(check)
            async with container_root(engine, c, write=True) as root_fd:

                def work() -> None:
                    dest = archive.extraction_dir(root_fd, path, id)
                    _check_writable(c, root_fd, dest)
                    owner = None
                    if copy_ids and c.config.get("User"):
                        user = resolve_user(Path(f"/proc/self/fd/{root_fd}"),
                                            c.config.get("User") or "")
                        owner = (user.uid, user.gid)
                    opts = archive.ExtractOptions(opts_no_overwrite, owner,
                                                  remap=engine._remap_of(c))
                    with open(upload, "rb") as f:
                        archive.extract(root_fd, dest, f, opts)

                await trio.to_thread.run_sync(work)
        finally:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(discard_tree, upload)
        engine.emit(c, "extract-to-dir")
        return EmptyResponse(200)

    @router.route("GET", "/containers/{id}/export")
    async def export(req: ApiRequest, id: str) -> ApiResponse:
        c = get(id)
        if c.state.status is Status.REMOVING:
            raise Conflict(f"container {c.name} is marked for removal")

        async def body() -> AsyncIterator[bytes]:
            async with _merged_root(engine, c) as root:
                remap = engine._remap_of(c)
                async for chunk in _threaded(lambda: archive.export_chunks(str(root), remap)):
                    yield chunk

        engine.emit(c, "export")
        return StreamResponse(body(), "application/x-tar")


class _MergedRoot:
    """The merged root on the host side (no volumes): the container's own mount when
    it runs, else a read-only overlay made for the export."""

    def __init__(self, engine: Engine, c: Container) -> None:
        self.engine, self.c = engine, c
        self.view: Path | None = None
        self.lock: trio.Lock | None = None

    async def __aenter__(self) -> Path:
        c, engine = self.c, self.engine
        rootfs = engine.rootfs_of(c)
        if c.state.status in (Status.RUNNING, Status.PAUSED) and is_mounted(rootfs):
            return rootfs
        self.lock = engine.live(c).start_lock
        await self.lock.acquire()
        try:
            await engine.root_settled(c)  # the last exit's superblock gone first
            scratch = engine.root / "tmp" / "cp"
            scratch.mkdir(mode=0o700, parents=True, exist_ok=True)
            view = Path(tempfile.mkdtemp(dir=scratch, prefix=c.short_id + "-export-"))
            self.view = view
            cdir = engine.dir_of(c)
            lowers = engine.lowers_of(c)
            mount_overlay(lowers, cdir / "upper", cdir / "work", view, host_only=True,
                          read_only=True, idmap=_idmap(engine, c))
        except BaseException:
            await self._release()
            raise
        return view

    async def _release(self) -> None:
        if self.view is not None:
            unmount(self.view)
            discard_tree(self.view)
            self.view = None
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    async def __aexit__(self, *exc: object) -> None:
        await self._release()


def _idmap(engine: Engine, c: Container) -> Path | None:
    """userns-remap: the view's lowers shifted as the container's own root's are."""
    return engine.userns_path if engine._remap_of(c) is not None else None


def _merged_root(engine: Engine, c: Container) -> _MergedRoot:
    return _MergedRoot(engine, c)

