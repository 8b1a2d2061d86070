"""`open_engine`: the engine owns its nursery, and the order it ends in is its own.

Left normally: containers stopped first (`shutdown`), then every task in the
engine's nursery cancelled, then the stores closed.  Left by an error: nothing is
stopped (a crash leaves the containers to the holder, a live restore), the tasks
end, and the stores still close.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import trio
import trio.testing

from supervisor.engine.engine import Engine, open_engine


def _watch(engine: Engine, order: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    async def task() -> None:
        try:
            await trio.sleep_forever()
        finally:
            order.append("tasks cancelled")

    async def shutdown() -> None:
        engine.db.execute("SELECT 1")  # the database is still open while it stops them
        order.append("containers stopped")

    engine.nursery.start_soon(task)
    monkeypatch.setattr(engine, "shutdown", shutdown)


def _closed(engine: Engine) -> bool:
    try:
        engine.db.execute("SELECT 1")
    except sqlite3.ProgrammingError:
        return True
    return False


async def test_leaving_stops_containers_then_cancels_tasks_then_closes_stores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    order: list[str] = []
    async with open_engine(tmp_path / "root") as engine:
        _watch(engine, order, monkeypatch)
        await trio.testing.wait_all_tasks_blocked()
        assert not _closed(engine)
    assert order == ["containers stopped", "tasks cancelled"]
    assert _closed(engine)


async def test_an_error_stops_nothing_but_still_ends_tasks_and_closes_stores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    order: list[str] = []
    failed = False
    try:
        async with open_engine(tmp_path / "root") as engine:
            _watch(engine, order, monkeypatch)
            await trio.testing.wait_all_tasks_blocked()
            raise RuntimeError("the API failed")
    except* RuntimeError:
        failed = True
    assert failed
    assert order == ["tasks cancelled"]
    assert _closed(engine)
