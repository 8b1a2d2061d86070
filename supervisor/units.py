"""Docker's go-units for people: durations as `docker ps` prints them.

Shared by the daemon (the `Status` field of `GET /containers/json`) and the CLI
(the CREATED column), so both say "About a minute" the same way.  Pure, and cheap to
import: the CLI's start-up path uses it.
"""

from __future__ import annotations


def human_duration(seconds: float) -> str:
    """go-units `HumanDuration` — "Less than a second", "About a minute", "3 hours"."""
    secs = int(seconds)
    if secs < 1:
        return "Less than a second"
    if secs == 1:
        return "1 second"
    if secs < 60:
        return f"{secs} seconds"
    minutes = int(seconds / 60)
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = int(seconds / 3600 + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(seconds / 3600) // 24 // 365} years"
