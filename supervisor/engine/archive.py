"""`docker cp` and `docker export` in the daemon: paths, stat headers, tar out and in.

Docker's rules, kept: `GET /containers/{id}/archive?path=P` resolves every component of
P but the last inside the container (so `P` naming a symlink copies the link), tars it
with its top entry renamed to P's base (`/etc` -> `etc/...`, `/etc/.` -> `./...`) and
describes it in `X-Docker-Container-Path-Stat` (base64 JSON with Go's os.FileMode
bits); `PUT` resolves P fully (a link to a directory is a fine extraction point),
requires a directory, and unpacks into it, refusing to replace a directory by a file
or back when the client asks (`noOverwriteDirNonDir`, docker cp does).

All of it works on a descriptor of the container's root (`runtime/inroot.py`): paths
are resolved by the kernel with that fd as `/`, and everything below is fd-relative
and never follows a symlink, so neither a planted link, a `..` nor a race with the
container's processes leads outside.  Tar entries going in are checked as image
layers' are (`images/tarsafe.entry_parts`) before anything is written.  The tar going
out is produced piece by piece (`tar_chunks`) so no file is ever held in memory.
"""

from __future__ import annotations

import base64
import errno
import json
import os
import posixpath
import stat
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, BinaryIO

from supervisor.errors import CorralError, InvalidArgument
from supervisor.images.tarsafe import entry_parts
from supervisor.rmtree import remove_at
from supervisor.runtime.inroot import (
    PSEUDO_FILESYSTEMS,
    fs_type,
    lstat_in_root,
    open_in_root,
    resolve_name,
)
from supervisor.runtime.userns import Remap

STAT_HEADER = "X-Docker-Container-Path-Stat"
_BLOCK = 512
_CHUNK = 1 << 20
_BATCH = 64 << 10

# Go's os.FileMode type bits, as docker puts them on the wire.
GO_DIR = 1 << 31
GO_SYMLINK = 1 << 27
GO_DEVICE = 1 << 26
GO_NAMED_PIPE = 1 << 25
GO_SOCKET = 1 << 24
GO_SETUID = 1 << 23
GO_SETGID = 1 << 22
GO_CHAR_DEVICE = 1 << 21
GO_STICKY = 1 << 20


def to_container_ids(remap: Remap | None, uid: int, gid: int) -> tuple[int, int]:
    """A host owner as the container sees it; ids outside the range stay as they are."""
    if remap is None:
        return uid, gid
    if remap.uid <= uid < remap.uid + remap.size:
        uid -= remap.uid
    if remap.gid <= gid < remap.gid + remap.size:
        gid -= remap.gid
    return uid, gid


def to_host_ids(remap: Remap | None, uid: int, gid: int) -> tuple[int, int]:
    """A container owner (a tar entry's) as the host stores it under userns-remap."""
    if remap is None:
        return uid, gid
    return (remap.uid + uid if uid < remap.size else uid,
            remap.gid + gid if gid < remap.size else gid)


class NotFound(CorralError):
    status = 404


# ----------------------------------------------------------------- pure rules


def go_file_mode(st_mode: int) -> int:
    """A Unix st_mode as Go's os.FileMode (what `docker cp` reads in the header)."""
    mode = st_mode & 0o777
    fmt = stat.S_IFMT(st_mode)
    if fmt == stat.S_IFDIR:
        mode |= GO_DIR
    elif fmt == stat.S_IFLNK:
        mode |= GO_SYMLINK
    elif fmt == stat.S_IFBLK:
        mode |= GO_DEVICE
    elif fmt == stat.S_IFCHR:
        mode |= GO_DEVICE | GO_CHAR_DEVICE
    elif fmt == stat.S_IFIFO:
        mode |= GO_NAMED_PIPE
    elif fmt == stat.S_IFSOCK:
        mode |= GO_SOCKET
    if st_mode & stat.S_ISUID:
        mode |= GO_SETUID
    if st_mode & stat.S_ISGID:
        mode |= GO_SETGID
    if st_mode & stat.S_ISVTX:
        mode |= GO_STICKY
    return mode


def _specifies_current_dir(path: str) -> bool:
    return posixpath.basename(path) == "."


