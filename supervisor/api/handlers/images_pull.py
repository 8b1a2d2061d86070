"""`POST /images/create?fromImage=` (pull) and `POST /images/{name}/push`: Docker's JSON
progress stream at the edge.

The pull itself is a job of `distribution/jobs.py`; this module turns its `Progress`
records into Docker's messages (`{"status":"Downloading","progressDetail":{...},
"progress":"[==>  ] 1.2MB/3MB","id":"..."}`), answers errors that come before any
output with their HTTP status (404 for an unknown image, as dockerd does) and later
ones in the stream (`{"errorDetail":{"message":...},"error":...}`).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from typing import Any

from supervisor.api.router import ApiRequest, ApiResponse, JsonResponse, StreamResponse
from supervisor.distribution.auth import Credentials, login, parse_registry_auth, server_domain
from supervisor.distribution.hosts import RegistryHosts
from supervisor.distribution.jobs import Job, Jobs
from supervisor.distribution.manifests import parse_platform
from supervisor.distribution.progress import message
from supervisor.distribution.pull import Puller
from supervisor.distribution.push import Pusher
from supervisor.distribution.reference import remote
from supervisor.distribution.search import apply_filters, search
from supervisor.distribution.transport import HttpClient
from supervisor.engine.engine import Engine
from supervisor.errors import InvalidArgument
from supervisor.images.reference import parse as parse_ref


def _line(obj: dict[str, Any]) -> bytes:
    return (json.dumps(obj) + "\r\n").encode()


def make_pull(engine: Engine, jobs: Jobs, puller: Puller
              ) -> Callable[[ApiRequest], Awaitable[ApiResponse]]:
    """The pull half of `POST /images/create`."""

    async def pull(req: ApiRequest) -> ApiResponse:
        name = req.query_str("fromImage") or ""
        if not name:
            raise InvalidArgument("fromImage or fromSrc is required")
        target = remote(name, req.query_str("tag") or None)
        plat = req.query_str("platform") or ""
        platform = parse_platform(plat) if plat else None
        creds = parse_registry_auth(req.header("X-Registry-Auth"))
        # dockerd: a name with no tag (none in fromImage, an empty `tag`) is every tag
        every = not req.query_str("tag") and not parse_ref(name).tag and not target.digest
        work = puller.pull_all if every else puller.pull
        job = await jobs.start(
            ("pull", target, platform, every),
            f"pull {target.repository if every else target.familiar()}",
            partial(work, target, platform=platform, credentials=creds),
        )
        return await job_stream(job, lambda r: engine.events.publish(
            "image", "pull", r.name, {"name": r.name}))

    return pull


def make_push(engine: Engine, jobs: Jobs, pusher: Pusher
              ) -> Callable[[ApiRequest, str], Awaitable[ApiResponse]]:
    """`POST /images/{name}/push?tag=`: an empty tag pushes every tag of the repository."""

    async def push(req: ApiRequest, name: str) -> ApiResponse:
        target = remote(name, req.query_str("tag") or None)
        if target.digest is not None:
            raise InvalidArgument(f"cannot push a digest reference: {name}")
        tags = pusher.tags_to_push(target)
        creds = parse_registry_auth(req.header("X-Registry-Auth"))
        job = await jobs.start(
            ("push", target),
            f"push {target.familiar()}",
            partial(pusher.push, target, tags, credentials=creds),
        )
        return await job_stream(job, lambda results: [
            engine.events.publish("image", "push", f"{target.repository}:{r.tag}",
                                  {"name": f"{target.repository}:{r.tag}"})
            for r in results
        ])

    return push


def make_distribution(puller: Puller) -> Callable[[ApiRequest, str], Awaitable[ApiResponse]]:
    """`GET /distribution/{name}/json`: what the registry has for a name."""

    async def distribution(req: ApiRequest, name: str) -> ApiResponse:
        target = remote(name)
        creds = parse_registry_auth(req.header("X-Registry-Auth"))
        desc, platforms = await puller.describe(target, creds)
        out_platforms = []
        for p in platforms:
            entry: dict[str, Any] = {"architecture": p.architecture, "os": p.os}
            if p.variant:
                entry["variant"] = p.variant
            out_platforms.append(entry)
        return JsonResponse({
            "Descriptor": {"mediaType": desc.media_type, "digest": desc.digest,
                           "size": desc.size},
            "Platforms": out_platforms,
        })

    return distribution


def make_search(http: HttpClient, hosts: RegistryHosts
                ) -> Callable[[ApiRequest], Awaitable[ApiResponse]]:
    """`GET /images/search?term=&limit=&filters=`."""

    async def search_(req: ApiRequest) -> ApiResponse:
        limit = req.query_int("limit", 25) or 25
        filters = req.query_filters()
        apply_filters([], filters)  # a bad filter is refused before any request
        found = apply_filters(await search(http, req.query_str("term") or "", limit,
                                             frozenset(hosts.insecure_names)), filters)
        return JsonResponse([{"name": r.name, "description": r.description,
                              "star_count": r.star_count, "is_official": r.is_official,
                              "is_automated": r.is_automated} for r in found])

    return search_


def make_auth(http: HttpClient, hosts: RegistryHosts
              ) -> Callable[[ApiRequest], Awaitable[ApiResponse]]:
    """`POST /auth`: check credentials against the registry (nothing is kept: clients
    send them again with each pull and push, in X-Registry-Auth); a refresh token the
    registry's token server gave is answered as `IdentityToken`, for the client to keep
    instead of the password."""

    async def auth(req: ApiRequest) -> ApiResponse:
        body = await req.read_json({})
        if not isinstance(body, dict):
            raise InvalidArgument("the body of POST /auth must be a JSON object")
        known = {"username", "password", "serveraddress", "email", "auth", "identitytoken",
                 "registrytoken"}
        unknown = sorted(set(body) - known)
        if unknown:
            raise InvalidArgument(f"unknown field in POST /auth: {unknown[0]}")
        if body.get("registrytoken"):
            raise InvalidArgument("registry tokens are not supported in POST /auth")
        user, password = str(body.get("username") or ""), str(body.get("password") or "")
        if body.get("auth") and not user:
            import base64

            user, _, password = base64.b64decode(str(body["auth"])).decode().partition(":")
        domain = server_domain(str(body.get("serveraddress") or ""))
        creds = Credentials(user, password, str(body.get("identitytoken") or ""))
        refresh = await login(http, hosts.endpoint(domain), creds)
        return JsonResponse({"Status": "Login Succeeded", "IdentityToken": refresh})

    return auth


async def job_stream(job: Job, done: Callable[[Any], object]) -> ApiResponse:
    """Docker's progress stream of `job`: an error before any output is the response's
    status; `done(result)` runs once it succeeded (to publish the event)."""
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
            done(job.result)

    return StreamResponse(body(), "application/json")



