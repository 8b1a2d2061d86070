"""build: the seed story's image, `Dockerfile.example` with context `examples/site`,
built once from cold and then rebuilt with every step cached.

corral: `corral build -q` through its CLI (the context is sent to the daemon, each step
looked up in its build cache).  Podman's column is `buildah bud --layers` (Podman's
builder; `--isolation chroot`, `--pull=never`) on the Podman engine's private storage,
where the same busybox is already imported.  Both end to end, the CLI included.
Without buildah, corral's figures stand alone.
"""

from __future__ import annotations

import os
import shutil
import time

from bench.context import Bench
from bench.engines.base import Engine, run
from bench.engines.corral import REPO
from bench.engines.podman import Podman
from bench.registry import Scenario
from bench.report import Row

TAG = "bench-example-site"
BUILD_ARGS = ("-f", str(REPO / "Dockerfile.example"), str(REPO / "examples" / "site"))


def buildah_argv(p: Podman, *args: str) -> list[str]:
    """buildah on the Podman engine's storage (the same flags its `podman` gets)."""
    return [
        "buildah", "--root", str(p.root), "--runroot", str(p.runroot),
        "--storage-driver", "overlay", *args,
    ]  # fmt: skip


def build_argv(e: Engine) -> list[str]:
    if isinstance(e, Podman):
        bud = ["bud", "--pull=never", "--layers", "--isolation", "chroot", "-q", "-t", TAG]
        return buildah_argv(e, *bud, *BUILD_ARGS)
    return e.argv("build", "-q", "-t", TAG, *BUILD_ARGS)


def builders(b: Bench) -> list[Engine]:
    """corral, and Podman where buildah is installed."""
    return [e for e in b.engines if not isinstance(e, Podman) or shutil.which("buildah")]


def env(e: Engine) -> dict[str, str] | None:
    if isinstance(e, Podman):  # buildah's scratch files under the engine's private tmpdir
        return dict(os.environ, TMPDIR=str(e.tmpdir))
    return e.env()


async def timed_build(e: Engine) -> float:
    start = time.perf_counter()
    await run(build_argv(e), env(e))
    return time.perf_counter() - start


async def remove_builds(e: Engine) -> None:
    """The built image and (buildah --layers) its cached intermediate images."""
    await e.cli("rmi", "-f", TAG)
    if isinstance(e, Podman):
        await e.cli("image", "prune", "-f")


async def run_build(b: Bench) -> list[Row]:
    first = Row("build: Dockerfile.example, first build (cold cache)", "s")
    cached = Row("build: Dockerfile.example, fully cached rebuild", "s")
    engines = builders(b)
    try:
        for e in engines:
            first.samples[e.name] = [await timed_build(e)]
        for e in engines:
            for _ in range(b.sizes.warmup):
                await timed_build(e)
        for i in range(b.sizes.samples):
            for e in b.ordered(i):
                if e in engines:
                    cached.samples.setdefault(e.name, []).append(await timed_build(e))
    finally:
        for e in engines:
            await remove_builds(e)
    if any(isinstance(e, Podman) for e in engines):
        first.note = cached.note = "podman columns: buildah bud --layers --isolation chroot"
    elif any(isinstance(e, Podman) for e in b.engines):
        first.note = cached.note = "buildah is not installed: corral alone"
    return [first, cached]


SCENARIO = Scenario("build", "cold build and cached rebuild of Dockerfile.example", run_build)
