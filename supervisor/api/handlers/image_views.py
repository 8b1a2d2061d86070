"""Docker's JSON views of an image (`GET /images/{name}/json`, `/history`, the list
rows): Docker's wire shapes live at the API edge, the store hands out typed records."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import trio

from supervisor.images import oci
from supervisor.images.records import ImageUser, InUse
from supervisor.images.store import ImageStore


def inspect(store: ImageStore, s: str) -> dict[str, Any]:
    """`GET /images/{name}/json` in Docker's shape."""
    d = store.details(s)
    rec, doc = d.record, d.config
    c: dict[str, Any] = doc.get("config") or {}
    config: dict[str, Any] = {
        "Hostname": "",
        "Domainname": "",
        "User": c.get("User", ""),
        "AttachStdin": False,
        "AttachStdout": False,
        "AttachStderr": False,
        "Tty": False,
        "OpenStdin": False,
        "StdinOnce": False,
        "Env": c.get("Env"),
        "Cmd": c.get("Cmd"),
        "Image": "",
        "Volumes": c.get("Volumes"),
        "WorkingDir": c.get("WorkingDir", ""),
        "Entrypoint": c.get("Entrypoint"),
        "OnBuild": c.get("OnBuild"),
        "Labels": c.get("Labels"),
    }
    for key in ("ExposedPorts", "StopSignal", "Healthcheck", "Shell", "ArgsEscaped"):
        if c.get(key) is not None:
            config[key] = c[key]
    lowers = [str(store.layer_dir(x)) for x in reversed(rec.layers)]
    last_tag = d.last_tag_time
    out: dict[str, Any] = {
        "Id": rec.id,
        "RepoTags": rec.repo_tags,
        "RepoDigests": rec.repo_digests,
        "Parent": rec.parent or "",
        "Comment": doc.get("comment", ""),
        "Created": doc.get("created", oci.rfc3339_nano(int(rec.created * 1e9))),
        "DockerVersion": "",
        "Author": doc.get("author", ""),
        "Config": config,
        "Architecture": doc.get("architecture", ""),
        "Os": doc.get("os", "linux"),
        "Size": rec.size,
        "GraphDriver": {"Name": "overlay2", "Data": {"LowerDir": ":".join(lowers)}},
        "RootFS": {"Type": "layers", "Layers": rec.layers},
        "Metadata": {
            "LastTagTime": oci.rfc3339_nano(int(last_tag * 1e9))
            if last_tag
            else "0001-01-01T00:00:00Z"
        },
    }
    if doc.get("variant"):
        out["Variant"] = doc["variant"]
    return out


def history(store: ImageStore, s: str) -> list[dict[str, Any]]:
    """`GET /images/{name}/history`: newest first, one row per history entry; the
    rows of committed parents carry the parent's ID and tags, the rest `<missing>`."""
    d = store.details(s)
    layers = d.layer_sizes
    rows: list[dict[str, Any]] = []
    n = 0
    for h in d.config.get("history", []):
        size = 0
        if not h.get("empty_layer") and n < len(layers):
            size = layers[n][1]
            n += 1
        created = h.get("created")
        rows.insert(
            0,
            {
                "Id": "<missing>",
                "Created": int(oci.parse_rfc3339(created)) if created else 0,
                "CreatedBy": h.get("created_by", ""),
                "Tags": None,
                "Size": size,
                "Comment": h.get("comment", ""),
            },
        )
    cur: str | None = d.record.id
    for row in rows:
        if cur is None:
            break
        row["Id"] = cur
        row["Tags"] = store.tags_of(cur) or None
        try:
            cur = store.resolve(cur).parent
        except Exception:  # noqa: BLE001 - a parent removed meanwhile ends the chain
            cur = None
    return rows


def list_row(store: ImageStore, rec_id: str, created: float, size: int,
             tags: list[str]) -> dict[str, Any]:
    """One `GET /images/json` entry."""
    cfg = store.config(rec_id).get("config") or {}
    return {
        "Id": rec_id,
        "ParentId": "",
        "RepoTags": tags,
        "RepoDigests": store.pulled_digests(rec_id),
        "Created": int(created),
        "Size": size,
        "SharedSize": -1,
        "VirtualSize": size,
        "Labels": cfg.get("Labels") or {},
        "Containers": -1,
    }


def in_use_on_trio(image_user: Callable[[str], str | ImageUser | None]) -> InUse:
    """The engine's `image_user` for a store verb in a worker thread: the container
    table belongs to the trio thread, so the question is asked there."""

    def in_use(image_id: str) -> ImageUser | str | bool | None:
        return trio.from_thread.run_sync(image_user, image_id)

    return in_use
