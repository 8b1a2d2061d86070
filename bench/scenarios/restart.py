"""restart: how fast a crashing container comes back, read from each engine's events.

A container `sh -c 'exit 1'` with `--restart on-failure:N`, corral's backoff set to zero
(label `corral.restart.backoff=0s,0s,0s`; Podman has no backoff), so what is timed is
the engine's own restart path: notice the exit, decide, start again.  The times are the
engines' own event timestamps (corral: `GET /events`, through `corral events`; podman:
`podman events`), so neither CLI's start-up is counted: `die` -> next `start` is the
restart latency, `start` -> next `start` one whole cycle (the container's short run
included).  `on-failure:N` ends the loop by itself: nothing is removed mid-restart.

`end_loops` also lives here: the one safe way to stop crash loops before removing them
(see its docstring), used by `crashloop` too.
"""

from __future__ import annotations

import datetime
import json
import re
import subprocess
import time
from collections.abc import Sequence
from functools import partial

import trio

from bench.api import Api, ApiError
from bench.context import Bench
from bench.engines.base import BenchError, Engine
from bench.engines.base import run as run_command
from bench.registry import Scenario
from bench.report import Row

CRASH = ("sh", "-c", "exit 1")
REMOVE_ATTEMPTS = 3  # podman's `rm -f` now and then loses a race with its own restart
NO_RESTART = {"RestartPolicy": {"Name": "no", "MaximumRetryCount": 0}}
ZERO_BACKOFF = ("--label", "corral.restart.backoff=0s,0s,0s")
CYCLES_PER_SAMPLE = 4  # restart cycles measured per `--samples` (cycles are cheap)
EVENT_FORMAT = "{{json .}}"  # both CLIs; corral's `--format json` is not docker 24's alias

_RFC3339 = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$")


def event_nanos(stamp: str) -> int:
    """Nanoseconds since the epoch of an RFC 3339 time with any number of fraction
    digits (podman drops trailing zeros: `08:14:16.41755937Z`)."""
    m = _RFC3339.match(stamp.strip())
    if m is None:
        raise ValueError(f"not an RFC 3339 time: {stamp!r}")
    base, frac, zone = m.groups()
    zone = "+00:00" if zone == "Z" else zone
    seconds = int(datetime.datetime.fromisoformat(base + zone).timestamp())
    return seconds * 1_000_000_000 + int((frac or "0").ljust(9, "0")[:9])


def parse_event(line: bytes | str) -> tuple[str, int] | None:
    """(action, nanoseconds) of one JSON event line, docker's shape (`Action`,
    `timeNano`) or podman's (`Status`, `Time`); podman's `died` is docker's `die`.
    None for a blank line or an event without an action."""
    if not line.strip():
        return None
    e = json.loads(line)
    action = e.get("Action") or e.get("status") or e.get("Status")
    if not action:
        return None
    if e.get("timeNano"):
        ns = int(e["timeNano"])
    elif e.get("Time"):
        ns = event_nanos(str(e["Time"]))
    else:
        raise ValueError(f"event without a time: {line!r}")
    return ("die" if action == "died" else str(action)), ns


def cycle_times(events: Sequence[tuple[str, int]]) -> tuple[list[float], list[float]]:
    """From one container's events in order: seconds from each `die` to the `start`
    that follows it, and between consecutive `start`s.  Other actions (podman's
    `init`/`restart`, corral's `restart_limit`) are ignored; a `die` no start follows
    (the last one) gives nothing."""
    latencies: list[float] = []
    periods: list[float] = []
    last_die: int | None = None
    last_start: int | None = None
    for action, ns in events:
        if action == "die":
            last_die = ns
        elif action == "start":
            if last_die is not None:
                latencies.append((ns - last_die) / 1e9)
                last_die = None
            if last_start is not None:
                periods.append((ns - last_start) / 1e9)
            last_start = ns
    return latencies, periods


def crash_flags(e: Engine) -> list[str]:
    """corral's backoff to zero, so it races Podman's backoff-free loop like for like."""
    return list(ZERO_BACKOFF) if e.name == "corral" else []


