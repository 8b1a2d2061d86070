"""Scrapes read cgroup files through descriptors held open: the bytes parsers, and
`HeldCgroup` over a fake v1/v2 layout of plain files (pread at offset 0 sees what the
file holds now, as with kernfs files).  The real cgroup and the descriptors' lifetime
are checked in the daemon (test_metrics_daemon.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from supervisor.runtime import cgroups

MEMORY_STAT_V1 = (
    b"cache 4096\nrss 8192\ninactive_file 100\n"
    b"total_cache 40960\ntotal_rss 81920\ntotal_inactive_file 1000\n"
)


def test_keyed_files_pair_words_and_survive_odd_lines() -> None:
    assert cgroups.bytes_keyed(b"nr_periods 3\nthrottled_time 9\n") == {
        b"nr_periods": b"3",
        b"throttled_time": b"9",
    }
    # an odd line would shift a plain pairing: it is skipped instead
    assert cgroups.bytes_keyed(b"a 1\nbad\nb 2 3\nc 4\n") == {b"a": b"1", b"c": b"4"}
    assert cgroups.bytes_keyed(b"a 1\nb 2") == {b"a": b"1", b"b": b"2"}  # no final newline
    assert cgroups.bytes_keyed(None) == {} == cgroups.bytes_keyed(b"")


def test_one_field_is_found_at_a_line_start_only() -> None:
    assert cgroups.bytes_field(MEMORY_STAT_V1, b"rss") == 8192  # not total_rss's value
    assert cgroups.bytes_field(MEMORY_STAT_V1, b"total_rss", b"rss") == 81920
    assert cgroups.bytes_field(b"cache 1\n", b"total_cache", b"cache") == 1  # the fallback
    assert cgroups.bytes_field(b"a 1\nb 2", b"b") == 2  # no final newline
    assert cgroups.bytes_field(b"a x\n", b"a") == 0 == cgroups.bytes_field(None, b"a")
    assert cgroups.bytes_field(b"total_rss 5\n", b"rss") == 0


def test_numbers_usage_all_blkio_and_ids() -> None:
    assert cgroups.bytes_number(b"123\n") == 123
    assert cgroups.bytes_number(b"max\n") is None
    assert cgroups.bytes_number(b"") is None and cgroups.bytes_number(None) is None
    usage = b"cpu user system\n0 100 10\n1 200 20\n"
    assert cgroups.bytes_usage_all(usage) == (300, 30)
    assert cgroups.bytes_usage_all(b"0 1 2\n") is None
    io = cgroups.bytes_blkio_v1(
        b"8:0 Read 4096\n8:0 Write 512\n8:0 Sync 1\n8:16 Read 1\n8:0 Total 4608\nTotal 4609\n"
    )
    assert io == {"8:0": cgroups.IoDevice(4096, 512), "8:16": cgroups.IoDevice(1, 0)}
    assert cgroups.bytes_blkio_v1(b"Total 0\n") == {}
    assert cgroups.bytes_ints(b"12\n13\n") == [12, 13] and cgroups.bytes_ints(None) == []


def _write(d: Path, files: dict[str, str | bytes]) -> None:
    d.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (d / name).write_bytes(data.encode() if isinstance(data, str) else data)


def _v1(tmp_path: Path, quota: str = "-1") -> cgroups.Layout:
    ctl = {c: tmp_path / c for c in ("memory", "cpu", "cpuacct", "blkio", "pids")}
    path = "corral/abc"
    _write(ctl["memory"] / path, {
        "memory.usage_in_bytes": "5000\n", "memory.limit_in_bytes": "9223372036854771712\n",
        "memory.failcnt": "2\n", "memory.stat": MEMORY_STAT_V1,
        "memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n",
    })  # fmt: skip
    _write(ctl["cpu"] / path, {
        "cpu.cfs_quota_us": quota + "\n", "cpu.cfs_period_us": "100000\n",
        "cpu.stat": "nr_periods 7\nnr_throttled 3\nthrottled_time 900\n",
    })  # fmt: skip
    _write(ctl["cpuacct"] / path, {"cpuacct.usage_all": "cpu user system\n0 100 10\n1 200 20\n"})
    _write(ctl["blkio"] / path, {
        "blkio.throttle.io_service_bytes_recursive": "8:0 Read 4096\n8:0 Write 512\nTotal 4608\n"
    })  # fmt: skip
    _write(ctl["pids"] / path, {"tasks": "41\n42\n", "pids.current": "2\n"})
    return cgroups.Layout(False, ctl)


def test_v1_reading_through_held_files_matches_a_path_reading(tmp_path: Path) -> None:
    lay = _v1(tmp_path)
    held = cgroups.hold("/corral/abc", lay)
    assert held is not None
    try:
        assert held.descriptors == cgroups.MAX_HELD
        got = held.read()
        want = cgroups.read_stats("/corral/abc", lay, full=False)
        assert got is not None and want is not None
        want.memory_stat, want.percpu_ns = {}, []  # for `docker stats` only
        assert got == want
        assert (got.cpu_usage_ns, got.rss, got.cache, got.working_set) == (330, 81920, 40960, 4000)
        assert got.memory_limit is None and got.cpu_quota is None and got.cpu_period == 100000
        assert (got.memory_failcnt, got.oom_kills, got.procs) == (2, 1, [41, 42])
        assert got.io == {"8:0": cgroups.IoDevice(4096, 512)}

        # a later read sees the files as they are then
        mem = tmp_path / "memory/corral/abc"
        (mem / "memory.usage_in_bytes").write_text("7000\n")
        (mem / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n")
        (tmp_path / "pids/corral/abc/tasks").write_text("41\n")
        again = held.read()
        assert again is not None
        assert (again.memory_usage, again.oom_kills, again.procs) == (7000, 3, [41])
    finally:
        held.close()
    assert held.descriptors == 0


def test_v1_with_a_quota_stays_in_the_descriptor_budget(tmp_path: Path) -> None:
    held = cgroups.hold("/corral/abc", _v1(tmp_path, quota="50000"))
    assert held is not None
    try:
        assert held.descriptors == cgroups.MAX_HELD  # cpu.stat is the 8th: opened per read
        got = held.read()
        assert got is not None
        assert (got.cpu_quota, got.cpu_periods, got.cpu_throttled_periods) == (50000, 7, 3)
        assert got.cpu_throttled_ns == 900
    finally:
        held.close()


def test_a_missing_cgroup_is_not_held(tmp_path: Path) -> None:
    assert cgroups.hold("/corral/gone", _v1(tmp_path)) is None


def test_v2_reading_through_held_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cgroups, "CGROUP_ROOT", tmp_path)
    _write(tmp_path / "corral/abc", {
        "cpu.stat": "usage_usec 5\nuser_usec 3\nsystem_usec 2\nnr_periods 4\nnr_throttled 1\n"
                    "throttled_usec 7\n",
        "cpu.max": "50000 100000\n", "memory.max": "max\n", "memory.current": "6000\n",
        "memory.events": "low 0\nhigh 0\nmax 2\noom 1\noom_kill 1\n",
        "memory.stat": "anon 100\nfile 200\ninactive_file 50\n",
        "io.stat": "259:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n",
        "cgroup.threads": "9\n",
    })  # fmt: skip
    lay = cgroups.Layout(True)
    held = cgroups.hold("/corral/abc", lay)
    assert held is not None
    try:
        assert held.descriptors == 6  # every file
        got = held.read()
        want = cgroups.read_stats("/corral/abc", lay, full=False)
        assert got is not None and want is not None
        want.memory_stat = {}
        assert got == want
        assert (got.cpu_usage_ns, got.cpu_quota, got.memory_limit, got.procs) == (
            5000, 50000, None, [9])  # fmt: skip
        assert got.io == {"259:0": cgroups.IoDevice(10, 20, 1, 2)}
    finally:
        held.close()


def test_v1_tasks_of_a_one_process_container_are_its_init(tmp_path: Path) -> None:
    """Under v1 a cgroup whose `pids.current` counts one task is read as its init
    alone (the tasks file, opened at each read, is skipped); two or more, and the
    tasks file says which."""
    lay = _v1(tmp_path)
    pids = tmp_path / "pids/corral/abc"
    (pids / "pids.current").write_text("1\n")
    (pids / "tasks").write_text("41\n")
    held = cgroups.hold("/corral/abc", lay)
    assert held is not None
    try:
        assert held.descriptors == cgroups.MAX_HELD  # pids.current among them
        got = held.read(init=41)
        assert got is not None and got.procs == [41]
        (pids / "tasks").unlink()  # not read while one task runs
        got = held.read(init=41)
        assert got is not None and got.procs == [41]
        (pids / "pids.current").write_text("3\n")  # the init started two more
        (pids / "tasks").write_text("41\n57\n58\n")
        got = held.read(init=41)
        assert got is not None and got.procs == [41, 57, 58]
    finally:
        held.close()
