"""Where a layer came from: its compressed blob digest in a registry repository; and
the image manifests as pulled, byte for byte.

Docker keeps the same (its v2metadata): the store holds layers uncompressed, so a push
would otherwise compress again and get new digests.  With these rows a push of a pulled
image finds the registry's own blobs (HEAD, or a cross-repository mount on the same
registry), and the pushed manifest is the one that was pulled.  Rows are hints: a stale
one costs one HEAD.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from supervisor.metadata.database import Database

SCHEMA = """
CREATE TABLE IF NOT EXISTS distribution_layer_sources (
    diffid     TEXT NOT NULL,                  -- the uncompressed layer (store's key;
                                               -- a config blob's own digest: pushed)
    digest     TEXT NOT NULL,                  -- its compressed blob in the registry
    media_type TEXT NOT NULL,
    size       INTEGER NOT NULL,
    repository TEXT NOT NULL,                  -- domain/path it was seen in
    PRIMARY KEY (diffid, digest, repository)
);
CREATE TABLE IF NOT EXISTS distribution_manifests (
    digest     TEXT PRIMARY KEY,               -- the image manifest as pulled
    image_id   TEXT NOT NULL,
    media_type TEXT NOT NULL,
    body       BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS distribution_manifests_by_image ON distribution_manifests(image_id);
"""


@dataclass(frozen=True)
class Source:
    diffid: str
    digest: str
    media_type: str
    size: int
    repository: str  # domain/path

    @property
    def domain(self) -> str:
        return self.repository.partition("/")[0]

    @property
    def path(self) -> str:
        return self.repository.partition("/")[2]


def insert(conn: sqlite3.Connection, sources: list[Source]) -> None:
    """The rows, in the caller's transaction (a push writes them with its repo digest)."""
    conn.executemany(
        "INSERT OR IGNORE INTO distribution_layer_sources "
        "(diffid, digest, media_type, size, repository) VALUES (?, ?, ?, ?, ?)",
        [(s.diffid, s.digest, s.media_type, s.size, s.repository) for s in sources],
    )


class LayerSources:
    def __init__(self, db: Database) -> None:
        self.db = db
        db.ensure_schema(SCHEMA)

    def add(self, sources: list[Source]) -> None:
        with self.db.transaction() as conn:
            insert(conn, sources)

    def of(self, diffid: str) -> list[Source]:
        return [
            Source(str(r["diffid"]), str(r["digest"]), str(r["media_type"]), int(r["size"]),
                   str(r["repository"]))
            for r in self.db.execute(
                "SELECT * FROM distribution_layer_sources WHERE diffid = ? ORDER BY rowid",
                (diffid,),
            )
        ]

    def add_manifest(self, digest: str, image_id: str, media_type: str, body: bytes) -> None:
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO distribution_manifests (digest, image_id, media_type, "
                "body) VALUES (?, ?, ?, ?)",
                (digest, image_id, media_type, body),
            )

    def manifest(self, digest: str) -> tuple[str, bytes] | None:
        """(media type, body) of the manifest pulled as `digest`, if stored."""
        for r in self.db.execute(
            "SELECT media_type, body FROM distribution_manifests WHERE digest = ?", (digest,)
        ):
            return str(r["media_type"]), bytes(r["body"])
        return None

    def manifests(self, image_id: str) -> list[tuple[str, bytes]]:
        """(media type, body) of the manifests `image_id` was pulled by."""
        return [
            (str(r["media_type"]), bytes(r["body"]))
            for r in self.db.execute(
                "SELECT media_type, body FROM distribution_manifests WHERE image_id = ?",
                (image_id,),
            )
        ]
