"""The record of each running container's init: (pid, start time), for live restore
(`engine/restore.py` checks a held init against it before adopting it)."""

from __future__ import annotations

from supervisor.metadata.database import Database


class InitStore:
    """The init each running container's holder parents: (pid, start time)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # Both without the WAL fsync (`durable=False`): the record serves a daemon that
    # was killed or restarted while the machine ran on (a committed WAL frame is in
    # the page cache then, fsynced or not); no init outlives a power cut, so its
    # loss there costs nothing.  The start's record of the container itself (FULL)
    # comes next and fsyncs the WAL with this frame in it: one fsync per start, not two.
    def record(self, cid: str, pid: int, start: int) -> None:
        self.db.persist(f"init:{cid}",
                        "INSERT OR REPLACE INTO container_inits (id, pid, start_ticks) "
                        "VALUES (?, ?, ?)", (cid, pid, start), durable=False)

    def drop(self, cid: str) -> None:
        self.db.persist(f"init:{cid}", "DELETE FROM container_inits WHERE id = ?", (cid,),
                        durable=False)

    def get(self, cid: str) -> tuple[int, int] | None:
        row = self.db.execute("SELECT pid, start_ticks FROM container_inits WHERE id = ?",
                              (cid,)).fetchone()
        return None if row is None else (int(row[0]), int(row[1]))
