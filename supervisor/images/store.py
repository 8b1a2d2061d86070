"""The image store: OCI blobs, a shared unpacked-layer store, tags, all in one place.

On disk, under the daemon's state root:

    images/               an OCI image layout (oci-layout, index.json, blobs/sha256/<hex>)
    layers/<diffid-hex>/  each layer unpacked ONCE, in overlayfs format; every image and
                          container using the layer shares the directory as a lowerdir
    tmp/images/           scratch for blobs and unpacks in flight (emptied at start-up)

Records live in SQLite (`image_images`, `image_layers`, `image_tags`, `layer_layers`);
a layer's reference count is derived from `image_layers`, never stored, so it cannot
drift.  Order of operations makes a crash harmless: files are written to scratch and
renamed into place, then the rows are committed, then index.json is rewritten; on
removal rows go first, files after.  Anything on disk without a row is swept at
start-up.  A failure part-way through an import or commit removes what it created.

Methods are synchronous and serialised by a lock: the daemon may call them inline from
its trio thread (cheap ones) or through `trio.to_thread` (imports and commits, which
unpack whole layers).
"""

from __future__ import annotations

import builtins
import bz2
import contextlib
import gzip
import hashlib
import io
import json
import lzma
import os
import platform as _platform
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import structlog

from supervisor import durable
from supervisor.engine.metadata import Database
from supervisor.errors import Conflict, CorralError, InvalidArgument, NotFound
from supervisor.images import oci
from supervisor.images.changes import apply_changes
from supervisor.images.diff import write_layer_from_upper
from supervisor.images.records import ImageRecord, ImageUser, InUse, as_user
from supervisor.images.reference import (
    ID_RE,
    Reference,
    is_full_id,
    looks_like_id_prefix,
    parse,
)
from supervisor.images.tarsafe import unpack_layer
from supervisor.rmtree import remove_tree

log = structlog.get_logger("corral.images")

SCHEMA = """
CREATE TABLE IF NOT EXISTS image_images (
    id              TEXT PRIMARY KEY,          -- sha256:<config digest hex>
    manifest_digest TEXT NOT NULL,
    parent          TEXT,                      -- set by commit (Docker's Parent)
    created         REAL NOT NULL,             -- unix seconds
    size            INTEGER NOT NULL,          -- sum of layer sizes
    last_tag_time   REAL
);
CREATE TABLE IF NOT EXISTS layer_layers (
    diffid  TEXT PRIMARY KEY,                  -- sha256 of the uncompressed tar = blob
    size    INTEGER NOT NULL,                  -- bytes of regular-file content
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS image_layers (
    image_id TEXT NOT NULL REFERENCES image_images(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,                 -- 0 = bottom
    diffid   TEXT NOT NULL REFERENCES layer_layers(diffid),
    PRIMARY KEY (image_id, position)
);
CREATE INDEX IF NOT EXISTS image_layers_by_diffid ON image_layers(diffid);
CREATE TABLE IF NOT EXISTS image_tags (
    name     TEXT PRIMARY KEY,                 -- familiar repo:tag, e.g. busybox:latest
    image_id TEXT NOT NULL REFERENCES image_images(id) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS image_tags_by_image ON image_tags(image_id);
CREATE TABLE IF NOT EXISTS image_digests (
    name     TEXT PRIMARY KEY,                 -- familiar repo@sha256:<registry manifest>
    image_id TEXT NOT NULL REFERENCES image_images(id) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS image_digests_by_image ON image_digests(image_id);
"""

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


def _open_rb(path: Path) -> io.BufferedIOBase:
    return open(path, "rb")  # noqa: SIM115 - the caller closes it


def _open_gzip(path: Path) -> io.BufferedIOBase:
    return gzip.open(path, "rb")


def _open_bz2(path: Path) -> io.BufferedIOBase:
    return bz2.BZ2File(path, "rb")


def _open_xz(path: Path) -> io.BufferedIOBase:
    return lzma.LZMAFile(path, "rb")


def host_arch() -> str:
    m = _platform.machine()
    return _ARCH.get(m, m)


def short_id(image_id: str) -> str:
    return image_id.removeprefix("sha256:")[:12]


def _repo_of(tag_name: str) -> str:
    """`localhost:5000/a:1` -> `localhost:5000/a` (the last colon after the last slash)."""
    slash = tag_name.rfind("/")
    colon = tag_name.rfind(":")
    return tag_name[:colon] if colon > slash else tag_name


@dataclass(frozen=True)
class PreparedLayer:
    """A layer tar in the store's scratch, its digest and its unpacked tree
    (`ImageStore.prepare_layer`)."""

    tar: Path
    diffid: str
    unpacked: Path
    size: int

    def discard(self) -> None:
        """Remove what was not stored (once stored the tar is the blob and the tree
        the layer directory: nothing is left here)."""
        self.tar.unlink(missing_ok=True)
        if os.path.lexists(self.unpacked):
            _remove_path(self.unpacked)


class _Undo:
    """Paths created by an operation in flight, removed if it fails."""

    def __init__(self) -> None:
        self.paths: list[Path] = []

    def add(self, p: Path) -> None:
        self.paths.append(p)

    def run(self) -> None:
        for p in reversed(self.paths):
            _remove_path(p)


