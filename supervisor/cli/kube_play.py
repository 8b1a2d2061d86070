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
    """Make what the files describe, like `kubectl apply`: a pod already played with
    the same config hash is left running (`unchanged`), one whose hash differs is
    made again (`configured`), a new one is made (`created`), and a Deployment's pod
    no longer in the files (scaled down) is removed (`deleted`)."""
    from supervisor.kube.play import OWNER_LABEL

    plan = _load(files)
    if down:
        return _down(cli, plan)
    for note in plan.notes:
        cli.err(f"WARNING: {note}")
    observed = _observed(cli)
    unchanged, changed = _compare(plan, observed)
    owners = {str(pod.infra.body["Labels"].get(OWNER_LABEL)) for pod in plan.pods}
    planned = {pod.name for pod in plan.pods}
    stale = [name for name, have in observed.items() if name not in planned
             and any((c.get("Labels") or {}).get(OWNER_LABEL) in owners for c in have)]
    ours = {_cname(c) for name in (*unchanged, *changed, *stale) for c in observed[name]}
    kept_volumes = {v for pod in plan.pods if pod.name in unchanged for v in pod.own_volumes}
    _preflight(cli, plan, ours, kept_volumes | {v for pod in plan.pods
                                                  if pod.name in changed
                                                  for v in pod.own_volumes})
    for name in (*changed, *stale):
        _remove_pod(cli, observed[name], name)
        if name in stale:
            cli.out(f"pod/{name} deleted")
    made_containers: list[str] = []
    made_volumes: list[str] = []
    try:
        for vol in plan.volumes:
            if vol.name not in kept_volumes:
                _volume(cli, vol.name, vol.labels, vol.files, vol.shared, made_volumes)
        for pod in plan.pods:
            if pod.name in unchanged:
                cli.out(f"pod/{pod.name} unchanged")
                continue
            for c in (pod.infra, *pod.members):
                created = cli.client.post("/containers/create", {"name": c.name}, c.body)
                made_containers.append(str(created["Id"]))
                cli.client.post(f"/containers/{created['Id']}/start")
            cli.out(f"pod/{pod.name} {'configured' if pod.name in changed else 'created'}")
    except (ApiError, CliError, OSError):
        for cid in reversed(made_containers):
            _quiet_remove(cli, f"/containers/{cid}", {"force": True, "v": True})
        for name in reversed(made_volumes):
            _quiet_remove(cli, f"/volumes/{quote(name)}", {"force": True})
        raise
    return 0


def _cname(c: dict[str, Any]) -> str:
    return str((c.get("Names") or [""])[0]).lstrip("/")


def _observed(cli: Cli) -> dict[str, list[dict[str, Any]]]:
    """The containers earlier plays made, by pod."""
    from supervisor.kube.play import PLAYED
    from supervisor.pods.labels import POD_LABEL

    filters = json.dumps({"label": [f"{PLAYED}=true"]})
    out: dict[str, list[dict[str, Any]]] = {}
    for c in cli.client.get("/containers/json", {"all": True, "filters": filters}) or []:
        pod = (c.get("Labels") or {}).get(POD_LABEL)
        if pod:
            out.setdefault(str(pod), []).append(c)
    return out


def _compare(plan: Plan, observed: dict[str, list[dict[str, Any]]]) -> tuple[set[str], set[str]]:
    """(unchanged, changed) pod names: a pod is unchanged when every one of its planned
    containers exists with the pod's hash, and nothing else is in it."""
    from supervisor.kube.play import CONFIG_HASH

    unchanged: set[str] = set()
    changed: set[str] = set()
    for pod in plan.pods:
        have = observed.get(pod.name)
        if not have:
            continue
        names = {c.name for c in (pod.infra, *pod.members)}
        same = {_cname(c) for c in have} == names and all(
            (c.get("Labels") or {}).get(CONFIG_HASH) == pod.config_hash for c in have)
        (unchanged if same else changed).add(pod.name)
    return unchanged, changed


def _remove_pod(cli: Cli, containers: list[dict[str, Any]], pod: str) -> None:
    """A played pod's containers (members, then the infra) and its own volumes."""
    from supervisor.kube.play import PLAYED
    from supervisor.pods.labels import INFRA_LABEL, POD_LABEL

    for c in sorted(containers, key=lambda c: (c.get("Labels") or {}).get(INFRA_LABEL) == "true"):
        cli.client.delete(f"/containers/{c['Id']}", {"force": True, "v": True})
    filters = json.dumps({"label": [f"{PLAYED}=true", f"{POD_LABEL}={pod}"]})
    for vol in (cli.client.get("/volumes", {"filters": filters}) or {}).get("Volumes") or []:
        cli.client.delete(f"/volumes/{quote(vol['Name'])}", {"force": True})


def _preflight(cli: Cli, plan: Plan, ours: set[str], our_volumes: set[str]) -> None:
    for image in plan.images():
        try:
            cli.client.get(f"/images/{quote(image)}/json")
        except ApiError as exc:
            if exc.status == 404:
                raise CliError(f"image {image} is not on this corral (pull, load or build "
                               "it first)") from None
            raise
    for name in plan.container_names():
        if name in ours:
            continue
        try:
            cli.client.get(f"/containers/{quote(name)}/json")
        except ApiError as exc:
            if exc.status == 404:
                continue
            raise
        raise CliError(f"container name {name} is in use by a container `kube play` did "
                       "not make")
    for vol in plan.volumes:
        if vol.shared or vol.name in our_volumes:
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
    from supervisor.kube.play import OWNER_LABEL, PLAYED

    filters = json.dumps({"label": [f"{PLAYED}=true"]})
    listed = cli.client.get("/containers/json", {"all": True, "filters": filters}) or []
    ours = {str(n).lstrip("/"): c["Id"] for c in listed for n in c.get("Names") or []}
    for pod in plan.pods:
        for c in (*pod.members, pod.infra):
            if c.name in ours:
                cli.client.delete(f"/containers/{ours[c.name]}", {"force": True, "v": True})
        cli.out(f"pod/{pod.name}")
    # a Deployment's pods beyond the replicas the files now say (scaled down since)
    owners = {str(pod.infra.body["Labels"].get(OWNER_LABEL)) for pod in plan.pods}
    planned = {pod.name for pod in plan.pods}
    for name, have in _observed(cli).items():
        if name not in planned and any((c.get("Labels") or {}).get(OWNER_LABEL) in owners
                                       for c in have):
            _remove_pod(cli, have, name)
            cli.out(f"pod/{name}")
    for vol in plan.volumes:
        info = _volume_info(cli, vol.name)
        if info is not None and (info.get("Labels") or {}).get(PLAYED) == "true":
            cli.client.delete(f"/volumes/{quote(vol.name)}", {"force": True})
    return 0
