"""Real containers under runc: overlay root, create/start, pidfd reaping, cgroups.

Skipped unless root with runc installed.  Every test tears down its runc container and
overlay mount; the `runtime` fixture asserts `runc list` is empty afterwards.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import trio
from busybox import extract, make_rootfs_tar

from supervisor.errors import CannotExecute, CommandNotFound, Conflict, CorralError, NotFound
from supervisor.runtime import cgroups
from supervisor.runtime.mountinfo import read_mountinfo
from supervisor.runtime.process import PidFd, set_child_subreaper
from supervisor.runtime.rootfs import is_mounted, mount_overlay, unmount
from supervisor.runtime.runc import Runtime
from supervisor.runtime.spec import ContainerSpec, ProcessSpec, Resources, build_config

RUNC = os.environ.get("CORRAL_TEST_RUNC", "runc")

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which(RUNC) is None, reason="needs root and runc"
)

CGROUP_PARENT = "/corral-test"
ENV = ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root"]


@pytest.fixture(scope="module")
def lower(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("busybox")
    tar = make_rootfs_tar(base / "rootfs.tar")
    root = base / "rootfs"
    extract(tar, root)
    return root


@dataclass
class Bundle:
    path: Path
    rootfs: Path


@pytest.fixture
def bundle(tmp_path: Path, lower: Path) -> Iterator[Bundle]:
    upper, work, merged = tmp_path / "upper", tmp_path / "work", tmp_path / "bundle" / "rootfs"
    for d in (upper, work, merged):
        d.mkdir(parents=True)
    mount_overlay([lower], upper, work, merged)
    assert is_mounted(merged)
    try:
        yield Bundle(tmp_path / "bundle", merged)
    finally:
        unmount(merged)
        assert not is_mounted(merged)


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    set_child_subreaper()
    rt = Runtime(RUNC, tmp_path / "runc-state")
    yield rt
    for leftover in await rt.list_ids():
        await rt.delete(leftover, force=True)
        pytest.fail(f"test left runc container {leftover}")
    assert await rt.list_ids() == []
    cgroups.cleanup(CGROUP_PARENT)


@dataclass
class Run:
    id: str
    pid: int
    pidfd: PidFd
    cgroups_path: str
    out: bytearray = field(default_factory=bytearray)
    err: bytearray = field(default_factory=bytearray)
    exit_code: int | None = None


def write_config(bundle: Bundle, args: list[str], **kw: object) -> tuple[str, str]:
    cid = f"t-{uuid.uuid4().hex[:12]}"
    cg = f"{CGROUP_PARENT}/{cid}"
    spec = ContainerSpec(
        id=cid,
        rootfs=str(bundle.rootfs),
        hostname="testhost",
        process=ProcessSpec(args=args, env=ENV),
        cgroups_path=cg,
        **kw,  # type: ignore[arg-type]
    )
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    (bundle.path / "config.json").write_text(json.dumps(build_config(spec, hard)))
    return cid, cg


async def drain(fd: int, sink: bytearray) -> None:
    async with trio.lowlevel.FdStream(fd) as stream:
        while chunk := await stream.receive_some():
            sink += chunk


async def create(
    rt: Runtime, bundle: Bundle, args: list[str], **kw: object
) -> tuple[Run, int, int]:
    """Create (not start) a container; returns the run and the read ends of its pipes."""
    cid, cg = write_config(bundle, args, **kw)
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    try:
        pid = await rt.create(
            cid,
            bundle.path,
            stdin=None,
            stdout=out_w,
            stderr=err_w,
            pid_file=bundle.path / "init.pid",
        )
    except BaseException:
        os.close(out_r)
        os.close(err_r)
        raise
    finally:
        os.close(out_w)
        os.close(err_w)
    return Run(cid, pid, PidFd(pid, "test init"), cg), out_r, err_r


async def run_to_exit(rt: Runtime, bundle: Bundle, args: list[str], **kw: object) -> Run:
    run, out_r, err_r = await create(rt, bundle, args, **kw)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(drain, out_r, run.out)
            nursery.start_soon(drain, err_r, run.err)
            await rt.start(run.id, init=run.pidfd)
            with trio.fail_after(20):
                run.exit_code = await run.pidfd.wait()
    finally:
        run.pidfd.close()
        await rt.delete(run.id, force=True)
    return run


def children_of_self() -> list[int]:
    pid = os.getpid()
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


async def test_echo_hi_exit_zero(runtime: Runtime, bundle: Bundle) -> None:
    before = set(children_of_self())  # e.g. the session's daemon, when the suite runs whole
    run = await run_to_exit(runtime, bundle, ["echo", "hi"])
    assert run.exit_code == 0
    assert run.out == b"hi\n"
    assert run.err == b""
    assert await runtime.state(run.id) is None
    assert set(children_of_self()) - before == set()  # init reaped, no zombies left behind by runc


async def test_exit_code(runtime: Runtime, bundle: Bundle) -> None:
    run = await run_to_exit(runtime, bundle, ["sh", "-c", "echo oops >&2; exit 3"])
    assert run.exit_code == 3
    assert run.err == b"oops\n"


async def test_sigkill_is_137(runtime: Runtime, bundle: Bundle) -> None:
    run, out_r, err_r = await create(runtime, bundle, ["sleep", "1000"])
    os.close(out_r)
    os.close(err_r)
    try:
        state = await runtime.state(run.id)
        assert state is not None and state["status"] == "created" and state["pid"] == run.pid
        with pytest.raises(Conflict):
            await runtime.create(
                run.id, bundle.path, stdin=None, stdout=1, stderr=2, pid_file=bundle.path / "x"
            )
        assert await runtime.state(run.id) is not None  # the existing one is untouched
        await runtime.start(run.id)
        state = await runtime.state(run.id)
        assert state is not None and state["status"] == "running"
        assert await runtime.list_ids() == [run.id]
        await runtime.pause(run.id)
        assert (await runtime.state(run.id) or {})["status"] == "paused"
        await runtime.resume(run.id)
        await runtime.kill(run.id, signal.SIGKILL)
        with trio.fail_after(10):
            assert await run.pidfd.wait() == 137
        state = await runtime.state(run.id)
        assert state is not None and state["status"] == "stopped"
    finally:
        run.pidfd.close()
        await runtime.delete(run.id, force=True)


async def test_hostname_and_masked_paths(runtime: Runtime, bundle: Bundle) -> None:
    # /proc/kcore is the classic one but this kernel may lack it; check whichever of
    # Docker's masked files exist here and are non-empty on the host.
    files = [p for p in ("/proc/kcore", "/proc/keys", "/proc/timer_list") if Path(p).is_file()]
    assert files, "no masked file exists on this host"
    script = "hostname; " + "; ".join(f"wc -c < {p}" for p in files) + "; ls /sys/firmware"
    run = await run_to_exit(runtime, bundle, ["sh", "-c", script])
    assert run.exit_code == 0, run.err
    assert run.out.split() == [b"testhost"] + [b"0"] * len(files)  # /sys/firmware empty


async def test_no_new_privs_and_docker_caps(runtime: Runtime, bundle: Bundle) -> None:
    run = await run_to_exit(runtime, bundle, ["cat", "/proc/self/status"])
    status = dict(line.split(":", 1) for line in run.out.decode().splitlines() if ":" in line)
    assert status["NoNewPrivs"].strip() == "1"
    assert status["CapEff"].strip() == "00000000a80425fb"
    assert status["CapBnd"].strip() == "00000000a80425fb"
    assert status["CapInh"].strip() == "0000000000000000"


async def test_memory_limit_in_cgroup(runtime: Runtime, bundle: Bundle) -> None:
    run, out_r, err_r = await create(
        runtime, bundle, ["sleep", "1000"], resources=Resources(memory=64 << 20, pids_limit=50)
    )
    os.close(out_r)
    os.close(err_r)
    try:
        assert cgroups.memory_limit(run.cgroups_path) == 64 << 20
        assert cgroups.oom_kill_count(run.cgroups_path) == 0
        await runtime.start(run.id)
        assert (cgroups.pids_current(run.cgroups_path) or 0) >= 1
        assert (cgroups.memory_usage(run.cgroups_path) or 0) > 0
        await runtime.kill(run.id, "KILL", all=True)
        with trio.fail_after(10):
            assert await run.pidfd.wait() == 137
    finally:
        run.pidfd.close()
        await runtime.delete(run.id, force=True)
    assert cgroups.memory_limit(run.cgroups_path) is None  # cgroup removed by delete
    assert cgroups.cleanup(run.cgroups_path) == []


async def test_missing_command(runtime: Runtime, bundle: Bundle) -> None:
    with pytest.raises(CommandNotFound) as info:
        await create(runtime, bundle, ["nosuchcommand"])
    assert "nosuchcommand" in info.value.message
    assert "level=" not in info.value.message
    assert info.value.exit_code == 127
    with pytest.raises(CommandNotFound):
        await create(runtime, bundle, ["/bin/nosuch"])
    assert await runtime.list_ids() == []


async def test_not_executable(runtime: Runtime, bundle: Bundle) -> None:
    with pytest.raises(CannotExecute) as info:
        await create(runtime, bundle, ["/etc/passwd"])
    assert info.value.exit_code == 126
    assert await runtime.list_ids() == []


async def test_exec(runtime: Runtime, bundle: Bundle) -> None:
    run, out_r, err_r = await create(runtime, bundle, ["sleep", "1000"])
    os.close(out_r)
    os.close(err_r)
    try:
        await runtime.start(run.id)
        # Detached exec: reaped through a pidfd like init; typed start errors.
        r, w = os.pipe()
        out = bytearray()
        try:
            pid = await runtime.exec_detached(
                run.id,
                ProcessSpec(args=["echo", "detached"], env=ENV),
                bundle=bundle.path,
                init_pid=run.pidfd.pid,
                stdin=None,
                stdout=w,
                stderr=w,
                pid_file=bundle.path / "exec.pid",
            )
        finally:
            os.close(w)
        with PidFd(pid, "test exec") as pidfd:
            with trio.fail_after(10):
                await drain(r, out)
                assert await pidfd.wait() == 0
        assert out == b"detached\n"

        with pytest.raises(CommandNotFound):
            await runtime.exec_detached(
                run.id,
                ProcessSpec(args=["nosuch"], env=ENV),
                bundle=bundle.path,
                init_pid=run.pidfd.pid,
                stdin=None,
                stdout=1,
                stderr=2,
                pid_file=bundle.path / "exec2.pid",
            )
        await runtime.kill(run.id, signal.SIGKILL)
        with trio.fail_after(10):
            assert await run.pidfd.wait() == 137
    finally:
        run.pidfd.close()
        await runtime.delete(run.id, force=True)

    with pytest.raises(NotFound):
        await runtime.exec_detached(
            run.id,
            ProcessSpec(args=["true"], env=ENV),
            bundle=bundle.path,
            init_pid=run.pidfd.pid,
            stdin=None,
            stdout=1,
            stderr=2,
            pid_file=bundle.path / "exec3.pid",
        )


async def test_start_runs_no_second_runc(
    runtime: Runtime, bundle: Bundle, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`start` releases the created init through runc's exec fifo, as `runc start`
    would, without a runc process of its own; runc then reports it running, and a
    second start gets runc's own refusal."""
    run, out_r, err_r = await create(runtime, bundle, ["sh", "-c", "echo started; sleep 1000"])
    os.close(err_r)
    await runtime._runc_fifo()  # the runtime's name, asked once before the count
    spawned: list[list[str]] = []
    real = trio.run_process

    async def counting(argv: list[str], **kw: object) -> object:
        spawned.append(list(argv))
        return await real(argv, **kw)  # type: ignore[arg-type]

    try:
        monkeypatch.setattr(trio, "run_process", counting)
        await runtime.start(run.id, init=run.pidfd)
        assert [a for a in spawned if "start" in a] == []
        async with trio.lowlevel.FdStream(out_r) as out:
            with trio.fail_after(10):
                assert await out.receive_some() == b"started\n"
        state = await runtime.state(run.id)
        assert state is not None and state["status"] == "running"
        with pytest.raises(CorralError, match="running"):
            await runtime.start(run.id, init=run.pidfd)
    finally:
        await runtime.kill(run.id, signal.SIGKILL)
        with trio.fail_after(10):
            await run.pidfd.wait()
        run.pidfd.close()
        await runtime.delete(run.id, force=True)


