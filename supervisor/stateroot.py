"""The state root's own directories and files: reachable by root alone.

Everything of a container sits on the host under the state root: its merged root and
writable layer, the image layers below it, its volumes.  Were any of it reachable by
another host user, a container (root inside, with no user namespace) could `chmod 4755`
a copy of a shell in its /tmp and user `nobody` could run that from
`containers/<id>/rootfs/tmp/` (or `upper/`, or an imported layer under `layers/`) and
be root; and `-e DB_PASSWORD=...` would be readable in corral.db and config.json.

The defence is Docker's: the way in is closed, not the content.  The root and every
directory of ours under it (`containers/`, each `containers/<id>/`, `layers/`,
`volumes/` and each `volumes/<name>/`, `images/`, `runc/`, `netns/`, `tmp/`) are 0700
(Docker: 0710 root:root, group for its user-namespace remapping, which corral does
not do).  Content below them keeps the modes the image or container gave it: an upper
or layer directory is the container's `/`, a volume's `_data` is its mount's root,
`hosts` and `resolv.conf` are read by whatever user the container runs as.  That works
because runc opens bind sources and the bundle as root before `pivot_root`, and after
it no path a container process walks goes through our directories.

Nor can the container root be mounted `nosuid`: it is the mount the container runs
from, and setuid programs (`su`, `ping`, `sudo`) must work inside it, as under Docker.
`nosuid,nodev,noexec` goes on the mounts only the daemon uses (the build's COPY/ADD
views, `build/builder.py`).

Files holding a container's environment or other secrets (each config.json, the
json-file logs; corral.db and its -wal and -shm, which `metadata/database.py` makes 0600)
are 0600 too, so the parents are not the only wall.  The daemon's umask stays 022
rather than 077: runc and the layer unpacker create directories inside container
roots, whose modes must stay the image's.

`prepare` runs at every start: it makes the skeleton, closes what an older corral (all
0755/0644) left open, and sweeps tmp/, where nothing outlives a daemon; a sweep failure
is logged, never fatal (a tree nobody can remove must not keep the daemon down).
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

import structlog

from supervisor.rmtree import remove_tree

log = structlog.get_logger("corral.stateroot")

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600

#: Directories of ours directly under the root.
SKELETON = ("containers", "images", "layers", "volumes", "runc", "netns", "tmp")
#: Directories whose every child directory is one of ours (a container's, a volume's).
PER_OBJECT = ("containers", "volumes")


def is_secret_file(name: str) -> bool:
    """A file in `containers/<id>/` that holds the environment or the output."""
    return name == "config.json" or "-json.log" in name


def make_private_dir(path: Path) -> None:
    """`path` exists as a directory only root can enter (an existing one is closed).

    A symlink is followed: an admin may have put the root or `layers/` on another
    disk that way, and only root can make one in a directory of ours.
    """
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, PRIVATE_DIR)
    st = os.stat(path)
    if not stat.S_ISDIR(st.st_mode):
        raise NotADirectoryError(f"{path} is not a directory")
    if stat.S_IMODE(st.st_mode) != PRIVATE_DIR:
        os.chmod(path, PRIVATE_DIR)


def open_to_group(path: Path, gid: int) -> None:
    """`userns-remap`: a private directory the range's root may pass through (0710,
    group its gid, as dockerd's remapped root), so runc, joined to the container's
    user namespace, reaches the rootfs, /etc files and volumes below it.  No other
    host user has that gid; the next start without remap closes it again."""
    os.chown(path, 0, gid)
    os.chmod(path, 0o710)


def write_private_file(path: Path, data: bytes) -> None:
    """Write `path` readable by root alone (also when it existed with wider modes)."""
    fd = os.open(
        path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, PRIVATE_FILE
    )
    try:
        os.fchmod(fd, PRIVATE_FILE)
        with os.fdopen(fd, "wb", closefd=False) as f:
            f.write(data)
    finally:
        os.close(fd)


def prepare(root: Path) -> None:
    """Make the state root's skeleton private, fix an older root's modes, sweep tmp/."""
    root.mkdir(parents=True, exist_ok=True)
    make_private_dir(root)
    for name in SKELETON:
        make_private_dir(root / name)
    for name in PER_OBJECT:
        for entry in os.scandir(root / name):
            if entry.is_dir(follow_symlinks=False):
                make_private_dir(Path(entry.path))
    for entry in os.scandir(root / "containers"):
        if entry.is_dir(follow_symlinks=False):
            for f in os.scandir(entry.path):
                if is_secret_file(f.name) and f.is_file(follow_symlinks=False):
                    _close_file(Path(f.path))
    sweep_tmp(root)


def _close_file(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        st = os.lstat(path)
        if stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) & 0o077:
            os.chmod(path, stat.S_IMODE(st.st_mode) & ~0o077)


def sweep_tmp(root: Path) -> None:
    """Empty tmp/ (uploads, unpacks and builds in flight when the last daemon died).

    Mounts a crashed build left under it are detached first.  Every failure is
    logged and the sweep goes on: the daemon must start whatever tmp/ holds.
    """
    from supervisor.runtime.mountinfo import read_mountinfo
    from supervisor.runtime.rootfs import unmount

    tmp = root / "tmp"
    base = os.path.realpath(tmp) + "/"
    try:
        mounts = [m.mount_point for m in read_mountinfo() if m.mount_point.startswith(base)]
        for mp in sorted(mounts, key=len, reverse=True):
            unmount(Path(mp))
    except Exception as exc:  # noqa: BLE001 - a sweep never stops the daemon
        log.warning("stateroot.sweep_unmount_failed", path=str(tmp), error=str(exc))
    try:
        entries = [e.path for e in os.scandir(tmp)]
    except OSError as exc:
        log.warning("stateroot.sweep_failed", path=str(tmp), error=str(exc))
        return
    for path in entries:
        try:
            remove_tree(path)
        except Exception as exc:  # noqa: BLE001 - a sweep never stops the daemon
            log.warning("stateroot.sweep_failed", path=path, error=str(exc))
