"""The init binary `--init` runs as PID 1: Docker's docker-init, Debian's tini-static.

It is bind-mounted into containers whose images have nothing of the host's, so it must
be statically linked: a dynamic `tini` would fail inside a busybox container with a
bare "no such file or directory".  The daemon finds it once at start (`init-path`, or
the first of CANDIDATES on PATH, as dockerd looks up docker-init) and says at once when
a configured one is unusable, rather than at the first `--init`.
"""

from __future__ import annotations

import os
import shutil
import struct

#: Looked up on PATH, in order: Debian's package `tini` installs /usr/bin/tini-static;
#: a host with Docker has its docker-init (also a static tini).
CANDIDATES = ("tini-static", "docker-init")

PT_INTERP = 3


def is_static_elf(head: bytes) -> bool:
    """True when `head` (the file's start, program headers included) is an ELF
    executable without a program interpreter, i.e. one that needs no ld.so."""
    if len(head) < 64 or head[:4] != b"\x7fELF":
        return False
    is64 = head[4] == 2
    endian = "<" if head[5] == 1 else ">"
    if is64:
        phoff, = struct.unpack_from(endian + "Q", head, 32)
        phentsize, phnum = struct.unpack_from(endian + "HH", head, 54)
    else:
        phoff, = struct.unpack_from(endian + "I", head, 28)
        phentsize, phnum = struct.unpack_from(endian + "HH", head, 42)
    for i in range(phnum):
        at = phoff + i * phentsize
        if at + 4 > len(head):
            return False  # headers beyond what we read: not an ELF we can vouch for
        p_type, = struct.unpack_from(endian + "I", head, at)
        if p_type == PT_INTERP:
            return False
    return True


def check_init(path: str) -> None:
    """Raise ValueError naming what is wrong with `path` as an init binary."""
    if not os.path.isabs(path):
        raise ValueError(f"{path}: must be an absolute path")
    if not os.path.isfile(path):
        raise ValueError(f"{path}: no such file")
    if not os.access(path, os.X_OK):
        raise ValueError(f"{path}: not executable")
    with open(path, "rb") as f:
        head = f.read(4096)
    if not is_static_elf(head):
        raise ValueError(
            f"{path}: not a statically linked executable, so it can not run inside "
            "containers (Debian's tini package has /usr/bin/tini-static)"
        )


def find_init(configured: str, search_path: str | None = None) -> str:
    """The init binary's host path: `configured` if given (checked), else the first
    usable candidate on `search_path` (default $PATH), else "" (none on this host)."""
    if configured:
        check_init(configured)
        return configured
    for name in CANDIDATES:
        found = shutil.which(name, path=search_path)
        if found:
            try:
                check_init(os.path.realpath(found))
            except ValueError:
                continue
            return os.path.realpath(found)
    return ""


def parse_version(text: str) -> str | None:
    """What /info's `InitCommit.ID` says for `<init> --version`: tini's git commit
    (`tini version 0.19.0 - git.de40ad0` → "de40ad0", dockerd's parseInitVersion),
    else its version (Debian's build prints only `tini version 0.19.0`); None when
    the output is neither (dockerd then reports "N/A")."""
    head, _, tail = text.strip().partition(" - ")
    git = tail.strip().split(".")
    if len(git) == 2 and git[0] == "git" and git[1]:
        return git[1]
    head = head.strip()
    if head.startswith("tini version "):
        return head.removeprefix("tini version ").strip() or None
    return None