def preserve_trailing(cleaned: str, original: str) -> str:
    """docker's PreserveTrailingDotOrSeparator: `/a/.` and `/a/` keep their tails."""
    if not _specifies_current_dir(cleaned) and _specifies_current_dir(original):
        if not cleaned.endswith("/"):
            cleaned += "/"
        cleaned += "."
    if not cleaned.endswith("/") and original.endswith("/"):
        cleaned += "/"
    return cleaned


def container_abs_path(path: str) -> str:
    """The API's `path` as docker takes it: absolute in the container, tails kept."""
    return preserve_trailing(posixpath.normpath(posixpath.join("/", path)), path)


def go_base(path: str) -> str:
    """Go's filepath.Base: trailing slashes dropped, `/` for the root."""
    stripped = path.rstrip("/")
    if not stripped:
        return "/"
    return stripped.rsplit("/", 1)[-1]


def rfc3339(ns: int) -> str:
    """Go's time.Time JSON (RFC 3339 with nanoseconds, trailing zeros dropped)."""
    whole, nanos = divmod(ns, 1_000_000_000)
    base = datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    frac = f".{nanos:09d}".rstrip("0") if nanos else ""
    return f"{base}{frac}Z"


@dataclass(frozen=True)
class PathStat:
    """docker's ContainerPathStat."""

    name: str
    size: int
    mode: int  # Go's os.FileMode bits
    mtime: str
    link_target: str = ""

    @property
    def is_dir(self) -> bool:
        return bool(self.mode & GO_DIR)

    def to_api(self) -> dict[str, object]:
        return {"name": self.name, "size": self.size, "mode": self.mode,
                "mtime": self.mtime, "linkTarget": self.link_target}

    def header(self) -> str:
        raw = json.dumps(self.to_api(), separators=(",", ":")).encode()
        return base64.b64encode(raw).decode()


def parse_stat_header(value: str) -> dict[str, Any]:
    """The header back into its JSON (the CLI's side)."""
    data = json.loads(base64.b64decode(value))
    if not isinstance(data, dict):
        raise ValueError("path stat header is not a JSON object")
    return data


def not_found(path: str, container: str) -> NotFound:
    return NotFound(f"Could not find the file {path} in container {container}")


# ----------------------------------------------------------------- stat, out


def stat_path(root_fd: int, path: str, container: str) -> PathStat:
    """docker's StatPath: the last component not followed; a link's target resolved."""
    abs_path = container_abs_path(path)
    try:
        st = lstat_in_root(root_fd, abs_path)
    except FileNotFoundError:
        raise not_found(path, container) from None
    except NotADirectoryError:
        raise not_found(path, container) from None
    if not stat.S_ISDIR(st.st_mode) and _on_pseudo_fs(root_fd, abs_path):
        # /proc, /sys: not the container's files (docker copies from its root
        # filesystem, where these are empty mount points)
        raise not_found(path, container)
    link = ""
    if stat.S_ISLNK(st.st_mode):
        link = resolve_name(root_fd, abs_path, follow_last=True)
    return PathStat(go_base(abs_path), st.st_size, go_file_mode(st.st_mode),
                    rfc3339(st.st_mtime_ns), link)


def _on_pseudo_fs(root_fd: int, abs_path: str) -> bool:
    fd = open_in_root(root_fd, abs_path, os.O_PATH | os.O_NOFOLLOW)
    try:
        return fs_type(fd) in PSEUDO_FILESYSTEMS
    finally:
        os.close(fd)


def _header(name: str, st: os.stat_result, kind: bytes, link: str = "",
            ids: tuple[int, int] | None = None) -> bytes:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = stat.S_IMODE(st.st_mode)
    info.uid, info.gid = ids if ids is not None else (st.st_uid, st.st_gid)
    info.uname = info.gname = ""
    info.mtime = int(st.st_mtime)
    info.linkname = link
    if kind == tarfile.REGTYPE:
        info.size = st.st_size
    if kind in (tarfile.CHRTYPE, tarfile.BLKTYPE):
        info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


