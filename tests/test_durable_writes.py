"""Every write the daemon keeps across a power cut is made durable, in order (issue 12,
item 7): the daemon runs under strace, and for each write path (image import, tag,
container create, volume create) the trace must show the data fsynced before its
rename (a layer tree by syncfs), the directory fsynced after it, and all of that
before the SQLite commit (a WAL sync, `synchronous=FULL`) whose row refers to it;
index.json, derived from the rows, is written after them.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import IMAGE, Daemon, _needs_root, assert_nothing_left, start_daemon

TRACED = "fsync,fdatasync,syncfs,rename,renameat,renameat2"
LINE = re.compile(
    r"^\d+\s+(?P<t>\d+\.\d+)\s+(?P<call>\w+)\((?P<args>.*?)(?:\) += (?P<rc>-?\d+)|<unfinished)"
)
FD_PATH = re.compile(r"^\d+<(?P<path>[^>]*)>")
QUOTED = re.compile(r'"([^"]*)"')


@dataclass(frozen=True)
class Call:
    t: float
    call: str
    paths: tuple[str, ...]


def parse(trace: str) -> list[Call]:
    calls = []
    for line in trace.splitlines():
        m = LINE.match(line)
        if m is None or (m["rc"] is not None and m["rc"] != "0"):
            continue
        if m["call"].startswith("rename"):
            paths = tuple(QUOTED.findall(m["args"]))
        else:
            fd = FD_PATH.match(m["args"])
            paths = (fd["path"],) if fd else ()
        calls.append(Call(float(m["t"]), m["call"], paths))
    return calls


class Traced:
    """A daemon under `strace -f -ttt -y`, and the calls it made during an operation."""

    def __init__(self, base: Path) -> None:
        self.trace = base / "strace.out"
        self.proc = start_daemon(
            base / "root",
            base / "d.sock",
            base / "d.log",
            ("strace", "-f", "-qq", "-ttt", "-y", "-e", f"trace={TRACED}", "-o", str(self.trace)),
        )
        self.root = (base / "root").resolve()
        self.daemon = Daemon(self.root, base / "d.sock", self.proc, base / "d.log")

    def during(self, op: Callable[[], object]) -> list[Call]:
        start = time.time()
        op()
        end = time.time()
        return [c for c in parse(self.trace.read_text()) if start <= c.t <= end]

    def daemon_pid(self) -> int:
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
        return int(children.split()[0])

    def stop(self) -> None:
        os.kill(self.daemon_pid(), signal.SIGTERM)  # strace would kill it, not stop it
        self.proc.wait(timeout=60)


@pytest.fixture
def traced(tmp_path: Path) -> Iterator[Traced]:
    _needs_root()
    if shutil.which("strace") is None:
        pytest.skip("strace not installed")
    t = Traced(tmp_path)
    try:
        yield t
    finally:
        if t.proc.poll() is None:
            client = t.daemon.client()
            for c in client.containers.list(all=True):
                c.remove(force=True, v=True)
            client.close()
            t.stop()
        assert_nothing_left(t.root)


def index_of(calls: list[Call], pred: Callable[[Call], bool], what: str) -> int:
    found = [i for i, c in enumerate(calls) if pred(c)]
    assert found, f"no {what} in:\n" + "\n".join(map(str, calls))
    return found[0]


def synced(calls: list[Call], path: Path | str, what: str) -> int:
    return index_of(
        calls, lambda c: c.call in ("fsync", "fdatasync") and c.paths == (str(path),), what
    )


def durable_rename(calls: list[Call], dst: Path, *, tree: bool = False) -> int:
    """The rename into `dst`: its source synced before (a tree by syncfs), the
    directory after.  Returns the index of the directory's fsync."""
    i = index_of(
        calls, lambda c: c.call.startswith("rename") and c.paths[-1] == str(dst), f"rename {dst}"
    )
    src = calls[i].paths[0]
    if tree:
        assert any(c.call == "syncfs" for c in calls[:i]), f"{src} not synced before its rename"
    else:
        assert any(
            c.call in ("fsync", "fdatasync") and c.paths == (src,) for c in calls[:i]
        ), f"{src} not fsynced before its rename to {dst}"
    j = i + 1 + synced(calls[i + 1 :], dst.parent, f"fsync of {dst.parent} after the rename")
    return j


