"""The health-check rules without a container: config, the status machine, shapes."""

from __future__ import annotations

import pytest

from supervisor.engine.state import Status
from supervisor.errors import InvalidArgument
from supervisor.metadata.containers import Container, State
from supervisor.supervise import healthstate as hs

S = hs.SECOND
MS = 1_000_000


def result(code: int, output: str = "", n: int = 0) -> hs.ProbeResult:
    return hs.ProbeResult(f"start-{n}", f"end-{n}", code, output)


def cfg(**kw: int) -> hs.HealthConfig:
    return hs.HealthConfig(argv=("true",), **kw)


# ------------------------------------------------------------------ config
def test_docker_defaults_when_zero_or_missing() -> None:
    c = hs.parse({"Test": ["CMD", "true"], "Interval": 0, "Retries": 0})
    assert c == hs.HealthConfig(
        argv=("true",),
        interval=30 * S,
        timeout=30 * S,
        retries=3,
        start_period=0,
        start_interval=5 * S,
    )


def test_cmd_shell_runs_through_the_shell() -> None:
    c = hs.parse({"Test": ["CMD-SHELL", "wget -q localhost || exit 1"], "Interval": 100 * MS})
    assert c is not None
    assert c.argv == ("/bin/sh", "-c", "wget -q localhost || exit 1")
    assert c.interval == 100 * MS


def test_cmd_shell_uses_the_containers_shell() -> None:
    c = hs.parse({"Test": ["CMD-SHELL", "true"]}, shell=["/bin/ash", "-ec"])
    assert c is not None and c.argv == ("/bin/ash", "-ec", "true")


def test_compose_string_test_is_cmd_shell() -> None:
    c = hs.parse({"Test": "exit 0"})
    assert c is not None and c.argv == ("/bin/sh", "-c", "exit 0")


@pytest.mark.parametrize(
    "hc",
    [None, {}, {"Test": []}, {"Test": ["NONE"]}, {"Test": ["HTTP", "x"]}, {"Test": ["CMD"]}],
)
def test_no_probe(hc: dict[str, object] | None) -> None:
    assert hs.parse(hc) is None