class _TarWriter:
    """Tar bytes produced entry by entry; `take()` hands over what is ready."""

    def __init__(self, remap: Remap | None = None) -> None:
        self.parts: list[bytes] = []
        self.size = 0
        self.seen: dict[tuple[int, int], str] = {}
        self.remap = remap

    def ids(self, st: os.stat_result) -> tuple[int, int]:
        """Owners as the container sees them (userns-remap: host ids shifted back)."""
        return to_container_ids(self.remap, st.st_uid, st.st_gid)

    def put(self, data: bytes) -> None:
        self.parts.append(data)
        self.size += len(data)

    def take(self) -> bytes:
        out = b"".join(self.parts)
        self.parts, self.size = [], 0
        return out

    def entry(self, dir_fd: int, name: str, arcname: str, st: os.stat_result) -> Iterator[bytes]:
        """One entry (not a directory's children); file data streamed in chunks."""
        fmt = stat.S_IFMT(st.st_mode)
        if fmt == stat.S_IFDIR:
            self.put(_header(arcname.rstrip("/") + "/", st, tarfile.DIRTYPE, ids=self.ids(st)))
        elif fmt == stat.S_IFLNK:
            target = os.readlink(name, dir_fd=dir_fd)
            self.put(_header(arcname, st, tarfile.SYMTYPE, target, ids=self.ids(st)))
        elif fmt == stat.S_IFREG:
            key = (st.st_dev, st.st_ino)
            if st.st_nlink > 1 and key in self.seen:
                self.put(_header(arcname, st, tarfile.LNKTYPE, self.seen[key], ids=self.ids(st)))
                return
            if st.st_nlink > 1:
                self.seen[key] = arcname
            yield from self._file(dir_fd, name, arcname, st)
        elif fmt in (stat.S_IFCHR, stat.S_IFBLK):
            kind = tarfile.CHRTYPE if fmt == stat.S_IFCHR else tarfile.BLKTYPE
            self.put(_header(arcname, st, kind, ids=self.ids(st)))
        elif fmt == stat.S_IFIFO:
            self.put(_header(arcname, st, tarfile.FIFOTYPE, ids=self.ids(st)))
        # sockets have no tar form; docker skips them too
        if self.size >= _BATCH:
            yield self.take()

    def _file(self, dir_fd: int, name: str, arcname: str, st: os.stat_result) -> Iterator[bytes]:
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        fd = os.open(name, flags, dir_fd=dir_fd)
        try:
            now = os.fstat(fd)
            if not stat.S_ISREG(now.st_mode):
                return  # swapped under us: nothing of it goes out
            self.put(_header(arcname, st, tarfile.REGTYPE, ids=self.ids(st)))
            left = st.st_size
            while left > 0:
                chunk = os.read(fd, min(_CHUNK, left))
                if not chunk:
                    chunk = bytes(min(_CHUNK, left))  # the file shrank: keep the size
                left -= len(chunk)
                self.put(chunk)
                if self.size >= _BATCH:
                    yield self.take()
            pad = -st.st_size % _BLOCK
            if pad:
                self.put(bytes(pad))
        finally:
            os.close(fd)


