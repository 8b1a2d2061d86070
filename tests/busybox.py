"""Make a tiny busybox root filesystem tarball from Debian's busybox-static.

Used by the test fixtures (and the README demo) so no registry is ever needed: the
tarball holds /bin/busybox, one symlink per applet, and the few files a root needs.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tarfile
import time
from pathlib import Path

BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")

PASSWD = (
    "root:x:0:0:root:/root:/bin/sh\n"
    "daemon:x:1:1:daemon:/usr/sbin:/bin/false\n"
    "www-data:x:33:33:www-data:/var/www:/bin/false\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
)
GROUP = "root:x:0:\ndaemon:x:1:\nwww-data:x:33:\nnogroup:x:65534:\n"


def find_busybox() -> Path:
    for candidate in BUSYBOX_CANDIDATES:
        p = Path(candidate)
        if p.exists():
            return p
    found = shutil.which("busybox")
    if found:
        return Path(found)
    raise FileNotFoundError("busybox not found: install Debian's busybox-static")


def extract(archive: Path, dest: Path, filter: str = "fully_trusted") -> None:
    """Unpack an archive the tests made, through tarfile's `filter` ("data" refuses
    absolute names, `..` and links out of `dest`).

    `extractall(filter=)` came with 3.11.4 (and 3.12 warns without it), while Debian
    bookworm's Python, which scripts/setup prefers, is 3.11.2: there the archive is
    unpacked unfiltered.
    """
    with tarfile.open(archive) as tar:
        if hasattr(tarfile, "fully_trusted_filter"):
            tar.extractall(dest, filter=filter)
        else:
            tar.extractall(dest)


def make_rootfs_tar(dest: Path) -> Path:
    """Write the busybox rootfs tarball to `dest` and return it."""
    busybox = find_busybox()
    applets = subprocess.run(
        [str(busybox), "--list"], check=True, capture_output=True, text=True
    ).stdout.split()
    now = int(time.time())

    def add_dir(tar: tarfile.TarFile, name: str, mode: int = 0o755) -> None:
        info = tarfile.TarInfo(name)
        info.type = tarfile.DIRTYPE
        info.mode = mode
        info.mtime = now
        tar.addfile(info)

    def add_file(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.mode = mode
        info.mtime = now
        tar.addfile(info, io.BytesIO(data))

    dest.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(dest, "w") as tar:
        for d in ("bin", "dev", "etc", "proc", "sys", "root", "var", "var/www", "usr", "usr/bin"):
            add_dir(tar, d)
        add_dir(tar, "tmp", 0o1777)
        add_file(tar, "bin/busybox", busybox.read_bytes(), 0o755)
        for applet in applets:
            if applet == "busybox":
                continue
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type = tarfile.SYMTYPE
            link.linkname = "busybox"
            link.mtime = now
            tar.addfile(link)
        add_file(tar, "etc/passwd", PASSWD.encode())
        add_file(tar, "etc/group", GROUP.encode())
        add_file(tar, "var/www/index.html", b"hello from corral\n")
    return dest


if __name__ == "__main__":
    import sys

    print(make_rootfs_tar(Path(sys.argv[1] if len(sys.argv) > 1 else "busybox-rootfs.tar")))
