"""The daemon's `userns-remap`: containers' root mapped to an unprivileged host range.

Docker's `userns-remap: default` maps uid and gid 0..65535 of every container to the
first subordinate range of the user `dockremap` (/etc/subuid, /etc/subgid), creating
the user and its ranges when the host has none; `USER[:GROUP]` names another owner.
corral does the same, with one user namespace for the whole range:

- A *holder* namespace, made once at daemon start by a child that unshares and whose
  maps the daemon writes, is kept alive by a bind mount on `userns` under the state
  root (as `netns/` keeps network namespaces).  Containers join it by path (OCI
  `linux.namespaces` user, with the same uidMappings/gidMappings).
- Their network namespaces are made inside it (`create_netns`), so that they are
  owned by it: runc can not mount sysfs for a container whose netns belongs to the
  host's user namespace.
- Its fd idmaps the image layers (runtime/rootfs.py): they stay shared and unchanged
  on disk.  A container's upper directory is plain, owned by the range's root.

Parsing is pure; the rest runs programs (useradd, usermod) or forks a child, and is
called from a worker thread or before the daemon serves.
"""

from __future__ import annotations

import contextlib
import ctypes
import grp
import os
import pwd
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from supervisor.errors import CorralError

#: Docker's remap user for `default`, and the size of the range it gives it.
DEFAULT_USER = "dockremap"
RANGE_SIZE = 65536
FIRST_ID = 100000

CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
MS_BIND = 4096

_NAME = re.compile(r"^[a-z_][a-z0-9_-]*\$?$|^[0-9]+$", re.IGNORECASE)


@dataclass(frozen=True)
class Remap:
    """Container ids 0..size-1 are host ids uid..uid+size-1 (gid likewise)."""

    uid: int
    gid: int
    size: int

    def uid_map(self) -> str:
        return f"0 {self.uid} {self.size}\n"

    def gid_map(self) -> str:
        return f"0 {self.gid} {self.size}\n"


def check_setting(value: str) -> None:
    """`default`, `USER` or `USER:GROUP` (names or numbers); ValueError otherwise."""
    if value == "default":
        return
    user, _, group = value.partition(":")
    if not _NAME.match(user) or (group and not _NAME.match(group)) or value.count(":") > 1:
        raise ValueError(
            f"userns-remap {value!r}: want default, USER or USER:GROUP (names or ids)"
        )


def subordinate_ranges(text: str, name: str, number: int) -> list[tuple[int, int]]:
    """The `(start, count)` ranges /etc/subuid or /etc/subgid gives `name` (or its
    number), in file order; malformed lines are skipped, as shadow-utils does."""
    out = []
    for line in text.splitlines():
        parts = line.strip().split(":")
        if len(parts) != 3 or parts[0] not in (name, str(number)):
            continue
        with contextlib.suppress(ValueError):
            start, count = int(parts[1]), int(parts[2])
            if start >= 0 and count > 0:
                out.append((start, count))
    return out


def next_free_start(texts: list[str], size: int = RANGE_SIZE) -> int:
    """Where a new range of `size` ids may begin: after every range either file holds
    (Docker's `createSubordinateRanges` looks for the first gap; after all is safe)."""
    end = FIRST_ID
    for text in texts:
        for line in text.splitlines():
            parts = line.strip().split(":")
            if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
                end = max(end, int(parts[1]) + int(parts[2]))
    return end


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except FileNotFoundError:
        return ""


def resolve(value: str, subuid: str = "/etc/subuid", subgid: str = "/etc/subgid") -> Remap:
    """The range `userns-remap: value` means on this host; `default` creates the user
    `dockremap` and its ranges when missing, as dockerd does.  Raises CorralError
    naming what is missing."""
    check_setting(value)
    if value == "default":
        _ensure_default_user(subuid, subgid)
        user, group = DEFAULT_USER, DEFAULT_USER
    else:
        user, _, group = value.partition(":")
    try:
        pw = pwd.getpwnam(user) if not user.isdigit() else pwd.getpwuid(int(user))
    except KeyError:
        raise CorralError(f"userns-remap {value!r}: no such user {user!r}") from None
    group = group or pw.pw_name
    try:
        gr = grp.getgrnam(group) if not group.isdigit() else grp.getgrgid(int(group))
    except KeyError:
        raise CorralError(f"userns-remap {value!r}: no such group {group!r}") from None
    uids = subordinate_ranges(_read(subuid), pw.pw_name, pw.pw_uid)
    gids = subordinate_ranges(_read(subgid), gr.gr_name, gr.gr_gid)
    if not uids:
        raise CorralError(
            f"userns-remap {value!r}: no subordinate uids for {pw.pw_name} in {subuid}"
        )
    if not gids:
        raise CorralError(
            f"userns-remap {value!r}: no subordinate gids for {gr.gr_name} in {subgid}"
        )
    size = min(uids[0][1], gids[0][1])
    return Remap(uid=uids[0][0], gid=gids[0][0], size=size)


