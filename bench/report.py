"""Rows of results and their two renderings: the markdown table and the JSON document.

Pure: the runner collects `Row`s from scenarios; this module only formats them, so the
table layout is tested without running a container.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from bench.stats import Summary, ratio, summarize

Unit = Literal["s", "bytes", "cpu-s", "count"]

CORRAL, PODMAN, DOCKER = "corral", "podman", "docker"
RIVALS = (PODMAN, DOCKER)


@dataclass
class Row:
    """One line of the table: a measured quantity and each engine's raw samples.

    `samples` is keyed by engine name.  A key that is not an engine (the
    floor's "runc") is a reference figure, printed in corral's columns under its name.
    `verdicts` carries pass/fail checks next to the numbers (a follower that lost a line
    must not look like a fast follower).
    """

    scenario: str
    unit: Unit
    samples: dict[str, list[float]] = field(default_factory=dict)
    verdicts: dict[str, str] = field(default_factory=dict)
    note: str = ""

    def summary(self, engine: str) -> Summary | None:
        return summarize(self.samples.get(engine, []))


def format_value(value: float, unit: Unit) -> str:
    if unit == "bytes":
        if abs(value) >= 1024 * 1024:
            return f"{value / (1024 * 1024):.2f} MiB"
        return f"{value / 1024:.0f} KiB"
    if unit == "cpu-s":
        return f"{value:.3f} s CPU"
    if unit == "count":
        return f"{value:.2f}"
    if abs(value) < 0.01:
        return f"{value * 1000:.1f} ms"
    if abs(value) < 1:
        return f"{value * 1000:.0f} ms"
    return f"{value:.2f} s"


def _cells(row: Row, engine: str) -> tuple[str, str]:
    label = ""
    key = engine
    if engine == CORRAL and CORRAL not in row.samples and CORRAL not in row.verdicts:
        others = [k for k in row.samples if k not in (CORRAL, *RIVALS)]
        if others:
            key, label = others[0], others[0] + " "
    s = row.summary(key)
    verdict = row.verdicts.get(key)
    if s is None:
        return (verdict or "-"), "-"
    median = label + format_value(s.median, row.unit)
    if verdict:
        median += f" ({verdict})"
    p95 = label + format_value(s.p95, row.unit) if s.n > 1 else "-"
    return median, p95


def best_rival(row: Row) -> Summary | None:
    """The faster (leaner) of podman and docker on this row: every figure is lower-is-
    better, so the smaller median; None when neither was measured.  A rival whose check
    failed (a follower that lost lines) is not a contender: fast and wrong is not best."""
    found = [
        s
        for k in RIVALS
        if (s := row.summary(k)) is not None and not row.verdicts.get(k, "").startswith("FAIL")
    ]
    return min(found, key=lambda s: s.median) if found else None


def _ratio_cell(r: float | None) -> str:
    return f"{r:.2f}x" if r is not None else "-"


def render_table(rows: Sequence[Row], with_podman: bool, with_docker: bool = False) -> str:
    """corral's columns, then podman's with podman/corral, then docker's with best/corral
    (the faster of podman and docker over corral: >1 means corral beats both)."""
    head = ["scenario", "corral median", "corral p95"]
    align = ["---", "---:", "---:"]
    if with_podman:
        head += ["podman median", "podman p95", "podman/corral"]
        align += ["---:", "---:", "---:"]
    if with_docker:
        head += ["docker median", "docker p95", "best/corral"]
        align += ["---:", "---:", "---:"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(align) + "|"]
    for row in rows:
        cells = [row.scenario, *_cells(row, CORRAL)]
        if with_podman:
            cells += _cells(row, PODMAN)
            cells.append(_ratio_cell(ratio(row.summary(PODMAN), row.summary(CORRAL))))
        if with_docker:
            cells += _cells(row, DOCKER)
            cells.append(_ratio_cell(ratio(best_rival(row), row.summary(CORRAL))))
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def _summary_json(s: Summary | None) -> dict[str, float] | None:
    return None if s is None else {"n": s.n, "median": s.median, "p95": s.p95}


def row_json(row: Row) -> dict[str, Any]:
    return {
        "scenario": row.scenario,
        "unit": row.unit,
        "samples": row.samples,
        "summary": {k: _summary_json(row.summary(k)) for k in row.samples},
        "ratio_podman_over_corral": ratio(row.summary(PODMAN), row.summary(CORRAL)),
        "ratio_docker_over_corral": ratio(row.summary(DOCKER), row.summary(CORRAL)),
        "ratio_best_over_corral": ratio(best_rival(row), row.summary(CORRAL)),
        "verdicts": row.verdicts,
        "note": row.note,
    }


def document(
    *,
    date: str,
    host: Mapping[str, Any],
    versions: Mapping[str, str],
    settings: Mapping[str, Any],
    rows: Sequence[Row],
    errors: Mapping[str, str],
) -> dict[str, Any]:
    return {
        "date": date,
        "host": dict(host),
        "versions": dict(versions),
        "settings": dict(settings),
        "results": [row_json(r) for r in rows],
        "errors": dict(errors),
    }
