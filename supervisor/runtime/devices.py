"""A container's device nodes and device cgroup rules: `--device`,
`--device-cgroup-rule` and `--privileged`.

A privileged container sees every device the host has (containerd's
`oci.HostDevices`): each character and block device under /dev becomes an OCI
`linux.devices` entry, which runc recreates in the container's own /dev.  What
containerd skips, we skip: the per-mount pseudo-trees (`pts`, `shm`, `mqueue`, `fd`),
LXC/udev private directories, `console` (runc gives the container its own) and
anything that is not a device node.

`HostConfig.Devices` (`--device HOST[:CONTAINER][:PERMS]`) names host nodes, or a
directory of them, made in the container under another path if asked, each with a
cgroup rule allowing exactly that node with PERMS (moby's `DevicesFromPath`);
`HostConfig.DeviceCgroupRules` (`--device-cgroup-rule 'c 1:3 rwm'`) allows more
(a node the container makes with mknod, say) in the format dockerd reads.  The
checks of the body's shapes are pure; what stats or walks the host's /dev is
blocking: call it from a worker thread (a create's checks stat a few paths).
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from typing import Any

from supervisor.errors import InvalidArgument
from supervisor.runtime.spec import Device

#: dockerd's deviceCgroupRuleRegex: `TYPE MAJOR:MINOR ACCESS`, `*` for any number.
CGROUP_RULE = re.compile(r"^([acb]) ([0-9]+|\*):([0-9]+|\*) ([rwm]{1,3})$")

_INT64_MAX = (1 << 63) - 1


@dataclass(frozen=True)
class DeviceMapping:
    """One `HostConfig.Devices` entry, checked."""

    host: str
    container: str
    permissions: str = "rwm"


def valid_device_mode(mode: str) -> bool:
    """docker's validDeviceMode: r, w and m, each at most once, at least one."""
    return bool(mode) and len(set(mode)) == len(mode) and set(mode) <= set("rwm")


def cgroup_rule(text: str) -> dict[str, Any]:
    """`c 1:3 rwm` → the OCI `linux.resources.devices` rule allowing it (dockerd's
    parsing and messages; `*` is any, which OCI says by leaving the number out)."""
    m = CGROUP_RULE.match(text) if isinstance(text, str) else None
    if m is None:
        raise InvalidArgument(f"invalid device cgroup rule format: '{text}'")
    kind, major, minor, access = m.groups()
    rule: dict[str, Any] = {"allow": True, "type": kind, "access": access}
    for name, value in (("major", major), ("minor", minor)):
        if value == "*":
            continue
        if int(value) > _INT64_MAX:
            raise InvalidArgument(
                f"invalid {name} value in device cgroup rule format: '{text}'"
            )
        rule[name] = int(value)
    return rule


def cgroup_rules(value: Any) -> list[dict[str, Any]]:
    """`HostConfig.DeviceCgroupRules` → OCI rules (null is none)."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidArgument("HostConfig.DeviceCgroupRules must be a list of strings")
    return [cgroup_rule(r) for r in value]


def device_mappings(value: Any) -> list[DeviceMapping]:
    """`HostConfig.Devices` checked: PathOnHost given, PathInContainer absolute
    (PathOnHost when empty), CgroupPermissions a combination of r, w, m ("rwm" when
    empty, as the docker CLI and docker-py send it)."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidArgument("HostConfig.Devices must be a list of device mappings")
    out = []
    for i, d in enumerate(value):
        where = f"HostConfig.Devices[{i}]"
        if not isinstance(d, dict):
            raise InvalidArgument(f"{where} must be an object with PathOnHost")
        host, inside, perms = (
            d.get("PathOnHost"),
            d.get("PathInContainer") or d.get("PathOnHost"),
            d.get("CgroupPermissions") or "rwm",
        )
        if not isinstance(host, str) or not host:
            raise InvalidArgument(f"{where}.PathOnHost: a device path on the host is required")
        if not isinstance(inside, str) or not inside.startswith("/"):
            raise InvalidArgument(f"{where}.PathInContainer: {inside!r} is not an absolute path")
        if not isinstance(perms, str) or not valid_device_mode(perms):
            raise InvalidArgument(
                f"{where}.CgroupPermissions: invalid device mode {perms!r} (r, w and m)"
            )
        out.append(DeviceMapping(host=host, container=os.path.normpath(inside),
                                 permissions=perms))
    return out