def wal_commit_after(calls: list[Call], i: int, root: Path) -> int:
    wal = str(root / "corral.db-wal")
    return i + 1 + index_of(
        calls[i + 1 :], lambda c: c.paths == (wal,) and "sync" in c.call, "a WAL sync (commit)"
    )


def test_every_write_path_fsyncs_data_then_names_then_rows(
    traced: Traced, rootfs_tar: Path
) -> None:
    root = traced.root
    client: Any = traced.daemon.client()

    # import: the layer tree, its tar and the config and manifest blobs, then the rows,
    # then index.json
    calls = traced.during(
        lambda: client.api.import_image_from_data(
            rootfs_tar.read_bytes(), repository="busybox", tag="latest"
        )
    )
    image = client.images.get(IMAGE)
    (diffid,) = image.attrs["RootFS"]["Layers"]
    hexid = diffid.split(":")[1]
    blobs = root / "images" / "blobs" / "sha256"
    data_done = max(
        durable_rename(calls, root / "layers" / hexid, tree=True),
        durable_rename(calls, blobs / hexid),
        durable_rename(calls, blobs / image.id.split(":")[1]),
    )
    commit = wal_commit_after(calls, data_done, root)
    index = durable_rename(calls, root / "images" / "index.json")
    assert index > commit, "index.json was written before the rows it is made from"

    # tag: the row, then index.json
    calls = traced.during(lambda: client.api.tag(IMAGE, "durable", "v1"))
    commit = wal_commit_after(calls, -1, root)
    assert durable_rename(calls, root / "images" / "index.json") > commit

    # container create and volume create: the row commits (the directories beside it
    # are not fsynced; the start after a power cut makes them again: test_daemon_recovery)
    calls = traced.during(lambda: client.api.create_container(IMAGE, ["true"]))
    wal_commit_after(calls, -1, root)
    calls = traced.during(lambda: client.volumes.create("durable"))
    wal_commit_after(calls, -1, root)
    client.volumes.get("durable").remove()
    client.close()


def test_a_restart_loop_fsyncs_its_exit_for_good_not_each_cycle(
    traced: Traced, rootfs_tar: Path
) -> None:
    """The steps of a policy restart (exit, `restarting`, running again, the init's
    row) commit without the WAL's fsync: a power cut that could take them back leaves
    the container stopped anyway.  The exit for good is durable, as Docker keeps it."""
    root = traced.root
    client: Any = traced.daemon.client()
    client.api.import_image_from_data(rootfs_tar.read_bytes(), repository="busybox", tag="latest")
    restarts = 4
    c = client.containers.create(
        IMAGE, ["sh", "-c", "exit 3"], labels={"corral.restart.backoff": "0s,0s,0s"},
        restart_policy={"Name": "on-failure", "MaximumRetryCount": restarts},
        network_mode="none",  # the bridge's endpoint rows are another story (durable)
    )
    since = time.time()
    c.start()  # the user's start is durable (its commit is before this window)

    def loop() -> None:
        # every run's `die`: the first, then one per restart (the last is for good)
        dies = client.events(since=since, until=time.time() + 60, decode=True,
                             filters={"container": c.id, "event": "die"})
        for n, _ in enumerate(dies, 1):
            if n == restarts + 1:
                break
        dies.close()

    calls = traced.during(loop)
    c.reload()
    assert c.attrs["RestartCount"] == restarts and c.attrs["State"]["Status"] == "exited"
    wal = str(root / "corral.db-wal")
    syncs = [x for x in calls if x.paths == (wal,) and "sync" in x.call]
    assert 1 <= len(syncs) < restarts, f"{len(syncs)} WAL syncs in {restarts} restarts"
    client.close()
