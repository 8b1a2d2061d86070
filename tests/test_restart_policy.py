"""Restart decisions, purely (supervise/restart.py): Docker's semantics plus corral's knobs."""

from __future__ import annotations

import pytest

from supervisor.errors import InvalidArgument
from supervisor.supervise.restart import (
    Backoff,
    Decision,
    Intensity,
    Policy,
    Tuning,
    decide,
    parse_duration,
    starts_at_boot,
)

DEFAULT = Tuning()


def _decide(policy: Policy, tuning: Tuning = DEFAULT, **kw: object) -> Decision:
    args: dict[str, object] = dict(
        exit_code=1,
        stopped_by_user=False,
        shutting_down=False,
        restart_count=0,
        ran_for=0.5,
        previous_delay=0.0,
        recent_restarts=[],
        now=100.0,
    )
    args.update(kw)
    return decide(policy, tuning, **args)  # type: ignore[arg-type]


def test_no_never_restarts() -> None:
    assert not _decide(Policy("no")).restart


@pytest.mark.parametrize("name", ["always", "unless-stopped"])
def test_always_restarts_on_any_exit(name: str) -> None:
    assert _decide(Policy(name), exit_code=0).restart
    assert _decide(Policy(name), exit_code=3).restart


def test_on_failure_only_non_zero_and_at_most_n() -> None:
    p = Policy("on-failure", 2)
    assert not _decide(p, exit_code=0).restart
    assert _decide(p, restart_count=1).restart
    d = _decide(p, restart_count=2)
    assert not d.restart and "2 retries" in d.give_up
    # N = 0 means no limit, as in Docker.
    assert _decide(Policy("on-failure"), restart_count=1000).restart


def test_user_stop_and_shutdown_never_restart() -> None:
    assert not _decide(Policy("always"), stopped_by_user=True).restart
    assert not _decide(Policy("always"), shutting_down=True).restart


def test_backoff_doubles_caps_and_resets() -> None:
    p = Policy("always")
    assert _decide(p).delay == pytest.approx(0.1)
    assert _decide(p, previous_delay=0.1).delay == pytest.approx(0.2)
    assert _decide(p, previous_delay=40.0).delay == pytest.approx(60.0)
    assert _decide(p, previous_delay=60.0).delay == pytest.approx(60.0)
    # Ran for 10 s or more: back to the base delay.
    assert _decide(p, previous_delay=3.2, ran_for=10.0).delay == pytest.approx(0.1)


def test_on_failure_count_does_not_reset_with_backoff() -> None:
    # The retry count is the engine's RestartCount: a long run resets the delay only.
    d = _decide(Policy("on-failure", 3), restart_count=3, ran_for=3600.0)
    assert not d.restart


def test_intensity_gives_up_with_reason() -> None:
    tuning = Tuning(intensity=Intensity(3, 10.0))
    assert _decide(Policy("always"), tuning, recent_restarts=[95.0, 96.0]).restart
    d = _decide(Policy("always"), tuning, recent_restarts=[95.0, 96.0, 97.0])
    assert not d.restart and "more than 3 restarts in 10s" in d.give_up
    # Old restarts fall out of the window.
    assert _decide(Policy("always"), tuning, recent_restarts=[1.0, 2.0, 97.0]).restart


def test_tuning_from_labels() -> None:
    t = Tuning.from_labels(
        {
            "corral.restart.backoff": "10ms,1s,2s",
            "corral.restart.intensity": "5/30s",
            "corral.health.on-failure": "restart",
        }
    )
    assert t.backoff == Backoff(0.01, 1.0, 2.0)
    assert t.intensity == Intensity(5, 30.0)
    assert t.restart_on_unhealthy
    with pytest.raises(InvalidArgument, match="corral.restart.intensity"):
        Tuning.from_labels({"corral.restart.intensity": "many"})


def test_policy_validation_as_docker() -> None:
    assert Policy.from_api({"Name": "on-failure", "MaximumRetryCount": 3}) == Policy(
        "on-failure", 3
    )
    with pytest.raises(InvalidArgument, match="unknown policy 'sometimes'"):
        Policy.from_api({"Name": "sometimes"})
    with pytest.raises(InvalidArgument, match="only be used with 'on-failure'"):
        Policy.from_api({"Name": "always", "MaximumRetryCount": 2})


def test_boot_starts() -> None:
    assert starts_at_boot(Policy("always"), stopped_by_user=True)
    assert starts_at_boot(Policy("unless-stopped"), stopped_by_user=False)
    assert not starts_at_boot(Policy("unless-stopped"), stopped_by_user=True)
    assert not starts_at_boot(Policy("on-failure"), stopped_by_user=False)
    assert not starts_at_boot(Policy("no"), stopped_by_user=False)


def test_parse_duration() -> None:
    assert parse_duration("1m30s") == 90.0
    assert parse_duration("100ms") == pytest.approx(0.1)
    with pytest.raises(InvalidArgument):
        parse_duration("ten")