async def test_start_after_the_init_died(runtime: Runtime, bundle: Bundle) -> None:
    """A created init killed before its start: the start fails, as runc's does."""
    run, out_r, err_r = await create(runtime, bundle, ["true"])
    os.close(out_r)
    os.close(err_r)
    try:
        os.kill(run.pid, signal.SIGKILL)
        with trio.fail_after(10):
            assert await run.pidfd.wait() == 137
        with pytest.raises(CorralError, match="stopped"):
            await runtime.start(run.id, init=run.pidfd)
    finally:
        run.pidfd.close()
        await runtime.delete(run.id, force=True)


def cgroup_dirs(path: str) -> list[Path]:
    """The container's cgroup directory in every hierarchy that has it."""
    found = []
    for m in read_mountinfo():
        if m.fstype in ("cgroup", "cgroup2"):
            d = Path(m.mount_point) / path.lstrip("/")
            if d.is_dir():
                found.append(d)
    return found


@pytest.mark.parametrize("pid_mode", ["", "host"])
async def test_delete_exited(
    runtime: Runtime, bundle: Bundle, monkeypatch: pytest.MonkeyPatch, pid_mode: str
) -> None:
    """After its init exited, a container's runc state and cgroups go: with its own PID
    namespace without a runc process; with the host's, through `runc delete`, which
    kills what the init left behind in the cgroup (here a background sleep)."""
    namespaces = {"pid": "host"} if pid_mode else {}
    run, out_r, err_r = await create(
        runtime, bundle, ["sh", "-c", "sleep 1000 & exit 0"], namespaces=namespaces
    )
    os.close(out_r)
    os.close(err_r)
    spawned: list[list[str]] = []
    real = trio.run_process

    async def counting(argv: list[str], **kw: object) -> object:
        spawned.append(list(argv))
        return await real(argv, **kw)  # type: ignore[arg-type]

    try:
        await runtime.start(run.id, init=run.pidfd)
        with trio.fail_after(10):
            assert await run.pidfd.wait() == 0
        assert cgroup_dirs(run.cgroups_path)
        monkeypatch.setattr(trio, "run_process", counting)
        await runtime.delete_exited(run.id, run.cgroups_path, own_pid_namespace=not pid_mode)
        monkeypatch.undo()
        assert await runtime.state(run.id) is None
        assert cgroup_dirs(run.cgroups_path) == []
        assert bool([a for a in spawned if "delete" in a]) == bool(pid_mode)
    finally:
        run.pidfd.close()
        await runtime.delete(run.id, force=True)


