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
from metrics.supervisor import (
    Bookkeeping,
    KeptLines,
    Record,
    SupervisorCollector,
    event_action,
)
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
        # The last scrape's targets and records by container ID (see `_targets`).
        self._kept_targets: dict[str, Target] = {}
        self._kept_records: dict[str, Record] = {}
        self._kept_lines: dict[str, KeptLines] = {}  # build_supervisor's, worker thread only
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

    def _targets(self, containers: Sequence[Container] | None = None) -> list[Target]:
        """The running containers, each `Target` kept from the last scrape while its run
        is the same (the collector then knows an idle container at a glance)."""
        out = []
        kept, self._kept_targets = self._kept_targets, {}
        for c in self.engine.containers.all() if containers is None else containers:
            st = c.state
            if st.status.value not in _RUNNING or st.pid <= 0:
                continue
            t = kept.get(c.id)
            if t is None or t.pid != st.pid or t.started_at != st.started_at or t.name != c.name:
                t = Target(
                    cgroup_path=self.engine.cgroup_path(c),
                    name=c.name,
                    image=c.image,
                    labels=dict(c.config.get("Labels") or {}),
                    pid=st.pid,
                    started_at=st.started_at,
                    container_id=c.id,
                )
            self._kept_targets[c.id] = t
            out.append(t)
        return out

    def _records(self, containers: Sequence[Container] | None = None) -> list[Record]:
        """Every container's `Record`, kept from the last scrape while what it shows is
        the same (its lines are then kept too: `build_supervisor`'s `kept`)."""
        out = []
        kept, self._kept_records = self._kept_records, {}
        live = self.engine.live
        for c in self.engine.containers.all() if containers is None else containers:
            st = c.state
            try:
                log = live(c).log
            except KeyError:
                log = None
            lines: dict[str, int] = getattr(log, "lines", None) or {}
            nbytes: dict[str, int] = getattr(log, "bytes", None) or {}
            health = st.health.status if st.health is not None else None
            r = kept.get(c.id)
            if (r is None or r.status != st.status.value or r.exit_code != st.exit_code
                    or r.health != health or r.log_lines != lines or r.log_bytes != nbytes
                    or r.labels["name"] != c.name):  # fmt: skip
                given = c.config.get("Labels") or {}
                labels = _series_labels(self.engine.cgroup_path(c), c.name, c.image,
                                        tuple((k, str(v)) for k, v in given.items()))  # fmt: skip
                r = Record(c.id, labels, st.status.value, st.exit_code, health, dict(lines),
                           dict(nbytes))  # fmt: skip
            self._kept_records[c.id] = r
            out.append(r)
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
            containers = self.engine.containers.all()
            targets, records = self._targets(containers), self._records(containers)
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
        pieces = self.containers.collect(targets, openmetrics)
        supervisor = build_supervisor(records, self.book, self._kept_lines)
        pieces.append(render(supervisor, openmetrics).encode())
        pieces.append(encoder(self.registry))  # OpenMetrics' `# EOF` comes last
        return b"".join(pieces)
