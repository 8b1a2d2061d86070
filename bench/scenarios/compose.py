"""compose: `corral compose up -d` of one service with N replicas until all run, then
`down`; against podman starting and removing N containers with the same concurrency.

corral goes through its user-facing path (the CLI, the config pipeline, the reconciler,
then the API with COMPOSE_PARALLEL_LIMIT requests in flight); podman through its CLI,
as in `many`.
"""

from __future__ import annotations

import subprocess
import time

import trio

from bench.context import Bench
from bench.engines.base import IDLE_COMMAND, BenchError, Engine
from bench.fleet import remove_fleet, start_fleet
from bench.registry import Scenario
from bench.report import Row


async def _compose(e: Engine, file: str, concurrency: int, *args: str) -> float:
    env = dict(e.env() or {}, COMPOSE_PARALLEL_LIMIT=str(concurrency))
    start = time.perf_counter()
    proc = await trio.run_process(
        e.argv("compose", "-f", file, "-p", "bench", *args), env=env,
        stdin=subprocess.DEVNULL, capture_stdout=True, capture_stderr=True, check=False,
    )  # fmt: skip
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise BenchError(f"corral compose {' '.join(args)}: {proc.stderr.decode()[-300:]}")
    return elapsed


async def run(b: Bench) -> list[Row]:
    n, c = b.sizes.fleet, b.sizes.concurrency
    up = Row(f"compose: up -d of 1 service x {n} replicas until all run ({c} in flight)", "s")
    down = Row(f"compose: down of {n} replicas ({c} in flight; podman: rm -f)", "s")
    file = b.workdir / "compose-bench.yaml"
    command = ", ".join(f"'{w}'" for w in IDLE_COMMAND)
    file.write_text(
        "services:\n  idle:\n    image: busybox\n    network_mode: none\n"
        f"    command: [{command}]\n    stop_grace_period: 0s\n    scale: {n}\n"
    )
    for i in range(b.sizes.fleet_rounds):
        for e in b.ordered(i):
            if e.name == "corral":
                t_up = await _compose(e, str(file), c, "up", "-d")
                running = await e.container_ids(all=False)
                if len(running) != n:
                    raise BenchError(f"corral: {len(running)} of {n} replicas running")
                t_down = await _compose(e, str(file), c, "down", "-t", "0")
            else:
                ids, t_up = await start_fleet(e, n, c)
                t_down = await remove_fleet(e, ids, c)
            up.samples.setdefault(e.name, []).append(t_up)
            down.samples.setdefault(e.name, []).append(t_down)
            await e.settle()
    return [up, down]


SCENARIO = Scenario("compose", "compose up of N replicas until all run, then down", run)
