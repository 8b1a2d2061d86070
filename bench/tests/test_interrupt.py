"""A bench run stopped mid-scenario leaves nothing: a SIGTERM is cleaned up by the run
itself, a SIGKILL (of the bench and its daemon, the holder keeping the fleet) by the
next run's sweep.  Each run is `idle --quick` with three containers, under a private
TMPDIR so the sweep sees this test's workdirs only (other benches may share the host)."""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench import leftovers, procfs
from bench.engines.corral import REPO

FLEET = 3
DEADLINE = 120.0


def _needs_root() -> None:
    if os.geteuid() != 0 or shutil.which("runc") is None:
        pytest.skip("needs root and runc")


# -- the owner claim (no root needed) -----------------------------------------------------
def test_a_workdir_is_stale_only_when_its_claimed_owner_is_dead(tmp_path: Path) -> None:
    mine, dead, reused, garbled = (tmp_path / f"{leftovers.PREFIX}{n}" for n in "abcd")
    for d in (mine, dead, reused, garbled):
        d.mkdir()
    leftovers.claim(mine)
    assert leftovers.owner_of(mine) == os.getpid()
    child = subprocess.Popen(["true"])
    child.wait()
    (dead / leftovers.OWNER).write_text(f"{child.pid} 1\n")
    started = leftovers.start_time(os.getpid())
    assert started is not None
    (reused / leftovers.OWNER).write_text(f"{os.getpid()} {started + 1}\n")  # a reused pid
    (garbled / leftovers.OWNER).write_text("not a pid\n")
    assert leftovers.parse_owner("12 34\n") == (12, 34) and leftovers.parse_owner("x") is None
    assert leftovers.stale_workdirs(tmp_path) == [dead, reused, garbled]


# -- a real run, stopped -------------------------------------------------------------------
class Run:
    """`python -m bench idle` on a private TMPDIR, read until its fleet runs."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.env = dict(os.environ, TMPDIR=str(tmp))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench", "idle", "--quick", "--no-podman", "--no-docker",
             "--containers", str(FLEET), "--out", str(tmp / "out")],
            cwd=REPO, env=self.env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        self.err = b""
        self.workdir = Path(self.read_until(b"bench: workdir ").split(b" ", 2)[2].decode())

    def read_until(self, marker: bytes) -> bytes:
        """The stderr line holding `marker`, once the bench wrote it (bounded)."""
        assert self.proc.stderr is not None
        fd = self.proc.stderr.fileno()
        deadline = time.monotonic() + DEADLINE
        while True:
            for line in self.err.splitlines():
                if marker in line:
                    return line
            left = deadline - time.monotonic()
            ready, _, _ = select.select([fd], [], [], max(left, 0))
            chunk = os.read(fd, 65536) if ready else b""
            if not chunk:
                raise AssertionError(f"no {marker!r} from the bench; stderr:\n{self.err.decode()}")
            self.err += chunk

    def running(self) -> int:
        """Containers of the run's corral daemon whose init runs."""
        import docker  # type: ignore[import-untyped]

        client = docker.DockerClient(base_url=f"unix://{self.workdir / 'corral.sock'}",
                                     version="1.44", timeout=30)  # fmt: skip
        try:
            return len(client.containers.list(filters={"status": "running"}))
        finally:
            client.close()

    def wait_fleet(self) -> None:
        """Mid-scenario: the idle fleet is up (the scenario then idles for seconds)."""
        self.read_until(b"== idle")
        deadline = time.monotonic() + DEADLINE
        while self.running() < FLEET:  # a condition with a deadline (no event for it)
            assert time.monotonic() < deadline, "the idle fleet never ran"
            time.sleep(0.1)

    def finish(self) -> tuple[int, str]:
        assert self.proc.stderr is not None
        _, rest = self.proc.communicate(timeout=DEADLINE)
        return self.proc.returncode, (self.err + rest).decode()


def what_is_left(tmp: Path, workdir: Path, bench_pid: int) -> list[str]:
    """Anything of the run on the host: its workdir, a mount (overlays, netns, shm), a
    process (daemon, holder, container), a cgroup, a link naming its root."""
    left = []
    if workdir.exists():
        left.append(f"workdir {workdir}")
    mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()
              if str(tmp) in line.split()[4]]  # fmt: skip
    left += [f"mount {m}" for m in mounts]
    procs = procfs.pids_where(lambda pid: procfs.mentions(pid, [str(workdir)]))
    cgroup = f"corral-bench-{bench_pid}"
    procs += procfs.pids_where(lambda pid: procfs.under_cgroup(pid, cgroup))
    left += [f"process {pid} {' '.join(procfs.cmdline(pid))[:80]}" for pid in procs]
    for hierarchy in [leftovers.CGROUP_ROOT, *leftovers.CGROUP_ROOT.iterdir()]:
        if (hierarchy / cgroup).is_dir():
            left.append(f"cgroup {hierarchy / cgroup}")
    for link in Path("/sys/class/net").iterdir():
        alias = (link / "ifalias").read_text().strip() if (link / "ifalias").exists() else ""
        if str(workdir) in alias:
            left.append(f"link {link.name} ({alias})")
    return left


@pytest.fixture
def run() -> Iterator[Run]:
    """A run in a short TMPDIR of its own: under pytest's default basetemp the bench
    daemon's holder socket path passes the 108 bytes AF_UNIX allows."""
    _needs_root()
    tmp = Path(tempfile.mkdtemp(prefix="cb-"))
    r = Run(tmp)
    yield r
    if r.proc.poll() is None:
        r.proc.kill()
        r.proc.wait()
    leftovers.sweep(leftovers.stale_workdirs(tmp), [f"corral-bench-{r.proc.pid}"])
    shutil.rmtree(tmp, ignore_errors=True)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])  # kill, Ctrl-C
def test_a_stop_signal_mid_scenario_removes_the_fleet_the_daemon_and_the_workdir(
    run: Run, sig: signal.Signals
) -> None:
    run.wait_fleet()
    run.proc.send_signal(sig)
    code, err = run.finish()
    assert code == 128 + sig, err
    assert f"interrupted by {sig.name}" in err and "Traceback" not in err, err
    assert "the teardown left" not in err, err  # removed by the teardown, not the backstop
    assert what_is_left(run.tmp, run.workdir, run.proc.pid) == []


def test_a_sigkilled_run_is_swept_by_the_next_one(run: Run) -> None:
    run.wait_fleet()
    daemons = procfs.pids_where(
        lambda pid: (
            "supervisor.daemon" in (args := procfs.cmdline(pid))
            and any(str(run.workdir) in a for a in args)
        )
    )
    assert len(daemons) == 1
    run.proc.kill()  # the bench and its daemon die at once; the holder keeps the fleet
    os.kill(daemons[0], signal.SIGKILL)
    run.finish()
    assert any(s.startswith("mount ") for s in what_is_left(run.tmp, run.workdir, run.proc.pid))
    swept = subprocess.run(
        [sys.executable, "-m", "bench", "--sweep"], cwd=REPO, env=run.env,
        capture_output=True, text=True, timeout=DEADLINE,
    )  # fmt: skip
    assert swept.returncode == 0, swept.stderr
    assert f"swept 1 stale workdir(s) {run.workdir}" in swept.stdout, swept.stdout
    assert what_is_left(run.tmp, run.workdir, run.proc.pid) == []
