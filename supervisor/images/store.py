"""The image store: one owner for content, layers and image records, and the verbs over
them (import, commit, tag, load, rmi).

    images/               content store (content.py): OCI layout, blobs by digest
    layers/<diffid-hex>/  layer store (layers.py): each layer unpacked once, shared
    tmp/images/           scratch for blobs and unpacks in flight (emptied at start-up)
    rows                  layers.py's `layer_layers`, imagedb.py's image tables

Order of operations makes a crash harmless: files are written to scratch and renamed
into place, then the rows are committed, then index.json is rewritten; on removal rows
go first, files after.  Anything on disk without a row is swept at start-up.  A failure
part-way through removes what it created.

Threads.  Every verb is synchronous and may run in a worker thread (the daemon runs the
slow ones through `run`, with the store's limiter): the slow part of each (reading,
hashing, decompressing, unpacking, syncfs) is done in scratch *outside* the store's
lock, so the trio thread's reads (resolve, list, layer_dirs) wait at most for a short
critical section (the rows, the renames and index.json).  The store keeps its own
SQLite connection for its tables (see ARCHITECTURE.md, "Images off the trio thread"):
one connection used by one thread at a time, under the lock.  `db` stays the daemon's
shared connection for the components that only read beside it (build cache, sources).
Docker's JSON views (inspect, history) are at the API edge, api/handlers/image_views.py.
"""

from __future__ import annotations

import builtins
import bz2
import functools
import gzip
import hashlib
import io
import lzma
import os
import platform as _platform
import sqlite3
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import structlog
import trio

from supervisor.errors import InvalidArgument, NotFound
from supervisor.images import imagedb, layers, oci
from supervisor.images.changes import apply_changes
from supervisor.images.content import ContentStore, sweep_path
from supervisor.images.imagedb import ImageDB, repo_of, tag_name
from supervisor.images.layers import LayerStore, PreparedLayer, StagedLayer
from supervisor.images.records import ImageRecord, InUse
from supervisor.images.removal import Removal, short_id
from supervisor.metadata.database import Database
from supervisor.rmtree import remove_tree

__all__ = [
    "CONFIG_KEYS", "AddedImage", "ExportedImage", "ImageDetails", "ImageStore", "NewImage",
    "PreparedLayer", "StagedLayer", "host_arch", "short_id",
]

log = structlog.get_logger("corral.images")

P = ParamSpec("P")
R = TypeVar("R")

_ARCH = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "armv7l": "arm",
    "armv6l": "arm",
    "i386": "386",
    "i686": "386",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
}
_CHUNK = 1 << 20
#: Image verbs in worker threads at once.  Two: one big import or load must not queue
#: a tag behind it, and more would only contend for the GIL with the trio thread.
WORKERS = 2

# Docker-cased image config keys a `changes` dict may set (OCI's config uses them too).
CONFIG_KEYS = (
    "User",
    "ExposedPorts",
    "Env",
    "Entrypoint",
    "Cmd",
    "Volumes",
    "WorkingDir",
    "Labels",
    "StopSignal",
    "Healthcheck",
    "OnBuild",
    "Shell",
    "ArgsEscaped",
)


def _plain(raw: io.BufferedReader) -> io.BufferedIOBase:
    return raw


def _gzip(raw: io.BufferedReader) -> io.BufferedIOBase:
    return gzip.GzipFile(fileobj=raw, mode="rb")


def _bz2(raw: io.BufferedReader) -> io.BufferedIOBase:
    return bz2.BZ2File(raw, "rb")


def _xz(raw: io.BufferedReader) -> io.BufferedIOBase:
    return lzma.LZMAFile(raw, "rb")


def host_arch() -> str:
    m = _platform.machine()
    return _ARCH.get(m, m)


class _Undo:
    """Paths created by an operation in flight, removed if it fails."""

    def __init__(self) -> None:
        self.paths: list[Path] = []

    def add(self, p: Path) -> None:
        self.paths.append(p)

    def run(self) -> None:
        for p in reversed(self.paths):
            remove_tree(p)  # iterative and fd-relative: a layer may be thousands deep


