"""How records look through the API: Docker's JSON shapes for containers.

Pure functions from engine records to the dicts `docker inspect`, `docker ps` and
docker-py expect, and the `Status` text of `docker ps`.
"""

from __future__ import annotations

import time
from typing import Any

from supervisor.engine.state import Status
from supervisor.engine.timefmt import parse_rfc3339
from supervisor.errors import InvalidArgument
from supervisor.metadata.containers import Container
from supervisor.supervise.healthstate import status_suffix
from supervisor.units import human_duration


def status_parts(c: Container) -> tuple[str, float | None, str]:
    """The `Status` column of `docker ps` as (text before, the time a duration is
    counted from or None, text after): what a cached listing keeps per container,
    the duration alone changing with the clock."""
    st = c.state
    if st.status in (Status.RUNNING, Status.PAUSED):
        if st.status is Status.PAUSED:
            suffix = " (Paused)"
        else:
            suffix = f" ({status_suffix(st.health)})" if st.health is not None else ""
        return "Up ", parse_rfc3339(st.started_at), suffix
    if st.status is Status.RESTARTING:
        return f"Restarting ({st.exit_code}) ", parse_rfc3339(st.finished_at), " ago"
    if st.status is Status.EXITED:
        return f"Exited ({st.exit_code}) ", parse_rfc3339(st.finished_at), " ago"
    if st.status is Status.REMOVING:
        return "Removal In Progress", None, ""
    if st.status is Status.DEAD:
        return "Dead", None, ""
    return "Created", None, ""


def format_status(parts: tuple[str, float | None, str], now: float) -> str:
    before, since, after = parts
    return before if since is None else f"{before}{human_duration(now - since)}{after}"


def status_text(c: Container, now: float | None = None) -> str:
    """The `Status` column of `docker ps`."""
    return format_status(status_parts(c), time.time() if now is None else now)


def labels_of(c: Container) -> dict[str, str]:
    """The labels as Docker's string map, whatever a record stored before the API
    checked types holds (one bad record must not break `ps` for every client)."""
    labels = c.config.get("Labels")
    if not isinstance(labels, dict):
        return {}
    return {str(k): str(v) for k, v in labels.items()}


def command_text(c: Container) -> str:
    # str(): a record stored before the API checked types (`Cmd: [1, 2]`) must not
    # make `GET /containers/json` fail for every client
    return " ".join(str(a) for a in [c.path, *c.args])


