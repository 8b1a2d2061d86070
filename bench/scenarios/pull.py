"""pull: an image from a registry on loopback (Debian's docker-registry, plain HTTP).

The image is the bench's busybox (a layer both engines already have, imported at setup)
under two new layers of 24 MB each (half random, half text: gzip as real layers are),
pushed by skopeo.  Cold: the two layers move, each sample after removing the image.
Warm: an image that shares both big layers with one already pulled, plus a small new
one: only the small layer should move.  corral through its CLI (`corral pull -q`),
Podman with `podman pull --tls-verify=false`, both to their own storage.  The floor is
`curl` fetching the same blobs (the loopback's raw throughput), and corral's `/_ping`
p99 while a cold pull runs shows whether the daemon keeps answering.

Then the real-size image: a Debian bookworm root filesystem made by `mmdebstrap
--variant=minbase` (~30 s once, cached outside git in CACHE; skipped when mmdebstrap
is missing) under a 24 MB application layer and a small one; warm, an image on the
same two lower layers with one new small layer.  Each row's note has MB/s of the
compressed bytes, beside curl's.  CORRAL_BENCH_PULL_SMALL=0 runs the Debian rows alone
(CORRAL_BENCH_DEBIAN=0 the small ones alone).
"""

from __future__ import annotations

import os
import resource
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import trio

from bench.context import Bench
from bench.engines.base import Engine, run
from bench.engines.corral import REPO, Corral
from bench.engines.podman import Podman
from bench.registry import Scenario
from bench.report import Row

BIG = 24 << 20
CACHE = Path(os.environ.get("CORRAL_BENCH_CACHE", "/var/cache/corral-bench"))
DEBIAN_TAR = CACHE / "debian-bookworm-minbase.tar"


def debian_rootfs() -> Path | None:
    """The cached Debian minimal root filesystem tar, made on first use (None: no
    mmdebstrap here, or it failed; the Debian rows then say so)."""
    if DEBIAN_TAR.exists():
        return DEBIAN_TAR
    if shutil.which("mmdebstrap") is None:
        return None
    CACHE.mkdir(parents=True, exist_ok=True)
    part = CACHE / f".part-{os.getpid()}.tar"
    try:
        subprocess.run(["mmdebstrap", "--variant=minbase", "--format=tar", "--quiet",
                        "bookworm", str(part)], check=True, timeout=900)
        part.rename(DEBIAN_TAR)
    except (OSError, subprocess.SubprocessError):
        part.unlink(missing_ok=True)
        return None
    return DEBIAN_TAR


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


async def _skopeo_copy(root: Path, name: str) -> float:
    """Seconds of one `skopeo copy` of `name` into a fresh containers-storage (overlay)
    under `root`, the third column the issue asks for: the reference client, unpacking
    to local storage as Podman does.  Its storage (and the bind mount containers/storage
    makes of its overlay dir) is removed after, outside the timing."""
    from bench.leftovers import detach, mounts_under

    dest = f"containers-storage:[overlay@{root}/root+{root}/run]{name.split('/', 1)[1]}"
    try:
        return await _timed(["skopeo", "copy", "-q", "--src-tls-verify=false",
                             f"docker://{name}:latest", dest], None)
    finally:
        for point in mounts_under([root]):
            detach(point)
        await trio.to_thread.run_sync(lambda: shutil.rmtree(root, ignore_errors=True))


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


async def _ping_p99(corral: Corral, argv: list[str]) -> float:
    lat: list[float] = []
    done = trio.Event()
    async with trio.open_nursery() as n:
        n.start_soon(_pings, str(corral.sock), done, lat)
        await run(argv, corral.env())
        done.set()
    lat.sort()
    return lat[int(len(lat) * 0.99)]


async def _layers_moved(e: Engine, name: str) -> tuple[int, int]:
    """Pull `name` once more with progress shown: (layers moved, layers found present),
    from corral's lines (Docker's `Pull complete` / `Already exists`).  Podman's plain
    lines name every blob (`Copying blob sha256:...`), skipped or not: its caller
    leaves it out."""
    argv = [a for a in _pull_argv(e, name) if a != "-q"]
    proc = await run(argv, e.env(), capture=True)
    text = (proc.stdout + proc.stderr).decode(errors="replace")  # Podman's: on stderr
    lines = text.splitlines()
    present = sum(ln.endswith("Already exists") for ln in lines)
    moved = sum(ln.endswith("Pull complete") for ln in lines)
    return moved, present


def _tree_cpu(pid: int) -> float:
    """CPU seconds of `pid` and its reaped children (utime, stime, cutime, cstime of
    /proc/PID/stat), plus the same of each live child (any thread's), recursively."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
        tasks = os.listdir(f"/proc/{pid}/task")
        kids = [int(k) for t in tasks
                for k in Path(f"/proc/{pid}/task/{t}/children").read_text().split()]
    except OSError:  # it ended meanwhile
        return 0.0
    fields = text[text.rindex(")") + 2:].split()
    own = sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    return own + sum(_tree_cpu(k) for k in kids)


def _daemon_cpu(e: Engine) -> float:
    """CPU seconds of corral's daemon and its processes: its reaped children and the
    live ones, such as the layer fork server, whose reaped children are the layer
    workers; 0 for Podman (no daemon)."""
    if not isinstance(e, Corral):
        return 0.0
    return _tree_cpu(e.pid)


async def _cpu_of(e: Engine, argv: list[str]) -> float:
    """CPU seconds a pull costs the engine, all its processes: the client's (and what
    it waited for, Podman's re-executed untar) plus, for corral, the daemon's.  Less
    bent by the machine's load than wall time."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    d0 = _daemon_cpu(e)
    await run(argv, e.env())
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    client = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return client + _daemon_cpu(e) - d0


