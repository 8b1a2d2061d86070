"""Live restore's pure parts and its schema step (no daemon, no containers).

- `refusal`: which held init a new daemon may adopt: only the recorded one, by pid
  and start time, so a pid the kernel gave to another process is never adopted.
- the metadata database's numbered migrations (`PRAGMA user_version`): a database
  from before them (version 0, as every earlier corral made it) is brought to the
  newest version with its rows intact; a newer one is refused by name; a failing
  step leaves the old version whole.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import sqlite3
from pathlib import Path

import pytest

from supervisor.engine.restore import refusal
from supervisor.engine.state import Status
from supervisor.errors import CorralError
from supervisor.metadata import migrations
from supervisor.metadata.containers import Container, ContainerStore
from supervisor.metadata.database import Database
from supervisor.metadata.inits import InitStore
from supervisor.supervise import spool
from supervisor.supervise.framing import LineFramer
from supervisor.supervise.logconfig import LogOptions
from supervisor.supervise.logs import ContainerLog
from supervisor.supervise.spool import Spool

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


# ----------------------------------------------------- log rotation across a kill -9
# The pump splices a pipe into the spool, appends what it framed to the log (which may
# rotate it), then writes the mark.  A kill between the append and the mark must not
# repeat lines: the next daemon undoes that append, rotations included, and frames it
# again from the spool.  Driven here step by step, the "kill" being the missing mark.


def _pump_step(sp: Spool, framer: LineFramer, clog: ContainerLog, pipe: int, *,
               mark: bool) -> None:
    data = sp.take(pipe)
    clog.append("stdout", framer.feed(data))
    if mark:
        sp.commit(framer.held, clog.position())


def _logged(path: Path) -> list[str]:
    """Every line in the log's files, oldest file first."""
    found = [p for p in path.parent.iterdir() if p.name.startswith(path.name)]
    lines: list[str] = []
    for file in sorted(found, key=lambda p: -int(p.suffix[1:] if p != path else 0)):
        text = file.read_text()
        lines += [json.loads(rec)["log"].rstrip("\n") for rec in text.splitlines()]
    return lines


def _reopen(
    tmp_path: Path, path: Path, options: LogOptions
) -> tuple[Spool, ContainerLog, LineFramer]:
    """What the next daemon does first: the spool resumed, the log cut back to its mark,
    reopened for writing, and a fresh framer."""
    sp = Spool(tmp_path, "stdout", resume=True)
    spool.cut_back(path, [sp])
    clog = ContainerLog(path, options)
    clog.open_writer()
    return sp, clog, LineFramer()


def _restore(tmp_path: Path, path: Path, options: LogOptions) -> None:
    sp, clog, framer = _reopen(tmp_path, path, options)
    clog.append("stdout", framer.feed(sp.pending()))
    sp.commit(framer.held, clog.position())
    clog.close_writer()
    sp.close()


def _spooled_log(
    tmp_path: Path, path: Path, options: LogOptions
) -> tuple[Spool, ContainerLog, LineFramer, int, int]:
    """A fresh spool, its json-file log open for writing, a framer, and a pipe whose
    read end is non-blocking (what a pump reads from)."""
    sp = Spool(tmp_path, "stdout", resume=False)
    clog = ContainerLog(path, options)
    clog.open_writer()
    r, w = os.pipe()
    os.set_blocking(r, False)
    return sp, clog, LineFramer(), r, w


@pytest.mark.parametrize(("max_file", "unmarked"), [(10, 3), (10, 12), (3, 30), (1, 8)])
def test_a_rotating_append_killed_before_its_mark_is_logged_once(
    tmp_path: Path, max_file: int, unmarked: int
) -> None:
    path = tmp_path / "c-json.log"
    options = LogOptions(max_size=300, max_file=max_file)
    sp, clog, framer, r, w = _spooled_log(tmp_path, path, options)
    sp.commit(0, clog.position())
    written: list[str] = []

    def write(n: int) -> None:
        for _ in range(n):
            written.append(f"line {len(written):04d}")
            os.write(w, (written[-1] + "\n").encode())

    for _ in range(3):
        write(3)
        _pump_step(sp, framer, clog, r, mark=True)
    while clog.position()[1] < 280:  # so the next append writes the old file and rotates
        write(1)
        _pump_step(sp, framer, clog, r, mark=True)
    before = clog.rotations
    write(unmarked)
    _pump_step(sp, framer, clog, r, mark=False)  # killed here: appended, rotated, no mark
    assert clog.rotations > before  # the case this test is about
    clog.close_writer()
    sp.close()
    os.close(r)
    os.close(w)

    _restore(tmp_path, path, options)
    got = _logged(path)
    assert len(got) == len(set(got)), "a line was logged twice"
    assert got == written[len(written) - len(got):]  # in order, up to the newest
    if max_file == 10:  # nothing rotated away: every line, once
        assert got == written