async def test_unknown_container(runtime: Runtime) -> None:
    assert await runtime.state("nope") is None
    await runtime.delete("nope")
    await runtime.delete("nope", force=True)
    with pytest.raises(CorralError):
        await runtime.start("nope")
    assert await runtime.list_ids() == []


def test_no_overlay_mounts_left(tmp_path: Path) -> None:
    mine = [m for m in read_mountinfo() if m.fstype == "overlay" and "pytest" in m.mount_point]
    assert mine == []


def exe_of(pid: int) -> tuple[str, int | None]:
    """What /proc/PID/exe names, and its seals (None: not a memfd)."""
    import fcntl

    link = os.readlink(f"/proc/{pid}/exe")
    fd = os.open(f"/proc/{pid}/exe", os.O_RDONLY | os.O_CLOEXEC)
    try:
        seals: int | None = fcntl.fcntl(fd, fcntl.F_GET_SEALS)
    except OSError:
        seals = None
    finally:
        os.close(fd)
    return link, seals


async def parked_exe(rt: Runtime, bundle: Bundle) -> tuple[str, int | None]:
    """Create a container and read its parked `runc init`'s executable, then delete it."""
    run, out_r, err_r = await create(rt, bundle, ["true"])
    try:
        return exe_of(run.pid)
    finally:
        run.pidfd.close()
        os.close(out_r)
        os.close(err_r)
        await rt.delete(run.id, force=True)


