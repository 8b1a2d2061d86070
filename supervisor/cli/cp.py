"""`corral cp`: docker cp's client side, rule for rule.

The daemon only stats, tars and untars paths inside the container (`engine/archive.py`);
what `SRC_PATH/.`, a trailing `/`, a missing destination or a file onto a directory
mean is decided here, as docker's CLI decides it (pkg/archive's CopyInfo,
PrepareArchiveCopy, RebaseArchiveEntries): `plan_copy` is that decision as a pure
function.  Extraction on the host is the daemon's own code, rooted at the destination
directory with the kernel's confinement, so a hostile tar cannot write outside it.
"""

from __future__ import annotations

import os
import posixpath
import sys

from supervisor.cli.context import CliError
from supervisor.cli.parser import Command, Opt, parse

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any, BinaryIO

    from supervisor.cli.context import Cli

CP = Command(
    "cp",
    "corral cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n\tcorral cp [OPTIONS] SRC_PATH|- "
    "CONTAINER:DEST_PATH",
    "Copy files/folders between a container and the local filesystem\n\n"
    "Use '-' as the source to read a tar archive from stdin\n"
    "and extract it to a directory destination in a container.\n"
    "Use '-' as the destination to stream a tar archive of a\n"
    "container source to stdout.",
    (
        Opt("archive", "a", help="Archive mode (copy all uid/gid information)"),
        Opt("follow-link", "L", help="Always follow symbol link in SRC_PATH"),
        Opt("quiet", "q", help="Suppress progress output during copy. Progress output is "
            "automatically suppressed if no terminal is attached"),
    ),
    min_args=2,
    max_args=2,
)

GO_DIR = 1 << 31
GO_SYMLINK = 1 << 27
GO_DEVICE = 1 << 26
GO_IRREGULAR = 1 << 19

ERR_CANNOT_COPY_DIR = "cannot copy directory"
ERR_DIR_NOT_EXISTS = "no such directory"
ERR_NOT_DIRECTORY = "not a directory"


# --------------------------------------------------------------- pure rules


def split_cp_arg(arg: str) -> tuple[str, str]:
    """docker's splitCpArg: `CONTAINER:PATH`, or a local path (absolute ones always)."""
    if arg.startswith("/"):
        return "", arg
    container, sep, path = arg.partition(":")
    if not sep:
        return "", arg
    return container, path


def specifies_current_dir(path: str) -> bool:
    return posixpath.basename(path) == "."


def has_trailing_sep(path: str) -> bool:
    return path.endswith("/")


def asserts_directory(path: str) -> bool:
    return has_trailing_sep(path) or specifies_current_dir(path)


def split_dir_entry(path: str) -> tuple[str, str]:
    """docker's SplitPathDirEntry: (dir, base) with `/.` kept as the base `.`."""
    cleaned = posixpath.normpath(path)
    if specifies_current_dir(path):
        cleaned += "/."
    return posixpath.dirname(cleaned) or ".", posixpath.basename(cleaned) or "/"


def rebase_target(path: str, resolved: str) -> tuple[str, str]:
    """docker's GetRebaseName: the resolved path with the tails of `path`, and the
    name its top entry must take ("" when it keeps its own)."""
    if specifies_current_dir(path) and not specifies_current_dir(resolved):
        resolved += "/."
    if has_trailing_sep(path) and not has_trailing_sep(resolved):
        resolved += "/"
    rebase = ""
    if _go_base(path) != _go_base(resolved):
        rebase = _go_base(path)
    return resolved, rebase


def _go_base(path: str) -> str:
    stripped = path.rstrip("/")
    return stripped.rsplit("/", 1)[-1] if stripped else "/"


class CopyInfo:
    """docker's archive.CopyInfo."""

    __slots__ = ("path", "exists", "is_dir", "rebase_name")

    def __init__(self, path: str, exists: bool = False, is_dir: bool = False,
                 rebase_name: str = "") -> None:
        self.path = path
        self.exists = exists
        self.is_dir = is_dir
        self.rebase_name = rebase_name

    def __repr__(self) -> str:
        return (f"CopyInfo({self.path!r}, exists={self.exists}, is_dir={self.is_dir}, "
                f"rebase={self.rebase_name!r})")


