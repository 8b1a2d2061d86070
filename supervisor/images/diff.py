"""Turn an overlayfs upperdir into an OCI layer tar: how `commit` makes an image layer.

The upperdir already *is* the diff against the lower layers; only the deletion markers
need translating from overlay's format back to OCI's: a whiteout (char device 0:0)
becomes an empty `.wh.NAME` file, an opaque directory (`trusted.overlay.opaque=y`)
gets a `.wh..wh..opq` entry right after it.  The tar is PAX, uncompressed, and walked in
sorted order with numeric owners only, so the same upperdir always yields the same bytes
(and therefore the same diffid).

The overlay must have been mounted without `metacopy=on` and `redirect_dir=on`: with
those, upper files may have no data or stand for a renamed lower directory, which a
plain walk cannot express (Docker refuses those options for the same reason).
"""

from __future__ import annotations

import contextlib
import os
import stat
import tarfile
from pathlib import Path
from typing import BinaryIO

from supervisor.errors import InvalidArgument
from supervisor.images.tarsafe import (
    MAX_DEPTH,
    OPAQUE_XATTR,
    WHITEOUT_OPAQUE,
    WHITEOUT_PREFIX,
    XATTR_PAX_PREFIX,
)


def is_whiteout(st: os.stat_result) -> bool:
    """overlayfs marks a deleted lower entry with a char device 0:0."""
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _is_opaque(path: Path) -> bool:
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def _xattr_headers(path: Path) -> dict[str, str]:
    headers: dict[str, str] = {}
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return headers
    for attr in sorted(names):
        if attr.startswith("trusted.overlay."):
            continue  # overlay's own bookkeeping (opaque, origin, impure...)
        with contextlib.suppress(OSError):
            value = os.getxattr(path, attr, follow_symlinks=False)
            headers[XATTR_PAX_PREFIX + attr] = value.decode("utf-8", "surrogateescape")
    return headers


def _base_info(name: str, st: os.stat_result) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mode = stat.S_IMODE(st.st_mode)
    info.uid = st.st_uid
    info.gid = st.st_gid
    info.uname = ""
    info.gname = ""
    info.mtime = int(st.st_mtime)
    return info


def _marker(name: str, st: os.stat_result) -> tarfile.TarInfo:
    """An empty regular file standing for a whiteout, as Docker writes it."""
    info = _base_info(name, st)
    info.type = tarfile.REGTYPE
    info.mode = 0
    info.size = 0
    return info


def write_layer_from_upper(upper: Path, out: BinaryIO) -> None:
    """Write the layer tar for overlay upperdir `upper` to `out` (not closed)."""
    seen_inodes: dict[tuple[int, int], str] = {}
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:

        # An explicit stack, not recursion: a container can make its tree thousands of
        # levels deep, which once ended a commit in RecursionError.  Past MAX_DEPTH the
        # layer could not be unpacked again (`tarsafe`), so it is refused here by name.
        stack: list[tuple[Path, str, list[os.DirEntry[str]]]] = [
            (upper, "", sorted(os.scandir(upper), key=lambda e: e.name, reverse=True))
        ]
        while stack:
            dirpath, prefix, pending = stack[-1]
            if not pending:
                stack.pop()
                continue
            entry = pending.pop()
            path = Path(entry.path)
            name = prefix + entry.name
            if len(stack) > MAX_DEPTH:  # `name` has len(stack) components
                raise InvalidArgument(
                    f"cannot commit {name[:60]}...: the container's changes are more "
                    f"than {MAX_DEPTH} levels deep"
                )
            st = os.lstat(path)
            if is_whiteout(st):
                tar.addfile(_marker(prefix + WHITEOUT_PREFIX + entry.name, st))
                continue
            info = _base_info(name, st)
            info.pax_headers = _xattr_headers(path)
            mode = st.st_mode
            if stat.S_ISDIR(mode):
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
                if _is_opaque(path):
                    tar.addfile(_marker(name + "/" + WHITEOUT_OPAQUE, st))
                children = sorted(os.scandir(path), key=lambda e: e.name, reverse=True)
                stack.append((path, name + "/", children))
                continue
            if stat.S_ISREG(mode):
                key = (st.st_dev, st.st_ino)
                if st.st_nlink > 1 and key in seen_inodes:
                    info.type = tarfile.LNKTYPE
                    info.linkname = seen_inodes[key]
                    tar.addfile(info)
                    continue
                seen_inodes[key] = name
                info.type = tarfile.REGTYPE
                info.size = st.st_size
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
                with os.fdopen(fd, "rb") as f:
                    tar.addfile(info, f)
            elif stat.S_ISLNK(mode):
                info.type = tarfile.SYMTYPE
                info.linkname = os.readlink(path)
                tar.addfile(info)
            elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
                info.type = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
                info.devmajor = os.major(st.st_rdev)
                info.devminor = os.minor(st.st_rdev)
                tar.addfile(info)
            elif stat.S_ISFIFO(mode):
                info.type = tarfile.FIFOTYPE
                tar.addfile(info)
            # sockets are not representable in tar; Docker skips them too.