def _ensure_default_user(subuid: str, subgid: str) -> None:
    try:
        pw = pwd.getpwnam(DEFAULT_USER)
    except KeyError:
        _run(["useradd", "--system", "--shell", "/bin/false", "--no-create-home",
              "--user-group", DEFAULT_USER])
        pw = pwd.getpwnam(DEFAULT_USER)
    texts = [_read(subuid), _read(subgid)]
    has_uids = subordinate_ranges(texts[0], DEFAULT_USER, pw.pw_uid)
    has_gids = subordinate_ranges(texts[1], DEFAULT_USER, pw.pw_gid)
    if has_uids and has_gids:
        return
    start = next_free_start(texts)
    span = f"{start}-{start + RANGE_SIZE - 1}"
    args = ["usermod"]
    if not has_uids:
        args += ["--add-subuids", span]
    if not has_gids:
        args += ["--add-subgids", span]
    _run([*args, DEFAULT_USER])


def _run(argv: list[str]) -> None:
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        raise CorralError(f"userns-remap default: {argv[0]} is not installed") from None
    if r.returncode != 0:
        raise CorralError(f"userns-remap default: {' '.join(argv)}: {r.stderr.strip()}")


# A child that enters (or makes) the namespaces asked, says so, and waits for EOF:
# the daemon writes its maps or bind-mounts its namespace meanwhile.  A fresh
# interpreter, not a fork: the daemon has threads, and setns(CLONE_NEWUSER) refuses
# a multithreaded caller.
_CHILD = """
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
def check(rc, what):
    if rc != 0:
        e = ctypes.get_errno(); sys.stderr.write(f"{what}: {os.strerror(e)}"); sys.exit(1)
if sys.argv[1] == "user":
    check(libc.unshare(0x10000000), "unshare user namespace")
else:
    fd = os.open(sys.argv[2], os.O_RDONLY)
    check(libc.setns(fd, 0x10000000), "join user namespace")
    check(libc.unshare(0x40000000), "unshare network namespace")
sys.stdout.write("ready\\n"); sys.stdout.flush()
sys.stdin.read()
"""

_libc = ctypes.CDLL(None, use_errno=True)


def _bind(source: str, target: Path, what: str) -> None:
    if _libc.mount(source.encode(), bytes(target), b"none", MS_BIND, None) != 0:
        err = ctypes.get_errno()
        raise CorralError(f"{what}: bind {source} on {target}: {os.strerror(err)}")


def _with_child(args: list[str], then: Callable[[int], None]) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-I", "-c", _CHILD, *args],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdin is not None
        if proc.stdout.readline() != "ready\n":
            proc.wait(timeout=30)
            message = proc.stderr.read().strip() if proc.stderr else ""
            raise CorralError(f"userns-remap: {message or 'the namespace helper failed'}")
        then(proc.pid)
    finally:
        if proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()
        proc.wait(timeout=30)
        for f in (proc.stdout, proc.stderr):
            if f is not None:
                f.close()


def make_holder(path: Path, remap: Remap) -> None:
    """The range's user namespace, kept by a bind mount on `path` (one made by an
    earlier daemon is replaced: its mapping may have changed)."""
    release(path)
    fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o444)
    os.close(fd)

    def mapped(pid: int) -> None:
        Path(f"/proc/{pid}/uid_map").write_text(remap.uid_map())
        Path(f"/proc/{pid}/gid_map").write_text(remap.gid_map())
        _bind(f"/proc/{pid}/ns/user", path, "userns-remap")

    _with_child(["user"], mapped)


def release(path: Path) -> None:
    """Unmount and remove a holder (or netns) file; missing is fine."""
    with contextlib.suppress(OSError):
        if _libc.umount2(bytes(path), 2) != 0:  # MNT_DETACH
            pass
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def create_netns(path: Path, holder: Path) -> None:
    """A new network namespace owned by the holder's user namespace, kept alive by a
    bind mount on `path` (netlink.create_netns's, for remapped containers).  Blocking."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444)
    os.close(fd)
    try:
        _with_child(["net", str(holder)],
                    lambda pid: _bind(f"/proc/{pid}/ns/net", path, "network namespace"))
    except BaseException:
        with contextlib.suppress(OSError):
            path.unlink()
        raise


def check_reachable(root: Path) -> None:
    """The remapped root must pass through every parent of the state root (dockerd
    checks the same): runc, joined to the container's user namespace, walks down to
    each rootfs through them."""
    for parent in Path(os.path.realpath(root)).parents:
        if not os.stat(parent).st_mode & 0o001:
            raise CorralError(
                f"userns-remap: the state root {root} is not reachable by the remapped "
                f"root: {parent} lacks o+x (chmod o+x it, or choose another root)"
            )
