"""The live-restore soak (issue 17): the daemon killed with SIGKILL every 20 s while
a mixed fleet runs, then everything a user would check.  One code for both places the
issue wants it: the test suite (`tests/test_live_restore_soak.py`, which asserts the
checks) and the bench (`bench/scenarios/soak.py`, which reports them as rows).

The fleet (scaled from the issue's 200 by `Soak`): crash loops (restart always,
backoff 0), containers probed every 100 ms, writers of numbered lines, web servers on
published ports under a connection loop on 127.0.0.1, and sleepers.  Afterwards:

- every long-running container has its original PID (no kill restarted one);
- every line every writer wrote is in its log exactly once, in order;
- no connection through a published port failed but those open at the instant of a
  kill (counted: a kill ends the relay of a connection being served);
- crash loops and health checks went on under the last daemon;
- no row lost, the database whole; once removed, no netns, veth or fleet process left
  (the test fixture checks mounts, runc state, cgroups and the holder besides).

The short variant (2 minutes, 40 containers) runs with the suite; the full one (10
minutes, 200 containers, writers at 10,000 lines/s each) with CORRAL_SOAK=full or
`bench soak --soak-full`.  Blocking code (docker-py and threads): the bench runs it in a
worker thread.  Who starts and kills the daemon is the caller's (`Daemons`).
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from bench import procfs
from bench.soaklog import LogFigures, check_log

IMAGE = "busybox:latest"
MS = 1_000_000


class Daemons(Protocol):
    """The daemon under soak, as its caller runs it: one at a time on one root."""

    root: Path
    sock: Path

    @property
    def pid(self) -> int:
        """The running daemon's pid."""
        ...

    def kill(self) -> None:
        """SIGKILL the running daemon and wait for its end (its holder stays)."""
        ...

    def start(self) -> None:
        """Start a daemon on the root again; return once it answers."""
        ...


def client(d: Daemons) -> Any:
    import docker  # type: ignore[import-untyped]  # docker-py: the suite's client, no stubs

    return docker.DockerClient(base_url=f"unix://{d.sock}", version="1.44", timeout=60)


def holder_pid(root: Path) -> int | None:
    """The pid of the container holder of `root` (runtime/holderd.py), if one runs."""
    sock = str(root / "holder.sock")
    found = procfs.pids_where(lambda pid: sock in (args := procfs.cmdline(pid))
                              and any(a.endswith("holderd.py") for a in args))  # fmt: skip
    return found[0] if found else None


@dataclass
class Outcome:
    """The figures the soak prints, and each check that failed (one line each)."""

    figures: dict[str, Any]
    failures: list[str]


@dataclass(frozen=True)
class Soak:
    minutes: float
    crash: int
    health: int
    writers: int
    web: int
    sleepers: int
    lines_per_s: int  # each writer's rate (it writes 100 lines, then sleeps)
    kill_every: float = 20.0

    @property
    def total(self) -> int:
        return self.crash + self.health + self.writers + self.web + self.sleepers


FULL = Soak(10, crash=50, health=50, writers=20, web=10, sleepers=70, lines_per_s=10_000)
# 2 CPUs shared with other test runs: the short variant's writers are slower.
SHORT = Soak(2, crash=10, health=10, writers=4, web=2, sleepers=14, lines_per_s=1_000)


def _writer(rate: int) -> str:
    """Numbered lines at `rate`; on SIGTERM the count written (`end N`).  The number is
    raised inside the echo, so the trap (run between commands) never sees it raised
    but not printed."""
    pause = int(100 / rate * 1_000_000)  # microseconds per 100 lines
    return ('i=0; trap \'echo "end $i"; exit 0\' TERM; while :; do j=0; '
            'while [ $j -lt 100 ]; do echo "line $((i+=1))"; j=$((j+1)); done; '
            f'usleep {pause}; done')


def _in_parallel(d: Daemons, jobs: list[tuple[str, dict[str, Any]]], width: int = 8) -> None:
    """`containers.run` for each (name, kwargs), `width` at a time, a client per thread:
    the full soak's 200 one by one took 12 minutes of its setup."""
    local = threading.local()
    clients: list[Any] = []

    def one(job: tuple[str, dict[str, Any]]) -> None:
        if not hasattr(local, "client"):
            local.client = client(d)
            clients.append(local.client)
        local.client.containers.run(IMAGE, name=job[0], detach=True, **job[1])

    try:
        with ThreadPoolExecutor(width) as pool:
            list(pool.map(one, jobs))
    finally:
        for c in clients:
            c.close()


