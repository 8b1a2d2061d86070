"""A replacement container's create body from the old one's inspect. Pure.

Auto-update makes a container's successor this way (no service file says what it is),
and a rollback makes a replica's predecessor again.  The image's own defaults (Cmd,
Entrypoint, Env, Labels... as the old image set them) are left out, so those of the
image the body names apply, as a `docker run` of it with the same flags would.
"""

from __future__ import annotations

from typing import Any

from config.container import inherit_anonymous_volumes

# image-config keys a container inherits from its image unless its create set them
INHERITED = ("Cmd", "Entrypoint", "WorkingDir", "User", "StopSignal", "Healthcheck",
             "ExposedPorts", "Volumes", "Shell", "OnBuild")
# inspect-only or per-container keys of Config that a create body does not repeat
DROPPED = ("Hostname", "Domainname", "Image")


def clone_body(info: dict[str, Any], old_image: dict[str, Any], image: str) -> dict[str, Any]:
    """A create body for `image` with the old container's own settings (pure)."""
    cfg = dict(info.get("Config") or {})
    base = old_image.get("Config") or {}
    for key in INHERITED:
        if key in cfg and cfg[key] == base.get(key):
            del cfg[key]
    for key in DROPPED:
        cfg.pop(key, None)
    base_env = set(base.get("Env") or [])
    cfg["Env"] = [e for e in cfg.get("Env") or [] if e not in base_env]
    base_labels = base.get("Labels") or {}
    cfg["Labels"] = {
        k: v for k, v in (cfg.get("Labels") or {}).items() if base_labels.get(k) != v
    }
    body: dict[str, Any] = {**cfg, "Image": image, "HostConfig": dict(info.get("HostConfig") or {})}
    short = str(info.get("Id", ""))[:12]
    endpoints: dict[str, Any] = {}
    for net, ep in ((info.get("NetworkSettings") or {}).get("Networks") or {}).items():
        entry: dict[str, Any] = {}
        aliases = [a for a in (ep or {}).get("Aliases") or [] if a != short]
        if aliases:
            entry["Aliases"] = aliases
        if (ep or {}).get("IPAMConfig"):
            entry["IPAMConfig"] = ep["IPAMConfig"]
        endpoints[net] = entry
    if endpoints:
        body["NetworkingConfig"] = {"EndpointsConfig": endpoints}
    inherit_anonymous_volumes(body, list(info.get("Mounts") or []))
    return body