@dataclass
class ExportedImage:
    """One image as `ImageStore.export_image` hands it to the archive writer."""

    id: str
    manifest_digest: str
    tags: list[str]
    config: dict[str, Any]
    layers: list[str]  # diffids, bottom -> top; each is also the uncompressed blob


@dataclass
class NewImage:
    """An image to add: its config blob verbatim, its layers bottom -> top, its tags
    (familiar `repo:tag`), its creation time (unix seconds) and, when pulled, the
    registry manifest digests it is known by (`repo@sha256:...`, its RepoDigests)."""

    config: bytes
    layers: list[StagedLayer]
    tags: list[str]
    created: float
    repo_digests: list[str] = field(default_factory=list)  # pulled by: repo@sha256:...


@dataclass
class AddedImage:
    """What `add_images` did for one image: its ID, the tags now on it, and the tags
    taken from another image as (tag, old image ID)."""

    id: str
    tags: list[str]
    moved: list[tuple[str, str]]


@dataclass(frozen=True)
class ImageDetails:
    """One consistent read of an image for the API's views: its record, config
    document, layers with their sizes and when it was last tagged."""

    record: ImageRecord
    config: dict[str, Any]
    layer_sizes: list[tuple[str, int]]
    last_tag_time: float | None


class ImageStore:
    """Images, layers and tags under `root` (see module doc)."""

    def __init__(self, root: Path, db: Database) -> None:
        self.root = root
        self.db = db
        self.tmp = root / "tmp" / "images"
        self.content = ContentStore(root / "images", self.tmp)
        self.layers = LayerStore(root / "layers", self.content)
        self.layout = self.content.layout
        self.blobs = self.content.blobs
        self.layers_dir = self.layers.root
        self._lock = threading.RLock()
        self._db = Database(db.path, reserve_bytes=0)
        self._db.ensure_schema(layers.SCHEMA + imagedb.SCHEMA)
        self.records = ImageDB(self._db.conn)
        self.limiter = trio.CapacityLimiter(WORKERS)
        self._sweep()
        self._refresh_index()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    async def run(self, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """`fn(*args, **kwargs)` (a verb of this store, or file work beside it) in a
        worker thread under the store's limiter: the trio thread goes on answering."""
        return await trio.to_thread.run_sync(
            functools.partial(fn, *args, **kwargs), limiter=self.limiter
        )

    # ----------------------------------------------------------------- files

    def _blob_path(self, digest: str) -> Path:
        return self.content.path(digest)

    def layer_dir(self, diffid: str) -> Path:
        """Where layer `diffid` is unpacked (an overlay lowerdir)."""
        return self.layers.dir(diffid)

    def _put_blob(self, data: bytes, undo: _Undo) -> tuple[str, int]:
        digest, size, new = self.content.put(data)
        if new:
            undo.add(self.content.path(digest))
        return digest, size

    def _sweep(self) -> None:
        """Remove what a crash left: scratch, and files no row references."""
        for p in self.tmp.iterdir():
            sweep_path(p)
        known = {oci.hex_of(d) for d in self.layers.ids(self._db.conn)}
        self.layers.sweep(known)
        self.content.sweep(known | self.records.keep_hexes())

    def _refresh_index(self) -> None:
        """index.json after the rows committed.  It is derived from the tables and
        rewritten at the next change or start, so a failure (a full disk) is logged:
        the operation, committed, succeeded, and a start must not fail on it."""
        try:
            images, tags = self.records.index_rows()
            self.content.write_index(imagedb.index_entries(images, tags, self.content.size))
        except OSError as exc:
            log.warning("images.index_write_failed", error=str(exc))

    def _install(self, staged: StagedLayer, undo: _Undo) -> tuple[int, bool]:
        """Under the lock: a staged layer stored unless the store has it (size, new).
        What is not stored stays where it was: the caller's scratch, discarded by it."""
        known = self.layers.size_of(self._db.conn, staged.diffid)
        if known is not None:
            return known, False
        if staged.unpacked is None:  # known when staged, removed since
            staged = self.layers.stage(staged.tar, staged.diffid, self.tmp)
        self.layers.install(staged, undo.add)
        return staged.size, True

    # ------------------------------------------------------------- creation

    def _manifest(self, config_digest: str, config_size: int, diffids: list[str]) -> bytes:
        return oci.canonical_json({
            "schemaVersion": 2,
            "mediaType": oci.MEDIA_MANIFEST,
            "config": {"mediaType": oci.MEDIA_CONFIG, "digest": config_digest,
                       "size": config_size},
            "layers": [
                {"mediaType": oci.MEDIA_LAYER, "digest": d, "size": self.content.size(d)}
                for d in diffids
            ],
        })

    def _create_image(
        self,
        *,
        config_doc: dict[str, Any],
        layers: builtins.list[tuple[str, int]],
        new_layers: dict[str, int],
        parent: str | None,
        tag: str | None,
        created: float,
        undo: _Undo,
    ) -> ImageRecord:
        """Write config + manifest blobs and commit the rows (caller handles undo)."""
        config_digest, config_size = self._put_blob(oci.canonical_json(config_doc), undo)
        diffids = [d for d, _ in layers]
        manifest_digest, _ = self._put_blob(
            self._manifest(config_digest, config_size, diffids), undo
        )
        image_id = config_digest
        with self._db.transaction() as conn:
            self.layers.record(conn, new_layers, created)
            ImageDB.add(conn, image_id=image_id, manifest_digest=manifest_digest,
                        parent=parent, created=created, size=sum(s for _, s in layers),
                        layers=diffids)
            if tag is not None:
                ImageDB.set_tag(conn, tag, image_id)
        return self.records.record(image_id)

    def _decompress_to_scratch(self, tar_path: Path) -> tuple[Path, str]:
        """Copy the (plain, gzip, bzip2 or xz) tarball to scratch, uncompressed and
        hashed on the way: (the copy, its digest).  The file is opened once and its
        magic peeked, so a pipe works as well as a file."""
        raw = open(tar_path, "rb")  # noqa: SIM115 - closed with `src` below
        magic = raw.peek(6)[:6]
        opener: Callable[[io.BufferedReader], io.BufferedIOBase]
        if magic.startswith(b"\x1f\x8b"):
            opener = _gzip
        elif magic.startswith(b"BZh"):
            opener = _bz2
        elif magic.startswith(b"\xfd7zXZ\x00"):
            opener = _xz
        elif magic.startswith(b"\x28\xb5\x2f\xfd"):
            raw.close()
            raise InvalidArgument("zstd-compressed archives are not supported")
        else:
            opener = _plain
        src = opener(raw)
        fd, name = tempfile.mkstemp(dir=self.tmp, prefix="blob-")
        scratch = Path(name)
        h = hashlib.sha256()
        try:
            with raw, src, os.fdopen(fd, "wb") as out:
                while chunk := src.read(_CHUNK):
                    h.update(chunk)
                    out.write(chunk)
        except (OSError, EOFError, lzma.LZMAError) as e:
            scratch.unlink(missing_ok=True)
            raise InvalidArgument(f"invalid tar archive: {e}") from None
        except BaseException:
            scratch.unlink(missing_ok=True)
            raise
        return scratch, "sha256:" + h.hexdigest()

    def _stage_import(self, tar_path: Path) -> StagedLayer:
        """An import's file work, outside the lock: decompressed, hashed, unpacked
        (not unpacked when the store has the layer already)."""
        scratch, diffid = self._decompress_to_scratch(tar_path)
        try:
            if diffid in self.layer_ids():
                return StagedLayer(diffid, scratch)
            return self.layers.stage(scratch, diffid, self.tmp)
        except BaseException:
            scratch.unlink(missing_ok=True)
            raise

    def import_tar(
        self,
        tar_path: Path,
        ref: str | None = None,
        *,
        changes: dict[str, Any] | None = None,
        message: str = "",
        platform: str | None = None,
        source: str = "-",
    ) -> ImageRecord:
        """`docker import`: the tarball becomes a one-layer image, tagged `ref` if given.

        `changes` holds Docker-cased config keys (Cmd, Entrypoint, Env, WorkingDir,
        User, Labels, ExposedPorts, Volumes, StopSignal...), e.g. from
        `changes.parse_changes(["CMD [\"sh\"]"])`; Env entries are merged over the
        default PATH.  `platform` is `os[/arch[/variant]]` (default: host).
        History and Comment say "Imported from <source>" unless `message` is given,
        as Docker does.
        """
        tag = tag_name(ref)
        arch, variant = host_arch(), None
        if platform:
            parts = platform.split("/")
            if parts[0] != "linux":
                raise InvalidArgument(f"unsupported platform: {platform}")
            if len(parts) > 1 and parts[1]:
                arch = parts[1]
            if len(parts) > 2 and parts[2]:
                variant = parts[2]
        for key in changes or {}:
            if key not in CONFIG_KEYS:
                raise InvalidArgument(f"unsupported image config change: {key}")
        cfg = apply_changes({"Env": [oci.DEFAULT_PATH_ENV]}, changes or {})
        comment = message or f"Imported from {source}"
        staged = self._stage_import(tar_path)
        try:
            with self._lock:
                undo = _Undo()
                try:
                    size, new = self._install(staged, undo)
                    ns = oci.now_ns()
                    created = oci.rfc3339_nano(ns)
                    doc: dict[str, Any] = {
                        "architecture": arch,
                        "os": "linux",
                        "created": created,
                        "comment": comment,
                        "config": cfg,
                        "rootfs": {"type": "layers", "diff_ids": [staged.diffid]},
                        "history": [{"created": created, "comment": comment}],
                    }
                    if variant:
                        doc["variant"] = variant
                    record = self._create_image(
                        config_doc=doc,
                        layers=[(staged.diffid, size)],
                        new_layers={staged.diffid: size} if new else {},
                        parent=None,
                        tag=tag,
                        created=ns / 1e9,
                        undo=undo,
                    )
                except BaseException:
                    undo.run()
                    raise
                self._refresh_index()
                return record
        finally:
            _discard_staged(staged)

    def commit(
        self,
        upper: Path,
        parent_id: str | None,
        config: dict[str, Any],
        ref: str | None = None,
        comment: str = "",
        author: str = "",
        created_by: str = "",
    ) -> ImageRecord:
        """`docker commit`: parent's layers + the overlay upperdir as one new layer.

        `config` is the new image's Docker-cased config (the engine merges the
        container's config with any --change).  An empty upperdir adds no layer, only an
        `empty_layer` history entry, as Docker does.
        """
        layer = self.prepare_layer(upper)
        try:
            return self.commit_layer(layer, parent_id, config, ref, comment, author, created_by)
        finally:
            if layer is not None:
                layer.discard()

    def prepare_layer(self, upper: Path) -> PreparedLayer | None:
        """The slow part of a commit, without the store's lock (see
        `LayerStore.prepare_from_upper`); `commit_layer` stores it."""
        return self.layers.prepare_from_upper(upper)

    def commit_layer(
        self,
        layer: PreparedLayer | None,
        parent_id: str | None,
        config: dict[str, Any],
        ref: str | None = None,
        comment: str = "",
        author: str = "",
        created_by: str = "",
    ) -> ImageRecord:
        """`commit` with a layer `prepare_layer` made (None: an empty upperdir)."""
        tag = tag_name(ref)
        with self._lock:
            parent_doc: dict[str, Any] = {}
            parent_layers: builtins.list[tuple[str, int]] = []
            if parent_id is not None:
                parent_id = self.records.lookup(parent_id)
                parent_doc = self.content.read_json(parent_id)
                parent_layers = self.records.layers_with_size(parent_id)
            empty = layer is None
            undo = _Undo()
            try:
                layers = list(parent_layers)
                new_layers: dict[str, int] = {}
                if layer is not None:
                    staged = StagedLayer(layer.diffid, layer.tar, layer.unpacked, layer.size)
                    size, new = self._install(staged, undo)
                    layers.append((layer.diffid, size))
                    if new:
                        new_layers[layer.diffid] = size
                ns = oci.now_ns()
                created = oci.rfc3339_nano(ns)
                entry: dict[str, Any] = {"created": created, "created_by": created_by}
                if author:
                    entry["author"] = author
                if comment:
                    entry["comment"] = comment
                if empty:
                    entry["empty_layer"] = True
                doc: dict[str, Any] = {
                    "architecture": parent_doc.get("architecture", host_arch()),
                    "os": parent_doc.get("os", "linux"),
                    "created": created,
                    "config": {k: v for k, v in config.items() if v is not None},
                    "rootfs": {"type": "layers", "diff_ids": [d for d, _ in layers]},
                    "history": [*parent_doc.get("history", []), entry],
                }
                if parent_doc.get("variant"):
                    doc["variant"] = parent_doc["variant"]
                if author:
                    doc["author"] = author
                if comment:
                    doc["comment"] = comment
                record = self._create_image(
                    config_doc=doc,
                    layers=layers,
                    new_layers=new_layers,
                    parent=parent_id,
                    tag=tag,
                    created=ns / 1e9,
                    undo=undo,
                )
            except BaseException:
                undo.run()
                raise
            self._refresh_index()
            return record

    def tag(self, source: str, target_ref: str) -> None:
        """`docker tag`: point `target_ref` at the image `source` resolves to."""
        name = tag_name(target_ref)
        assert name is not None
        with self._lock:
            image_id = self.records.lookup(source)
            with self._db.transaction() as conn:
                ImageDB.set_tag(conn, name, image_id)
            self._refresh_index()

    # --------------------------------------------------------------- reads

    def resolve(self, s: str) -> ImageRecord:
        """An image by ref, `name@sha256:<manifest>`, ID or unique short ID."""
        with self._lock:
            return self.records.record(self.records.lookup(s))

    def exists(self, s: str) -> bool:
        try:
            self.resolve(s)
        except (NotFound, InvalidArgument):
            return False
        return True

    def details(self, s: str) -> ImageDetails:
        """What the API's inspect and history views need, read at once."""
        with self._lock:
            image_id = self.records.lookup(s)
            row = self.records.row(image_id)
            return ImageDetails(
                record=self.records.record(image_id),
                config=self.content.read_json(image_id),
                layer_sizes=self.records.layers_with_size(image_id),
                last_tag_time=row["last_tag_time"],
            )

    def pulled_digests(self, image_id: str) -> builtins.list[str]:
        """The registry digests (`repo@sha256:...`) an image was pulled or pushed as."""
        with self._lock:
            return self.records.repo_digests(image_id)

    def add_repo_digest(self, image_id: str, name: str,
                        also: Callable[[sqlite3.Connection], None] | None = None) -> None:
        """Remember that `image_id` is `repo@sha256:...` in a registry (after a push);
        `also` writes a push's other rows in the same transaction (one commit, one
        fsync per push).  Blocking: a worker thread."""
        with self._lock, self._db.transaction() as conn:
            ImageDB.set_digest(conn, name, image_id)
            if also is not None:
                also(conn)

    def has_tag(self, name: str, image_id: str) -> bool:
        """Does the familiar `repo:tag` point at `image_id` (a pull that is up to date)?"""
        with self._lock:
            return self.records.has_tag(name, image_id)

    def list(self, *, all: bool = True) -> builtins.list[ImageRecord]:
        """Images, newest first.  With all=False, hide untagged images that have
        children (Docker's intermediate images), as `docker images` does."""
        with self._lock:
            records = [self.records.record(i) for i in self.records.ids()]
        if all:
            return records
        parents = {r.parent for r in records if r.parent}
        return [r for r in records if r.repo_tags or r.id not in parents]

    def tags_of(self, image_id: str) -> builtins.list[str]:
        with self._lock:
            return self.records.tags(image_id)

    def config(self, image_id: str) -> dict[str, Any]:
        """The image's OCI config JSON (`image_id` may be anything resolve takes)."""
        with self._lock:
            return self.content.read_json(self.records.lookup(image_id))

    def layer_dirs(self, image_id: str) -> builtins.list[Path]:
        """Unpacked layer directories, bottom -> top (reverse them for lowerdir=)."""
        with self._lock:
            iid = self.records.lookup(image_id)
            return [self.layer_dir(d) for d, _ in self.records.layers_with_size(iid)]

    def layer_sizes(self) -> dict[str, int]:
        """Every stored layer's content size, by diff ID (`system df`)."""
        with self._lock:
            return self.layers.sizes(self._db.conn)

    # -------------------------------------------------------------- delete

    def delete(
        self,
        s: str,
        *,
        force: bool = False,
        in_use: InUse | None = None,
        prune: bool = True,
    ) -> builtins.list[dict[str, str]]:
        """`docker rmi` (the rules: removal.py).  Rows under the lock, files after it."""
        rmi = Removal(self._db, self.records, self.layers, in_use or (lambda _id: None))
        try:
            with self._lock:
                try:
                    return rmi.delete(s, force=force, prune=prune)
                finally:
                    self._refresh_index()
        finally:
            rmi.remove_files()

    # ------------------------------------------------------- save and load
    # For supervisor/images/archive.py and distribution/pull.py: reads hand out blob
    # paths (the caller opens them); `stage_layer` does file work only, so it may run
    # in a worker thread; `add_images` moves staged layers into place and commits.

    def blob_path(self, digest: str) -> Path:
        """Where blob `digest` (a config, manifest or uncompressed layer) is stored."""
        return self._blob_path(digest)

    def export_image(self, s: str) -> ExportedImage:
        """What `docker save` needs of one image: its blobs' digests, tags and config."""
        with self._lock:
            image_id = self.records.lookup(s)
            return ExportedImage(
                id=image_id,
                manifest_digest=str(self.records.row(image_id)["manifest_digest"]),
                tags=self.records.tags(image_id),
                config=self.content.read_json(image_id),
                layers=[d for d, _ in self.records.layers_with_size(image_id)],
            )

    def tags_in_repository(self, repository: str) -> builtins.list[str]:
        """Every tag of the familiar `repository` (what `docker save busybox` saves)."""
        with self._lock:
            names = self.records.all_tags()
        return [n for n in names if repo_of(n) == repository]

    def layer_ids(self) -> set[str]:
        """The diffids already stored (a loader need not unpack those again)."""
        with self._lock:
            return self.layers.ids(self._db.conn)

    def stage_layer(self, tar: Path, diffid: str, workdir: Path) -> StagedLayer:
        """Unpack the verified, uncompressed layer tar `tar` into a new dir in `workdir`
        (under this store's scratch).  Touches no rows: safe in a worker thread."""
        return self.layers.stage(tar, diffid, workdir)

    def add_images(self, images: builtins.list[NewImage]) -> builtins.list[AddedImage]:
        """Store loaded images all or nothing: staged layers are moved into place, each
        config blob is kept byte for byte (so the image ID survives a save/load round
        trip), a manifest is written, and the rows and tags commit in one transaction.
        A tag that pointed at another image moves, as with `docker load`."""
        with self._lock:
            undo = _Undo()
            try:
                sizes: dict[str, int] = {}
                new_layers: dict[str, int] = {}
                for img in images:
                    for layer in img.layers:
                        if layer.diffid not in sizes:
                            size, new = self._install(layer, undo)
                            sizes[layer.diffid] = size
                            if new:
                                new_layers[layer.diffid] = size
                planned: builtins.list[tuple[NewImage, str, str]] = []
                for img in images:
                    config_digest, config_size = self._put_blob(img.config, undo)
                    manifest = self._manifest(
                        config_digest, config_size, [x.diffid for x in img.layers]
                    )
                    manifest_digest, _ = self._put_blob(manifest, undo)
                    planned.append((img, config_digest, manifest_digest))
                added: builtins.list[AddedImage] = []
                with self._db.transaction() as conn:
                    self.layers.record(conn, new_layers, oci.now_ns() / 1e9)
                    for img, image_id, manifest_digest in planned:
                        ImageDB.add(
                            conn, image_id=image_id, manifest_digest=manifest_digest,
                            parent=None, created=img.created,
                            size=sum(sizes[x.diffid] for x in img.layers),
                            layers=[x.diffid for x in img.layers],
                        )
                        moved: builtins.list[tuple[str, str]] = []
                        for name in img.tags:
                            old = ImageDB.set_tag(conn, name, image_id)
                            if old is not None:
                                moved.append((name, old))
                        added.append(AddedImage(image_id, builtins.list(img.tags), moved))
                        for name in img.repo_digests:
                            ImageDB.set_digest(conn, name, image_id)
            except BaseException:
                undo.run()
                raise
            self._refresh_index()
            return added


def _discard_staged(staged: StagedLayer) -> None:
    """What an operation staged and did not store (stored parts were renamed away)."""
    staged.tar.unlink(missing_ok=True)
    if staged.unpacked is not None and os.path.lexists(staged.unpacked):
        remove_tree(staged.unpacked)
