"""The metadata store on a full disk (issue 12, item 4), without a daemon: a record's
write gives back the reserve, else is held and written once there is room, by the
next write or by the retry task; any other write fails with DiskFull."""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio
import trio.testing

from supervisor.metadata.database import RETRY_FIRST, Database, DiskFull

BIG = "x" * (512 * 1024)  # needs WAL pages the file does not have yet


def fill(path: Path) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for size in (1 << 20, 4096, 512):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)


@pytest.fixture
def small(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("needs root (a tmpfs mount)")
    fs = tmp_path / "fs"
    fs.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(fs)], check=True)
    try:
        yield fs
    finally:
        subprocess.run(["umount", str(fs)], check=True)


def open_db(fs: Path, reserve: int) -> Database:
    db = Database(fs / "corral.db", reserve_bytes=reserve)
    db.ensure_schema("CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY, v TEXT);")
    db.execute("INSERT INTO t VALUES ('a', ''), ('b', '')")
    return db


def value(db: Database, k: str) -> str:
    return str(db.execute("SELECT v FROM t WHERE k = ?", (k,)).fetchone()[0])


def test_the_reserve_takes_the_write_a_full_disk_refuses(small: Path) -> None:
    db = open_db(small, 2 * 1024 * 1024)
    assert (small / "reserve").stat().st_size == 2 * 1024 * 1024
    fill(small / "ballast")
    with pytest.raises(DiskFull, match="no space left on device"):
        db.execute("UPDATE t SET v = ? WHERE k = 'b'", (BIG,))
    assert db.persist("a", "UPDATE t SET v = ? WHERE k = 'a'", (BIG,))
    assert not (small / "reserve").exists()
    assert value(db, "a") == BIG
    (small / "ballast").unlink()
    db.persist("a", "UPDATE t SET v = 'again' WHERE k = 'a'")
    assert (small / "reserve").exists(), "the reserve is made again once there is room"
    db.close()


def test_held_writes_land_by_the_next_write_latest_per_key(small: Path) -> None:
    db = open_db(small, 0)
    fill(small / "ballast")
    assert not db.persist("a", "UPDATE t SET v = ? WHERE k = 'a'", ("old" + BIG,))
    assert not db.persist("a", "UPDATE t SET v = ? WHERE k = 'a'", ("new" + BIG,))
    assert not db.persist("b", "UPDATE t SET v = ? WHERE k = 'b'", ("b" + BIG,))
    assert db.pending == 2
    assert value(db, "a") == ""
    (small / "ballast").unlink()
    db.execute("INSERT INTO t VALUES ('c', '')")
    assert db.pending == 0
    assert value(db, "a") == "new" + BIG
    assert value(db, "b") == "b" + BIG
    db.close()


def test_held_writes_land_by_the_retry_task(small: Path) -> None:
    db = open_db(small, 0)

    async def main() -> None:
        async with trio.open_nursery() as n:
            n.start_soon(db.keep_pending)
            await trio.testing.wait_all_tasks_blocked()
            fill(small / "ballast")
            assert not db.persist("a", "UPDATE t SET v = ? WHERE k = 'a'", (BIG,))
            await trio.sleep(RETRY_FIRST * 1.5)  # virtual time: a retry found no room
            assert db.pending == 1
            (small / "ballast").unlink()
            await trio.sleep(RETRY_FIRST * 2)  # the next retry, backed off, writes it
            assert db.pending == 0
            n.cancel_scope.cancel()

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert value(db, "a") == BIG
    db.close()
