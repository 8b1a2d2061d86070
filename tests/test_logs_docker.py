"""Container logs through docker-py: rotation, following across restarts, floods."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import docker
import pytest
from conftest import IMAGE, Daemon
from docker.types import LogConfig

COUNT_TO_300 = "i=0; while [ $i -lt 300 ]; do echo line $i; i=$((i+1)); done"


def test_logs_after_rotation_are_the_last_lines_in_order(dk: Any, daemon: Daemon) -> None:
    cfg = LogConfig(type=LogConfig.types.JSON, config={"max-size": "1k", "max-file": "3"})
    c = dk.containers.run(IMAGE, ["sh", "-c", COUNT_TO_300], detach=True, log_config=cfg)
    assert c.wait(timeout=60)["StatusCode"] == 0
    assert c.logs(tail=3) == b"line 297\nline 298\nline 299\n"
    kept = c.logs().decode().splitlines()
    first = int(kept[0].split()[1])
    assert first > 0 and kept == [f"line {i}" for i in range(first, 300)]
    stamped = c.logs(timestamps=True, tail=1).decode()
    assert stamped.endswith("Z line 299\n")
    cdir = daemon.root / "containers" / c.id
    assert sorted(p.name for p in cdir.glob("*-json.log*")) == [
        f"{c.id}-json.log",
        f"{c.id}-json.log.1",
        f"{c.id}-json.log.2",
    ]
    assert c.attrs["HostConfig"]["LogConfig"]["Config"] == {"max-size": "1k", "max-file": "3"}


def test_unsupported_log_driver_is_one_clear_error(dk: Any) -> None:
    cfg = LogConfig(type="syslog")
    with pytest.raises(docker.errors.APIError, match="log driver 'syslog' is not supported"):
        dk.containers.run(IMAGE, ["true"], detach=True, log_config=cfg)


def test_logs_follow_keeps_following_across_policy_restarts(dk: Any) -> None:
    # Each run says hello and waits; `kill 1` from inside ends it with code 3, so the
    # on-failure policy restarts it once, then gives up: the follower ends there.
    script = "trap 'echo bye; exit 3' TERM; echo hello; sleep 1000 & wait"
    c = dk.containers.run(
        IMAGE,
        ["sh", "-c", script],
        detach=True,
        restart_policy={"Name": "on-failure", "MaximumRetryCount": 1},
    )
    follower = c.logs(stream=True, follow=True)
    seen = b""
    for run in range(2):
        while seen.count(b"hello\n") <= run:
            seen += next(follower)
        c.exec_run(["kill", "1"])
    seen += b"".join(follower)  # ends: the container stopped for good
    assert seen == b"hello\nbye\nhello\nbye\n"
    c.reload()
    assert c.attrs["RestartCount"] == 1 and c.status == "exited"


def test_a_flooding_container_does_not_starve_the_api(dk: Any) -> None:
    cfg = LogConfig(type=LogConfig.types.JSON, config={"max-size": "100k", "max-file": "2"})
    flood = dk.containers.run(IMAGE, ["yes"], detach=True, log_config=cfg)
    follower = flood.logs(stream=True, follow=True, tail=0)
    assert next(follower).startswith(b"y\n")  # it is flooding now
    for _ in range(3):
        assert flood.id in [c.id for c in dk.containers.list()]
        assert dk.containers.run(IMAGE, ["echo", "hi"], remove=True) == b"hi\n"
    assert flood.logs(tail=2) == b"y\ny\n"
    flood.remove(force=True)
    follower.close()


def test_the_api_answers_while_a_flood_rotates_and_no_line_is_lost(
    dk: Any, daemon: Daemon, tmp_path: Path
) -> None:
    """A writer floods numbered lines through a FIFO into a container's 1 MiB pipe,
    which the daemon takes whole, under `max-size: 100k`: a hundred rotations per
    take.  The API answers while it floods (the writer only stops once the pings were
    answered), and a follower from the start sees every line once, in order, across
    the rotations (the files it pins outlive their names)."""
    fifo = tmp_path / "flood"
    os.mkfifo(fifo, 0o600)
    cfg = LogConfig(type=LogConfig.types.JSON, config={"max-size": "100k", "max-file": "2"})
    c = dk.containers.run(IMAGE, ["cat", "/flood"], detach=True, log_config=cfg,
                          volumes={str(fifo): {"bind": "/flood", "mode": "ro"}})  # fmt: skip
    following, pinged = threading.Event(), threading.Event()
    cap = 300_000  # ~25 MB of records: below what a lagging follower may pin
    sent: list[int] = []

    def flood() -> None:
        with open(fifo, "wb", buffering=1 << 16) as f:
            f.write(b"start\n")
            f.flush()
            following.wait(timeout=60)  # the follower pins the log's files from here on
            i = 0
            while i < cap and not pinged.is_set():
                f.write(b"".join(b"%d\n" % k for k in range(i, i + 1000)))
                i += 1000
            f.write(b"end\n")
            sent.append(i)

    writer = threading.Thread(target=flood)
    writer.start()
    try:
        follower = c.logs(stream=True, follow=True)
        assert next(follower) == b"start\n"
        following.set()
        first = next(follower)
        assert first == b"0\n"  # it floods now
        for _ in range(3):
            assert dk.ping()  # bounded by the client's timeout, not a timing
    finally:
        following.set()
        pinged.set()
        writer.join(timeout=120)
    assert sent and sent[0] < cap, "the writer ended before the pings were answered"
    got = first + b"".join(follower)  # ends: `cat` ended at the FIFO's EOF
    assert got == b"".join(b"%d\n" % k for k in range(sent[0])) + b"end\n"
    assert c.wait(timeout=60)["StatusCode"] == 0
    assert (daemon.root / "containers" / c.id / f"{c.id}-json.log.1").exists()  # it rotated


def _frames(sock: str, path: str, headers: str = "") -> list[tuple[int, bytes]]:
    """The stdcopy frames of a logs response, raw over the socket (no client's merging)."""
    import socket

    from supervisor.api.stdcopy import Demuxer

    s = socket.socket(socket.AF_UNIX)
    s.connect(sock)
    s.sendall(f"GET {path} HTTP/1.0\r\nHost: x\r\n{headers}\r\n".encode())
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.") and b" 200 " in head.split(b"\r\n")[0], head
    return Demuxer().feed(body)


def test_corral_cli_gets_a_frame_per_run_docker_clients_a_frame_per_line(
    dk: Any, daemon: Daemon
) -> None:
    """`corral logs` asks for merged frames (X-Corral-Frames: merged): still stdout on
    stdout and stderr on stderr, in order; docker-py (and any other client) gets one
    frame per line, as from Docker.  (The two pipes are read apart: where `err` falls
    among the other lines is not fixed, as with Docker.)"""
    script = "i=0; while [ $i -lt 200 ]; do echo out $i; i=$((i+1)); done; echo err >&2"
    c = dk.containers.run(IMAGE, ["sh", "-c", script], detach=True)
    assert c.wait(timeout=60)["StatusCode"] == 0
    r = daemon.cli("logs", c.id)
    assert r.stdout == "".join(f"out {i}\n" for i in range(200)) and r.stderr == "err\n"
    path = f"/v1.44/containers/{c.id}/logs?stdout=1&stderr=1"
    per_line = _frames(str(daemon.sock), path)
    assert len(per_line) == 201 and (2, b"err\n") in per_line
    merged = _frames(str(daemon.sock), path, "X-Corral-Frames: merged\r\n")
    assert len(merged) < 201 and (2, b"err\n") in merged
    assert b"".join(data for sid, data in merged if sid == 1) == b"".join(
        data for sid, data in per_line if sid == 1
    )
    frames = list(c.logs(stream=True))  # docker-py: an item per frame
    assert sorted(frames) == sorted([b"err\n", *(b"out %d\n" % i for i in range(200))])
