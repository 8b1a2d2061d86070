"""`POST /images/create?fromImage=` (pull): Docker's JSON progress stream at the edge.

The pull itself is a job of `distribution/jobs.py`; this module turns its `Progress`
records into Docker's messages (`{"status":"Downloading","progressDetail":{...},
"progress":"[==>  ] 1.2MB/3MB","id":"..."}`), answers errors that come before any
output with their HTTP status (404 for an unknown image, as dockerd does) and later
ones in the stream (`{"errorDetail":{"message":...},"error":...}`).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from supervisor.api.router import ApiRequest, ApiResponse, StreamResponse
from supervisor.distribution.auth import parse_registry_auth
from supervisor.distribution.jobs import PullJobs
from supervisor.distribution.manifests import parse_platform
from supervisor.distribution.pull import Progress, Puller
from supervisor.distribution.reference import remote
from supervisor.distribution.transport import HttpClient
from supervisor.engine.engine import Engine
from supervisor.errors import InvalidArgument

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
    out: dict[str, Any] = {"status": p.status}
    if p.id is not None and not p.status.startswith("Pulling from"):
        out["progressDetail"] = {}
    if p.current is not None and p.total is not None and p.status != "Extracting":
        out["progressDetail"] = {"current": p.current, "total": p.total}
        out["progress"] = progress_bar(p.current, p.total)
    if p.id is not None:
        out["id"] = p.id
    return out


def _line(obj: dict[str, Any]) -> bytes:
    return (json.dumps(obj) + "\r\n").encode()


def make_pull(engine: Engine) -> Callable[[ApiRequest], Awaitable[ApiResponse]]:
    """The pull half of `POST /images/create`, with its job table."""
    jobs = PullJobs(Puller(engine.images, HttpClient()), engine.nursery)

    async def pull(req: ApiRequest) -> ApiResponse:
        name = req.query_str("fromImage") or ""
        if not name:
            raise InvalidArgument("fromImage or fromSrc is required")
        target = remote(name, req.query_str("tag") or None)
        plat = req.query_str("platform") or ""
        platform = parse_platform(plat) if plat else None
        creds = parse_registry_auth(req.header("X-Registry-Auth"))
        job = jobs.start(target, platform, creds)
        handed = False
        try:
            await job.started()
            if not job.events and job.error is not None:
                raise job.error
            handed = True
        finally:
            if not handed and job.watchers == 0 and not job.done.is_set():
                job.scope.cancel()  # nobody else waits for it

        async def body() -> AsyncIterator[bytes]:
            async for p in job.watch():
                yield _line(message(p))
            if job.error is not None:
                e = job.error.message
                yield _line({"errorDetail": {"message": e}, "error": e})
            elif job.result is not None:
                engine.events.publish(
                    "image", "pull", job.result.name, {"name": job.result.name}
                )

        return StreamResponse(body(), "application/json")

    return pull



