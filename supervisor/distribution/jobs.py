"""Pulls and pushes as jobs the daemon owns: one per image at a time, watched by any
number of clients.

A pull runs in the engine's nursery, not in the request's task, so a second
`docker pull` of the same image joins the first (it sees the whole progress so far,
then the rest) instead of downloading it twice, and so the request's generator never
holds a nursery.  When the last watcher goes away before the end (Ctrl-C, client gone)
the pull is cancelled, as Docker cancels it; its scratch goes with it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

import structlog
import trio

from supervisor.distribution.pull import Progress
from supervisor.errors import CorralError, disk_full

log = structlog.get_logger("corral.distribution")


@dataclass
class Job:
    key: Hashable
    what: str  # for logs: "pull busybox:latest"
    events: list[Progress] = field(default_factory=list)
    result: Any = None
    error: CorralError | None = None
    done: trio.Event = field(default_factory=trio.Event)
    watchers: int = 0
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    _changed: trio.Event = field(default_factory=trio.Event)

    def emit(self, p: Progress) -> None:
        """Record a progress line and wake the watchers (`_changed` is replaced, so a
        watcher always waits on the event of the next line)."""
        self.events.append(p)
        self._changed.set()
        self._changed = trio.Event()

    async def watch(self) -> AsyncIterator[Progress]:
        """Every event from the first, until the job ends (then check result/error).
        Closing the iterator early drops this watcher; the last one cancels the job."""
        self.watchers += 1
        i = 0
        try:
            while True:
                while i < len(self.events):
                    yield self.events[i]
                    i += 1
                if self.done.is_set():
                    return
                await self._changed.wait()
        finally:
            self.watchers -= 1
            if self.watchers == 0 and not self.done.is_set():
                self.scope.cancel()

    async def started(self) -> None:
        """Until the first progress line or the end: errors before any output are
        answered with an HTTP status, as Docker does."""
        while not self.events and not self.done.is_set():
            await self._changed.wait()

    def finish(self) -> None:
        self.done.set()
        self._changed.set()


Work = Callable[[Callable[[Progress], None]], Awaitable[Any]]


class Jobs:
    """The daemon's pulls and pushes in flight, by key (image, platform, direction)."""

    def __init__(self, nursery: trio.Nursery) -> None:
        self.nursery = nursery
        self._jobs: dict[Hashable, Job] = {}

    async def start(self, key: Hashable, what: str, work: Work) -> Job:
        """The job for `key`, started with `work(emit)` unless one is in flight.  One
        being cancelled (its clients left) is waited for, then a new one starts: a
        client never joins a doomed job, and the old one's scratch is gone first."""
        job = self._jobs.get(key)
        while job is not None and job.scope.cancel_called:
            await job.done.wait()
            job = self._jobs.get(key)
        if job is None:
            job = Job(key, what)
            self._jobs[key] = job
            self.nursery.start_soon(self._run, job, work)
        return job

    async def _run(self, job: Job, work: Work) -> None:
        try:
            with job.scope:
                job.result = await work(job.emit)
            if job.result is None:
                job.error = CorralError(f"{job.what} cancelled: the client went away")
        except CorralError as e:
            job.error = e
        except Exception as e:  # a bug must not take the daemon's nursery down
            full = disk_full(e)  # not a bug: the disk is full, this pull fails alone
            if full is None:
                log.exception("job.failed", job=job.what)
            why = full.message if full is not None else f"{type(e).__name__}: {e}"
            job.error = CorralError(f"{job.what} failed: {why}")
        finally:
            if self._jobs.get(job.key) is job:
                del self._jobs[job.key]
            job.finish()
            if job.scope.cancel_called and job.result is None:
                # what a client (or a test) waits for before pulling afresh
                log.info("job.cancelled", job=job.what, reason="the client went away")
            elif job.error is not None:
                log.info("job.error", job=job.what, error=job.error.message)
