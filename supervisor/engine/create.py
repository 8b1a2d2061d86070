"""What a create request means: the image's config merged with the user's, and mounts.

Pure functions over Docker-shaped dicts, so every rule is tested without a container.
The merge follows Docker's daemon (`daemon/create.go` + `runconfig` merge): the user's
values win, Env and Labels merge by key, and an Entrypoint given by the user drops the
image's Cmd.
"""

from __future__ import annotations

from typing import Any

from supervisor.engine.paths import is_clean_container_path
from supervisor.engine.volumes import VOLUME_NAME_RE
from supervisor.errors import InvalidArgument
from supervisor.metadata.containers import MountPoint
from supervisor.supervise import healthstate

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _env_key(entry: str) -> str:
    return entry.split("=", 1)[0]


def merge_env(image_env: list[str] | None, user_env: list[str] | None) -> list[str]:
    """Image env first, user entries replacing same-named ones, order kept."""
    merged: dict[str, str] = {}
    for entry in (image_env or []) + (user_env or []):
        key = _env_key(entry)
        if not key:
            raise InvalidArgument(f"invalid environment variable: {entry}")
        merged[key] = entry
    if "PATH" not in merged:
        merged = {"PATH": DEFAULT_PATH, **merged}
    return list(merged.values())


def merge_config(image_config: dict[str, Any], user: dict[str, Any]) -> dict[str, Any]:
    """The container's `Config`: the user's create body over the image's config.

    `image_config` is the OCI image config's `config` object (Docker-cased keys).
    """
    img = image_config or {}
    cfg: dict[str, Any] = {
        "Hostname": user.get("Hostname") or "",
        "Domainname": user.get("Domainname") or "",
        "User": user.get("User") or img.get("User") or "",
        "AttachStdin": bool(user.get("AttachStdin")),
        "AttachStdout": bool(user.get("AttachStdout")),
        "AttachStderr": bool(user.get("AttachStderr")),
        "Tty": bool(user.get("Tty")),
        "OpenStdin": bool(user.get("OpenStdin")),
        "StdinOnce": bool(user.get("StdinOnce")),
        "Env": merge_env(img.get("Env"), user.get("Env")),
        "Image": user.get("Image") or "",
        "WorkingDir": user.get("WorkingDir") or img.get("WorkingDir") or "",
        "Labels": {**(img.get("Labels") or {}), **(user.get("Labels") or {})},
        "StopSignal": user.get("StopSignal") or img.get("StopSignal") or "",
        "ExposedPorts": {**(img.get("ExposedPorts") or {}), **(user.get("ExposedPorts") or {})}
        or None,
        "Volumes": {**(img.get("Volumes") or {}), **(user.get("Volumes") or {})} or None,
        "Healthcheck": healthstate.merge(img.get("Healthcheck"), user.get("Healthcheck")),
        "OnBuild": None,
    }
    if user.get("StopTimeout") is not None:
        cfg["StopTimeout"] = user["StopTimeout"]
    user_ep = user.get("Entrypoint")
    user_cmd = user.get("Cmd")
    if isinstance(user_ep, str):
        user_ep = [user_ep]
    if isinstance(user_cmd, str):
        user_cmd = ["/bin/sh", "-c", user_cmd]
    if user_ep is not None:
        # `--entrypoint ""` arrives as [""]: it clears the image's entrypoint.
        entrypoint = [a for a in user_ep if a != ""] if user_ep == [""] else list(user_ep)
        cmd = list(user_cmd) if user_cmd else []
    else:
        entrypoint = list(img.get("Entrypoint") or [])
        cmd = list(user_cmd) if user_cmd else list(img.get("Cmd") or [])
    cfg["Entrypoint"] = entrypoint or None
    cfg["Cmd"] = cmd or None
    return cfg


def command_line(cfg: dict[str, Any]) -> tuple[str, list[str]]:
    """Docker's Path and Args; a container with neither is refused at create."""
    argv = (cfg.get("Entrypoint") or []) + (cfg.get("Cmd") or [])
    if not argv:
        raise InvalidArgument("no command specified")
    return argv[0], argv[1:]


