"""Paths inside a container root, resolved without ever leaving it.

Reading an image's /etc/passwd or creating a mount point must not follow a symlink
planted by image content out to the host (`/etc/passwd -> /host/secret`).  `secure_join`
resolves each component itself, treating absolute link targets as relative to the
root, as a chroot would: the result is always inside `root`.
"""

from __future__ import annotations

import os
from pathlib import Path

_MAX_LINKS = 40


def secure_join(root: Path, path: str) -> Path:
    """`root/path` with symlinks resolved as if `root` were `/`."""
    parts = [p for p in path.split("/") if p and p != "."]
    resolved: list[str] = []
    links = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = root.joinpath(*resolved, part)
        if candidate.is_symlink():
            links += 1
            if links > _MAX_LINKS:
                raise OSError(f"too many levels of symbolic links in {path}")
            target = os.readlink(candidate)
            if target.startswith("/"):
                resolved = []
            parts = [p for p in target.split("/") if p and p != "."] + parts
            continue
        resolved.append(part)
    return root.joinpath(*resolved)


def is_clean_container_path(path: str) -> bool:
    """A mount destination: absolute, not `/`, no `..` component."""
    return path.startswith("/") and path != "/" and ".." not in path.split("/")
