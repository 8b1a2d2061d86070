"""The lean layer-tar reader (`images/tarstream.py`) on hostile and unusual headers:
long names by GNU `L`/`K` and pax, ustar prefixes, base-256 numbers, sparse files as
GNU tar writes them (checked against GNU tar's own unpack), and archives cut short or
corrupt, each refused with a one-line message and nothing left in the destination."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from supervisor.errors import InvalidArgument
from supervisor.images.tarsafe import unpack_layer
from supervisor.images.tarstream import (
    MAX_EXTENSION,
    REG,
    Entry,
    TarReader,
    parse_pax,
    pax_time_ns,
)


def _tar(members: list[tuple[tarfile.TarInfo, bytes]], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for info, data in members:
            info.size = len(data) if info.isreg() else 0
            tar.addfile(info, io.BytesIO(data) if data else None)
    return buf.getvalue()


def _info(name: str, type_: bytes = tarfile.REGTYPE, **kw: object) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = type_
    info.mtime = 1_600_000_000
    for k, v in kw.items():
        setattr(info, k, v)
    return info


def _read(raw: bytes, chunk: int = 700) -> list[tuple[Entry, bytes]]:
    """Every entry with its data, the archive fed in `chunk`-byte pieces (headers and
    data cross chunk boundaries)."""
    parts = iter([raw[i:i + chunk] for i in range(0, len(raw), chunk)])
    reader = TarReader(lambda: next(parts, b""))
    return [(e, b"".join(bytes(v) for v in reader.chunks())) for e in reader.entries()]


@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT])
@pytest.mark.parametrize("chunk", [1, 511, 700, 1 << 20])
def test_names_links_and_numbers_read_as_tarfile_reads_them(fmt: int, chunk: int) -> None:
    long_dir = "d" * 120
    members = [
        (_info(f"{long_dir}/" + "f" * 90), b"x" * 1000),  # ustar: prefix
        (_info("s", tarfile.SYMTYPE, linkname="t" * 99), b""),
        (_info("dir/", tarfile.DIRTYPE, mode=0o1777, uid=70000, gid=2**21 - 1), b""),
        (_info("dev", tarfile.CHRTYPE, devmajor=1, devminor=3), b""),
        (_info("h", tarfile.LNKTYPE, linkname="dev"), b""),
    ]
    if fmt != tarfile.USTAR_FORMAT:  # names and links past ustar's fields, ids past octal
        members += [
            (_info("n" * 300, uid=2**40, mtime=2**34), b"long"),
            (_info("l", tarfile.SYMTYPE, linkname="y" * 3000), b""),
            (_info("caf\u00e9"), "\u00e9".encode()),
        ]
    raw = _tar(members, fmt)
    got = _read(raw, chunk)
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        want = list(tar)
    assert [e.name for e, _ in got] == [w.name for w in want]
    assert [(e.mode, e.uid, e.gid, e.mtime_ns // 10**9, e.linkname) for e, _ in got] == [
        (w.mode, w.uid, w.gid, int(w.mtime), w.linkname) for w in want]
    assert [data for _, data in got if data] == [m[1] for m in members if m[1]]
    assert next(e for e, _ in got if e.name == "dev").devminor == 3


def test_pax_xattrs_times_and_records() -> None:
    info = _info("f")
    info.pax_headers = {"SCHILY.xattr.user.bin": "v\u00e9", "mtime": "1700000000.123456789"}
    (e, data), = _read(_tar([(info, b"abc")]))
    assert e.xattrs == {"user.bin": "v\u00e9".encode()}
    assert e.mtime_ns == 1_700_000_000_123_456_789  # to the nanosecond, as GNU tar
    assert data == b"abc"
    assert pax_time_ns(b"-1.5") == -1_500_000_000
    assert parse_pax(b"11 path=ab\n") == {"path": b"ab"}
    for bad in (b"99 path=ab\n", b"x path=ab\n", b"11 pathxab\n", b"10 path=ab!"):
        with pytest.raises(InvalidArgument, match="invalid tar archive: bad pax"):
            parse_pax(bad)


def _corrupt(raw: bytes, at: int, value: bytes) -> bytes:
    return raw[:at] + value + raw[at + len(value):]


def _hostile() -> dict[str, tuple[bytes, str]]:
    ok = _tar([(_info("a"), b"x" * 600), (_info("b"), b"y")])
    huge = _tar([(_info("p" * 200), b"")], tarfile.GNU_FORMAT)  # an `L` header first
    size_field = 124
    return {
        "cut in a header": (ok[:1536 + 100], "unexpected end of data"),
        "cut in a file": (ok[:512 + 300], "unexpected end of data"),
        "bad checksum": (_corrupt(ok, 1536 + 10, b"Z"), "bad header checksum"),
        "garbage": (b"not a tar at all" * 100, "bad header checksum"),
        "bad number": (_fix_sum(_corrupt(ok, size_field, b"9x9\0")), "bad number"),
        "negative size": (_fix_sum(_corrupt(ok, size_field, b"\xff" * 12)), "negative size"),
        "huge long name": (_fix_sum(_corrupt(huge, size_field, b"%011o\0" % (MAX_EXTENSION + 1))),
                           "extended header of"),
        "long name, no entry": (huge[:1024] + bytes(1024), "no entry after it"),
    }


def _fix_sum(raw: bytes, at: int = 0) -> bytes:
    """The header at `at` with its checksum made right again (a crafted header)."""
    block = bytearray(raw[at:at + 512])
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % sum(block)
    return raw[:at] + bytes(block) + raw[at + 512:]


@pytest.mark.parametrize("case", sorted(_hostile()))
def test_hostile_archives_are_refused_and_leave_nothing(tmp_path: Path, case: str) -> None:
    raw, why = _hostile()[case]
    dest = tmp_path / "d"
    dest.mkdir()
    with pytest.raises(InvalidArgument, match=why) as exc:
        unpack_layer(io.BytesIO(raw), dest)
    assert "\n" not in exc.value.message
    # what the unpack made before the bad header is the caller's to discard (the layer
    # store removes `dest` whole); nothing was made outside it
    assert sorted(os.listdir(tmp_path)) == ["d"]


def test_an_archive_ending_between_entries_or_empty_is_read_as_docker_reads_it(
        tmp_path: Path) -> None:
    raw = _tar([(_info("a"), b"x")])
    assert [e.name for e, _ in _read(raw[:1024])] == ["a"]  # no end-of-archive blocks
    assert _read(b"") == []
    assert _read(raw + b"trailing garbage after the end") == _read(raw)


needs_gnu_tar = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("tar") is None, reason="needs root and GNU tar")


@needs_gnu_tar
@pytest.mark.parametrize("fmt", ["gnu", "posix"])
def test_sparse_files_unpack_as_gnu_tar_unpacks_them(tmp_path: Path, fmt: str) -> None:
    src = tmp_path / "src"
    src.mkdir()
    f = src / "sparse"
    with open(f, "wb") as out:
        out.truncate(64 << 20)
        for off in (0, 5_000_000, 9_000_000, 40 << 20):  # more regions than a GNU header's 4
            out.seek(off)
            out.write(os.urandom(3000))
        for i in range(30):  # an extended sparse header's worth
            out.seek((10 << 20) + i * (1 << 20))
            out.write(b"r%d" % i)
    archive = tmp_path / "a.tar"
    subprocess.run(["tar", f"--format={fmt}", "-S", "-cf", str(archive), "-C", str(src),
                    "sparse"], check=True)
    assert archive.stat().st_size < (1 << 20)  # GNU tar did store it sparse
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    ours.mkdir()
    theirs.mkdir()
    assert unpack_layer(archive, ours) == 64 << 20
    subprocess.run(["tar", "-xpf", str(archive), "-C", str(theirs)], check=True)
    assert (ours / "sparse").read_bytes() == (theirs / "sparse").read_bytes() == f.read_bytes()
    assert os.stat(ours / "sparse").st_blocks * 512 < (1 << 20)  # holes stayed holes


def test_a_sparse_map_that_does_not_fit_its_file_is_refused(tmp_path: Path) -> None:
    info = _info("s")
    info.pax_headers = {"GNU.sparse.major": "1", "GNU.sparse.minor": "0",
                        "GNU.sparse.name": "s", "GNU.sparse.realsize": "10"}
    body = b"1\n5\n100\n".ljust(512, b"\0") + b"x" * 100  # 100 bytes at 5 of a 10-byte file
    with pytest.raises(InvalidArgument, match="sparse map of 's' does not fit its file"):
        _read(_tar([(info, body)]))
    info.pax_headers = {"GNU.sparse.major": "0", "GNU.sparse.minor": "1",
                        "GNU.sparse.map": "0,1"}
    with pytest.raises(InvalidArgument, match="unsupported sparse format"):
        _read(_tar([(info, b"x")]))


def test_header_only_entries_carry_no_data() -> None:
    """A symlink's or directory's size field is not data (as tarfile and Go read it):
    the next header is read right after it."""
    raw = _tar([(_info("s", tarfile.SYMTYPE, linkname="t"), b""), (_info("f"), b"z")],
               tarfile.GNU_FORMAT)
    raw = _fix_sum(_corrupt(raw, 124, b"%011o\0" % 5000))
    got = _read(raw)
    assert [(e.name, e.type, data) for e, data in got] == [("s", "2", b""), ("f", REG, b"z")]
