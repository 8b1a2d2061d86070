"""Remove a directory tree: no recursion, relative to open directories, never off its mount.

Everything the daemon removes under its state root (a container's directory, a volume,
a layer, build and upload scratch) may hold a tree someone else shaped: any container
can `mkdir` its way 3,000 levels down in its /tmp, and an imported tarball can try the
same.  `shutil.rmtree` (Python 3.11) recurses once per level, so such a tree raises
RecursionError, which is not an OSError, so `ignore_errors=True` lets it through; it
also hands the kernel whole paths, which stop working past PATH_MAX (ENAMETOOLONG).
A tree left behind like that under tmp/ once made every later daemon start fail.

Here each step is an `openat`/`unlinkat` relative to a directory descriptor: one is open
at a time whatever the depth (going back up is `..` of the current one, checked to be
the directory we came from), and the work still to do is a list on the heap.  Symlinks
are removed, never followed.  A directory on another mount (a container root still
mounted, a bind mount) stops the removal with `MountInTree` naming it, rather than
emptying whatever filesystem is mounted there.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Callable

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class MountInTree(OSError):
    """The tree holds a mount point; nothing below it was touched."""

    def __init__(self, path: str) -> None:
        super().__init__(errno.EBUSY, "refusing to remove through a mount point", path)


def remove_tree(path: str | os.PathLike[str]) -> None:
    """Remove `path` (a directory tree, a file or a symlink); a missing path is fine.

    Raises OSError (MountInTree for a mount point inside) and stops at the first
    failure; what was removed until then stays removed.
    """
    text = os.path.normpath(os.fspath(path))
    parent, name = os.path.split(text)
    if name in ("", ".", ".."):
        raise ValueError(f"refusing to remove {text!r}")
    try:
        pfd = os.open(parent or ".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        try:
            st = os.lstat(name, dir_fd=pfd)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            _empty_dir(pfd, name, text)
            _ignore_missing(os.rmdir, name, pfd)
        else:
            _ignore_missing(os.unlink, name, pfd)
    finally:
        os.close(pfd)


def remove_at(dir_fd: int, name: str, shown: str) -> None:
    """`remove_tree` of the entry `name` of the open directory `dir_fd` (for trees
    reached only through a descriptor: a container's root opened in its namespace)."""
    try:
        st = os.lstat(name, dir_fd=dir_fd)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        _empty_dir(dir_fd, name, shown)
        _ignore_missing(os.rmdir, name, dir_fd)
    else:
        _ignore_missing(os.unlink, name, dir_fd)


def discard_tree(path: str | os.PathLike[str]) -> bool:
    """`remove_tree` for clean-ups that must go on: a failure is logged, not raised.

    Returns whether the path is gone.
    """
    try:
        remove_tree(path)
    except OSError as exc:
        import structlog  # only here: a pull's layer worker imports this module, lean

        structlog.get_logger("corral.rmtree").warning(
            "rmtree.failed", path=os.fspath(path), error=str(exc))
        return False
    return True


def _ignore_missing(op: Callable[..., None], name: str, dir_fd: int) -> None:
    with contextlib.suppress(FileNotFoundError):
        op(name, dir_fd=dir_fd)


def _mount_id(fd: int) -> int:
    """The mount an open file is on (`mnt_id` in fdinfo: bind mounts of one
    filesystem share st_dev, so st_dev alone cannot tell a mount point)."""
    with open(f"/proc/self/fdinfo/{fd}", "rb") as f:
        for line in f:
            if line.startswith(b"mnt_id:"):
                return int(line.split(b":", 1)[1])
    raise OSError(errno.ENOTSUP, "no mnt_id in /proc/self/fdinfo")


def _open_dir(parent_fd: int, name: str, mount: int) -> int | None:
    """The directory `name` opened, or None if it is on another mount than `mount`."""
    fd = os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    try:
        same = _mount_id(fd) == mount
    except BaseException:
        os.close(fd)
        raise
    if not same:
        os.close(fd)
        return None
    return fd


def _clear_files(fd: int) -> list[str]:
    """Unlink every non-directory in the open directory; return its subdirectories."""
    dirs: list[str] = []
    others: list[str] = []
    with os.scandir(fd) as it:
        for entry in it:
            (dirs if entry.is_dir(follow_symlinks=False) else others).append(entry.name)
    for name in others:
        _ignore_missing(os.unlink, name, fd)
    return dirs


def _identity(fd: int) -> tuple[int, int]:
    st = os.fstat(fd)
    return st.st_dev, st.st_ino


def _empty_dir(parent_fd: int, name: str, shown: str) -> None:
    """Remove everything inside directory `name` of `parent_fd` (not the directory)."""
    mount = _mount_id(parent_fd)
    top = _open_dir(parent_fd, name, mount)
    if top is None:
        raise MountInTree(shown)
    fd = top
    # One frame per level we are inside: the subdirectories still to do there and the
    # identity of that directory (to check `..` on the way back up).
    stack: list[tuple[list[str], tuple[int, int]]] = []
    names: list[str] = []  # the path below `shown`, for messages only
    try:
        pending = _clear_files(fd)
        here = _identity(fd)
        while True:
            if pending:
                child = pending.pop()
                try:
                    cfd = _open_dir(fd, child, mount)
                except FileNotFoundError:
                    continue
                except OSError as exc:
                    if exc.errno not in (errno.ENOTDIR, errno.ELOOP):
                        raise
                    _ignore_missing(os.unlink, child, fd)  # became a file or symlink
                    continue
                if cfd is None:
                    raise MountInTree(os.path.join(shown, *names, child))
                stack.append((pending, here))
                names.append(child)
                os.close(fd)
                fd = cfd
                pending = _clear_files(fd)
                here = _identity(fd)
                continue
            if not stack:
                return
            up = os.open("..", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=fd)
            pending, here = stack.pop()
            if _identity(up) != here:
                os.close(up)
                raise OSError(errno.ESTALE, "directory moved during removal", shown)
            os.close(fd)
            fd = up
            _ignore_missing(os.rmdir, names.pop(), fd)
    finally:
        os.close(fd)
