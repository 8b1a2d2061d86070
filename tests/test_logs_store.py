"""The json-file log on real files: rotation, reading across rotated files, followers."""

from __future__ import annotations

import json
import os
import random
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import trio

from supervisor.engine.timefmt import rfc3339_nano
from supervisor.supervise import logs as logs_mod
from supervisor.supervise.framing import MAX_LINE, LineFramer, LogEntry
from supervisor.supervise.logs import ContainerLog, LogOptions

T0 = 1_714_557_600  # 2024-05-01T10:00:00Z


class FakeClock:
    """Record times the test chooses: one second per `tick`."""

    def __init__(self) -> None:
        self.sec = T0

    def now(self) -> str:
        return rfc3339_nano(self.sec * 1_000_000_000)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(logs_mod, "_clock", fake)
    return fake


def new_log(tmp_path: Path, max_size: int = -1, max_file: int = 1) -> ContainerLog:
    log = ContainerLog(tmp_path / "abc-json.log")
    log.open_writer(LogOptions(max_size, max_file))
    return log


def numbered(i: int) -> bytes:
    return b"line %05d\n" % i


def datas(entries: Iterator[LogEntry] | list[LogEntry]) -> list[bytes]:
    return [e.data for e in entries]


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def collect(agen: AsyncIterator[LogEntry], into: list[bytes]) -> None:
    async for e in agen:
        into.append(e.data)


# ------------------------------------------------------------------ rotation


def test_rotation_keeps_max_file_files_named_like_docker(tmp_path: Path) -> None:
    log = new_log(tmp_path, max_size=1024, max_file=3)
    for i in range(300):
        log.append("stdout", [numbered(i)])
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["abc-json.log", "abc-json.log.1", "abc-json.log.2"]
    record = len(json.dumps({"log": "line 00000\n", "stream": "stdout", "time": ""})) + 30
    for name in names[1:]:
        size = (tmp_path / name).stat().st_size
        assert 1024 <= size < 1024 + record  # Docker rotates once a file reached max-size
    kept = datas(log.read())
    assert kept == [numbered(i) for i in range(300 - len(kept), 300)]
    assert 2 * 1024 // record < len(kept) < 3 * (1024 + record) // (record - 10)
    # The oldest kept file holds the oldest kept lines.
    oldest = (tmp_path / "abc-json.log.2").read_text().splitlines()
    assert json.loads(oldest[0])["log"].encode() == kept[0]


def test_max_file_1_keeps_only_the_live_file(tmp_path: Path) -> None:
    log = new_log(tmp_path, max_size=500, max_file=1)
    for i in range(100):
        log.append("stdout", [numbered(i)])
    assert [p.name for p in tmp_path.iterdir()] == ["abc-json.log"]
    kept = datas(log.read())
    assert 0 < len(kept) < 100 and kept[-1] == numbered(99)


def test_a_new_container_log_sees_files_rotated_by_an_earlier_daemon(tmp_path: Path) -> None:
    log = new_log(tmp_path, max_size=600, max_file=4)
    log.append("stdout", [numbered(i) for i in range(60)])
    log.close_writer()
    before = datas(log.read())
    again = ContainerLog(tmp_path / "abc-json.log")
    assert datas(again.read()) == before
    again.open_writer(LogOptions(600, 4))
    again.append("stdout", [numbered(i) for i in range(60, 70)])
    after = datas(again.read())
    assert after[-10:] == [numbered(i) for i in range(60, 70)]
    assert after == [numbered(i) for i in range(70 - len(after), 70)]


def test_counters_per_stream(tmp_path: Path) -> None:
    log = new_log(tmp_path)
    log.append("stdout", [b"ab\n", b"c"])
    log.append("stderr", [b"xyz\n"])
    assert log.lines == {"stdout": 2, "stderr": 1}
    assert log.bytes == {"stdout": 4, "stderr": 4}


# ------------------------------------------------------------- exact bytes


def random_output(seed: int) -> bytes:
    rnd = random.Random(seed)
    parts = [rnd.randbytes(rnd.choice([0, 3, 70, 2000, MAX_LINE + 5])) for _ in range(120)]
    parts.insert(60, b"\x00" * (40 * 1024))
    return b"\n".join(parts)  # the last part has no newline


