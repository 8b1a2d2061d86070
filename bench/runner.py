"""One bench run: set up the engines on a private workdir, run the chosen scenarios one
after another (each engine settled in between), tear everything down, write the results.
"""

from __future__ import annotations

import datetime
import importlib.util
import json
import os
import platform
import shutil
import sys
import tempfile
from collections.abc import Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import trio

from bench import report
from bench.context import Bench, Sizes
from bench.engines import docker, podman
from bench.engines.base import BenchError, Engine, run
from bench.engines.corral import REPO, Corral
from bench.registry import Scenario

SCENARIO_TIMEOUT = 3600.0  # a hung scenario fails, with its name, instead of hanging the run


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def make_rootfs_tar(dest: Path) -> Path:
    """The busybox rootfs the tests use (tests/busybox.py), for every engine and runc."""
    spec = importlib.util.spec_from_file_location("busybox", REPO / "tests" / "busybox.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result: Path = module.make_rootfs_tar(dest)
    return result


def host_info() -> dict[str, Any]:
    mem = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem = int(line.split()[1]) * 1024
    unified = Path("/sys/fs/cgroup/cgroup.controllers").exists()
    return {
        "hostname": platform.node(),
        "kernel": platform.release(),
        "cpus": os.cpu_count(),
        "memory_bytes": mem,
        "cgroups": "v2" if unified else "v1 (hybrid)",
        "loadavg_at_start": os.getloadavg(),
    }


async def first_line(argv: Sequence[str]) -> str:
    try:
        out = await run(argv, capture=True)
    except (BenchError, OSError) as exc:
        return f"unavailable ({exc})"
    return out.stdout.decode().strip().splitlines()[0]


async def versions(engines: Sequence[Engine]) -> dict[str, str]:
    found = {e.name: await e.version() for e in engines}
    found["runc"] = await first_line(["runc", "--version"])
    if any(e.name == "podman" for e in engines):
        found["conmon"] = await first_line(["conmon", "--version"])
    found["python"] = platform.python_version()
    found["trio"] = trio.__version__
    return found


async def run_bench(
    scenarios: Sequence[Scenario],
    sizes: Sizes,
    *,
    with_podman: bool,
    out_dir: Path,
    with_docker: bool = False,
    plot: bool = False,
) -> int:
    started = datetime.datetime.now(datetime.UTC)
    workdir = Path(tempfile.mkdtemp(prefix="corral-bench-"))
    tag = f"{os.getpid()}"
    engines: list[Engine] = [Corral(workdir, f"corral-bench-{tag}")]
    if with_podman:
        engines.append(podman.Podman(workdir, f"corral-bench-podman-{tag}"))
    # docker only when a chosen scenario measures it: its daemons cost a start and RSS
    with_docker = with_docker and any(s.with_docker for s in scenarios)
    if with_docker:
        engines.append(docker.Docker(workdir, f"corral-bench-docker-{tag}"))
    rows: list[report.Row] = []
    errors: dict[str, str] = {}
    info = host_info()
    try:
        async with AsyncExitStack() as stack:
            rootfs = make_rootfs_tar(workdir / "busybox-rootfs.tar")
            for e in engines:
                stack.push_async_callback(_shielded_teardown, e)
                await e.setup(rootfs)
            found = await versions(engines)
            for scenario in scenarios:
                measured = [e for e in engines if e.name != "docker" or scenario.with_docker]
                bench = Bench(engines=measured, sizes=sizes, workdir=workdir, rootfs_tar=rootfs)
                say(f"== {scenario.name}: {scenario.summary}")
                try:
                    with trio.fail_after(SCENARIO_TIMEOUT):
                        got = await scenario.run(bench)
                except (BenchError, trio.TooSlowError) as exc:
                    errors[scenario.name] = str(exc) or type(exc).__name__
                    say(f"   {scenario.name} failed: {errors[scenario.name]}")
                    got = []
                for e in engines:  # nothing is measured while anything still cleans up
                    left = await e.settle()
                    if left:
                        say(f"   {scenario.name} left {len(left)} {e.name} containers")
                for row in got:
                    say(
                        "   "
                        + report.render_table([row], with_podman, with_docker).splitlines()[-1]
                    )
                    if row.note:
                        say(f"     ({row.note})")
                rows += got
    finally:
        if errors:  # the daemon's log explains most failures: keep it past the workdir
            for name in ("corral", "docker"):
                log = workdir / f"{name}-daemon.log"
                if log.exists():
                    out_dir.mkdir(parents=True, exist_ok=True)
                    kept = out_dir / f"{name}-daemon-{started.strftime('%Y%m%d-%H%M%S')}.log"
                    shutil.copyfile(log, kept)
                    say(f"{name} daemon log kept: {kept}")
        shutil.rmtree(workdir, ignore_errors=True)
    info["loadavg_at_end"] = os.getloadavg()
    table = report.render_table(rows, with_podman, with_docker)
    date = started.strftime("%Y-%m-%d %H:%M UTC")
    rivals = " vs ".join(["corral"] + ["podman"] * with_podman + ["docker"] * with_docker)
    print(f"{rivals}, {date}, {info['cpus']} CPUs, {info['hostname']}")
    if not with_podman:
        print("podman is not installed: no podman figures")
    if with_docker:
        print("docker: measured on " + ", ".join(s.name for s in scenarios if s.with_docker)
              + "; `-` elsewhere")  # fmt: skip
    print()
    print(table)
    for name, err in errors.items():
        print(f"\n{name}: FAILED: {err}")
    doc = report.document(
        date=started.isoformat(),
        host=info,
        versions=found,
        settings={"sizes": sizes.as_dict(), "scenarios": [s.name for s in scenarios]},
        rows=rows,
        errors=errors,
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = started.strftime("%Y%m%d-%H%M%S")
    path = out_dir / f"bench-{stamp}.json"
    path.write_text(json.dumps(doc, indent=2) + "\n")
    (out_dir / "latest.json").write_text(json.dumps(doc, indent=2) + "\n")
    (out_dir / "latest.md").write_text(f"{date}\n\n{table}\n")
    say(f"\nresults: {path}")
    if plot:
        from bench.plot import write_beside

        say(f"chart: {write_beside(path)}")
    return 1 if errors else 0


async def _shielded_teardown(engine: Engine) -> None:
    """Cleanup runs even when the run is cancelled (Ctrl-C): nothing may be left."""
    with trio.CancelScope(shield=True):
        await engine.teardown()
