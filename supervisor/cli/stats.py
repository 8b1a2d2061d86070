"""`corral stats [--no-stream] [-a] [CONTAINER...]`: docker's live resource table.

Readings come from `GET /containers/{id}/stats?stream=0&one-shot=1`; the CPU % is the
container's CPU time over the host's between two readings a second apart, computed
client-side exactly as the docker CLI computes it from `cpu_stats`/`precpu_stats`.  So
`--no-stream` takes two rounds of readings (one second apart) for all containers at
once instead of one slow request per container.
"""

from __future__ import annotations

import time

from supervisor.api.client import ApiError, quote
from supervisor.cli.format import bytes_size, human_size
from supervisor.cli.parser import Command, Opt, parse

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from supervisor.cli.context import Cli
    from supervisor.cli.govalues import Record
    from supervisor.cli.output import RowFormat

STATS = Command(
    "stats",
    "corral stats [OPTIONS] [CONTAINER...]",
    "Display a live stream of container(s) resource usage statistics",
    (
        Opt("all", "a", help="Show all containers (default shows just running)"),
        Opt("format", kind="str", help="Format output using a custom template"),
        Opt("no-stream", help="Disable streaming stats and only pull the first result"),
        Opt("no-trunc", help="Do not truncate output"),
    ),
)

# docker's statsContext: the fields `--format` sees, and their table headers.
HEADERS = {
    "Container": "CONTAINER",
    "ID": "CONTAINER ID",
    "Name": "NAME",
    "CPUPerc": "CPU %",
    "MemUsage": "MEM USAGE / LIMIT",
    "MemPerc": "MEM %",
    "NetIO": "NET I/O",
    "BlockIO": "BLOCK I/O",
    "PIDs": "PIDS",
}
DEFAULT = ("table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t"
           "{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}")
INTERVAL = 1.0


def cpu_percent(cur: dict[str, Any], pre: dict[str, Any] | None) -> float:
    """docker's calculateCPUPercentUnix over two readings' `cpu_stats`."""
    if pre is None:
        return 0.0
    c, p = cur.get("cpu_stats") or {}, pre.get("cpu_stats") or {}
    cpu_delta = (c.get("cpu_usage") or {}).get("total_usage", 0) - (
        (p.get("cpu_usage") or {}).get("total_usage", 0)
    )
    system_delta = c.get("system_cpu_usage", 0) - p.get("system_cpu_usage", 0)
    cpus = c.get("online_cpus") or len((c.get("cpu_usage") or {}).get("percpu_usage") or []) or 1
    if system_delta > 0 and cpu_delta > 0:
        return float(cpu_delta / system_delta * cpus * 100.0)
    return 0.0


def memory_usage(stats: dict[str, Any]) -> int:
    """docker's calculateMemUsageUnixNoCache: usage minus inactive file pages."""
    mem = stats.get("memory_stats") or {}
    usage = int(mem.get("usage") or 0)
    detail = mem.get("stats") or {}
    for key in ("total_inactive_file", "inactive_file"):  # v1, then v2
        value = detail.get(key)
        if value is not None and value < usage:
            return usage - int(value)
    return usage


def row(stats: dict[str, Any], pre: dict[str, Any] | None, no_trunc: bool,
        container: str | None = None) -> dict[str, str]:
    """One table row, formatted as the docker CLI formats it.

    `.Container` is the name or ID the user gave (docker: as typed), else the short ID.
    """
    ident = str(stats.get("id") or "")
    mem = stats.get("memory_stats") or {}
    usage, limit = memory_usage(stats), int(mem.get("limit") or 0)
    rx = sum(n.get("rx_bytes", 0) for n in (stats.get("networks") or {}).values())
    tx = sum(n.get("tx_bytes", 0) for n in (stats.get("networks") or {}).values())
    blk_r = blk_w = 0
    blkio = (stats.get("blkio_stats") or {}).get("io_service_bytes_recursive") or []
    for entry in blkio:
        op = str(entry.get("op") or " ")[:1].lower()
        if op == "r":
            blk_r += int(entry.get("value") or 0)
        elif op == "w":
            blk_w += int(entry.get("value") or 0)
    running = stats.get("read") not in (None, "", "0001-01-01T00:00:00Z")
    mem_perc = usage / limit * 100.0 if limit else 0.0
    cid = ident if no_trunc else ident[:12]
    return {
        "Container": container or cid,
        "ID": cid,
        "Name": str(stats.get("name") or "").lstrip("/"),
        "CPUPerc": f"{cpu_percent(stats, pre):.2f}%" if running else "0.00%",
        "MemUsage": f"{bytes_size(usage)} / {bytes_size(limit)}",
        "MemPerc": f"{mem_perc:.2f}%",
        "NetIO": f"{human_size(rx)} / {human_size(tx)}",
        "BlockIO": f"{human_size(blk_r)} / {human_size(blk_w)}",
        "PIDs": str((stats.get("pids_stats") or {}).get("current", 0)),
    }


def render(rows: list[dict[str, str]], fmt: str | None) -> str:
    """The rows through the shared `--format` path (default: docker's table)."""
    return formatter(fmt).render(_record(r) for r in rows)


def formatter(fmt: str | None) -> RowFormat:
    from supervisor.cli.output import RowFormat

    return RowFormat(fmt if fmt and fmt != "table" else DEFAULT, HEADERS)


def _record(r: dict[str, str]) -> Record:
    from supervisor.cli.govalues import Record

    return Record("*container.statsContext", r)


def _targets(cli: Cli, names: list[str], all_: bool) -> list[str]:
    if names:
        return names
    listing = cli.client.get("/containers/json", {"all": "1" if all_ else None}) or []
    return [str(c["Id"]) for c in listing]


def _read(cli: Cli, ref: str, named: bool) -> dict[str, Any] | None:
    """One reading; a listed container removed meanwhile is skipped, a named one is not."""
    try:
        stats = cli.client.get(f"/containers/{quote(ref)}/stats",
                               {"stream": "0", "one-shot": "1"})  # fmt: skip
    except ApiError as exc:
        if exc.status == 404 and not named:
            return None
        raise
    return stats if isinstance(stats, dict) else None


def cmd_stats(cli: Cli, argv: list[str]) -> int:
    p = parse(STATS, argv)
    out = formatter(p["format"])  # a bad template fails before any reading
    names = list(p.args)
    previous: dict[str, dict[str, Any]] = {}
    if p["no_stream"]:
        first = {ref: _read(cli, ref, bool(names)) for ref in _targets(cli, names, p["all"])}
        time.sleep(INTERVAL)  # the sampling interval of the CPU %, as docker's
        rows = []
        for ref, pre in first.items():
            cur = _read(cli, ref, bool(names))
            if cur is not None:
                rows.append(row(cur, pre, p["no_trunc"], ref if names else None))
        cli.stdout.write(out.render(_record(r) for r in rows))
        return 0
    tty = cli.stdout.isatty()
    try:
        while True:
            rows = []
            current: dict[str, dict[str, Any]] = {}
            for ref in _targets(cli, names, p["all"]):
                cur = _read(cli, ref, bool(names))
                if cur is None:
                    continue
                current[ref] = cur
                rows.append(row(cur, previous.get(ref), p["no_trunc"], ref if names else None))
            previous = current
            if tty:
                cli.stdout.write("\033[2J\033[H")
            cli.stdout.write(out.render(_record(r) for r in rows))
            cli.stdout.flush()
            time.sleep(INTERVAL)
    except KeyboardInterrupt:
        return 0