async def watch(e: Engine, cid: str, since: float, dies: int) -> list[tuple[str, int]]:
    """The container's events from `since` (replayed, so none is missed however late
    the stream opens) until its `dies`-th `die`."""
    argv = e.argv(
        "events", "--since", f"{since:.3f}", "--filter", f"container={cid}",
        "--format", EVENT_FORMAT,
    )  # fmt: skip
    got: list[tuple[str, int]] = []
    pending = b""
    async with trio.open_nursery() as nursery:
        proc: trio.Process = await nursery.start(
            partial(
                trio.run_process,
                argv,
                env=e.env(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                check=False,
            )
        )
        assert proc.stdout is not None
        async for chunk in proc.stdout:
            *lines, pending = (pending + chunk).split(b"\n")
            for line in lines:
                event = parse_event(line)
                if event is not None:
                    got.append(event)
            if sum(1 for a, _ in got if a == "die") >= dies:
                nursery.cancel_scope.cancel()  # the stream never ends by itself
                break
        else:
            raise BenchError(f"{e.name} events ended after {len(got)} events")
    return got


async def end_loops(e: Engine, ids: Sequence[str]) -> None:
    """Stop crash-looping containers and remove them, all at once.

    corral: policy `no` first (`POST /containers/ID/update`), then wait for the run in
    progress to exit, then `rm`, so a removal never races a restart and what the
    scenario times ends cleanly.  Podman's `rm -f` mostly copes with a loop (now and
    then it fails with "container state improper" and is tried again).
    """
    failed: list[str] = []

    async def end(cid: str) -> None:
        try:
            api = getattr(e, "api", None)
            if isinstance(api, Api):
                await api.request("POST", f"/containers/{cid}/update", NO_RESTART)
                await api.request("POST", f"/containers/{cid}/wait")
            for attempt in range(REMOVE_ATTEMPTS):
                try:
                    await e.remove_container(cid)
                    return
                except BenchError:  # podman: "container state improper" mid-restart
                    if attempt == REMOVE_ATTEMPTS - 1:
                        raise
        except (BenchError, ApiError) as exc:
            failed.append(f"{cid[:12]}: {exc}")

    async with trio.open_nursery() as nursery:
        for cid in ids:
            nursery.start_soon(end, cid)
    if failed:
        raise BenchError(f"{e.name}: {len(failed)} crash loops not ended ({failed[0]})")


async def one_loop(e: Engine, restarts: int) -> tuple[list[float], list[float]]:
    since = time.time() - 1  # a coarse clock on either side must not cut the first event
    policy = f"on-failure:{restarts}"
    argv = e.run_argv("-d", "--restart", policy, *crash_flags(e), command=CRASH)
    cid = (await run_command(argv, e.env(), capture=True)).stdout.decode().strip()
    try:
        with trio.fail_after(60 + restarts * 2):
            events = await watch(e, cid, since, restarts + 1)
    finally:
        await end_loops(e, [cid])
    latencies, periods = cycle_times(events)
    if len(latencies) < restarts:
        raise BenchError(f"{e.name}: {len(latencies)} of {restarts} restarts seen in events")
    return latencies, periods


async def run(b: Bench) -> list[Row]:
    cycles = b.sizes.samples * CYCLES_PER_SAMPLE
    warm = b.sizes.warmup
    latency = Row(f"restart: `die` -> next `start` (backoff 0), {cycles} restarts", "s")
    period = Row(f"restart: one crash cycle, `start` -> next `start`, {cycles} cycles", "s")
    for e in b.ordered(0):
        lat, per = await one_loop(e, cycles + warm)
        latency.samples[e.name] = lat[warm:]
        period.samples[e.name] = per[warm:]
        await e.settle()
    note = "from each engine's event timestamps; corral label corral.restart.backoff=0s,0s,0s"
    latency.note = period.note = note
    return [latency, period]


SCENARIO = Scenario("restart", "restart-cycle latency of a crashing container, backoff 0", run)
