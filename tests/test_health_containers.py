"""Health checks with real containers, through docker-py.

Waiting is done on the daemon's event stream (`health_status: ...`, bounded by a
deadline), never on sleeps; inspect is read once the event says the state is there.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

IMAGE = "busybox:latest"
MS = 1_000_000
RFC3339_NANO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$")


def wait_for(
    dk: Any, cid: str, since: float, done: Callable[[list[str]], bool], timeout: float = 30
) -> list[str]:
    """The container's actions from `since` until `done(actions)` holds or the deadline."""
    seen: list[str] = []
    for e in dk.events(
        since=since, until=time.time() + timeout, decode=True, filters={"container": cid}
    ):
        if e.get("Type") == "container":
            seen.append(e["Action"])
            if done(seen):
                break
    return seen


def health(c: Any) -> dict[str, Any]:
    c.reload()
    h: dict[str, Any] = c.attrs["State"]["Health"]
    return h


def ps_status(dk: Any, cid: str) -> str:
    (row,) = dk.api.containers(filters={"id": cid})
    status: str = row["Status"]
    return status


def test_a_passing_check_makes_it_healthy(dk: Any) -> None:
    t0 = time.time()
    c = dk.containers.run(
        IMAGE,
        ["sleep", "300"],
        detach=True,
        healthcheck={"test": ["CMD-SHELL", "echo ok from $HOSTNAME"], "interval": 100 * MS},
    )
    actions = wait_for(dk, c.id, t0, lambda s: "health_status: healthy" in s)
    assert actions == ["create", "start", "health_status: healthy"]
    h = health(c)
    assert h["Status"] == "healthy"
    assert h["FailingStreak"] == 0
    first = h["Log"][0]
    assert first["ExitCode"] == 0
    assert first["Output"] == f"ok from {c.attrs['Config']['Hostname']}\n"  # container's env
    assert RFC3339_NANO.match(first["Start"]) and RFC3339_NANO.match(first["End"])
    assert first["Start"] <= first["End"]
    assert ps_status(dk, c.id).endswith("(healthy)")


def test_failing_check_makes_it_unhealthy_after_retries(dk: Any) -> None:
    t0 = time.time()
    c = dk.containers.run(
        IMAGE,
        ["sleep", "300"],
        detach=True,
        healthcheck={
            "test": ["CMD", "sh", "-c", "echo no >&2; exit 3"],
            "interval": 100 * MS,
            "retries": 2,
        },
    )
    actions = wait_for(dk, c.id, t0, lambda s: "health_status: unhealthy" in s)
    assert actions == ["create", "start", "health_status: unhealthy"]
    h = health(c)
    assert h["Status"] == "unhealthy"
    assert h["FailingStreak"] >= 2
    assert {(r["ExitCode"], r["Output"]) for r in h["Log"]} == {(3, "no\n")}
    assert 2 <= len(h["Log"]) <= 5
    assert ps_status(dk, c.id).endswith("(unhealthy)")


def test_starting_while_failures_fall_in_the_start_period(dk: Any) -> None:
    c = dk.containers.run(
        IMAGE,
        ["sleep", "300"],
        detach=True,
        healthcheck={
            "test": ["CMD", "false"],
            "interval": 100 * MS,
            "start_period": 600_000 * MS,
            "retries": 1,
        },
    )
    h = health(c)
    assert (h["Status"], h["FailingStreak"]) == ("starting", 0)
    assert ps_status(dk, c.id).endswith("(health: starting)")


def test_no_healthcheck_means_no_health(dk: Any) -> None:
    c = dk.containers.run(IMAGE, ["sleep", "300"], detach=True)
    c.reload()
    assert "Health" not in c.attrs["State"]
    assert "(" not in ps_status(dk, c.id)


def test_hung_probe_is_cancelled_at_its_timeout_and_leaves_nothing(dk: Any) -> None:
    # Each probe records its shell's pid and its child's, then waits on the child.
    probe = "sleep 100 & echo $$ $! >> /tmp/probes; wait"
    t0 = time.time()
    c = dk.containers.run(
        IMAGE,
        ["sleep", "300"],
        detach=True,
        healthcheck={
            "test": ["CMD-SHELL", probe],
            "interval": 100 * MS,
            "timeout": 200 * MS,
            "retries": 3,
        },
    )
    wait_for(dk, c.id, t0, lambda s: "health_status: unhealthy" in s)
    h = health(c)
    assert h["Status"] == "unhealthy"
    assert {(r["ExitCode"], r["Output"]) for r in h["Log"]} == {
        (-1, "Health check exceeded timeout (200ms)")
    }
    lines = c.exec_run(["cat", "/tmp/probes"]).output.decode().splitlines()
    assert len(lines) >= 3
    # Every probe but a possibly running last one is gone: no process, no zombie.
    finished = [pid for line in lines[:-1] for pid in line.split()]
    left = c.exec_run(
        [
            "sh",
            "-c",
            "for p in " + " ".join(finished) + "; do "
            "test -e /proc/$p && cat /proc/$p/stat; done; true",
        ]
    )
    assert left.output.decode() == ""


