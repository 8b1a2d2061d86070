"""Health checks, the running part: one probe task per running container.

`start()` is called by the engine each time a container starts.  It resets the
container's `State.Health` to `starting` and starts a task in the engine's nursery that
probes until the container's init exits: it holds a duplicate of the init's pidfd and
waits for it to become readable, so the probes stop the moment the container dies
(before the engine's clean-up) and no result of a dying container is ever recorded.

A probe is `runc exec --detach` of the test command with the container's env, user and
working directory (Docker's exec config for health checks).  Detached, runc exits once
the command runs and the daemon, as child subreaper, adopts the probe: it is waited on
through a pidfd like a container init, and no runc process stays while it runs.  At its
timeout the probe is cancelled: its descendants are killed first (so a waiting shell
can reap them), then the probe itself, which the daemon reaps -- no process and no
zombie of ours is left.  Probes of many containers run concurrently, each in its own
task; a container never has two probes at once.

Transitions are reported through `on_status(container, old, new)`, a plain function:
the engine turns it into `health_status: ...` events and restart-on-unhealthy.  It must
not await (a restart from inside the probe task would cancel that very task): schedule
work in a nursery instead.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import structlog
import trio

from supervisor.engine import create as plan
from supervisor.engine.caps import capabilities
from supervisor.engine.hooks import NoHooks
from supervisor.engine.live import Live
from supervisor.engine.state import Status
from supervisor.engine.timefmt import rfc3339_nano
from supervisor.engine.users import resolve_user
from supervisor.errors import CorralError
from supervisor.metadata.containers import Container
from supervisor.runtime import securityopt
from supervisor.runtime.fds import OwnedFd
from supervisor.runtime.process import PidFd, has_exited
from supervisor.runtime.runc import Runtime
from supervisor.runtime.spec import ProcessSpec
from supervisor.supervise import healthstate as hs

log = structlog.get_logger("corral.health")

OnStatus = Callable[[Container, str, str], None]

#: Docker gives starting an exec 30 s, not counted in the probe's timeout.
EXEC_START_TIMEOUT = 30.0
#: How long a shell gets to exit by itself once the children it waits on are killed.
REAP_GRACE = 0.05
#: Upper bound on waiting for a SIGKILLed probe (a frozen cgroup delays the kill).
KILL_WAIT = 10.0


class ProbeHost(Protocol):
    """What the runner needs from the engine."""

    runtime: Runtime

    def rootfs_of(self, c: Container) -> Path: ...

    def dir_of(self, c: Container) -> Path: ...


def start(
    host: ProbeHost,
    c: Container,
    pidfd: PidFd,
    nursery: trio.Nursery,
    on_status: OnStatus,
    save: Callable[[Container], None] | None = None,
) -> None:
    """A fresh health state for this run and, if the container has a check, its probes.

    `pidfd` is the container init's, owned by its supervision task: the probe task gets
    a duplicate of its own (`watch`), so neither closes the other's.  `save(c)` is
    called after each status change so the record on disk follows.
    """
    cfg = hs.parse(c.config.get("Healthcheck"), c.config.get("Shell"))
    if cfg is None:
        c.state.health = None
        return
    c.state.health = hs.on_start(c.state.health)
    watch = pidfd.dup(f"container {c.short_id} health watch")
    try:
        nursery.start_soon(_run, host, c, cfg, watch, on_status, save)
    except BaseException:
        watch.close()
        raise


async def _run(
    host: ProbeHost,
    c: Container,
    cfg: hs.HealthConfig,
    watch: OwnedFd,
    on_status: OnStatus,
    save: Callable[[Container], None] | None,
) -> None:
    with watch:
        async with trio.open_nursery() as n:
            n.start_soon(_probe_loop, host, c, cfg, watch, on_status, save)
            await trio.lowlevel.wait_readable(watch.fileno())  # the container's init exited
            n.cancel_scope.cancel()


async def _probe_loop(
    host: ProbeHost,
    c: Container,
    cfg: hs.HealthConfig,
    watch: OwnedFd,
    on_status: OnStatus,
    save: Callable[[Container], None] | None,
) -> None:
    started = trio.current_time()

    def since_start() -> int:
        return int((trio.current_time() - started) * hs.SECOND)

    while True:
        health = c.state.health or hs.Health()
        await trio.sleep(hs.next_delay(cfg, health.status, since_start()) / hs.SECOND)
        if c.state.status is not Status.RUNNING:
            continue  # paused: Docker suspends the checks, and an exec would hang
        probe_start = since_start()
        result = await run_probe(host, c, cfg)
        if has_exited(watch):
            return  # the container died under the probe: its result means nothing
        old = (c.state.health or hs.Health()).status
        new_health = hs.apply_result(c.state.health or hs.Health(), result, cfg, probe_start)
        c.state.health = new_health
        if new_health.status != old:
            log.info(
                "container.health",
                id=c.short_id,
                name=c.name,
                status=new_health.status,
                exit_code=result.exit_code,
            )
            if save is not None:
                save(c)
            try:
                on_status(c, old, new_health.status)
            except Exception:  # a listener's bug must not stop the checks or the daemon
                log.exception("health.on_status_failed", id=c.short_id)


def probe_process(host: ProbeHost, c: Container, argv: tuple[str, ...]) -> ProcessSpec:
    """The probe as Docker execs it: the container's env, user, working dir and caps."""
    user = resolve_user(
        host.rootfs_of(c), c.config.get("User") or "", c.host_config.get("GroupAdd") or None
    )
    env = plan.merge_env(c.config.get("Env"), [])
    if not any(e.startswith("HOSTNAME=") for e in env) and c.config.get("Hostname"):
        env.append(f"HOSTNAME={c.config['Hostname']}")
    if not any(e.startswith("HOME=") for e in env):
        env.append(f"HOME={user.home}")
    hc = c.host_config
    return ProcessSpec(
        args=list(argv),
        env=env,
        cwd=c.config.get("WorkingDir") or "/",
        uid=user.uid,
        gid=user.gid,
        additional_gids=user.additional_gids,
        capabilities=capabilities(hc),
        no_new_privileges=securityopt.no_new_privileges(hc),
    )


