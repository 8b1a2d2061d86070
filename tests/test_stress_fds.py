"""A minute of the load under which a container once could not be killed.

Four containers probed every 50 ms; an exec storm against all of them (each exec
writes to stdout and stderr at once); a kill/restart loop on two of them.  What a
user must see throughout:

- every `docker kill` ends its container: `docker wait` returns within 1 s (the wait's
  bound, not a claim about speed);
- every exec in a container nobody kills gives back its exit code and both streams
  whole; an exec in a container being killed may fail, but only with a 409;
- the daemon lives through it, the containers nobody killed stay healthy, and at the
  end no descriptor, pidfd or zombie is left per round of the loop.

It runs its own daemon so that its log and its descriptors are its own.  The daemon's
stderr log must show no leaked descriptor and no signal a pidfd could not deliver.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import docker
import requests

IMAGE = "busybox:latest"
MS = 1_000_000
DURATION = 60.0
KILL_BOUND = 1.0  # seconds a killed container gets to be reported exited
HEALTHCHECK = {"test": ["CMD-SHELL", "echo probe"], "interval": 50 * MS, "timeout": 10_000 * MS}
EXEC = ["sh", "-c", "echo out; echo err >&2"]


def held_fds(pid: int) -> Counter[str]:
    """The daemon's descriptors by kind: pipe, pidfd, socket, file..."""
    kinds: Counter[str] = Counter()
    for entry in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(entry)
        except OSError:
            continue  # closed while listing
        if target.startswith("pipe:"):
            kinds["pipe"] += 1
        elif target == "anon_inode:[pidfd]":
            kinds["pidfd"] += 1
        elif target.startswith("socket:"):
            kinds["socket"] += 1
        else:
            kinds["other"] += 1
    return kinds


def zombies_of(pid: int) -> list[str]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in children:
            try:
                stat = Path(f"/proc/{child}/stat").read_text()
            except OSError:
                continue
            if stat[stat.rindex(")") + 2] == "Z":
                found.append(stat[: stat.rindex(")") + 1])
    return found


class Findings:
    """What the worker threads saw, shared under a lock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.problems: list[str] = []
        self.counts: Counter[str] = Counter()

    def problem(self, text: str) -> None:
        with self.lock:
            self.problems.append(text)

    def count(self, what: str) -> None:
        with self.lock:
            self.counts[what] += 1


def exec_storm(
    client: Any, cid: str, killed: bool, until: float, seen: Findings
) -> None:
    while time.monotonic() < until:
        try:
            eid = client.api.exec_create(cid, EXEC)["Id"]
            out, err = client.api.exec_start(eid, demux=True)
            code = client.api.exec_inspect(eid)["ExitCode"]
        except docker.errors.APIError as exc:
            if killed and exc.status_code == 409:  # not running: between a kill and a start
                seen.count("exec refused")
                continue
            seen.problem(f"exec in {cid[:12]}: {exc}")
            continue
        except Exception as exc:  # a broken connection, a client-side timeout
            seen.problem(f"exec in {cid[:12]}: {type(exc).__name__}: {exc}")
            return  # the daemon may be gone: no point hammering it
        if killed:
            seen.count("exec in a killed container")
        elif (code, out, err) != (0, b"out\n", b"err\n"):
            seen.problem(f"exec in {cid[:12]} gave {(code, out, err)!r}")
        else:
            seen.count("exec")


def kill_loop(client: Any, cids: list[str], until: float, seen: Findings) -> None:
    n = 0
    while time.monotonic() < until:
        cid = cids[n % len(cids)]
        n += 1
        try:
            client.api.kill(cid)
        except docker.errors.APIError as exc:
            seen.problem(f"kill #{n} of {cid[:12]}: {exc}")
            return
        try:
            client.api.wait(cid, timeout=KILL_BOUND)
        except requests.exceptions.RequestException:
            state = client.api.inspect_container(cid)["State"]
            seen.problem(f"{cid[:12]} not exited {KILL_BOUND}s after kill #{n}: {state}")
            return
        seen.count("kill")
        try:
            client.api.start(cid)
        except docker.errors.APIError as exc:
            seen.problem(f"start #{n} of {cid[:12]}: {exc}")
            return


def run_threads(targets: list[Callable[[], None]]) -> None:
    threads = [threading.Thread(target=t, daemon=True) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=DURATION + 120)  # a hung call is a failure below, not a hung suite
        assert not t.is_alive(), "a worker hung past the end of the run"


def daemon_records(log: Path) -> list[dict[str, Any]]:
    records = []
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                records.append(json.loads(line))
            except ValueError:
                continue
    return records


def test_kills_end_containers_under_probes_and_an_exec_storm(
    private_daemon: Any, rootfs_tar: Path
) -> None:
    d = private_daemon()
    dk = d.client()
    dk.api.import_image_from_data(rootfs_tar.read_bytes(), repository="busybox", tag="latest")
    before = held_fds(d.proc.pid)

    def run(name: str) -> str:
        c = dk.containers.run(IMAGE, ["sleep", "1000"], name=name, detach=True,
                              healthcheck=HEALTHCHECK)  # fmt: skip
        return str(c.id)

    steady = [run(f"steady{i}") for i in range(2)]
    victims = [run(f"victim{i}") for i in range(2)]
    until = time.monotonic() + DURATION
    seen = Findings()
    clients = [d.client() for _ in range(5)]  # docker-py clients are not thread-safe
    run_threads(
        [
            lambda: exec_storm(clients[0], steady[0], False, until, seen),
            lambda: exec_storm(clients[1], steady[1], False, until, seen),
            lambda: exec_storm(clients[2], victims[0], True, until, seen),
            lambda: exec_storm(clients[3], victims[1], True, until, seen),
            lambda: kill_loop(clients[4], victims, until, seen),
        ]
    )
    for client in clients:
        client.close()

    assert seen.problems == []
    # It did what it says: rounds of kill/start and execs that ran in the storm.
    assert seen.counts["kill"] >= 10 and seen.counts["exec"] >= 10, seen.counts
    assert dk.ping()
    for cid in steady:
        health = dk.api.inspect_container(cid)["State"]["Health"]
        assert health["Status"] == "healthy", health

    for cid in steady + victims:
        dk.api.remove_container(cid, force=True)
    assert dk.containers.run(IMAGE, ["true"], remove=True) == b""  # one more full round
    dk.close()
    after = held_fds(d.proc.pid)
    # Nothing kept per round: at most a straggler per container, against dozens of
    # rounds that each opened pipes and pidfds.
    for kind in ("pipe", "pidfd"):
        assert after[kind] - before[kind] <= 4, (kind, before, after, seen.counts)
    assert zombies_of(d.proc.pid) == []

    records = daemon_records(d.log)
    loud = [r for r in records if r.get("event") in ("fd.leaked", "container.signal_failed")]
    assert loud == []