@pytest.mark.parametrize(("max_file", "killed_at"), [(1000, 0), (1000, 9), (3, 40)])
def test_a_stepped_append_killed_between_its_steps_is_logged_once(
    tmp_path: Path, max_file: int, killed_at: int
) -> None:
    """A MiB taken at once is stored in steps (one rotation at most each), the pump
    marking after each: a kill after a step's write, before its mark, is undone to
    the mark before it; the steps marked stay, and the rest is framed again."""
    path = tmp_path / "c-json.log"
    options = LogOptions(max_size=20_000, max_file=max_file)
    sp, clog, framer, r, w = _spooled_log(tmp_path, path, options)
    fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, 1 << 20)
    written = [f"line {i:06d}" for i in range(60_000)]
    data = "".join(x + "\n" for x in written).encode()
    with os.fdopen(os.dup(w), "wb") as f:  # more than a pipe: the rest after a take
        f.write(data[: 1 << 20])
    sp.commit(0, clog.position())  # as the pump: marked before the first append
    taken = sp.take(r)
    steps = clog.appending("stdout", framer.feed_block(taken))
    for i, left in enumerate(steps):
        if i == killed_at:
            break  # killed here: the step is written, its mark is not
        sp.commit(framer.held + left, clog.position())
    else:
        raise AssertionError("fewer steps than the test needs")
    steps.close()
    clog.close_writer()
    sp.close()
    os.write(w, data[1 << 20 :])
    os.close(w)

    sp, clog, framer = _reopen(tmp_path, path, options)
    clog.append("stdout", framer.feed_block(sp.pending()))
    while data := sp.take(r):  # the pipe's rest, as the next daemon's pump goes on
        clog.append("stdout", framer.feed_block(data))
    clog.append("stdout", framer.flush())
    clog.close_writer()
    sp.close()
    os.close(r)
    got = _logged(path)
    assert len(got) == len(set(got)), "a line was logged twice"
    assert got == written[len(written) - len(got):]
    if max_file == 1000:
        assert got == written


def test_an_undo_killed_half_way_is_finished_by_the_next_daemon() -> None:
    # The marked file (inode 7) was rotated to .2 by an unmarked append that made .1
    # and a new live file; the undo then died after unlinking the live file.
    first = spool.plan_cut([(0, 9, 50), (1, 8, 300), (2, 7, 310), (3, 6, 300)],
                           [(7, 280)])
    assert first == spool.CutPlan(truncate=(2, 280), unlink=(0, 1),
                                  renames=((2, 0), (3, 1)))
    again = spool.plan_cut([(1, 8, 300), (2, 7, 280), (3, 6, 300)], [(7, 280)])
    assert again == spool.CutPlan(unlink=(1,), renames=((2, 0), (3, 1)))
    # ... and after the first rename: the gap is closed, nothing else is touched.
    last = spool.plan_cut([(0, 7, 280), (3, 6, 300)], [(7, 280)])
    assert last == spool.CutPlan(renames=((3, 1),))


def test_marks_with_no_file_left_mean_every_file_is_newer() -> None:
    assert spool.plan_cut([(0, 9, 40)], [(5, 300), (0, 0)]).unlink == (0,)
    assert spool.plan_cut([(0, 9, 40)], [(0, 0)]) == spool.CutPlan()  # nothing marked yet
    # a stale mark of a quiet stream in an older file never undoes newer marked lines
    assert spool.plan_cut([(0, 9, 40), (1, 5, 300)], [(5, 120), (9, 40)]) == spool.CutPlan()


