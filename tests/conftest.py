"""Fixtures: a real corral daemon on a private root and socket, and a busybox image.

The daemon runs as a subprocess for the whole session (as users run it), with its own
state root under a temporary directory, so tests never touch /var/lib/corral.  After
each test every container, extra image and volume is removed; at the end of the
session the suite checks that nothing is left on the machine: no overlay mount under
the root, no runc state, no cgroup.  A session cut short still leaves nothing: its
directories are swept at its end (after a Ctrl-C too) and, if it was killed, at the
start of the next session (tests/sessions.py); a live session's are never touched.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from busybox import make_rootfs_tar  # noqa: E402
from fuzzing import (  # noqa: E402, F401 - the fuzz suite's --fuzz-cases and figures
    pytest_addoption,
    pytest_configure,
    pytest_terminal_summary,
)
from registry import Registry, start_registry  # noqa: E402
from sessions import Session, sweep_dead_sessions  # noqa: E402

IMAGE = "busybox:latest"
SESSION: Session | None = None


def pytest_sessionstart(session: pytest.Session) -> None:
    """Sweep what killed sessions left, then register this one's directories (the
    sweep comes first: pytest empties a reused --basetemp when it is first asked)."""
    global SESSION
    if os.geteuid() != 0:
        return
    found = sweep_dead_sessions()
    if found:
        _say(session, f"corral tests: swept {len(found)} leftovers of killed sessions: "
             + "; ".join(found[:5]))  # fmt: skip
    SESSION = Session()
    SESSION.add(session.config._tmp_path_factory.getbasetemp())  # type: ignore[attr-defined]


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_sessionfinish(session: pytest.Session) -> Iterator[None]:
    """Whatever way the session ended (a KeyboardInterrupt too), nothing of its daemons
    stays: around every other end-of-session step (pytest's own tears every fixture
    down, and a failing teardown raises through it), what is left is swept and named."""
    try:
        return (yield)
    finally:
        if SESSION is not None:
            found = SESSION.finish()
            if found:
                _say(session, f"corral tests: swept {len(found)} leftovers of this session: "
                     + "; ".join(found[:5]))  # fmt: skip


def session_dir(d: Path) -> Path:
    """`d` (a directory a test made outside pytest's temporary ones for daemon roots) is
    this session's: swept with the rest if the session is cut short."""
    if SESSION is not None:
        SESSION.add(d)
    return d


def _say(session: pytest.Session, line: str) -> None:
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(line)
    else:
        print(line, file=sys.stderr)


def _needs_root() -> None:
    if os.geteuid() != 0 or shutil.which("runc") is None:
        pytest.skip("needs root and runc")


@dataclass
class Daemon:
    root: Path
    sock: Path
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def host(self) -> str:
        return f"unix://{self.sock}"

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(CORRAL_HOST=self.host, DOCKER_HOST=self.host, **extra)
        return env

    def cli(
        self, *args: str, input: bytes | None = None, timeout: float = 60, check: bool = False
    ) -> subprocess.CompletedProcess[str]:
        """Run the `corral` CLI against this daemon."""
        return subprocess.run(
            [sys.executable, "-m", "supervisor", *args],
            env=self.env(),
            input=input.decode() if input else None,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=check,
        )

    def docker(
        self, *args: str, input: str | None = None, timeout: float = 60, check: bool = False
    ) -> subprocess.CompletedProcess[str]:
        """Run the real docker CLI against this daemon (skips if it is not installed)."""
        if shutil.which("docker") is None:
            pytest.skip("docker CLI not installed")
        return subprocess.run(
            ["docker", *args],
            env=self.env(),
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=check,
        )

    def client(self) -> Any:
        import docker

        return docker.DockerClient(base_url=self.host, version="1.44", timeout=60)


def cgroup_parent(root: Path) -> str:
    """Each test daemon gets its own cgroup parent, so leak checks see only its own."""
    return f"corral-test-{abs(hash(str(root))) % 10**8}"


class DaemonProcess(subprocess.Popen[bytes]):
    """A daemon's process that remembers the signals the test sent it, so a daemon that
    died without one (killed from outside, or an exit of its own) is told apart from
    one the test killed or stopped."""

    signalled: list[int]
    log_start: int

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:  # a signal to a daemon already dead is not its death
            self.signalled.append(sig)
        super().send_signal(sig)


def unexpected_death(proc: subprocess.Popen[bytes], log: Path) -> str | None:
    """If `proc` (a daemon) has ended although the test sent it no signal: its pid, how
    it ended and the end of its part of `log`, in a few lines for the failure."""
    if not isinstance(proc, DaemonProcess) or proc.poll() is None or proc.signalled:
        return None
    code = proc.returncode
    how = f"killed by signal {-code}" if code < 0 else f"exit status {code}"
    tail: list[str] = []
    with contextlib.suppress(OSError), log.open("rb") as f:
        f.seek(proc.log_start)
        tail = f.read().decode(errors="replace").splitlines()[-15:]
    return (f"daemon pid {proc.pid} ended without a signal from the test ({how}); "
            "the end of its log:\n  " + "\n  ".join(tail))


def start_daemon(
    root: Path, sock: Path, log: Path, prefix: tuple[str, ...] = (),
    args: tuple[str, ...] = (),
) -> subprocess.Popen[bytes]:
    """Start `corral daemon` (under `prefix`, e.g. strace) and return once it listens
    (it writes to --ready-fd)."""
    r, w = os.pipe()
    with log.open("ab") as logf:
        log_start = logf.tell()
        proc = DaemonProcess(
            [
                *prefix,
                sys.executable,
                "-m",
                "supervisor.daemon",
                "--root",
                str(root),
                "--host",
                f"unix://{sock}",
                "--ready-fd",
                str(w),
                "--log-level",
                "debug",
                "--cgroup-parent",
                cgroup_parent(root),
                "--metrics-addr",
                "",
                *args,
            ],
            stdin=subprocess.DEVNULL,
            stdout=logf,
            stderr=logf,
            pass_fds=(w,),
        )
    proc.signalled, proc.log_start = [], log_start
    os.close(w)
    with os.fdopen(r, "rb") as ready:
        line = ready.readline()  # EOF here means the daemon died before listening
    if line.strip() != b"ready":
        proc.kill()
        raise RuntimeError(f"daemon did not start; log:\n{log.read_text()}")
    return proc


def holder_pid(root: Path) -> int | None:
    """The pid of the container holder of `root` (runtime/holderd.py), if one runs."""
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            args = (p / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        ours = str(root / "holder.sock").encode() in args
        if ours and any(a.endswith(b"holderd.py") for a in args):
            return int(p.name)
    return None


def kill_holder(root: Path) -> None:
    """SIGKILL the container holder of `root`, as a host reboot would end it: the next
    daemon finds nothing kept and cleans up the last run."""
    pid = holder_pid(root)
    if pid is not None:
        try:
            pidfd = os.pidfd_open(pid)
        except ProcessLookupError:
            pidfd = -1
        if pidfd >= 0:
            with os.fdopen(pidfd) as f:
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
                select.select([f], [], [], 30)  # readable once it has exited
    (root / "holder.sock").unlink(missing_ok=True)


def stop_daemon(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM,
                timeout: float = 60) -> None:
    proc.send_signal(sig)
    proc.wait(timeout=timeout)


def corral_bridges() -> set[str]:
    """The bridges corral's non-default daemons make (`cr-<network id>`) on this host."""
    net = Path("/sys/class/net")
    return {p.name for p in net.iterdir() if p.name.startswith("cr-") and (p / "bridge").exists()}


@pytest.fixture(scope="session", autouse=True)
def no_bridge_left_behind() -> Iterator[None]:
    """Every daemon a test starts takes its bridges down again, whatever way it ends.

    A bridge that appeared during the session and is still there at its end is a leak
    (a daemon killed and its root removed without a restart, or a teardown path that
    forgets one); it fails the session at teardown, naming the bridges.
    """
    before = corral_bridges()
    yield
    left = corral_bridges() - before
    ours = {b for b in left if SESSION is not None and SESSION.owns_bridge(b)}
    # each bridge names its root (network/orphans.py): one under this session's
    # directories is its own whatever else runs on the host
    assert not ours, f"bridges left behind by the test session: {sorted(ours)}"
    tables = SESSION.owned_nat_tables() if SESSION is not None else []
    assert not tables, f"nftables tables left behind by the test session: {tables}"
    # torn down last (autouse, session scope): this session's daemons are gone by now, so
    # a corral daemon still running belongs to another session, whose bridges these may be
    others = subprocess.run(["pgrep", "-f", "supervisor(.daemon| daemon)"],
                            capture_output=True, text=True).stdout.split()  # fmt: skip
    if left and others:
        warnings.warn(f"bridges {sorted(left)} outlived the session while other corral "
                      f"daemons run (pids {' '.join(others)}): not checked", stacklevel=1)
        return
    assert not left, f"bridges left behind by the test session: {sorted(left)}"


@pytest.fixture(scope="session")
def workdir() -> Iterator[Path]:
    d = session_dir(Path(tempfile.mkdtemp(prefix="corral-test-")))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def rootfs_tar(workdir: Path) -> Path:
    return make_rootfs_tar(workdir / "busybox-rootfs.tar")


@pytest.fixture(scope="session")
def daemon(workdir: Path, rootfs_tar: Path) -> Iterator[Daemon]:
    _needs_root()
    root, sock, log = workdir / "root", workdir / "corral.sock", workdir / "daemon.log"
    proc = start_daemon(root, sock, log)
    d = Daemon(root=root, sock=sock, proc=proc, log=log)
    client = d.client()
    with rootfs_tar.open("rb") as f:
        client.api.import_image_from_data(f.read(), repository="busybox", tag="latest")
    yield d
    client.close()
    death = unexpected_death(d.proc, d.log)
    if d.proc.poll() is None:
        stop_daemon(d.proc)
    assert_nothing_left(d.root)
    assert death is None, death


def assert_nothing_left(root: Path) -> None:
    """No overlay mount, runc state or cgroup of ours survives the suite."""
    mounts = Path("/proc/self/mountinfo").read_text()
    assert str(root) not in mounts, "a mount under the test root was left behind"
    assert not (root / "holder.sock").exists(), "the container holder outlived the daemon"
    runc_dir = root / "runc"
    leftovers = [p.name for p in runc_dir.iterdir()] if runc_dir.exists() else []
    assert leftovers == [], f"runc state left behind: {leftovers}"
    for hierarchy in Path("/sys/fs/cgroup").iterdir():
        parent = hierarchy / cgroup_parent(root)
        if parent.is_dir():
            assert [p for p in parent.iterdir() if p.is_dir()] == [], f"cgroups left in {parent}"
            parent.rmdir()


@pytest.fixture
def dk(daemon: Daemon) -> Iterator[Any]:
    """A docker-py client; everything the test made is removed afterwards."""
    client = daemon.client()
    yield client
    cleanup(client)
    client.close()


def cleanup(client: Any) -> None:
    for c in client.containers.list(all=True):
        c.remove(force=True, v=True)
    for img in client.images.list():
        if IMAGE not in img.tags:
            client.images.remove(img.id, force=True)
        elif len(img.tags) > 1:
            for t in img.tags:
                if t != IMAGE:
                    client.images.remove(t)
    for v in client.volumes.list():
        v.remove(force=True)
    for n in client.networks.list():
        if n.name not in ("bridge", "host", "none"):
            n.remove()


@pytest.fixture
def corral(daemon: Daemon, dk: Any) -> Daemon:
    """The daemon, for tests driving the `corral` or `docker` CLIs; cleaned like `dk`."""
    return daemon


@pytest.fixture
def private_daemon(tmp_path: Path, rootfs_tar: Path) -> Iterator[Any]:
    """Start (and restart) a daemon on a private root, for tests that kill or restart it.

    Call the fixture's value to start one (again); at the end whatever is still running
    is cleaned like the session daemon, stopped, and checked to leave nothing behind.
    """
    _needs_root()
    root, sock, log = tmp_path / "root", tmp_path / "d.sock", tmp_path / "d.log"
    procs: list[subprocess.Popen[bytes]] = []

    def start(*args: str) -> Daemon:
        p = start_daemon(root, sock, log, args=args)
        procs.append(p)
        return Daemon(root=root, sock=sock, proc=p, log=log)

    yield start
    # A daemon that died on its own (or was killed by someone else) fails the test,
    # named with its exit status, whatever the test body made of it.
    deaths = [m for p in procs if (m := unexpected_death(p, log)) is not None]
    for m in deaths:
        print(m, file=sys.stderr)
    if procs and all(p.poll() is not None for p in procs) and (root / "holder.sock").exists():
        start()  # containers outlived the last daemon (live restore): one to clean them
    for p in procs:
        if p.poll() is None:
            client = Daemon(root=root, sock=sock, proc=p, log=log).client()
            for c in client.containers.list(all=True):
                c.remove(force=True, v=True)
            for n in client.networks.list():
                if n.name not in ("bridge", "host", "none"):
                    n.remove()
            client.close()
            stop_daemon(p)
    assert_nothing_left(root)
    assert not deaths, "\n".join(deaths)


@pytest.fixture(scope="session")
def registry(workdir: Path) -> Iterator[Registry]:
    """Debian's docker-registry (distribution 2.8) on 127.0.0.1, plain HTTP, private
    storage; tests push what they pull with skopeo (see tests/registry.py)."""
    if shutil.which("docker-registry") is None or shutil.which("skopeo") is None:
        pytest.skip("needs docker-registry and skopeo (scripts/setup installs them)")
    d = workdir / "registry"
    d.mkdir()
    reg = start_registry(d)
    yield reg
    reg.stop()


@pytest.fixture(scope="session")
def auth_registry(workdir: Path) -> Iterator[Registry]:
    """Another docker-registry, with htpasswd Basic auth: user `corral`, `s3cret`."""
    if shutil.which("docker-registry") is None or shutil.which("skopeo") is None:
        pytest.skip("needs docker-registry and skopeo (scripts/setup installs them)")
    d = workdir / "auth-registry"
    d.mkdir()
    reg = start_registry(d, users={"corral": "s3cret"})
    yield reg
    reg.stop()


@pytest.fixture(scope="session")
def token_registry(workdir: Path) -> Iterator[Any]:
    """A docker-registry with token auth and the token server it trusts (Docker Hub's
    flow): anonymous pulls of `public/*`, user `corral`/`s3cret` for everything else.
    Yields (registry, token server)."""
    if shutil.which("docker-registry") is None or shutil.which("openssl") is None:
        pytest.skip("needs docker-registry and openssl")
    from registry import TokenServer

    d = workdir / "token-registry"
    d.mkdir()
    tokens = TokenServer(d, {"corral": "s3cret"})
    reg = start_registry(d, token=tokens)
    reg.creds = "corral:s3cret"
    yield reg, tokens
    reg.stop()
    tokens.stop()


@pytest.fixture(scope="session")
def tls_registry(workdir: Path) -> Iterator[Registry]:
    """A docker-registry that speaks only TLS, with a self-signed certificate."""
    if shutil.which("docker-registry") is None or shutil.which("openssl") is None:
        pytest.skip("needs docker-registry and openssl")
    d = workdir / "tls-registry"
    d.mkdir()
    reg = start_registry(d, tls=True)
    yield reg
    reg.stop()
