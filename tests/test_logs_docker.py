"""Container logs through docker-py: rotation, following across restarts, floods."""

from __future__ import annotations

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
