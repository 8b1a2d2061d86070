"""crashloop: how long `ps` takes while many containers crash and restart non-stop.

A fleet of idle containers runs (`--containers`: 200, the issue's size; 20 with
`--quick`) beside 50 containers `sh -c 'exit 1'` with `--restart always`; corral's
backoff set to zero (the harsher case, and Podman's loop has no backoff), so both
engines restart as fast as they can while `ps -a` is asked again and again.  Rows:
`ps -a` through each CLI, end to end (the like-for-like figure), and corral's API
alone (podman has no daemon to ask), `GET /containers/json?all=1` and the issue's
`GET /containers/json` (the running ones).  The note says how many restarts each
engine did meanwhile (corral's RestartCounts, podman's event file): an engine that
restarts less has less in its way.  Each `ps` is cut at QUERY_TIMEOUT and each row at
BUDGET seconds: Podman's `ps` waits for every container's lock, held by the `container
cleanup` processes.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import partial

import trio

from bench import procfs
from bench.api import Api, ApiError
from bench.context import Bench
from bench.engines.base import BenchError, Engine
from bench.engines.base import run as run_command
from bench.fleet import start_fleet
from bench.registry import Scenario
from bench.report import Row, format_value
from bench.scenarios.restart import (
    CRASH,
    EVENT_FORMAT,
    REMOVE_ATTEMPTS,
    crash_flags,
    end_loops,
    parse_event,
)
from bench.stats import percentile

LOOPERS = 50  # crash-looping containers, every mode: the count is what is measured
QUERIES_PER_SAMPLE = 10  # `ps` calls per `--samples`: p99 needs more than a handful
QUIET = 2.0  # seconds of looping before the first timed `ps`
BUDGET = 60.0  # seconds of `ps` per engine and row, at most
QUERY_TIMEOUT = 20.0  # one `ps` longer than this is cut, and said


async def start_loopers(e: Engine, count: int, concurrency: int, ids: list[str]) -> None:
    """Start `count` crash loops, each id into `ids` as it comes (a failure half way
    leaves the caller knowing what to stop)."""
    limiter = trio.CapacityLimiter(concurrency)
    argv = e.run_argv("-d", "--restart", "always", *crash_flags(e), command=CRASH)

    async def one() -> None:
        async with limiter:
            out = await run_command(argv, e.env(), capture=True)
            ids.append(out.stdout.decode().strip())

    async with trio.open_nursery() as nursery:
        for _ in range(count):
            nursery.start_soon(one)


async def podman_starts(e: Engine, since: float, until: float) -> int | None:
    """Podman's container starts in [since, until], from its event file (no container
    lock taken, unlike `inspect`; podman 4.3's `--until` returns nothing from the file,
    hence `--stream=false` and the cut here); None if no answer within QUERY_TIMEOUT."""
    argv = ["events", "--stream=false", "--since", f"{since:.3f}"]
    argv += ["--filter", "type=container", "--filter", "event=start", "--format", EVENT_FORMAT]
    with trio.move_on_after(QUERY_TIMEOUT):
        out = await e.cli(*argv, capture=True)
        events = (parse_event(line) for line in out.stdout.splitlines())
        return sum(1 for ev in events if ev and ev[0] == "start" and ev[1] <= until * 1e9)
    return None


async def corral_restarts(api: Api, ids: Sequence[str]) -> int | None:
    """corral's `RestartCount`s summed, all asked at once (its event history is too long
    to replay quickly while the daemon restarts 50 containers without pause)."""
    counts: list[int] = []

    async def one(cid: str) -> None:
        counts.append(int((await api.request("GET", f"/containers/{cid}/json"))["RestartCount"]))

    with trio.move_on_after(QUERY_TIMEOUT):
        async with trio.open_nursery() as nursery:
            for cid in ids:
                nursery.start_soon(one, cid)
        return sum(counts)
    return None


async def sweep(e: Engine, concurrency: int) -> None:
    """Remove every container left, each tried REMOVE_ATTEMPTS times (podman's `rm -f`
    under load now and then says "given PIDs did not die within timeout"); one that
    still stays is a BenchError, after all the others went."""
    failed: list[str] = []
    limiter = trio.CapacityLimiter(concurrency)

    async def remove(cid: str) -> None:
        async with limiter:
            for attempt in range(REMOVE_ATTEMPTS):
                try:
                    await e.remove_container(cid)
                    return
                except (BenchError, ApiError) as exc:
                    if attempt == REMOVE_ATTEMPTS - 1:
                        failed.append(f"{cid[:12]}: {exc}")

    async with trio.open_nursery() as nursery:
        for cid in await e.container_ids():
            nursery.start_soon(remove, cid)
    if failed:
        raise BenchError(f"{e.name}: {len(failed)} containers not removed ({failed[0]})")


@dataclass
class Timings:
    samples: list[float] = field(default_factory=list)
    over: int = 0  # queries cut at QUERY_TIMEOUT (their sample is the timeout: a floor)


async def timed_all(query: Callable[[], Awaitable[object]], count: int) -> Timings:
    """Up to `count` queries, one after another, for at most BUDGET seconds; a query
    still unanswered after QUERY_TIMEOUT is cut there (Podman's `ps` can wait minutes
    for its locks while 50 containers restart)."""
    t = Timings()
    deadline = time.perf_counter() + BUDGET
    while len(t.samples) < count and time.perf_counter() < deadline:
        start = time.perf_counter()
        with trio.move_on_after(QUERY_TIMEOUT) as scope:
            await query()
        if scope.cancelled_caught:
            t.over += 1
        t.samples.append(time.perf_counter() - start)
    return t


def verdict(t: Timings) -> str:
    """The p99 beside the median (the table's columns are median and p95), the count,
    and how many queries were cut."""
    text = f"p99 {format_value(percentile(t.samples, 99), 's')}, n={len(t.samples)}"
    if t.over:
        text += f", {t.over} cut at {QUERY_TIMEOUT:g} s"
    return text


async def run(b: Bench) -> list[Row]:
    n = LOOPERS
    fleet = b.sizes.fleet
    queries = b.sizes.samples * QUERIES_PER_SAMPLE
    beside = f"{fleet} running + {n} crash-looping"
    cli = Row(f"crashloop: `ps -a` end to end, {beside}", "s")
    api = Row(f"crashloop: `GET /containers/json?all=1`, {beside} (corral API)", "s")
    running = Row(f"crashloop: `GET /containers/json`, {beside} (corral API)", "s")
    calm = Row(f"crashloop: `GET /containers/json`, {fleet} running, before the loops "
               "(corral API)", "s")  # the floor this machine's load sets
    calm_cpu = Row(f"crashloop: daemon CPU per `GET /containers/json`, {fleet} running, "
                   "before the loops", "cpu-s")  # what load distorts least
    rows = (cli, api, running, calm, calm_cpu)
    notes = []
    timings: dict[tuple[str, str], Timings] = {}
    for e in b.ordered(0):
        ids: list[str] = []
        try:
            await start_fleet(e, fleet, b.sizes.concurrency)
            if isinstance(calm_api := getattr(e, "api", None), Api):
                ps = partial(calm_api.request, "GET", "/containers/json")
                pid = e.overhead_pids()[0]
                cpu0 = procfs.cpu_seconds(pid)
                timings[calm.scenario, e.name] = t = await timed_all(ps, queries)
                calm_cpu.samples[e.name] = [(procfs.cpu_seconds(pid) - cpu0) / len(t.samples)]
            await start_loopers(e, n, b.sizes.concurrency, ids)
            await trio.sleep(QUIET)
            await timed_all(partial(e.cli, "ps", "-a"), 1)  # warm-up
            client = getattr(e, "api", None)
            corral = client if isinstance(client, Api) else None
            before = await corral_restarts(corral, ids) if corral else None
            since = time.time()
            timings[cli.scenario, e.name] = await timed_all(partial(e.cli, "ps", "-a"), queries)
            if corral:
                ps = partial(corral.request, "GET", "/containers/json?all=1")
                timings[api.scenario, e.name] = await timed_all(ps, queries)
                ps = partial(corral.request, "GET", "/containers/json")
                timings[running.scenario, e.name] = await timed_all(ps, queries)
            until = time.time()
            if corral:
                after = await corral_restarts(corral, ids)
                done = None if after is None or before is None else after - before
            else:
                done = await podman_starts(e, since, until)
            rate = "?" if done is None else f"{done / (until - since):.1f}"
            notes.append(f"{e.name} {rate} restarts/s")
        finally:
            try:
                await end_loops(e, ids)
            finally:  # the idle fleet, and whatever failed left: no fleet outlives a run
                await sweep(e, b.sizes.concurrency)
        left = await e.container_ids()
        if left:
            raise BenchError(f"{e.name}: {len(left)} containers left after the crash loops")
        await e.settle()
    by_name = {row.scenario: row for row in rows}
    for (scenario, engine), t in timings.items():
        by_name[scenario].samples[engine] = t.samples
        by_name[scenario].verdicts[engine] = verdict(t)
    for row in rows[:-1]:
        row.note = "while measured: " + ", ".join(notes) + "; corral backoff 0"
    calm_cpu.note = "the daemon's own CPU time per listing: what a busy machine inflates least"
    return list(rows)


SCENARIO = Scenario("crashloop", "ps latency while 50 containers crash-loop beside a fleet", run)
