"""Rollouts of a changed service on one host: `deploy.update_config`/`rollback_config`
read, and the steps each replica goes through, as data. Pure.

Docker Compose recreates a changed service by stopping the old container and starting
a new one, with requests failing in between; rolling updates are swarm's.  A service
with `deploy.update_config` is rolled out here instead, replica by replica, in batches
of `parallelism` with `delay` between them:

- `start-first`: the new replica starts beside the old one, under a temporary name
  (compose's `<old id[:12]>_<name>`, which its recreate uses too), is waited on until
  healthy (its healthcheck; with none, running for `monitor`), then the old one's
  published ports switch to it (the daemon's port relay, in one assignment), the old
  one is drained for up to its stop grace period, stopped and removed, and the new one
  takes its name;
- `stop-first` (swarm's default): the old replica is stopped first, the new one started
  and waited on the same way; the old is removed once the new is healthy.

A replica that fails is removed and its old one kept (started again under
`stop-first`): the old one serves on.  Each failure counts against
`max_failure_ratio`; past it, `failure_action` decides: `pause` (swarm's default: stop
the rollout here), `continue`, or `rollback` (replicas already updated in this rollout
are rolled back to the configuration they had, with `rollback_config`'s order).

A named volume labelled `corral.volume.exclusive=true` (one writer at a time: a
database's files, a lock) cannot be mounted by two containers at once, so a service
mounting one is rolled out `stop-first` whatever it asks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from config.units import duration_ns

ORDERS = ("start-first", "stop-first")
FAILURE_ACTIONS = ("pause", "continue", "rollback")
ROLLBACK_ACTIONS = ("pause", "continue")
EXCLUSIVE_LABEL = "corral.volume.exclusive"
# On a start-first replacement: the id of the container whose published ports it takes
# over (the daemon binds none of those at its start; `POST /corral/rollouts/ID/switch`).
SUCCESSOR_LABEL = "io.corral.rollout.successor-of"
KEYS = ("parallelism", "delay", "failure_action", "monitor", "max_failure_ratio", "order")

# The steps, in order, of one replica's update; the executor walks them.
START_FIRST = ("create", "start", "healthy", "switch", "stop_old", "remove_old", "rename")
STOP_FIRST = ("stop_old", "create", "start", "healthy", "remove_old", "rename")
# What undoes a replica whose update failed (after the steps it reached).
UNDO = {
    "start-first": ("remove_new",),
    "stop-first": ("remove_new", "start_old"),
}


@dataclass(frozen=True)
class UpdateConfig:
    """One of `update_config`/`rollback_config`, with swarm's defaults."""

    order: str = "stop-first"
    parallelism: int = 1  # 0: every replica at once
    delay: float = 0.0  # seconds between batches
    failure_action: str = "pause"
    monitor: float = 5.0  # seconds a replica with no healthcheck must keep running
    max_failure_ratio: float = 0.0

    @property
    def steps(self) -> tuple[str, ...]:
        return START_FIRST if self.order == "start-first" else STOP_FIRST

    @property
    def undo(self) -> tuple[str, ...]:
        return UNDO[self.order]


def check(spec: Any, key: str = "update_config") -> list[tuple[str, str]]:
    """(sub-key, message) for each bad value of one config (the schema has the types)."""
    if not isinstance(spec, Mapping):
        return []
    bad: list[tuple[str, str]] = []
    actions = FAILURE_ACTIONS if key == "update_config" else ROLLBACK_ACTIONS
    if "order" in spec and spec["order"] not in ORDERS:
        bad.append(("order", f"must be one of {', '.join(ORDERS)}"))
    if "failure_action" in spec and spec["failure_action"] not in actions:
        bad.append(("failure_action", f"must be one of {', '.join(actions)}"))
    if int(spec.get("parallelism", 1)) < 0:
        bad.append(("parallelism", "must be 0 or more"))
    ratio = spec.get("max_failure_ratio", 0)
    if not 0 <= float(ratio) <= 1:
        bad.append(("max_failure_ratio", "must be between 0 and 1"))
    return bad


def _config(spec: Any) -> UpdateConfig:
    spec = spec if isinstance(spec, Mapping) else {}
    d = UpdateConfig()
    return UpdateConfig(
        order=str(spec.get("order", d.order)),
        parallelism=int(spec.get("parallelism", d.parallelism)),
        delay=duration_ns(spec["delay"]) / 1e9 if "delay" in spec else d.delay,
        failure_action=str(spec.get("failure_action", d.failure_action)),
        monitor=duration_ns(spec["monitor"]) / 1e9 if "monitor" in spec else d.monitor,
        max_failure_ratio=float(spec.get("max_failure_ratio", d.max_failure_ratio)),
    )


