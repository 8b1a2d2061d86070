"""Opening paths inside a container's root with the kernel's own confinement.

`docker cp` into a running container races its processes: a directory checked a
moment ago may be a symlink to the host's /etc by the time it is opened
(CVE-2018-15664).  `openat2(2)` with `RESOLVE_IN_ROOT` resolves the whole path in
one system call with the directory fd as `/`: `..` stops at it, absolute link targets
start from it, magic links (`/proc/self/root`) are refused.  With the fd of
`/proc/<pid>/root` the walk happens in the container's mount namespace, so its
volumes, binds and tmpfs mounts are crossed as the container sees them.

Below the opened path everything is fd-relative and never follows a symlink
(`O_NOFOLLOW`, `dir_fd=`): the tar walk and the extraction cannot be redirected.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import stat

RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_IN_ROOT = 0x10
_SYS_OPENAT2 = 437  # the same number on every architecture (asm-generic table)

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.syscall.restype = ctypes.c_long


class _OpenHow(ctypes.Structure):
    _fields_ = [
        ("flags", ctypes.c_uint64),
        ("mode", ctypes.c_uint64),
        ("resolve", ctypes.c_uint64),
    ]


def open_in_root(root_fd: int, path: str, flags: int, mode: int = 0) -> int:
    """`path` (absolute or not, taken inside the root) opened under `root_fd`.

    Symlinks are followed within the root unless `flags` has `O_NOFOLLOW` (then
    only the last component is not).  Raises OSError with the kernel's errno.
    """
    how = _OpenHow(flags | os.O_CLOEXEC, mode, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)
    rel = path.lstrip("/") or "."
    while True:
        fd = _libc.syscall(
            _SYS_OPENAT2,
            ctypes.c_int(root_fd),
            ctypes.c_char_p(os.fsencode(rel)),
            ctypes.byref(how),
            ctypes.c_size_t(ctypes.sizeof(how)),
        )
        if fd >= 0:
            return int(fd)
        err = ctypes.get_errno()
        if err in (errno.EINTR, errno.EAGAIN):
            continue  # EAGAIN: a concurrent rename in the walk; the kernel asks to retry
        raise OSError(err, os.strerror(err), path)


class _Statfs(ctypes.Structure):
    _fields_ = [("f_type", ctypes.c_long), ("rest", ctypes.c_byte * 120)]


_libc.fstatfs.argtypes = [ctypes.c_int, ctypes.POINTER(_Statfs)]
_libc.fstatfs.restype = ctypes.c_int

#: Kernel filesystems a tar of the container must not read through: the container's
#: view of the host (proc, sys, cgroups, ...), whose "files" are endless or live.
PSEUDO_FILESYSTEMS = frozenset({
    0x9FA0,  # proc
    0x62656572,  # sysfs
    0x1CD1,  # devpts
    0x27E0EB,  # cgroup
    0x63677270,  # cgroup2
    0x19800202,  # mqueue
    0x73636673,  # securityfs
    0x64626720,  # debugfs
    0x74726163,  # tracefs
    0xCAFE4A11,  # bpf
    0x6E736673,  # nsfs
    0x42494E4D,  # binfmt_misc
})


def fs_type(fd: int) -> int:
    """The filesystem magic of an open file (`statfs(2)`'s f_type)."""
    buf = _Statfs()
    if _libc.fstatfs(fd, ctypes.byref(buf)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return int(buf.f_type) & 0xFFFFFFFF


def lstat_in_root(root_fd: int, path: str) -> os.stat_result:
    """The entry at `path` itself (a symlink is not followed)."""
    fd = open_in_root(root_fd, path, os.O_PATH | os.O_NOFOLLOW)
    try:
        return os.fstat(fd)
    finally:
        os.close(fd)


def readlink_in_root(root_fd: int, path: str) -> str:
    """The target of the symlink at `path` (its parents resolved in the root)."""
    parent, _, base = path.rstrip("/").rpartition("/")
    fd = open_in_root(root_fd, parent or "/", os.O_PATH | os.O_DIRECTORY)
    try:
        return os.readlink(base, dir_fd=fd)
    finally:
        os.close(fd)


def resolve_name(root_fd: int, path: str, *, follow_last: bool) -> str:
    """The absolute in-root name `path` leads to, symlinks resolved as the kernel does
    with RESOLVE_IN_ROOT (for messages and the stat header: opening uses the fd)."""
    parts = [p for p in path.split("/") if p and p != "."]
    done: list[str] = []
    links = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if done:
                done.pop()
            continue
        name = "/" + "/".join([*done, part])
        if follow_last or parts:
            try:
                st = lstat_in_root(root_fd, name)
            except FileNotFoundError:
                st = None
            if st is not None and stat.S_ISLNK(st.st_mode):
                links += 1
                if links > 40:
                    raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), path)
                target = readlink_in_root(root_fd, name)
                if target.startswith("/"):
                    done = []
                parts = [p for p in target.split("/") if p and p != "."] + parts
                continue
        done.append(part)
    return "/" + "/".join(done)
