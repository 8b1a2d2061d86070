"""Unpack an image layer tar into a directory, safely, in overlayfs's on-disk format.

A layer tar comes from whoever built the image, so it is hostile input: its names may
climb out with `..`, be absolute, or go *through* a symlink the same tar planted
(`evil -> /etc` then `evil/passwd`).  The rule (containerd's): symlinks are content and
are created verbatim, but nothing is ever written by following one, and nothing lands
outside `dest`.  We refuse (rather than silently confine) any entry that would: a layer
that tries is broken or malicious, and a refused import leaves nothing behind.

Names are bounded too: at most `MAX_DEPTH` levels, and short enough that the entry's
path on the host (under `dest`) and in the container fit PATH_MAX.  A tarball 2,100
directories deep once stopped the unpack with ENAMETOOLONG half-way and left a tree
that removal could not take (see `supervisor/rmtree.py`); now it is refused by name.

OCI whiteouts are converted on the way in (`.wh.NAME` -> char device 0:0, `.wh..wh..opq`
-> `trusted.overlay.opaque=y`) so an unpacked layer directory is directly an overlay
lowerdir, shared by every image and container that uses it.

The decisions about names (`entry_parts`, `whiteout_kind`) are pure functions; the rest
walks the destination with `lstat` on every existing component.  `dest` is a fresh
private directory owned by the daemon, so check-then-act is not racy here.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import stat
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, TypeVar

from supervisor.errors import InvalidArgument
from supervisor.images.compression import Decompressor, Gzip
from supervisor.images.tarstream import BLK, CHR, DIR, FIFO, LNK, REG, SYM, Entry, TarReader
from supervisor.rmtree import remove_tree

if TYPE_CHECKING:
    import bz2
    import lzma

WHITEOUT_PREFIX = ".wh."
WHITEOUT_META_PREFIX = ".wh..wh."
WHITEOUT_OPAQUE = ".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"
XATTR_PAX_PREFIX = "SCHILY.xattr."
_CHUNK = 1 << 20

PATH_MAX = 4096  # bytes of a path the kernel takes, its NUL included
NAME_MAX = 255  # bytes of one component
#: The deepest entry a layer may hold.  Docker has no bound of its own (PATH_MAX is
#: what stops it); ours keeps every walk over image content (copy-up into volumes,
#: COPY --from, ADD of an archive, commit) well inside Python's recursion limit, and no
#: real image comes near it.
MAX_DEPTH = 512
#: The longest entry name: a process in the container must be able to open "/" + name.
MAX_NAME_BYTES = PATH_MAX - 2


def _shown(name: str) -> str:
    """An entry's name for a one-line message: a very long one by its two ends."""
    return name if len(name) <= 120 else f"{name[:60]}...{name[-40:]}"


def _refuse(name: str, why: str) -> InvalidArgument:
    return InvalidArgument(f"refusing tar entry {_shown(name)!r}: {why}")


def name_budget(dest: Path) -> int:
    """How long an entry name may be to unpack under `dest`: the host path
    `dest/name` must fit PATH_MAX as well as the container's `/name`."""
    return min(MAX_NAME_BYTES, PATH_MAX - 2 - len(os.fsencode(os.path.abspath(dest))))


def entry_parts(name: str, max_bytes: int = MAX_NAME_BYTES) -> tuple[str, ...]:
    """Normalise a tar member name to path components relative to the layer root.

    `./a//b/` -> ('a', 'b'); `.` -> () (the root itself).  Absolute names and names
    whose `..` climb above the root are refused: Docker confines them, we reject them,
    because no legitimate layer has them and confining hides a broken producer.  So
    are names deeper than MAX_DEPTH, longer than `max_bytes`, or with a component
    longer than NAME_MAX.
    """
    if name.startswith("/"):
        raise _refuse(name, "path escapes the layer")
    if "\x00" in name:  # a PAX name may hold one; no path can
        raise _refuse(name, "path contains a NUL byte")
    norm = posixpath.normpath(name)
    if norm == ".":
        return ()
    if norm == ".." or norm.startswith("../"):
        raise _refuse(name, "path escapes the layer")
    parts = tuple(norm.split("/"))
    if len(parts) > MAX_DEPTH:
        raise _refuse(name, f"path is {len(parts)} levels deep (at most {MAX_DEPTH})")
    # An ASCII name's bytes are its characters: most of a layer's names are, and need
    # no encoding to be measured.
    ascii_name = norm.isascii()
    size = len(norm) if ascii_name else len(os.fsencode(norm))
    if size > max_bytes:
        raise _refuse(name, f"path is {size} bytes long (at most {max_bytes} here)")
    if ascii_name:
        too_long = size > NAME_MAX and any(len(p) > NAME_MAX for p in parts)
    else:
        too_long = any(len(os.fsencode(p)) > NAME_MAX for p in parts)
    if too_long:
        raise _refuse(name, f"a path component is longer than {NAME_MAX} bytes")
    return parts


