"""`corral kube play [--down] FILE...`: carry out `kube/play.py`'s plan through the API.

All of it or nothing: every document is checked, every image looked up and every
name checked free before the first create; if a create or start fails anyway, what
this play made is removed again before the error is reported.
"""

from __future__ import annotations

import contextlib
import json
import os
import re

from supervisor.api.client import ApiError, quote
from supervisor.cli.context import CliError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from supervisor.cli.context import Cli
    from supervisor.kube.play import Plan

_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")


def _load(files: list[str]) -> Plan:
    import yaml

    from supervisor.kube import play as core

    docs = []
    for file in files:
        try:
            with open(file, encoding="utf-8") as f:
                text = f.read()
        except OSError as exc:
            raise CliError(f"{file}: {exc.strerror}") from None
        try:
            loaded = list(yaml.safe_load_all(text))
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark
            where = f"{file}:{mark.line + 1}:{mark.column + 1}" if mark else file
            raise CliError(f"{where}: {exc.problem}") from None
        except yaml.YAMLError as exc:
            raise CliError(f"{file}: {exc}") from None
        try:
            docs += core.documents(file, loaded)
        except core.PlayError as exc:
            raise CliError(str(exc)) from None
    try:
        return core.plan(docs)
    except core.PlayError as exc:
        raise CliError(str(exc)) from None


def play(cli: Cli, files: list[str], *, down: bool) -> int:
    plan = _load(files)
    if down:
        return _down(cli, plan)
    for note in plan.notes:
        cli.err(f"WARNING: {note}")
    _preflight(cli, plan)
    made_containers: list[str] = []
    made_volumes: list[str] = []
    try:
        for vol in plan.volumes:
            _volume(cli, vol.name, vol.labels, vol.files, vol.shared, made_volumes)
        for pod in plan.pods:
            for c in (pod.infra, *pod.members):
                created = cli.client.post("/containers/create", {"name": c.name}, c.body)
                made_containers.append(str(created["Id"]))
                cli.client.post(f"/containers/{created['Id']}/start")
            cli.out(f"pod/{pod.name}")
    except (ApiError, CliError, OSError):
        for cid in reversed(made_containers):
            _quiet_remove(cli, f"/containers/{cid}", {"force": True, "v": True})
        for name in reversed(made_volumes):
            _quiet_remove(cli, f"/volumes/{quote(name)}", {"force": True})
        raise
    return 0


def _preflight(cli: Cli, plan: Plan) -> None:
    for image in plan.images():
        try:
            cli.client.get(f"/images/{quote(image)}/json")
        except ApiError as exc:
            if exc.status == 404:
                raise CliError(f"image {image} is not on this corral (pull, load or build "
                               "it first)") from None
            raise
    for name in plan.container_names():
        try:
            cli.client.get(f"/containers/{quote(name)}/json")
        except ApiError as exc:
            if exc.status == 404:
                continue
            raise
        raise CliError(f"container name {name} is in use: `kube play --down` the files "
                       "first (a second play does not update yet)")
    for vol in plan.volumes:
        if vol.shared:
            continue
        if _volume_info(cli, vol.name) is not None:
            raise CliError(f"volume {vol.name} already exists: `kube play --down` first")


def _volume_info(cli: Cli, name: str) -> dict[str, Any] | None:
    try:
        found: dict[str, Any] = cli.client.get(f"/volumes/{quote(name)}")
    except ApiError as exc:
        if exc.status == 404:
            return None
        raise
    return found


def _volume(cli: Cli, name: str, labels: dict[str, str], files: dict[str, bytes],
            shared: bool, made: list[str]) -> None:
    """Make the volume (a claim that exists already is used as it is, and kept)."""
    if shared and _volume_info(cli, name) is not None:
        return
    vol = cli.client.post("/volumes/create", None,
                          {"Name": name, "Driver": "local", "Labels": labels}) or {}
    made.append(name)
    if not files:
        return
    # ConfigMap/Secret contents as files: the CLI runs on the daemon's host as root
    # (the socket is root's alone), so it writes them into the new volume directly.
    root = str(vol.get("Mountpoint") or "")
    if not root or not os.path.isdir(root):
        raise CliError(f"volume {name}: its directory is not reachable from this host")
    for key, data in sorted(files.items()):
        if not _KEY.match(key) or key in (".", ".."):
            raise CliError(f"volume {name}: key {key!r} is not a valid file name")
        fd = os.open(os.path.join(root, key), os.O_WRONLY | os.O_CREAT | os.O_EXCL
                     | os.O_NOFOLLOW, 0o644)
        with os.fdopen(fd, "wb") as f:
            f.write(data)


def _quiet_remove(cli: Cli, path: str, query: dict[str, Any]) -> None:
    with contextlib.suppress(ApiError):
        cli.client.delete(path, query)


def _down(cli: Cli, plan: Plan) -> int:
    """Remove what a play of these files made: containers and volumes of the plan's
    names that carry play's label (a claim's volume that existed before is kept)."""
    from supervisor.kube.play import PLAYED

    filters = json.dumps({"label": [f"{PLAYED}=true"]})
    listed = cli.client.get("/containers/json", {"all": True, "filters": filters}) or []
    ours = {str(n).lstrip("/"): c["Id"] for c in listed for n in c.get("Names") or []}
    for pod in plan.pods:
        for c in (*pod.members, pod.infra):
            if c.name in ours:
                cli.client.delete(f"/containers/{ours[c.name]}", {"force": True, "v": True})
        cli.out(f"pod/{pod.name}")
    for vol in plan.volumes:
        info = _volume_info(cli, vol.name)
        if info is not None and (info.get("Labels") or {}).get(PLAYED) == "true":
            cli.client.delete(f"/volumes/{quote(vol.name)}", {"force": True})
    return 0
