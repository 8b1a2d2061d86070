"""Health checks, the pure part: configuration, the status machine, probe-result shapes.

Docker's rules (moby `daemon/health.go`), kept here as functions over data so each can
be tested without a container:

- A container with a healthcheck starts every run in `starting` (never the previous
  run's status); its failing streak is reset, its last results are kept.
- A probe that exits 0 makes it `healthy` (from any status, also inside the start
  period) and resets the failing streak.
- Any other result is a failure.  While still `starting`, a failure whose probe began
  inside the start period does not count; otherwise it adds to the streak, and
  `Retries` consecutive counted failures make it `unhealthy`.
- The log keeps the last 5 results; a probe's output is cut to 4096 bytes (with "..."
  appended, as Docker's limited buffer does); a probe over its timeout is exit code -1
  with "Health check exceeded timeout (<Go duration>)".
- Probes are spaced by `Interval` (the first one too), and by `StartInterval` while the
  container is inside its start period and still `starting`.
- Durations are nanoseconds (the API's unit); 0 means the default.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from supervisor.errors import InvalidArgument

# the stored shapes are the metadata layer's; the rules that move them are here
from supervisor.metadata.health import HEALTHY as HEALTHY
from supervisor.metadata.health import STARTING as STARTING
from supervisor.metadata.health import UNHEALTHY as UNHEALTHY
from supervisor.metadata.health import Health as Health
from supervisor.metadata.health import ProbeResult as ProbeResult

SECOND = 1_000_000_000
DEFAULT_INTERVAL = 30 * SECOND
DEFAULT_TIMEOUT = 30 * SECOND
DEFAULT_START_PERIOD = 0
DEFAULT_START_INTERVAL = 5 * SECOND
DEFAULT_RETRIES = 3
MINIMUM_DURATION = 1_000_000  # 1 ms, Docker's `container.MinimumDuration`
MAX_LOG_ENTRIES = 5
MAX_OUTPUT_LEN = 4096
DEFAULT_SHELL = ("/bin/sh", "-c")


@dataclass(frozen=True)
class HealthConfig:
    """A container's effective healthcheck: what to run and when, defaults applied."""

    argv: tuple[str, ...]
    interval: int = DEFAULT_INTERVAL  # all durations in nanoseconds
    timeout: int = DEFAULT_TIMEOUT
    retries: int = DEFAULT_RETRIES
    start_period: int = DEFAULT_START_PERIOD
    start_interval: int = DEFAULT_START_INTERVAL


def _or_default(value: Any, default: int) -> int:
    return int(value) if value else default


def parse(hc: dict[str, Any] | None, shell: list[str] | None = None) -> HealthConfig | None:
    """The effective check of a container's merged `Config.Healthcheck`; None: no checks.

    `["NONE"]`, an empty or missing `Test`, or an unknown test type mean no probe (Docker
    logs a warning for the last and runs nothing).  `CMD-SHELL` runs through the
    container's `Shell` (`Config.Shell`), `/bin/sh -c` by default.
    """
    if not hc:
        return None
    test = hc.get("Test") or []
    if isinstance(test, str):  # compose's string form means CMD-SHELL
        test = ["CMD-SHELL", test]
    if not test:
        return None
    kind, rest = test[0], [str(a) for a in test[1:]]
    if kind == "CMD":
        argv = tuple(rest)
    elif kind == "CMD-SHELL":
        argv = (*(shell or DEFAULT_SHELL), " ".join(rest))
    else:
        return None
    if not argv or not argv[0]:
        return None
    retries = int(hc.get("Retries") or 0)
    return HealthConfig(
        argv=argv,
        interval=_or_default(hc.get("Interval"), DEFAULT_INTERVAL),
        timeout=_or_default(hc.get("Timeout"), DEFAULT_TIMEOUT),
        retries=retries if retries > 0 else DEFAULT_RETRIES,
        start_period=_or_default(hc.get("StartPeriod"), DEFAULT_START_PERIOD),
        start_interval=_or_default(hc.get("StartInterval"), DEFAULT_START_INTERVAL),
    )