async def run_probe(host: ProbeHost, c: Container, cfg: hs.HealthConfig) -> hs.ProbeResult:
    """Run one probe inside the container; never raises for the probe's own failures."""
    start = rfc3339_nano()
    try:
        process = probe_process(host, c, cfg.argv)
    except CorralError as exc:
        return hs.ProbeResult(start, rfc3339_nano(), -1, exc.message)
    out_r, out_w = OwnedFd.pipe("health probe output")
    output = bytearray()
    with out_r:
        try:
            probe = await _exec(host, c, process, out_w)
        except CorralError as exc:
            return hs.ProbeResult(start, rfc3339_nano(), -1, exc.message)
        os.set_blocking(out_r.fileno(), False)
        with probe:
            code, timed_out = await _wait_probe(probe, out_r, output, cfg.timeout / hs.SECOND)
        _drain(out_r, output)
    text = hs.probe_output(bytes(output))
    if timed_out:
        return hs.ProbeResult(start, rfc3339_nano(), -1, hs.timeout_output(cfg.timeout, text))
    return hs.ProbeResult(start, rfc3339_nano(), code, text)


async def _exec(host: ProbeHost, c: Container, process: ProcessSpec, out_w: OwnedFd) -> PidFd:
    """`runc exec --detach`; a pidfd on the probe (now our child).  Closes `out_w`."""
    pid_file = host.dir_of(c) / "health-probe.pid"
    with contextlib.suppress(FileNotFoundError):
        pid_file.unlink()
    try:
        with out_w, trio.fail_after(EXEC_START_TIMEOUT):
            pid = await host.runtime.exec_detached(
                c.id,
                process,
                bundle=host.dir_of(c),
                init_pid=c.state.pid,
                stdin=None,
                stdout=out_w.fileno(),
                stderr=out_w.fileno(),
                pid_file=pid_file,
            )
        # Claimed from here on: the orphan reaper leaves it alone even if it dies
        # before its execve, still named like runc's own leftovers (a container
        # killed under the probe).  Already reaped: this raises, the probe failed.
        return PidFd(pid, f"container {c.short_id} health probe")
    except trio.TooSlowError:
        await _reap_orphan(pid_file)
        raise CorralError(f"timed out starting health check for container {c.id}") from None
    except BaseException:
        # Cancelled (the container or the daemon stops) while runc was starting it: a
        # probe runc already started is our child now; kill and reap it.
        await _reap_orphan(pid_file)
        raise


