"""Group commit (issue 18): writes committed without their own fsync share the WAL
fsyncs their callers await (`Database.synced`), and none returns before a sync that
began after its call (so after its commit) has ended."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import trio
import trio.testing

from supervisor.metadata.database import Database


async def test_concurrent_callers_share_fsyncs_and_each_waits_for_one_after_its_commit(
    tmp_path: Path,
) -> None:
    db = Database(tmp_path / "corral.db")
    written = 0  # commits made so far (each caller commits, then awaits synced)
    covered: list[int] = []  # per sync: the commits made when it began
    finished = 0  # syncs ended
    release = threading.Event()
    began = threading.Event()

    def sync_wal() -> None:  # in the worker thread, as the real one
        nonlocal finished
        covered.append(written)
        began.set()
        assert release.wait(10)
        finished += 1

    db.sync_wal = sync_wal  # type: ignore[method-assign]
    returned: dict[int, int] = {}  # caller -> syncs ended when it returned

    async def write(n: int) -> None:
        nonlocal written
        written += 1
        mine = written
        await db.synced()
        returned[n] = finished
        assert any(c >= mine for c in covered[:finished]), f"write {n} returned unsynced"

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(write, 0)  # its sync begins and blocks
            assert await trio.to_thread.run_sync(began.wait, 10)
            for n in (1, 2, 3):  # they commit while that sync runs: it cannot cover them
                nursery.start_soon(write, n)
            await trio.testing.wait_all_tasks_blocked()
            assert returned == {}
            release.set()
    finally:
        db.close()
    assert covered == [1, 4], "one sync for the first write, one shared by the three after"
    assert returned == {0: 1, 1: 2, 2: 2, 3: 2}


async def test_a_failed_sync_fails_its_caller_and_the_next_caller_syncs_again(
    tmp_path: Path,
) -> None:
    db = Database(tmp_path / "corral.db")
    calls: list[str] = []

    def sync_wal() -> None:
        calls.append("sync")
        if len(calls) == 1:
            raise OSError(5, "Input/output error")

    db.sync_wal = sync_wal  # type: ignore[method-assign]
    try:
        with pytest.raises(OSError, match="Input/output error"):
            await db.synced()
        await db.synced()
    finally:
        db.close()
    assert calls == ["sync", "sync"]
