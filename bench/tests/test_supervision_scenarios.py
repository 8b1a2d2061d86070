"""The pure parts of the supervision scenarios (restart, crashloop, logrotate): event
lines of both engines, restart cycles from events, the kept-tail check after rotation."""

from __future__ import annotations

import json

import pytest

from bench.lines import expected_line
from bench.scenarios.crashloop import Timings, verdict
from bench.scenarios.logrotate import check_tail
from bench.scenarios.restart import cycle_times, event_nanos, parse_event

S = 1_000_000_000


# -- events ------------------------------------------------------------------------------
def test_podman_times_with_trimmed_fractions_and_offsets() -> None:
    base = event_nanos("2026-11-23T08:14:16Z")
    assert event_nanos("2026-11-23T08:14:16.41755937Z") == base + 417_559_370
    assert event_nanos("2026-11-23T08:14:16.5Z") == base + 500_000_000
    assert event_nanos("2026-11-23T09:14:16.000000001+01:00") == base + 1
    with pytest.raises(ValueError):
        event_nanos("yesterday")


def test_both_engines_event_shapes() -> None:
    corral = {"Type": "container", "Action": "die", "time": 1, "timeNano": 1_500_000_000}
    assert parse_event(json.dumps(corral)) == ("die", 1_500_000_000)
    podman = {"Status": "died", "Time": "1970-01-01T00:00:02.25Z", "Type": "container"}
    assert parse_event(json.dumps(podman).encode()) == ("die", 2_250_000_000)
    assert parse_event(b"  ") is None
    assert parse_event(json.dumps({"Type": "container", "timeNano": 5})) is None


def test_cycles_pair_each_die_with_the_start_after_it() -> None:
    events = [
        ("create", 0),
        ("start", 1 * S),
        ("die", 2 * S),
        ("restart", 2 * S),  # podman's, between die and start: ignored
        ("init", 3 * S),
        ("start", 4 * S),
        ("die", 7 * S),
        ("start", 8 * S),
        ("die", 9 * S),  # the last: no start follows
        ("restart_limit", 9 * S),
    ]
    latencies, periods = cycle_times(events)
    assert latencies == [2.0, 1.0]
    assert periods == [3.0, 4.0]
    assert cycle_times([("die", S), ("die", 2 * S)]) == ([], [])


# -- the kept tail -------------------------------------------------------------------------
def lines(first: int, end: int) -> bytes:
    return b"".join(expected_line(i) for i in range(first, end))


def test_a_whole_tail_is_ok() -> None:
    t = check_tail(lines(700, 1000), 1000)
    assert t.ok and (t.first, t.kept, t.cut_first) == (700, 300, False)
    assert t.text() == "tail of 300 lines ok"


def test_a_first_line_cut_by_truncation_is_said_not_failed() -> None:
    t = check_tail(expected_line(699)[25:] + lines(700, 1000), 1000)
    assert t.ok and t.cut_first and t.kept == 300
    assert t.text().endswith("first line cut")


def test_gaps_repeats_mangling_and_a_lost_end_fail() -> None:
    gap = check_tail(lines(0, 10) + lines(11, 20), 20)
    assert not gap.ok and gap.bad == 1
    repeat = check_tail(lines(0, 10) + expected_line(9) + lines(10, 20), 20)
    assert not repeat.ok and repeat.bad == 1
    mangled = check_tail(lines(0, 5) + b"garbage\n" + lines(5, 20), 20)
    assert not mangled.ok
    short = check_tail(lines(0, 19), 20)
    assert not short.ok and "last line missing" in short.text()
    unterminated = check_tail(lines(0, 20)[:-1], 20)
    assert not unterminated.ok
    assert check_tail(b"", 20).text() == "FAIL: nothing kept"
    not_the_line_before = check_tail(expected_line(3)[5:] + lines(700, 1000), 1000)
    assert not not_the_line_before.ok


# -- crashloop ---------------------------------------------------------------------------
def test_crashloop_verdict_shows_p99_count_and_cut_queries() -> None:
    assert verdict(Timings([0.01] * 99 + [0.5])) == "p99 10 ms, n=100"
    assert verdict(Timings([0.1, 20.0], over=1)) == "p99 20.00 s, n=2, 1 cut at 20 s"
