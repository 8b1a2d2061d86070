"""Kubernetes probes, the running part: one task per started container that has any.

Started by the engine beside Docker's health checks, with a duplicate of the init's
pidfd: the task ends the moment the init exits (as `supervise/health.py` does), so
a probe result of a dying container is never counted.  Between probes it sleeps the
probe's period, nothing else: no polling.  exec probes are `health.run_probe`
(`runc exec --detach`, waited on by pidfd, killed at the timeout); httpGet and
tcpSocket connect from the daemon to the pod's IP on its bridge, as the kubelet
reaches a pod from the node.  Rules and records: `probes.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Protocol

import structlog
import trio

from supervisor.engine.hooks import NoHooks
from supervisor.engine.live import Live
from supervisor.engine.state import Status
from supervisor.engine.timefmt import rfc3339_nano
from supervisor.metadata.containers import Container
from supervisor.pods import probes as core
from supervisor.runtime.fds import OwnedFd
from supervisor.runtime.process import PidFd
from supervisor.supervise import health
from supervisor.supervise import healthstate as hs

log = structlog.get_logger("corral.probes")

#: What a verdict does: `emit(c, action)` publishes an event, `kill(c)` kills the
#: container (its restart policy then applies), `address(c)` is the pod's IP.
Emit = Callable[[Container, str], None]


class Host(health.ProbeHost, Protocol):
    def probe_address(self, c: Container) -> str: ...


def start(host: Host, c: Container, pidfd: PidFd, nursery: trio.Nursery, emit: Emit,
          kill: Callable[[Container], None], save: Callable[[Container], None]) -> None:
    """Probe this run of `c`, if its labels carry probes (checked at create)."""
    try:
        found = core.decode(c.config.get("Labels"))
    except core.ProbeError as exc:
        log.error("probes.invalid", id=c.short_id, error=str(exc))
        return
    if not found:
        return
    if any(p.kind == "readiness" for p in found):
        c.state.health = hs.on_start(c.state.health)  # not ready until it says so
    watch = pidfd.dup(f"container {c.short_id} probe watch")
    try:
        nursery.start_soon(_run, host, c, found, watch, emit, kill, save)
    except BaseException:
        watch.close()
        raise


async def _run(host: Host, c: Container, found: list[core.Probe], watch: OwnedFd, emit: Emit,
               kill: Callable[[Container], None], save: Callable[[Container], None]) -> None:
    with watch:
        async with trio.open_nursery() as n:
            n.start_soon(_probes, host, c, found, emit, kill, save)
            await trio.lowlevel.wait_readable(watch.fileno())  # the init exited
            n.cancel_scope.cancel()


async def _probes(host: Host, c: Container, found: list[core.Probe], emit: Emit,
                  kill: Callable[[Container], None], save: Callable[[Container], None]) -> None:
    started = trio.current_time()
    by_kind = {p.kind: p for p in found}
    if "startup" in by_kind:
        ok = await _until_verdict(host, c, by_kind["startup"], started, emit)
        if not ok:
            log.info("container.probe_kill", id=c.short_id, probe="startup")
            kill(c)
            return
    async with trio.open_nursery() as n:
        if "liveness" in by_kind:
            n.start_soon(_liveness, host, c, by_kind["liveness"], started, emit, kill)
        if "readiness" in by_kind:
            n.start_soon(_readiness, host, c, by_kind["readiness"], started, emit, save)


async def _until_verdict(host: Host, c: Container, p: core.Probe, started: float,
                         emit: Emit) -> bool:
    counter = core.Counter(p)
    await trio.sleep_until(started + p.initial_delay)
    while True:
        verdict = await _observe(host, c, counter, emit)
        if verdict is not None:
            return verdict
        await trio.sleep(p.period)


async def _liveness(host: Host, c: Container, p: core.Probe, started: float, emit: Emit,
                    kill: Callable[[Container], None]) -> None:
    counter = core.Counter(p)
    await trio.sleep_until(started + p.initial_delay)
    while True:
        if await _observe(host, c, counter, emit) is False:
            log.info("container.probe_kill", id=c.short_id, probe="liveness")
            kill(c)
            return
        await trio.sleep(p.period)


async def _readiness(host: Host, c: Container, p: core.Probe, started: float, emit: Emit,
                     save: Callable[[Container], None]) -> None:
    counter = core.Counter(p)
    await trio.sleep_until(started + p.initial_delay)
    while True:
        verdict = await _observe(host, c, counter, emit)
        if verdict is not None:
            status = hs.HEALTHY if verdict else hs.UNHEALTHY
            old = c.state.health or hs.Health()
            c.state.health = replace(old, status=status,
                                     failing_streak=counter.failures)
            save(c)
            emit(c, f"health_status: {status}")
        await trio.sleep(p.period)


async def _observe(host: Host, c: Container, counter: core.Counter, emit: Emit) -> bool | None:
    """Run the probe once (not while paused: Docker suspends checks then)."""
    if c.state.status is not Status.RUNNING:
        return None
    p = counter.probe
    ok, output = await run_once(host, c, p)
    verdict = counter.observe(ok)
    if verdict is not None:
        log.info("container.probe", id=c.short_id, probe=p.kind, ok=verdict, output=output)
        emit(c, f"{p.kind}_probe: {'success' if verdict else 'failure'}")
    return verdict


async def run_once(host: Host, c: Container, p: core.Probe) -> tuple[bool, str]:
    """One probe: (succeeded, what it said)."""
    if p.action == "exec":
        cfg = hs.HealthConfig(argv=p.command, timeout=int(p.timeout * core.SECOND))
        result = await health.run_probe(host, c, cfg)
        return result.exit_code == 0, result.output
    address = p.host or host.probe_address(c)
    if not address:
        return False, "the container has no IP address"
    with trio.move_on_after(p.timeout):
        try:
            stream = await trio.open_tcp_stream(address, p.port)
        except OSError as exc:
            return False, f"dial tcp {address}:{p.port}: {exc.strerror or exc}"
        async with stream:
            if p.action == "tcpSocket":
                return True, ""
            await stream.send_all(core.http_request(p, address))
            head = b""
            while (status := core.http_status(head)) is None:
                data = await stream.receive_some(4096)
                if not data:
                    return False, "the connection closed before a response"
                head += data
                if len(head) > 65536:
                    return False, "no HTTP status line"
            return core.http_status_ok(status), f"HTTP probe status {status}"
    return False, f"timeout after {p.timeout:g}s at {rfc3339_nano()}"


class ProbeHooks(NoHooks):
    """Kubernetes probes' step in a container's lifecycle (`engine/hooks.py`): each
    run, started or restored, is probed until its init exits; a failed liveness or
    startup probe kills it and the restart policy decides, as the kubelet does."""

    def __init__(self, host: Host, nursery: trio.Nursery, emit: Emit,
                 kill: Callable[[Container], None], save: Callable[[Container], None]) -> None:
        self.host = host
        self.nursery = nursery
        self.emit = emit
        self.kill = kill
        self.save = save

    def running(self, c: Container, live: Live, *, restored: bool) -> None:
        assert live.pidfd is not None  # it runs
        start(self.host, c, live.pidfd, self.nursery, self.emit, self.kill, self.save)
