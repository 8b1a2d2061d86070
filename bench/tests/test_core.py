"""The bench's pure cores: statistics, the table, scenario selection, the line check,
/proc parsing and response parsing.  No container, no daemon: these run anywhere."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.api import parse_response
from bench.lines import LINE_BYTES, LineChecker, expected_line, write_lines
from bench.procfs import (
    in_cgroup,
    parse_stat_cpu_ticks,
    parse_stat_ppid,
    parse_stat_state,
    parse_stat_tree_ticks,
    parse_status_rss,
)
from bench.registry import Scenario, select
from bench.report import Row, format_value, render_table, row_json
from bench.stats import Summary, percentile, ratio, summarize


# -- stats ------------------------------------------------------------------------------
def test_p95_is_nearest_rank_so_small_samples_show_their_worst() -> None:
    assert percentile([3.0, 1.0, 2.0], 95) == 3.0
    assert percentile([float(i) for i in range(1, 101)], 95) == 95.0
    assert percentile([5.0], 95) == 5.0


def test_summary_and_ratio() -> None:
    s = summarize([0.3, 0.1, 0.2, 0.4])
    assert s == Summary(n=4, median=0.25, p95=0.4)
    assert summarize([]) is None
    assert ratio(Summary(1, 2.0, 2.0), Summary(1, 0.5, 0.5)) == 4.0
    assert ratio(Summary(1, 2.0, 2.0), Summary(1, 0.0, 0.0)) is None  # nothing to divide by
    assert ratio(None, Summary(1, 1.0, 1.0)) is None


def test_percentile_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        percentile([], 95)
    with pytest.raises(ValueError):
        percentile([1.0], 0)


# -- the table -------------------------------------------------------------------------
def test_table_has_both_engines_and_the_ratio() -> None:
    row = Row("start: x", "s", {"corral": [0.1, 0.1, 0.3], "podman": [0.2, 0.2, 0.4]})
    lines = render_table([row], with_podman=True).splitlines()
    assert lines[0] == (
        "| scenario | corral median | corral p95 | podman median | podman p95 | podman/corral |"
    )
    assert lines[2] == "| start: x | 100 ms | 300 ms | 200 ms | 400 ms | 2.00x |"


def test_without_podman_only_corral_columns() -> None:
    row = Row("start: x", "s", {"corral": [1.5]})
    lines = render_table([row], with_podman=False).splitlines()
    assert lines[0] == "| scenario | corral median | corral p95 |"
    assert lines[2] == "| start: x | 1.50 s | - |"  # one sample: no p95 to show


def test_floor_row_is_named_as_runc_not_as_corral() -> None:
    row = Row("floor: bare runc", "s", {"runc": [0.03, 0.04]})
    line = render_table([row], with_podman=True).splitlines()[2]
    assert line == "| floor: bare runc | runc 35 ms | runc 40 ms | - | - | - |"


def test_verdicts_sit_next_to_the_numbers() -> None:
    row = Row(
        "logs: follow",
        "s",
        {"corral": [2.0], "podman": [0.5]},
        verdicts={"corral": "every line once", "podman": "FAIL: 3 missing"},
    )
    line = render_table([row], with_podman=True).splitlines()[2]
    assert "2.00 s (every line once)" in line
    assert "500 ms (FAIL: 3 missing)" in line


def test_units() -> None:
    assert format_value(0.0042, "s") == "4.2 ms"
    assert format_value(3 * 2**20, "bytes") == "3.00 MiB"
    assert format_value(2048, "bytes") == "2 KiB"
    assert format_value(0.25, "cpu-s") == "0.250 s CPU"


def test_json_keeps_raw_samples_and_summaries() -> None:
    doc = row_json(Row("m", "bytes", {"corral": [10.0], "podman": [40.0]}, note="n"))
    assert doc["samples"] == {"corral": [10.0], "podman": [40.0]}
    assert doc["summary"]["podman"] == {"n": 1, "median": 40.0, "p95": 40.0}
    assert doc["ratio_podman_over_corral"] == 4.0


# -- scenario selection ----------------------------------------------------------------
async def _nothing(_: object) -> list[Row]:
    return []


SCENARIOS = [Scenario(n, n, _nothing) for n in ("start", "many", "memory", "logs")]


def test_select_keeps_registry_order_and_takes_prefixes() -> None:
    assert [s.name for s in select(SCENARIOS, ["logs", "st"])] == ["start", "logs"]
    assert [s.name for s in select(SCENARIOS, [])] == ["start", "many", "memory", "logs"]
    assert [s.name for s in select(SCENARIOS, ["many"])] == ["many"]


def test_select_names_the_unknown_and_the_ambiguous() -> None:
    with pytest.raises(ValueError, match="unknown scenario 'nope'"):
        select(SCENARIOS, ["nope"])
    with pytest.raises(ValueError, match="ambiguous scenario 'm': many, memory"):
        select(SCENARIOS, ["m"])


# -- the line check ----------------------------------------------------------------------
def _stream(numbers: list[int]) -> bytes:
    return b"".join(expected_line(i) for i in numbers)


def test_lines_split_anywhere_are_counted_once() -> None:
    data = _stream(list(range(100)))
    checker = LineChecker(100)
    for i in range(0, len(data), 7):  # chunk edges fall inside lines
        checker.feed(data[i : i + 7])
    v = checker.verdict()
    assert v.ok and v.received == 100
    assert v.text() == "every line once"


def test_missing_duplicated_reordered_and_cut_lines_fail() -> None:
    checker = LineChecker(5)
    checker.feed(_stream([0, 2, 1, 1]) + b"0000004 000")
    v = checker.verdict()
    assert (v.missing, v.duplicates, v.out_of_order, v.malformed) == (2, 1, 2, 1)
    assert not v.ok
    assert v.text().startswith("FAIL: 2 missing, 1 duplicated")


def test_written_lines_are_60_bytes_and_numbered(tmp_path: Path) -> None:
    data = write_lines(tmp_path / "lines", 1234).read_bytes()
    assert len(data) == 1234 * LINE_BYTES
    checker = LineChecker(1234)
    checker.feed(data)
    assert checker.verdict().ok


# -- /proc parsing -----------------------------------------------------------------------
def test_stat_fields_are_counted_after_the_command_name() -> None:
    stat = "42 (a) (b c) S 1 42 42 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 1 0 100 0 0"
    assert parse_stat_cpu_ticks(stat) == 10
    assert parse_stat_state(stat) == "S"
    assert parse_stat_ppid(stat) == 1


def test_tree_cpu_adds_the_reaped_children() -> None:
    stat = "42 (a) (b c) S 1 42 42 0 -1 4194560 100 0 0 0 7 3 20 5 20 0 1 0 100 0 0"
    assert parse_stat_tree_ticks(stat) == 35


def test_status_rss() -> None:
    assert parse_status_rss("Name:\tx\nVmRSS:\t   2048 kB\nThreads:\t1\n") == 2048 * 1024
    assert parse_status_rss("Name:\tkthreadd\n") == 0


def test_cgroup_membership_is_by_path_not_by_prefix_text() -> None:
    v1 = "4:memory:/corral-bench-1/abc\n1:name=systemd:/\n"
    assert in_cgroup(v1, "corral-bench-1")
    assert not in_cgroup("4:memory:/corral-bench-10/abc\n", "corral-bench-1")
    assert in_cgroup("0::/corral-bench-1\n", "/corral-bench-1")


# -- responses -------------------------------------------------------------------------
def test_responses_with_length_and_chunked_bodies() -> None:
    plain = b'HTTP/1.1 201 Created\r\nContent-Length: 11\r\n\r\n{"Id":"a"}\n'
    assert parse_response(plain) == (201, b'{"Id":"a"}\n')
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    chunked = head + b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    assert parse_response(chunked) == (200, b"abcde")


# -- the chart --------------------------------------------------------------------------
def test_plot_draws_each_ratio_on_its_side_of_1x(tmp_path: Path) -> None:
    import json
    import xml.etree.ElementTree as ET

    from bench.plot import write_beside

    rows = [
        row_json(Row("faster", "s", {"corral": [1.0], "podman": [2.0], "docker": [4.0]})),
        row_json(Row("slower", "s", {"corral": [2.0], "podman": [1.0]})),
        row_json(Row("alone <&>", "s", {"corral": [1.0]})),
    ]
    path = tmp_path / "bench-x.json"
    path.write_text(json.dumps({"date": "d", "results": rows}))
    svg = ET.parse(write_beside(path)).getroot()  # well-formed, beside the JSON
    ns = "{http://www.w3.org/2000/svg}"
    titled = [(r.find(ns + "title"), r) for r in svg.iter(ns + "rect")]
    bars = {t.text: r for t, r in titled if t is not None}
    assert set(bars) == {"podman/corral 2.00x", "docker/corral 4.00x", "podman/corral 0.50x"}
    one = [ln for ln in svg.iter(ns + "line") if ln.get("stroke") == "#000"][0].get("x1")
    right, left = bars["podman/corral 2.00x"], bars["podman/corral 0.50x"]
    assert float(right.get("x", 0)) == float(one or 0)  # from 1x rightwards
    assert float(left.get("x", 0)) + float(left.get("width", 0)) == pytest.approx(
        float(one or 0), abs=0.2
    )
    labels = "".join("".join(t.itertext()) for t in svg.iter(ns + "text"))
    assert "alone <&>" in labels


# -- scale ------------------------------------------------------------------------------
def test_scale_names_the_descriptor_ceiling_held_and_once_scraped() -> None:
    from bench.scenarios.scale import ceiling

    text = ceiling(20_000, 1_048_576, 8.0, 8.0)
    assert "~2,500 containers held, ~1,250 once scraped" in text
    assert "(fs.nr_open 1,048,576): ~65,536" in text
    assert ceiling(20_000, 1_048_576, 0.0, 0.0) == "no descriptor held per container"


def test_an_orphan_is_reaped_here_and_its_cpu_counted() -> None:
    """What a command leaves daemonized (a double fork, as conmon's) ends as the
    bench's child while `orphans_reaped` runs, and its CPU shows in RUSAGE_CHILDREN."""
    import resource
    import subprocess
    import sys

    import trio

    from bench.procfs import orphans_reaped

    spin = (  # the child spins 0.2 s of CPU after its parent has exited
        "import os,time\nif os.fork()==0:\n t=time.process_time()\n"
        " while time.process_time()-t<0.2: pass"
    )

    async def main() -> float:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        async with orphans_reaped(timeout=30):
            await trio.run_process([sys.executable, "-c", spin], stdout=subprocess.DEVNULL)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        return after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime

    assert trio.run(main) >= 0.2
