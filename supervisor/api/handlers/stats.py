"""`GET /containers/{id}/stats`: Docker's stats JSON from the exporter's readings.

`stream=1` (Docker's default) sends one object per second until the container stops
or the client goes away; `stream=0` waits one second for a second reading so
`precpu_stats` is filled and the CPU % can be computed, as Docker does; `one-shot=1`
with `stream=0` answers at once with one reading.  The JSON shape is what the docker
CLI and docker-py read (`docker stats` works against corral).
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import trio

from metrics import readings
from metrics.procfs import host_memory_bytes, system_cpu_ns
from supervisor.api.router import ApiRequest, ApiResponse, JsonResponse, Router, StreamResponse
from supervisor.engine.engine import Engine
from supervisor.engine.state import Status
from supervisor.engine.timefmt import ZERO_TIME, rfc3339_nano
from supervisor.metadata.containers import Container
from supervisor.runtime import cgroups

INTERVAL = 1.0  # seconds between streamed samples, as Docker


@dataclass(frozen=True)
class Sample:
    """A reading plus the host numbers Docker puts next to it."""

    reading: readings.Reading | None
    system_ns: int
    online_cpus: int
    host_memory: int
    v2: bool


def online_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except OSError:
        return os.cpu_count() or 1


def _cpu_stats(s: Sample | None) -> dict[str, Any]:
    if s is None or s.reading is None:
        return {
            "cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
            "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
        }
    cg = s.reading.cgroup
    usage: dict[str, Any] = {
        "total_usage": cg.cpu_usage_ns or 0,
        "usage_in_kernelmode": cg.cpu_system_ns or 0,
        "usage_in_usermode": cg.cpu_user_ns or 0,
    }
    if cg.percpu_ns:
        usage["percpu_usage"] = cg.percpu_ns
    return {
        "cpu_usage": usage,
        "system_cpu_usage": s.system_ns,
        "online_cpus": s.online_cpus,
        "throttling_data": {
            "periods": cg.cpu_periods,
            "throttled_periods": cg.cpu_throttled_periods,
            "throttled_time": cg.cpu_throttled_ns,
        },
    }


def _blkio(cg: cgroups.CgroupStats, v2: bool, field: str) -> list[dict[str, Any]]:
    read_op, write_op = ("read", "write") if v2 else ("Read", "Write")
    out = []
    for majmin, io in sorted(cg.io.items()):
        major, _, minor = majmin.partition(":")
        r, w = (io.read_bytes, io.write_bytes) if field == "bytes" else (io.reads, io.writes)
        for op, value in ((read_op, r), (write_op, w)):
            out.append({"major": int(major), "minor": int(minor), "op": op, "value": value})
    return out


def stats_json(c_id: str, name: str, cur: Sample, pre: Sample | None) -> dict[str, Any]:
    """Docker's `ContainerStats` (API 1.44, Linux) for one reading and the one before."""
    r = cur.reading
    out: dict[str, Any] = {
        "read": rfc3339_nano(int(r.read_at * 1e9)) if r else ZERO_TIME,
        "preread": rfc3339_nano(int(pre.reading.read_at * 1e9))
        if pre is not None and pre.reading is not None
        else ZERO_TIME,
        "name": "/" + name,
        "id": c_id,
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": _cpu_stats(cur),
        "precpu_stats": _cpu_stats(pre),
    }
    if r is None:
        out.update(pids_stats={}, blkio_stats={}, memory_stats={})
        return out
    cg = r.cgroup
    pids: dict[str, int] = {"current": cg.pids or 0}
    if cg.pids_limit is not None:
        pids["limit"] = cg.pids_limit
    out["pids_stats"] = pids
    out["blkio_stats"] = {
        "io_service_bytes_recursive": _blkio(cg, cur.v2, "bytes"),
        "io_serviced_recursive": _blkio(cg, cur.v2, "ops"),
        "io_queue_recursive": None,
        "io_service_time_recursive": None,
        "io_wait_time_recursive": None,
        "io_merged_recursive": None,
        "io_time_recursive": None,
        "sectors_recursive": None,
    }
    memory: dict[str, Any] = {
        "usage": cg.memory_usage or 0,
        "stats": dict(cg.memory_stat),
        "limit": cg.memory_limit if cg.memory_limit is not None else cur.host_memory,
    }
    if not cur.v2:
        memory["max_usage"] = cg.memory_max_usage or 0
        memory["failcnt"] = cg.memory_failcnt
    out["memory_stats"] = memory
    out["networks"] = {
        iface: {
            "rx_bytes": d.rx_bytes,
            "rx_packets": d.rx_packets,
            "rx_errors": d.rx_errors,
            "rx_dropped": d.rx_dropped,
            "tx_bytes": d.tx_bytes,
            "tx_packets": d.tx_packets,
            "tx_errors": d.tx_errors,
            "tx_dropped": d.tx_dropped,
        }
        for iface, d in sorted(r.networks.items())
    }
    return out


def sample(engine: Engine, c: Container) -> Sample:
    """A reading of `c` now (None inside when it is not running)."""
    layout = cgroups.layout()
    reading = None
    if c.state.status in (Status.RUNNING, Status.PAUSED) and c.state.pid > 0:
        reading = readings.read(engine.cgroup_path(c), c.state.pid, layout=layout, tasks=False)
    return Sample(reading, system_cpu_ns(), online_cpus(), host_memory_bytes(), layout.v2)


def _line(obj: dict[str, Any]) -> bytes:
    return (json.dumps(obj, separators=(",", ":")) + "\n").encode()


def register(router: Router, engine: Engine) -> None:
    @router.route("GET", "/containers/{id}/stats")
    async def stats(req: ApiRequest, id: str) -> ApiResponse:
        c = engine.containers.get(id)
        stream = req.query_bool("stream", True)
        one_shot = req.query_bool("one-shot", False)
        running = c.state.status in (Status.RUNNING, Status.PAUSED)
        if not stream:
            first = sample(engine, c)
            if one_shot or not running:
                return JsonResponse(stats_json(c.id, c.name, first, None))
            exited = engine.live(c).exited
            with trio.move_on_after(INTERVAL):
                await exited.wait()
            return JsonResponse(stats_json(c.id, c.name, sample(engine, c), first))

        async def body() -> AsyncIterator[bytes]:
            pre: Sample | None = None
            while True:
                cur = sample(engine, c)
                yield _line(stats_json(c.id, c.name, cur, pre))
                if cur.reading is None:
                    return  # not running (any more): the stream ends, as the CLI expects
                pre = cur
                exited = engine.live(c).exited
                with trio.move_on_after(INTERVAL):
                    await exited.wait()

        return StreamResponse(body(), "application/json")
