"""Image records on the metadata DB: images, their layers, names (tags) and digests.

    image_images   an image: its ID (= config digest), manifest digest, parent, size
    image_layers   its layers by position (what a layer's reference count is derived from)
    image_tags     familiar `repo:tag` -> image
    image_digests  familiar `repo@sha256:<registry manifest>` -> image (RepoDigests)

This is containerd's image service minus the blobs: names and what they point at.
Resolving a user's string (a tag, a digest reference, an ID or a unique short ID) is
here, with Docker's rules, because it is a question about rows.  Every method runs on
the connection it is given, under the owning `ImageStore`'s lock: a write and the reads
that decided it are one critical section.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from supervisor.errors import InvalidArgument, NotFound
from supervisor.images import oci
from supervisor.images.records import ImageRecord
from supervisor.images.reference import (
    Reference,
    is_full_id,
    is_hex_id,
    looks_like_id_prefix,
    parse,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS image_images (
    id              TEXT PRIMARY KEY,          -- sha256:<config digest hex>
    manifest_digest TEXT NOT NULL,
    parent          TEXT,                      -- set by commit (Docker's Parent)
    created         REAL NOT NULL,             -- unix seconds
    size            INTEGER NOT NULL,          -- sum of layer sizes
    last_tag_time   REAL
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


def repo_of(tag_name: str) -> str:
    """`localhost:5000/a:1` -> `localhost:5000/a` (the last colon after the last slash)."""
    slash = tag_name.rfind("/")
    colon = tag_name.rfind(":")
    return tag_name[:colon] if colon > slash else tag_name


def tag_name(ref: str | None) -> str | None:
    """The familiar `repo:tag` a user's reference names (None: no tag wanted)."""
    if ref is None or ref == "":
        return None
    parsed = parse(ref)
    if parsed.digest is not None:
        raise InvalidArgument(f"refusing to create a tag with a digest reference: {ref}")
    return parsed.name()


