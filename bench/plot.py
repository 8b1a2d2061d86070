"""`--plot`: an SVG chart of a run's ratios, one group of bars per scenario row.

Written by hand (no matplotlib): a bar per rival (podman/corral, docker/corral) on a
log scale centred on 1x, so 2x faster and 2x slower are the same length either side;
right of the line, corral is faster or leaner.  Pure: a results document (the JSON the
run writes) in, SVG text out.  `python -m bench.plot RESULTS.json` redraws an old run.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Mapping
from html import escape
from pathlib import Path
from typing import Any

BARS = (("ratio_podman_over_corral", "podman/corral", "#4e79a7"),
        ("ratio_docker_over_corral", "docker/corral", "#f28e2b"))  # fmt: skip
LABEL_W, PLOT_W, BAR_H, GAP, TOP = 460, 420, 9, 8, 40
SPAN = 2.0  # decades each side of 1x: 1/100x .. 100x


def _x(r: float) -> float:
    d = max(-SPAN, min(SPAN, math.log10(r)))
    return LABEL_W + PLOT_W / 2 + d * PLOT_W / (2 * SPAN)


def svg(doc: Mapping[str, Any]) -> str:
    """The chart of `doc["results"]`; rows with no ratio (corral alone) are listed with
    a dash, so the chart and the table name the same rows."""
    rows = list(doc.get("results", []))
    height = TOP + len(rows) * (2 * BAR_H + GAP) + 40
    width = LABEL_W + PLOT_W + 70
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="sans-serif" font-size="11">',
        f'<text x="8" y="16" font-size="13">corral bench, {escape(str(doc.get("date", "")))}'
        " (ratio &gt; 1: corral faster or leaner; log scale)</text>",
    ]
    for i, (_, name, colour) in enumerate(BARS):
        lx = LABEL_W + i * 130
        out.append(f'<rect x="{lx}" y="24" width="10" height="10" fill="{colour}"/>')
        out.append(f'<text x="{lx + 14}" y="33">{name}</text>')
    for tick in (0.01, 0.1, 0.5, 1.0, 2.0, 10.0, 100.0):
        x = _x(tick)
        out.append(
            f'<line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{height - 30}" '
            f'stroke="{"#000" if tick == 1 else "#ddd"}"/>'
        )
        out.append(f'<text x="{x:.1f}" y="{height - 16}" text-anchor="middle">{tick:g}x</text>')
    y = TOP
    for row in rows:
        label = str(row.get("scenario", ""))
        short = label if len(label) <= 72 else label[:71] + "…"
        out.append(f'<text x="{LABEL_W - 6}" y="{y + BAR_H + 3}" text-anchor="end">'
                   f"<title>{escape(label)}</title>{escape(short)}</text>")  # fmt: skip
        for j, (key, name, colour) in enumerate(BARS):
            r = row.get(key)
            top = y + j * BAR_H
            if not isinstance(r, int | float) or r <= 0:
                continue
            x0, x1 = sorted((_x(1), _x(float(r))))
            out.append(
                f'<rect x="{x0:.1f}" y="{top}" width="{max(x1 - x0, 1):.1f}" '
                f'height="{BAR_H - 1}" fill="{colour}"><title>{name} {r:.2f}x</title></rect>'
            )
            out.append(f'<text x="{max(x1, _x(1)) + 3:.1f}" y="{top + BAR_H - 1}" '
                       f'font-size="9">{r:.2f}x</text>')  # fmt: skip
        y += 2 * BAR_H + GAP
    out.append("</svg>")
    return "\n".join(out) + "\n"


def write_beside(json_path: Path) -> Path:
    """`bench-X.json` -> `bench-X.svg` beside it."""
    target = json_path.with_suffix(".svg")
    target.write_text(svg(json.loads(json_path.read_text())))
    return target


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        print(write_beside(Path(arg)))
