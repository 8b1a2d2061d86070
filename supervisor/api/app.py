"""The daemon's API: every route, bound to one engine."""

from __future__ import annotations

from supervisor.api.handlers import (
    archive,
    build,
    containers,
    events,
    images,
    images_archive,
    inspection,
    networks,
    rollouts,
    space,
    stats,
    swarm,
    system,
    volumes,
)
from supervisor.api.router import Observer, Router
from supervisor.engine.engine import Engine


def build_router(engine: Engine, observer: Observer | None = None) -> Router:
    router = Router(observer=observer)
    for module in (system, swarm, containers, images, volumes, events, networks, build, stats):
        module.register(router, engine)
    images_archive.register(router, engine)
    archive.register(router, engine)  # cp, export
    inspection.register(router, engine)  # top, diff
    space.register(router, engine)  # container/image prune, system df
    rollouts.register(router, engine)  # corral's own: port switch-over, rollout events
    return router
