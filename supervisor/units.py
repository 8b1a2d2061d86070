"""Docker's go-units for people: durations as `docker ps` prints them, Go's durations read.

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


_DUR = r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)"  # compiled on first use (CLI start)
_DUR_NS = {"ns": 1, "us": 10**3, "µs": 10**3, "μs": 10**3, "ms": 10**6, "s": 10**9,
           "m": 60 * 10**9, "h": 3600 * 10**9}


def go_duration_ns(text: str) -> int:
    """Go's time.ParseDuration (`1m30s`, `500ms`, `-1h`) → nanoseconds."""
    import re  # here, not at import: the CLI's start path imports this module

    s = text
    sign = 1
    if s[:1] in ("-", "+"):
        sign = -1 if s[0] == "-" else 1
        s = s[1:]
    if s == "0":
        return 0
    if not s:
        raise ValueError(f'time: invalid duration "{text}"')
    total = 0.0
    pos = 0
    while pos < len(s):
        m = re.compile(_DUR).match(s, pos)
        if not m:
            if re.match(r"(\d+(?:\.\d*)?|\.\d+)$", s[pos:]):
                raise ValueError(f'time: missing unit in duration "{text}"')
            raise ValueError(f'time: invalid duration "{text}"')
        total += float(m.group(1)) * _DUR_NS[m.group(2)]
        pos = m.end()
    return sign * int(total)