def plan_copy(src: CopyInfo, dst: CopyInfo) -> tuple[str, tuple[str, str] | None]:
    """docker's PrepareArchiveCopy: the directory to extract into and the renaming of
    the archive's top entry (old base, new base), or None to extract it as it is.
    Raises ValueError with docker's message when the copy cannot be made."""
    dst_dir, dst_base = split_dir_entry(dst.path)
    _, src_base = split_dir_entry(src.path)
    if src.rebase_name:
        src_base = src.rebase_name
    if dst.exists and dst.is_dir:
        return dst.path, None
    if dst.exists and src.is_dir:
        raise ValueError(ERR_CANNOT_COPY_DIR)
    if dst.exists or src.is_dir:
        return dst_dir, (src_base, dst_base)
    if asserts_directory(dst.path):
        raise ValueError(ERR_DIR_NOT_EXISTS)
    return dst_dir, (src_base, dst_base)


# --------------------------------------------------------------- host side


def _eval_symlinks(path: str) -> str:
    """Go's filepath.EvalSymlinks (an error if the path does not exist)."""
    os.stat(path)
    resolved = os.path.realpath(path)
    return resolved if path.startswith("/") else os.path.relpath(resolved)


def source_info(path: str, follow: bool) -> CopyInfo:
    """docker's CopyInfoSourcePath for a host path."""
    path = os.path.normpath(path) + ("/." if specifies_current_dir(path) else
                                     "/" if has_trailing_sep(path) and path != "/" else "")
    try:
        if follow:
            resolved, rebase = rebase_target(path, _eval_symlinks(path))
        else:
            dir_path, base = path.rsplit("/", 1) if "/" in path else ("", path)
            resolved_dir = _eval_symlinks(dir_path + "/" if dir_path else ".")
            resolved = resolved_dir.rstrip("/") + "/" + base
            rebase = ""
            if has_trailing_sep(path) and _go_base(path) != _go_base(resolved):
                rebase = _go_base(path)
        st = os.lstat(resolved)
    except OSError as exc:
        raise CliError(f"lstat {path}: {(exc.strerror or str(exc)).lower()}") from None
    import stat

    return CopyInfo(resolved, True, stat.S_ISDIR(st.st_mode), rebase)


def destination_info(path: str) -> CopyInfo:
    """docker's CopyInfoDestinationPath: links at the end followed; a missing path is
    fine if its parent is a directory."""
    import stat

    original = path
    try:
        st: os.stat_result | None = os.lstat(path)
    except FileNotFoundError:
        st = None
    n = 0
    while st is not None and stat.S_ISLNK(st.st_mode):
        n += 1
        if n > 10:
            raise CliError(f"too many symlinks in {original}")
        target = os.readlink(path)
        if not target.startswith("/"):
            target = posixpath.join(split_dir_entry(path)[0], target)
        path = target
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            st = None
    if st is None:
        parent = split_dir_entry(path)[0]
        try:
            pst = os.stat(parent)
        except OSError as exc:
            raise CliError(f"stat {parent}: {(exc.strerror or str(exc)).lower()}") from None
        if not stat.S_ISDIR(pst.st_mode):
            raise CliError(ERR_NOT_DIRECTORY)
        return CopyInfo(path)
    return CopyInfo(path, True, stat.S_ISDIR(st.st_mode))


def _q(name: str) -> str:
    from urllib.parse import quote

    return quote(name, safe="")


def _stat(cli: Cli, container: str, path: str) -> dict[str, Any] | None:
    from supervisor.api.client import ApiError
    from supervisor.engine.archive import STAT_HEADER, parse_stat_header

    try:
        resp = cli.client.request("HEAD", f"/containers/{_q(container)}/archive", {"path": path})
    except ApiError as exc:
        if exc.status == 404 and "No such container" not in exc.message:
            return None
        raise
    value = resp.headers.get(STAT_HEADER.lower())
    resp.read()
    return parse_stat_header(value) if value else None


def _check_container(cli: Cli, container: str) -> None:
    """A missing container is named as docker names it, before any path work."""
    cli.client.get(f"/containers/{_q(container)}/json")


