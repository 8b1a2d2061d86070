"""The layer store: each layer unpacked once, by diff ID, shared by every image using it.

    layers/<diffid-hex>/   the layer in overlayfs format (whiteouts as 0/0 char devices),
                           an overlay lowerdir for every container of every image
                           that has it

A layer's tar (uncompressed, so its blob digest is its diff ID) is kept in the content
store beside it, for `docker save` and push.  Rows: `layer_layers` (diff ID, content
size); a layer's reference count is never stored but derived from `image_layers`, so it
cannot drift, and `unreferenced` names what the last image's removal freed.

Unpacking is the slow part and touches no rows, so it runs in worker threads outside
the store's lock, into scratch (`stage`, `stage_stream`, `prepare_from_upper`); only
`install` (a rename) runs under it.  `stage_stream` is the pull's one pass over a
layer's bytes: as they arrive they are hashed (compressed digest), decompressed,
hashed again (diff ID), written as the layer's tar and unpacked, all at once.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from supervisor import durable
from supervisor.images import oci, unpackd
from supervisor.images.compression import BlobDecoder as BlobDecoder  # re-exported
from supervisor.images.content import ContentStore, sweep_path
from supervisor.images.diff import write_layer_from_upper
from supervisor.images.tarsafe import unpack_layer
from supervisor.rmtree import remove_tree

_CHUNK = 1 << 20

SCHEMA = """
CREATE TABLE IF NOT EXISTS layer_layers (
    diffid  TEXT PRIMARY KEY,                  -- sha256 of the uncompressed tar = blob
    size    INTEGER NOT NULL,                  -- bytes of regular-file content
    created REAL NOT NULL
);
"""


@dataclass
class StagedLayer:
    """A verified layer waiting in scratch: its uncompressed tar and, unless the store
    already had it when staged, its unpacked directory and content size."""

    diffid: str
    tar: Path
    unpacked: Path | None = None
    size: int = 0


@dataclass(frozen=True)
class PreparedLayer:
    """A commit's layer in scratch: its tar, diff ID and unpacked tree
    (`LayerStore.prepare_from_upper`)."""

    tar: Path
    diffid: str
    unpacked: Path
    size: int

    def discard(self) -> None:
        """Remove what was not stored (once stored the tar is the blob and the tree
        the layer directory: nothing is left here)."""
        self.tar.unlink(missing_ok=True)
        if os.path.lexists(self.unpacked):
            remove_tree(self.unpacked)


class LayerSource(Protocol):
    """Compressed bytes as they arrive (b"" at the end); called from a worker thread."""

    def __call__(self) -> bytes: ...


class LayerStore:
    """Layer directories under `root`, their tars in `content`."""

    def __init__(self, root: Path, content: ContentStore) -> None:
        self.root = root
        self.content = content
        root.mkdir(parents=True, exist_ok=True)

    def dir(self, diffid: str) -> Path:
        """Where layer `diffid` is unpacked (an overlay lowerdir)."""
        return self.root / oci.hex_of(diffid)

    # ---------------------------------------------------------- rows (locked)

    @staticmethod
    def size_of(conn: sqlite3.Connection, diffid: str) -> int | None:
        row = conn.execute("SELECT size FROM layer_layers WHERE diffid = ?", (diffid,)).fetchone()
        return None if row is None else int(row["size"])

    @staticmethod
    def ids(conn: sqlite3.Connection) -> set[str]:
        return {str(r["diffid"]) for r in conn.execute("SELECT diffid FROM layer_layers")}

    @staticmethod
    def sizes(conn: sqlite3.Connection) -> dict[str, int]:
        return {
            str(r["diffid"]): int(r["size"])
            for r in conn.execute("SELECT diffid, size FROM layer_layers")
        }

    @staticmethod
    def record(conn: sqlite3.Connection, layers: dict[str, int], created: float) -> None:
        for diffid, size in layers.items():
            conn.execute(
                "INSERT OR IGNORE INTO layer_layers (diffid, size, created) VALUES (?, ?, ?)",
                (diffid, size, created),
            )

    @staticmethod
    def unreferenced(conn: sqlite3.Connection) -> list[str]:
        """Drop the rows of layers no image uses any more; their diff IDs (the caller
        removes their files after the transaction commits)."""
        gone = [
            str(r["diffid"])
            for r in conn.execute(
                "SELECT diffid FROM layer_layers WHERE diffid NOT IN "
                "(SELECT diffid FROM image_layers)"
            )
        ]
        conn.executemany("DELETE FROM layer_layers WHERE diffid = ?", [(d,) for d in gone])
        return gone

    # ------------------------------------------------- files (any thread)

    def install(self, layer: StagedLayer, undo: Callable[[Path], None]) -> None:
        """Move a staged layer's tree and tar into place (before its row commits)."""
        assert layer.unpacked is not None
        target = self.dir(layer.diffid)
        remove_tree(target)  # an orphan from a crash; the sweep would have taken it
        durable.rename_into_place(layer.unpacked, target)
        undo(target)
        if self.content.commit_file(layer.tar, layer.diffid):
            undo(self.content.path(layer.diffid))

    def remove(self, diffid: str) -> None:
        remove_tree(self.dir(diffid))
        self.content.remove(diffid)

    def sweep(self, known: set[str]) -> None:
        for p in self.root.iterdir():
            if p.name not in known:
                sweep_path(p)

    def stage(self, tar: Path, diffid: str, workdir: Path) -> StagedLayer:
        """Unpack the verified, uncompressed layer tar `tar` into a new dir in `workdir`
        and flush it to disk.  Touches no rows: for a worker thread."""
        unpack_to = unpackd.new_dir(workdir)
        try:
            size = unpack_layer(tar, unpack_to)
            durable.syncfs(unpack_to)  # tree and tar on disk before their names and rows
        except BaseException:
            remove_tree(unpack_to)
            raise
        return StagedLayer(diffid=diffid, tar=tar, unpacked=unpack_to, size=size)

    def stage_stream(
        self,
        source: LayerSource,
        *,
        decoder: BlobDecoder | None,
        diffid: str,
        workdir: Path,
    ) -> StagedLayer:
        """A layer in one pass, in this process (`unpackd.stage_stream`; a pull runs
        the same in a layer worker process, `unpacker`).  With a `decoder`, `source`
        gives the blob's bytes and they are checked and decompressed here; without
        one, the tar already decoded.  The diff ID is checked before anything is kept;
        a failure leaves nothing in `workdir`."""
        tar, unpacked, size = unpackd.stage_stream(source, decoder=decoder, diffid=diffid,
                                                   workdir=workdir)
        return StagedLayer(diffid=diffid, tar=tar, unpacked=unpacked, size=size)

    def prepare_from_upper(self, upper: Path) -> PreparedLayer | None:
        """A commit's slow part: the upperdir's layer tar written to scratch, hashed and
        unpacked (None for an empty upperdir).  The engine runs it in a worker thread
        while the container is paused."""
        if not any(upper.iterdir()):
            return None
        fd, name = tempfile.mkstemp(dir=self.content.tmp, prefix="blob-")
        scratch = Path(name)
        try:
            with os.fdopen(fd, "wb") as out:
                write_layer_from_upper(upper, out)
            h = hashlib.sha256()
            with open(scratch, "rb") as f:
                while chunk := f.read(_CHUNK):
                    h.update(chunk)
            staged = self.stage(scratch, "sha256:" + h.hexdigest(), self.content.tmp)
        except BaseException:
            scratch.unlink(missing_ok=True)
            raise
        assert staged.unpacked is not None
        return PreparedLayer(scratch, staged.diffid, staged.unpacked, staged.size)
