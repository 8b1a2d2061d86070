"""The metadata store: one embedded SQLite database (WAL) under the state root.

Every component that keeps records (images, containers, volumes) keeps them here, in
its own tables, created by that component with `CREATE TABLE IF NOT EXISTS` through
`Database.ensure_schema`.  One connection, owned by the daemon, used from the trio
thread only: statements are short, so they run inline rather than in worker threads.
WAL plus `synchronous=NORMAL` makes a committed row survive a kill -9 of the daemon.
The file is made 0600 before SQLite opens it (its -wal and -shm take the database's
mode): rows hold containers' environments, secrets included.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _make_private(path: Path, *, create: bool) -> None:
    try:
        flags = os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW | (os.O_CREAT if create else 0)
        fd = os.open(path, flags, 0o600)
    except FileNotFoundError:
        return
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


class Database:
    """A thin owner of the daemon's single SQLite connection."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        for name in (path.name, f"{path.name}-wal", f"{path.name}-shm"):
            _make_private(path.with_name(name), create=name == path.name)
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
