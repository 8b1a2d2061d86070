"""prometheus_client's two writers for the registry's own metrics, with label strings kept.

`generate_latest` (text 0.0.4) and its OpenMetrics 1.0 twin validate and escape every
label name and value of every sample: ~16 µs a line, 7 ms a scrape for a few hundred
API histogram lines.  These write the same bytes for the shapes this registry holds
(legacy-valid names, `underscores` escaping, no unit, timestamp, exemplar or native
histogram) with each label set formatted once and kept; any other shape, or Accept
asking for another escaping or version, goes to prometheus_client's own writer.
test_metrics_scrape.py compares both byte for byte.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics import exposition as om
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString
from prometheus_client.validation import _is_valid_legacy_metric_name

Encoder = Callable[[Collector], bytes]
_TEXT_TYPE = {"info": "gauge", "stateset": "gauge", "gaugehistogram": "histogram",
              "unknown": "untyped"}  # fmt: skip
_TEXT_SUFFIX = {"counter": "_total", "info": "_info"}
_OM_ONLY = ("_created", "_gsum", "_gcount")  # text format: gauges after their family


class _Unusual(Exception):
    """A shape these writers leave to prometheus_client's."""


def fast_encoder(encoder: Encoder) -> Encoder:
    """This module's writer for what `choose_encoder` picked, when it writes the same."""
    if encoder is generate_latest:
        return _encode_text
    if (
        isinstance(encoder, functools.partial)
        and encoder.keywords.get("escaping") == om.UNDERSCORES
    ):
        if encoder.func is generate_latest and set(encoder.keywords) == {"escaping"}:
            return _encode_text
        if encoder.func is om.generate_latest and encoder.keywords.get("version") == "1.0.0":
            return _encode_openmetrics
    return encoder


@functools.lru_cache(maxsize=4096)
def _name(name: str) -> str:
    if ":" in name or not _is_valid_legacy_metric_name(name):  # OpenMetrics writes `:` as `_`
        raise _Unusual(name)
    return name


def _value(v: str) -> str:
    return str(om._escape(v, om.ALLOWUTF8, om._is_legacy_labelname_rune))


@functools.lru_cache(maxsize=16384)
def _labels(items: tuple[tuple[str, str], ...]) -> str:
    """`{a="1",b="2"}` (sorted, as both writers sort), or "" without labels."""
    if not items:
        return ""
    inner = ",".join(f'{om.escape_label_name(k, om.UNDERSCORES)}="{_value(v)}"'
                     for k, v in sorted(items))  # fmt: skip
    return "{" + inner + "}"


def _check(sample: Any) -> None:
    if sample.timestamp is not None or sample.exemplar or sample.native_histogram:
        raise _Unusual(sample.name)


def _lines(metric: Any, out: list[str], later: dict[str, list[str]] | None) -> None:
    prefix = metric.name
    for s in metric.samples:
        _check(s)
        value = floatToGoString(s.value)  # type: ignore[no-untyped-call]
        line = f"{_name(s.name)}{_labels(tuple(s.labels.items()))} {value}\n"
        if later is not None and s.name.startswith(prefix):
            suffix = s.name[len(prefix) :]
            if suffix in _OM_ONLY:
                later.setdefault(suffix, []).append(line)
                continue
        out.append(line)


def _text(registry: Collector) -> bytes:
    out: list[str] = []
    for metric in registry.collect():
        if metric.unit:
            raise _Unusual(metric.name)
        name = _name(metric.name + _TEXT_SUFFIX.get(metric.type, ""))
        doc = metric.documentation.replace("\\", r"\\").replace("\n", r"\n")
        out.append(
            f"# HELP {name} {doc}\n# TYPE {name} {_TEXT_TYPE.get(metric.type, metric.type)}\n"
        )
        later: dict[str, list[str]] = {}
        _lines(metric, out, later)
        for suffix, lines in sorted(later.items()):
            extra = _name(metric.name + suffix)
            out.append(f"# HELP {extra} {doc}\n# TYPE {extra} gauge\n")
            out.extend(lines)
    return "".join(out).encode("utf-8")


def _openmetrics(registry: Collector) -> bytes:
    out: list[str] = []
    for metric in registry.collect():
        if metric.unit:
            raise _Unusual(metric.name)
        name = _name(metric.name)
        doc = _value(metric.documentation)
        out.append(f"# HELP {name} {doc}\n# TYPE {name} {metric.type}\n")
        _lines(metric, out, None)
    out.append("# EOF\n")
    return "".join(out).encode("utf-8")


def _encode_text(registry: Collector) -> bytes:
    try:
        return _text(registry)
    except _Unusual:
        return generate_latest(registry)


def _encode_openmetrics(registry: Collector) -> bytes:
    try:
        return _openmetrics(registry)
    except _Unusual:
        out = om.generate_latest(  # type: ignore[no-untyped-call]
            registry, escaping=om.UNDERSCORES, version="1.0.0"
        )
        return bytes(out)
