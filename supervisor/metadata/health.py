"""A container's health as its record keeps it (Docker's `State.Health`).

The rules that move it are supervise/healthstate.py's; these are the stored shapes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

STARTING = "starting"
HEALTHY = "healthy"
UNHEALTHY = "unhealthy"


@dataclass(frozen=True)
class ProbeResult:
    """One probe, as Docker's `HealthcheckResult`: times are RFC 3339 with nanoseconds."""

    start: str
    end: str
    exit_code: int
    output: str

    def to_api(self) -> dict[str, Any]:
        return {
            "Start": self.start,
            "End": self.end,
            "ExitCode": self.exit_code,
            "Output": self.output,
        }


@dataclass(frozen=True)
class Health:
    """Docker's `State.Health`: status, consecutive counted failures, last results."""

    status: str = STARTING
    failing_streak: int = 0
    log: tuple[ProbeResult, ...] = field(default_factory=tuple)

    def to_api(self) -> dict[str, Any]:
        return {
            "Status": self.status,
            "FailingStreak": self.failing_streak,
            "Log": [r.to_api() for r in self.log],
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Health:
        """Back from `dataclasses.asdict` (the container record's JSON)."""
        return cls(
            status=str(raw.get("status") or STARTING),
            failing_streak=int(raw.get("failing_streak") or 0),
            log=tuple(ProbeResult(**r) for r in raw.get("log") or ()),
        )
