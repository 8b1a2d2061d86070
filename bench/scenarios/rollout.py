"""rollout: a service on a published port with a health check changes image v1 -> v2
while a client on 127.0.0.1 asks 50 times a second (issue 20).

Two rows, corral only (Podman and Docker have no rolling update off swarm):
1. `deploy.update_config: {order: start-first}`: the switch-over time (from the start
   of `compose up` to the first answer of v2), its verdict the requests failed;
2. the same service without `update_config`, Docker Compose's recreate (stop, then
   start): `compose up`'s time, its verdict the requests that failed meanwhile.

Each request is its own connection (so each one goes through the relay's accept, where
the switch happens), `Connection: close`, with a 10 s timeout.
"""

from __future__ import annotations

import socket
import subprocess
import time
from typing import Any

import trio

from bench.context import Bench
from bench.engines.base import BenchError, Engine
from bench.registry import Scenario
from bench.report import Row

RATE = 50

COMPOSE = """\
name: benchroll
services:
  web:
    image: benchroll:latest
    command: [httpd, -f, -p, "8000", -h, /www]
    ports: ["127.0.0.1:{port}:8000"]
    stop_grace_period: 2s
    healthcheck:
      test: [CMD, wget, -q, -O, /dev/null, http://127.0.0.1:8000/]
      interval: 200ms
      retries: 3
{deploy}"""
DEPLOY = "    deploy:\n      update_config: {order: start-first, monitor: 1s}\n"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _cli(e: Engine, *args: str) -> None:
    proc = await trio.run_process(
        e.argv(*args), env=e.env(), stdin=subprocess.DEVNULL,
        capture_stdout=True, capture_stderr=True, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        raise BenchError(f"corral {' '.join(args)}: {proc.stderr.decode()[-300:]}")


async def _get(port: int) -> str:
    with trio.fail_after(10):
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        async with stream:
            await stream.send_all(b"GET / HTTP/1.0\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := await stream.receive_some(65536):
                data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.") or b" 200 " not in head.split(b"\r\n")[0]:
        raise OSError(f"bad answer {head[:40]!r}")
    return body.decode().strip()


async def _one(e: Engine, b: Bench, rolling: bool, round_no: int) -> tuple[float, int, int]:
    """(seconds: switch-over or up, requests, failed) of one v1 -> v2 change."""
    port = _free_port()
    file = b.workdir / f"rollout-{round_no}.yaml"
    file.write_text(COMPOSE.format(port=port, deploy=DEPLOY if rolling else ""))
    await _cli(e, "tag", "benchroll:v1", "benchroll:latest")
    await _cli(e, "compose", "-f", str(file), "up", "-d", "--wait")
    answers: list[tuple[float, str]] = []
    failed = 0
    began = 0.0
    ended = 0.0
    try:
        async with trio.open_nursery() as n:
            stop = trio.Event()
            want: list[Any] = [25, trio.Event()]  # answers awaited, set once they came

            async def client() -> None:
                nonlocal failed
                while not stop.is_set():
                    t = time.perf_counter()
                    try:
                        answers.append((t, await _get(port)))
                    except (OSError, trio.TooSlowError, trio.BrokenResourceError):
                        failed += 1
                    if len(answers) >= want[0]:
                        want[1].set()
                    with trio.move_on_after(max(0.0, 1 / RATE - (time.perf_counter() - t))):
                        await stop.wait()

            n.start_soon(client)
            with trio.fail_after(60):
                await want[1].wait()
            await _cli(e, "tag", "benchroll:v2", "benchroll:latest")
            began = time.perf_counter()
            await _cli(e, "compose", "-f", str(file), "up", "-d", "--wait")
            ended = time.perf_counter()
            want[:] = [len(answers) + 25, trio.Event()]
            with trio.fail_after(60):
                await want[1].wait()
            stop.set()
    finally:
        await _cli(e, "compose", "-f", str(file), "down", "-t", "0")
    first_v2 = next((t for t, body in answers if body == "v2"), ended)
    took = first_v2 - began if rolling else ended - began
    return took, len(answers) + failed, failed


async def run(b: Bench) -> list[Row]:
    rolled = Row(f"rollout: start-first v1->v2 on a published port, {RATE} req/s: "
                 "up until v2 answers", "s")
    plain = Row(f"rollout: compose's recreate (no update_config), {RATE} req/s: up", "s")
    corral = next((e for e in b.engines if e.name == "corral"), None)
    if corral is None:
        return []
    for v in ("v1", "v2"):
        ctx = b.workdir / f"rollout-{v}"
        ctx.mkdir(exist_ok=True)
        (ctx / "Dockerfile").write_text(
            f"FROM busybox\nRUN mkdir -p /www && echo {v} > /www/index.html\n"
        )
        await _cli(corral, "build", "-q", "-t", f"benchroll:{v}", str(ctx))
    totals = {True: [0, 0], False: [0, 0]}
    for i in range(max(1, b.sizes.fleet_rounds)):
        for rolling, row in ((True, rolled), (False, plain)):
            took, sent, failed = await _one(corral, b, rolling, i)
            row.samples.setdefault("corral", []).append(took)
            totals[rolling][0] += sent
            totals[rolling][1] += failed
    for rolling, row in ((True, rolled), (False, plain)):
        sent, failed = totals[rolling]
        row.verdicts["corral"] = f"{failed} of {sent} failed"
    await corral.settle()
    return [rolled, plain]


SCENARIO = Scenario("rollout", "an image change on a published port under load", run)