#: Bind propagation modes (`-v ...:rshared`, `bind-propagation=`); rprivate is the default.
PROPAGATIONS = ("private", "rprivate", "shared", "rshared", "slave", "rslave")
#: `-v` modes corral applies, and those that mean nothing on this host, as for Docker
#: on Linux without SELinux: z/Z (SELinux relabelling), delegated/cached/consistent
#: (macOS file sharing).
_BIND_MODES = {"ro", "rw", "nocopy", "z", "Z", "delegated", "cached", "consistent",
               *PROPAGATIONS}  # fmt: skip


def parse_bind(spec: str) -> MountPoint:
    """One `-v` entry (`HostConfig.Binds`): `name:/dst[:mode]`, `/src:/dst[:mode]`, `/dst`."""
    parts = spec.split(":")
    if len(parts) == 1 and is_clean_container_path(spec):
        # A lone container path is an anonymous volume, as Docker reads `-v /data`.
        return MountPoint(type="volume", destination=spec, anonymous=True)
    if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
        raise InvalidArgument(f"invalid volume specification: '{spec}'")
    src, dst = parts[0], parts[1]
    modes = parts[2].split(",") if len(parts) == 3 else []
    propagation = [m for m in modes if m in PROPAGATIONS]
    bad = [m for m in modes if m not in _BIND_MODES]
    if bad or ("ro" in modes and "rw" in modes) or len(propagation) > 1:
        raise InvalidArgument(f"invalid mode: {parts[2]} in volume specification '{spec}'")
    if not is_clean_container_path(dst):
        raise InvalidArgument(
            f"invalid volume specification: '{spec}': invalid mount config: "
            "destination must be an absolute path other than / without '..'"
        )
    ro = "ro" in modes
    if src.startswith("/"):
        if ".." in src.split("/"):
            raise InvalidArgument(f"invalid volume specification: '{spec}': '..' in source")
        return MountPoint(type="bind", source=src, destination=dst, read_only=ro,
                          propagation=propagation[0] if propagation else "")  # fmt: skip
    if propagation:  # dockerd: propagation is a bind's
        raise InvalidArgument(f"invalid mode: {parts[2]} in volume specification '{spec}'")
    if not VOLUME_NAME_RE.match(src):
        raise InvalidArgument(
            f"invalid volume specification: '{spec}': \"{src}\" includes invalid characters "
            "for a local volume name; to bind a host directory, use an absolute path"
        )
    return MountPoint(
        type="volume", name=src, destination=dst, read_only=ro, nocopy="nocopy" in modes
    )


def parse_mount(m: dict[str, Any]) -> MountPoint:
    """One `--mount` entry (`HostConfig.Mounts`)."""
    kind = m.get("Type") or "volume"
    dst = m.get("Target") or m.get("Destination") or ""
    if not is_clean_container_path(dst):
        raise InvalidArgument(f"invalid mount config for type \"{kind}\": invalid target '{dst}'")
    ro = bool(m.get("ReadOnly"))
    src = m.get("Source") or ""
    if kind == "bind":
        if not src.startswith("/") or ".." in src.split("/"):
            raise InvalidArgument(
                f"invalid mount config for type \"bind\": invalid source '{src}': "
                "must be an absolute path"
            )
        opts = m.get("BindOptions") or {}
        propagation = opts.get("Propagation") or ""
        if propagation not in ("", *PROPAGATIONS):
            raise InvalidArgument(f"invalid propagation mode: {propagation}")
        return MountPoint(type="bind", source=src, destination=dst, read_only=ro,
                          propagation=propagation, non_recursive=bool(opts.get("NonRecursive")))
    if m.get("BindOptions"):
        raise InvalidArgument(
            f'invalid mount config for type "{kind}": field BindOptions must not be specified'
        )
    if kind == "volume":
        if src and not VOLUME_NAME_RE.match(src):
            raise InvalidArgument(f"invalid mount config for type \"volume\": invalid name '{src}'")
        vopts = m.get("VolumeOptions") or {}
        subpath = vopts.get("Subpath") or ""
        if subpath:
            parts = subpath.split("/")
            if not src or subpath.startswith("/") or ".." in parts:
                raise InvalidArgument(
                    f'invalid mount config for type "volume": subpath must be a relative '
                    f"path within the volume{'' if src else ' (and the volume named)'}"
                )
        return MountPoint(
            type="volume",
            name=src,
            destination=dst,
            read_only=ro,
            anonymous=not src,
            nocopy=bool(vopts.get("NoCopy")),
            subpath="/".join(p for p in subpath.split("/") if p not in ("", ".")),
            driver_opts={str(k): str(v) for k, v in
                         ((vopts.get("DriverConfig") or {}).get("Options") or {}).items()},
            volume_labels={str(k): str(v) for k, v in (vopts.get("Labels") or {}).items()},
        )  # fmt: skip
    if kind == "tmpfs":
        if src:
            raise InvalidArgument('invalid mount config for type "tmpfs": source must be empty')
        opts = m.get("TmpfsOptions") or {}
        options = []
        if opts.get("SizeBytes"):
            options.append(f"size={int(opts['SizeBytes'])}")
        if opts.get("Mode"):
            options.append(f"mode={int(opts['Mode']):o}")
        return MountPoint(type="tmpfs", destination=dst, read_only=ro, options=options)
    raise InvalidArgument(f'mount type unknown: "{kind}"')


