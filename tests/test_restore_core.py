"""Live restore's pure parts and its schema step (no daemon, no containers).

- `refusal`: which held init a new daemon may adopt: only the recorded one, by pid
  and start time, so a pid the kernel gave to another process is never adopted.
- the metadata database's numbered migrations (`PRAGMA user_version`): a database
  from before them (version 0, as every earlier corral made it) is brought to the
  newest version with its rows intact; a newer one is refused by name; a failing
  step leaves the old version whole.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from supervisor.engine import migrations
from supervisor.engine.containers import Container, ContainerStore
from supervisor.engine.metadata import Database
from supervisor.engine.restore import InitStore, refusal
from supervisor.engine.state import Status
from supervisor.errors import CorralError

# The containers table as every corral before migrations made it (version 0).
V0_SCHEMA = """
CREATE TABLE containers (
    id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, image_id TEXT NOT NULL,
    created TEXT NOT NULL, record TEXT NOT NULL
);
"""


def test_the_recorded_init_is_adopted() -> None:
    assert refusal(Status.RUNNING, 42, (42, 1000), (42, 1000), False, 1000) == ""
    assert refusal(Status.PAUSED, 42, (42, 1000), (42, 1000), False, 1000) == ""


def test_a_reused_pid_is_never_adopted() -> None:
    why = refusal(Status.RUNNING, 42, (42, 1000), (42, 1000), False, 5000)
    assert "another process" in why
    assert "another process" in refusal(Status.RUNNING, 42, (42, 1000), (42, 1000), False, 0)


def test_an_exited_init_is_adopted_for_its_status_only_if_it_is_the_recorded_one() -> None:
    assert refusal(Status.RUNNING, 42, (42, 1000), (42, 1000), True, 0) == ""
    assert refusal(Status.RUNNING, 42, (42, 999), (42, 1000), True, 0) != ""


def test_what_the_record_does_not_say_is_refused() -> None:
    assert "exited" in refusal(Status.EXITED, 0, (42, 1000), (42, 1000), False, 1000)
    assert "no init" in refusal(Status.RUNNING, 42, None, (42, 1000), False, 1000)
    assert refusal(Status.RUNNING, 41, (42, 1000), (42, 1000), False, 1000) != ""
    assert refusal(Status.RUNNING, 42, (43, 1000), (42, 1000), False, 1000) != ""


def _version(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])


def test_a_new_database_is_at_the_newest_version(tmp_path: Path) -> None:
    db = Database(tmp_path / "corral.db", reserve_bytes=0)
    assert db.version == migrations.LATEST >= 1
    InitStore(db).record("c1", 42, 1000)
    assert InitStore(db).get("c1") == (42, 1000)
    db.close()


@pytest.mark.parametrize("version", range(migrations.LATEST))
def test_every_earlier_version_is_migrated_with_its_rows(tmp_path: Path, version: int) -> None:
    path = tmp_path / "corral.db"
    conn = sqlite3.connect(path)
    conn.executescript(V0_SCHEMA)
    for number, _why, sql in migrations.MIGRATIONS:
        if number <= version:
            conn.executescript(sql)
    conn.execute(f"PRAGMA user_version = {version}")
    old = Container("c1", "old", "sha256:x", "busybox", "2026-01-01T00:00:00Z", "sh", [],
                    {}, {})
    conn.execute("INSERT INTO containers VALUES ('c1', 'old', 'sha256:x', '2026-01-01', ?)",
                 (old.to_json(),))
    conn.commit()
    conn.close()
    db = Database(path, reserve_bytes=0)
    assert db.version == migrations.LATEST
    assert [c.name for c in ContainerStore(db).all()] == ["old"]
    assert InitStore(db).get("c1") is None
    InitStore(db).record("c1", 7, 8)
    db.close()
    assert _version(path) == migrations.LATEST


def test_a_newer_database_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "corral.db"
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {migrations.LATEST + 1}")
    with pytest.raises(CorralError, match=r"corral\.db: schema version \d+ is newer"):
        Database(path, reserve_bytes=0)


def test_a_failing_step_leaves_the_old_version_whole(tmp_path: Path) -> None:
    db = Database(tmp_path / "corral.db", reserve_bytes=0)
    steps = (*migrations.MIGRATIONS,
             (migrations.LATEST + 1, "half", "CREATE TABLE half (x); SELECT nosuch FROM half"))
    with pytest.raises(sqlite3.OperationalError):
        db.migrate(steps)
    assert db.version == migrations.LATEST
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "half" not in tables
    db.close()