def validate(hc: dict[str, Any] | None) -> None:
    """Docker's create-time checks of `Config.Healthcheck`, with its messages (400)."""
    if not hc:
        return
    for key in ("Interval", "Timeout", "StartPeriod", "StartInterval"):
        value = hc.get(key) or 0
        if not isinstance(value, int):
            raise InvalidArgument(f"{key} in Healthcheck must be an integer (nanoseconds)")
        if value != 0 and value < MINIMUM_DURATION:
            raise InvalidArgument(f"{key} in Healthcheck cannot be less than 1ms")
    retries = hc.get("Retries") or 0
    if not isinstance(retries, int) or retries < 0:
        raise InvalidArgument("Retries in Healthcheck cannot be negative")
    test = hc.get("Test")
    if test is not None and not isinstance(test, (list, str)):
        raise InvalidArgument("Test in Healthcheck must be a list of strings")


def merge(image: dict[str, Any] | None, user: dict[str, Any] | None) -> dict[str, Any] | None:
    """Docker's merge of the create body's healthcheck over the image's, field by field.

    `--health-interval 1s` alone keeps the image's test (moby `daemon/commit.go` merge):
    an empty `Test` and zero durations/retries take the image's values.
    """
    if not user:
        return dict(image) if image else None
    if not image:
        return dict(user)
    out = dict(user)
    if not out.get("Test"):
        out["Test"] = image.get("Test")
    for key in ("Interval", "Timeout", "StartPeriod", "StartInterval", "Retries"):
        if not out.get(key):
            out[key] = image.get(key, 0)
    return out


def on_start(previous: Health | None) -> Health:
    """A fresh run: `starting`, streak 0; earlier results stay in the log, as in Docker."""
    return Health(status=STARTING, failing_streak=0, log=previous.log if previous else ())


def apply_result(h: Health, result: ProbeResult, cfg: HealthConfig, since_start: int) -> Health:
    """The health after one probe; `since_start` is probe start - container start (ns)."""
    log = (*h.log, result)[-MAX_LOG_ENTRIES:]
    if result.exit_code == 0:
        return Health(status=HEALTHY, failing_streak=0, log=log)
    if h.status == STARTING and since_start < cfg.start_period:
        return Health(status=h.status, failing_streak=h.failing_streak, log=log)
    streak = h.failing_streak + 1
    status = UNHEALTHY if streak >= cfg.retries else h.status
    return Health(status=status, failing_streak=streak, log=log)


def next_delay(cfg: HealthConfig, status: str, since_start: int) -> int:
    """Nanoseconds until the next probe, `since_start` ns after the container started."""
    if since_start < cfg.start_period and status == STARTING:
        return cfg.start_interval
    return cfg.interval


def probe_output(data: bytes) -> str:
    """The stored output: at most 4096 bytes, "..." appended when more was written."""
    text = data[:MAX_OUTPUT_LEN].decode(errors="replace")
    return text + "..." if len(data) > MAX_OUTPUT_LEN else text


def timeout_output(timeout: int, output: str) -> str:
    """Docker's message for a probe cancelled at its timeout."""
    msg = f"Health check exceeded timeout ({go_duration(timeout)})"
    return f"{msg}: {output}" if output else msg


def status_suffix(h: Health) -> str:
    """What `docker ps` appends to "Up ...": `health: starting`, `healthy`, `unhealthy`."""
    return "health: starting" if h.status == STARTING else h.status


def _fraction(value: int, unit: int) -> str:
    whole, frac = divmod(value, unit)
    if not frac:
        return str(whole)
    digits = str(frac).rjust(len(str(unit)) - 1, "0").rstrip("0")
    return f"{whole}.{digits}"


def go_duration(ns: int) -> str:
    """Go's `time.Duration.String()`: 300ms, 1.5s, 1m30s, 1h0m0s."""
    if ns == 0:
        return "0s"
    sign, u = ("-" if ns < 0 else ""), abs(ns)
    if u < 1_000:
        return f"{sign}{u}ns"
    if u < 1_000_000:
        return f"{sign}{_fraction(u, 1_000)}µs"
    if u < SECOND:
        return f"{sign}{_fraction(u, 1_000_000)}ms"
    hours, rest = divmod(u, 3600 * SECOND)
    minutes, rest = divmod(rest, 60 * SECOND)
    text = _fraction(rest, SECOND) + "s"
    if hours:
        text = f"{hours}h{minutes}m{text}"
    elif minutes:
        text = f"{minutes}m{text}"
    return sign + text
