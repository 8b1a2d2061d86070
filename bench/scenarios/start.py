"""start: one container through the real CLI, end to end (process start to exit).

`run -d sleep 1d` returns once the container runs; `run --rm true` returns once it has
run, exited and been removed.  Both with network none.  The detached containers stay
up until the scenario ends, the same on both engines.
"""

from __future__ import annotations

from bench.context import Bench
from bench.registry import Scenario
from bench.report import Row


async def run(b: Bench) -> list[Row]:
    detached = Row("start: `run -d` sleep 1d (network none)", "s")
    removed = Row("start: `run --rm` true, end to end", "s")
    for e in b.engines:
        for _ in range(b.sizes.warmup):
            await e.timed(e.run_argv("-d"))
            await e.timed(e.run_argv("--rm", command=["true"]))
    for i in range(b.sizes.samples):
        for e in b.ordered(i):
            detached.samples.setdefault(e.name, []).append(await e.timed(e.run_argv("-d")))
        for e in b.ordered(i):
            t = await e.timed(e.run_argv("--rm", command=["true"]))
            removed.samples.setdefault(e.name, []).append(t)
    for e in b.engines:
        for cid in await e.container_ids():
            await e.remove_container(cid)
    return [detached, removed]


SCENARIO = Scenario(
    "start", "run -d of sleep 1d, and run --rm true, through each CLI", run, with_docker=True
)