def _walk(dir_fd: int, name: str, arcname: str, writer: _TarWriter,
          skip_mounts: bool) -> Iterator[bytes]:
    """Entry `name` of `dir_fd` and, for a directory, all below it; no recursion, one
    descriptor per level, never through a symlink."""
    st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    yield from writer.entry(dir_fd, name, arcname, st)
    if not stat.S_ISDIR(st.st_mode):
        return
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    top = os.open(name, flags, dir_fd=dir_fd)
    if fs_type(top) in PSEUDO_FILESYSTEMS:
        os.close(top)
        return
    dev = os.fstat(top).st_dev
    stack: list[tuple[int, str, list[str]]] = [(top, arcname.rstrip("/"), [])]
    stack[-1][2].extend(sorted(os.listdir(top), reverse=True))
    try:
        while stack:
            fd, prefix, pending = stack[-1]
            if not pending:
                os.close(fd)
                stack.pop()
                continue
            child = pending.pop()
            childarc = f"{prefix}/{child}" if prefix else child
            try:
                cst = os.stat(child, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                continue
            if stat.S_ISDIR(cst.st_mode):
                if skip_mounts and cst.st_dev != dev:
                    continue
                yield from writer.entry(fd, child, childarc, cst)
                try:
                    cfd = os.open(child, flags, dir_fd=fd)
                except (FileNotFoundError, NotADirectoryError, OSError):
                    continue
                if cst.st_dev != os.fstat(fd).st_dev and fs_type(cfd) in PSEUDO_FILESYSTEMS:
                    os.close(cfd)  # /proc, /sys...: the directory, empty, as docker has it
                    continue
                stack.append((cfd, childarc, sorted(os.listdir(cfd), reverse=True)))
            else:
                try:
                    yield from writer.entry(fd, child, childarc, cst)
                except FileNotFoundError:
                    continue
    finally:
        for fd, _, _ in stack:
            os.close(fd)


def tar_chunks(root_fd: int, path: str, container: str,
               remap: Remap | None = None) -> Iterator[bytes]:
    """The tar docker's `GET .../archive` sends for `path` (top entry renamed to its
    base name), as a stream of pieces."""
    abs_path = container_abs_path(path)
    pst = stat_path(root_fd, path, container)
    rebase = go_base(abs_path)
    writer = _TarWriter(remap)
    if pst.is_dir:
        fd = open_in_root(root_fd, abs_path, os.O_PATH | os.O_DIRECTORY)
        name = "."
        arc = "./" if rebase == "." else rebase
        if rebase == "/":
            arc = "/"
    else:
        parent = abs_path.rstrip("/").rpartition("/")[0] or "/"
        fd = open_in_root(root_fd, parent, os.O_PATH | os.O_DIRECTORY)
        name = go_base(abs_path)
        arc = rebase
    try:
        if arc == "/":
            yield from _walk_root(fd, writer)
        else:
            yield from _walk(fd, name, arc, writer, skip_mounts=False)
    finally:
        os.close(fd)
    writer.put(bytes(2 * _BLOCK))
    yield writer.take()


def _walk_root(path_fd: int, writer: _TarWriter) -> Iterator[bytes]:
    """`/` itself: its children, named without a leading `/` (docker's rebase to "")."""
    fd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=path_fd)
    try:
        for child in sorted(os.listdir(fd)):
            yield from _walk(fd, child, child, writer, skip_mounts=False)
    finally:
        os.close(fd)


def tar_local(directory: str, name: str, arcname: str) -> Iterator[bytes]:
    """The CLI's side of `docker cp SRC CONTAINER:DST`: entry `name` of `directory`
    (and all below it) under the name `arcname`, then the end of the archive."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    writer = _TarWriter()
    try:
        yield from _walk(fd, name, arcname, writer, skip_mounts=False)
    finally:
        os.close(fd)
    writer.put(bytes(2 * _BLOCK))
    yield writer.take()


def export_chunks(root: str, remap: Remap | None = None) -> Iterator[bytes]:
    """`docker export`: the merged root (not the volumes mounted in it) as a tar."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    writer = _TarWriter(remap)
    try:
        for child in sorted(os.listdir(fd)):
            yield from _walk(fd, child, child, writer, skip_mounts=True)
    finally:
        os.close(fd)
    writer.put(bytes(2 * _BLOCK))
    yield writer.take()


# ----------------------------------------------------------------- in


@dataclass(frozen=True)
class ExtractOptions:
    no_overwrite_dir_non_dir: bool = False
    owner: tuple[int, int] | None = None  # copyUIDGID: the container user's ids
    chown: bool = True  # False: the CLI's side (docker's NoLchown)
    rebase: tuple[str, str] | None = None  # docker's RebaseArchiveEntries (old, new)
    remap: Remap | None = None  # userns-remap: entries' owners shifted into the range


def rebase_name(name: str, old: str, new: str) -> str:
    """docker's RebaseArchiveEntries for one name: the leading `old` becomes `new`."""
    if name == old or name.startswith(old + "/"):
        return new + name[len(old):]
    return name


