"""Fuzz layer unpacking (supervisor/images/tarsafe.py) with hostile archives: names
that climb out, absolute names, links planted then followed, whiteouts of `..`, deep
and long names, corrupt bytes.  Every archive unpacks or is refused with a 400, and
nothing is ever written outside the destination: the parent's listing is unchanged
and planted sentinels (a file, a directory, their targets by absolute path) are
untouched, by lstat."""

from __future__ import annotations

import io
import os
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from fuzzing import case, fuzz
from hypothesis import example, given
from hypothesis import strategies as st

from supervisor.errors import InvalidArgument
from supervisor.images.tarsafe import unpack_layer
from supervisor.rmtree import remove_tree

BASE = Path(tempfile.gettempdir()) / "corral-fuzz-tar"
OUTSIDE = BASE / "outside"

NAMES = [
    "a", "a/b", "./a", "a/", "..", "../x", "a/../../x", "/abs", "/" + str(OUTSIDE) + "/s",
    str(OUTSIDE) + "/new", "l", "l/x", "l/../x", "d/l/x", ".", "./", ".wh.a", "a/.wh..wh..opq",
    ".wh..", ".wh...", "a/.wh..wh.plnk", "sub/.wh.l", "x" * 256, "/".join(["d"] * 600),
    "é", "a\\b", "a\nb", "hl", "a/dir", "dir",
]  # fmt: skip
LINKS = ["", "a", "/", "..", "../outside", "../outside/s", str(OUTSIDE), str(OUTSIDE) + "/s",
         "l", "a/b", "/etc", "x" * 5000, "hl", "."]  # fmt: skip
TYPES = [tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.CHRTYPE,
         tarfile.FIFOTYPE, tarfile.BLKTYPE, b"Z", tarfile.CONTTYPE]  # fmt: skip

XATTRS = ["SCHILY.xattr.user.a", "SCHILY.xattr.trusted.overlay.redirect",
          "SCHILY.xattr.security.capability"]  # fmt: skip


@st.composite
def layer_tars(draw: st.DrawFn) -> bytes:
    buf = io.BytesIO()
    fmt = draw(st.sampled_from([tarfile.PAX_FORMAT, tarfile.GNU_FORMAT]))
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for _ in range(draw(st.integers(0, 6))):
            name = draw(st.sampled_from(NAMES) | st.text(min_size=1, max_size=10))
            info = tarfile.TarInfo(name)
            info.type = draw(st.sampled_from(TYPES))
            info.linkname = draw(st.sampled_from(LINKS) | st.text(max_size=8))
            info.mode = draw(st.sampled_from([0o644, 0o755, 0o4755, 0o7777, 0]))
            info.uid = draw(st.sampled_from([0, 1000, 65534, 2**21 - 1]))
            info.mtime = draw(st.sampled_from([0, 1_700_000_000, 2**33 - 1]))
            info.devmajor, info.devminor = draw(st.sampled_from([(0, 0), (1, 3), (8, 0)]))
            if draw(st.booleans()) and fmt == tarfile.PAX_FORMAT:
                info.pax_headers = {draw(st.sampled_from(XATTRS)): "v"}
            data = draw(st.binary(max_size=16)) if info.type == tarfile.REGTYPE else b""
            info.size = len(data)
            try:
                tar.addfile(info, io.BytesIO(data) if data else None)
            except (ValueError, UnicodeError):
                continue  # a header tarfile cannot write: not the input under test
    raw = buf.getvalue()
    for pos, byte in draw(
        st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=2)
    ):
        if raw:
            p = pos % len(raw)
            raw = raw[:p] + bytes([byte]) + raw[p + 1 :]
    return raw


def _snapshot() -> dict[str, tuple[int, int, int, int]]:
    """Everything under BASE but the destinations: path -> (mode, ino, size, mtime)."""
    out = {}
    for root, dirs, files in os.walk(BASE):
        if root == str(BASE):
            dirs[:] = [d for d in dirs if d == "outside"]
        for n in dirs + files:
            p = os.path.join(root, n)
            st_ = os.lstat(p)
            out[p] = (st_.st_mode, st_.st_ino, st_.st_size, st_.st_mtime_ns)
    return out


@pytest.fixture(scope="module")
def planted() -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("unpacking layers needs root (chown, mknod)")
    shutil.rmtree(BASE, ignore_errors=True)
    (OUTSIDE / "dir").mkdir(parents=True)
    (OUTSIDE / "s").write_text("sentinel")
    yield BASE
    shutil.rmtree(BASE, ignore_errors=True)


def _mounts() -> list[str]:
    return [ln for ln in Path("/proc/self/mountinfo").read_text().splitlines() if str(BASE) in ln]


def _tar(*entries: tuple[str, bytes, str]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, type_, link in entries:
            info = tarfile.TarInfo(name)
            info.type, info.linkname = type_, link
            tar.addfile(info)
    return buf.getvalue()


@fuzz(ci_cases=300)
@given(layer_tars())
@example(_tar(("l", tarfile.SYMTYPE, "../outside"), ("l/s", tarfile.REGTYPE, "")))
@example(_tar(("hl", tarfile.LNKTYPE, "../outside/s")))
@example(_tar(("a", tarfile.CHRTYPE, ""), ("a/.wh..wh..opq", tarfile.REGTYPE, "")))
@example(_tar(("a", tarfile.SYMTYPE, "")))  # symlink(2) ENOENT: was a 500
@example(_tar(("a\x00b", tarfile.REGTYPE, "")))  # a PAX name with NUL: ValueError
@example(_tar(("a", tarfile.SYMTYPE, "x\x00y")))
@example(_tar(("a/dir", tarfile.DIRTYPE, ""), ("a", tarfile.SYMTYPE, str(OUTSIDE))))  # utime
@example(_tar(("a/b", tarfile.DIRTYPE, ""), ("a", tarfile.REGTYPE, "")))  # followed a; ENOTDIR
def test_unpack_hostile_layers(planted: Path, raw: bytes) -> None:
    before = _snapshot()
    mounts = _mounts()
    dest = Path(tempfile.mkdtemp(dir=planted, prefix="dest-"))
    try:
        with case("layer unpack", InvalidArgument):
            unpack_layer(io.BytesIO(raw), dest)
    finally:
        remove_tree(dest)
        assert _snapshot() == before, "an unpack wrote outside its destination"
        assert _mounts() == mounts
        assert sorted(p.name for p in planted.iterdir()) == ["outside"]