def whiteout_kind(parts: tuple[str, ...]) -> tuple[str, tuple[str, ...]] | None:
    """Classify an OCI whiteout entry.

    Returns ("opaque", dir_parts) for `dir/.wh..wh..opq`, ("whiteout", target_parts) for
    `dir/.wh.NAME`, ("meta", parts) for other `.wh..wh.*` (aufs bookkeeping, ignored),
    None for ordinary content.
    """
    if not parts:
        return None
    base = parts[-1]
    if base == WHITEOUT_OPAQUE:
        return ("opaque", parts[:-1])
    if base.startswith(WHITEOUT_META_PREFIX):
        return ("meta", parts)
    if base.startswith(WHITEOUT_PREFIX):
        target = base[len(WHITEOUT_PREFIX) :]
        if target in ("", ".", ".."):
            raise _refuse("/".join(parts), "invalid whiteout name")
        return ("whiteout", (*parts[:-1], target))
    return None


Known = set[tuple[str, ...]]
R = TypeVar("R")


def _forget(known: Known, parts: tuple[str, ...]) -> None:
    """`parts` is being replaced: it and what was under it are no longer known dirs."""
    if parts in known:
        n = len(parts)
        known.difference_update([k for k in known if k[:n] == parts])


def _safe_parent(dest: str, parts: tuple[str, ...], entry: str, *, create: bool,
                 known: Known | None = None) -> str:
    """Walk the parent directories of `parts` inside dest without following symlinks.

    Missing directories are created (0755, like tar does for implicit parents) when
    `create`; a symlink or non-directory on the way is refused, naming the entry.
    `known`: directories this unpack made or checked (and has not replaced since), so
    a layer's thousands of entries do not lstat the same parents again and again.
    Paths are plain strings here: pathlib's objects cost more CPU than the syscalls.
    """
    cur = dest
    for i, comp in enumerate(parts[:-1], 1):
        cur = f"{cur}/{comp}"
        if known is not None:
            prefix = parts[:i]
            if prefix in known:
                continue
            known.add(prefix)  # checked or made just below (a refusal ends the unpack)
        try:
            st = os.lstat(cur)
        except FileNotFoundError:
            if not create:
                raise _refuse(entry, f"parent {comp!r} does not exist") from None
            os.mkdir(cur, 0o755)
            continue
        if stat.S_ISLNK(st.st_mode):
            raise _refuse(entry, "path escapes the layer through a symlink")
        if not stat.S_ISDIR(st.st_mode):
            raise _refuse(entry, f"parent {comp!r} is not a directory")
    return cur


def _remove(path: str) -> None:
    """Remove whatever is at path (never following a symlink; any depth)."""
    remove_tree(path)


def _create(path: str, make: Callable[[], R]) -> R:
    """`make()` a new entry at `path`, replacing what is there (a layer may replace
    a lower entry of its own): tried first, so a fresh path costs one call."""
    try:
        return make()
    except FileExistsError:
        _remove(path)
        return make()


def _apply_xattrs(path: str | int, e: Entry) -> None:
    if not e.xattrs:
        return
    for attr, raw in e.xattrs.items():
        # A layer may not smuggle overlay metadata (redirects, origins) into our lowers.
        if attr.startswith("trusted.overlay."):
            continue
        with contextlib.suppress(OSError):
            if isinstance(path, int):
                os.setxattr(path, attr, raw)
            else:
                os.setxattr(path, attr, raw, follow_symlinks=False)


def _apply_owner_mode(path: str, e: Entry) -> None:
    os.chown(path, e.uid, e.gid, follow_symlinks=False)
    if e.type != SYM:
        # chmod after chown: chown clears setuid/setgid bits.
        os.chmod(path, e.mode & 0o7777)