def summary_halves(
    c: Container,
    ports: list[dict[str, Any]] | None = None,
    networks: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """One entry of `GET /containers/json` but its `Status`: the keys before it and
    the keys after it."""
    return {
        "Id": c.id,
        "Names": ["/" + c.name],
        "Image": c.image,
        "ImageID": c.image_id,
        "Command": command_text(c),
        "Created": int(parse_rfc3339(c.created)),
        "Ports": ports or [],
        "Labels": labels_of(c),
        "State": c.state.status.value,
    }, {
        "HostConfig": {"NetworkMode": c.host_config.get("NetworkMode") or "default"},
        "NetworkSettings": {"Networks": networks or {}},
        "Mounts": [m.to_api() for m in c.mounts],
    }


def container_summary(
    c: Container,
    ports: list[dict[str, Any]] | None = None,
    networks: dict[str, Any] | None = None,
    *,
    now: float | None = None,
) -> dict[str, Any]:
    """One entry of `GET /containers/json` (ports and networks from the engine's networks)."""
    head, tail = summary_halves(c, ports, networks)
    return {**head, "Status": status_text(c, now), **tail}


_HOST_CONFIG_DEFAULTS: dict[str, Any] = {
    "Binds": None,
    "NetworkMode": "default",
    "PortBindings": {},
    "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
    "AutoRemove": False,
    "VolumeDriver": "",
    "VolumesFrom": None,
    "CapAdd": None,
    "CapDrop": None,
    "Dns": [],
    "ExtraHosts": None,
    "Privileged": False,
    "PublishAllPorts": False,
    "ReadonlyRootfs": False,
    "Devices": [],
    "DeviceCgroupRules": None,
    "UsernsMode": "",
    "Tmpfs": None,
    "Memory": 0,
    "MemorySwap": 0,
    "NanoCpus": 0,
    "CpuShares": 0,
    "PidsLimit": None,
    "Ulimits": None,
    "Mounts": None,
    "SecurityOpt": None,
    "LogConfig": {"Type": "json-file", "Config": {}},
    "Runtime": "runc",
}


def container_inspect(
    c: Container,
    *,
    container_dir: str,
    layer_dirs: list[str],
    runtime: str,
    network_settings: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """`GET /containers/{id}/json`."""
    host_config = {**_HOST_CONFIG_DEFAULTS, "Runtime": runtime, **c.host_config}
    return {
        "Id": c.id,
        "Created": c.created,
        "Path": c.path,
        "Args": c.args,
        "State": c.state.to_api(),
        "Image": c.image_id,
        "ResolvConfPath": f"{container_dir}/resolv.conf",
        "HostnamePath": f"{container_dir}/hostname",
        "HostsPath": f"{container_dir}/hosts",
        "LogPath": f"{container_dir}/{c.id}-json.log",
        "Name": "/" + c.name,
        "RestartCount": c.state.restart_count,
        "Driver": "overlay2",
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": None,
        "HostConfig": host_config,
        "GraphDriver": {
            "Name": "overlay2",
            "Data": {
                "LowerDir": ":".join(reversed(layer_dirs)),
                "UpperDir": f"{container_dir}/upper",
                "WorkDir": f"{container_dir}/work",
                "MergedDir": f"{container_dir}/rootfs",
            },
        },
        "Mounts": [m.to_api() for m in c.mounts],
        "Config": c.config,
        "NetworkSettings": network_settings
        or {
            "Bridge": "",
            "SandboxID": "",
            "Ports": {},
            "SandboxKey": "",
            "Networks": {},
            "IPAddress": "",
            "Gateway": "",
            "MacAddress": "",
        },
    }


#: the filters dockerd's `ps` accepts (daemon/list.go acceptedPsFilterTags), and the
#: ones corral applies; the rest are refused by name rather than ignored
PS_FILTERS = frozenset(
    {
        *("ancestor", "before", "exited", "id", "isolation", "label", "name", "status"),
        *("health", "since", "volume", "network", "is-task", "publish", "expose"),
    }
)
PS_FILTERS_APPLIED = frozenset({"ancestor", "exited", "id", "label", "name", "status", "volume"})
STATES = ("created", "running", "paused", "restarting", "removing", "exited", "dead")


def check_ps_filters(filters: dict[str, list[str]]) -> None:
    """Refuse what `matches_filters` cannot answer, with dockerd's messages."""
    for key, values in filters.items():
        if key not in PS_FILTERS:
            raise InvalidArgument(f"invalid filter '{key}'")
        if key not in PS_FILTERS_APPLIED:
            raise InvalidArgument(f"the ps filter '{key}' is not supported by corral")
        for value in values:
            if key == "status" and value not in STATES:
                raise InvalidArgument(f"invalid filter 'status={value}'")
            if key == "exited" and not value.lstrip("-").isdigit():
                raise InvalidArgument(f"invalid filter 'exited={value}'")


def matches_filters(c: Container, filters: dict[str, list[str]]) -> bool:
    """`docker ps --filter`: id, name, label, status, ancestor, exited, volume."""
    for key, values in filters.items():
        if not values:
            continue
        if key == "id":
            ok = any(c.id.startswith(v) for v in values)
        elif key == "name":
            ok = any(v.lstrip("/") in c.name for v in values)
        elif key == "label":
            labels = labels_of(c)
            ok = all(
                (labels.get(k) == v) if sep else (k in labels)
                for k, sep, v in (x.partition("=") for x in values)
            )
        elif key == "status":
            ok = c.state.status.value in values
        elif key == "ancestor":
            ok = any(
                v in (c.image, c.image_id)
                or c.image_id.startswith("sha256:" + v)
                or c.image_id.startswith(v)
                for v in values
            )
        elif key == "exited":
            ok = c.state.status is Status.EXITED and str(c.state.exit_code) in values
        elif key == "volume":
            ok = any(m.name in values or m.destination in values for m in c.mounts)
        else:
            continue
        if not ok:
            return False
    return True
