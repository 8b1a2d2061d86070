"""The json-file log's steps in a container's lifecycle (`engine/hooks.py`): its
writer opens when a run begins (a restored run opens its own, after the log is cut
back to its last mark) and the log closes, ending its followers, at remove."""

from __future__ import annotations

from supervisor.engine.hooks import NoHooks
from supervisor.engine.live import Live
from supervisor.metadata.containers import Container
from supervisor.supervise.logs import LogOptions


class LogHooks(NoHooks):
    def __init__(self, live_of: dict[str, Live]) -> None:
        self.live_of = live_of

    def running(self, c: Container, live: Live, *, restored: bool) -> None:
        if not restored:
            live.log.open_writer(LogOptions.from_log_config(c.host_config.get("LogConfig")))

    def removed(self, c: Container, *, volumes: bool) -> None:
        live = self.live_of.get(c.id)
        if live is not None:
            live.log.close()  # followers end after what was written