@pytest.mark.parametrize("max_size", [-1, 100_000])
def test_logs_give_back_the_exact_bytes_written(tmp_path: Path, max_size: int) -> None:
    data = random_output(max_size)
    log = new_log(tmp_path, max_size=max_size, max_file=100_000)
    framer = LineFramer()
    rnd = random.Random(1)
    i = 0
    while i < len(data):
        n = rnd.randint(1, 70_000)
        log.append("stdout", framer.feed(data[i : i + n]))
        i += n
    log.append("stdout", framer.flush())
    log.close_writer()
    assert b"".join(datas(log.read())) == data
    assert log.bytes["stdout"] == len(data)


@pytest.mark.parametrize(("max_size", "max_file"), [(-1, 1), (3000, 1000), (5000, 2)])
def test_blocks_store_the_files_pieces_store(
    tmp_path: Path, clock: FakeClock, max_size: int, max_file: int
) -> None:
    """The pump's blocks (`feed_block`, stored in one piece when no byte needs an
    escape) give the very files record-by-record appends give: records, rotation
    points and names; counters alike."""
    rnd = random.Random(max_size)
    kinds = [b"plain %d\n", b"tab\t%d\n", b'"%d"\n', b"%d" + b"z" * 20000 + b"\n", b"\n"]
    data = b"".join(k % i if b"%" in k else k for i, k in enumerate(
        rnd.choices(kinds, weights=[200, 5, 5, 1, 20], k=4000)))  # fmt: skip
    logs = {}
    for how in ("pieces", "blocks"):
        (tmp_path / how).mkdir()
        log = ContainerLog(tmp_path / how / "abc-json.log")
        log.open_writer(LogOptions(max_size, max_file))
        framer = LineFramer()
        i = 0
        while i < len(data):
            n = rnd.randint(1, 9000)
            chunk = data[i : i + n]
            feed = framer.feed if how == "pieces" else framer.feed_block
            log.append("stdout", feed(chunk))
            i += n
        log.append("stdout", framer.flush())
        logs[how] = log
    files = {how: sorted(p.name for p in (tmp_path / how).iterdir()) for how in logs}
    assert files["blocks"] == files["pieces"]
    assert (len(files["pieces"]) > 1) == (max_size > 0)  # it rotated, or could not
    for name in files["pieces"]:
        want = (tmp_path / "pieces" / name).read_bytes()
        assert (tmp_path / "blocks" / name).read_bytes() == want, name
    assert logs["blocks"].lines == logs["pieces"].lines
    assert logs["blocks"].bytes == logs["pieces"].bytes == {"stdout": len(data), "stderr": 0}


def test_a_plain_block_without_max_size_is_one_step_and_the_same_records(
    tmp_path: Path, clock: FakeClock
) -> None:
    """Without max-size nothing rotates: a MiB of lines needing no escape is stored in
    one step (one `replace`, one `writev`), as record-by-record appends store it."""
    block = b"".join(numbered(i) for i in range(100_000))
    log = new_log(tmp_path)
    assert list(log.appending("stdout", block)) == []  # no step between
    (tmp_path / "pieces").mkdir()
    ref = ContainerLog(tmp_path / "pieces" / "abc-json.log")
    ref.open_writer(LogOptions())
    ref.append("stdout", [numbered(i) for i in range(100_000)])
    assert (tmp_path / "abc-json.log").read_bytes() == (
        tmp_path / "pieces" / "abc-json.log"
    ).read_bytes()
    assert log.lines == ref.lines == {"stdout": 100_000, "stderr": 0}
    assert log.bytes == ref.bytes == {"stdout": len(block), "stderr": 0}


def _stored(tmp_path: Path) -> bytes:
    """What every file of the log holds, oldest first, as the container wrote it."""
    return b"".join(datas(ContainerLog(tmp_path / "abc-json.log").read()))


