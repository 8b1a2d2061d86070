"""The supervisor's own metrics: what cAdvisor cannot know.

Restarts, states, health and exit codes are read from the engine's records at scrape
time; what only events tell (restarts across user starts, create-to-running latency,
event counts) is kept by `Bookkeeping`, a pure machine the event listener feeds.

`corral_container_restarts_total` counts restarts made by the restart policy (and
restart-on-unhealthy), like Docker's `RestartCount`, but unlike `RestartCount` it is
not reset by a user's `start`: it only goes up while the container exists, so
`increase()` sees every restart.  It starts from the record's `RestartCount` when the
daemon starts.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from metrics.families import Family, cached_block, counter, gauge, label

STATES = ("created", "running", "paused", "restarting", "removing", "exited", "dead")
HEALTH_STATES = ("starting", "healthy", "unhealthy")


def event_action(action: str) -> str:
    """`health_status: healthy` -> `health_status`, `exec_create: sh -c ..` -> `exec_create`:
    the label stays bounded whatever commands people exec."""
    return action.split(":", 1)[0].strip()


@dataclass
class Bookkeeping:
    """Event-fed counters: per-container restarts and pending create times."""

    restarts: dict[str, int] = field(default_factory=dict)
    _last_count: dict[str, int] = field(default_factory=dict)  # RestartCount last seen
    _created_ns: dict[str, int] = field(default_factory=dict)

    def know(self, container_id: str, restart_count: int) -> None:
        """A container that existed before the exporter (daemon start)."""
        self.restarts.setdefault(container_id, restart_count)
        self._last_count[container_id] = restart_count

    def on_container_event(
        self, action: str, container_id: str, time_nano: int, restart_count: int | None
    ) -> float | None:
        """Feed one container event; returns a create-to-running time to observe, if any.

        `restart_count` is the record's RestartCount when the event was published.  The
        policy increments it before a restart's `start`; a user's start resets it to 0.
        """
        if action == "create":
            self._created_ns[container_id] = time_nano
            self.restarts.setdefault(container_id, 0)
            self._last_count[container_id] = restart_count or 0
            return None
        if action == "destroy":
            self.restarts.pop(container_id, None)
            self._last_count.pop(container_id, None)
            self._created_ns.pop(container_id, None)
            return None
        if action == "start" and restart_count is not None:
            last = self._last_count.get(container_id, 0)
            if restart_count > last:
                self.restarts[container_id] = (
                    self.restarts.get(container_id, 0) + restart_count - last
                )
            self._last_count[container_id] = restart_count
            created = self._created_ns.pop(container_id, None)
            if created is not None:
                return max(0.0, (time_nano - created) / 1e9)
        return None


@dataclass(frozen=True)
class Record:
    """What the collector reads of one container record (no engine types here)."""

    id: str
    labels: dict[str, str]  # id/name/image/container_label_* for the series
    status: str
    exit_code: int
    health: str | None
    log_lines: dict[str, int]
    log_bytes: dict[str, int]


class SupervisorCollector:
    def __init__(self, records: Callable[[], Sequence[Record]], book: Bookkeeping) -> None:
        self.records = records
        self.book = book

    def collect(self) -> list[Family]:
        return build_families(self.records(), self.book)


_STATE = {s: label("state", s) for s in STATES}
_HEALTH = {h: label("status", h) for h in HEALTH_STATES}
_STREAM = {s: label("stream", s) for s in ("stdout", "stderr")}


@functools.lru_cache(maxsize=8192)
def _prefixes(block: str) -> tuple[str, tuple[str, ...], tuple[str, ...], str, tuple[str, ...]]:
    """One container's line prefixes (`name{block} `): restarts, states, health, exit
    code, and log lines/bytes per stream; made once per label block."""

    def head(name: str, extra: str = "") -> str:
        inner = f"{block},{extra}" if block and extra else block or extra
        return f"{name}{{{inner}}} "

    return (
        head("corral_container_restarts_total"),
        tuple(head("corral_container_state", _STATE[s]) for s in STATES),
        tuple(head("corral_container_health_status", _HEALTH[h]) for h in HEALTH_STATES),
        head("corral_container_last_exit_code"),
        tuple(head(name, extra) for name in ("corral_log_lines_total", "corral_log_bytes_total")
              for extra in _STREAM.values()),
    )  # fmt: skip


# One container's lines of the six families, with the record and restart count they
# were made from (build_families' `kept`).
KeptLines = tuple[Record, int, tuple[str, str, str, str, str, str]]


def record_lines(r: Record, restarts: int) -> tuple[str, str, str, str, str, str]:
    """One container's lines of each family (pure; '' where it has none)."""
    p_restarts, p_states, p_health, p_exit, p_logs = _prefixes(
        cached_block(tuple(r.labels.items()))
    )
    status = r.status
    states = "".join(f"{head}{1 if s == status else 0}\n"
                     for head, s in zip(p_states, STATES, strict=True))  # fmt: skip
    health = ""
    if r.health is not None:
        health = "".join(f"{head}{1 if h == r.health else 0}\n"
                         for head, h in zip(p_health, HEALTH_STATES, strict=True))  # fmt: skip
    lines, nbytes = [], []
    for i, stream in enumerate(_STREAM):
        if stream in r.log_lines:
            lines.append(f"{p_logs[i]}{r.log_lines[stream]}\n")
        if stream in r.log_bytes:
            nbytes.append(f"{p_logs[2 + i]}{r.log_bytes[stream]}\n")
    return (f"{p_restarts}{restarts}\n", states, health, f"{p_exit}{r.exit_code}\n",
            "".join(lines), "".join(nbytes))  # fmt: skip


def build_families(
    records: Iterable[Record], book: Bookkeeping, kept: dict[str, KeptLines] | None = None
) -> list[Family]:
    """Each line one f-string of a cached prefix and its value (ints only here).

    `kept`: the lines of the last call by container ID, reused for a record that is
    the same object with the same restart count (the exporter keeps a record while
    nothing it shows changed), and replaced by this call's."""
    restarts = counter(
        "corral_container_restarts_total",
        "Restarts by the restart policy since the container was created (never reset).",
    )
    state = gauge("corral_container_state", "1 for the container's current state.")
    health = gauge("corral_container_health_status", "1 for the container's current health status.")
    exit_code = gauge("corral_container_last_exit_code", "Exit code of the container's last run.")
    lines = counter("corral_log_lines_total", "Log lines the container wrote, by stream.")
    nbytes = counter("corral_log_bytes_total", "Log bytes the container wrote, by stream.")
    fams = [restarts, state, health, exit_code, lines, nbytes]
    outs = [f.lines for f in fams]
    counts = book.restarts
    last = kept if kept is not None else {}
    now: dict[str, KeptLines] = {}
    for r in records:
        count = counts.get(r.id, 0)
        entry = last.get(r.id)
        if entry is None or entry[0] is not r or entry[1] != count:
            entry = (r, count, record_lines(r, count))
        now[r.id] = entry
        for out, chunk in zip(outs, entry[2], strict=True):
            if chunk:
                out.append(chunk)
    if kept is not None:
        kept.clear()
        kept.update(now)
    return fams
