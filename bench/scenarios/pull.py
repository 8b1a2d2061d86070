"""pull: an image from a registry on loopback (Debian's docker-registry, plain HTTP).

The image is the bench's busybox (a layer both engines already have, imported at setup)
under two new layers of 24 MB each (half random, half text: gzip as real layers are),
pushed by skopeo.  Cold: the two layers move, each sample after removing the image.
Warm: an image that shares both big layers with one already pulled, plus a small new
one: only the small layer should move.  corral through its CLI (`corral pull -q`),
Podman with `podman pull --tls-verify=false`, both to their own storage.  The floor is
`curl` fetching the same blobs (the loopback's raw throughput), and corral's `/_ping`
p99 while a cold pull runs shows whether the daemon keeps answering.
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
import time

import trio

from bench.context import Bench
from bench.engines.base import Engine, run
from bench.engines.corral import REPO, Corral
from bench.engines.podman import Podman
from bench.registry import Scenario
from bench.report import Row

BIG = 24 << 20


def _layers(rootfs: bytes, seed: int) -> list[bytes]:
    sys.path.insert(0, str(REPO / "tests"))
    from registry import Layer  # type: ignore[import-not-found]  # the tests' writer

    out = [rootfs]
    for i in range(2):
        data = os.urandom(BIG // 2) + (b"corral bench %d %d\n" % (seed, i)) * (BIG // 40)
        out.append(Layer({f"bench{i}/": b"", f"bench{i}/blob": data}).tar())
    return out


def _pull_argv(e: Engine, name: str) -> list[str]:
    if isinstance(e, Podman):
        return e.argv("pull", "-q", "--tls-verify=false", name)
    return e.argv("pull", "-q", name)


async def _timed(argv: list[str], env: dict[str, str] | None) -> float:
    start = time.perf_counter()
    await run(argv, env)
    return time.perf_counter() - start


async def _pings(sock: str, done: trio.Event, out: list[float]) -> None:
    """/_ping round trips on corral's socket until `done`."""
    while not done.is_set():
        s = trio.socket.socket(socket.AF_UNIX)
        await s.connect(sock)
        start = time.perf_counter()
        await s.send(b"GET /_ping HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        while await s.recv(4096):
            pass
        out.append(time.perf_counter() - start)
        s.close()


async def run_pull(b: Bench) -> list[Row]:
    if shutil.which("docker-registry") is None or shutil.which("skopeo") is None:
        row = Row("pull: 2 x 24 MB layers from a loopback registry, cold", "s")
        row.note = "docker-registry or skopeo not installed: skipped"
        return [row]
    sys.path.insert(0, str(REPO / "tests"))
    from registry import make_image, start_registry

    reg = await trio.to_thread.run_sync(start_registry, b.workdir / "registry")
    cold = Row("pull: 2 x 24 MB layers from a loopback registry, cold", "s")
    warm = Row("pull: same layers already present, one small new layer", "s")
    floor = Row("pull floor: curl of the same blobs (loopback raw)", "s")
    ping = Row("pull: corral /_ping p99 during a cold pull", "s")
    try:
        rootfs = b.rootfs_tar.read_bytes()
        layers = _layers(rootfs, 0)
        from registry import Layer

        top = Layer({"etc/": b"", "etc/bench-top": b"warm\n"}).tar()
        await trio.to_thread.run_sync(lambda: reg.push(
            make_image(b.workdir / "img", layers), "bench/app", fmt="v2s2"))
        await trio.to_thread.run_sync(lambda: reg.push(
            make_image(b.workdir / "img2", [*layers, top]), "bench/app2", fmt="v2s2"))
        app, app2 = f"{reg.host}/bench/app", f"{reg.host}/bench/app2"
        manifest = await trio.to_thread.run_sync(lambda: reg.inspect("bench/app:latest",
                                                                       raw=True))
        blobs = [x["digest"] for x in manifest["layers"][1:]]
        mb = sum(x["size"] for x in manifest["layers"][1:]) / 1e6
        for i in range(b.sizes.samples):
            argv = ["curl", "-sf", *[a for d in blobs for a in (
                "-o", "/dev/null", f"http://{app.split('/')[0]}/v2/bench/app/blobs/{d}")]]
            floor.samples.setdefault("curl", []).append(await _timed(argv, None))
            for e in b.ordered(i):
                cold.samples.setdefault(e.name, []).append(
                    await _timed(_pull_argv(e, app), e.env()))
                warm.samples.setdefault(e.name, []).append(
                    await _timed(_pull_argv(e, app2), e.env()))
                await e.cli("rmi", app, app2)
                if isinstance(e, Podman):
                    await e.cli("image", "prune", "-f")
        corral = next((e for e in b.engines if isinstance(e, Corral)), None)
        if corral is not None:
            for _ in range(max(1, b.sizes.samples // 4)):
                lat: list[float] = []
                done = trio.Event()
                async with trio.open_nursery() as n:
                    n.start_soon(_pings, str(corral.sock), done, lat)
                    await run(_pull_argv(corral, app), corral.env())
                    done.set()
                await corral.cli("rmi", app)
                lat.sort()
                ping.samples.setdefault("corral", []).append(lat[int(len(lat) * 0.99)])
        cold.note = f"{mb:.0f} MB compressed moved per pull; floor: the same blobs by curl"
    finally:
        await trio.to_thread.run_sync(reg.stop)
    return [floor, cold, warm, ping]


SCENARIO = Scenario("pull", "pull from a loopback registry: cold, warm, /_ping meanwhile",
                    run_pull)
