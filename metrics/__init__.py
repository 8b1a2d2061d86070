"""Prometheus exporter: cAdvisor-compatible container metrics and the supervisor's own.

Everything is read at scrape time (cgroup files, the container's netns counters, the
engine's records); between scrapes nothing runs.  Counters that only events can give
(restarts, start latency, events, API requests) are kept by listeners the engine and
the router call synchronously.

    exporter = Exporter(engine)          # registers its event listener
    router = build_router(engine, observer=exporter.observe_api)
    await nursery.start(serve_metrics, "127.0.0.1:9323", exporter)
"""

from metrics.exporter import Exporter
from metrics.server import parse_addr, serve_metrics

__all__ = ["Exporter", "parse_addr", "serve_metrics"]
