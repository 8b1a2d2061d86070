"""`docker diff`: what a container changed, read from its overlay upper directory.

The upper holds exactly what was written: an entry there that some lower layer also
has is a change (C), one no lower has is an addition (A), and a whiteout (char device
0:0) a deletion (D, not descended).  The walk is iterative and fd-relative (a
container can `mkdir` thousands of levels down: no recursion, no path longer than one
name), and each lower layer is walked alongside, so "does a lower have it" is one
`fstatat` per layer with no long paths either.  Kinds are Docker's numbers: 0 C,
1 A, 2 D; the list is sorted by path as Docker sorts it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

MODIFIED, ADDED, DELETED = 0, 1, 2
KIND_LETTER = {MODIFIED: "C", ADDED: "A", DELETED: "D"}
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _is_opaque(fd: int) -> bool:
    """An opaque upper directory hides everything the lowers have below it."""
    try:
        return os.getxattr(fd, "trusted.overlay.opaque") == b"y"
    except OSError:
        return False


def _lower_has(lowers: list[int | None], name: str) -> bool:
    """Whether the topmost lower that has `name` has it as content (not a whiteout)."""
    for fd in lowers:
        if fd is None:
            continue
        try:
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
        except (FileNotFoundError, NotADirectoryError):
            continue
        return not _is_whiteout(st)
    return False


def _open_below(fds: list[int | None], name: str) -> list[int | None]:
    out: list[int | None] = []
    for fd in fds:
        child = None
        if fd is not None:
            try:
                child = os.open(name, _DIR, dir_fd=fd)
            except OSError:
                child = None
        out.append(child)
    return out


def _close(fds: list[int | None]) -> None:
    for fd in fds:
        if fd is not None:
            os.close(fd)


def upper_changes(upper: Path, lowers_top_first: list[Path]) -> list[tuple[str, int]]:
    """(path, kind) for every change in `upper` against the lowers (top first)."""
    changes: list[tuple[str, int]] = []
    top = os.open(upper, _DIR)
    lower_fds: list[int | None] = []
    for p in lowers_top_first:
        try:
            lower_fds.append(os.open(p, _DIR))
        except OSError:
            lower_fds.append(None)
    # One frame per level: the upper dir's fd, its path, the names still to do there,
    # and the lowers' fds for the same directory (None where a lower lacks it).
    stack: list[tuple[int, str, list[str], list[int | None]]] = [
        (top, "", sorted(os.listdir(top), reverse=True), lower_fds)
    ]
    try:
        while stack:
            fd, prefix, pending, lowers = stack[-1]
            if not pending:
                stack.pop()
                os.close(fd)
                _close(lowers)
                continue
            name = pending.pop()
            path = f"{prefix}/{name}"
            try:
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                continue
            if _is_whiteout(st):
                changes.append((path, DELETED))
                continue
            changes.append((path, MODIFIED if _lower_has(lowers, name) else ADDED))
            if stat.S_ISDIR(st.st_mode):
                try:
                    child = os.open(name, _DIR, dir_fd=fd)
                except OSError:
                    continue
                below: list[int | None] = (
                    [None] * len(lowers) if _is_opaque(child) else _open_below(lowers, name)
                )
                stack.append((child, path, sorted(os.listdir(child), reverse=True), below))
    finally:
        for fd, _, _, lowers in stack:
            os.close(fd)
            _close(lowers)
    changes.sort(key=lambda c: c[0])
    return changes
