"""Supervision with real containers: restart policies, events, OOM.

Waiting is done on the daemon's own event stream (bounded by `until`), never on sleeps.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import docker
import pytest

IMAGE = "busybox:latest"
FAST = {"corral.restart.backoff": "10ms,40ms,10s"}


def collect_events(
    dk: Any,
    since: float,
    done: Callable[[list[dict[str, Any]]], bool],
    timeout: float = 30,
    **filters: str,
) -> list[dict[str, Any]]:
    """Events from `since` until `done(events)` holds (or the deadline ends the stream)."""
    seen: list[dict[str, Any]] = []
    for e in dk.events(
        since=since, until=time.time() + timeout, decode=True, filters=filters or None
    ):
        seen.append(e)
        if done(seen):
            break
    return seen


def actions(events: list[dict[str, Any]]) -> list[str]:
    return [e["Action"] for e in events if e["Type"] == "container"]


def test_on_failure_restarts_n_times_then_stays_exited(dk: Any) -> None:
    t0 = time.time()
    c = dk.containers.run(
        IMAGE,
        ["sh", "-c", "exit 3"],
        detach=True,
        labels=FAST,
        restart_policy={"Name": "on-failure", "MaximumRetryCount": 2},
    )
    evs = collect_events(dk, t0, lambda s: actions(s).count("die") == 3, container=c.id)
    assert actions(evs) == ["create", "start", "die", "start", "die", "start", "die"]
    assert all(e["Actor"]["Attributes"]["exitCode"] == "3" for e in evs if e["Action"] == "die")
    c.reload()
    assert c.attrs["RestartCount"] == 2
    assert c.attrs["State"]["Status"] == "exited"


def test_on_failure_does_not_restart_a_clean_exit(dk: Any) -> None:
    c = dk.containers.run(
        IMAGE, ["true"], detach=True, labels=FAST, restart_policy={"Name": "on-failure"}
    )
    assert c.wait()["StatusCode"] == 0
    c.reload()
    assert (c.attrs["State"]["Status"], c.attrs["RestartCount"]) == ("exited", 0)


def test_always_restarts_and_user_stop_ends_it(dk: Any) -> None:
    t0 = time.time()
    c = dk.containers.run(
        IMAGE,
        ["sh", "-c", "echo run; exit 0"],
        detach=True,
        labels=FAST,
        restart_policy={"Name": "always"},
    )
    collect_events(dk, t0, lambda s: actions(s).count("start") >= 3, container=c.id)
    c.stop(timeout=1)
    c.reload()
    assert c.attrs["State"]["Status"] == "exited"
    count = c.attrs["RestartCount"]
    assert count >= 2
    # Nothing restarts it after a user's stop: the next events are none for it.
    later = collect_events(dk, time.time(), lambda s: True, timeout=1, container=c.id)
    assert "start" not in actions(later)


def test_restarting_status_while_backing_off(dk: Any) -> None:
    labels = {"corral.restart.backoff": "30s"}  # long enough to observe `restarting`
    t0 = time.time()
    c = dk.containers.run(
        IMAGE, ["false"], detach=True, labels=labels, restart_policy={"Name": "always"}
    )
    collect_events(dk, t0, lambda s: "die" in actions(s), container=c.id)
    c.reload()
    assert c.attrs["State"]["Status"] == "restarting"
    assert dk.containers.list(filters={"status": "restarting"})[0].id == c.id
    # A user stop during the backoff cancels the pending restart.
    c.stop()
    c.reload()
    assert c.attrs["State"]["Status"] == "exited"


def test_intensity_limit_gives_up_with_reason_and_event(dk: Any) -> None:
    t0 = time.time()
    c = dk.containers.run(
        IMAGE,
        ["false"],
        detach=True,
        labels={**FAST, "corral.restart.intensity": "3/60s"},
        restart_policy={"Name": "always"},
    )
    evs = collect_events(dk, t0, lambda s: "restart_limit" in actions(s), container=c.id)
    assert actions(evs).count("start") == 4  # the first run and 3 restarts
    c.reload()
    assert c.attrs["State"]["Status"] == "exited"
    assert "restart intensity exceeded" in c.attrs["State"]["Error"]


def test_kill_by_user_does_not_restart(dk: Any) -> None:
    t0 = time.time()
    c = dk.containers.run(
        IMAGE, ["sleep", "1d"], detach=True, labels=FAST, restart_policy={"Name": "always"}
    )
    c.kill()
    evs = collect_events(dk, t0, lambda s: "die" in actions(s), container=c.id)
    assert actions(evs)[-2:] == ["kill", "die"]
    c.reload()
    assert c.attrs["State"]["Status"] == "exited"


def test_update_restart_policy(corral: Any, dk: Any) -> None:
    c = dk.containers.create(IMAGE, ["false"], labels=FAST)
    r = corral.docker("update", "--restart", "on-failure:1", c.id)
    assert r.returncode == 0, r.stderr
    c.reload()
    assert c.attrs["HostConfig"]["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 1}
    t0 = time.time()
    c.start()
    collect_events(dk, t0, lambda s: actions(s).count("die") == 2, container=c.id)
    c.reload()
    assert c.attrs["RestartCount"] == 1


def test_rm_and_restart_conflict(dk: Any) -> None:
    with pytest.raises(docker.errors.APIError) as err:
        dk.containers.create(IMAGE, ["true"], restart_policy={"Name": "always"}, auto_remove=True)
    assert err.value.status_code == 409


def test_event_stream_shapes_and_order(dk: Any) -> None:
    t0 = time.time()
    dk.containers.run(IMAGE, ["true"], name="evt", remove=True)
    evs = collect_events(dk, t0, lambda s: "destroy" in actions(s), container="evt")
    assert [a for a in actions(evs) if a != "attach"] == ["create", "start", "die", "destroy"]
    die = next(e for e in evs if e["Action"] == "die")
    assert die["Actor"]["Attributes"]["name"] == "evt"
    assert die["Actor"]["Attributes"]["image"] == IMAGE
    assert die["timeNano"] // 1_000_000_000 == die["time"]


def test_event_filters_by_type_and_event(dk: Any) -> None:
    t0 = time.time()
    dk.volumes.create("evvol")
    dk.volumes.get("evvol").remove()
    evs = collect_events(dk, t0, lambda s: len(s) == 2, type="volume")
    assert [(e["Type"], e["Action"], e["Actor"]["ID"]) for e in evs] == [
        ("volume", "create", "evvol"),
        ("volume", "destroy", "evvol"),
    ]


def test_events_cli_prints_docker_lines(corral: Any, dk: Any) -> None:
    t0 = time.time()
    dk.containers.run(IMAGE, ["true"], name="evcli", remove=True)
    until = str(time.time() + 0.5)
    r = corral.cli(
        "events", "--since", str(t0), "--until", until, "-f", "container=evcli", "-f", "event=die"
    )
    (line,) = r.stdout.splitlines()
    assert " container die " in line and "name=evcli" in line and "exitCode=0" in line


def test_oom_kill_is_recorded(dk: Any) -> None:
    t0 = time.time()
    c = dk.containers.run(
        IMAGE, ["tail", "/dev/zero"], detach=True, mem_limit="8m", memswap_limit="8m"
    )
    evs = collect_events(dk, t0, lambda s: "die" in actions(s), container=c.id)
    assert "oom" in actions(evs)
    c.reload()
    st = c.attrs["State"]
    assert (st["OOMKilled"], st["ExitCode"]) == (True, 137)


def test_restart_on_unhealthy_beyond_docker(dk: Any) -> None:
    # Podman's --health-on-failure=restart, as a label; Docker has no equivalent.
    t0 = time.time()
    c = dk.containers.run(
        IMAGE,
        ["sleep", "1d"],
        detach=True,
        labels={**FAST, "corral.health.on-failure": "restart"},
        healthcheck={"test": ["CMD", "false"], "interval": 50_000_000, "retries": 1},
    )
    evs = collect_events(dk, t0, lambda s: actions(s).count("start") >= 2, container=c.id)
    acts = actions(evs)
    assert "health_status: unhealthy" in acts
    assert acts.index("health_status: unhealthy") < acts.index("die") < len(acts) - 1
    assert acts[-1] == "start"
    c.reload()
    assert c.attrs["RestartCount"] >= 1


def test_remove_or_stop_during_a_zero_backoff_restart_loop(dk: Any) -> None:
    # The restart may be mid-start when the user acts: both must find a whole container
    # (never a half-started one) and the daemon must live on.
    zero = {"corral.restart.backoff": "0s,0s,0s"}
    for i in range(6):
        t0 = time.time()
        c = dk.containers.run(
            IMAGE, ["false"], detach=True, labels=zero, restart_policy={"Name": "always"}
        )
        collect_events(dk, t0, lambda s: actions(s).count("die") >= 2, container=c.id)
        if i % 2:
            c.stop(timeout=1)
            c.reload()
            assert c.attrs["State"]["Status"] == "exited"
        c.remove(force=True)
        assert dk.ping()
    assert dk.containers.list(all=True) == []


STATX_MNT_ID_UNIQUE = 0x4000  # Linux 6.8: a mount ID never reused
_STATX_MNT_ID = 0x90  # offset of stx_mnt_id in struct statx


def unique_mount_id(path: Path) -> int:
    """The never-reused ID of the mount `path` is on (statx), or skip where the kernel
    has none."""
    import ctypes
    import ctypes.util

    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    buf = ctypes.create_string_buffer(256)
    rc = libc.statx(-100, os.fsencode(path), 0, STATX_MNT_ID_UNIQUE, buf)
    if rc != 0:
        raise OSError(ctypes.get_errno(), f"statx {path}")
    if not int.from_bytes(buf.raw[0:4], "little") & STATX_MNT_ID_UNIQUE:
        pytest.skip("no unique mount IDs on this kernel")
    return int.from_bytes(buf.raw[_STATX_MNT_ID:_STATX_MNT_ID + 8], "little")


def test_a_restart_due_at_once_keeps_the_root_mounted_and_its_writes(
    daemon: Any, dk: Any
) -> None:
    # Docker keeps a container's writable layer across restarts; with no backoff
    # corral keeps its root mounted too (one overlay for the whole loop), and a
    # loop that ends leaves nothing mounted.
    zero = {"corral.restart.backoff": "0s,0s,0s"}
    wait = "while [ ! -e /go$n ]; do usleep 10000; done"  # until the test says go
    script = ("echo run >> /runs; n=$(wc -l < /runs); "
              f"if [ $n -le 2 ]; then {wait}; fi; exit 1")
    t0 = time.time()
    c = dk.containers.run(IMAGE, ["sh", "-c", script], detach=True, labels=zero,
                          restart_policy={"Name": "on-failure", "MaximumRetryCount": 2})
    rootfs = daemon.root / "containers" / c.id / "rootfs"
    first = unique_mount_id(rootfs)  # the first run waits for /go1
    c.exec_run(["touch", "/go1"])
    collect_events(dk, t0, lambda s: actions(s).count("start") == 2, container=c.id)
    assert unique_mount_id(rootfs) == first  # the second run, on the same mount
    c.exec_run(["touch", "/go2"])
    evs = collect_events(dk, t0, lambda s: actions(s).count("die") == 3, container=c.id)
    assert actions(evs).count("start") == 3
    c.reload()
    assert c.attrs["State"]["Status"] == "exited"
    assert c.attrs["RestartCount"] == 2
    runs = b"".join(c.get_archive("/runs")[0])
    assert runs.count(b"run\n") == 3  # one writable layer for all three runs
    assert c.id not in Path("/proc/self/mountinfo").read_text()  # stopped for good
    c.remove()


def test_a_stop_during_a_zero_backoff_loop_leaves_no_root_mounted(dk: Any) -> None:
    zero = {"corral.restart.backoff": "0s,0s,0s"}
    t0 = time.time()
    c = dk.containers.run(IMAGE, ["false"], detach=True, labels=zero,
                          restart_policy={"Name": "always"})
    collect_events(dk, t0, lambda s: actions(s).count("die") >= 3, container=c.id)
    c.stop(timeout=1)
    c.reload()
    assert c.attrs["State"]["Status"] == "exited"
    assert c.id not in Path("/proc/self/mountinfo").read_text()
    c.remove()