async def test_runc_runs_from_its_sealed_memfd(runtime: Runtime, bundle: Bundle) -> None:
    """runc's init runs from the daemon's sealed memfd of runc, not from a protective
    copy runc makes at every create (runc skips it: `is_self_cloned`); /proc/PID/exe
    of the created init says so to anyone who looks."""
    from supervisor.runtime.runcbin import RUNC_SEALS

    link, seals = await parked_exe(runtime, bundle)
    assert link.startswith("/memfd:corral-runc:/"), link
    assert seals == RUNC_SEALS
    # and the container still runs
    assert (await run_to_exit(runtime, bundle, ["echo", "hi"])).out == b"hi\n"


async def test_runc_runs_from_its_path_when_no_memfd_can_be_made(
    runtime: Runtime, bundle: Bundle, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where memfd_create fails, runc runs from its path (and protects itself as it
    would without us), with one log line naming the binary and why."""
    import errno

    from structlog.testing import capture_logs

    from supervisor.runtime import runcbin

    def refused(*_: object) -> int:
        raise OSError(errno.ENOSYS, "memfd_create refused")

    monkeypatch.setattr(runcbin.os, "memfd_create", refused)
    with capture_logs() as logs:
        link, _ = await parked_exe(runtime, bundle)
        assert (await run_to_exit(runtime, bundle, ["echo", "hi"])).out == b"hi\n"
    assert not link.startswith("/memfd:corral-runc:"), link
    unsealed = [e for e in logs if e["event"] == "runtime.unsealed"]
    assert len(unsealed) == 1 and "memfd_create refused" in unsealed[0]["reason"]


async def test_a_replaced_runc_gets_a_new_memfd(
    runtime: Runtime, bundle: Bundle, tmp_path: Path
) -> None:
    """An upgrade of runc under a running daemon (a new file renamed over the old):
    the next create runs from a memfd of the new binary."""
    binary = tmp_path / "runc"
    shutil.copy(shutil.which(RUNC) or RUNC, binary)
    rt = Runtime(str(binary), runtime.state_dir)
    first = rt.sealed.exe()
    await parked_exe(rt, bundle)
    staged = tmp_path / "runc.new"
    shutil.copy(binary, staged)
    os.rename(staged, binary)
    link, _ = await parked_exe(rt, bundle)
    assert rt.sealed.exe() != first
    assert link.startswith(f"/memfd:corral-runc:{binary}"), link
    rt.sealed.close()


def test_the_holder_runs_runc_from_the_sealed_memfd(
    tmp_path: Path, bundle: Bundle
) -> None:
    """`runc create` run by the holder (every container's, under the daemon) is exec'd
    from the memfd the daemon hands it with the request."""
    import socket
    import subprocess
    import sys

    from supervisor.runtime import holderd
    from supervisor.runtime.runcbin import RUNC_SEALS

    rt = Runtime(RUNC, tmp_path / "runc-state")
    cid, _ = write_config(bundle, ["true"])
    path = str(tmp_path / "h.sock")
    proc = subprocess.Popen([sys.executable, "-I", "-S", holderd.__file__, path],
                            stdout=subprocess.PIPE)
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    null = os.open(os.devnull, os.O_RDWR)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
        conn.settimeout(60)
        conn.connect(path)
        exe = rt.sealed.exe()
        assert exe is not None
        argv = rt._argv("create", "--bundle", str(bundle.path), "--pid-file",
                        str(bundle.path / "init.pid"), cid)
        socket.send_fds(conn, [json.dumps({"op": "spawn", "tag": 1, "argv": argv}).encode()],
                        [null, null, null, exe])
        reply, fds, _, _ = socket.recv_fds(conn, 65536, 16)
        assert json.loads(reply)["code"] == 0
        pid = int((bundle.path / "init.pid").read_text())
        link, seals = exe_of(pid)
        assert link.startswith("/memfd:corral-runc:/"), link
        assert seals == RUNC_SEALS
    finally:
        subprocess.run([RUNC, "--root", str(rt.state_dir), "delete", "--force", cid],
                       check=False, capture_output=True)
        cgroups.cleanup(CGROUP_PARENT)
        os.close(null)
        conn.close()
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
        rt.sealed.close()


@pytest.mark.skipif(not os.path.exists("/proc/self/autogroup"), reason="no sched_autogroup")
@pytest.mark.parametrize("background", [False, True])
def test_a_background_spawn_runs_in_a_lighter_session_of_its_own(
    tmp_path: Path, background: bool
) -> None:
    """A policy restart's `runc create` (a `background` spawn) weighs less on a busy
    host than the daemon and its clients: its own session, at autogroup nice 5; a
    user's start keeps the holder's session and weight.  A task that never left the
    first session (CI's runner) is in the root task group, whose autogroup file reads
    empty: a new session gets an autogroup of its own all the same."""
    import socket
    import subprocess
    import sys

    from supervisor.runtime import holderd

    probe = ("import os; print(os.getsid(0) == os.getpid(), "
             "(open('/proc/self/autogroup').read().split() or ['-'])[-1])")
    path = str(tmp_path / "h.sock")
    proc = subprocess.Popen([sys.executable, "-I", "-S", holderd.__file__, path],
                            stdout=subprocess.PIPE)
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    null = os.open(os.devnull, os.O_RDWR)
    r, w = os.pipe()
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
        conn.settimeout(60)
        conn.connect(path)
        msg = {"op": "spawn", "tag": 1, "argv": [sys.executable, "-I", "-S", "-c", probe],
               "background": background}
        socket.send_fds(conn, [json.dumps(msg).encode()], [null, w, null])
        os.close(w)
        w = -1
        reply, _, _, _ = socket.recv_fds(conn, 65536, 16)
        assert json.loads(reply)["code"] == 0
        with os.fdopen(r, "rb") as out:
            r = -1
            lone, nice = out.read().decode().split()
        own = (Path("/proc/self/autogroup").read_text().split() or ["-"])[-1]
        assert (lone, nice) == (("True", "5") if background else ("False", own))
    finally:
        for fd in (null, r, w):
            if fd >= 0:
                os.close(fd)
        conn.close()
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
