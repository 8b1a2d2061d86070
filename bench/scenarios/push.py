"""push: an image to a registry on loopback (Debian's docker-registry, plain HTTP).

The image is the pull scenario's (the bench's busybox under two 24 MB layers, half
random, half text), pulled by each engine from a source registry at setup.  Cold: each
sample pushes it to a registry started empty for that sample, so every layer is
compressed and uploaded.  Warm: then an image sharing both big layers plus a small new
one goes to the same registry: only the small layer should move.  corral (`corral
push`), Podman (`podman push --tls-verify=false`), and skopeo copying the same image
from an OCI layout where it is already compressed (the floor: no compression, only
the upload).  Beside each wall time, the CPU seconds it took (client and daemon):
on a loaded machine they say what the wall times cannot.  skopeo goes last in each
sample: containers/image keeps a cache of where it has put blobs, shared with Podman,
and Podman would mount them from there.
"""

from __future__ import annotations

import resource
import shutil
import sys
import time

import trio

from bench import procfs
from bench.context import Bench
from bench.engines.base import Engine, run
from bench.engines.corral import REPO
from bench.engines.podman import Podman
from bench.registry import Scenario
from bench.report import Row
from bench.scenarios.pull import _layers, _pull_argv


def _push_argv(e: Engine, name: str) -> list[str]:
    if isinstance(e, Podman):
        return e.argv("push", "-q", "--tls-verify=false", name)
    return e.argv("push", "-q", name)


async def _timed(argv: list[str], env: dict[str, str] | None) -> float:
    start = time.perf_counter()
    await run(argv, env)
    return time.perf_counter() - start


def _cpu(e: Engine) -> float:
    """CPU seconds so far of the bench's finished children (the client: `corral`,
    `podman`) and of the engine's own processes (corral's daemon and holder)."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime + sum(procfs.cpu_seconds(p) for p in e.overhead_pids())


async def _push(e: Engine, name: str, wall: Row, cpu: Row) -> None:
    """One push, its wall time and its CPU time (what a loaded machine makes of wall
    times depends on how long each engine waits for a CPU; the CPU seconds do not)."""
    before = _cpu(e)
    wall.samples.setdefault(e.name, []).append(await _timed(_push_argv(e, name), e.env()))
    cpu.samples.setdefault(e.name, []).append(_cpu(e) - before)


async def run_push(b: Bench) -> list[Row]:
    cold = Row("push: 2 x 24 MB layers to an empty loopback registry", "s")
    if shutil.which("docker-registry") is None or shutil.which("skopeo") is None:
        cold.note = "docker-registry or skopeo not installed: skipped"
        return [cold]
    warm = Row("push: same layers already there, one small new layer", "s")
    cold_cpu = Row("push CPU: 2 x 24 MB layers to an empty registry (client + daemon)", "s")
    warm_cpu = Row("push CPU: same layers there, one small new layer (client + daemon)", "s")
    sys.path.insert(0, str(REPO / "tests"))
    from registry import (  # type: ignore[import-not-found]  # the tests' writer
        Layer,
        make_image,
        start_registry,
    )

    src = await trio.to_thread.run_sync(start_registry, b.workdir / "push-src")
    try:
        layers = _layers(b.rootfs_tar.read_bytes(), 7)
        top = Layer({"etc/": b"", "etc/bench-push": b"warm\n"}).tar()
        one = await trio.to_thread.run_sync(make_image, b.workdir / "push-img", layers)
        two = await trio.to_thread.run_sync(make_image, b.workdir / "push-img2",
                                            [*layers, top])
        await trio.to_thread.run_sync(lambda: src.push(one, "bench/push", fmt="v2s2"))
        await trio.to_thread.run_sync(lambda: src.push(two, "bench/push2", fmt="v2s2"))
        app, app2 = f"{src.host}/bench/push", f"{src.host}/bench/push2"
        manifest = await trio.to_thread.run_sync(lambda: src.inspect("bench/push:latest",
                                                                       raw=True))
        mb = sum(x["size"] for x in manifest["layers"]) / 1e6
        for e in b.engines:
            await run(_pull_argv(e, app), e.env())
            await run(_pull_argv(e, app2), e.env())
        for i in range(b.sizes.samples):
            dst = await trio.to_thread.run_sync(start_registry,
                                                b.workdir / f"push-dst-{i}")
            try:
                for e in b.ordered(i):
                    name = f"{dst.host}/bench/{e.name}"
                    await e.cli("tag", app, name)
                    await e.cli("tag", app2, name + "2")
                    await _push(e, name, cold, cold_cpu)
                    await _push(e, name + "2", warm, warm_cpu)
                    await e.cli("rmi", name, name + "2")
                # skopeo last: containers/image remembers where it put blobs (its blob
                # info cache, Podman's too) and would mount them for Podman's push
                target = f"docker://{dst.host}/bench/skopeo"
                argv = ["skopeo", "copy", "-q", "--dest-tls-verify=false",
                        f"oci:{one}:latest", target]
                cold.samples.setdefault("skopeo", []).append(await _timed(argv, None))
                argv = ["skopeo", "copy", "-q", "--dest-tls-verify=false",
                        f"oci:{two}:latest", target + "2"]
                warm.samples.setdefault("skopeo", []).append(await _timed(argv, None))
            finally:
                await trio.to_thread.run_sync(dst.stop)
                await trio.to_thread.run_sync(shutil.rmtree, b.workdir / f"push-dst-{i}",
                                              True)
        for e in b.engines:
            await e.cli("rmi", app, app2)
            if isinstance(e, Podman):
                await e.cli("image", "prune", "-f")
        cold.note = (f"{mb:.0f} MB compressed per push (skopeo: from an OCI layout, "
                     "already compressed)")
    finally:
        await trio.to_thread.run_sync(src.stop)
    cold_cpu.note = "the registry's own CPU not counted (the same for every engine)"
    return [cold, warm, cold_cpu, warm_cpu]


SCENARIO = Scenario("push", "push to a loopback registry: cold (empty), warm (base there)",
                    run_push)