class ImageDB:
    """The image tables, over one connection (see module doc)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    # ------------------------------------------------------------ lookup

    def lookup(self, s: str) -> str:
        """Resolve anything `docker` accepts as an image to its ID, or NotFound."""
        if s.startswith("sha256:") and is_full_id(s):
            return self._by_id(s, s)
        if is_hex_id(s):
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
            rows = self.conn.execute(
                "SELECT id FROM image_images WHERE substr(id, 8, ?) = ? LIMIT 2",
                (len(prefix), prefix),
            ).fetchall()
            if len(rows) == 1:
                return str(rows[0]["id"])
            if len(rows) > 1:
                raise NotFound(f"No such image: {s} (ambiguous short ID)")
        shown = s if ref is None or ref.digest is not None else ref.name()
        raise NotFound(f"No such image: {shown}")

    def exists(self, image_id: str) -> bool:
        row = self.conn.execute("SELECT 1 FROM image_images WHERE id = ?", (image_id,))
        return row.fetchone() is not None

    def _by_id(self, image_id: str, shown: str) -> str:
        if not self.exists(image_id):
            raise NotFound(f"No such image: {shown}")
        return image_id

    def _by_ref(self, ref: Reference) -> str | None:
        if ref.digest is not None:
            pulled = self.conn.execute(
                "SELECT image_id FROM image_digests WHERE name = ?",
                (f"{ref.repository}@{ref.digest}",),
            ).fetchone()
            if pulled is not None:
                return str(pulled["image_id"])
            # name@digest: the manifest digest of an image tagged in that repository.
            for r in self.conn.execute(
                "SELECT i.id, t.name FROM image_images i JOIN image_tags t ON t.image_id = i.id "
                "WHERE i.manifest_digest = ?",
                (ref.digest,),
            ):
                if repo_of(r["name"]) == ref.repository:
                    return str(r["id"])
            return None
        row = self.conn.execute(
            "SELECT image_id FROM image_tags WHERE name = ?", (ref.name(),)
        ).fetchone()
        return None if row is None else str(row["image_id"])

    # ------------------------------------------------------------- reads

    def tags(self, image_id: str) -> list[str]:
        return [
            str(r["name"])
            for r in self.conn.execute(
                "SELECT name FROM image_tags WHERE image_id = ? ORDER BY name", (image_id,)
            )
        ]

    def all_tags(self) -> list[str]:
        rows = self.conn.execute("SELECT name FROM image_tags ORDER BY name")
        return [str(r["name"]) for r in rows]

    def has_tag(self, name: str, image_id: str) -> bool:
        row = self.conn.execute(
            "SELECT 1 FROM image_tags WHERE name = ? AND image_id = ?", (name, image_id)
        ).fetchone()
        return row is not None

    def repo_digests(self, image_id: str) -> list[str]:
        """`repo@sha256:...` of the registry manifests this image was pulled by."""
        return [
            str(r["name"])
            for r in self.conn.execute(
                "SELECT name FROM image_digests WHERE image_id = ? ORDER BY name", (image_id,)
            )
        ]

    def layers_with_size(self, image_id: str) -> list[tuple[str, int]]:
        return [
            (str(r["diffid"]), int(r["size"]))
            for r in self.conn.execute(
                "SELECT l.diffid, l.size FROM image_layers il JOIN layer_layers l "
                "ON l.diffid = il.diffid WHERE il.image_id = ? ORDER BY il.position",
                (image_id,),
            )
        ]

    def row(self, image_id: str) -> sqlite3.Row:
        row = self.conn.execute("SELECT * FROM image_images WHERE id = ?", (image_id,)).fetchone()
        if row is None:
            raise NotFound(f"No such image: {image_id}")
        result: sqlite3.Row = row
        return result

    def record(self, image_id: str) -> ImageRecord:
        row = self.row(image_id)
        tags = self.tags(image_id)
        pulled = self.repo_digests(image_id)
        pulled_repos = {d.partition("@")[0] for d in pulled}
        repos = sorted({repo_of(t) for t in tags} - pulled_repos)
        return ImageRecord(
            id=image_id,
            repo_tags=tags,
            created=float(row["created"]),
            size=int(row["size"]),
            layers=[d for d, _ in self.layers_with_size(image_id)],
            manifest_digest=str(row["manifest_digest"]),
            parent=row["parent"],
            repo_digests=[*pulled, *(f"{r}@{row['manifest_digest']}" for r in repos)],
        )

    def ids(self) -> list[str]:
        """Image IDs, newest first."""
        return [
            str(r["id"])
            for r in self.conn.execute("SELECT id FROM image_images ORDER BY created DESC, id")
        ]

    def has_children(self, image_id: str) -> bool:
        row = self.conn.execute(
            "SELECT 1 FROM image_images WHERE parent = ? LIMIT 1", (image_id,)
        ).fetchone()
        return row is not None

    def index_rows(self) -> tuple[list[sqlite3.Row], dict[str, list[str]]]:
        """Images oldest first and their tags: what index.json is made from."""
        images = self.conn.execute(
            "SELECT id, manifest_digest FROM image_images ORDER BY created, id"
        ).fetchall()
        tags: dict[str, list[str]] = {}
        for r in self.conn.execute("SELECT name, image_id FROM image_tags ORDER BY name"):
            tags.setdefault(r["image_id"], []).append(r["name"])
        return images, tags

    def keep_hexes(self) -> set[str]:
        """Config and manifest blobs the records reference (the sweep keeps them)."""
        keep: set[str] = set()
        for r in self.conn.execute("SELECT id, manifest_digest FROM image_images"):
            keep.add(oci.hex_of(r["id"]))
            keep.add(oci.hex_of(r["manifest_digest"]))
        return keep

    # ------------------------------------------- writes (inside a transaction)

    @staticmethod
    def add(conn: sqlite3.Connection, *, image_id: str, manifest_digest: str,
            parent: str | None, created: float, size: int, layers: list[str]) -> bool:
        """Insert an image and its layer list unless it exists: True if new."""
        exists = conn.execute("SELECT 1 FROM image_images WHERE id = ?", (image_id,)).fetchone()
        if exists is not None:
            return False
        conn.execute(
            "INSERT INTO image_images (id, manifest_digest, parent, created, size) "
            "VALUES (?, ?, ?, ?, ?)",
            (image_id, manifest_digest, parent, created, size),
        )
        conn.executemany(
            "INSERT INTO image_layers (image_id, position, diffid) VALUES (?, ?, ?)",
            [(image_id, i, d) for i, d in enumerate(layers)],
        )
        return True

    @staticmethod
    def set_tag(conn: sqlite3.Connection, name: str, image_id: str) -> str | None:
        """Point `name` at `image_id`; the image it pointed at before, if another."""
        old = conn.execute("SELECT image_id FROM image_tags WHERE name = ?", (name,)).fetchone()
        conn.execute(
            "INSERT INTO image_tags (name, image_id) VALUES (?, ?) "
            "ON CONFLICT(name) DO UPDATE SET image_id = excluded.image_id",
            (name, image_id),
        )
        conn.execute(
            "UPDATE image_images SET last_tag_time = ? WHERE id = ?", (oci.now_ns() / 1e9, image_id)
        )
        if old is not None and old["image_id"] != image_id:
            return str(old["image_id"])
        return None

    @staticmethod
    def set_digest(conn: sqlite3.Connection, name: str, image_id: str) -> None:
        conn.execute(
            "INSERT INTO image_digests (name, image_id) VALUES (?, ?) "
            "ON CONFLICT(name) DO UPDATE SET image_id = excluded.image_id",
            (name, image_id),
        )

    @staticmethod
    def untag(conn: sqlite3.Connection, names: list[str]) -> None:
        conn.executemany("DELETE FROM image_tags WHERE name = ?", [(n,) for n in names])

    @staticmethod
    def drop_digests(conn: sqlite3.Connection, names: list[str]) -> None:
        conn.executemany("DELETE FROM image_digests WHERE name = ?", [(n,) for n in names])

    @staticmethod
    def remove(conn: sqlite3.Connection, image_id: str) -> None:
        conn.execute("DELETE FROM image_images WHERE id = ?", (image_id,))


def index_entries(images: list[sqlite3.Row], tags: dict[str, list[str]],
                  size_of: Any) -> list[dict[str, Any]]:
    """index.json's manifests: one entry per tag, plus one per untagged image."""
    manifests: list[dict[str, Any]] = []
    for img in images:
        digest = img["manifest_digest"]
        desc: dict[str, Any] = {
            "mediaType": oci.MEDIA_MANIFEST,
            "digest": digest,
            "size": size_of(digest),
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
    return manifests