async def _reap_orphan(pid_file: Path) -> None:
    with trio.CancelScope(shield=True):
        try:
            probe = PidFd(int(pid_file.read_text().strip()), "orphaned health probe")
        except (OSError, ValueError, CorralError):
            return
        with probe:
            await _kill_probe(probe)


async def _wait_probe(
    probe: PidFd, out_r: OwnedFd, output: bytearray, timeout: float
) -> tuple[int, bool]:
    """Wait for the probe's exit (reading its output meanwhile); (exit code, timed out)."""
    async with trio.open_nursery() as n:
        n.start_soon(_read_output, out_r, output)
        code = -1
        timed_out = True
        try:
            with trio.move_on_after(timeout):
                code = await _reap(probe)
                timed_out = False
        finally:
            if timed_out:  # the timeout, or a cancellation from outside
                await _kill_probe(probe)
        n.cancel_scope.cancel()
    return code, timed_out


async def _read_output(fd: OwnedFd, output: bytearray) -> None:
    """Keep reading so the probe never blocks on a full pipe; keep what is stored."""
    while True:
        try:
            data = os.read(fd.fileno(), 65536)
        except BlockingIOError:
            await trio.lowlevel.wait_readable(fd.fileno())
            continue
        if not data:
            return
        if len(output) <= hs.MAX_OUTPUT_LEN:
            output.extend(data[: hs.MAX_OUTPUT_LEN + 1 - len(output)])


def _drain(fd: OwnedFd, output: bytearray) -> None:
    """What the probe wrote before it exited (a background child may keep the pipe)."""
    while True:
        try:
            data = os.read(fd.fileno(), 65536)
        except BlockingIOError:
            return
        if not data:
            return
        if len(output) <= hs.MAX_OUTPUT_LEN:
            output.extend(data[: hs.MAX_OUTPUT_LEN + 1 - len(output)])


def descendants(pid: int) -> list[int]:
    """Every descendant of `pid`, parents before children (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces and parentheses.
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 1:
            children.setdefault(int(fields[1]), []).append(int(entry))
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _kill_all(pids: list[int]) -> None:
    for p in reversed(pids):  # children first
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(p, signal.SIGKILL)


async def _kill_probe(probe: PidFd) -> int:
    """Kill a probe and all it started, reap it; its exit code (-1 if not reaped).

    Descendants go first, a few rounds, each giving the probe a moment to exit by
    itself: a shell waiting on a killed child reaps it and returns, which leaves no
    zombie in a container whose init does not reap (busybox `sleep`, most apps).
    """
    with trio.CancelScope(shield=True):
        for _ in range(3):
            kids = descendants(probe.pid)
            if not kids:
                break
            _kill_all(kids)
            with trio.move_on_after(REAP_GRACE):
                return await _reap(probe)
        _kill_all(descendants(probe.pid))
        probe.send_signal(signal.SIGKILL)
        with trio.move_on_after(KILL_WAIT):
            return await _reap(probe)
        log.warning("health.probe_unreaped", pid=probe.pid)
    return -1


async def _reap(probe: PidFd) -> int:
    try:
        return await probe.wait()
    except ChildProcessError:  # not ours (runc was killed before handing it over)
        await trio.lowlevel.wait_readable(probe.fileno())
        return -1


class HealthHooks(NoHooks):
    """Health checks' step in a container's lifecycle (`engine/hooks.py`): each run,
    started or restored, gets a fresh state and its probes until its init exits."""

    def __init__(
        self,
        host: ProbeHost,
        nursery: trio.Nursery,
        on_status: OnStatus,
        save: Callable[[Container], None],
    ) -> None:
        self.host = host
        self.nursery = nursery
        self.on_status = on_status
        self.save = save

    def running(self, c: Container, live: Live, *, restored: bool) -> None:
        assert live.pidfd is not None  # it runs
        start(self.host, c, live.pidfd, self.nursery, self.on_status, save=self.save)
