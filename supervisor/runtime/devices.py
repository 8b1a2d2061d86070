"""The host's device nodes, for `--privileged` (containerd's `oci.HostDevices`).

A privileged container sees every device the host has: each character and block
device under /dev becomes an OCI `linux.devices` entry, which runc recreates in the
container's own /dev.  What containerd skips, we skip: the per-mount pseudo-trees
(`pts`, `shm`, `mqueue`, `fd`), LXC/udev private directories, `console` (runc gives
the container its own) and anything that is not a device node.  Blocking (it walks a
directory): call it from a worker thread.
"""

from __future__ import annotations

import os
import stat

from supervisor.runtime.spec import Device

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