def _write_all(fd: int, view: memoryview) -> None:
    """All of `view` to `fd` (os.write may write less), with no buffered file object:
    one syscall per chunk, no per-file io objects or flush."""
    while view:
        view = view[os.write(fd, view):]


def unpack_layer(src: BinaryIO | Path, dest: Path) -> int:
    """Unpack the (plain or compressed) layer tar `src` into the existing dir `dest`.

    Returns the bytes of regular-file content written (the layer's size).  Raises
    InvalidArgument naming the first refused entry; the caller discards `dest` then.
    """
    if isinstance(src, Path):
        with open(src, "rb") as f:
            return unpack_layer(f, dest)
    return unpack_chunks(_decoded(src), dest)


def _decoded(src: BinaryIO) -> Callable[[], bytes]:
    """`src`'s tar as chunks, decompressed if its first bytes say gzip, bzip2 or xz
    (as tarfile's `r|*` guessed; `ADD` takes such archives)."""
    first = src.read(_CHUNK)
    d: Decompressor | None = None
    if first[:2] == b"\x1f\x8b":
        d = Gzip()
    elif first[:3] == b"BZh":
        import bz2

        d = _Flushless(bz2.BZ2Decompressor())
    elif first[:6] == b"\xfd7zXZ\x00":
        import lzma

        d = _Flushless(lzma.LZMADecompressor())
    pending = [first]

    def raw() -> bytes:
        return pending.pop() if pending else src.read(_CHUNK)

    if d is None:
        return raw
    dec = d
    ended = False

    def source() -> bytes:
        nonlocal ended
        while not ended:
            chunk = raw()
            try:
                out = dec.decompress(chunk) if chunk else dec.flush()
            except Exception as e:  # noqa: BLE001 - zlib/bz2/lzma errors: a bad archive
                raise InvalidArgument(f"invalid compressed archive: {e}") from None
            ended = not chunk
            if out:
                return out
        return b""

    return source


class _Flushless:
    """bz2's and lzma's decompressors, with the `flush` they lack."""

    def __init__(self, d: bz2.BZ2Decompressor | lzma.LZMADecompressor) -> None:
        self.d = d

    def decompress(self, data: bytes, /) -> bytes:
        return self.d.decompress(data)

    def flush(self) -> bytes:
        if not self.d.eof:
            raise InvalidArgument("invalid compressed archive: unexpected end of stream")
        return b""


def unpack_chunks(source: Callable[[], bytes], dest: Path) -> int:
    """`unpack_layer` of the uncompressed tar whose bytes `source` gives in chunks
    (b"" at the end): the pull's layer worker feeds it what it decodes."""
    total = 0
    budget = name_budget(dest)
    dir_times: list[tuple[tuple[str, ...], int]] = []
    known: Known = set()
    root = os.fspath(dest)
    reader = TarReader(source)
    for e in reader.entries():
        total += _unpack_entry(reader, e, root, dir_times, budget, known)
    # Directory mtimes last: creating children changed them.
    for parts, mtime in reversed(dir_times):
        path = _still_a_directory(root, parts)
        if path is not None:
            os.utime(path, ns=(mtime, mtime), follow_symlinks=False)
    return total


def _still_a_directory(dest: str, parts: tuple[str, ...]) -> str | None:
    """`dest/parts` if it is still a directory reached through directories only.

    A later entry may have replaced it or a parent by a file (`a/b/`, then `a`) or by a
    symlink (`a/dir/`, then `a -> /somewhere`): utime would fail on the first, and on
    the second follow the link and set the times of a directory outside the layer.
    """
    cur = dest
    for comp in parts:
        cur = f"{cur}/{comp}"
        try:
            st = os.lstat(cur)
        except (FileNotFoundError, NotADirectoryError):
            return None
        if not stat.S_ISDIR(st.st_mode):
            return None
    return cur


