"""Swarm-mode routes, answered as Docker answers them on a node that is in no swarm.

corral is one host's engine and never joins a swarm, but clients probe these routes
and rely on Docker's answers: docker-py's `DockerClient.swarm` reads `GET /swarm` and
takes a 503 as "no swarm", `leave_swarm(force=True)` takes a 503 as done, and the
docker CLI prints the daemon's message.  So, as dockerd with no swarm (moby
daemon/cluster: `errNoManager`, `errNoSwarm`), every manager route answers 503 `This
node is not a swarm manager. Use "docker swarm init" ...`, and `leave` 503 `This node
is not part of a swarm`.  `init` and `join`, which dockerd would carry out, answer 503
saying corral has no swarm mode.  A route whose dockerd handler decodes a JSON body
first still does, so a malformed body is a 400 there as in Docker.
"""

from __future__ import annotations

from typing import Final

from supervisor.api.router import ApiRequest, ApiResponse, Handler, Router
from supervisor.engine.engine import Engine
from supervisor.errors import CorralError, InvalidArgument

NOT_A_MANAGER: Final = (
    'This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" '
    "to connect this node to swarm and try again."
)
NOT_IN_A_SWARM: Final = "This node is not part of a swarm"
NO_SWARM_MODE: Final = (
    "corral has no swarm mode: this node cannot init or join a swarm "
    '(run services with "corral compose up")'
)

#: moby's swarm router (api/server/router/swarm): method, template, whether its handler
#: reads a JSON body before asking the cluster, and the answer without a swarm.
ROUTES: Final = (
    ("POST", "/swarm/init", True, NO_SWARM_MODE),
    ("POST", "/swarm/join", True, NO_SWARM_MODE),
    ("POST", "/swarm/leave", False, NOT_IN_A_SWARM),
    ("GET", "/swarm", False, NOT_A_MANAGER),
    ("GET", "/swarm/unlockkey", False, NOT_A_MANAGER),
    ("POST", "/swarm/update", True, NOT_A_MANAGER),
    ("POST", "/swarm/unlock", True, NOT_A_MANAGER),
    ("GET", "/services", False, NOT_A_MANAGER),
    ("GET", "/services/{id}", False, NOT_A_MANAGER),
    ("POST", "/services/create", True, NOT_A_MANAGER),
    ("POST", "/services/{id}/update", True, NOT_A_MANAGER),
    ("DELETE", "/services/{id}", False, NOT_A_MANAGER),
    ("GET", "/services/{id}/logs", False, NOT_A_MANAGER),
    ("GET", "/nodes", False, NOT_A_MANAGER),
    ("GET", "/nodes/{id}", False, NOT_A_MANAGER),
    ("DELETE", "/nodes/{id}", False, NOT_A_MANAGER),
    ("POST", "/nodes/{id}/update", True, NOT_A_MANAGER),
    ("GET", "/tasks", False, NOT_A_MANAGER),
    ("GET", "/tasks/{id}", False, NOT_A_MANAGER),
    ("GET", "/tasks/{id}/logs", False, NOT_A_MANAGER),
    ("GET", "/secrets", False, NOT_A_MANAGER),
    ("POST", "/secrets/create", True, NOT_A_MANAGER),
    ("GET", "/secrets/{id}", False, NOT_A_MANAGER),
    ("DELETE", "/secrets/{id}", False, NOT_A_MANAGER),
    ("POST", "/secrets/{id}/update", True, NOT_A_MANAGER),
    ("GET", "/configs", False, NOT_A_MANAGER),
    ("POST", "/configs/create", True, NOT_A_MANAGER),
    ("GET", "/configs/{id}", False, NOT_A_MANAGER),
    ("DELETE", "/configs/{id}", False, NOT_A_MANAGER),
    ("POST", "/configs/{id}/update", True, NOT_A_MANAGER),
)


class SwarmUnavailable(CorralError):
    """Docker's `notAvailableError` of its cluster code (HTTP 503)."""

    status = 503


def _answer(reads_body: bool, message: str) -> Handler:
    async def handler(req: ApiRequest, **params: str) -> ApiResponse:
        if reads_body:
            body = await req.read_json()
            if body is not None and not isinstance(body, dict):
                raise InvalidArgument(
                    f"invalid JSON: expected an object, got {type(body).__name__}"
                )
        raise SwarmUnavailable(message)

    return handler


def register(router: Router, engine: Engine) -> None:
    for method, template, reads_body, message in ROUTES:
        router.add(method, template, _answer(reads_body, message))