def _remove_path(p: Path) -> None:
    remove_tree(p)  # iterative and fd-relative: a layer may be thousands of levels deep


def _sweep_path(p: Path) -> None:
    """A start-up removal: logged if it fails, never fatal (the daemon must start)."""
    try:
        remove_tree(p)
    except Exception as exc:  # noqa: BLE001 - a sweep never stops the daemon
        log.warning("images.sweep_failed", path=str(p), error=str(exc))


class _Conflict(Conflict):
    """Docker's imageDeleteConflict: `hard` ones cannot be forced; `used` ones are
    about a container (and are not silenced when pruning a dangling image)."""

    def __init__(self, image_id: str, message: str, *, hard: bool, used: bool) -> None:
        how = "cannot be forced" if hard else "must be forced"
        super().__init__(f"conflict: unable to delete {short_id(image_id)} ({how}) - {message}")
        self.hard = hard
        self.used = used


class ImageStore:
    """Images, layers and tags under `root`, records in `db` (see module doc)."""

    def __init__(self, root: Path, db: Database) -> None:
        self.root = root
        self.db = db
        self.layout = root / "images"
        self.blobs = self.layout / "blobs" / "sha256"
        self.layers_dir = root / "layers"
        self.tmp = root / "tmp" / "images"
        self._lock = threading.RLock()
        for d in (self.blobs, self.layers_dir, self.tmp):
            d.mkdir(parents=True, exist_ok=True)
        db.ensure_schema(SCHEMA)
        layout_file = self.layout / "oci-layout"
        if not layout_file.exists():
            self._write_atomic(layout_file, json.dumps({"imageLayoutVersion": "1.0.0"}).encode())
        self._sweep()
        self._refresh_index()

    # ----------------------------------------------------------------- files

    def _write_atomic(self, path: Path, data: bytes) -> None:
        durable.write_atomic(path, data, tmp_dir=self.tmp)  # data on disk before the name

    def _blob_path(self, digest: str) -> Path:
        return self.blobs / oci.hex_of(digest)

    def layer_dir(self, diffid: str) -> Path:
        """Where layer `diffid` is unpacked (an overlay lowerdir)."""
        return self.layers_dir / oci.hex_of(diffid)

    def _put_blob(self, data: bytes, undo: _Undo) -> tuple[str, int]:
        digest = oci.digest_of(data)
        path = self._blob_path(digest)
        if not path.exists():
            self._write_atomic(path, data)
            undo.add(path)
        return digest, len(data)

    def _read_json_blob(self, digest: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self._blob_path(digest).read_bytes())
        return data

    def _ingest_layer(
        self, tar_tmp: Path, undo: _Undo, prepared: PreparedLayer | None = None
    ) -> tuple[str, int, bool]:
        """Make the uncompressed layer tar at `tar_tmp` (in scratch) a stored layer.

        Returns (diffid, size, new).  An already-stored layer is not unpacked again: the
        digest proves the content is the one we validated before.  `prepared`: the
        tar already hashed and unpacked, outside the lock (`prepare_layer`).
        """
        if prepared is not None:
            diffid = prepared.diffid
        else:
            h = hashlib.sha256()
            with open(tar_tmp, "rb") as f:
                while chunk := f.read(_CHUNK):
                    h.update(chunk)
            diffid = "sha256:" + h.hexdigest()
        row = self.db.execute(
            "SELECT size FROM layer_layers WHERE diffid = ?", (diffid,)
        ).fetchone()
        if row is not None:
            tar_tmp.unlink()
            return diffid, int(row["size"]), False
        target = self.layer_dir(diffid)
        _remove_path(target)  # an orphan from a crash; the sweep would have taken it
        if prepared is not None:
            unpacked, size = prepared.unpacked, prepared.size
        else:
            unpacked, size = self._unpack_scratch(tar_tmp)
        try:
            durable.rename_into_place(unpacked, target)
        except BaseException:
            _remove_path(unpacked)
            raise
        undo.add(target)
        blob = self._blob_path(diffid)
        os.chmod(tar_tmp, 0o644)
        durable.fsync_path(tar_tmp)  # (syncfs above flushed it too; cheap, and explicit)
        durable.rename_into_place(tar_tmp, blob)
        undo.add(blob)
        return diffid, size, True

    def _unpack_scratch(self, tar: Path) -> tuple[Path, int]:
        """`tar` unpacked into a new scratch directory: (it, the layer's size)."""
        unpack_to = Path(tempfile.mkdtemp(dir=self.tmp, prefix="layer-"))
        try:
            os.chmod(unpack_to, 0o755)
            size = unpack_layer(tar, unpack_to)
            durable.syncfs(unpack_to)  # the tree on disk before its name and its row
            return unpack_to, size
        except BaseException:
            _remove_path(unpack_to)
            raise

    def _scratch_file(self) -> tuple[BinaryIO, Path]:
        fd, name = tempfile.mkstemp(dir=self.tmp, prefix="blob-")
        return os.fdopen(fd, "wb"), Path(name)

    def _sweep(self) -> None:
        """Remove what a crash left: scratch, and files no row references."""
        for p in self.tmp.iterdir():
            _sweep_path(p)
        known_layers = {
            oci.hex_of(r["diffid"]) for r in self.db.execute("SELECT diffid FROM layer_layers")
        }
        for p in self.layers_dir.iterdir():
            if p.name not in known_layers:
                _sweep_path(p)
        keep = set(known_layers)
        for r in self.db.execute("SELECT id, manifest_digest FROM image_images"):
            keep.add(oci.hex_of(r["id"]))
            keep.add(oci.hex_of(r["manifest_digest"]))
        for p in self.blobs.iterdir():
            if p.name not in keep:
                _sweep_path(p)

    def _refresh_index(self) -> None:
        """index.json after the rows committed.  It is derived from the tables and
        rewritten at the next change or start, so a failure (a full disk) is logged:
        the operation, committed, succeeded, and a start must not fail on it."""
        try:
            self._write_index()
        except OSError as exc:
            log.warning("images.index_write_failed", error=str(exc))

    def _write_index(self) -> None:
        """index.json from the tables: one entry per tag, plus untagged images."""
        manifests: builtins.list[dict[str, Any]] = []
        images = self.db.execute(
            "SELECT id, manifest_digest FROM image_images ORDER BY created, id"
        ).fetchall()
        tags: dict[str, list[str]] = {}
        for r in self.db.execute("SELECT name, image_id FROM image_tags ORDER BY name"):
            tags.setdefault(r["image_id"], []).append(r["name"])
        for img in images:
            digest = img["manifest_digest"]
            desc: dict[str, Any] = {
                "mediaType": oci.MEDIA_MANIFEST,
                "digest": digest,
                "size": self._blob_path(digest).stat().st_size,
            }
            names = tags.get(img["id"], [])
            if not names:
                manifests.append(desc)
            for name in names:
                ref = parse(name)
                manifests.append(
                    desc
                    | {
                        "annotations": {
                            oci.ANNOTATION_REF_NAME: ref.tag or "latest",
                            oci.ANNOTATION_CONTAINERD_NAME: f"{ref.canonical}:{ref.tag}",
                        }
                    }
                )
        index = {"schemaVersion": 2, "mediaType": oci.MEDIA_INDEX, "manifests": manifests}
        data = json.dumps(index, indent=2).encode()
        path = self.layout / "index.json"
        with contextlib.suppress(OSError):
            if path.read_bytes() == data:
                return  # as it is: no write (and a start on a full disk needs none)
        self._write_atomic(path, data)

    # ------------------------------------------------------------- creation

    @staticmethod
    def _tag_name(ref: str | None) -> str | None:
        if ref is None or ref == "":
            return None
        parsed = parse(ref)
        if parsed.digest is not None:
            raise InvalidArgument(f"refusing to create a tag with a digest reference: {ref}")
        return parsed.name()

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
        manifest = {
            "schemaVersion": 2,
            "mediaType": oci.MEDIA_MANIFEST,
            "config": {"mediaType": oci.MEDIA_CONFIG, "digest": config_digest, "size": config_size},
            "layers": [
                {
                    "mediaType": oci.MEDIA_LAYER,
                    "digest": d,
                    "size": self._blob_path(d).stat().st_size,
                }
                for d, _ in layers
            ],
        }
        manifest_digest, _ = self._put_blob(oci.canonical_json(manifest), undo)
        image_id = config_digest
        size = sum(s for _, s in layers)
        with self.db.transaction() as conn:
            for diffid, lsize in new_layers.items():
                conn.execute(
                    "INSERT OR IGNORE INTO layer_layers (diffid, size, created) VALUES (?, ?, ?)",
                    (diffid, lsize, created),
                )
            exists = conn.execute("SELECT 1 FROM image_images WHERE id = ?", (image_id,)).fetchone()
            if exists is None:
                conn.execute(
                    "INSERT INTO image_images (id, manifest_digest, parent, created, size) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (image_id, manifest_digest, parent, created, size),
                )
                conn.executemany(
                    "INSERT INTO image_layers (image_id, position, diffid) VALUES (?, ?, ?)",
                    [(image_id, i, d) for i, (d, _) in enumerate(layers)],
                )
            if tag is not None:
                self._set_tag(conn, tag, image_id)
        return self._record(image_id)

    @staticmethod
    def _set_tag(conn: Any, name: str, image_id: str) -> None:
        conn.execute(
            "INSERT INTO image_tags (name, image_id) VALUES (?, ?) "
            "ON CONFLICT(name) DO UPDATE SET image_id = excluded.image_id",
            (name, image_id),
        )
        conn.execute(
            "UPDATE image_images SET last_tag_time = ? WHERE id = ?", (oci.now_ns() / 1e9, image_id)
        )

    def _decompress_to_scratch(self, tar_path: Path) -> Path:
        """Copy the (plain, gzip, bzip2 or xz) tarball to scratch, uncompressed."""
        with open(tar_path, "rb") as raw:
            magic = raw.read(6)
        opener: Callable[[Path], io.BufferedIOBase]
        if magic.startswith(b"\x1f\x8b"):
            opener = _open_gzip
        elif magic.startswith(b"BZh"):
            opener = _open_bz2
        elif magic.startswith(b"\xfd7zXZ\x00"):
            opener = _open_xz
        elif magic.startswith(b"\x28\xb5\x2f\xfd"):
            raise InvalidArgument("zstd-compressed archives are not supported")
        else:
            opener = _open_rb
        src = opener(tar_path)
        out, scratch = self._scratch_file()
        try:
            with src, out:
                while chunk := src.read(_CHUNK):
                    out.write(chunk)
        except (OSError, EOFError, lzma.LZMAError) as e:
            scratch.unlink(missing_ok=True)
            raise InvalidArgument(f"invalid tar archive: {e}") from None
        except BaseException:
            scratch.unlink(missing_ok=True)
            raise
        return scratch

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
        tag = self._tag_name(ref)
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
        with self._lock:
            undo = _Undo()
            try:
                scratch = self._decompress_to_scratch(tar_path)
                try:
                    diffid, size, new = self._ingest_layer(scratch, undo)
                finally:
                    scratch.unlink(missing_ok=True)
                ns = oci.now_ns()
                created = oci.rfc3339_nano(ns)
                doc: dict[str, Any] = {
                    "architecture": arch,
                    "os": "linux",
                    "created": created,
                    "comment": comment,
                    "config": cfg,
                    "rootfs": {"type": "layers", "diff_ids": [diffid]},
                    "history": [{"created": created, "comment": comment}],
                }
                if variant:
                    doc["variant"] = variant
                record = self._create_image(
                    config_doc=doc,
                    layers=[(diffid, size)],
                    new_layers={diffid: size} if new else {},
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
        """The slow part of a commit, without the store's lock: the upperdir's layer
        tar written to scratch, hashed and unpacked (None for an empty upperdir).  The
        engine runs it in a worker thread while the container is paused; `commit_layer`
        stores it."""
        if not any(upper.iterdir()):
            return None
        out, scratch = self._scratch_file()
        try:
            h = hashlib.sha256()
            with out:
                write_layer_from_upper(upper, out)
            with open(scratch, "rb") as f:
                while chunk := f.read(_CHUNK):
                    h.update(chunk)
            unpacked, size = self._unpack_scratch(scratch)
        except BaseException:
            scratch.unlink(missing_ok=True)
            raise
        return PreparedLayer(scratch, "sha256:" + h.hexdigest(), unpacked, size)

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
        tag = self._tag_name(ref)
        with self._lock:
            parent_doc: dict[str, Any] = {}
            parent_layers: builtins.list[tuple[str, int]] = []
            if parent_id is not None:
                parent_id = self._lookup(parent_id)
                parent_doc = self.config(parent_id)
                parent_layers = self._layers_with_size(parent_id)
            empty = layer is None
            undo = _Undo()
            try:
                layers = list(parent_layers)
                new_layers: dict[str, int] = {}
                if layer is not None:
                    diffid, size, new = self._ingest_layer(layer.tar, undo, layer)
                    layers.append((diffid, size))
                    if new:
                        new_layers[diffid] = size
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
        name = self._tag_name(target_ref)
        assert name is not None
        with self._lock:
            image_id = self._lookup(source)
            with self.db.transaction() as conn:
                self._set_tag(conn, name, image_id)
            self._refresh_index()

    # -------------------------------------------------------------- lookup

    def _lookup(self, s: str) -> str:
        """Resolve anything `docker` accepts as an image to its ID, or NotFound."""
        if s.startswith("sha256:") and is_full_id(s):
            return self._by_id(s, s)
        if ID_RE.fullmatch(s):
            return self._by_id("sha256:" + s, s)
        try:
            ref: Reference | None = parse(s)
        except InvalidArgument:
            if not looks_like_id_prefix(s):
                raise
            ref = None
        if ref is not None:
            found = self._by_ref(ref)
            if found is not None:
                return found
        if looks_like_id_prefix(s):
            prefix = s.removeprefix("sha256:")
            rows = self.db.execute(
                "SELECT id FROM image_images WHERE substr(id, 8, ?) = ? LIMIT 2",
                (len(prefix), prefix),
            ).fetchall()
            if len(rows) == 1:
                return str(rows[0]["id"])
            if len(rows) > 1:
                raise NotFound(f"No such image: {s} (ambiguous short ID)")
        shown = s if ref is None or ref.digest is not None else ref.name()
        raise NotFound(f"No such image: {shown}")

    def _by_id(self, image_id: str, shown: str) -> str:
        row = self.db.execute("SELECT 1 FROM image_images WHERE id = ?", (image_id,)).fetchone()
        if row is None:
            raise NotFound(f"No such image: {shown}")
        return image_id

    def _by_ref(self, ref: Reference) -> str | None:
        if ref.digest is not None:
            pulled = self.db.execute(
                "SELECT image_id FROM image_digests WHERE name = ?",
                (f"{ref.repository}@{ref.digest}",),
            ).fetchone()
            if pulled is not None:
                return str(pulled["image_id"])
            # name@digest: the manifest digest of an image tagged in that repository.
            for r in self.db.execute(
                "SELECT i.id, t.name FROM image_images i JOIN image_tags t ON t.image_id = i.id "
                "WHERE i.manifest_digest = ?",
                (ref.digest,),
            ):
                if _repo_of(r["name"]) == ref.repository:
                    return str(r["id"])
            return None
        row = self.db.execute(
            "SELECT image_id FROM image_tags WHERE name = ?", (ref.name(),)
        ).fetchone()
        return None if row is None else str(row["image_id"])

    def resolve(self, s: str) -> ImageRecord:
        """An image by ref, `name@sha256:<manifest>`, ID or unique short ID."""
        with self._lock:
            return self._record(self._lookup(s))

    def exists(self, s: str) -> bool:
        try:
            self.resolve(s)
        except (NotFound, InvalidArgument):
            return False
        return True

    # --------------------------------------------------------------- reads

    def _tags(self, image_id: str) -> builtins.list[str]:
        return [
            str(r["name"])
            for r in self.db.execute(
                "SELECT name FROM image_tags WHERE image_id = ? ORDER BY name", (image_id,)
            )
        ]

    def _layers_with_size(self, image_id: str) -> builtins.list[tuple[str, int]]:
        return [
            (str(r["diffid"]), int(r["size"]))
            for r in self.db.execute(
                "SELECT l.diffid, l.size FROM image_layers il JOIN layer_layers l "
                "ON l.diffid = il.diffid WHERE il.image_id = ? ORDER BY il.position",
                (image_id,),
            )
        ]

    def _record(self, image_id: str) -> ImageRecord:
        row = self.db.execute("SELECT * FROM image_images WHERE id = ?", (image_id,)).fetchone()
        if row is None:
            raise NotFound(f"No such image: {image_id}")
        tags = self._tags(image_id)
        pulled = self._repo_digests(image_id)
        pulled_repos = {d.partition("@")[0] for d in pulled}
        repos = sorted({_repo_of(t) for t in tags} - pulled_repos)
        return ImageRecord(
            id=image_id,
            repo_tags=tags,
            created=float(row["created"]),
            size=int(row["size"]),
            layers=[d for d, _ in self._layers_with_size(image_id)],
            manifest_digest=str(row["manifest_digest"]),
            parent=row["parent"],
            repo_digests=[*pulled, *(f"{r}@{row['manifest_digest']}" for r in repos)],
        )

    def _repo_digests(self, image_id: str) -> builtins.list[str]:
        """`repo@sha256:...` of the registry manifests this image was pulled by."""
        return [
            str(r["name"])
            for r in self.db.execute(
                "SELECT name FROM image_digests WHERE image_id = ? ORDER BY name", (image_id,)
            )
        ]

    def pulled_digests(self, image_id: str) -> builtins.list[str]:
        """The registry digests (`repo@sha256:...`) an image was pulled or pushed as."""
        with self._lock:
            return self._repo_digests(image_id)

    def add_repo_digest(self, image_id: str, name: str) -> None:
        """Remember that `image_id` is `repo@sha256:...` in a registry (after a push)."""
        with self._lock, self.db.transaction() as conn:
            conn.execute(
                "INSERT INTO image_digests (name, image_id) VALUES (?, ?) "
                "ON CONFLICT(name) DO UPDATE SET image_id = excluded.image_id",
                (name, image_id),
            )

    def has_tag(self, name: str, image_id: str) -> bool:
        """Does the familiar `repo:tag` point at `image_id` (a pull that is up to date)?"""
        with self._lock:
            row = self.db.execute(
                "SELECT 1 FROM image_tags WHERE name = ? AND image_id = ?", (name, image_id)
            ).fetchone()
        return row is not None

    def list(self, *, all: bool = True) -> builtins.list[ImageRecord]:
        """Images, newest first.  With all=False, hide untagged images that have
        children (Docker's intermediate images), as `docker images` does."""
        with self._lock:
            ids = [
                str(r["id"])
                for r in self.db.execute("SELECT id FROM image_images ORDER BY created DESC, id")
            ]
            records = [self._record(i) for i in ids]
            if all:
                return records
            parents = {r.parent for r in records if r.parent}
            return [r for r in records if r.repo_tags or r.id not in parents]

    def tags_of(self, image_id: str) -> builtins.list[str]:
        with self._lock:
            return self._tags(image_id)

    def config(self, image_id: str) -> dict[str, Any]:
        """The image's OCI config JSON (`image_id` may be anything resolve takes)."""
        with self._lock:
            return self._read_json_blob(self._lookup(image_id))

    def layer_dirs(self, image_id: str) -> builtins.list[Path]:
        """Unpacked layer directories, bottom -> top (reverse them for lowerdir=)."""
        with self._lock:
            iid = self._lookup(image_id)
            return [self.layer_dir(d) for d, _ in self._layers_with_size(iid)]

    def history(self, s: str) -> builtins.list[dict[str, Any]]:
        """`GET /images/{name}/history`: newest first, one row per history entry."""
        with self._lock:
            image_id = self._lookup(s)
            doc = self._read_json_blob(image_id)
            layers = self._layers_with_size(image_id)
            rows: builtins.list[dict[str, Any]] = []
            n = 0
            for h in doc.get("history", []):
                size = 0
                if not h.get("empty_layer") and n < len(layers):
                    size = layers[n][1]
                    n += 1
                created = h.get("created")
                rows.insert(
                    0,
                    {
                        "Id": "<missing>",
                        "Created": int(oci.parse_rfc3339(created)) if created else 0,
                        "CreatedBy": h.get("created_by", ""),
                        "Tags": None,
                        "Size": size,
                        "Comment": h.get("comment", ""),
                    },
                )
            cur: str | None = image_id
            for row in rows:
                if cur is None:
                    break
                row["Id"] = cur
                row["Tags"] = self._tags(cur) or None
                parent = self.db.execute(
                    "SELECT parent FROM image_images WHERE id = ?", (cur,)
                ).fetchone()
                cur = parent["parent"] if parent is not None else None
            return rows

    def inspect(self, s: str) -> dict[str, Any]:
        """`GET /images/{name}/json` in Docker's shape."""
        with self._lock:
            rec = self._record(self._lookup(s))
            doc = self._read_json_blob(rec.id)
            last_tag = self.db.execute(
                "SELECT last_tag_time FROM image_images WHERE id = ?", (rec.id,)
            ).fetchone()["last_tag_time"]
        c: dict[str, Any] = doc.get("config") or {}
        config: dict[str, Any] = {
            "Hostname": "",
            "Domainname": "",
            "User": c.get("User", ""),
            "AttachStdin": False,
            "AttachStdout": False,
            "AttachStderr": False,
            "Tty": False,
            "OpenStdin": False,
            "StdinOnce": False,
            "Env": c.get("Env"),
            "Cmd": c.get("Cmd"),
            "Image": "",
            "Volumes": c.get("Volumes"),
            "WorkingDir": c.get("WorkingDir", ""),
            "Entrypoint": c.get("Entrypoint"),
            "OnBuild": c.get("OnBuild"),
            "Labels": c.get("Labels"),
        }
        for key in ("ExposedPorts", "StopSignal", "Healthcheck", "Shell", "ArgsEscaped"):
            if c.get(key) is not None:
                config[key] = c[key]
        lowers = [str(self.layer_dir(d)) for d in reversed(rec.layers)]
        out: dict[str, Any] = {
            "Id": rec.id,
            "RepoTags": rec.repo_tags,
            "RepoDigests": rec.repo_digests,
            "Parent": rec.parent or "",
            "Comment": doc.get("comment", ""),
            "Created": doc.get("created", oci.rfc3339_nano(int(rec.created * 1e9))),
            "DockerVersion": "",
            "Author": doc.get("author", ""),
            "Config": config,
            "Architecture": doc.get("architecture", ""),
            "Os": doc.get("os", "linux"),
            "Size": rec.size,
            "GraphDriver": {"Name": "overlay2", "Data": {"LowerDir": ":".join(lowers)}},
            "RootFS": {"Type": "layers", "Layers": rec.layers},
            "Metadata": {
                "LastTagTime": oci.rfc3339_nano(int(last_tag * 1e9))
                if last_tag
                else "0001-01-01T00:00:00Z"
            },
        }
        if doc.get("variant"):
            out["Variant"] = doc["variant"]
        return out

    # -------------------------------------------------------------- delete

    def delete(
        self,
        s: str,
        *,
        force: bool = False,
        in_use: InUse | None = None,
        prune: bool = True,
    ) -> builtins.list[dict[str, str]]:
        """`docker rmi`, with Docker's rules (daemon/images/image_delete.go).

        By tag: untag; if other tags remain that is all.  A tag that is the image's only
        one cannot be removed while a container uses the image unless forced.  By ID:
        an image with several tags needs force; a single tag is removed with it.
        `in_use(image_id)` reports the container using an image (see ImageUser).

        One deliberate difference: a forced removal of an image a container still uses
        untags it but keeps it (dangling) instead of deleting it, because its layer
        directories are that container's lowerdirs.  It goes with a later rmi by ID.
        With `prune`, parents left untagged and childless are deleted too.
        """
        check = in_use or (lambda _id: None)
        with self._lock:
            image_id = self._lookup(s)
            records: builtins.list[dict[str, str]] = []
            tags = self._tags(image_id)
            user = as_user(check(image_id))
            by_id = self._is_id_ref(s, image_id)
            removed_ref = False
            try:
                if not by_id:
                    if not force and len(tags) == 1 and user is not None:
                        raise Conflict(
                            f'conflict: unable to remove repository reference "{s}" '
                            f"(must force) - container {short_id(user.container_id)} "
                            f"is using its referenced image {short_id(image_id)}"
                        )
                    ref = parse(s)
                    pulled = f"{ref.repository}@{ref.digest}"
                    if ref.digest is not None and pulled in self._repo_digests(image_id):
                        # a registry digest reference (Docker's): it alone goes
                        self._drop_digests([pulled], records)
                        if self._tags(image_id) or self._repo_digests(image_id):
                            return records
                        removed_ref = True
                        self._delete_helper(
                            image_id, user, records, force, prune, quiet=True, check=check
                        )
                        return records
                    if ref.digest is not None:
                        names = [t for t in tags if _repo_of(t) == ref.repository]
                    else:
                        names = [ref.name()]
                    self._untag(names, records)
                    if not any(_repo_of(t) == ref.repository for t in self._tags(image_id)):
                        # the repository's last tag: its digest references go too (Docker)
                        self._drop_digests(
                            [d for d in self._repo_digests(image_id)
                             if d.partition("@")[0] == ref.repository],
                            records,
                        )
                    if self._tags(image_id) or self._repo_digests(image_id):
                        return records
                    removed_ref = True
                elif len(tags) == 1:
                    conflict = self._conflict(image_id, user, force=force, refs=False)
                    if conflict is not None:
                        raise conflict
                    self._untag(tags, records)
                self._delete_helper(
                    image_id, user, records, force, prune, quiet=removed_ref, check=check
                )
                return records
            finally:
                self._refresh_index()

    @staticmethod
    def _is_id_ref(s: str, image_id: str) -> bool:
        """Docker's isImageIDPrefix: was the image named by (a prefix of) its ID?"""
        return image_id.removeprefix("sha256:").startswith(s.removeprefix("sha256:")) or (
            image_id.startswith(s)
        )

    def _drop_digests(
        self, names: builtins.list[str], records: builtins.list[dict[str, str]]
    ) -> None:
        with self.db.transaction() as conn:
            for name in names:
                conn.execute("DELETE FROM image_digests WHERE name = ?", (name,))
        records.extend({"Untagged": n} for n in names)

    def _untag(self, names: builtins.list[str], records: builtins.list[dict[str, str]]) -> None:
        with self.db.transaction() as conn:
            for name in names:
                conn.execute("DELETE FROM image_tags WHERE name = ?", (name,))
        records.extend({"Untagged": n} for n in names)

    def _children(self, image_id: str) -> bool:
        return (
            self.db.execute(
                "SELECT 1 FROM image_images WHERE parent = ? LIMIT 1", (image_id,)
            ).fetchone()
            is not None
        )

    def _conflict(
        self, image_id: str, user: ImageUser | None, *, force: bool, refs: bool
    ) -> _Conflict | None:
        """checkImageDeleteConflict: hard conflicts always, soft ones unless forced."""
        if self._children(image_id):
            return _Conflict(image_id, "image has dependent child images", hard=True, used=False)
        if user is not None and user.running:
            msg = f"image is being used by running container {short_id(user.container_id)}"
            return _Conflict(image_id, msg, hard=True, used=True)
        if force:
            return None
        if refs and self._tags(image_id):
            msg = "image is referenced in multiple repositories"
            return _Conflict(image_id, msg, hard=False, used=False)
        if user is not None:
            msg = f"image is being used by stopped container {short_id(user.container_id)}"
            return _Conflict(image_id, msg, hard=False, used=True)
        return None

    def _delete_helper(
        self,
        image_id: str,
        user: ImageUser | None,
        records: builtins.list[dict[str, str]],
        force: bool,
        prune: bool,
        *,
        quiet: bool,
        check: InUse,
    ) -> None:
        conflict = self._conflict(image_id, user, force=force, refs=True)
        if conflict is not None:
            dangling = not self._tags(image_id) and not self._children(image_id)
            if quiet and (not dangling or conflict.used):
                return
            raise conflict
        self._untag(self._tags(image_id), records)
        if user is not None:
            return  # forced, but a container needs its layers: keep it dangling
        row = self.db.execute(
            "SELECT parent, manifest_digest FROM image_images WHERE id = ?", (image_id,)
        ).fetchone()
        parent, manifest = row["parent"], row["manifest_digest"]
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM image_images WHERE id = ?", (image_id,))
            gone = [
                str(r["diffid"])
                for r in conn.execute(
                    "SELECT diffid FROM layer_layers WHERE diffid NOT IN "
                    "(SELECT diffid FROM image_layers)"
                )
            ]
            conn.executemany("DELETE FROM layer_layers WHERE diffid = ?", [(d,) for d in gone])
        records.append({"Deleted": image_id})
        for p in (self._blob_path(image_id), self._blob_path(manifest)):
            _remove_path(p)
        for diffid in gone:
            _remove_path(self.layer_dir(diffid))
            _remove_path(self._blob_path(diffid))
            records.append({"Deleted": diffid})
        if prune and parent:
            exists = self.db.execute(
                "SELECT 1 FROM image_images WHERE id = ?", (parent,)
            ).fetchone()
            if exists is not None:
                with contextlib.suppress(CorralError):
                    parent_user = as_user(check(parent))
                    self._delete_helper(
                        parent, parent_user, records, False, True, quiet=True, check=check
                    )

    # ------------------------------------------------------- save and load
    # For supervisor/images/archive.py: reads hand out blob paths (the caller opens
    # them); `stage_layer` does file work only, so it may run in a worker thread;
    # `add_images` does the rows, inline on the trio thread like every other write.

    def blob_path(self, digest: str) -> Path:
        """Where blob `digest` (a config, manifest or uncompressed layer) is stored."""
        return self._blob_path(digest)

    def export_image(self, s: str) -> ExportedImage:
        """What `docker save` needs of one image: its blobs' digests, tags and config."""
        with self._lock:
            image_id = self._lookup(s)
            row = self.db.execute(
                "SELECT manifest_digest FROM image_images WHERE id = ?", (image_id,)
            ).fetchone()
            return ExportedImage(
                id=image_id,
                manifest_digest=str(row["manifest_digest"]),
                tags=self._tags(image_id),
                config=self._read_json_blob(image_id),
                layers=[d for d, _ in self._layers_with_size(image_id)],
            )

    def tags_in_repository(self, repository: str) -> builtins.list[str]:
        """Every tag of the familiar `repository` (what `docker save busybox` saves)."""
        with self._lock:
            rows = self.db.execute("SELECT name FROM image_tags ORDER BY name").fetchall()
        return [str(r["name"]) for r in rows if _repo_of(str(r["name"])) == repository]

    def layer_ids(self) -> set[str]:
        """The diffids already stored (a loader need not unpack those again)."""
        with self._lock:
            return {str(r["diffid"]) for r in self.db.execute("SELECT diffid FROM layer_layers")}

    def stage_layer(self, tar: Path, diffid: str, workdir: Path) -> StagedLayer:
        """Unpack the verified, uncompressed layer tar `tar` into a new dir in `workdir`
        (under this store's scratch).  Touches no rows: safe in a worker thread."""
        unpack_to = Path(tempfile.mkdtemp(dir=workdir, prefix="layer-"))
        try:
            os.chmod(unpack_to, 0o755)
            size = unpack_layer(tar, unpack_to)
        except BaseException:
            _remove_path(unpack_to)
            raise
        return StagedLayer(diffid=diffid, tar=tar, unpacked=unpack_to, size=size)

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
                        if layer.diffid in sizes:
                            continue
                        row = self.db.execute(
                            "SELECT size FROM layer_layers WHERE diffid = ?", (layer.diffid,)
                        ).fetchone()
                        if row is not None:
                            sizes[layer.diffid] = int(row["size"])
                            continue
                        staged = layer
                        if staged.unpacked is None:  # known when staged, removed since
                            staged = self.stage_layer(layer.tar, layer.diffid, self.tmp)
                        assert staged.unpacked is not None
                        target = self.layer_dir(layer.diffid)
                        _remove_path(target)
                        durable.syncfs(staged.unpacked)  # tree and tar before names, rows
                        durable.rename_into_place(staged.unpacked, target)
                        undo.add(target)
                        blob = self._blob_path(layer.diffid)
                        os.chmod(layer.tar, 0o644)
                        durable.fsync_path(layer.tar)
                        durable.rename_into_place(layer.tar, blob)
                        undo.add(blob)
                        sizes[layer.diffid] = new_layers[layer.diffid] = staged.size
                planned: builtins.list[tuple[NewImage, str, str]] = []
                for img in images:
                    config_digest, config_size = self._put_blob(img.config, undo)
                    manifest = {
                        "schemaVersion": 2,
                        "mediaType": oci.MEDIA_MANIFEST,
                        "config": {
                            "mediaType": oci.MEDIA_CONFIG,
                            "digest": config_digest,
                            "size": config_size,
                        },
                        "layers": [
                            {
                                "mediaType": oci.MEDIA_LAYER,
                                "digest": layer.diffid,
                                "size": self._blob_path(layer.diffid).stat().st_size,
                            }
                            for layer in img.layers
                        ],
                    }
                    manifest_digest, _ = self._put_blob(oci.canonical_json(manifest), undo)
                    planned.append((img, config_digest, manifest_digest))
                added: builtins.list[AddedImage] = []
                with self.db.transaction() as conn:
                    for diffid, lsize in new_layers.items():
                        conn.execute(
                            "INSERT OR IGNORE INTO layer_layers (diffid, size, created) "
                            "VALUES (?, ?, ?)",
                            (diffid, lsize, oci.now_ns() / 1e9),
                        )
                    for img, image_id, manifest_digest in planned:
                        exists = conn.execute(
                            "SELECT 1 FROM image_images WHERE id = ?", (image_id,)
                        ).fetchone()
                        if exists is None:
                            conn.execute(
                                "INSERT INTO image_images "
                                "(id, manifest_digest, parent, created, size) "
                                "VALUES (?, ?, NULL, ?, ?)",
                                (
                                    image_id,
                                    manifest_digest,
                                    img.created,
                                    sum(sizes[layer.diffid] for layer in img.layers),
                                ),
                            )
                            conn.executemany(
                                "INSERT INTO image_layers (image_id, position, diffid) "
                                "VALUES (?, ?, ?)",
                                [(image_id, i, x.diffid) for i, x in enumerate(img.layers)],
                            )
                        moved: builtins.list[tuple[str, str]] = []
                        for name in img.tags:
                            old = conn.execute(
                                "SELECT image_id FROM image_tags WHERE name = ?", (name,)
                            ).fetchone()
                            if old is not None and old["image_id"] != image_id:
                                moved.append((name, str(old["image_id"])))
                            self._set_tag(conn, name, image_id)
                        added.append(AddedImage(image_id, builtins.list(img.tags), moved))
                        for name in img.repo_digests:
                            conn.execute(
                                "INSERT INTO image_digests (name, image_id) VALUES (?, ?) "
                                "ON CONFLICT(name) DO UPDATE SET image_id = excluded.image_id",
                                (name, image_id),
                            )
            except BaseException:
                undo.run()
                raise
            self._refresh_index()
            return added


@dataclass
class ExportedImage:
    """One image as `ImageStore.export_image` hands it to the archive writer."""

    id: str
    manifest_digest: str
    tags: list[str]
    config: dict[str, Any]
    layers: list[str]  # diffids, bottom -> top; each is also the uncompressed blob


@dataclass
class StagedLayer:
    """A verified layer waiting in scratch: its uncompressed tar and, unless the store
    already had it when staged, its unpacked directory and content size."""

    diffid: str
    tar: Path
    unpacked: Path | None = None
    size: int = 0


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