def _device(path: str, inside: str) -> Device | None:
    st = os.lstat(path)
    if stat.S_ISCHR(st.st_mode):
        kind = "c"
    elif stat.S_ISBLK(st.st_mode):
        kind = "b"
    else:
        return None
    return Device(
        path=inside,
        type=kind,
        major=os.major(st.st_rdev),
        minor=os.minor(st.st_rdev),
        file_mode=stat.S_IMODE(st.st_mode),
        uid=st.st_uid,
        gid=st.st_gid,
    )


def _rule(d: Device, access: str) -> dict[str, Any]:
    return {"allow": True, "type": d.type, "major": d.major, "minor": d.minor, "access": access}


def devices_from_path(m: DeviceMapping) -> list[Device]:
    """The node(s) a mapping names (moby's `DevicesFromPath`): a symlink is followed,
    a directory gives every device under it at the same relative path.  Blocking."""
    resolved = os.path.realpath(m.host) if os.path.islink(m.host) else m.host
    try:
        device = _device(resolved, m.container)
    except OSError as exc:
        reason = (exc.strerror or str(exc)).lower()
        raise InvalidArgument(
            f'error gathering device information while adding custom device "{m.host}": '
            f"{reason}"
        ) from None
    if device is not None:
        return [device]
    found: list[Device] = []
    if os.path.isdir(resolved):
        for top, dirs, files in os.walk(resolved):
            dirs.sort()
            for name in sorted(files):
                path = os.path.join(top, name)
                try:
                    child = _device(path, m.container + path[len(resolved):])
                except OSError:
                    continue
                if child is not None:
                    found.append(child)
    if not found:
        raise InvalidArgument(
            f'error gathering device information while adding custom device "{m.host}": '
            "not a device node"
        )
    return found


def check_devices(host_config: dict[str, Any]) -> None:
    """Refuse, at create, what `container_devices` would refuse at start (a bad
    rule, a mapping of no device), without walking the host's /dev.  Stats."""
    cgroup_rules(host_config.get("DeviceCgroupRules"))
    for m in device_mappings(host_config.get("Devices")):
        devices_from_path(m)


def container_devices(
    host_config: dict[str, Any],
) -> tuple[list[Device], list[dict[str, Any]]]:
    """A container's `linux.devices` and the cgroup rules to append to Docker's
    defaults, as dockerd's `WithDevices`: privileged → every host device (plus each
    `--device` under another path than its own, the rules allow all anyway), else
    each `--device` with its rule; `--device-cgroup-rule`s last.  Blocking."""
    mappings = device_mappings(host_config.get("Devices"))
    rules = cgroup_rules(host_config.get("DeviceCgroupRules"))
    if host_config.get("Privileged"):
        devices = host_devices()
        for m in mappings:
            if m.host != m.container:
                devices += devices_from_path(DeviceMapping(m.host, m.container, "rwm"))
        return devices, rules
    devices, own_rules = [], []
    for m in mappings:
        for d in devices_from_path(m):
            devices.append(d)
            own_rules.append(_rule(d, m.permissions))
    return devices, [*own_rules, *rules]

SKIPPED_DIRS = frozenset({"pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"})


def host_devices(root: str = "/dev") -> list[Device]:
    """Every char/block device under `root`, sorted by path (stable config.json)."""
    out: list[Device] = []
    _walk(root, out)
    return sorted(out, key=lambda d: d.path)


def _walk(directory: str, out: list[Device]) -> None:
    try:
        entries = list(os.scandir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            if entry.name not in SKIPPED_DIRS:
                _walk(entry.path, out)
            continue
        if entry.name == "console":
            continue
        try:
            st = entry.stat(follow_symlinks=False)
        except FileNotFoundError:  # gone since the listing (a hot-unplugged device)
            continue
        if stat.S_ISCHR(st.st_mode):
            kind = "c"
        elif stat.S_ISBLK(st.st_mode):
            kind = "b"
        else:
            continue  # symlinks, fifos, sockets, regular files
        out.append(
            Device(
                path=entry.path,
                type=kind,
                major=os.major(st.st_rdev),
                minor=os.minor(st.st_rdev),
                file_mode=stat.S_IMODE(st.st_mode),
                uid=st.st_uid,
                gid=st.st_gid,
            )
        )