@pytest.mark.parametrize("how", ["block", "pieces", "escapes"])
def test_a_big_append_is_stored_in_steps_of_one_rotation_at_most(
    tmp_path: Path, how: str
) -> None:
    """A MiB of short lines under a small max-size is a hundred rotations: stored in
    steps, each rotating once at most, so a pump can yield between them; after each
    step the files hold exactly the first bytes of the append (what is left, the
    step says), nothing lost or reordered across the rotations."""
    line = b'"%06d"\n' if how == "escapes" else b"%07d\n"
    data = b"".join(line % i for i in range(1 << 17))  # 1 MiB and more
    log = new_log(tmp_path, max_size=100_000, max_file=100_000)
    lines = data if how != "pieces" else LineFramer().feed(data)
    steps, rotations, lefts = 0, log.rotations, []
    for left in log.appending("stdout", lines):
        assert log.rotations - rotations <= 1
        rotations = log.rotations
        lefts.append(left)
        if steps in (0, 1, 7, 40):
            assert _stored(tmp_path) == data[: len(data) - left]
        steps += 1
    assert steps > 100 and log.rotations == rotations
    assert lefts == sorted(lefts, reverse=True) and lefts[-1] > 0
    assert _stored(tmp_path) == data
    assert log.lines["stdout"] == 1 << 17 and log.bytes["stdout"] == len(data)


def test_appending_left_half_way_stores_a_prefix(tmp_path: Path) -> None:
    """A pump cancelled between two steps leaves the rest unstored (it is still in
    the spool past the mark): what is stored is the prefix the step said."""
    data = b"".join(b"%07d\n" % i for i in range(50_000))
    log = new_log(tmp_path, max_size=20_000, max_file=100_000)
    steps = log.appending("stdout", data)
    for _ in range(5):
        left = next(steps)
    steps.close()
    assert _stored(tmp_path) == data[: len(data) - left]


async def test_store_lets_other_tasks_run_between_steps(tmp_path: Path) -> None:
    """`store` (the pump's append) checkpoints after each step and marks it first."""
    data = b"".join(b"%07d\n" % i for i in range(1 << 17))
    log = new_log(tmp_path, max_size=100_000, max_file=3)
    marks: list[tuple[int, int]] = []
    ran: list[int] = []

    async def other() -> None:
        while True:
            ran.append(len(marks))
            await trio.lowlevel.checkpoint()

    async with trio.open_nursery() as n:
        n.start_soon(other)
        await log.store("stdout", data, lambda left: marks.append((left, log.rotations)))
        n.cancel_scope.cancel()
    assert marks[-1][0] == 0 and len(marks) > 100
    during = [r for r in ran if r < len(marks)]  # the other task ran while it stored
    assert len(during) > 100


