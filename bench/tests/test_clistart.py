"""The clistart scenario's pure part: `-X importtime` output read and summed."""

from __future__ import annotations

from bench.scenarios.clistart import importtime_note, parse_importtime

SAMPLE = """\
import time: self [us] | cumulative | imported package
import time:       120 |        120 |   _io
import time:      1500 |       2100 |     collections
import time:       600 |       2700 |   supervisor.api.client
Cannot connect to the corral daemon
"""


def test_importtime_lines_are_read_in_order_and_the_rest_skipped() -> None:
    assert parse_importtime(SAMPLE) == [
        ("_io", 0.12, 0.12),
        ("collections", 1.5, 2.1),
        ("supervisor.api.client", 0.6, 2.7),
    ]


def test_the_note_names_the_costliest_by_self_time() -> None:
    note = importtime_note("ps", parse_importtime(SAMPLE), top=2)
    assert note == (
        "`ps` imports 3 modules, 2.2 ms self "
        "(costliest ms: collections 1.5, supervisor.api.client 0.6)"
    )