def parse_tmpfs(dst: str, opts: str) -> MountPoint:
    """One `--tmpfs /path[:opts]` entry (`HostConfig.Tmpfs`)."""
    if not is_clean_container_path(dst):
        raise InvalidArgument(f"invalid tmpfs destination: '{dst}'")
    options = [o for o in opts.split(",") if o] if opts else []
    ro = "ro" in options
    options = [o for o in options if o not in ("ro", "rw")]
    return MountPoint(type="tmpfs", destination=dst, read_only=ro, options=options)


def plan_mounts(config: dict[str, Any], host_config: dict[str, Any]) -> list[MountPoint]:
    """All mounts of a container; image/`-v /path` volumes not otherwise covered become
    anonymous volumes.  Two mounts on one destination are refused, as Docker does."""
    mounts = [parse_bind(b) for b in host_config.get("Binds") or []]
    mounts += [parse_mount(m) for m in host_config.get("Mounts") or []]
    mounts += [parse_tmpfs(d, o) for d, o in (host_config.get("Tmpfs") or {}).items()]
    seen: set[str] = set()
    for m in mounts:
        dst = m.destination.rstrip("/")
        if dst in seen:
            raise InvalidArgument(f"Duplicate mount point: {m.destination}")
        seen.add(dst)
    for dst in config.get("Volumes") or {}:
        if not is_clean_container_path(dst):
            raise InvalidArgument(f"invalid volume specification: '{dst}'")
        if dst.rstrip("/") not in seen:
            mounts.append(MountPoint(type="volume", destination=dst, anonymous=True))
            seen.add(dst.rstrip("/"))
    return mounts


def fill_path_defaults(host_config: dict[str, Any], masked: tuple[str, ...],
                       readonly: tuple[str, ...]) -> None:
    """Store Docker's masked and read-only paths in an unprivileged container's
    HostConfig when the client named none, as Docker does (so inspect shows them);
    a client's own lists (`[]` for `--security-opt systempaths=unconfined`) are kept."""
    for key, default in (("MaskedPaths", masked), ("ReadonlyPaths", readonly)):
        value = host_config.get(key)
        if value is None:
            if not host_config.get("Privileged"):
                host_config[key] = list(default)
            continue
        if not isinstance(value, list) or not all(
            isinstance(p, str) and p.startswith("/") for p in value
        ):
            raise InvalidArgument(f"HostConfig.{key} must be a list of absolute paths")


def check_platform(platform: str, image_config: dict[str, Any]) -> None:
    """`docker run --platform os[/arch[/variant]]` (the create's `platform` query): the
    image must be that platform, as Docker requires; corral runs no emulation."""
    if not platform:
        return
    want = platform.lower().split("/")
    have = [
        str(image_config.get("os") or "linux"),
        str(image_config.get("architecture") or ""),
        str(image_config.get("variant") or ""),
    ]
    if len(want) > 3 or any(w and h and w != h for w, h in zip(want, have, strict=False)):
        shown = "/".join(p for p in have if p)
        raise InvalidArgument(
            f"image's platform ({shown}) does not match the specified platform ({platform}): "
            "corral runs images of the host's platform only"
        )
