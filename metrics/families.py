"""Building metric families at collect time (the custom-collector way).

A family is filled from the current containers on every scrape, so a removed
container's series simply are not there next time, and a restarted container keeps
its series (labels carry the container ID, never the run).  Series of one family may
carry different `container_label_*` sets, exactly as cAdvisor's do.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from prometheus_client.metrics_core import Metric

_INVALID = re.compile(r"[^a-zA-Z0-9_]")


def sanitize_label_name(name: str) -> str:
    """cAdvisor's rule: every character outside [a-zA-Z0-9_] becomes `_`."""
    out = _INVALID.sub("_", name)
    return "_" + out if out[:1].isdigit() else out


def container_labels(labels: Mapping[str, str] | None) -> dict[str, str]:
    """`container_label_<sanitized>` for each container label (first one wins a clash)."""
    out: dict[str, str] = {}
    for key in sorted(labels or {}):
        name = "container_label_" + sanitize_label_name(key)
        out.setdefault(name, str((labels or {})[key]))
    return out


class Family:
    """One metric family; `add(labels, value)` appends a sample."""

    def __init__(self, name: str, doc: str, typ: str) -> None:
        base = name[: -len("_total")] if typ == "counter" and name.endswith("_total") else name
        self.metric = Metric(base, doc, typ)
        self.sample = base + "_total" if typ == "counter" else base

    def add(self, labels: dict[str, str], value: float) -> None:
        self.metric.add_sample(self.sample, labels, float(value))


def counter(name: str, doc: str) -> Family:
    return Family(name, doc, "counter")


def gauge(name: str, doc: str) -> Family:
    return Family(name, doc, "gauge")
