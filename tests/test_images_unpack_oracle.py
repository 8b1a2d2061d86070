"""The layer unpack against GNU tar: the same tree, byte for byte and bit for bit.

`tarsafe.unpack_layer` is tuned for CPU (no pathlib, no buffered file objects, names
measured without encoding when ASCII); this holds it to what `tar -xp --xattrs` makes
of the same archive (modes incl. setuid, owners, mtimes of files, dirs and symlinks,
xattrs, hard-link groups, devices, long and non-ASCII names).  Whiteouts are corral's
own conversion and are tested in test_images_tarsafe.py.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest

from supervisor.images.tarsafe import unpack_layer

DEBIAN = Path("/var/cache/corral-bench/debian-bookworm-minbase.tar")
Tree = dict[str, tuple[object, ...]]

needs_root_and_tar = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("tar") is None, reason="needs root and GNU tar"
)


def tree(root: Path) -> Tree:
    """Every entry under root with what a container would see of it."""
    out: Tree = {}
    groups: dict[tuple[int, int], str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        names = [*dirnames, *filenames] + ([""] if dirpath == str(root) else [])
        for name in names:
            p = os.path.join(dirpath, name) if name else dirpath
            rel = os.path.relpath(p, root)
            st = os.lstat(p)
            kind = stat.S_IFMT(st.st_mode)
            extra: object = None
            if stat.S_ISREG(kind):
                with open(p, "rb") as f:
                    extra = hashlib.sha256(f.read()).hexdigest()
                if st.st_nlink > 1:
                    extra = (extra, groups.setdefault((st.st_dev, st.st_ino), rel))
            elif stat.S_ISLNK(kind):
                extra = os.readlink(p)
            elif stat.S_ISCHR(kind) or stat.S_ISBLK(kind):
                extra = (os.major(st.st_rdev), os.minor(st.st_rdev))
            xattrs = {} if stat.S_ISLNK(kind) else {
                a: os.getxattr(p, a) for a in os.listxattr(p) if not a.startswith("security.")
            }
            out[rel] = (stat.filemode(st.st_mode), st.st_uid, st.st_gid, st.st_mtime_ns,
                        extra, sorted(xattrs.items()))
    return out


def both(tmp_path: Path, tar_bytes: bytes | Path) -> tuple[Tree, Tree]:
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    ours.mkdir(mode=0o755)
    theirs.mkdir(mode=0o755)
    src = tar_bytes if isinstance(tar_bytes, Path) else io.BytesIO(tar_bytes)
    unpack_layer(src, ours)
    archive = tar_bytes if isinstance(tar_bytes, Path) else tmp_path / "a.tar"
    if not isinstance(tar_bytes, Path):
        archive.write_bytes(tar_bytes)
    subprocess.run(
        ["tar", "-xpf", str(archive), "-C", str(theirs), "--numeric-owner", "--same-owner",
         "--xattrs", "--xattrs-include=user.*"],
        check=True,
    )
    return tree(ours), tree(theirs)


def varied_tar(fmt: int) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        def add(name: str, type_: bytes, mode: int, *, data: bytes = b"", link: str = "",
                uid: int = 0, gid: int = 0, mtime: int = 1_600_000_000,
                xattrs: dict[str, str] | None = None, dev: tuple[int, int] = (0, 0)) -> None:
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.uid, info.gid, info.mtime = type_, mode, uid, gid, mtime
            info.linkname, info.size = link, len(data)
            info.devmajor, info.devminor = dev
            if xattrs and fmt == tarfile.PAX_FORMAT:
                info.pax_headers = {f"SCHILY.xattr.{k}": v for k, v in xattrs.items()}
            tar.addfile(info, io.BytesIO(data) if data else None)

        add("./", tarfile.DIRTYPE, 0o755, mtime=1_500_000_000)
        add("./etc/", tarfile.DIRTYPE, 0o750, uid=0, gid=42, mtime=1_500_000_001)
        add("./etc/passwd", tarfile.REGTYPE, 0o644, data=b"root:x:0:0\n" * 300)
        add("./etc/empty", tarfile.REGTYPE, 0o600, uid=1000, gid=1000)
        add("./usr/", tarfile.DIRTYPE, 0o755, mtime=1_500_000_002)
        add("./usr/bin/", tarfile.DIRTYPE, 0o755, mtime=1_500_000_003)
        add("./usr/bin/su", tarfile.REGTYPE, 0o4755, data=os.urandom(70_000), mtime=1_234)
        add("./usr/bin/wall", tarfile.REGTYPE, 0o2755, uid=0, gid=5, data=b"\x7fELF")
        add("./usr/bin/sudo-link", tarfile.LNKTYPE, 0o4755, link="./usr/bin/su")
        add("./usr/bin/sh", tarfile.SYMTYPE, 0o777, link="dash", mtime=1_111)
        add("./usr/bin/abs", tarfile.SYMTYPE, 0o777, link="/etc/passwd")
        add("./usr/share/" + "d" * 120 + "/", tarfile.DIRTYPE, 0o755)
        add("./usr/share/" + "d" * 120 + "/" + "f" * 200, tarfile.REGTYPE, 0o644, data=b"long")
        add("./usr/share/caf\u00e9-\u20ac.txt", tarfile.REGTYPE, 0o640, data=b"x", uid=7)
        add("./tmp/", tarfile.DIRTYPE, 0o1777)
        add("./dev/", tarfile.DIRTYPE, 0o755)
        add("./dev/null", tarfile.CHRTYPE, 0o666, dev=(1, 3))
        add("./dev/sda", tarfile.BLKTYPE, 0o660, gid=6, dev=(8, 0))
        add("./run/fifo", tarfile.FIFOTYPE, 0o620)  # parent implied: made 0755
        add("./var/cap", tarfile.REGTYPE, 0o755, data=b"y" * 5000,
            xattrs={"user.mime": "text/plain", "user.\u00e9": "v\u00e9"})
        add("./var/", tarfile.DIRTYPE, 0o700, mtime=1_400_000_000)
        add("./var/dir-x/", tarfile.DIRTYPE, 0o755, xattrs={"user.tag": "d"})
    return buf.getvalue()


@needs_root_and_tar
@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT])
def test_a_varied_layer_unpacks_as_gnu_tar_unpacks_it(tmp_path: Path, fmt: int) -> None:
    ours, theirs = both(tmp_path, varied_tar(fmt))
    for implied in ("run", "usr/share"):  # made for a child: stamped "now" by either
        ours[implied] = ours[implied][:3] + ours[implied][4:]
        theirs[implied] = theirs[implied][:3] + theirs[implied][4:]
    assert ours == theirs
    assert ours["usr/bin/su"][0] == "-rwsr-xr-x"  # the oracle itself kept setuid


@needs_root_and_tar
@pytest.mark.skipif(not DEBIAN.exists(), reason="the bench's Debian image is not cached")
def test_the_debian_minbase_layer_unpacks_as_gnu_tar_unpacks_it(tmp_path: Path) -> None:
    ours, theirs = both(tmp_path, DEBIAN)
    assert len(ours) > 8000
    assert ours == theirs