def test_probes_of_many_containers_run_concurrently(dk: Any) -> None:
    hung = [
        dk.containers.run(
            IMAGE,
            ["sleep", "300"],
            detach=True,
            healthcheck={
                "test": ["CMD", "sleep", "100"],
                "interval": 10 * MS,
                "timeout": 60_000 * MS,
            },
        )
        for _ in range(3)
    ]
    t0 = time.time()
    fast = dk.containers.run(
        IMAGE,
        ["sleep", "300"],
        detach=True,
        healthcheck={"test": ["CMD", "true"], "interval": 100 * MS},
    )
    wait_for(dk, fast.id, t0, lambda s: "health_status: healthy" in s)
    assert health(fast)["Status"] == "healthy"
    for c in hung:  # their probes are still hanging, and did not hold up the others
        assert (health(c)["Status"], health(c)["Log"]) == ("starting", [])
    # Stopping a container with a probe in flight cancels the probe with it.
    hung[0].kill()
    hung[0].wait(timeout=30)
    hung[0].start()
    assert health(hung[0])["Status"] == "starting"


def test_restart_resets_to_starting(dk: Any) -> None:
    # Healthy on the first run only: the second run removes the file the check wants.
    cmd = "if [ -e /seen ]; then rm -f /ok; else touch /seen /ok; fi; exec sleep 300"
    t0 = time.time()
    c = dk.containers.run(
        IMAGE,
        ["sh", "-c", cmd],
        detach=True,
        healthcheck={
            "test": ["CMD", "test", "-e", "/ok"],
            "interval": 100 * MS,
            "start_interval": 100 * MS,
            "start_period": 600_000 * MS,
        },
    )
    wait_for(dk, c.id, t0, lambda s: "health_status: healthy" in s)
    c.restart(timeout=0)
    h = health(c)
    assert (h["Status"], h["FailingStreak"]) == ("starting", 0)  # not the old "healthy"
    assert ps_status(dk, c.id).endswith("(health: starting)")
    assert any(r["ExitCode"] == 0 for r in h["Log"])  # earlier results kept, as Docker


def test_image_healthcheck_is_used_and_no_healthcheck_disables_it(dk: Any) -> None:
    base = dk.containers.create(
        IMAGE,
        ["sleep", "300"],
        healthcheck={"test": ["CMD-SHELL", "echo from image"], "interval": 100 * MS},
    )
    image = base.commit("withhealth", "v1")
    assert image.attrs["Config"]["Healthcheck"]["Test"] == ["CMD-SHELL", "echo from image"]
    t0 = time.time()
    c = dk.containers.run("withhealth:v1", ["sleep", "300"], detach=True)
    wait_for(dk, c.id, t0, lambda s: "health_status: healthy" in s)
    assert health(c)["Log"][0]["Output"] == "from image\n"
    off = dk.containers.run(
        "withhealth:v1", ["sleep", "300"], detach=True, healthcheck={"test": ["NONE"]}
    )
    off.reload()
    assert "Health" not in off.attrs["State"]


def test_docker_cli_health_flags(corral: Any, dk: Any) -> None:
    t0 = time.time()
    r = corral.docker(
        "run",
        "-d",
        "--health-cmd",
        "echo cli",
        "--health-interval",
        "100ms",
        "--health-retries",
        "2",
        IMAGE,
        "sleep",
        "300",
    )
    assert r.returncode == 0, r.stderr
    cid = r.stdout.strip()
    wait_for(dk, cid, t0, lambda s: "health_status: healthy" in s)
    ps = corral.docker("ps", "--format", "{{.Status}}", "--filter", f"id={cid}")
    assert ps.stdout.strip().endswith("(healthy)")
    out = corral.docker("inspect", "--format", "{{.State.Health.Status}}", cid)
    assert out.stdout.strip() == "healthy"
    r = corral.docker("run", "-d", "--no-healthcheck", IMAGE, "sleep", "300")
    assert r.returncode == 0, r.stderr
    none = corral.docker("inspect", "--format", "{{json .State.Health}}", r.stdout.strip())
    assert none.stdout.strip() == "null"
