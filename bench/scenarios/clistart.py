"""clistart: how long the corral CLI takes to reach its first request, over bare Python.

The CLI is spawned as a user runs it (`.venv/bin/corral`, the `-S` launcher) against a
socket this scenario listens on; the time is from the spawn to the first bytes of the
request arriving, and the CLI is killed there (no daemon answers, nothing else is
timed).  Each round also times the interpreter alone, `python -c pass` spawn to exit,
and the row's samples are the differences within a round (paired, so a machine
getting busier between rounds cancels out).  Wall time on a busy 2-CPU machine
mostly measures the queue for a CPU, so the CPU time each process used (its
rusage, reaped) is a second row per verb, the steadier figure under load.  Once per
verb, `-X importtime` lists what the verb imports; the note names the costliest
modules (self time).
"""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import trio

from bench.context import Bench
from bench.engines.corral import REPO, corral_cli
from bench.registry import Scenario
from bench.report import CORRAL, Row

#: the verbs timed, as a user types them (the ids need not exist: the CLI is stopped
#: at its first request)
VERBS: tuple[tuple[str, ...], ...] = (
    ("run", "-d", "--network", "none", "busybox", "sleep", "1d"),
    ("ps",),
    ("logs", "c0ffee"),
)
BARE = "bare `python -c pass`"


def parse_importtime(text: str) -> list[tuple[str, float, float]]:
    """`-X importtime` lines -> (module, self ms, cumulative ms), in import order.  Pure."""
    found: list[tuple[str, float, float]] = []
    for line in text.splitlines():
        if not line.startswith("import time:"):
            continue
        parts = line[len("import time:") :].split("|")
        if len(parts) != 3 or not parts[0].strip().isdigit():
            continue  # the header line
        found.append((parts[2].strip(), int(parts[0]) / 1000, int(parts[1]) / 1000))
    return found


def importtime_note(verb: str, found: list[tuple[str, float, float]], top: int = 5) -> str:
    """One line: how many modules, their total self time, the costliest ones.  Pure."""
    total = sum(s for _, s, _ in found)
    worst = sorted(found, key=lambda f: -f[1])[:top]
    names = ", ".join(f"{m} {s:.1f}" for m, s, _ in worst)
    return f"`{verb}` imports {len(found)} modules, {total:.1f} ms self (costliest ms: {names})"


def _env(sock: Path) -> dict[str, str]:
    return dict(os.environ, CORRAL_HOST=f"unix://{sock}", PYTHONPATH=str(REPO))


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


async def first_request(argv: Sequence[str], sock: Path) -> tuple[float, float]:
    """Seconds from spawning argv to the first bytes of its first request on `sock`,
    and the CPU seconds it used until then (it is killed there)."""
    with trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        sock.unlink(missing_ok=True)
        await listener.bind(str(sock))
        listener.listen(4)
        cpu = _children_cpu()
        start = time.perf_counter()
        proc = await trio.lowlevel.open_process(
            list(argv),
            env=_env(sock),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            with trio.fail_after(30):
                conn, _ = await listener.accept()
                with conn:
                    await conn.recv(65536)
            elapsed = time.perf_counter() - start
        finally:
            proc.kill()
            await proc.wait()
    return elapsed, _children_cpu() - cpu


async def bare_python() -> tuple[float, float]:
    """Seconds from spawning the CLI's interpreter with `-c pass` to its exit, and its
    CPU seconds."""
    cpu = _children_cpu()
    start = time.perf_counter()
    await trio.run_process([sys.executable, "-c", "pass"], stdin=subprocess.DEVNULL)
    return time.perf_counter() - start, _children_cpu() - cpu


async def importtime(verb: Sequence[str], sock: Path) -> str:
    """`-X importtime` of one verb up to its first request (stderr of the CLI)."""
    cli = corral_cli()
    launcher = Path(cli[0])
    if launcher.name != "corral":  # `python -m supervisor`: no launcher installed
        return ""
    argv = [sys.executable, "-S", "-X", "importtime", str(launcher), *verb]
    with trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        sock.unlink(missing_ok=True)
        await listener.bind(str(sock))
        listener.listen(4)
        proc = await trio.lowlevel.open_process(
            argv,
            env=_env(sock),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        assert proc.stderr is not None
        err = bytearray()
        try:
            async with trio.open_nursery() as nursery:

                async def drain() -> None:
                    assert proc.stderr is not None
                    async for chunk in proc.stderr:
                        err.extend(chunk)

                nursery.start_soon(drain)
                with trio.fail_after(30):
                    conn, _ = await listener.accept()
                    with conn:
                        await conn.recv(65536)
                proc.kill()
        finally:
            proc.kill()
            await proc.wait()
    return err.decode(errors="replace")


async def run(b: Bench) -> list[Row]:
    sock = b.workdir / "clistart.sock"
    bare = Row(f"clistart: {BARE}, spawn to exit (reference)", "s")
    bare_cpu = Row(f"clistart: {BARE}, its CPU (reference)", "cpu-s")
    rows = [
        Row(f"clistart: `corral {verb[0]}` to its first request, over {BARE}", "s")
        for verb in VERBS
    ]
    cpu_rows = [
        Row(f"clistart: `corral {verb[0]}` CPU to its first request, over {BARE}'s", "cpu-s")
        for verb in VERBS
    ]
    cli = corral_cli()
    for _ in range(b.sizes.warmup):
        await bare_python()
        for verb in VERBS:
            await first_request([*cli, *verb], sock)
    for _ in range(b.sizes.samples):
        base, base_cpu = await bare_python()
        bare.samples.setdefault(CORRAL, []).append(base)
        bare_cpu.samples.setdefault(CORRAL, []).append(base_cpu)
        for verb, row, cpu_row in zip(VERBS, rows, cpu_rows, strict=True):
            t, cpu = await first_request([*cli, *verb], sock)
            row.samples.setdefault(CORRAL, []).append(t - base)
            cpu_row.samples.setdefault(CORRAL, []).append(cpu - base_cpu)
    for verb, row in zip(VERBS, rows, strict=True):
        found = parse_importtime(await importtime(verb, sock))
        if found:
            row.note = importtime_note(verb[0], found)
    sock.unlink(missing_ok=True)
    return [*rows, *cpu_rows, bare, bare_cpu]


SCENARIO = Scenario(
    "clistart", "the CLI's start: spawn to its first request, over bare python", run
)
