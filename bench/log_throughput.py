"""Bench: log throughput through rotation, corral's json-file store vs Podman.

Three measurements, 1,000,000 lines of 60 bytes each:

- store: in-process, the pieces a pump gets (64 KiB reads) through `LineFramer` into a
  `ContainerLog` with and without rotation (max-size 10m, max-file 3), a follower
  reading concurrently (checked: every line once, in order); then reading back.
- end to end: a busybox container printing the lines, in a throwaway corral daemon,
  with `--log-opt max-size=10m --log-opt max-file=3` and without; time from start to
  exit, then `logs` (all kept lines) through the API.
- Podman (if installed, private storage): the same container and `podman logs`.

Run as root:  .venv/bin/python bench/log_throughput.py [--lines 1000000]
Results are printed and written to bench/results/log_throughput.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import trio
import trio.testing

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from busybox import make_rootfs_tar  # type: ignore[import-not-found]  # noqa: E402

from supervisor.supervise.framing import LineFramer  # noqa: E402
from supervisor.supervise.logs import ContainerLog, LogOptions  # noqa: E402

LINE = 60
ROTATE = {"max-size": "10m", "max-file": "3"}


def line(i: int) -> bytes:
    return b"%07d %050d\n" % (i, 0)


def awk_command(count: int) -> list[str]:
    return ["awk", f'BEGIN {{ for (i = 0; i < {count}; i++) printf "%07d %050d\\n", i, 0 }}']


def rate(n: int, seconds: float) -> dict[str, float]:
    return {"seconds": round(seconds, 3), "lines_per_s": round(n / seconds)}


async def store_run(work: Path, count: int, options: LogOptions) -> dict[str, Any]:
    work.mkdir(parents=True, exist_ok=True)
    log = ContainerLog(work / "x-json.log")
    log.open_writer(options)
    data = b"".join(line(i) for i in range(count))
    seen = 0
    ok = True

    async def follower() -> None:
        nonlocal seen, ok
        async for e in log.follow():
            if e.data != line(seen):
                ok = False
            seen += 1

    async with trio.open_nursery() as n:
        n.start_soon(follower)
        await trio.testing.wait_all_tasks_blocked()
        framer = LineFramer()
        t0 = time.perf_counter()
        worst = spent = 0.0
        for i in range(0, len(data), 65536):
            t1 = time.perf_counter()
            log.append("stdout", framer.feed(data[i : i + 65536]))
            took = time.perf_counter() - t1
            spent += took
            worst = max(worst, took)
            await trio.lowlevel.checkpoint()  # as the pump's pipe read does
        log.append("stdout", framer.flush())
        log.close_writer()
    with_follower = time.perf_counter() - t0
    t0 = time.perf_counter()
    kept = sum(1 for _ in log.read())
    read = time.perf_counter() - t0
    t0 = time.perf_counter()
    tail = sum(1 for _ in log.read(tail=100))
    tail_s = time.perf_counter() - t0
    shutil.rmtree(work)
    return {
        "append": rate(count, spent),  # time inside framer + append only
        "worst_append_call_ms": round(worst * 1000, 2),
        "writer_and_follower_done_s": round(with_follower, 3),  # one thread does both
        "follower_every_line_once_in_order": ok and seen == count,
        "rotations": log.rotations,
        "read_all_kept": {"lines": kept, **rate(kept, read)},
        "tail_100_ms": round(tail_s * 1000, 2) if tail == 100 else None,
    }


def bench_corral(work: Path, rootfs: Path, count: int) -> dict[str, Any]:
    import docker  # type: ignore[import-untyped]  # the test dependency, as users have it

    sock = work / "corral.sock"
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
        dk = docker.DockerClient(base_url=f"unix://{sock}", timeout=600)
        dk.api.import_image_from_data(rootfs.read_bytes(), repository="busybox", tag="latest")
        out: dict[str, Any] = {}
        for name, opts in (("rotated", ROTATE), ("unrotated", {})):
            cfg = docker.types.LogConfig(type="json-file", config=opts)
            c = dk.containers.create("busybox", awk_command(count), log_config=cfg)
            t0 = time.perf_counter()
            c.start()
            c.wait()
            stored = time.perf_counter() - t0
            t0 = time.perf_counter()
            got = c.logs()
            read = time.perf_counter() - t0
            kept = got.count(b"\n")
            last_ok = got.endswith(line(count - 1))
            out[name] = {
                "run_to_exit": rate(count, stored),
                "logs_read": {"lines": kept, "last_line_ok": last_ok, **rate(kept, read)},
            }
            c.remove(force=True)
        dk.close()
        return out
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=60)


def bench_podman(work: Path, rootfs: Path, count: int) -> dict[str, Any] | None:
    if shutil.which("podman") is None:
        return None
    store = ["--root", str(work / "storage"), "--runroot", str(work / "run")]
    podman = ["podman", *store]
    subprocess.run([*podman, "import", str(rootfs), "localhost/busybox:latest"],
                   check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    try:
        t0 = time.perf_counter()
        subprocess.run([*podman, "run", "--name", "flood", "--network", "none",
                        "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024",
                        "localhost/busybox:latest", *awk_command(count)],
                       check=True, stdout=subprocess.DEVNULL)  # fmt: skip
        stored = time.perf_counter() - t0
        t0 = time.perf_counter()
        got = subprocess.run([*podman, "logs", "flood"], check=True, capture_output=True).stdout
        read = time.perf_counter() - t0
        return {
            "run_to_exit_attached": rate(count, stored),
            "logs_read": {"lines": got.count(b"\n"), **rate(got.count(b"\n"), read)},
        }
    finally:
        null = subprocess.DEVNULL
        subprocess.run([*podman, "system", "reset", "--force"], stdout=null, stderr=null)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=1_000_000)
    opts = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="corral-bench-logs-"))
    try:
        rootfs = make_rootfs_tar(work / "busybox.tar")
        results = {
            "lines": opts.lines,
            "line_bytes": LINE,
            "store": {
                "rotated_10m_3": trio.run(
                    store_run, work / "s1", opts.lines, LogOptions(10 << 20, 3)
                ),
                "unrotated": trio.run(store_run, work / "s2", opts.lines, LogOptions()),
            },
            "corral": bench_corral(work / "corral", rootfs, opts.lines),
            "podman": bench_podman(work / "podman", rootfs, opts.lines),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    out = REPO / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "log_throughput.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
