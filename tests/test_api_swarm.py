"""The swarm routes: what dockerd answers on a node in no swarm, and what clients do with it.

moby daemon/cluster: `errNoManager` (503 "This node is not a swarm manager. Use ...") for
every manager route, `errNoSwarm` (503) for leave; docker-py treats both as "no swarm".
"""

from __future__ import annotations

import json
from typing import Any, cast

import docker
import pytest
from conftest import Daemon

from supervisor.api.handlers import swarm
from supervisor.api.router import FixedResponse, Router
from supervisor.engine.engine import Engine

IMAGE = "busybox:latest"

# dockerd's messages without a swarm (moby daemon/cluster/cluster.go, errors.go)
NOT_A_MANAGER = (
    'This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" '
    "to connect this node to swarm and try again."
)
NOT_IN_A_SWARM = "This node is not part of a swarm"


# -- the docker CLI -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["swarm", "leave"], NOT_IN_A_SWARM),
        (["swarm", "leave", "--force"], NOT_IN_A_SWARM),
        (["swarm", "ca"], NOT_A_MANAGER),
        (["swarm", "update", "--autolock"], NOT_A_MANAGER),
        (["service", "ls"], NOT_A_MANAGER),
        (["service", "create", IMAGE], NOT_A_MANAGER),
        (["node", "ls"], NOT_A_MANAGER),
        (["secret", "ls"], NOT_A_MANAGER),
        (["config", "ls"], NOT_A_MANAGER),
        (["stack", "ls"], NOT_A_MANAGER),
    ],
)
def test_docker_swarm_commands_say_what_docker_says(
    corral: Daemon, args: list[str], message: str
) -> None:
    r = corral.docker(*args)
    assert (r.returncode, r.stderr.strip()) == (1, f"Error response from daemon: {message}")


def test_docker_swarm_init_says_corral_has_no_swarm_mode(corral: Daemon) -> None:
    for args in (["swarm", "init"], ["swarm", "join", "--token", "SWMTKN-x", "10.0.0.1:2377"]):
        r = corral.docker(*args)
        assert r.returncode == 1
        assert r.stderr.startswith("Error response from daemon: corral has no swarm mode"), r
        assert r.stderr.count("\n") == 1


# -- docker-py's swarm calls ----------------------------------------------------------


def test_docker_py_sees_no_swarm_and_leaving_it_succeeds(dk: Any) -> None:
    assert dk.swarm.attrs == {} and dk.swarm.id is None  # Swarm() takes the 503 as "none"
    assert dk.swarm.leave(force=True) is True
    assert dk.api.leave_swarm(force=True) is True
    with pytest.raises(docker.errors.APIError) as leave:
        dk.api.leave_swarm()
    assert (leave.value.status_code, leave.value.explanation) == (503, NOT_IN_A_SWARM)
    with pytest.raises(docker.errors.APIError) as services:
        dk.services.list()
    assert (services.value.status_code, services.value.explanation) == (503, NOT_A_MANAGER)
    with pytest.raises(docker.errors.APIError) as init:
        dk.swarm.init()
    assert init.value.status_code == 503


# -- every route, without a socket ----------------------------------------------------

# moby api/server/router/swarm: (method, path, whether the handler decodes a JSON body)
DOCKER_SWARM_ROUTES = [
    ("POST", "/swarm/init", True), ("POST", "/swarm/join", True),
    ("POST", "/swarm/leave", False), ("GET", "/swarm", False),
    ("GET", "/swarm/unlockkey", False), ("POST", "/swarm/update", True),
    ("POST", "/swarm/unlock", True),
    ("GET", "/services", False), ("GET", "/services/s1", False),
    ("POST", "/services/create", True), ("POST", "/services/s1/update", True),
    ("DELETE", "/services/s1", False), ("GET", "/services/s1/logs", False),
    ("GET", "/nodes", False), ("GET", "/nodes/n1", False), ("DELETE", "/nodes/n1", False),
    ("POST", "/nodes/n1/update", True),
    ("GET", "/tasks", False), ("GET", "/tasks/t1", False), ("GET", "/tasks/t1/logs", False),
    ("GET", "/secrets", False), ("POST", "/secrets/create", True),
    ("GET", "/secrets/x1", False), ("DELETE", "/secrets/x1", False),
    ("POST", "/secrets/x1/update", True),
    ("GET", "/configs", False), ("POST", "/configs/create", True),
    ("GET", "/configs/c1", False), ("DELETE", "/configs/c1", False),
    ("POST", "/configs/c1/update", True),
]  # fmt: skip


def swarm_router() -> Router:
    router = Router()
    swarm.register(router, cast(Engine, None))  # the swarm routes need no engine
    return router


@pytest.mark.parametrize(("method", "path", "reads_body"), DOCKER_SWARM_ROUTES)
async def test_every_swarm_route_answers_503_as_dockerd_without_a_swarm(
    method: str, path: str, reads_body: bool
) -> None:
    router = swarm_router()
    resp = await router.request(method, f"/v1.44{path}", b'{"Name": "x"}' if reads_body else b"")
    assert resp.status == 503 and isinstance(resp, FixedResponse)
    message = json.loads(resp.body)["message"]
    if path in ("/swarm/init", "/swarm/join"):
        assert message.startswith("corral has no swarm mode")
    else:
        assert message == (NOT_IN_A_SWARM if path == "/swarm/leave" else NOT_A_MANAGER)
    if reads_body:  # dockerd decodes the body first: bad JSON is the client's error
        for bad in (b"{", b"[1]"):
            resp = await router.request(method, path, bad)
            assert resp.status == 400, bad
