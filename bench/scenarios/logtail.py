"""logtail: `logs --tail 100` of a 1 GiB log, and how soon `logs -f` shows a new line.

Tail: a container `cat`s a 1 GiB file of 1 KiB numbered lines (the same file for every
engine), then `logs --tail 100` is timed end to end; for corral the API request alone
too (`GET /logs?tail=100` on its socket, read to the end), which is where the size of
the log could cost: corral counts newlines backwards from the end, so it should not.

Follow: a running container `cat`s a FIFO bind-mounted from the host; a `logs -f --tail
0` follower runs; each sample writes one line into the FIFO and times until the
follower's stdout shows it.  The first line is sent untimed, so the follower is known
to be connected (no sleep).  That is the latency from a write to a reader seeing it:
the container's pipe, the engine's store and wake-up, the API, the CLI's output.
"""

from __future__ import annotations

import os
import subprocess
import time
from contextlib import suppress
from functools import partial
from pathlib import Path

import trio

from bench.context import Bench
from bench.engines.base import Engine
from bench.registry import Scenario
from bench.report import Row
from bench.scenarios.logs import CpuWatch

LINE = 1024
SIZE = 1 << 30
TAIL = 100


def big_file(b: Bench) -> Path:
    path = b.workdir / "lines-1g"
    if path.exists() and path.stat().st_size == SIZE:
        return path
    block = b"".join(b"%09d %s\n" % (i, b"x" * (LINE - 11)) for i in range(1024))
    with path.open("wb") as f:
        for _ in range(SIZE // len(block)):
            f.write(block)
    return path


async def tailed(b: Bench, e: Engine, api: Row, cli: Row, cpu: Row) -> None:
    src = big_file(b)
    run = await e.cli(
        "run", "-d", "-v", f"{src}:/big:ro", *e.run_options(), e.image, "cat", "/big",
        capture=True,
    )  # fmt: skip
    cid = run.stdout.decode().strip()
    try:
        await e.cli("wait", cid)
        for _ in range(max(3, b.sizes.samples // 2)):
            watch = CpuWatch(e)
            start = time.perf_counter()
            out = await e.cli("logs", "--tail", str(TAIL), cid, capture=True)
            cli.samples.setdefault(e.name, []).append(time.perf_counter() - start)
            cpu.samples.setdefault(e.name, []).append(watch.total())
            lines = out.stdout.count(b"\n")
            if lines != TAIL:
                cli.verdicts[e.name] = f"FAIL: {lines} lines, not {TAIL}"
            elif e.name not in cli.verdicts:
                cli.verdicts[e.name] = f"{TAIL} lines ok"
            client = getattr(e, "api", None)
            if client is not None:
                start = time.perf_counter()
                await raw_get(client.socket_path, f"/containers/{cid}/logs?stdout=1&tail={TAIL}")
                api.samples.setdefault(e.name, []).append(time.perf_counter() - start)
    finally:
        await e.remove_container(cid)


async def raw_get(socket_path: str, path: str) -> int:
    stream = await trio.open_unix_socket(socket_path)
    async with stream:
        await stream.send_all(
            f"GET /v1.44{path} HTTP/1.1\r\nHost: corral\r\nConnection: close\r\n\r\n".encode()
        )
        size = 0
        while chunk := await stream.receive_some(1 << 16):
            size += len(chunk)
    return size


async def followed(b: Bench, e: Engine, row: Row) -> None:
    fifo = b.workdir / f"fifo-{e.name}"
    with suppress(FileNotFoundError):
        fifo.unlink()
    os.mkfifo(fifo, 0o600)
    run = await e.cli(
        "run", "-d", "-v", f"{fifo}:/fifo", *e.run_options(), e.image, "cat", "/fifo",
        capture=True,
    )  # fmt: skip
    cid = run.stdout.decode().strip()
    wfd = await trio.to_thread.run_sync(os.open, str(fifo), os.O_WRONLY)
    try:
        async with trio.open_nursery() as nursery:
            proc: trio.Process = await nursery.start(
                partial(
                    trio.run_process,
                    e.argv("logs", "-f", "--tail", "0", cid),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                    check=False,
                    env=e.env(),
                )
            )
            assert proc.stdout is not None
            seen = b""

            async def send_and_see(k: int) -> float:
                nonlocal seen
                line = b"line %d\n" % k
                start = time.perf_counter()
                os.write(wfd, line)
                while line not in seen:
                    chunk = await proc.stdout.receive_some(65536)  # type: ignore[union-attr]
                    if not chunk:
                        raise RuntimeError(f"{e.name}: logs -f ended before {line!r}")
                    seen += chunk
                elapsed = time.perf_counter() - start
                seen = seen[seen.index(line) + len(line) :]
                return elapsed

            with trio.fail_after(60):
                # Untimed until one line is seen: the follower is then surely attached.
                # (A line written before it attached is not shown with --tail 0.)
                k = 0
                while True:
                    k += 1
                    with trio.move_on_after(0.5):
                        await send_and_see(k)
                        break
                for _ in range(b.sizes.samples):
                    k += 1
                    row.samples.setdefault(e.name, []).append(await send_and_see(k))
            proc.terminate()
    finally:
        os.close(wfd)
        await e.remove_container(cid)
        with suppress(FileNotFoundError):
            fifo.unlink()


async def run(b: Bench) -> list[Row]:
    cli = Row(f"logtail: `logs --tail {TAIL}` of a 1 GiB log, end to end", "s")
    api = Row(f"logtail: GET /logs?tail={TAIL} of a 1 GiB log, the API alone", "s")
    cpu = Row(f"logtail: `logs --tail {TAIL}` of a 1 GiB log, engine + client CPU", "cpu-s")
    follow = Row("logtail: `logs -f`, a line written until the follower shows it", "s")
    await trio.to_thread.run_sync(big_file, b)
    for i in range(b.sizes.log_rounds):
        for e in b.ordered(i):
            await tailed(b, e, api, cli, cpu)
            await e.settle()
            await followed(b, e, follow)
            await e.settle()
    return [cli, cpu, api, follow]


SCENARIO = Scenario("logtail", "`logs --tail` of 1 GiB, `logs -f` latency per line", run)