async def test_store_hands_the_written_file_to_writeback_as_it_grows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A big log is written out as the pump stores it, so the exit's overlay unmount
    (which syncs the log's filesystem) does not wait for all of it: every range the
    pump stored is handed on once, in order, in steps of `WRITEBACK` or more, in a
    worker thread the pump does not wait for."""
    handed: list[tuple[int, int]] = []
    real = logs_mod.durable.start_writeback

    def recording(fd: int, offset: int, length: int) -> None:
        assert os.fstat(fd).st_ino == os.stat(tmp_path / "abc-json.log").st_ino
        handed.append((offset, length))
        real(fd, offset, length)

    monkeypatch.setattr(logs_mod.durable, "start_writeback", recording)
    log = new_log(tmp_path)
    block = b"".join(numbered(i) for i in range(40_000))  # ~0.4 MB: ~1.3 MB of records
    for _ in range(20):
        await log.store("stdout", block)
        # the pump does not wait for it; here each is let finish, so none is skipped
        assert await trio.to_thread.run_sync(log._writeback_idle.wait, 10)
    size = os.stat(tmp_path / "abc-json.log").st_size
    assert handed and handed[0][0] == 0
    assert all(a + n == b for (a, n), (b, _) in zip(handed, handed[1:], strict=False))
    assert all(n >= logs_mod.WRITEBACK for _, n in handed)
    assert size - sum(n for _, n in handed) < logs_mod.WRITEBACK
    assert b"".join(datas(log.read())) == block * 20


# ---------------------------------------------------------- since/until/tail


def test_tail_since_until_across_rotated_files(tmp_path: Path, clock: FakeClock) -> None:
    log = new_log(tmp_path, max_size=700, max_file=1000)
    for i in range(200):
        clock.sec = T0 + i
        log.append("stdout" if i % 3 else "stderr", [numbered(i)])
    assert len(list(tmp_path.iterdir())) > 20
    every = [numbered(i) for i in range(200)]
    assert datas(log.read()) == every
    assert datas(log.read(tail=0)) == []
    assert datas(log.read(tail=1)) == every[-1:]
    assert datas(log.read(tail=37)) == every[-37:]
    assert datas(log.read(tail=500)) == every
    assert datas(log.read(since=T0 + 150)) == every[150:]
    assert datas(log.read(since=T0 + 150.5)) == every[151:]
    assert datas(log.read(until=T0 + 9)) == every[:10]
    assert datas(log.read(since=T0 + 20, until=T0 + 29)) == every[20:30]
    assert datas(log.read(since=T0 + 190, tail=5)) == every[-5:]
    assert datas(log.read(since=T0 + 198, tail=5)) == every[198:]
    # tail with until: the last lines before `until`.
    assert datas(log.read(until=T0 + 99, tail=3)) == every[97:100]
    assert [e.stream for e in log.read(tail=3)] == ["stdout", "stderr", "stdout"]


def test_tail_counts_records_of_a_long_line(tmp_path: Path) -> None:
    log = new_log(tmp_path)
    framer = LineFramer()
    log.append("stdout", framer.feed(b"a\n" + b"L" * (40 * 1024) + b"\nb"))
    log.append("stdout", framer.flush())
    assert datas(log.read(tail=1)) == [b"b"]
    assert b"".join(datas(log.read(tail=4))) == b"L" * (40 * 1024) + b"\nb"


async def test_reading_while_the_log_rotates_under_the_reader(tmp_path: Path) -> None:
    log = new_log(tmp_path, max_size=300, max_file=2)
    log.append("stdout", [numbered(i) for i in range(20)])
    first = datas(log.read())
    reader = log.read()
    got = [next(reader).data]
    log.append("stdout", [numbered(i) for i in range(20, 500)])  # rotates ~100 times
    got += datas(reader)
    assert got == first  # what was there when reading began, each once


# ------------------------------------------------------------------ follow


async def test_follower_gets_every_line_once_while_the_file_rotates(tmp_path: Path) -> None:
    log = new_log(tmp_path, max_size=400, max_file=2)
    total = 10_000
    got: list[bytes] = []
    laggard_got: list[bytes] = []
    rnd = random.Random(7)
    log.append("stdout", [numbered(0)])
    laggard = log.follow()
    laggard_got.append((await laggard.__anext__()).data)  # pins, then reads nothing more
    async with trio.open_nursery() as n:
        n.start_soon(collect, log.follow(), got)
        await trio.testing.wait_all_tasks_blocked()
        i = 1
        while i < total:
            k = min(rnd.randint(1, 40), total - i)
            log.append("stdout", [numbered(j) for j in range(i, i + k)])
            i += k
            await trio.lowlevel.checkpoint()
        log.close_writer()
    assert log.rotations > 500
    expected = [numbered(i) for i in range(total)]
    assert got == expected
    # The laggard was 500+ rotations behind (its files long deleted) and still misses nothing.
    laggard_got += [e.data async for e in laggard]
    assert laggard_got == expected


async def test_follower_keeps_following_across_policy_restarts(tmp_path: Path) -> None:
    log = new_log(tmp_path, max_size=200, max_file=3)
    got: list[bytes] = []
    async with trio.open_nursery() as n:
        n.start_soon(collect, log.follow(), got)
        await trio.testing.wait_all_tasks_blocked()
        for run in range(5):
            if run:
                log.open_writer()
            log.append("stdout", [b"run %d line %d\n" % (run, i) for i in range(10)])
            await trio.testing.wait_all_tasks_blocked()
            log.close_writer(restarting=run < 4)
            await trio.testing.wait_all_tasks_blocked()
    assert got == [b"run %d line %d\n" % (r, i) for r in range(5) for i in range(10)]


async def test_a_called_off_restart_ends_followers(tmp_path: Path) -> None:
    log = new_log(tmp_path)
    got: list[bytes] = []
    log.append("stdout", [b"a\n"])
    with trio.fail_after(5):
        async with trio.open_nursery() as n:
            n.start_soon(collect, log.follow(), got)
            await trio.testing.wait_all_tasks_blocked()
            log.close_writer(restarting=True)
            await trio.testing.wait_all_tasks_blocked()
            assert n.child_tasks  # still following while a restart is pending
            log.close_writer()  # e.g. the user stopped it during the backoff
    assert got == [b"a\n"]


async def test_a_slow_follower_stops_where_the_container_stopped(tmp_path: Path) -> None:
    log = new_log(tmp_path)
    log.append("stdout", [b"first run\n"])
    follower = log.follow()
    assert (await follower.__anext__()).data == b"first run\n"
    log.append("stdout", [b"last words\n"])
    log.close_writer()  # stopped for good (a user stop)...
    log.open_writer()  # ...then started again by a user before the follower caught up
    log.append("stdout", [b"second run\n"])
    assert [e.data async for e in follower] == [b"last words\n"]


async def test_follow_with_tail_and_since_then_new_lines(tmp_path: Path, clock: FakeClock) -> None:
    log = new_log(tmp_path, max_size=300, max_file=50)
    for i in range(40):
        clock.sec = T0 + i
        log.append("stdout", [numbered(i)])
    got_tail: list[bytes] = []
    got_since: list[bytes] = []
    async with trio.open_nursery() as n:
        n.start_soon(collect, log.follow(tail=2), got_tail)
        n.start_soon(collect, log.follow(since=T0 + 35), got_since)
        await trio.testing.wait_all_tasks_blocked()
        log.append("stdout", [numbered(40)])
        log.close_writer()
    assert got_tail == [numbered(38), numbered(39), numbered(40)]
    assert got_since == [numbered(i) for i in range(35, 41)]


async def test_follow_of_a_stopped_container_gives_what_is_stored(tmp_path: Path) -> None:
    log = new_log(tmp_path)
    log.append("stdout", [b"x\n", b"y\n"])
    log.close_writer()
    with trio.fail_after(5):
        assert [e.data async for e in log.follow(tail=1)] == [b"y\n"]


async def test_removal_ends_followers_after_what_was_written(tmp_path: Path) -> None:
    log = new_log(tmp_path)
    got: list[bytes] = []
    with trio.fail_after(5):
        async with trio.open_nursery() as n:
            n.start_soon(collect, log.follow(), got)
            await trio.testing.wait_all_tasks_blocked()
            log.append("stdout", [b"bye\n"])
            log.close_writer(restarting=True)
            log.close()
            for p in tmp_path.iterdir():
                p.unlink()  # the engine deletes the container's directory
    assert got == [b"bye\n"]


async def test_readers_release_every_file_they_held(tmp_path: Path) -> None:
    log = new_log(tmp_path, max_size=300, max_file=3)
    log.append("stdout", [numbered(i) for i in range(50)])
    baseline = open_fds()
    follower = log.follow()
    await follower.__anext__()
    log.append("stdout", [numbered(i) for i in range(50, 200)])
    assert open_fds() > baseline + 3  # it pins files rotation deleted
    await follower.aclose()
    assert open_fds() == baseline
    reader = log.read()
    next(reader)
    reader.close()
    assert open_fds() == baseline


async def test_a_stuck_follower_cannot_pin_more_than_the_orphan_limit(tmp_path: Path) -> None:
    log = new_log(tmp_path, max_size=1000, max_file=1)
    log.orphan_limit = 10_000
    log.append("stdout", [numbered(0)])
    stuck = log.follow()
    await stuck.__anext__()
    baseline = open_fds()
    for i in range(1, 3000):
        log.append("stdout", [numbered(i)])
    assert open_fds() <= baseline + 15  # about orphan_limit / max_size files, not 90
    log.close_writer()
    rest = [e.data async for e in stuck]
    assert rest[-1] == numbered(2999)
    assert len(rest) < 2999  # it skipped what it lagged too far behind on...
    assert rest == sorted(set(rest))  # ...and still nothing twice or out of order
