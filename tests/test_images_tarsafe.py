"""Layer unpacking (hostile tars, whiteouts, metadata) and the upperdir -> tar reverse."""

from __future__ import annotations

import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

from supervisor.errors import InvalidArgument
from supervisor.images.diff import write_layer_from_upper
from supervisor.images.tarsafe import (
    MAX_DEPTH,
    OPAQUE_XATTR,
    entry_parts,
    name_budget,
    unpack_layer,
    whiteout_kind,
)

Entry = tuple[str, str, bytes | str]  # (kind, name, data-or-linkname)


def make_tar(entries: list[Entry]) -> io.BytesIO:
    """kinds: f=file, d=dir, s=symlink, h=hardlink, c=char device "maj:min", p=fifo."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for kind, name, data in entries:
            info = tarfile.TarInfo(name)
            info.mtime = 1_600_000_000
            info.mode = 0o644
            if kind == "f":
                assert isinstance(data, bytes)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
                continue
            if kind == "d":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
            elif kind == "s":
                info.type, info.linkname = tarfile.SYMTYPE, str(data)
            elif kind == "h":
                info.type, info.linkname = tarfile.LNKTYPE, str(data)
            elif kind == "c":
                major, minor = str(data).split(":")
                info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, int(major), int(minor)
            elif kind == "p":
                info.type = tarfile.FIFOTYPE
            tar.addfile(info)
    buf.seek(0)
    return buf


@pytest.fixture
def sandbox(tmp_path: Path) -> tuple[Path, Path]:
    """(dest, outside): dest is where layers unpack; outside is a sibling to watch."""
    dest = tmp_path / "sandbox" / "layer"
    dest.mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim").write_text("untouched")
    return dest, outside


def snapshot(p: Path) -> set[str]:
    return {str(x.relative_to(p)) for x in p.rglob("*")}


# --------------------------------------------------------------- pure cores


@pytest.mark.parametrize(
    ("name", "parts"),
    [
        ("a", ("a",)),
        ("./a/b/", ("a", "b")),
        ("a//b", ("a", "b")),
        ("a/../b", ("b",)),
        (".", ()),
        ("./", ()),
    ],
)
def test_entry_parts_normalises(name: str, parts: tuple[str, ...]) -> None:
    assert entry_parts(name) == parts


@pytest.mark.parametrize("name", ["../x", "/abs", "/", "a/../../x", "..", "./../x"])
def test_entry_parts_refuses_escapes(name: str) -> None:
    with pytest.raises(InvalidArgument, match="path escapes the layer"):
        entry_parts(name)


def test_whiteout_kind() -> None:
    assert whiteout_kind(("a", "b")) is None
    assert whiteout_kind(("d", ".wh.x")) == ("whiteout", ("d", "x"))
    assert whiteout_kind((".wh.x",)) == ("whiteout", ("x",))
    assert whiteout_kind(("d", ".wh..wh..opq")) == ("opaque", ("d",))
    assert whiteout_kind((".wh..wh.plnk",)) == ("meta", (".wh..wh.plnk",))
    with pytest.raises(InvalidArgument):
        whiteout_kind(("d", ".wh."))


def test_entry_parts_bounds_depth_length_and_components() -> None:
    assert len(entry_parts("/".join(["a"] * MAX_DEPTH))) == MAX_DEPTH
    with pytest.raises(InvalidArgument, match=f"513 levels deep \\(at most {MAX_DEPTH}\\)"):
        entry_parts("/".join(["a"] * (MAX_DEPTH + 1)))
    long_name = "/".join(["x" * 200] * 25)  # 5,024 bytes in 25 levels
    with pytest.raises(InvalidArgument, match="5024 bytes long") as exc:
        entry_parts(long_name)
    assert len(exc.value.message) < 300  # one readable line, the name by its two ends
    assert "'" + "x" * 60 + "..." in exc.value.message
    assert entry_parts("a/b", max_bytes=3) == ("a", "b")
    with pytest.raises(InvalidArgument, match="at most 2 here"):
        entry_parts("a/b", max_bytes=2)
    with pytest.raises(InvalidArgument, match="component is longer than 255 bytes"):
        entry_parts("d/" + "n" * 256)


def test_the_name_budget_leaves_room_for_the_host_path(tmp_path: Path) -> None:
    assert name_budget(Path("/x")) == 4092  # "/x/" + name and its NUL fit PATH_MAX
    deep = tmp_path / ("p" * 200) / ("q" * 200)
    assert name_budget(deep) == 4094 - len(str(deep))


def deep_dirs_tar(depth: int, component: str = "a") -> io.BytesIO:
    return make_tar([("d", "/".join([component] * n), b"") for n in range(1, depth + 1)])


def test_a_tar_2100_directories_deep_is_refused_by_name(sandbox: tuple[Path, Path]) -> None:
    dest, _ = sandbox
    with pytest.raises(InvalidArgument) as exc:
        unpack_layer(deep_dirs_tar(2100), dest)
    assert exc.value.message.startswith("refusing tar entry 'a/a/a/")
    assert "513 levels deep (at most 512)" in exc.value.message


def test_a_name_too_long_for_the_host_path_is_refused(sandbox: tuple[Path, Path]) -> None:
    dest, _ = sandbox
    budget = name_budget(dest)
    fits = "/".join(["x" * 250] * (budget // 251))  # the deepest that fits, < 512 levels
    unpack_layer(make_tar([("f", fits, b"ok")]), dest)
    assert (dest / fits).read_bytes() == b"ok"
    too_long = fits + "/" + "y" * (budget - len(fits))
    with pytest.raises(InvalidArgument, match=f"{budget + 1} bytes long"):
        unpack_layer(make_tar([("f", too_long, b"no")]), dest)


def test_a_symlink_target_longer_than_path_max_is_refused(sandbox: tuple[Path, Path]) -> None:
    dest, _ = sandbox
    with pytest.raises(InvalidArgument, match="'l': symlink target is longer than 4095"):
        unpack_layer(make_tar([("s", "l", "t/" * 2048)]), dest)


# ----------------------------------------------------------- hostile tars


@pytest.mark.parametrize(
    ("entries", "culprit"),
    [
        ([("f", "../x", b"evil")], "../x"),
        ([("f", "a/../../x", b"evil")], "a/../../x"),
        ([("f", "/abs", b"evil")], "/abs"),
        ([("s", "evil", "/etc"), ("f", "evil/passwd", b"evil")], "evil/passwd"),
        ([("s", "up", "../../.."), ("f", "up/x", b"evil")], "up/x"),
        ([("s", "out", "../../outside"), ("f", "out/victim", b"evil")], "out/victim"),
        ([("d", "d", b""), ("s", "d/l", "/"), ("d", "d/l/tmp", b"")], "d/l/tmp"),
        ([("h", "hl", "../../outside/victim")], "hl"),
        ([("h", "hl", "/etc/passwd")], "hl"),
        ([("s", "l", "/etc"), ("h", "hl", "l/passwd")], "hl"),
    ],
)
def test_hostile_entries_refused(
    sandbox: tuple[Path, Path], entries: list[Entry], culprit: str
) -> None:
    dest, outside = sandbox
    before = snapshot(dest.parent.parent)
    with pytest.raises(InvalidArgument) as exc:
        unpack_layer(make_tar(entries), dest)
    assert repr(culprit) in exc.value.message
    assert (outside / "victim").read_text() == "untouched"
    # Nothing appeared outside dest.
    after = {p for p in snapshot(dest.parent.parent) if not p.startswith("sandbox/layer/")}
    assert after == {p for p in before if not p.startswith("sandbox/layer/")}


def test_symlink_over_existing_file_then_write_through_refused(sandbox: tuple[Path, Path]) -> None:
    dest, outside = sandbox
    entries: list[Entry] = [
        ("d", "etc", b""),
        ("s", "etc", str(outside)),  # replaces the dir with a symlink: fine by itself
        ("f", "etc/victim", b"evil"),  # but writing through it is not
    ]
    with pytest.raises(InvalidArgument, match="etc/victim"):
        unpack_layer(make_tar(entries), dest)
    assert (outside / "victim").read_text() == "untouched"


def test_file_entry_replaces_symlink_without_following(sandbox: tuple[Path, Path]) -> None:
    dest, outside = sandbox
    entries: list[Entry] = [("s", "v", str(outside / "victim")), ("f", "v", b"mine")]
    unpack_layer(make_tar(entries), dest)
    assert (outside / "victim").read_text() == "untouched"
    assert not (dest / "v").is_symlink()
    assert (dest / "v").read_bytes() == b"mine"


# ---------------------------------------------------------- legit content


def test_symlinks_preserved_verbatim_and_metadata(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        d = tarfile.TarInfo("bin")
        d.type, d.mode, d.mtime = tarfile.DIRTYPE, 0o750, 1_500_000_000
        tar.addfile(d)
        f = tarfile.TarInfo("bin/tool")
        f.mode, f.uid, f.gid, f.mtime, f.size = 0o4755, 1000, 33, 1_500_000_001, 5
        f.pax_headers = {"SCHILY.xattr.user.note": "hi"}
        tar.addfile(f, io.BytesIO(b"hello"))
        for name, target in (("bin/abs", "/etc/passwd"), ("bin/rel", "../../../../x")):
            s = tarfile.TarInfo(name)
            s.type, s.linkname, s.uid, s.mtime = tarfile.SYMTYPE, target, 7, 1_500_000_002
            tar.addfile(s)
        h = tarfile.TarInfo("bin/tool2")
        h.type, h.linkname = tarfile.LNKTYPE, "bin/tool"
        tar.addfile(h)
        c = tarfile.TarInfo("dev/null")
        c.type, c.devmajor, c.devminor, c.mode = tarfile.CHRTYPE, 1, 3, 0o666
        tar.addfile(c)
        p = tarfile.TarInfo("run/fifo")
        p.type, p.mode = tarfile.FIFOTYPE, 0o600
        tar.addfile(p)
    buf.seek(0)
    dest = tmp_path / "l"
    dest.mkdir()
    assert unpack_layer(buf, dest) == 5

    assert os.readlink(dest / "bin/abs") == "/etc/passwd"
    assert os.readlink(dest / "bin/rel") == "../../../../x"
    assert os.lstat(dest / "bin/abs").st_uid == 7
    assert int(os.lstat(dest / "bin/abs").st_mtime) == 1_500_000_002
    st = os.stat(dest / "bin/tool")
    assert stat.S_IMODE(st.st_mode) == 0o4755
    assert (st.st_uid, st.st_gid, int(st.st_mtime)) == (1000, 33, 1_500_000_001)
    assert os.getxattr(dest / "bin/tool", "user.note") == b"hi"
    assert st.st_ino == os.stat(dest / "bin/tool2").st_ino
    dst = os.stat(dest / "bin")
    assert stat.S_IMODE(dst.st_mode) == 0o750 and int(dst.st_mtime) == 1_500_000_000
    dev = os.lstat(dest / "dev/null")
    assert stat.S_ISCHR(dev.st_mode) and os.major(dev.st_rdev) == 1 and os.minor(dev.st_rdev) == 3
    assert stat.S_ISFIFO(os.lstat(dest / "run/fifo").st_mode)


def test_gzip_and_path_input(tmp_path: Path) -> None:
    raw = make_tar([("f", "a", b"xyz")]).getvalue()
    import gzip

    gz = tmp_path / "l.tar.gz"
    gz.write_bytes(gzip.compress(raw))
    dest = tmp_path / "d"
    dest.mkdir()
    assert unpack_layer(gz, dest) == 3
    assert (dest / "a").read_bytes() == b"xyz"


def test_garbage_is_invalid_argument(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="invalid tar"):
        unpack_layer(io.BytesIO(b"not a tar at all" * 100), tmp_path)


# ---------------------------------------------------------------- whiteouts


LAYER: list[Entry] = [
    ("d", "etc", b""),
    ("f", "etc/.wh.motd", b""),
    ("f", "etc/hosts", b"127.0.0.1 localhost\n"),
    ("d", "opt", b""),
    ("f", "opt/.wh..wh..opq", b""),
    ("f", "opt/new", b"n"),
    ("f", ".wh.gone", b""),
    ("s", "link", "etc/hosts"),
]


def test_whiteouts_become_overlay_format(tmp_path: Path) -> None:
    dest = tmp_path / "l"
    dest.mkdir()
    unpack_layer(make_tar(LAYER), dest)
    for w in ("etc/motd", "gone"):
        st = os.lstat(dest / w)
        assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    assert os.getxattr(dest / "opt", OPAQUE_XATTR) == b"y"
    assert not (dest / "opt/.wh..wh..opq").exists()
    assert not list(dest.rglob(".wh.*"))


def tar_entries(data: bytes) -> list[tuple[str, str, bytes | str]]:
    out: list[tuple[str, str, bytes | str]] = []
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for m in tar:
            if m.isreg():
                f = tar.extractfile(m)
                assert f is not None
                out.append(("f", m.name, f.read()))
            elif m.isdir():
                out.append(("d", m.name, b""))
            elif m.issym():
                out.append(("s", m.name, m.linkname))
            else:
                out.append((m.type.decode(), m.name, b""))
    return out


def test_whiteout_round_trip(tmp_path: Path) -> None:
    dest = tmp_path / "l"
    dest.mkdir()
    unpack_layer(make_tar(LAYER), dest)
    out = io.BytesIO()
    write_layer_from_upper(dest, out)
    got = tar_entries(out.getvalue())
    assert sorted(got) == sorted(LAYER)
    # Opaque marker comes right after its directory.
    names = [n for _, n, _ in got]
    assert names.index("opt/.wh..wh..opq") == names.index("opt") + 1


def test_diff_is_deterministic_and_sorted(tmp_path: Path) -> None:
    upper = tmp_path / "u"
    (upper / "b").mkdir(parents=True)
    (upper / "b/z").write_text("z")
    (upper / "a").write_text("a")
    (upper / "c").write_text("c")
    os.link(upper / "c", upper / "d")
    os.mknod(upper / "w", stat.S_IFCHR, os.makedev(0, 0))
    os.setxattr(upper / "b", "trusted.overlay.origin", b"junk")
    one, two = io.BytesIO(), io.BytesIO()
    write_layer_from_upper(upper, one)
    write_layer_from_upper(upper, two)
    assert one.getvalue() == two.getvalue()
    with tarfile.open(fileobj=io.BytesIO(one.getvalue())) as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == ["a", "b", "b/z", "c", "d", ".wh.w"]
    d = members[4]
    assert d.islnk() and d.linkname == "c"
    assert all(m.uname == "" and not any("overlay" in k for k in m.pax_headers) for m in members)
