"""Metric families built at collect time and written straight to the exposition text.

A family is filled from the current containers on every scrape, so a removed
container's series simply are not there next time, and a restarted container keeps
its series (labels carry the container ID, never the run).  Series of one family may
carry different `container_label_*` sets, exactly as cAdvisor's do.

Why not prometheus_client's `Metric` here: its writer formats and escapes every label
of every sample, which at 200 containers (~7000 samples) costs more than the whole
scrape budget.  A container's label block is formatted once and shared by all its
samples.  Both formats are written: Prometheus text 0.0.4 and OpenMetrics 1.0 (which
differ, for these types, only in the counter's TYPE/HELP name); the registry's own
metrics (histograms, process) still go through prometheus_client.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable, Mapping

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


def escape_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def label_block(labels: Mapping[str, str]) -> str:
    """`a="1",b="2"`: formatted once per container, shared by all its samples."""
    return ",".join(f'{k}="{escape_value(v)}"' for k, v in labels.items())


@functools.lru_cache(maxsize=8192)
def cached_block(labels: tuple[tuple[str, str], ...]) -> str:
    """`label_block` of these pairs, kept: a container's labels are the same at every
    scrape, and escaping them again is most of a scrape's string work otherwise."""
    return label_block(dict(labels))


def label(name: str, value: str) -> str:
    return f'{name}="{escape_value(value)}"'


def format_value(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


class Family:
    """One metric family; `add(block, value, extra)` appends a sample line."""

    def __init__(self, name: str, doc: str, typ: str) -> None:
        self.counter = typ == "counter"
        base = name[: -len("_total")] if self.counter and name.endswith("_total") else name
        self.base = base
        self.sample = base + "_total" if self.counter else base
        self.doc = doc.replace("\\", "\\\\").replace("\n", "\\n")
        self.type = typ
        self.lines: list[str] = []

    def add(self, block: str, value: float, extra: str = "") -> None:
        if extra:
            block = f"{block},{extra}" if block else extra
        text = str(value) if type(value) is int else format_value(value)  # ints: most samples
        self.lines.append(f"{self.sample}{{{block}}} {text}\n")

    def head(self, openmetrics: bool = False) -> str:
        """The HELP and TYPE lines (OpenMetrics names a counter family without `_total`)."""
        name = self.base if openmetrics else self.sample
        return f"# HELP {name} {self.doc}\n# TYPE {name} {self.type}\n"

    def render(self, openmetrics: bool = False) -> str:
        return self.head(openmetrics) + "".join(self.lines)


def counter(name: str, doc: str) -> Family:
    return Family(name, doc, "counter")


def gauge(name: str, doc: str) -> Family:
    return Family(name, doc, "gauge")


def render(families: Iterable[Family], openmetrics: bool = False) -> str:
    """The families that have samples, in order (an empty family is left out): one join
    (a scrape's text is megabytes: each layer of joins would copy it again)."""
    parts: list[str] = []
    for f in families:
        if f.lines:
            parts.append(f.head(openmetrics))
            parts.extend(f.lines)
    return "".join(parts)
