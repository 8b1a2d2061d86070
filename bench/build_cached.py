"""Bench: a fully cached rebuild of Dockerfile.example, corral vs `buildah bud --layers`.

Both start from the same busybox root filesystem (tests/busybox.py), each in private
state (a throwaway corral daemon and state root; a throwaway containers-storage root
for buildah), build once to warm the cache, then time N rebuilds end to end (the CLI
invocation included) and report the median and spread.  Run as root:

    .venv/bin/python bench/build_cached.py [--runs 10]

Results are printed and written to bench/results/build_cached.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from busybox import make_rootfs_tar  # type: ignore[import-not-found]  # noqa: E402

BUILD_ARGS = ["-f", str(REPO / "Dockerfile.example"), str(REPO / "examples" / "site")]


def timed(cmd: list[str], env: dict[str, str] | None = None) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - t0


def summary(samples: list[float]) -> dict[str, float]:
    return {
        "median_s": round(statistics.median(samples), 4),
        "min_s": round(min(samples), 4),
        "max_s": round(max(samples), 4),
    }


def bench_corral(work: Path, rootfs: Path, runs: int) -> dict[str, float]:
    sock = work / "corral.sock"
    env = dict(os.environ, CORRAL_HOST=f"unix://{sock}")
    r, w = os.pipe()
    daemon = subprocess.Popen(
        [sys.executable, "-m", "supervisor.daemon", "--root", str(work / "root"),
         "--host", f"unix://{sock}", "--ready-fd", str(w)],
        pass_fds=(w,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO,
    )  # fmt: skip
    os.close(w)
    try:
        with os.fdopen(r, "rb") as ready:
            if ready.readline().strip() != b"ready":
                raise RuntimeError("corral daemon did not start")
        cli = [sys.executable, "-m", "supervisor"]
        subprocess.run([*cli, "import", str(rootfs), "busybox:latest"], env=env, check=True,
                       stdout=subprocess.DEVNULL, cwd=REPO)  # fmt: skip
        build = [*cli, "build", "-q", "-t", "example-site", *BUILD_ARGS]
        first = timed(build, env)
        samples = [timed(build, env) for _ in range(runs)]
        return {"first_build_s": round(first, 4), **summary(samples)}
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=60)


def bench_buildah(work: Path, rootfs: Path, runs: int) -> dict[str, float] | None:
    if shutil.which("buildah") is None or shutil.which("podman") is None:
        return None
    store = ["--root", str(work / "storage"), "--runroot", str(work / "run")]
    subprocess.run(["podman", *store, "import", str(rootfs), "localhost/busybox:latest"],
                   check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    build = ["buildah", *store, "bud", "--pull=never", "--layers", "--isolation", "chroot",
             "-t", "example-site", *BUILD_ARGS]  # fmt: skip
    first = timed(build)
    samples = [timed(build) for _ in range(runs)]
    subprocess.run(["buildah", *store, "rm", "--all"], stdout=subprocess.DEVNULL, check=False)
    subprocess.run(["podman", *store, "system", "reset", "--force"],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)  # fmt: skip
    return {"first_build_s": round(first, 4), **summary(samples)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10)
    opts = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="corral-bench-build-"))
    try:
        rootfs = make_rootfs_tar(work / "busybox.tar")
        results = {
            "runs": opts.runs,
            "corral": bench_corral(work / "corral", rootfs, opts.runs),
            "buildah": bench_buildah(work / "buildah", rootfs, opts.runs),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    out = REPO / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "build_cached.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
