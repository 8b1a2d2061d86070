"""One bench run: set up the engines on a private workdir, run the chosen scenarios one
after another (each engine settled in between), tear everything down, write the results.

Nothing outlives a run, however it ends.  SIGINT, SIGTERM and SIGHUP cancel the
measurement (one cancel scope) and the same shielded teardown as a normal end follows:
every engine's fleet removed, its daemons stopped, then `leftovers.sweep` of the workdir
and cgroup parents as the backstop (what a teardown missed is killed, detached, removed,
and said).  The private daemons run in their own sessions, so a Ctrl-C reaches the bench
alone and the teardown still has a daemon to talk to.  A run killed too hard for any of
that (SIGKILL) is swept by the next run at its start: its workdir's `owner` is dead.
"""

from __future__ import annotations

import datetime
import importlib.util
import json
import os
import platform
import shutil
import signal
import sys
import tempfile
from collections.abc import Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import trio

from bench import leftovers, report
from bench.context import Bench, Sizes
from bench.engines import docker, podman
from bench.engines.base import BenchError, Engine, run
from bench.engines.corral import REPO, Corral
from bench.registry import Scenario

SCENARIO_TIMEOUT = 3600.0  # a hung scenario fails, with its name, instead of hanging the run
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Interrupted(Exception):
    """The run was stopped by a signal, after its cleanup."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


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
    swept = await trio.to_thread.run_sync(leftovers.sweep_stale)
    if swept:
        say(f"bench: earlier runs were killed: {swept.summary()}")
    started = datetime.datetime.now(datetime.UTC)
    workdir = Path(tempfile.mkdtemp(prefix=leftovers.PREFIX))
    leftovers.claim(workdir)
    say(f"bench: workdir {workdir}")
    tag = f"{os.getpid()}"  # the cgroup parents name the owner: leftovers.CGROUP_NAME
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
    found: dict[str, str] = {}
    interrupted: list[int] = []
    with trio.open_signal_receiver(*STOP_SIGNALS) as signals:
        async with trio.open_nursery() as guard:
            measuring = trio.CancelScope()
            guard.start_soon(_watch_signals, signals, measuring, interrupted)
            try:
                async with AsyncExitStack() as stack:
                    with measuring:
                        rootfs = make_rootfs_tar(workdir / "busybox-rootfs.tar")
                        for e in engines:
                            stack.push_async_callback(_shielded_teardown, e)
                            await e.setup(rootfs)
                        found.update(await versions(engines))
                        await _scenarios(scenarios, engines, sizes, workdir, rootfs, rows,
                                         errors, with_podman, with_docker)  # fmt: skip
            finally:
                _keep_logs(errors, workdir, out_dir, started)
                with trio.CancelScope(shield=True):
                    cgroups = [e.cgroup_parent for e in engines]
                    left = await trio.to_thread.run_sync(leftovers.sweep, [workdir], cgroups)
                if left.processes or left.mounts:
                    say(f"bench: the teardown left {left.processes} process(es) and "
                        f"{left.mounts} mount(s): swept")  # fmt: skip
                guard.cancel_scope.cancel()
    if interrupted:
        raise Interrupted(interrupted[0])
    info["loadavg_at_end"] = os.getloadavg()
    _write_results(rows, errors, info, found, scenarios, sizes, started, out_dir,
                   with_podman=with_podman, with_docker=with_docker, plot=plot)  # fmt: skip
    return 1 if errors else 0


async def _watch_signals(signals: Any, measuring: trio.CancelScope, interrupted: list[int]) -> None:
    """The first stop signal cancels the measurement; later ones only say why the run has
    not ended yet (the teardown is shielded: a half-done cleanup is what leaks)."""
    async for signum in signals:
        name = signal.Signals(signum).name
        if not interrupted:
            interrupted.append(signum)
            say(f"bench: {name}: stopping; removing every engine's containers, daemons and files")
            measuring.cancel()
        else:
            say(f"bench: {name} again: still cleaning up (a SIGKILL leaves it to the next run)")


async def _scenarios(
    scenarios: Sequence[Scenario],
    engines: list[Engine],
    sizes: Sizes,
    workdir: Path,
    rootfs: Path,
    rows: list[report.Row],
    errors: dict[str, str],
    with_podman: bool,
    with_docker: bool,
) -> None:
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
            say("   " + report.render_table([row], with_podman, with_docker).splitlines()[-1])
            if row.note:
                say(f"     ({row.note})")
        rows += got


def _keep_logs(
    errors: dict[str, str], workdir: Path, out_dir: Path, started: datetime.datetime
) -> None:
    """The daemon's log explains most failures: keep it past the workdir."""
    if not errors:
        return
    for name in ("corral", "docker"):
        log = workdir / f"{name}-daemon.log"
        if log.exists():
            out_dir.mkdir(parents=True, exist_ok=True)
            kept = out_dir / f"{name}-daemon-{started.strftime('%Y%m%d-%H%M%S')}.log"
            shutil.copyfile(log, kept)
            say(f"{name} daemon log kept: {kept}")


def _write_results(
    rows: list[report.Row],
    errors: dict[str, str],
    info: dict[str, Any],
    found: dict[str, str],
    scenarios: Sequence[Scenario],
    sizes: Sizes,
    started: datetime.datetime,
    out_dir: Path,
    *,
    with_podman: bool,
    with_docker: bool,
    plot: bool,
) -> None:
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


async def _shielded_teardown(engine: Engine) -> None:
    """Cleanup runs even when the run is cancelled (Ctrl-C): nothing may be left."""
    with trio.CancelScope(shield=True):
        try:
            await engine.teardown()
        except trio.TooSlowError:  # one line from the CLI; the runner's sweep follows
            raise BenchError(f"{engine.name}: its teardown timed out") from None