@pytest.mark.parametrize(
    ("hc", "message"),
    [
        ({"Interval": 500}, "Interval in Healthcheck cannot be less than 1ms"),
        ({"Timeout": 1}, "Timeout in Healthcheck cannot be less than 1ms"),
        ({"StartPeriod": 10}, "StartPeriod in Healthcheck cannot be less than 1ms"),
        ({"StartInterval": 10}, "StartInterval in Healthcheck cannot be less than 1ms"),
        ({"Retries": -1}, "Retries in Healthcheck cannot be negative"),
    ],
)
def test_validate_refuses_as_docker(hc: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        hs.validate({"Test": ["CMD", "true"], **hc})


def test_validate_accepts_defaults_and_minimums() -> None:
    hs.validate(None)
    hs.validate({"Test": ["CMD", "true"], "Interval": MS, "Timeout": 0, "Retries": 0})


def test_merge_keeps_the_images_test_when_only_timing_is_given() -> None:
    image = {"Test": ["CMD", "check"], "Interval": 10 * S, "Retries": 5}
    merged = hs.merge(image, {"Interval": 2 * S})
    assert merged == {
        "Test": ["CMD", "check"],
        "Interval": 2 * S,
        "Timeout": 0,
        "StartPeriod": 0,
        "StartInterval": 0,
        "Retries": 5,
    }
    assert hs.merge(image, {"Test": ["NONE"]})["Test"] == ["NONE"]  # type: ignore[index]
    assert hs.merge(None, None) is None
    assert hs.merge(image, None) == image


# ------------------------------------------------------------ the machine
def test_first_success_makes_it_healthy() -> None:
    h = hs.apply_result(hs.Health(), result(0), cfg(), since_start=S)
    assert (h.status, h.failing_streak) == (hs.HEALTHY, 0)


def test_retries_consecutive_failures_make_it_unhealthy() -> None:
    c = cfg(retries=3)
    h = hs.Health()
    statuses = []
    for i in range(4):
        h = hs.apply_result(h, result(1, n=i), c, since_start=S)
        statuses.append((h.status, h.failing_streak))
    assert statuses == [
        (hs.STARTING, 1),
        (hs.STARTING, 2),
        (hs.UNHEALTHY, 3),
        (hs.UNHEALTHY, 4),
    ]


def test_failures_inside_the_start_period_do_not_count() -> None:
    c = cfg(retries=1, start_period=10 * S)
    h = hs.apply_result(hs.Health(), result(1), c, since_start=2 * S)
    assert (h.status, h.failing_streak) == (hs.STARTING, 0)
    assert len(h.log) == 1  # but the result is recorded
    h = hs.apply_result(h, result(1), c, since_start=10 * S)  # the period is over
    assert (h.status, h.failing_streak) == (hs.UNHEALTHY, 1)


def test_success_inside_the_start_period_makes_it_healthy_and_later_failures_count() -> None:
    c = cfg(retries=1, start_period=10 * S)
    h = hs.apply_result(hs.Health(), result(0), c, since_start=1 * S)
    assert h.status == hs.HEALTHY
    # Once healthy, the start period no longer shields failures (Docker's rule).
    h = hs.apply_result(h, result(1), c, since_start=2 * S)
    assert (h.status, h.failing_streak) == (hs.UNHEALTHY, 1)


def test_unhealthy_recovers_on_one_success() -> None:
    c = cfg(retries=1)
    h = hs.apply_result(hs.Health(), result(1), c, since_start=S)
    assert h.status == hs.UNHEALTHY
    h = hs.apply_result(h, result(0), c, since_start=2 * S)
    assert (h.status, h.failing_streak) == (hs.HEALTHY, 0)


def test_healthy_stays_healthy_until_retries_failures() -> None:
    c = cfg(retries=2)
    h = hs.apply_result(hs.Health(), result(0), c, since_start=S)
    h = hs.apply_result(h, result(1), c, since_start=S)
    assert (h.status, h.failing_streak) == (hs.HEALTHY, 1)
    h = hs.apply_result(h, result(2), c, since_start=S)
    assert (h.status, h.failing_streak) == (hs.UNHEALTHY, 2)


def test_timeout_is_a_failure() -> None:
    timed_out = hs.ProbeResult("s", "e", -1, hs.timeout_output(300 * MS, ""))
    h = hs.apply_result(hs.Health(), timed_out, cfg(retries=1), since_start=S)
    assert h.status == hs.UNHEALTHY
    assert h.log[-1].output == "Health check exceeded timeout (300ms)"


def test_log_keeps_the_last_five_oldest_first() -> None:
    h = hs.Health()
    for i in range(8):
        h = hs.apply_result(h, result(i % 2, n=i), cfg(), since_start=S)
    assert [r.start for r in h.log] == ["start-3", "start-4", "start-5", "start-6", "start-7"]


def test_a_new_run_starts_fresh_but_keeps_the_log() -> None:
    h = hs.Health(status=hs.UNHEALTHY, failing_streak=7, log=(result(1),))
    fresh = hs.on_start(h)
    assert (fresh.status, fresh.failing_streak, fresh.log) == (hs.STARTING, 0, (result(1),))
    assert hs.on_start(None) == hs.Health()


def test_start_interval_only_while_starting_inside_the_start_period() -> None:
    c = cfg(interval=30 * S, start_period=60 * S, start_interval=1 * S)
    assert hs.next_delay(c, hs.STARTING, since_start=0) == 1 * S
    assert hs.next_delay(c, hs.HEALTHY, since_start=5 * S) == 30 * S
    assert hs.next_delay(c, hs.STARTING, since_start=60 * S) == 30 * S
    assert hs.next_delay(cfg(interval=2 * S), hs.STARTING, since_start=0) == 2 * S


# ------------------------------------------------------------------ shapes
def test_output_truncated_to_4096_bytes_with_dots() -> None:
    assert hs.probe_output(b"x" * 4096) == "x" * 4096
    assert hs.probe_output(b"y" * 5000) == "y" * 4096 + "..."
    assert hs.probe_output(b"ok\xff\n") == "ok\ufffd\n"


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (0, "0s"),
        (500, "500ns"),
        (1_500, "1.5µs"),
        (100 * MS, "100ms"),
        (1_250 * MS, "1.25s"),
        (30 * S, "30s"),
        (90 * S, "1m30s"),
        (3600 * S, "1h0m0s"),
    ],
)
def test_go_duration(ns: int, text: str) -> None:
    assert hs.go_duration(ns) == text


def test_timeout_output_keeps_partial_output() -> None:
    assert hs.timeout_output(S, "half") == "Health check exceeded timeout (1s): half"


def test_inspect_shape_and_record_round_trip() -> None:
    h = hs.Health(status=hs.HEALTHY, failing_streak=0, log=(result(0, "fine\n"),))
    c = Container(
        id="a" * 64,
        name="x",
        image_id="sha256:b",
        image="busybox",
        created="2024-01-01T00:00:00.000000000Z",
        path="sleep",
        args=["1"],
        config={},
        host_config={},
        state=State(status=Status.RUNNING, health=h),
    )
    assert c.state.to_api()["Health"] == {
        "Status": "healthy",
        "FailingStreak": 0,
        "Log": [{"Start": "start-0", "End": "end-0", "ExitCode": 0, "Output": "fine\n"}],
    }
    assert Container.from_json(c.to_json()).state.health == h
    c.state.health = None
    assert "Health" not in c.state.to_api()


def test_ps_status_shows_health_as_docker() -> None:
    from supervisor.api.views import status_text

    c = Container(
        id="a" * 64,
        name="x",
        image_id="sha256:b",
        image="busybox",
        created="2024-01-01T00:00:00.000000000Z",
        path="sleep",
        args=["1"],
        config={},
        host_config={},
        state=State(status=Status.RUNNING, started_at="2024-01-01T00:00:00.000000000Z"),
    )
    now = 1704067205.0  # five seconds later
    assert status_text(c, now) == "Up 5 seconds"
    c.state.health = hs.Health()
    assert status_text(c, now) == "Up 5 seconds (health: starting)"
    c.state.health = hs.Health(status=hs.HEALTHY)
    assert status_text(c, now) == "Up 5 seconds (healthy)"
    c.state.health = hs.Health(status=hs.UNHEALTHY)
    assert status_text(c, now) == "Up 5 seconds (unhealthy)"
    c.state.status = Status.PAUSED
    assert status_text(c, now) == "Up 5 seconds (Paused)"
