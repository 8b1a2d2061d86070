"""Restart policies: should this container start again, and after how long?

Pure decisions over data, Docker's semantics (moby `restartmanager`):

- `no`: never.  `always`: whenever it stops.  `unless-stopped`: the same while the
  daemon runs (the difference is at daemon start).  `on-failure[:N]`: only after a
  non-zero exit, at most N times (N = 0: no limit); that count never resets.
- Never after a stop or kill asked for by a user, nor while the daemon shuts down.
- The delay starts at 100 ms and doubles per restart, capped at 1 min, and goes back to
  100 ms once the container ran 10 s.

Beyond Docker, opt-in per container with labels (so the docker CLI and compose files
can set them too):

- `corral.restart.backoff=BASE[,MAX[,RESET]]` (durations like `100ms`, `1m`, `10s`):
  Docker hard-codes 100ms,1m,10s.
- `corral.restart.intensity=N/T` (e.g. `5/30s`): OTP-style, more than N restarts within
  T and corral gives up: the container stays exited with a clear error and an event.
- `corral.health.on-failure=restart` (Podman's `--health-on-failure`): an unhealthy
  container is restarted (the engine kills it; this policy then restarts it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from supervisor.errors import InvalidArgument

POLICIES = ("no", "always", "on-failure", "unless-stopped")
LABEL_BACKOFF = "corral.restart.backoff"
LABEL_INTENSITY = "corral.restart.intensity"
LABEL_HEALTH_ON_FAILURE = "corral.health.on-failure"

_UNITS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|ms|s|m|h)")


def parse_duration(text: str) -> float:
    """Go-style durations (`1m30s`, `100ms`, `0`) in seconds."""
    text = text.strip()
    if text in ("0", ""):
        return 0.0
    pos, total = 0, 0.0
    for m in _DURATION.finditer(text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos != len(text):
        raise InvalidArgument(f"invalid duration: {text!r}")
    return total


@dataclass(frozen=True)
class Policy:
    name: str = "no"
    max_retries: int = 0

    @classmethod
    def from_api(cls, raw: dict[str, Any] | None) -> Policy:
        """`HostConfig.RestartPolicy`, validated as Docker does."""
        raw = raw or {}
        name = raw.get("Name") or "no"
        retries = int(raw.get("MaximumRetryCount") or 0)
        if name not in POLICIES:
            raise InvalidArgument(f"invalid restart policy: unknown policy '{name}'; use one of "
                                  "'no', 'always', 'on-failure', or 'unless-stopped'")
        if retries < 0:
            raise InvalidArgument("invalid restart policy: maximum retry count can't be negative")
        if retries and name != "on-failure":
            raise InvalidArgument(
                "invalid restart policy: maximum retry count can only be used with 'on-failure'"
            )
        return cls(name, retries)


@dataclass(frozen=True)
class Backoff:
    base: float = 0.1
    cap: float = 60.0
    reset_after: float = 10.0


@dataclass(frozen=True)
class Intensity:
    max_restarts: int
    period: float


@dataclass(frozen=True)
class Tuning:
    """The per-container knobs, read from labels."""

    backoff: Backoff = field(default_factory=Backoff)
    intensity: Intensity | None = None
    restart_on_unhealthy: bool = False

    @classmethod
    def from_labels(cls, labels: dict[str, str] | None) -> Tuning:
        labels = labels or {}
        backoff = Backoff()
        if LABEL_BACKOFF in labels:
            parts = [parse_duration(p) for p in labels[LABEL_BACKOFF].split(",")]
            if not 1 <= len(parts) <= 3:
                raise InvalidArgument(f"invalid {LABEL_BACKOFF}: {labels[LABEL_BACKOFF]!r}")
            backoff = Backoff(*parts)
        intensity = None
        if LABEL_INTENSITY in labels:
            raw = labels[LABEL_INTENSITY]
            count, sep, period = raw.partition("/")
            if not sep or not count.isdigit():
                raise InvalidArgument(f"invalid {LABEL_INTENSITY}: {raw!r}, want N/DURATION")
            intensity = Intensity(int(count), parse_duration(period))
        on_failure = labels.get(LABEL_HEALTH_ON_FAILURE, "none")
        if on_failure not in ("none", "restart"):
            raise InvalidArgument(
                f"invalid {LABEL_HEALTH_ON_FAILURE}: {on_failure!r}, want none or restart"
            )
        return cls(backoff, intensity, on_failure == "restart")


@dataclass(frozen=True)
class Decision:
    restart: bool
    delay: float = 0.0
    give_up: str = ""  # why restarting stopped, when a limit was hit


def decide(
    policy: Policy,
    tuning: Tuning,
    *,
    exit_code: int,
    stopped_by_user: bool,
    shutting_down: bool,
    restart_count: int,
    ran_for: float,
    previous_delay: float,
    recent_restarts: list[float],
    now: float,
) -> Decision:
    """The one place that decides whether a container that just exited restarts."""
    if policy.name == "no" or stopped_by_user or shutting_down:
        return Decision(False)
    if policy.name == "on-failure":
        if exit_code == 0:
            return Decision(False)
        if policy.max_retries and restart_count >= policy.max_retries:
            return Decision(False, give_up=f"restart limit reached: {policy.max_retries} "
                                          "retries (on-failure)")
    if tuning.intensity is not None:
        window = [t for t in recent_restarts if now - t <= tuning.intensity.period]
        if len(window) >= tuning.intensity.max_restarts:
            return Decision(
                False,
                give_up=(f"restart intensity exceeded: more than {tuning.intensity.max_restarts}"
                         f" restarts in {tuning.intensity.period:g}s"),
            )
    b = tuning.backoff
    if ran_for >= b.reset_after or previous_delay <= 0:
        delay = b.base
    else:
        delay = min(previous_delay * 2, b.cap)
    return Decision(True, min(delay, b.cap))


def starts_at_boot(policy: Policy, stopped_by_user: bool) -> bool:
    """Which containers the daemon starts when it comes up, as Docker does."""
    if policy.name == "always":
        return True
    return policy.name == "unless-stopped" and not stopped_by_user
