"""Plant a directory tree far deeper than PATH_MAX, as a container or a crash could."""

from __future__ import annotations

import os
from pathlib import Path


def plant_deep_tree(top: Path, depth: int, name: str = "d") -> None:
    """`top/d/d/.../d/leaf`, `depth` levels down, made relative to open directories
    (the whole path is far longer than PATH_MAX: no path-based call could make it)."""
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(depth):
            os.mkdir(name, dir_fd=fd)
            nfd = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = nfd
        with open(os.open("leaf", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd), "w") as f:
            f.write("bottom")
    finally:
        os.close(fd)
