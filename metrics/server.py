"""`/metrics` and `/healthz` over TCP, served in the daemon's nursery.

It reuses the API's sans-I/O HTTP core and connection loop (`supervisor/httpcore/server.py`,
`supervisor/api/server.py`) with a router of its own holding two routes.  The exporter
reads engine state on the trio thread and its files and text in a worker thread
(`Exporter.scrape`), so the API keeps answering during a scrape of many containers.
"""

from __future__ import annotations

import errno

import structlog
import trio

from metrics.exporter import Exporter
from supervisor.api.router import (
    ApiRequest,
    ApiResponse,
    FixedResponse,
    Router,
    TextResponse,
)
from supervisor.api.server import _Connection

log = structlog.get_logger("corral.metrics")


def parse_addr(addr: str) -> tuple[str, int]:
    """`host:port`, `[v6]:port` or `:port` (all addresses); ValueError names the culprit."""
    host, sep, port = addr.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"invalid address {addr!r}: expected host:port, e.g. 127.0.0.1:9323")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host or "", int(port)


def build_metrics_router(exporter: Exporter) -> Router:
    router = Router(ping=False)

    @router.route("GET", "/metrics")
    async def metrics(req: ApiRequest) -> ApiResponse:
        body, content_type = await exporter.scrape(req.header("accept"))
        return FixedResponse(body, content_type)

    @router.route("GET", "/healthz")
    async def healthz(req: ApiRequest) -> ApiResponse:
        return TextResponse("ok\n")

    return router


async def serve_metrics(
    addr: str,
    exporter: Exporter,
    *,
    task_status: trio.TaskStatus[tuple[str, int] | None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until cancelled; reports the bound (host, port), or None if it could not bind.

    A port already in use is logged, not fatal: the daemon's containers matter more than
    its metrics endpoint.
    """
    host, port = parse_addr(addr)
    try:
        listeners = await trio.open_tcp_listeners(port, host=host or None)
    except OSError as e:
        log.error("metrics.listen_failed", addr=addr, error=e.strerror or str(e),
                  in_use=e.errno == errno.EADDRINUSE)  # fmt: skip
        task_status.started(None)
        return
    router = build_metrics_router(exporter)
    bound = listeners[0].socket.getsockname()
    log.info("metrics.listening", addr=f"{bound[0]}:{bound[1]}")

    async def handle(stream: trio.SocketStream) -> None:
        await _Connection(stream, router).run()

    async with trio.open_nursery() as nursery:
        await nursery.start(trio.serve_listeners, handle, listeners)
        task_status.started((str(bound[0]), int(bound[1])))
