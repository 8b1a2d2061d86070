"""`docker commit` of a large layer leaves the daemon answering, as dockerd does.

The upper dir's tar and hash (here 200 MB of random data) run in a worker thread; the
order is taken from the daemon's own events (`pause` ... `commit`, Docker's sequence),
not from timings: a ping sent once the commit has paused the container is answered
before the commit has stored its image.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from conftest import Daemon

IMAGE = "busybox:latest"


def test_ping_is_answered_while_a_large_commit_runs(corral: Daemon, dk: Any) -> None:
    c = dk.containers.run(IMAGE, ["sleep", "1d"], detach=True)
    res = c.exec_run(["sh", "-c", "head -c 200000000 /dev/urandom > /big"])
    assert res.exit_code == 0, res.output
    since = time.time()
    result: list[Any] = []

    def commit() -> None:
        try:
            result.append(c.commit("bigcommit:1"))
        except Exception as exc:  # reported by the assertion below
            result.append(exc)

    worker = threading.Thread(target=commit)
    pinger = corral.client()
    seen: list[str] = []
    wanted = {"container": c.id, "event": ["pause", "commit", "unpause"]}
    stream = dk.events(since=since, until=time.time() + 60, decode=True, filters=wanted)
    worker.start()
    try:
        for e in stream:
            seen.append(e["Action"])
            if e["Action"] == "pause":
                assert pinger.ping() is True
                # the daemon's own witness: the image is not stored yet
                made = pinger.images.list(name="bigcommit")
                seen.append("ping answered" + (" after the commit" if made else ""))
            if e["Action"] == "unpause":
                break
    finally:
        stream.close()
        worker.join(timeout=120)
        pinger.close()
    assert seen == ["pause", "ping answered", "commit", "unpause"]
    assert not isinstance(result[0], Exception), result
    out = dk.containers.run("bigcommit:1", ["wc", "-c", "/big"], remove=True)
    assert out == b"200000000 /big\n"
