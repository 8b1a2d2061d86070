"""The exporter: one registry holding the container, supervisor and process collectors.

It subscribes to the engine's event bus (a synchronous listener, so no event is
missed) and is the API router's observer.  `render()` is a scrape: everything is read
then; nothing runs between scrapes.
"""

from __future__ import annotations

import functools
import importlib.metadata
from collections.abc import Sequence
from typing import TYPE_CHECKING

import trio
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    Info,
    disable_created_metrics,
)
from prometheus_client.exposition import choose_encoder

from metrics.containers import ContainerCollector, Target, pod_label
from metrics.families import container_labels, render
from metrics.process import ProcessCollector
from metrics.registry_text import Encoder, fast_encoder
from metrics.supervisor import Bookkeeping, Record, SupervisorCollector, event_action
from metrics.supervisor import build_families as build_supervisor
from supervisor.errors import NotFound

if TYPE_CHECKING:
    from supervisor.engine.engine import Engine
    from supervisor.metadata.containers import Container
    from supervisor.supervise.events import Event

START_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
API_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0)
_RUNNING = ("running", "paused")


def corral_version() -> str:
    try:
        return importlib.metadata.version("corral")
    except importlib.metadata.PackageNotFoundError:
        return "0.1.0"


@functools.lru_cache(maxsize=8192)
def _series_labels(
    cgroup_path: str, name: str, image: str, given: tuple[tuple[str, str], ...]
) -> dict[str, str]:
    """A record's series labels, made once while they stay (read-only: shared)."""
    labels = dict(given)
    return {"id": cgroup_path, "name": name, "image": image, **pod_label(labels),
            **container_labels(labels)}  # fmt: skip


class Exporter:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # `*_created` series double the output and no dashboard reads them.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry(auto_describe=False)
        self.book = Bookkeeping()
        for c in engine.containers.all():
            self.book.know(c.id, c.state.restart_count)
        self.containers = ContainerCollector(self._targets)
        self.supervisor = SupervisorCollector(self._records, self.book)
        self._scrape_lock = trio.Lock()
        ProcessCollector(self.registry)  # prometheus_client's families, fds counted by size
        Info("corral_build", "corral's version and OCI runtime.", registry=self.registry).info(
            {"version": corral_version(), "runtime": engine.runtime_name}
        )
        self.start_duration = Histogram(
            "corral_container_start_duration_seconds",
            "Time from a container's create to its first running.",
            buckets=START_BUCKETS,
            registry=self.registry,
        )
        self.events = Counter(
            "corral_events_total",
            "Events published on the event bus.",
            ["type", "action"],
            registry=self.registry,
        )
        self.api_requests = Counter(
            "corral_api_requests_total",
            "Engine API requests by method, route template and status code.",
            ["method", "route", "code"],
            registry=self.registry,
        )
        self.api_duration = Histogram(
            "corral_api_request_duration_seconds",
            "Engine API request durations (streams: until they end).",
            ["method", "route", "code"],
            buckets=API_BUCKETS,
            registry=self.registry,
        )
        self.rollouts = Counter(
            "corral_rollouts_total",
            "Rollouts of a changed replica (compose deploy.update_config), by result: "
            "succeeded, failed (the old replica kept), rolled_back.",
            ["result"],
            registry=self.registry,
        )
        for result in ("succeeded", "failed", "rolled_back"):
            self.rollouts.labels(result)  # every series from the start: increase() sees the first
        engine.events.add_listener(self.on_event)

    # ------------------------------------------------------------- listeners
    def on_event(self, event: Event) -> None:
        """Called synchronously by the event bus for every event, in order."""
        self.events.labels(event.type, event_action(event.action)).inc()
        if event.type != "container":
            return
        if event.action in ("rollout_done", "rollout_failed"):
            self.rollouts.labels(event.attributes.get("result", "failed")).inc()
            return
        if event.action in ("die", "destroy", "update"):
            self.containers.forget(event.actor_id)  # closed (update: limits read anew)
        count: int | None = None
        if event.action == "start":
            c = self._find(event.actor_id)
            count = None if c is None else c.state.restart_count
        took = self.book.on_container_event(event.action, event.actor_id, event.time_nano, count)
        if took is not None:
            self.start_duration.observe(took)

    def observe_api(self, method: str, route: str, status: int, seconds: float) -> None:
        """The API router's observer: one call per request, once its response is done."""
        self.api_requests.labels(method, route, str(status)).inc()
        self.api_duration.labels(method, route, str(status)).observe(seconds)

    # ------------------------------------------------------------- scraping
    def _find(self, container_id: str) -> Container | None:
        try:
            return self.engine.containers.get(container_id)
        except NotFound:
            return None

    def _targets(self) -> list[Target]:
        out = []
        for c in self.engine.containers.all():
            if c.state.status.value in _RUNNING and c.state.pid > 0:
                out.append(
                    Target(
                        cgroup_path=self.engine.cgroup_path(c),
                        name=c.name,
                        image=c.image,
                        labels=dict(c.config.get("Labels") or {}),
                        pid=c.state.pid,
                        started_at=c.state.started_at,
                        container_id=c.id,
                    )
                )
        return out

    def _records(self) -> list[Record]:
        out = []
        for c in self.engine.containers.all():
            given = c.config.get("Labels") or {}
            labels = _series_labels(self.engine.cgroup_path(c), c.name, c.image,
                                    tuple((k, str(v)) for k, v in given.items()))  # fmt: skip
            lines: dict[str, int] = {}
            nbytes: dict[str, int] = {}
            try:
                log = self.engine.live(c).log
            except KeyError:
                log = None
            if log is not None:
                lines = dict(getattr(log, "lines", {}) or {})
                nbytes = dict(getattr(log, "bytes", {}) or {})
            health = c.state.health.status if c.state.health is not None else None
            out.append(
                Record(c.id, labels, c.state.status.value, c.state.exit_code, health, lines, nbytes)
            )
        return out

    def render(self, accept: str | None = None) -> tuple[bytes, str]:
        """One scrape in the calling thread: the body and its content type."""
        encoder, content_type = self._encoder(accept)
        return self._write(self._targets(), self._records(), encoder, content_type), content_type

    async def scrape(self, accept: str | None = None) -> tuple[bytes, str]:
        """One scrape, its file reads and text in a worker thread so the daemon keeps
        answering meanwhile.  Engine state (targets, records) is read here on the trio
        thread; scrapes run one at a time (they share the held descriptors)."""
        async with self._scrape_lock:
            encoder, content_type = self._encoder(accept)
            targets, records = self._targets(), self._records()
            self.containers.begin()
            try:
                body = await trio.to_thread.run_sync(
                    self._write, targets, records, encoder, content_type
                )
            finally:
                self.containers.done()
            return body, content_type

    @staticmethod
    def _encoder(accept: str | None) -> tuple[Encoder, str]:
        encoder, content_type = choose_encoder(accept or "")
        return fast_encoder(encoder), content_type  # the same bytes, label strings kept

    def _write(self, targets: Sequence[Target], records: Sequence[Record], encoder: Encoder,
               content_type: str) -> bytes:  # fmt: skip
        openmetrics = content_type.startswith("application/openmetrics-text")
        families = [*self.containers.collect(targets), *build_supervisor(records, self.book)]
        own = render(families, openmetrics).encode()
        return own + encoder(self.registry)  # OpenMetrics' `# EOF` comes last
