"""Overlayfs container roots, mounted with mount(2) directly.

The daemon mounts one overlay per container (image layers read-only below, a private
upper/work pair on top) and hands the merged directory to runc as the bundle rootfs.
ctypes rather than `mount -t overlay` because a subprocess per container start costs
a fork+exec and gives us only a string to parse when it fails; errno names the cause.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
from pathlib import Path
from typing import NoReturn

from supervisor.errors import CorralError
from supervisor.rmtree import remove_tree
from supervisor.runtime.mountinfo import read_mountinfo

MNT_DETACH = 2
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_RDONLY = 0x1
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000

#: The kernel copies at most one page of mount data; longer option strings fail.
_MAX_DATA = os.sysconf("SC_PAGE_SIZE") - 1

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.mount.argtypes = [
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_ulong,
    ctypes.c_char_p,
]
_libc.mount.restype = ctypes.c_int
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.umount2.restype = ctypes.c_int


def _check_path(p: Path) -> str:
    s = str(p)
    # ',' separates options and ':' separates lower dirs; neither can be escaped safely
    # on every kernel we care about, so refuse rather than mount the wrong thing.
    if "," in s or ":" in s:
        raise CorralError(f"overlay path contains ',' or ':': {s}")
    return s


def overlay_options(lowers: list[Path], upper: Path, work: Path) -> str:
    """`lowerdir=top:...:bottom,upperdir=...,workdir=...` from bottom→top `lowers`."""
    if not lowers:
        raise CorralError("overlay needs at least one lower directory")
    lower = ":".join(_check_path(p) for p in reversed(lowers))
    return f"lowerdir={lower},upperdir={_check_path(upper)},workdir={_check_path(work)}"


SYS_OPEN_TREE = 428  # x86_64 and aarch64 share the numbers of the new mount API
SYS_MOUNT_SETATTR = 442
OPEN_TREE_CLONE = 1
AT_EMPTY_PATH = 0x1000
AT_FDCWD = -100
MOUNT_ATTR_IDMAP = 0x00100000


class _MountAttr(ctypes.Structure):
    _fields_ = [
        ("attr_set", ctypes.c_uint64),
        ("attr_clr", ctypes.c_uint64),
        ("propagation", ctypes.c_uint64),
        ("userns_fd", ctypes.c_uint64),
    ]


def idmapped_clone(path: Path, userns_fd: int) -> int:
    """A detached clone of the mount at `path`, idmapped through `userns_fd` (files
    owned by host uid 0 show as the namespace's root).  Overlayfs takes it as a lower
    by `/proc/self/fd/N`; closing the fd once the overlay holds it frees it."""
    fd = _libc.syscall(
        SYS_OPEN_TREE, AT_FDCWD, os.fsencode(path), OPEN_TREE_CLONE | os.O_CLOEXEC
    )
    if fd < 0:
        err = ctypes.get_errno()
        raise CorralError(f"open_tree {path}: {os.strerror(err)}")
    attr = _MountAttr(MOUNT_ATTR_IDMAP, 0, 0, userns_fd)
    rc = _libc.syscall(
        SYS_MOUNT_SETATTR, fd, b"", AT_EMPTY_PATH, ctypes.byref(attr), ctypes.sizeof(attr)
    )
    if rc != 0:
        err = ctypes.get_errno()
        os.close(fd)
        raise CorralError(f"idmapped mount of {path}: {os.strerror(err)}")
    return int(fd)


#: Set once a kernel refused `volatile` (older than 5.10): not asked for again.
_volatile_refused = False


def volatile_mark(work: Path) -> Path:
    """What a `volatile` overlay leaves in its workdir (`work/incompat/volatile/dirty`),
    on purpose, at every unmount: while it is there the kernel refuses to mount that
    upper again, volatile or not."""
    return work / "work" / "incompat" / "volatile"


def mount_overlay(
    lowers: list[Path],
    upper: Path,
    work: Path,
    target: Path,
    *,
    host_only: bool = False,
    idmap: Path | None = None,
    read_only: bool = False,
    volatile: bool = False,
) -> None:
    """Mount an overlay of `lowers` (bottom→top) with `upper`/`work` at `target`.

    `upper` and `work` must be on the same filesystem; `target` must exist.  A
    `host_only` overlay (one no container runs from: the daemon only reads and writes
    files in it) is mounted nosuid,nodev,noexec: nothing on it runs setuid, opens a
    device node of the image, or runs at all.  A container's root cannot be: setuid
    programs must work inside it (its protection is the state root's 0700 parents).

    `volatile`, for an upper thrown away with its container (`--rm`, which Podman
    mounts so too): no sync of the upper ever, neither a container's fsync nor,
    above all, the one at unmount, where overlayfs syncs the whole host filesystem
    the upper is on (its sync_fs) while the exiting container's removal waits.  An
    earlier volatile mount's mark is removed first: after a clean unmount nothing
    was lost, and after a crash the upper is one its container's removal discards.
    A kernel without the option (before 5.10) mounts without it.
    """
    if idmap is not None:
        # userns-remap: each lower seen through the range's user namespace
        fds: list[int] = []
        try:
            userns = os.open(idmap, os.O_RDONLY | os.O_CLOEXEC)
            try:
                for lower in lowers:
                    fds.append(idmapped_clone(lower, userns))
            finally:
                os.close(userns)
            mapped = [Path(f"/proc/self/fd/{fd}") for fd in fds]
            mount_overlay(mapped, upper, work, target, host_only=host_only,
                          read_only=read_only, volatile=volatile)
        finally:
            for fd in fds:
                os.close(fd)
        return
    data = overlay_options(lowers, upper, work)
    volatile = volatile and not _volatile_refused
    if len(data) + (len(",volatile") if volatile else 0) > _MAX_DATA:
        raise CorralError(
            f"overlay options for {target} exceed {_MAX_DATA} bytes ({len(lowers)} layers)"
        )
    flags = MS_NOSUID | MS_NODEV | MS_NOEXEC if host_only else 0
    if read_only:
        flags |= MS_RDONLY
    if volatile:
        remove_tree(volatile_mark(work))
        if _mount_data(target, flags, data + ",volatile") == 0:
            return
        if ctypes.get_errno() != errno.EINVAL:
            _raise_mount(target, data + ",volatile")
    if _mount_data(target, flags, data) != 0:
        _raise_mount(target, data)
    if volatile:  # refused where the plain mount is not: a kernel before 5.10
        _refuse_volatile()


def _refuse_volatile() -> None:
    global _volatile_refused
    _volatile_refused = True


def _mount_data(target: Path, flags: int, data: str) -> int:
    return int(_libc.mount(b"overlay", os.fsencode(target), b"overlay", flags, data.encode()))


def _raise_mount(target: Path, data: str) -> NoReturn:
    err = ctypes.get_errno()
    raise CorralError(f"mount overlay on {target}: {os.strerror(err)} ({data})")


def mount_shm(target: Path, size: int) -> None:
    """A shareable container's /dev/shm (`--ipc shareable`): a tmpfs the daemon mounts
    at `target` (mode 1777, nosuid,nodev,noexec, `size` bytes) and binds into it and
    into every `--ipc container:` joiner, as dockerd's ShmPath; one from another
    mount namespace could not be bound."""
    target.mkdir(mode=0o700, exist_ok=True)
    flags = MS_NOSUID | MS_NODEV | MS_NOEXEC
    data = f"mode=1777,size={size}".encode()
    rc = _libc.mount(b"shm", os.fsencode(target), b"tmpfs", flags, data)
    if rc != 0:
        err = ctypes.get_errno()
        raise CorralError(f"mount shm on {target}: {os.strerror(err)}")


def bind_mount(source: Path, target: Path, *, read_only: bool = False) -> None:
    """Bind `source` (recursively) at the existing `target`, nosuid,nodev,noexec: the
    daemon's own views of a stopped container's volumes (`docker cp`), never a
    container's."""
    flags = MS_BIND | MS_REC | MS_NOSUID | MS_NODEV | MS_NOEXEC
    for extra in (0, MS_REMOUNT | MS_RDONLY) if read_only else (0,):
        rc = _libc.mount(os.fsencode(source), os.fsencode(target), None, flags | extra, None)
        if rc != 0:
            err = ctypes.get_errno()
            if extra:
                unmount(target)
            raise CorralError(f"bind {source} on {target}: {os.strerror(err)}")


def unmount(target: Path) -> None:
    """Lazily unmount `target`; a path that is not mounted (or gone) is fine."""
    rc = _libc.umount2(os.fsencode(target), MNT_DETACH)
    if rc != 0:
        err = ctypes.get_errno()
        if err in (errno.EINVAL, errno.ENOENT):
            return
        raise CorralError(f"unmount {target}: {os.strerror(err)}")


def is_mounted(target: Path) -> bool:
    """Whether something is mounted exactly at `target` (symlinks resolved)."""
    path = os.path.realpath(target)
    return any(entry.mount_point == path for entry in read_mountinfo())
