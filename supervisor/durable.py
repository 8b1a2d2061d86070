"""Writes that survive a power cut: the one way to put a file of ours into place.

A rename is atomic but not durable: after a power loss the new name may point at an
empty file (the data never reached the disk) or be missing (the directory entry never
did).  So every file the image store keeps (index.json, oci-layout, blobs, unpacked
layer trees) is written to a temporary name, fsynced, renamed, and then its directory
is fsynced, in that order, all before the SQLite commit whose row refers to it: data
durable before any name or row refers to it, as containerd's content store does.

Not here, on purpose: a container's bundle config.json (written again at every
start), its directories and /etc files and a volume's directories (derived from
their rows and made again at the start after a power cut: `Engine._remake_lost`,
`VolumeStore.remake_lost`), the json-file logs (a container's output, which Docker
does not fsync either).

These calls block on the disk: about 10 ms for write_atomic and 5 to 20 ms for the
syncfs of a small layer on the development VM's virtio disk, where every fsync
costs a device cache flush.  They run inside the image store's operations, which
block the trio thread today as a whole (an import's unpack costs more); see
ARCHITECTURE.md.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import tempfile
from pathlib import Path

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def fsync_path(path: Path | str) -> None:
    """fsync a file or a directory by name (a directory: its entries are durable)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path | str) -> None:
    """Make the names in directory `path` (a rename into it, a new entry) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_SYNC_FILE_RANGE_WRITE = 2
_libc.sync_file_range.argtypes = (ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint)


def start_writeback(fd: int, offset: int, length: int) -> None:
    """Begin writing a range of a file's dirty pages to disk, without waiting for it
    (sync_file_range(2), SYNC_FILE_RANGE_WRITE): not durability, pacing.  Unmounting
    an overlay syncs its upper's whole filesystem (overlayfs's sync_fs), so a
    container's exit waits for every dirty page there: a log written out as it grows
    leaves little to wait for."""
    if _libc.sync_file_range(fd, offset, length, _SYNC_FILE_RANGE_WRITE) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def syncfs(path: Path | str) -> None:
    """Flush the whole filesystem holding `path` (syncfs(2)), once, for a tree of
    thousands of files: an unpacked layer is made durable this way before it is
    renamed into place, as containerd's applier does with its `sync_fs` option,
    rather than one fsync per file and directory."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if _libc.syncfs(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err), str(path))
    finally:
        os.close(fd)


def write_atomic(
    path: Path, data: bytes, *, mode: int = 0o644, tmp_dir: Path | None = None
) -> None:
    """Put `data` at `path` durably: temp file (in `tmp_dir`, which must be on the
    same filesystem, else beside `path`), fsync, rename over `path`, fsync its
    directory.  A crash at any point leaves the old file or the new one, never an
    empty or partial one."""
    fd, tmp = tempfile.mkstemp(dir=tmp_dir or path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fchmod(f.fileno(), mode)
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def rename_into_place(src: Path, dst: Path) -> None:
    """Rename an already durable `src` (a file fsynced, a tree after `syncfs`) to
    `dst` and make the new name durable."""
    os.replace(src, dst)
    fsync_dir(dst.parent)
