"""Docker's JSON progress messages for pulls and pushes (`{"status":"Downloading",
"progressDetail":{"current":..,"total":..},"progress":"[==>  ] 1.2MB/3MB","id":".."}`).

The wire shape, kept in one place for the two edges that speak it: the image API
(`api/handlers/images_pull.py`) and the builder's FROM pull (`build/builder.py`).
"""

from __future__ import annotations

from typing import Any

from supervisor.distribution.pull import Progress

_BAR = 50


def human_size(n: float) -> str:
    """go-units HumanSize: decimal units, 4 significant digits (`1.024kB`, `2.81MB`)."""
    units = ["B", "kB", "MB", "GB", "TB", "PB"]
    i = 0
    while n >= 1000 and i < len(units) - 1:
        n /= 1000
        i += 1
    return f"{n:.4g}{units[i]}"


def progress_bar(current: int, total: int) -> str:
    """jsonmessage's JSONProgress.String() for a non-terminal width."""
    if total <= 0:
        return human_size(current)
    filled = min(_BAR, int(_BAR * current / total))
    arrow = ">" if filled < _BAR else ""
    bar = "=" * filled + arrow + " " * max(0, _BAR - filled - len(arrow))
    return f"[{bar}] {human_size(current)}/{human_size(total)}"


def message(p: Progress) -> dict[str, Any]:
    """One Progress as Docker's JSON message."""
    if p.aux is not None:
        return {"progressDetail": {}, "aux": p.aux}
    out: dict[str, Any] = {"status": p.status}
    if p.id is not None and not p.status.startswith("Pulling from"):
        out["progressDetail"] = {}
    if p.current is not None and p.total is not None and p.status != "Extracting":
        out["progressDetail"] = {"current": p.current, "total": p.total}
        out["progress"] = progress_bar(p.current, p.total)
    if p.id is not None:
        out["id"] = p.id
    return out
