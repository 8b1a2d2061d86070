"""network: a container on the bridge with one published port, and what the port costs.

1. `run -d -p HOSTPORT:80 sleep 1d` through each CLI, end to end: namespace, veth,
   address, routes and the port (corral: its trio proxy; podman: netavark's firewall
   rules), against `run -d` with network none in `start`.
2. 1 GiB through the published port (127.0.0.1:HOSTPORT) and 1 GiB straight to the
   container's address, for each engine; the published row's verdict is its throughput
   as a share of direct (issue 5's goal: at least 80%).  The receiving end is a socket
   the bench opens inside the container's network namespace (`nsenter --net`): busybox
   has no sink fast enough to measure a network path with, and it is the same for both
   paths and both engines.  It answers with the byte count after the sender's EOF, so
   a sample ends only once every byte arrived and the half-close went through.

Podman's bridge network turns `net.ipv4.ip_forward` on and leaves its (empty)
NETAVARK chains in nftables tables it made; the bench puts back the forwarding setting it
found and deletes the nftables tables that did not exist before the scenario.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import trio

from bench.context import Bench
from bench.engines.base import BenchError, Engine, run
from bench.registry import Scenario
from bench.report import Row

GIB = 1 << 30
SINK_PORT = 80
FORWARD = Path("/proc/sys/net/ipv4/ip_forward")

#: Inside the container's namespace: count what each connection sends until its EOF,
#: answer the count, close.
SINK = """
import socket, sys
s = socket.socket()
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(8)
print("ready", flush=True)
buf = bytearray(1 << 20)
while True:
    c, _ = s.accept()
    n = 0
    while k := c.recv_into(buf):
        n += k
    c.sendall(str(n).encode())
    c.close()
"""

#: On the host: send N bytes, half-close, wait for the count; print the seconds.
SEND = """
import socket, sys, time
host, port, total = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
chunk = bytes(1 << 20)
t = time.perf_counter()
with socket.create_connection((host, port)) as s:
    for _ in range(total // len(chunk)):
        s.sendall(chunk)
    s.shutdown(socket.SHUT_WR)
    got = b""
    while d := s.recv(64):
        got += d
elapsed = time.perf_counter() - t
if got != str(total).encode():
    sys.exit(f"sent {total} bytes, the container got {got!r}")
print(elapsed)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bridged(options: Sequence[str]) -> list[str]:
    """An engine's run options without its `--network none`: the default bridge."""
    out: list[str] = []
    skip = False
    for opt in options:
        if skip:
            skip = False
        elif opt == "--network":
            skip = True
        elif not opt.startswith("--network="):
            out.append(opt)
    return out


def published_argv(e: Engine, port: int) -> list[str]:
    return e.argv(
        "run", "-d", "-p", f"{port}:{SINK_PORT}", *bridged(e.run_options()), e.image, "sleep", "1d"
    )


async def send(host: str, port: int) -> float:
    out = await run([sys.executable, "-c", SEND, host, str(port), str(GIB)], capture=True)
    return float(out.stdout.decode().strip())


@asynccontextmanager
async def sink_in(e: Engine) -> AsyncIterator[tuple[str, int]]:
    """A container with a published port and the sink in its namespace, for as long as
    the block runs; yields (the container's address, the published port)."""
    port = free_port()
    out = await run(published_argv(e, port), e.env(), capture=True)
    cid = out.stdout.decode().strip().splitlines()[-1]
    try:
        fmt = "{{.NetworkSettings.SandboxKey}} {{.NetworkSettings.IPAddress}}"
        inspect = (await e.cli("inspect", "-f", fmt, cid, capture=True)).stdout.decode().split()
        if len(inspect) != 2:
            raise BenchError(f"{e.name}: no namespace or address for {cid[:12]}: {inspect}")
        netns, ip = inspect
        sink = await trio.lowlevel.open_process(
            ["nsenter", f"--net={netns}", sys.executable, "-c", SINK, ip, str(SINK_PORT)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
        )
        try:
            assert sink.stdout is not None
            with trio.fail_after(30):
                if (await sink.stdout.receive_some(16)).strip() != b"ready":
                    raise BenchError(f"{e.name}: the sink in {netns} did not start")
            await send(ip, SINK_PORT)  # warm up both paths once
            await send("127.0.0.1", port)
            yield ip, port
        finally:
            sink.kill()
            with trio.CancelScope(shield=True):
                await sink.wait()
    finally:
        with trio.CancelScope(shield=True):
            await e.remove_container(cid)


async def throughput(b: Bench, published: Row, direct: Row, rounds: int) -> None:
    """Every engine's sink up at once, then rounds in which the engines alternate (and
    within an engine's turn, the two paths): a moment the machine is busier then
    favours no engine and no path."""
    async with AsyncExitStack() as stack:
        ends = {e.name: await stack.enter_async_context(sink_in(e)) for e in b.engines}
        for i in range(rounds):
            for e in b.ordered(i):
                ip, port = ends[e.name]
                pair = [("direct", ip, SINK_PORT), ("published", "127.0.0.1", port)]
                for kind, host, to in pair if i % 2 == 0 else pair[::-1]:
                    row = direct if kind == "direct" else published
                    row.samples.setdefault(e.name, []).append(await send(host, to))
    for e in b.engines:
        straight, through = direct.summary(e.name), published.summary(e.name)
        if straight is not None and through is not None and through.median > 0:
            share = straight.median / through.median  # seconds: direct / published
            published.verdicts[e.name] = f"{share:.0%} of direct"


async def nft_tables() -> set[str]:
    """`table ip nat` ... lines of `nft list tables` (none if nft is missing)."""
    try:
        out = await run(["nft", "list", "tables"], capture=True)
    except (BenchError, OSError):
        return set()
    return {line.strip() for line in out.stdout.decode().splitlines() if line.strip()}


async def drop_new_tables(before: set[str]) -> None:
    for table in sorted(await nft_tables() - before):
        _, family, name = table.split()
        await run(["nft", "delete", "table", family, name])


async def run_network(b: Bench) -> list[Row]:
    started = Row("network: `run -d -p HOSTPORT:80` sleep 1d (bridge, one published port)", "s")
    published = Row("network: 1 GiB to 127.0.0.1:HOSTPORT (published)", "s")
    direct = Row("network: 1 GiB straight to the container's address", "s")
    forward = FORWARD.read_text()
    tables = await nft_tables()
    try:
        for e in b.engines:
            for _ in range(b.sizes.warmup):
                await e.timed(published_argv(e, free_port()))
        for i in range(b.sizes.samples):
            for e in b.ordered(i):
                t = await e.timed(published_argv(e, free_port()))
                started.samples.setdefault(e.name, []).append(t)
        for e in b.engines:  # the fleet goes before anything is sent
            for cid in await e.container_ids():
                await e.remove_container(cid)
        rounds = max(3, b.sizes.samples // 6)
        await throughput(b, published, direct, rounds)
    finally:
        FORWARD.write_text(forward)
        with trio.CancelScope(shield=True):
            await drop_new_tables(tables)
    return [started, published, direct]


SCENARIO = Scenario(
    "network",
    "run -d with the bridge and a published port; 1 GiB through the port vs direct",
    run_network,
)
