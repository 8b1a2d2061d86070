"""`python -m bench [SCENARIO...] [--quick]`: corral, Podman and Docker side by side.

Needs root, runc, and (for the comparison) podman + conmon, and docker.io's dockerd +
containerd (each skipped with a note when missing).  Never run by `.ci/run`.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

import trio

from bench import leftovers
from bench.context import FULL, QUICK
from bench.engines import docker, podman
from bench.engines.base import BenchError
from bench.engines.corral import REPO
from bench.registry import all_scenarios, select
from bench.runner import Interrupted, run_bench

# `--quick` alone: issue 3's scenarios, which fit in two minutes together.
QUICK_CORE = ("start", "many", "memory", "idle", "logs", "floor")


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark corral against Podman and Docker in one run; prints ratios.",
    )
    p.add_argument("scenarios", nargs="*", help="scenario names or prefixes (default: all)")
    p.add_argument(
        "--quick",
        action="store_true",
        help="fewer samples and containers; alone, the core scenarios (<2 min)",
    )
    p.add_argument("--list", action="store_true", help="list the scenarios and exit")
    p.add_argument(
        "--sweep",
        action="store_true",
        help="remove what killed runs left (every run does it first) and exit",
    )
    p.add_argument("--no-podman", action="store_true", help="no podman")
    p.add_argument("--no-docker", action="store_true", help="no docker (dockerd)")
    p.add_argument("--containers", type=int, help="fleet size for many/memory/idle")
    p.add_argument("--scale", type=int, help="fleet size of the scale scenario (1000)")
    p.add_argument("--concurrency", type=int, help="starts/removals in flight, every engine")
    p.add_argument("--samples", type=int, help="samples per engine for start and floor")
    p.add_argument("--lines", type=int, help="log lines written by the logs scenario")
    p.add_argument("--soak-full", action="store_true",
                   help="the soak scenario's full variant (10 min, 200 containers; ~40 min)")
    p.add_argument("--plot", action="store_true", help="also an SVG chart of the ratios")
    p.add_argument(
        "--out", type=Path, default=REPO / "bench" / "results", help="where the JSON goes"
    )
    return p.parse_args(argv)


def compile_bytecode() -> None:
    """Bring corral's bytecode up to date before anything is timed.

    This machine sets PYTHONDONTWRITEBYTECODE, so a source edited since `scripts/setup`
    is compiled again in memory by every CLI call: ~30 ms on each `run -d` sample (seen:
    the CLI's start rows doubled after a merge).  What is up to date is skipped (~0.2 s).
    """
    import compileall

    for package in ("supervisor", "config", "metrics"):
        compileall.compile_dir(str(REPO / package), quiet=1)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    scenarios = all_scenarios()
    if args.list:
        for s in scenarios:
            print(f"{s.name:10} {s.summary}")
        return 0
    try:
        # --quick alone runs the core scenarios (issue 3's), which fit in two minutes;
        # name others (or `all`) to run them too.
        wanted = list(args.scenarios)
        if wanted == ["all"]:
            wanted = []
        elif not wanted and args.quick:
            wanted = list(QUICK_CORE)
        chosen = select(scenarios, wanted)
    except ValueError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    sizes = QUICK if args.quick else FULL
    overrides = {  # Sizes field: (flag, value)
        "fleet": ("--containers", args.containers),
        "scale": ("--scale", args.scale),
        "concurrency": ("--concurrency", args.concurrency),
        "samples": ("--samples", args.samples),
        "log_lines": ("--lines", args.lines),
    }
    for flag, value in overrides.values():
        if value is not None and value < 1:
            print(f"bench: {flag} must be at least 1, got {value}", file=sys.stderr)
            return 2
    chosen_sizes = {k: v for k, (_, v) in overrides.items() if v is not None}
    sizes = dataclasses.replace(sizes, **chosen_sizes, soak_full=args.soak_full)
    if os.geteuid() != 0:
        print("bench: needs root (containers, mounts, cgroups)", file=sys.stderr)
        return 1
    if args.sweep:
        swept = leftovers.sweep_stale()
        print(swept.summary() if swept else "bench: nothing left by earlier runs")
        return 0
    compile_bytecode()
    with_podman = not args.no_podman and podman.available()
    if not args.no_podman and not with_podman:
        print("bench: podman (or conmon) is not installed: no podman figures", file=sys.stderr)
    with_docker = not args.no_docker and docker.available()
    if not args.no_docker and not with_docker:
        print(
            "bench: dockerd (docker.io: dockerd, containerd, its shim, the docker CLI) is"
            " not installed: no docker figures",
            file=sys.stderr,
        )

    async def bench() -> int:
        return await run_bench(
            chosen,
            sizes,
            with_podman=with_podman,
            with_docker=with_docker,
            out_dir=args.out,
            plot=args.plot,
        )

    try:
        return trio.run(bench)
    except BenchError as exc:  # setup or teardown failed: one line, not a traceback
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    except Interrupted as exc:  # everything was cleaned up on the way out
        print(f"bench: interrupted by {exc}; nothing left behind", file=sys.stderr)
        return 128 + exc.signum
