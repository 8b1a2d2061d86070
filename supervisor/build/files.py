"""What COPY and ADD do to a root filesystem (a mounted overlay of the stage's image).

Docker's rules (moby `builder/dockerfile/copy.go`): a destination ending in `/`, or an
existing directory, or one receiving several sources, is a directory and sources land
in it under their base names; a source directory contributes its *contents*; new
files and directories belong to 0:0 unless `--chown` (`engine/users.chown_ids`), owner set
before mode so setuid bits survive; `--chmod` sets the mode of every
copied entry; parent directories are created 0755; file mtimes are kept.  ADD also
unpacks a local tar archive (plain, gzip, bzip2, xz) into the destination directory.

Everything here writes through `secure_join`, so a symlink inside the image can never
make a copy land outside the root.  Synchronous (run in a worker thread by the builder:
these are whole-tree copies and no database is touched).
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from supervisor.engine.paths import secure_join
from supervisor.errors import InvalidArgument
from supervisor.images.tarsafe import unpack_layer
from supervisor.rmtree import discard_tree, remove_tree


@dataclass(frozen=True)
class Owner:
    uid: int
    gid: int


@dataclass(frozen=True)
class Source:
    """One thing to copy: `path` on disk, under `name` (its base name at the target).

    `entries` lists (relative path, path) of a directory's content to copy (already
    filtered by .dockerignore); empty for a file or symlink.
    """

    name: str
    path: Path
    entries: tuple[tuple[str, Path], ...] = ()


def ensure_dir(rootfs: Path, path: str) -> Path:
    """Create `path` (and parents, 0755 root) inside rootfs; returns the real path."""
    target = secure_join(rootfs, path)
    if target.exists() and not target.is_dir():
        raise InvalidArgument(f"cannot create directory {path}: a file is in the way")
    if not target.exists():
        rel = target.relative_to(rootfs)
        cur = rootfs
        for part in rel.parts:
            cur = cur / part
            if not cur.exists():
                os.mkdir(cur, 0o755)
                os.chmod(cur, 0o755)
    return target


def _apply(path: Path, owner: Owner, mode: int | None, is_link: bool = False) -> None:
    os.chown(path, owner.uid, owner.gid, follow_symlinks=False)
    if mode is not None and not is_link:
        os.chmod(path, mode)


def _copy_entry(src: Path, dst: Path, owner: Owner, mode: int | None) -> None:
    st = os.lstat(src)
    if dst.is_symlink() or (dst.exists() and not dst.is_dir()):
        dst.unlink()
    if stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(src), dst)
        _apply(dst, owner, None, is_link=True)
        return
    if stat.S_ISDIR(st.st_mode):
        if not dst.exists():
            os.mkdir(dst)
            os.chmod(dst, stat.S_IMODE(st.st_mode))
        elif not dst.is_dir():
            raise InvalidArgument(f"cannot copy directory over file {dst.name}")
        _apply(dst, owner, mode)
        return
    if stat.S_ISREG(st.st_mode):
        if dst.is_dir():
            raise InvalidArgument(f"cannot overwrite directory {dst.name} with a file")
        shutil.copyfile(src, dst, follow_symlinks=False)
        # chown before chmod, as Docker: a chown clears setuid/setgid, even root's
        _apply(dst, owner, stat.S_IMODE(st.st_mode) if mode is None else mode)
        os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
        return
    # sockets, devices, fifos in a context are skipped, as Docker's tar of it would.


def copy_sources(
    rootfs: Path,
    sources: list[Source],
    dest: str,
    dest_is_dir: bool,
    owner: Owner,
    mode: int | None,
) -> None:
    """Copy `sources` to `dest` (an absolute container path) inside `rootfs`."""
    target = secure_join(rootfs, dest)
    into_dir = dest_is_dir or len(sources) > 1 or target.is_dir()
    for src in sources:
        is_dir = src.path.is_dir() and not src.path.is_symlink()
        if is_dir:
            top = ensure_dir(rootfs, dest)
            for rel, path in src.entries:
                _copy_entry(path, top / rel, owner, mode)
            continue
        if into_dir:
            d = ensure_dir(rootfs, dest)
            _copy_entry(src.path, d / src.name, owner, mode)
        else:
            parent = posixpath_dir(dest)
            d = ensure_dir(rootfs, parent)
            out = secure_join(rootfs, dest)
            if out.is_dir() and not out.is_symlink():
                out = out / src.name
            _copy_entry(src.path, out, owner, mode)


def posixpath_dir(p: str) -> str:
    import posixpath

    return posixpath.dirname(p.rstrip("/")) or "/"


def is_archive(path: Path) -> bool:
    """A local file ADD unpacks: a (compressed) tar, recognised by content as Docker does."""
    if not path.is_file() or path.is_symlink():
        return False
    import tarfile

    with open(path, "rb") as f:
        magic = f.read(6)
    if magic.startswith((b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00")):
        return True
    try:
        return tarfile.is_tarfile(path)
    except OSError:
        return False


def extract_archive(rootfs: Path, archive: Path, dest: str, scratch: Path) -> None:
    """ADD of a local archive: unpack it (safely) and merge it into `dest`."""
    tmp = Path(tempfile.mkdtemp(dir=scratch, prefix="add-"))
    try:
        try:
            unpack_layer(archive, tmp)
        except InvalidArgument as e:
            raise InvalidArgument(f"ADD {archive.name}: {e.message}") from None
        top = ensure_dir(rootfs, dest)
        _merge_tree(tmp, top)
    finally:
        discard_tree(tmp)


def _merge_tree(src: Path, dst: Path) -> None:
    for entry in sorted(os.scandir(src), key=lambda e: e.name):
        s = Path(entry.path)
        d = dst / entry.name
        st = os.lstat(s)
        if stat.S_ISDIR(st.st_mode):
            if d.is_symlink() or (d.exists() and not d.is_dir()):
                d.unlink()
            if not d.exists():
                os.mkdir(d)
            os.chown(d, st.st_uid, st.st_gid)
            os.chmod(d, stat.S_IMODE(st.st_mode))
            _merge_tree(s, d)
            os.utime(d, ns=(st.st_atime_ns, st.st_mtime_ns))
            continue
        if d.is_symlink() or d.exists():
            remove_tree(d)
        if stat.S_ISREG(st.st_mode):
            shutil.copy2(s, d, follow_symlinks=False)
            os.chown(d, st.st_uid, st.st_gid)
            os.chmod(d, stat.S_IMODE(st.st_mode))
        elif stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(s), d)
            os.chown(d, st.st_uid, st.st_gid, follow_symlinks=False)


def write_file(
    rootfs: Path,
    dest: str,
    name: str,
    content: bytes,
    dest_is_dir: bool,
    owner: Owner,
    mode: int | None,
) -> None:
    """A heredoc source (`COPY <<EOF /path`)."""
    target = secure_join(rootfs, dest)
    if dest_is_dir or target.is_dir():
        out = ensure_dir(rootfs, dest) / name
    else:
        ensure_dir(rootfs, posixpath_dir(dest))
        out = secure_join(rootfs, dest)
    if out.is_symlink():
        out.unlink()
    out.write_bytes(content)
    os.chmod(out, 0o644)
    _apply(out, owner, mode)


def entries_of(items: Iterable[tuple[str, Path]], top_rel: str) -> tuple[tuple[str, Path], ...]:
    """Directory content relative to the directory itself, for `Source.entries`."""
    out = []
    prefix = "" if top_rel in ("", ".") else top_rel + "/"
    for rel, path in items:
        if rel == top_rel or (top_rel in ("", ".") and rel in ("", ".")):
            continue
        out.append((rel[len(prefix) :], path))
    return tuple(out)


def walk_image_dir(top: Path) -> tuple[tuple[str, Path], ...]:
    """Everything under a directory of another image (COPY --from), sorted, parents first."""
    out: list[tuple[str, Path]] = []

    def walk(d: Path, prefix: str) -> None:
        for entry in sorted(os.scandir(d), key=lambda e: e.name):
            rel = prefix + entry.name
            out.append((rel, Path(entry.path)))
            if entry.is_dir(follow_symlinks=False):
                walk(Path(entry.path), rel + "/")

    walk(top, "")
    return tuple(out)