@dataclass
class Connections:
    ok: int = 0
    failed: list[tuple[float, float, str]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def loop(self, ports: list[int]) -> None:
        i = 0
        while not self.stop.is_set():
            port = ports[i % len(ports)]
            i += 1
            t0 = time.time()
            try:
                # curl's own connect timeout (300 s): a connection made while no daemon
                # runs waits in the backlog for the next one, which at load 100+ took
                # over a minute to come back.
                with socket.create_connection(("127.0.0.1", port), timeout=300) as s:
                    s.sendall(b"GET / HTTP/1.0\r\n\r\n")
                    out = b""
                    while chunk := s.recv(4096):
                        out += chunk
                if b"soak-web" not in out:
                    raise OSError(f"short answer {out[:60]!r}")
                self.ok += 1
            except OSError as exc:
                self.failed.append((t0, time.time(), str(exc)))


def _rss_kb(pid: int | None) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _proc_state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0]
    except OSError:
        return "gone"


def _await_restarted(api: Any, names: list[str], since: float) -> list[str]:
    """Those of `names` not started again by the last daemon (up since `since`) within
    300 s: the crash loops go on under it.  Start events, not `RestartCount`: a
    daemon's boot start resets the count, as Docker's restore does
    (`ResetRestartManager`); at load 100+ two policy restarts at a time take minutes
    to go round 50 loops."""
    waiting = set(names)
    for ev in api.events(decode=True, since=int(since), until=int(time.time()) + 300,
                         filters={"type": "container", "event": "start"}):
        waiting.discard(ev.get("Actor", {}).get("Attributes", {}).get("name", ""))
        if not waiting:
            break
    return sorted(waiting)


def _await_healthy(api: Any, names: list[str], since: float) -> list[str]:
    """Those of `names` that did not turn healthy under the last daemon within 60 s.

    A restored container's health is `starting` again (Docker's `initHealthMonitor`
    does the same), so the check waits on `health_status: healthy` events since the
    last kill, not on the state read the instant the daemon answers."""
    waiting = {n for n in names
               if api.containers.get(n).attrs["State"]["Health"]["Status"] != "healthy"}
    if not waiting:
        return []
    for ev in api.events(decode=True, since=int(since), until=int(time.time()) + 60,
                         filters={"type": "container"}):
        if ev.get("Action") == "health_status: healthy":
            waiting.discard(ev.get("Actor", {}).get("Attributes", {}).get("name", ""))
            if not waiting:
                break
    return sorted(waiting)


