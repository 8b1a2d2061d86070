"""The build cache: which image a step produced, by what went into it.

A step's key is a digest of its parent image ID (which, through the parent's own key,
stands for the whole chain of steps before it), the instruction after substitution,
and what else the result depends on: the content checksums of copied files (never their
mtimes), the build-time ARG values a RUN sees, the ID of a `COPY --from` image.  An
unchanged rebuild therefore finds every step; a changed source file misses at its COPY
and, because the new layer gets a new image ID, at every step after it.

Rows live in the daemon's SQLite database, in this module's own table.  A row whose
image was removed (`rmi`) is dropped when found stale, so the cache never resurrects
a deleted image.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

from supervisor.metadata.database import Database

SCHEMA = """
CREATE TABLE IF NOT EXISTS build_cache (
    key      TEXT PRIMARY KEY,              -- sha256 of (parent, step, inputs)
    image_id TEXT NOT NULL,
    created  REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS build_cache_by_image ON build_cache(image_id);
"""


def cache_key(parent: str | None, step: dict[str, Any]) -> str:
    """Digest of the parent image and a JSON-able description of the step (pure)."""
    doc = json.dumps({"parent": parent or "scratch", "step": step}, sort_keys=True)
    return "sha256:" + hashlib.sha256(doc.encode()).hexdigest()


class BuildCache:
    def __init__(self, db: Database) -> None:
        self.db = db
        db.ensure_schema(SCHEMA)

    def get(self, key: str, exists: Any) -> str | None:
        """The image ID stored under `key`, if `exists(image_id)` still says so."""
        row = self.db.execute("SELECT image_id FROM build_cache WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        image_id = str(row["image_id"])
        if not exists(image_id):
            self.db.execute("DELETE FROM build_cache WHERE key = ?", (key,))
            return None
        return image_id

    def put(self, key: str, image_id: str) -> None:
        self.db.execute(
            "INSERT INTO build_cache (key, image_id, created) VALUES (?, ?, ?) "
            "ON CONFLICT(key) DO UPDATE SET image_id = excluded.image_id, "
            "created = excluded.created",
            (key, image_id, time.time()),
        )

    def forget(self, image_id: str) -> None:
        self.db.execute("DELETE FROM build_cache WHERE image_id = ?", (image_id,))