def _extract(chunks: Iterator[bytes], into: str, rebase: tuple[str, str] | None) -> None:
    from typing import cast

    from supervisor.engine.archive import ExtractOptions, extract

    class _Reader:
        """The response body as the file object tarfile reads from."""

        def __init__(self) -> None:
            self.buf = b""

        def read(self, n: int = -1) -> bytes:
            while n < 0 or len(self.buf) < n:
                try:
                    self.buf += next(chunks)
                except StopIteration:
                    break
            if n < 0:
                out, self.buf = self.buf, b""
            else:
                out, self.buf = self.buf[:n], self.buf[n:]
            return out

    fd = os.open(into, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        reader = cast("BinaryIO", _Reader())
        extract(fd, "/", reader, ExtractOptions(no_overwrite_dir_non_dir=True, chown=False,
                                                rebase=rebase))
    finally:
        os.close(fd)


def copy_from_container(cli: Cli, container: str, src: str, dst: str, follow: bool) -> None:
    _check_container(cli, container)
    rebase_name = ""
    if follow:
        st = _stat(cli, container, src)
        if st is not None and int(st.get("mode", 0)) & GO_SYMLINK:
            target = str(st.get("linkTarget") or "")
            if not target.startswith("/"):
                target = posixpath.join(split_dir_entry(src)[0], target)
            src, rebase_name = rebase_target(src, target)
    resp = cli.client.request("GET", f"/containers/{_q(container)}/archive", {"path": src})
    if dst == "-":
        out = cli.bout
        for chunk in resp.iter_chunks():
            out.write(chunk)
        out.flush()
        return
    from supervisor.engine.archive import STAT_HEADER, parse_stat_header

    header = resp.headers.get(STAT_HEADER.lower())
    st = parse_stat_header(header) if header else {}
    src_info = CopyInfo(src, True, bool(int(st.get("mode", 0)) & GO_DIR), rebase_name)
    rebase_first: tuple[str, str] | None = None
    if rebase_name:
        rebase_first = (split_dir_entry(src)[1], rebase_name)
    dst_info = destination_info(dst)
    try:
        into, rebase = plan_copy(src_info, dst_info)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    if rebase_first is not None:
        rebase = (rebase_first[0], rebase[1]) if rebase is not None else rebase_first
    _extract(resp.iter_chunks(), into, rebase)


def copy_to_container(cli: Cli, container: str, src: str, dst: str, follow: bool,
                      archive: bool) -> None:
    _check_container(cli, container)
    dst_info = CopyInfo(dst)
    st = _stat(cli, container, dst)
    if st is not None and int(st.get("mode", 0)) & GO_SYMLINK:
        target = str(st.get("linkTarget") or "")
        if not target.startswith("/"):
            target = posixpath.join(split_dir_entry(dst)[0], target)
        dst_info.path = target
        st = _stat(cli, container, target)
    if st is not None:
        mode = int(st.get("mode", 0))
        if mode & GO_DEVICE or mode & GO_IRREGULAR:
            what = "a device" if mode & GO_DEVICE else "an irregular file"
            raise CliError(f'destination "{container}:{dst}" must be a directory or a regular '
                           f"file: got {what}")
        dst_info.exists, dst_info.is_dir = True, bool(mode & GO_DIR)
    body: Any
    if src == "-":
        if not dst_info.is_dir:
            raise CliError(f'destination "{container}:{dst}" must be a directory')
        into = dst_info.path
        body = _stdin_chunks()
    else:
        src_info = source_info(src, follow)
        try:
            into, rebase = plan_copy(src_info, dst_info)
        except ValueError as exc:
            raise CliError(str(exc)) from None
        from supervisor.engine.archive import tar_local

        directory, base = split_dir_entry(src_info.path)
        arcname = base if rebase is None else rebase[1]
        if rebase is None and src_info.rebase_name:
            arcname = src_info.rebase_name
        body = tar_local(directory, base, arcname)
    query = {"path": into, "noOverwriteDirNonDir": "true",
             "copyUIDGID": "true" if archive else "false"}
    cli.client.request("PUT", f"/containers/{_q(container)}/archive", query, body=body,
                       headers={"Content-Type": "application/x-tar"}).read()


def _stdin_chunks() -> Iterator[bytes]:
    stdin = sys.stdin.buffer
    while chunk := stdin.read(1 << 20):
        yield chunk


def cmd_cp(cli: Cli, argv: list[str]) -> int:
    p = parse(CP, argv)
    source, destination = p.args
    src_container, src_path = split_cp_arg(source)
    dst_container, dst_path = split_cp_arg(destination)
    if not src_path:
        raise CliError("source can not be empty")
    if not dst_path:
        raise CliError("destination can not be empty")
    if src_container and dst_container:
        raise CliError("copying between containers is not supported")
    if src_container:
        if p["archive"]:
            pass  # docker: -a changes nothing when copying out (owners stay the tar's)
        copy_from_container(cli, src_container, src_path, dst_path, bool(p["follow_link"]))
    elif dst_container:
        copy_to_container(cli, dst_container, src_path, dst_path, bool(p["follow_link"]),
                          bool(p["archive"]))
    else:
        raise CliError("must specify at least one container source")
    return 0