def soak(s: Soak, d: Daemons, out: Path, rootfs_tar: Path | None = None) -> Outcome:
    """Run the fleet `s` under a kill -9 every `s.kill_every` seconds, then check it;
    the figures are also written to `out`/soak-figures.json.  `rootfs_tar` is imported
    as busybox:latest first, unless the daemon has it already."""
    api = client(d)
    if rootfs_tar is not None:
        api.api.import_image_from_data(rootfs_tar.read_bytes(), repository="busybox",
                                       tag="latest")
    rss_empty = _rss_kb(holder_pid(d.root))
    names: dict[str, list[str]] = {
        "sleep": [f"sleep{i}" for i in range(s.sleepers)],
        "web": [f"web{i}" for i in range(s.web)],
        "health": [f"health{i}" for i in range(s.health)],
        "writer": [f"writer{i}" for i in range(s.writers)],
        "crash": [f"crash{i}" for i in range(s.crash)],
    }
    t_setup = time.monotonic()
    # The quiet long-running ones first, then what loads the machine: probes every
    # 100 ms, then the writers, then the crash loops.
    _in_parallel(d, [(n, {"command": ["sleep", "1d"]}) for n in names["sleep"]])
    web = ["sh", "-c", "mkdir -p /www && echo soak-web > /www/index.html && "
                       "exec httpd -f -p 80 -h /www"]
    _in_parallel(d, [(n, {"command": web, "ports": {"80/tcp": ("127.0.0.1", None)}})
                     for n in names["web"]])
    ports = [int(api.api.port(n, 80)[0]["HostPort"]) for n in names["web"]]
    probe = {"test": ["CMD", "true"], "interval": 100 * MS}
    _in_parallel(d, [(n, {"command": ["sleep", "1d"], "healthcheck": probe})
                     for n in names["health"]])
    _in_parallel(d, [(n, {"command": ["sh", "-c", _writer(s.lines_per_s)]})
                     for n in names["writer"]])
    loop = {"command": ["sh", "-c", "usleep 500000; exit 1"],
            "restart_policy": {"Name": "always"}, "labels": {"corral.restart.backoff": "0s"}}
    _in_parallel(d, [(n, loop) for n in names["crash"]])
    setup_s = time.monotonic() - t_setup
    load_at_start = os.getloadavg()
    long_running = names["health"] + names["writer"] + names["web"] + names["sleep"]
    pids = {n: api.containers.get(n).attrs["State"]["Pid"] for n in long_running}
    starts = {n: _start_time(p) for n, p in pids.items()}
    api.close()

    conns = Connections()
    looper = threading.Thread(target=conns.loop, args=(ports,), daemon=True)
    looper.start()
    kills: list[float] = []
    killed: list[int] = []  # the daemons' pids, to tell the soak's SIGKILLs from others'
    restarts: list[float] = []  # seconds from the new daemon's exec to its API answering
    pace = threading.Event()  # never set: waits are the soak's schedule, not synchronisation
    t_soak = time.monotonic()
    last_up = time.time()  # when the daemon now running came up
    deadline = t_soak + s.minutes * 60
    try:
        # Kills on a fixed 20 s schedule from the soak's start; a mark passed while a
        # (loaded) daemon was starting is skipped, not made up at once.
        mark = t_soak + s.kill_every
        while mark <= deadline:
            pace.wait(mark - time.monotonic())
            killed.append(d.pid)
            kills.append(time.time())
            d.kill()
            t0 = time.monotonic()
            d.start()
            restarts.append(time.monotonic() - t0)
            last_up = time.time()
            while mark <= time.monotonic():
                mark += s.kill_every
    finally:
        conns.stop.set()
        looper.join(60)
    soak_s = time.monotonic() - t_soak

    api = client(d)
    # No kill restarted a long-running container: the same processes, alive.
    now = {n: api.containers.get(n).attrs["State"]["Pid"] for n in long_running}
    moved = {n: (pids[n], now[n]) for n in long_running if now[n] != pids[n]}
    dead = [n for n in long_running if _proc_state(pids[n]) in ("gone", "Z")]
    # The crash loops go on under the last daemon (each started again by it).
    stuck = _await_restarted(api, names["crash"], since=last_up)
    unhealthy = _await_healthy(api, names["health"], since=kills[-1] if kills else 0.0)
    load_at_end = os.getloadavg()
    # No lost row: every container the soak made is listed by the last daemon.
    listed = {c.name for c in api.containers.list(all=True)}
    lost = sorted(set().union(*names.values()) - listed)
    # Writers: stopped (each prints its count), then each log, streamed through the API
    # as `docker logs` reads it, must be `line 1` .. `line N` once in order, then `end N`.
    t_check = time.monotonic()
    writers = [api.containers.get(n) for n in names["writer"]]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda c: c.stop(timeout=30), writers))
    exit_codes = {n: api.containers.get(n).attrs["State"]["ExitCode"]
                        for n in names["writer"]}  # 0: each trap ran and printed its count
    with ThreadPoolExecutor(2) as pool:
        logs: dict[str, LogFigures] = dict(zip(
            names["writer"], pool.map(lambda n: check_log(str(d.sock), n), names["writer"]),
            strict=True))
    check_s = time.monotonic() - t_check
    # A connection failed "at a kill" if it was open at the instant of one.
    at_kill = [f for f in conns.failed if any(f[0] <= k <= f[1] + 0.05 for k in kills)]
    other_failures = [f for f in conns.failed if f not in at_kill]
    holder = (d.root / "holder.sock").exists()
    rss_full = _rss_kb(holder_pid(d.root))
    integrity = _integrity(d.root / "corral.db")
    bridge = api.networks.get("bridge").attrs["Options"]["com.docker.network.bridge.name"]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda c: c.remove(force=True), api.containers.list(all=True)))
    netns = os.listdir(d.root / "netns") if (d.root / "netns").exists() else []
    veths = _ports_of(bridge)
    # No process of the fleet outlived its removal (same pid and start time: not reused).
    alive = sorted(n for n, p in pids.items() if _start_time(p) == starts[n])
    rows = len(api.containers.list(all=True))
    api.close()

    figures = {
        "minutes": s.minutes, "containers": s.total, "kills": len(kills),
        "kill_instants_s": [round(k - kills[0], 1) for k in kills],
        "killed_daemon_pids": killed, "last_daemon_pid": d.pid,
        "setup_s": round(setup_s, 1), "soak_s": round(soak_s, 1),
        "check_s": round(check_s, 1), "total_s": round(time.monotonic() - t_setup, 1),
        "load_1_5_15": {"after_setup": [round(x, 1) for x in load_at_start],
                        "after_soak": [round(x, 1) for x in load_at_end],
                        "at_end": [round(x, 1) for x in os.getloadavg()]},
        "restarts_s": [round(r, 2) for r in restarts],
        "daemon_restart_s": {"max": round(max(restarts, default=0), 2),
                             "mean": round(sum(restarts) / max(len(restarts), 1), 2)},
        "pids_kept": len(long_running) - len(moved), "pids_moved": len(moved),
        "long_running_dead": len(dead),
        "crash_loops_resumed": len(names["crash"]) - len(stuck),
        "health_healthy_at_end": len(names["health"]) - len(unhealthy),
        "rows_lost": len(lost), "db_integrity": integrity,
        "writer_lines_per_s": s.lines_per_s,
        "writer_lines": sum(v.lines for v in logs.values()),
        "writer_log_mb": round(sum(v.bytes for v in logs.values()) / 1e6, 1),
        "writers_counted_their_lines": sum(1 for v in logs.values() if v.end is not None),
        "writers_whole": sum(1 for v in logs.values() if v.whole),
        "lines_missing": sum(v.missing for v in logs.values()),
        "lines_backwards": sum(v.backwards for v in logs.values()),
        "frames_foreign": sum(v.foreign for v in logs.values()),
        "lines_counted_but_absent": sum((v.end or 0) - v.last for v in logs.values()),
        "connections_ok": conns.ok, "connections_failed_at_a_kill": len(at_kill),
        "connections_failed_at_kill_instants_s": sorted(
            round(k - kills[0], 1) for f in at_kill for k in kills if f[0] <= k <= f[1] + 0.05),
        "connections_failed_otherwise": len(other_failures),
        "connections_failed_otherwise_why": sorted({f[2] for f in other_failures})[:5],
        "holder_alive_at_end": holder,
        "left_after_remove": {"rows": rows, "netns": len(netns), "veths": len(veths),
                              "processes": len(alive)},
        "holder_rss_kb": {"empty": rss_empty, "holding_all": rss_full,
                          "per_container": round((rss_full - rss_empty) / s.total, 1)},
    }
    (out / "soak-figures.json").write_text(json.dumps(figures, indent=1))
    bad = {n: v for n, v in logs.items() if not v.whole}
    checks = [
        (bool(kills), "the soak is shorter than one kill interval"),
        (not moved, f"containers restarted by a kill: {moved}"),
        (not dead, f"long-running containers that died: {dead}"),
        (not stuck, f"crash loops that stopped: {stuck}"),
        (not unhealthy, f"health checks that did not resume: {unhealthy}"),
        (not lost, f"containers the daemon lost: {lost}"),
        (integrity == "ok", f"corral.db: {integrity}"),
        (exit_codes == dict.fromkeys(names["writer"], 0),
         f"writers that did not stop on SIGTERM: {exit_codes}"),
        (not bad, f"writers' logs not complete exactly once in order: {bad}"),
        (not other_failures, f"connections that failed outside a kill: {other_failures[:5]}"),
        ((rows, netns, veths, alive) == (0, [], [], []),
         f"left after removal: rows {rows}, netns {netns}, veths {veths}, processes {alive}"),
    ]
    return Outcome(figures, [why for ok, why in checks if not ok])


def _start_time(pid: int) -> str:
    """Field 22 of /proc/PID/stat (a pid with another start time is another process)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return "gone"


def _ports_of(bridge: str) -> list[str]:
    """The interfaces (veths) attached to `bridge`."""
    brif = Path(f"/sys/class/net/{bridge}/brif")
    return sorted(p.name for p in brif.iterdir()) if brif.is_dir() else []


def _integrity(db: Path) -> str:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return "; ".join(r[0] for r in con.execute("PRAGMA integrity_check"))
    finally:
        con.close()
