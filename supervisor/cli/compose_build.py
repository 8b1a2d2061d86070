"""`build:` in service files: each service's image made by corral's builder (`POST /build`).

The context is sent as `corral build` sends it (`cli/build.py`'s `context_tar`: numeric
owners, `.dockerignore`, a Dockerfile from outside the context under a private name), so
a service builds exactly as `corral build CONTEXT` would. The image is tagged with the
service's `image:` if it has one, else compose v2's `PROJECT-SERVICE`, plus `build.tags`.

Which services `up` builds, as compose v2 decides: all of those with a build section
with `--build`, none with `--no-build`, else those whose image is missing (and always
those with `pull_policy: build`). A rebuild that yields a new image ID makes `up`
recreate the service's containers (the image ID is compared, not the build section).
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from supervisor.api.client import ApiError, quote
from supervisor.cli.context import CliError

if TYPE_CHECKING:
    from config.model import Project
    from supervisor.cli.context import Cli


def buildable(project: Project, services: list[str]) -> list[str]:
    """Those of `services` (in the project's start order) that have a build section."""
    return [s for s in project.order() if s in services and project.services[s].get("build")]


def query_for(
    project: Project, service: str, df_name: str, overrides: Mapping[str, str | None],
    no_cache: bool, pull: bool = False,
) -> dict[str, Any]:
    """The `POST /build` query for one service (pure)."""
    build = project.services[service]["build"]
    args: dict[str, str | None] = {
        str(k): (None if v is None else str(v)) for k, v in (build.get("args") or {}).items()
    }
    args.update(overrides)
    labels = {str(k): str(v) for k, v in (build.get("labels") or {}).items()}
    tags = [project.image(service), *[str(t) for t in build.get("tags") or []]]
    return {
        "t": tags,
        "dockerfile": df_name,
        "buildargs": json.dumps(args) if args else None,
        "labels": json.dumps(labels) if labels else None,
        "target": build.get("target") or None,
        "nocache": "1" if no_cache or build.get("no_cache") else None,
        "networkmode": build.get("network") or None,
        "pull": "1" if pull or build.get("pull") else None,
        "rm": "1",
    }


def build_service(
    cli: Cli,
    project: Project,
    service: str,
    *,
    build_args: Mapping[str, str | None] | None = None,
    no_cache: bool = False,
    quiet: bool = False,
    pull: bool = False,
) -> str:
    """Build one service's image; returns the image ID. A failure is a CliError naming
    the service and the builder's message."""
    from supervisor.cli.build import PlainProgress, context_tar

    build = project.services[service]["build"]
    ctx = str(build["context"])
    if not os.path.isdir(ctx):
        raise CliError(f'service "{service}": unable to prepare context: path "{ctx}" not found')
    image = project.image(service)
    cli.err(f" Service {service}  Building")
    with tempfile.TemporaryDirectory(prefix="corral-compose-build-") as scratch:
        if "dockerfile_inline" in build:
            dockerfile = os.path.join(scratch, "Dockerfile")
            with open(dockerfile, "w") as f:
                f.write(str(build["dockerfile_inline"]))
        else:
            dockerfile = os.path.join(ctx, str(build.get("dockerfile") or "Dockerfile"))
        with tempfile.TemporaryFile(dir=scratch) as body:
            try:
                df_name = context_tar(ctx, dockerfile, body)
            except CliError as exc:
                raise CliError(f'service "{service}": {exc.message}') from None
            body.seek(0)
            query = query_for(project, service, df_name, build_args or {}, no_cache, pull)
            resp = cli.client.request(
                "POST", "/build", query, body=body, headers={"Content-Type": "application/x-tar"}
            )
            show = PlainProgress(io.StringIO() if quiet else cli.stderr)
            error = show.run(resp.iter_lines())
    if error:
        raise CliError(f'service "{service}" failed to build: {error}')
    info = cli.client.get(f"/images/{quote(image, '/:')}/json")
    cli.err(f" Service {service}  Built")
    return str(info.get("Id", ""))


def image_missing(cli: Cli, project: Project, service: str) -> bool:
    try:
        cli.client.get(f"/images/{quote(project.image(service), '/:')}/json")
    except ApiError as exc:
        if exc.status == 404:
            return True
        raise
    return False


def build_for_up(
    cli: Cli, project: Project, services: list[str], *, build: bool, no_build: bool
) -> None:
    """What `up` builds before converging (see the module's docstring)."""
    if no_build:
        return
    for service in buildable(project, services):
        policy = project.services[service].get("pull_policy")
        if build or policy == "build" or image_missing(cli, project, service):
            build_service(cli, project, service)

