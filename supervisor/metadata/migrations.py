"""Numbered schema changes of the metadata database (`PRAGMA user_version`).

Tables are still created by their components (`CREATE TABLE IF NOT EXISTS` through
`Database.ensure_schema`): that is version 0, every database made before this list
existed.  A change to the schema of a database that may already exist is a step
here, never an edit of a component's DDL: step N takes a database at version N-1 to
N, in one transaction with the version bump, so a kill -9 mid-migration leaves the
old version whole.  A database newer than this list is refused (its reader would
not know its columns), by name.

Steps must work on any version-0 database, including one a component has not yet
created its tables in (a fresh file): they only create what they own, or check
first.
"""

from __future__ import annotations

#: (version, why, SQL).  Append only; never edit a step that has shipped.
MIGRATIONS: tuple[tuple[int, str, str], ...] = (
    (
        1,
        "live restore: the init each running container's holder parents, with its "
        "start time (/proc/PID/stat field 22), so a new daemon adopts that process "
        "and never another that reused its pid",
        """
        CREATE TABLE IF NOT EXISTS container_inits (
            id          TEXT PRIMARY KEY,
            pid         INTEGER NOT NULL,
            start_ticks INTEGER NOT NULL
        );
        """,
    ),
)

LATEST = MIGRATIONS[-1][0] if MIGRATIONS else 0