def check_entry(info: tarfile.TarInfo) -> tuple[str, ...]:
    """An entry's path components, or InvalidArgument if it would leave the extraction
    directory (its name, a hard link's target, a relative symlink climbing out, as
    docker's breakout check) or is of a type tar extraction cannot make."""
    parts = entry_parts(info.name)
    if info.islnk():
        try:
            target = entry_parts(info.linkname)
        except InvalidArgument:
            target = ()
        if not target:
            raise InvalidArgument(
                f"refusing tar entry {info.name!r}: hard link target "
                f"{info.linkname!r} is outside of the extraction directory")
    elif info.issym() and not info.linkname.startswith("/"):
        joined = posixpath.normpath(posixpath.join(*parts[:-1] or ("."), info.linkname))
        if joined == ".." or joined.startswith("../"):
            raise InvalidArgument(
                f"refusing tar entry {info.name!r}: invalid symlink "
                f"{info.name!r} -> {info.linkname!r}")
    elif not (info.isreg() or info.isdir() or info.issym() or info.ischr()
              or info.isblk() or info.isfifo()):
        raise InvalidArgument(
            f"refusing tar entry {info.name!r}: unsupported type {info.type!r}")
    return parts


def _forget_headers(tar: tarfile.TarFile) -> None:
    """tarfile keeps every header it read (for getmembers()); a tar of a million
    entries would be a million TarInfo in memory.  Iterating still works without."""
    vars(tar)["members"].clear()


def check_tar(src: BinaryIO) -> int:
    """Every entry checked (`check_entry`) before anything is written; returns the
    number of entries."""
    count = 0
    try:
        # seekable ("r:"): the check skips over file data instead of reading it
        with tarfile.open(fileobj=src, mode="r:*") as tar:
            for info in tar:
                count += 1
                check_entry(info)
                _forget_headers(tar)
    except tarfile.TarError as e:
        raise InvalidArgument(f"invalid tar archive: {e}") from None
    return count


def _dir_flags() -> int:
    return os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC


