"""Many containers at once: started and removed with the same concurrency on every
engine (corral through its API, podman through its CLI: each engine's fastest way)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import trio

from bench.engines.base import BenchError, Engine

WARMUP_FLEET = 5  # containers started and removed before a fleet is measured


async def _all(jobs: list[Callable[[], Awaitable[None]]], concurrency: int) -> float:
    limiter = trio.CapacityLimiter(concurrency)

    async def one(job: Callable[[], Awaitable[None]]) -> None:
        async with limiter:
            await job()

    start = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for job in jobs:
            nursery.start_soon(one, job)
    return time.perf_counter() - start


async def start_fleet(engine: Engine, count: int, concurrency: int) -> tuple[list[str], float]:
    """Start `count` idle containers; seconds until every one runs, checked by `ps`."""
    ids: list[str] = []

    async def start() -> None:
        ids.append(await engine.start_container())

    elapsed = await _all([start] * count, concurrency)
    running = set(await engine.container_ids(all=False))
    missing = [cid for cid in ids if cid not in running]
    if missing:
        raise BenchError(f"{engine.name}: {len(missing)} of {count} containers not running")
    return ids, elapsed


async def remove_fleet(engine: Engine, ids: list[str], concurrency: int) -> float:
    """Remove every container in `ids` (forced); seconds until the last removal answers."""

    def remover(cid: str) -> Callable[[], Awaitable[None]]:
        return lambda: engine.remove_container(cid)

    return await _all([remover(cid) for cid in ids], concurrency)
