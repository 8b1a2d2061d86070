"""A test session cut short leaves nothing running or mounted (tests/sessions.py).

Each case runs inner pytest sessions of `test_holds_a_container` below: it starts a
daemon by hand (no fixture would stop it), runs a container, kills the daemon -9 (the
holder keeps the container: live restore) and waits.  One inner session is then
interrupted (SIGINT: its end sweeps it), one killed (SIGKILL: the next session's start
sweeps it), while a third, alive, must keep everything it has.
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Daemon, _needs_root, holder_pid, start_daemon

from bench.procfs import alive, cmdline, pids_where

REPO = Path(__file__).resolve().parents[1]
HOLD = "CORRAL_TEST_HOLD_READY"
SESSIONS = "CORRAL_TEST_SESSIONS"
DEADLINE = 120


@pytest.mark.skipif(HOLD not in os.environ, reason="the inner session of test_session_sweep")
def test_holds_a_container(tmp_path: Path, rootfs_tar: Path) -> None:
    root, sock, log = tmp_path / "root", tmp_path / "d.sock", tmp_path / "d.log"
    d = Daemon(root, sock, start_daemon(root, sock, log), log)
    client = d.client()
    with rootfs_tar.open("rb") as f:
        client.api.import_image_from_data(f.read(), repository="busybox", tag="latest")
    c = client.containers.run("busybox:latest", ["sleep", "1d"], detach=True)
    client.close()
    d.proc.kill()  # its holder keeps the container running
    d.proc.wait()
    init = int(c.attrs["State"]["Pid"])
    os.write(int(os.environ[HOLD]), f"{root} {init}\n".encode())
    signal.pause()  # until the session is interrupted or killed


class Inner:
    """One inner session: its pytest, and (once ready) its root and container init."""

    def __init__(self, tmp: Path, name: str, made: list[Inner]) -> None:
        r, w = os.pipe()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
             f"--basetemp={tmp / name}", f"{__file__}::test_holds_a_container"],
            cwd=REPO,
            env=dict(os.environ, **{HOLD: str(w), SESSIONS: str(registry(tmp)),
                                    "TMPDIR": str(tmp)}),  # its workdir too: removed with tmp
            pass_fds=(w,),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            start_new_session=True,  # signals from the test only
        )  # fmt: skip
        os.close(w)
        made.append(self)  # stopped by the fixture, however the test ends
        with os.fdopen(r, "rb") as ready:  # a line once the inner test holds; EOF if it died
            readable, _, _ = select.select([ready], [], [], DEADLINE)
            words = ready.readline().decode().split() if readable else []
        if len(words) != 2:
            self.proc.kill()
            raise AssertionError(f"the inner session did not hold: {self.output()}")
        self.root, self.init = Path(words[0]), int(words[1])

    def output(self) -> str:
        """Its output once it ended (killed if it does not end by the deadline)."""
        try:
            out, _ = self.proc.communicate(timeout=DEADLINE)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        return out.decode(errors="replace")

    def left(self) -> list[str]:
        """What of this session's daemon still runs or is mounted."""
        found = []
        if alive(self.init) and "sleep" in cmdline(self.init):
            found.append(f"container init {self.init}")
        if holder_pid(self.root) is not None:
            found.append("holder")
        mounts = Path("/proc/self/mountinfo").read_text()
        found += [f"mount {m.split()[4]}" for m in mounts.splitlines()
                  if m.split()[4].startswith(str(self.root))]  # fmt: skip
        return found

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate(timeout=DEADLINE)


def registry(short_tmp: Path) -> Path:
    """The inner sessions' own registry: another pytest session on this machine (whose
    start sweeps dead sessions' leftovers) never sweeps them before the case looks."""
    return short_tmp / "sessions"


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A short directory for the inner sessions' temporary dirs: under pytest's default
    basetemp their holder's socket path passes the 108 bytes AF_UNIX allows."""
    d = Path(tempfile.mkdtemp(prefix="cs-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def inner(short_tmp: Path) -> Iterator[list[Inner]]:
    _needs_root()
    made: list[Inner] = []
    yield made
    for s in made:
        s.stop()
    from sessions import sweep_dirs

    sweep_dirs([short_tmp])  # whatever a failed case left
    for s in made:
        for entry in registry(short_tmp).glob(f"{s.proc.pid}-*.json"):
            entry.unlink()


def test_an_interrupted_session_stops_its_holder_and_unmounts(
    inner: list[Inner], short_tmp: Path
) -> None:
    s = Inner(short_tmp, "interrupted", inner)
    assert s.left() != []  # the container outlived its daemon
    s.proc.send_signal(signal.SIGINT)  # KeyboardInterrupt inside the test
    out = s.output()
    assert "KeyboardInterrupt" in out, out
    assert "leftovers of this session" in out, out
    assert s.left() == [], out


def test_a_killed_session_is_swept_by_the_next_but_a_live_one_is_not(
    inner: list[Inner], short_tmp: Path
) -> None:
    killed = Inner(short_tmp, "killed", inner)
    live = Inner(short_tmp, "live", inner)
    killed.stop()  # SIGKILL: no end of session ran
    assert killed.left() != []
    assert len(list(registry(short_tmp).glob(f"{killed.proc.pid}-*.json"))) == 1
    nxt = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         f"--basetemp={short_tmp / 'next'}", f"{__file__}::test_holds_a_container"],
        cwd=REPO, env={**{k: v for k, v in os.environ.items() if k != HOLD},
                       SESSIONS: str(registry(short_tmp)), "TMPDIR": str(short_tmp)},
        capture_output=True, text=True, timeout=DEADLINE,
    )  # fmt: skip
    assert "leftovers of killed sessions" in nxt.stderr + nxt.stdout, nxt.stdout + nxt.stderr
    assert killed.left() == []
    assert list(registry(short_tmp).glob(f"{killed.proc.pid}-*.json")) == []
    assert live.left() != [] and live.proc.poll() is None  # another session's: untouched
    assert pids_where(lambda pid: pid == holder_pid(live.root))