def _unpack_entry(
    reader: TarReader,
    e: Entry,
    dest: str,
    dir_times: list[tuple[tuple[str, ...], int]],
    budget: int,
    known: Known,
) -> int:
    name = e.name
    parts = entry_parts(name, budget)
    kind = whiteout_kind(parts)
    if kind is not None:
        what, target = kind
        if what == "meta":
            return 0
        if what == "opaque":
            parent = _safe_parent(dest, (*target, "x"), name, create=True, known=known)
            os.setxattr(parent, OPAQUE_XATTR, b"y")
            return 0
        parent = _safe_parent(dest, target, name, create=True, known=known)
        path = f"{parent}/{target[-1]}"
        _forget(known, target)
        _remove(path)
        os.mknod(path, stat.S_IFCHR | 0o000, os.makedev(0, 0))
        os.chown(path, e.uid, e.gid, follow_symlinks=False)
        return 0

    type_ = e.type
    if not parts:  # the layer root itself ("./")
        if type_ == DIR:
            _apply_owner_mode(dest, e)
            _apply_xattrs(dest, e)
            dir_times.append(((), e.mtime_ns))
            return 0
        raise _refuse(name, "the layer root must be a directory")

    parent = _safe_parent(dest, parts, name, create=True, known=known)
    path = f"{parent}/{parts[-1]}"

    if type_ == DIR:
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            st = None
        if st is not None and not stat.S_ISDIR(st.st_mode):
            os.unlink(path)
            st = None
        if st is None:
            os.mkdir(path, 0o700)
        known.add(parts)
        dir_times.append((parts, e.mtime_ns))
        _apply_owner_mode(path, e)
        _apply_xattrs(path, e)
        return 0
    _forget(known, parts)
    if type_ == REG:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
        fd = _create(path, lambda: os.open(path, flags, 0o600))
        try:
            size = _write_data(fd, reader, e)
            # metadata through the descriptor: no path walk per call (the files
            # are most of a layer's entries)
            os.fchown(fd, e.uid, e.gid)
            os.fchmod(fd, e.mode & 0o7777)  # after chown: chown clears setuid
            _apply_xattrs(fd, e)
            os.utime(fd, ns=(e.mtime_ns, e.mtime_ns))
        finally:
            os.close(fd)
        return size
    if type_ == SYM:
        link = e.linkname
        if len(os.fsencode(link)) >= PATH_MAX:
            raise _refuse(name, f"symlink target is longer than {PATH_MAX - 1} bytes")
        if not link or "\x00" in link:  # symlink(2) takes neither
            raise _refuse(name, "symlink target is empty or contains a NUL byte")
        _create(path, lambda: os.symlink(link, path))
    elif type_ == LNK:
        try:
            target = entry_parts(e.linkname, budget)
        except InvalidArgument:
            target = ()
        if not target:
            raise _refuse(name, "hard link target escapes the layer")
        tparent = _safe_parent(dest, target, name, create=False, known=known)
        tpath = f"{tparent}/{target[-1]}"
        try:
            tst = os.lstat(tpath)
        except FileNotFoundError:
            raise _refuse(name, f"hard link target {e.linkname!r} not in layer") from None
        if stat.S_ISDIR(tst.st_mode):
            raise _refuse(name, "hard link to a directory")
        if target == parts:
            raise _refuse(name, f"hard link target {e.linkname!r} not in layer")
        _create(path, lambda: os.link(tpath, path, follow_symlinks=False))
        return 0  # the target carries the metadata
    elif type_ in (CHR, BLK, FIFO):
        kind_bits = stat.S_IFCHR if type_ == CHR else stat.S_IFBLK if type_ == BLK else stat.S_IFIFO
        dev = os.makedev(e.devmajor, e.devminor)
        _create(path, lambda: os.mknod(path, kind_bits | 0o600, dev))
    else:
        raise _refuse(name, f"unsupported tar entry type {e.type.encode()!r}")

    _apply_owner_mode(path, e)
    _apply_xattrs(path, e)
    os.utime(path, ns=(e.mtime_ns, e.mtime_ns), follow_symlinks=False)
    return 0


def _write_data(fd: int, reader: TarReader, e: Entry) -> int:
    """The entry's data into `fd` (a sparse file's regions at their offsets, its holes
    left holes); the file's length."""
    if e.sparse is None:
        for view in reader.chunks():
            _write_all(fd, view)
        return e.size
    for off, length in e.sparse:
        os.lseek(fd, off, os.SEEK_SET)
        for view in reader.chunks(length):
            _write_all(fd, view)
    os.ftruncate(fd, e.realsize)
    return e.realsize
