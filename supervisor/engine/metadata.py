"""The metadata store: one embedded SQLite database (WAL) under the state root.

Every component that keeps records (images, containers, volumes) keeps them here, in
its own tables, created by that component with `CREATE TABLE IF NOT EXISTS` through
`Database.ensure_schema`.  One connection, owned by the daemon, used from the trio
thread only: statements are short, so they run inline rather than in worker threads.
WAL plus `synchronous=NORMAL` makes a committed row survive a kill -9 of the daemon.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class Database:
    """A thin owner of the daemon's single SQLite connection."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("PRAGMA foreign_keys=ON")

    def ensure_schema(self, ddl: str) -> None:
        """Run a component's `CREATE TABLE IF NOT EXISTS ...` script."""
        self.conn.executescript(ddl)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """All-or-nothing: a failure inside leaves no row behind."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        else:
            self.conn.execute("COMMIT")

    def execute(
        self, sql: str, params: tuple[object, ...] | dict[str, object] = ()
    ) -> sqlite3.Cursor:
        return self.conn.execute(sql, params)

    def close(self) -> None:
        self.conn.close()