def _mbps(row: Row, mb: float) -> str:
    parts = []
    for name, xs in row.samples.items():
        if xs:
            parts.append(f"{name} {mb / sorted(xs)[len(xs) // 2]:.1f} MB/s")
    return ", ".join(parts)


async def run_debian(b: Bench, reg: object, rows: list[Row]) -> None:
    """The real-size rows (see module doc), appended to `rows`."""
    from registry import Layer, make_image

    cold = Row("pull: Debian minbase + 24 MB + small layer, cold", "s")
    warm = Row("pull: Debian image, both lower layers present, one new layer", "s")
    floor = Row("pull floor: curl of the Debian image's blobs (loopback raw)", "s")
    ping = Row("pull: corral /_ping p99 during the Debian cold pull", "s")
    cpu = Row("pull: CPU seconds of the Debian cold pull, all of the engine's processes",
              "s")
    skopeo = Row("pull: skopeo copy of the Debian image into containers-storage, cold", "s")
    rows += [floor, cold, skopeo, warm, ping, cpu]
    tar = await trio.to_thread.run_sync(debian_rootfs)
    if tar is None:
        cold.note = "mmdebstrap missing or failed: skipped"
        return
    base = tar.read_bytes()
    app = _layers(b"", 7)[1]
    top = Layer({"etc/": b"", "etc/bench-top": b"debian\n"}).tar()
    top2 = Layer({"etc/": b"", "etc/bench-top": b"debian, warm\n"}).tar()
    await trio.to_thread.run_sync(lambda: reg.push(  # type: ignore[attr-defined]
        make_image(b.workdir / "deb", [base, app, top], cmd=["bash"]), "bench/deb",
        fmt="v2s2"))
    await trio.to_thread.run_sync(lambda: reg.push(  # type: ignore[attr-defined]
        make_image(b.workdir / "deb2", [base, app, top2], cmd=["bash"]), "bench/deb2",
        fmt="v2s2"))
    host = reg.host  # type: ignore[attr-defined]
    deb, deb2 = f"{host}/bench/deb", f"{host}/bench/deb2"
    manifest = await trio.to_thread.run_sync(
        lambda: reg.inspect("bench/deb:latest", raw=True))  # type: ignore[attr-defined]
    blobs = [x["digest"] for x in manifest["layers"]]
    mb = sum(x["size"] for x in manifest["layers"]) / 1e6
    for i in range(max(3, b.sizes.samples // 3)):
        argv = ["curl", "-sf", *[a for d in blobs for a in (
            "-o", "/dev/null", f"http://{host}/v2/bench/deb/blobs/{d}")]]
        floor.samples.setdefault("curl", []).append(await _timed(argv, None))
        if shutil.which("skopeo") is not None:
            skopeo.samples.setdefault("skopeo", []).append(
                await _skopeo_copy(b.workdir / f"skopeo-{i}", deb))
        for e in b.ordered(i):
            cold.samples.setdefault(e.name, []).append(await _timed(_pull_argv(e, deb), e.env()))
            warm.samples.setdefault(e.name, []).append(
                await _timed(_pull_argv(e, deb2), e.env()))
            await e.cli("rmi", deb, deb2)
            if isinstance(e, Podman):
                await e.cli("image", "prune", "-f")
    for i in range(2):
        for e in b.ordered(i):
            cpu.samples.setdefault(e.name, []).append(await _cpu_of(e, _pull_argv(e, deb)))
            await e.cli("rmi", deb)
            if isinstance(e, Podman):
                await e.cli("image", "prune", "-f")
    # the warm pull's claim, checked: with deb present, deb2 moves only its top layer
    moved: list[str] = []
    for e in b.engines:
        if isinstance(e, Podman):
            continue  # its plain lines do not say (see _layers_moved)
        await run(_pull_argv(e, deb), e.env())
        n, present = await _layers_moved(e, deb2)
        moved.append(f"{e.name} moved {n}, found {present} present")
        await e.cli("rmi", deb, deb2)
    corral = next((e for e in b.engines if isinstance(e, Corral)), None)
    if corral is not None:
        for _ in range(3):
            ping.samples.setdefault("corral", []).append(
                await _ping_p99(corral, _pull_argv(corral, deb)))
            await corral.cli("rmi", deb)
    cold.note = f"{mb:.0f} MB compressed; {_mbps(cold, mb)}; floor {_mbps(floor, mb)}"
    if skopeo.samples:
        skopeo.note = f"the reference client, to local storage as Podman's: {_mbps(skopeo, mb)}"
    warm.note = f"of 3 layers, 1 new: {'; '.join(moved)}"


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
        small = os.environ.get("CORRAL_BENCH_PULL_SMALL", "1") != "0"
        for i in range(b.sizes.samples if small else 0):
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
        if corral is not None and small:
            for _ in range(max(1, b.sizes.samples // 4)):
                ping.samples.setdefault("corral", []).append(
                    await _ping_p99(corral, _pull_argv(corral, app)))
                await corral.cli("rmi", app)
        cold.note = f"{mb:.0f} MB compressed moved per pull; floor: the same blobs by curl"
        rows = [floor, cold, warm, ping]
        if os.environ.get("CORRAL_BENCH_DEBIAN", "1") != "0":
            await run_debian(b, reg, rows)
    finally:
        await trio.to_thread.run_sync(reg.stop)
    return rows


SCENARIO = Scenario("pull", "pull from a loopback registry: cold, warm, /_ping meanwhile",
                    run_pull)