@dataclass(frozen=True)
class Rollout:
    """How one service is rolled out: its update and rollback configs, and why the
    order was forced, if it was."""

    update: UpdateConfig
    rollback: UpdateConfig
    forced: str = ""  # e.g. `volume demo_db is exclusive: stop-first`


def exclusive_volumes(
    service: Mapping[str, Any], volumes: Mapping[str, Any]
) -> list[str]:
    """The project volumes (by their names) this service mounts that are labelled
    exclusive."""
    out: list[str] = []
    for v in service.get("volumes") or []:
        if not isinstance(v, Mapping) or v.get("type") != "volume":
            continue
        spec = volumes.get(str(v.get("source") or "")) or {}
        labels = spec.get("labels") or {}
        if str(labels.get(EXCLUSIVE_LABEL, "")).lower() in ("true", "1", "yes"):
            out.append(str(spec.get("name") or v.get("source")))
    return out


def rollout_of(service: Mapping[str, Any], volumes: Mapping[str, Any]) -> Rollout | None:
    """The rollout of a service with `deploy.update_config`; None: compose's recreate."""
    deploy = service.get("deploy") or {}
    if "update_config" not in deploy:
        return None
    update = _config(deploy.get("update_config"))
    rollback = _config(deploy.get("rollback_config"))
    forced = ""
    exclusive = exclusive_volumes(service, volumes)
    if exclusive and "start-first" in (update.order, rollback.order):
        forced = f"volume {exclusive[0]} is {EXCLUSIVE_LABEL}: stop-first"
        update = _with_order(update, "stop-first")
        rollback = _with_order(rollback, "stop-first")
    return Rollout(update, rollback, forced)


def _with_order(cfg: UpdateConfig, order: str) -> UpdateConfig:
    return UpdateConfig(
        order, cfg.parallelism, cfg.delay, cfg.failure_action, cfg.monitor, cfg.max_failure_ratio
    )


def batches(numbers: Sequence[int], parallelism: int) -> list[list[int]]:
    """Replica numbers in the batches a rollout takes them (0: all in one)."""
    size = parallelism or len(numbers) or 1
    ordered = sorted(numbers)
    return [ordered[i : i + size] for i in range(0, len(ordered), size)]


def verdict(cfg: UpdateConfig, failed: int, total: int) -> str:
    """After a batch: `go` on, or the failure action once failures exceed the ratio."""
    if not failed or (total and failed / total <= cfg.max_failure_ratio):
        return "go"
    return cfg.failure_action if cfg.failure_action != "continue" else "go"


# What `health_bound` adds to the check's own worst case (a probe started late, a slow
# start of the container itself).
HEALTH_MARGIN = 10.0


def health_bound(hc: Mapping[str, Any]) -> tuple[float, str]:
    """How long a rollout waits at most for a new replica's health check to say
    healthy (seconds), and how that was reckoned, for the failure message.

    Docker's checker decides `unhealthy` within `start_period` plus `retries` probes of
    up to `timeout` each, `interval` apart; one more probe and `HEALTH_MARGIN` on top.
    A replica still not healthy by then (a checker that never answers) fails the
    rollout as an unhealthy one does.  `hc` is the container's `Config.Healthcheck`
    (nanoseconds, 0 or missing: Docker's defaults)."""

    def ns(key: str, default: float) -> float:
        v = hc.get(key) or 0
        return int(v) / 1e9 if v else default

    interval, timeout = ns("Interval", 30.0), ns("Timeout", 30.0)
    start = ns("StartPeriod", 0.0)
    retries = int(hc.get("Retries") or 0) or 3
    bound = start + (retries + 1) * (interval + timeout) + HEALTH_MARGIN
    how = (
        f"start_period {start:g}s + (retries {retries} + 1) x (interval {interval:g}s + "
        f"timeout {timeout:g}s) + {HEALTH_MARGIN:g}s"
    )
    return bound, how


def temporary_name(old_id: str, name: str) -> str:
    """compose v2's name for a replacement while the replaced container still exists."""
    return f"{old_id[:12]}_{name}"