class _Extractor:
    def __init__(self, root_fd: int, dest: str, opts: ExtractOptions) -> None:
        self.root_fd = root_fd
        self.dest = dest.rstrip("/") or ""
        self.opts = opts
        self.cached: tuple[tuple[str, ...], int] | None = None
        self.dir_times: list[tuple[str, int]] = []

    def close(self) -> None:
        if self.cached is not None:
            os.close(self.cached[1])
            self.cached = None

    def shown(self, parts: tuple[str, ...]) -> str:
        return "/".join((self.dest, *parts)) or "/"

    def parent(self, parts: tuple[str, ...]) -> int:
        """The directory holding entry `parts`, opened inside the root (links in it
        followed there), missing levels made 0755 as tar does."""
        want = parts[:-1]
        if self.cached is not None and self.cached[0] == want:
            return self.cached[1]
        self.close()
        fd = open_in_root(self.root_fd, self.dest or "/", _dir_flags())
        try:
            for i, comp in enumerate(want):
                try:
                    nxt = open_in_root(self.root_fd, self.shown(want[: i + 1]), _dir_flags())
                except FileNotFoundError:
                    os.mkdir(comp, 0o755, dir_fd=fd)
                    nxt = os.open(comp, _dir_flags() | os.O_NOFOLLOW, dir_fd=fd)
                except NotADirectoryError:
                    raise InvalidArgument(
                        f"cannot extract {self.shown(parts)}: "
                        f"{self.shown(want[: i + 1])} is not a directory") from None
                os.close(fd)
                fd = nxt
        except BaseException:
            os.close(fd)
            raise
        self.cached = (want, fd)
        return fd

    def chown(self, name: str, pfd: int, uid: int, gid: int) -> None:
        if self.opts.chown:
            os.chown(name, uid, gid, dir_fd=pfd, follow_symlinks=False)

    def entry(self, tar: tarfile.TarFile, info: tarfile.TarInfo) -> None:
        if self.opts.rebase is not None:
            was, now = self.opts.rebase
            info.name = rebase_name(info.name, was, now)
            if info.islnk():
                info.linkname = rebase_name(info.linkname, was, now)
        parts = check_entry(info)
        if not parts:
            if info.isdir():
                return  # the extraction directory itself stays as it is
            raise InvalidArgument(f"refusing tar entry {info.name!r}: not a directory")
        pfd = self.parent(parts)
        name = parts[-1]
        path = self.shown(parts)
        try:
            old: os.stat_result | None = os.stat(name, dir_fd=pfd, follow_symlinks=False)
        except FileNotFoundError:
            old = None
        if old is not None:
            old_dir = stat.S_ISDIR(old.st_mode)
            if info.isdir() and old_dir:
                pass
            elif self.opts.no_overwrite_dir_non_dir and old_dir != info.isdir():
                if old_dir:
                    raise InvalidArgument(
                        f'cannot overwrite directory "{path}" with non-directory "{info.name}"')
                raise InvalidArgument(
                    f'cannot overwrite non-directory "{path}" with directory "{info.name}"')
            else:
                remove_at(pfd, name, path)
                old = None
        uid, gid = to_host_ids(self.opts.remap, *(self.opts.owner or (info.uid, info.gid)))
        mode = info.mode & 0o7777
        if info.isdir():
            if old is None:
                os.mkdir(name, 0o700, dir_fd=pfd)
            fd = os.open(name, _dir_flags() | os.O_NOFOLLOW, dir_fd=pfd)
            try:
                if self.opts.chown:
                    os.fchown(fd, uid, gid)
                os.fchmod(fd, mode)
            finally:
                os.close(fd)
            self.dir_times.append((path, int(info.mtime)))
            return
        if info.isreg():
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            fd = os.open(name, flags, 0o600, dir_fd=pfd)
            try:
                data = tar.extractfile(info)
                if data is not None:
                    while chunk := data.read(_CHUNK):
                        _write_all(fd, chunk)
                if self.opts.chown:
                    os.fchown(fd, uid, gid)
                os.fchmod(fd, mode)  # after chown: chown clears setuid bits
            finally:
                os.close(fd)
        elif info.issym():
            os.symlink(info.linkname, name, dir_fd=pfd)
            self.chown(name, pfd, uid, gid)
        elif info.islnk():
            target = entry_parts(info.linkname)
            tfd = open_in_root(self.root_fd, self.shown(target[:-1]) if target[:-1]
                               else (self.dest or "/"), _dir_flags())
            try:
                os.link(target[-1], name, src_dir_fd=tfd, dst_dir_fd=pfd,
                        follow_symlinks=False)
            except FileNotFoundError:
                raise InvalidArgument(
                    f"refusing tar entry {info.name!r}: hard link target "
                    f"{info.linkname!r} not found") from None
            finally:
                os.close(tfd)
            return
        else:
            kind = (stat.S_IFCHR if info.ischr() else stat.S_IFBLK if info.isblk()
                    else stat.S_IFIFO)
            os.mknod(name, kind | mode, os.makedev(info.devmajor, info.devminor), dir_fd=pfd)
            self.chown(name, pfd, uid, gid)
        os.utime(name, (info.mtime, info.mtime), dir_fd=pfd, follow_symlinks=False)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def extraction_dir(root_fd: int, path: str, container: str) -> str:
    """docker's PUT target: `path` resolved fully in the root; must be a directory."""
    abs_path = container_abs_path(path)
    try:
        fd = open_in_root(root_fd, abs_path, os.O_PATH)
    except (FileNotFoundError, NotADirectoryError):
        raise not_found(path, container) from None
    try:
        if not stat.S_ISDIR(os.fstat(fd).st_mode):
            raise InvalidArgument("extraction point is not a directory")
    finally:
        os.close(fd)
    return resolve_name(root_fd, abs_path, follow_last=True)


def extract(root_fd: int, dest: str, src: BinaryIO, opts: ExtractOptions) -> None:
    """Unpack the (checked) tar `src` into the in-root directory `dest`."""
    ex = _Extractor(root_fd, dest, opts)
    try:
        with tarfile.open(fileobj=src, mode="r|*") as tar:
            for info in tar:
                ex.entry(tar, info)
                _forget_headers(tar)
    except tarfile.TarError as e:
        raise InvalidArgument(f"invalid tar archive: {e}") from None
    except OSError as e:
        if e.errno == errno.EROFS:
            raise InvalidArgument("container rootfs is marked read-only") from None
        raise
    finally:
        ex.close()
    for path, mtime in reversed(ex.dir_times):
        try:
            fd = open_in_root(root_fd, path, _dir_flags() | os.O_NOFOLLOW)
        except OSError:
            continue
        try:
            os.utime(fd, (mtime, mtime))
        finally:
            os.close(fd)
