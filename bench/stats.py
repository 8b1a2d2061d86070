"""Summaries of samples: median, p95 and the podman/corral ratio (pure, no I/O).

p95 is nearest-rank (the smallest sample with at least 95% of the samples at or below
it), so with few samples it is simply the worst one: the honest reading of noise on a
small sample, where an interpolated p95 would invent a value nobody measured.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Summary:
    n: int
    median: float
    p95: float


def percentile(samples: Sequence[float], q: float) -> float:
    """Nearest-rank percentile, `q` in (0, 100]."""
    if not samples:
        raise ValueError("no samples")
    if not 0 < q <= 100:
        raise ValueError(f"percentile {q} outside (0, 100]")
    ordered = sorted(samples)
    rank = math.ceil(q / 100 * len(ordered))
    return ordered[max(rank, 1) - 1]


def summarize(samples: Sequence[float]) -> Summary | None:
    if not samples:
        return None
    return Summary(n=len(samples), median=statistics.median(samples), p95=percentile(samples, 95))


def ratio(podman: Summary | None, corral: Summary | None) -> float | None:
    """podman median / corral median: >1 means corral is faster (or leaner).

    None when either side is missing or corral's median is not positive (a ratio against
    zero or a negative growth says nothing).
    """
    if podman is None or corral is None or corral.median <= 0:
        return None
    return podman.median / corral.median