def test_the_holder_ends_when_its_state_root_is_removed(tmp_path: Path) -> None:
    """A holder whose state root was deleted (rm -rf of a daemon's root) can never be
    asked for anything again: it ends by itself (inotify), signalling nothing."""
    import subprocess
    import sys

    from supervisor.runtime import holderd

    root = tmp_path / "root"
    root.mkdir()
    proc = subprocess.Popen([sys.executable, "-I", "-S", holderd.__file__,
                             str(root / "holder.sock")], stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
        (root / "unrelated").write_text("x")
        (root / "unrelated").unlink()  # an entry removed that is not its socket
        assert proc.poll() is None
        subprocess.run(["rm", "-rf", str(root)], check=True)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def test_a_new_daemon_is_answered_after_the_runc_creates_of_the_one_it_replaces(
    tmp_path: Path,
) -> None:
    """A daemon killed while the holder runs a `runc create` for it (a crash loop's
    restart): that create makes its runc state when it ends.  The next daemon's
    `hello` is answered only then (else it cleaned the last run before that state
    existed, and the restart at boot failed with `container with given ID already
    exists`, ending the loop), and the dead daemon's `spawned` never reaches it."""
    import subprocess
    import sys

    from supervisor.runtime import holderd

    path = str(tmp_path / "holder.sock")
    proc = subprocess.Popen([sys.executable, "-I", "-S", holderd.__file__, path],
                            stdout=subprocess.PIPE)
    release_r, release_w = os.pipe()
    conns: list[socket.socket] = []

    def connect() -> socket.socket:
        return _connect(path, conns)

    ask = _ask

    def answer(s: socket.socket) -> dict[str, object]:
        msg, fds, _, _ = socket.recv_fds(s, 65536, 16)
        for fd in fds:
            os.close(fd)
        return dict(json.loads(msg))

    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
        first = connect()
        ask(first, {"op": "hello", "tag": 1})
        assert answer(first)["op"] == "hello"
        # a "runc create" that lasts until the test lets it end
        ask(first, {"op": "spawn", "tag": 2, "argv": ["sh", "-c", "read x"]},
            [release_r, os.open(os.devnull, os.O_WRONLY), os.open(os.devnull, os.O_WRONLY)])
        ask(first, {"op": "stat", "tag": 3})
        assert answer(first)["op"] == "stat"  # the spawn was taken
        first.close()  # the daemon dies (kill -9)
        second = connect()
        ask(second, {"op": "hello", "tag": 2})
        ask(second, {"op": "stat", "tag": 5})
        assert answer(second)["op"] == "stat"  # hello waits for the old spawn
        os.close(release_w)
        release_w = -1
        got = answer(second)
        assert (got["op"], got["tag"]) == ("hello", 2)
        ask(second, {"op": "stat", "tag": 6})
        assert answer(second)["op"] == "stat"  # no `spawned` for the dead daemon's tag
    finally:
        for s in conns:
            s.close()
        for fd in (release_r, release_w):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def test_an_init_parked_on_its_exec_fifo_is_told_from_a_released_one(tmp_path: Path) -> None:
    """A daemon killed between `runc create` and the release left a container whose
    record says running and whose init still waits in `runc init`: the soak found 8 of
    50 crash loops stuck so.  `never_released` tells that init (fifo there, process
    still runc's) from one released (fifo gone), and from a running command whose
    fifo a kill between the release's read and its unlink left behind."""
    import shutil
    import subprocess

    from supervisor.engine.restore import never_released

    bundle, state = tmp_path / "b", tmp_path / "state"
    (bundle / "rootfs" / "bin").mkdir(parents=True)
    shutil.copy(shutil.which("busybox") or "/bin/busybox", bundle / "rootfs" / "bin" / "busybox")
    subprocess.run(["runc", "spec"], cwd=bundle, check=True)
    spec = json.loads((bundle / "config.json").read_text())
    spec["process"].update(terminal=False, args=["/bin/busybox", "sleep", "60"])
    (bundle / "config.json").write_text(json.dumps(spec))
    runc = ["runc", "--root", str(state)]
    subprocess.run([*runc, "create", "--bundle", str(bundle), "parked"], check=True,
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    try:
        pid = json.loads(subprocess.run([*runc, "state", "parked"], check=True,
                                        capture_output=True).stdout)["pid"]
        assert never_released(state, "parked", pid)
        subprocess.run([*runc, "start", "parked"], check=True)  # reads and unlinks the fifo
        assert not never_released(state, "parked", pid)
        os.mkfifo(state / "parked" / "exec.fifo")  # left by a kill after the read
        assert not never_released(state, "parked", pid)  # the command runs: keep it
        assert not never_released(state, "gone", pid)
    finally:
        subprocess.run([*runc, "delete", "--force", "parked"], check=False)


def test_an_init_adopted_with_its_spawn_answer_is_held_for_the_next_daemon(
    tmp_path: Path,
) -> None:
    """A start's `runc create` spawned with `adopt`: the holder keeps the init runc
    leaves (here a shell's orphaned `sleep`, reparented to the subreaper holder) and the
    named descriptors as the spawn ends, its pid and start time in the `spawned`
    answer.  The daemon then dies (kill -9): the next daemon's `hello` is told of that
    init, with the descriptor, and its exit when it ends."""
    import subprocess
    import sys

    from supervisor.runtime import holderd

    path = str(tmp_path / "holder.sock")
    pid_file = tmp_path / "init.pid"
    proc = subprocess.Popen([sys.executable, "-I", "-S", holderd.__file__, path],
                            stdout=subprocess.PIPE)
    out_r, out_w = os.pipe()
    conns: list[socket.socket] = []
    init = 0

    def connect() -> socket.socket:
        return _connect(path, conns)

    ask = _ask

    def answer(s: socket.socket) -> tuple[dict[str, object], list[int]]:
        msg, fds, _, _ = socket.recv_fds(s, 65536, 16)
        return dict(json.loads(msg)), fds

    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
        first = connect()
        ask(first, {"op": "hello", "tag": 1})
        hello, _ = answer(first)
        assert hello["op"] == "hello" and hello.get("adopt") == 1
        null = os.open(os.devnull, os.O_RDWR)
        try:
            ask(first, {"op": "spawn", "tag": 2,
                        "argv": ["sh", "-c", f"sleep 1d & echo $! > {pid_file}"],
                        "adopt": {"id": "c1", "pid_file": str(pid_file),
                                  "names": ["stdout"]}},
                [null, null, null, out_r])  # fmt: skip
        finally:
            os.close(null)
        spawned, _ = answer(first)
        init = int(pid_file.read_text())
        assert (spawned["op"], spawned["code"], spawned.get("adopted")) == ("spawned", 0, 1)
        assert spawned["pid"] == init
        assert spawned["start"] == holderd.start_ticks(init) != 0
        first.close()  # the daemon dies (kill -9)

        second = connect()
        ask(second, {"op": "hello", "tag": 1})
        held, fds = answer(second)
        assert (held["op"], held["id"], held["pid"], held["exit"], held["names"]) == (
            "held", "c1", init, None, ["stdout"])
        assert len(fds) == 1
        os.write(out_w, b"kept\n")  # the descriptor held is the pipe's read end
        assert os.read(fds[0], 16) == b"kept\n"
        os.close(fds[0])
        assert answer(second)[0]["op"] == "hello"
        os.kill(init, 9)
        got, _ = answer(second)
        assert (got["op"], got["id"], got["code"]) == ("exit", "c1", 137)
    finally:
        for s in conns:
            s.close()
        for fd in (out_r, out_w):
            with contextlib.suppress(OSError):
                os.close(fd)
        if init:
            with contextlib.suppress(ProcessLookupError):
                os.kill(init, 9)
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def _connect(path: str, conns: list[socket.socket]) -> socket.socket:
    """A daemon's connection to the holder at `path`, kept in `conns` to be closed."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.settimeout(60)
    s.connect(path)
    conns.append(s)
    return s


def _ask(s: socket.socket, msg: dict[str, object], fds: list[int] | None = None) -> None:
    socket.send_fds(s, [json.dumps(msg).encode()], fds or [])
