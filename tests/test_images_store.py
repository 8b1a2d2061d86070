"""ImageStore: import, shared layers, commit, resolve, tag, rmi semantics and GC."""

from __future__ import annotations

import io
import json
import os
import stat
import tarfile
from pathlib import Path

import pytest
from busybox import make_rootfs_tar

from supervisor.api.handlers import image_views
from supervisor.errors import Conflict, InvalidArgument, NotFound
from supervisor.images.records import ImageUser
from supervisor.images.store import ImageStore
from supervisor.metadata.database import Database


@pytest.fixture(scope="session")
def rootfs_tar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_rootfs_tar(tmp_path_factory.mktemp("bb") / "busybox.tar")


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    root = tmp_path / "state"
    return ImageStore(root, Database(root / "corral.db"))


def layer_names(store: ImageStore) -> list[str]:
    return sorted(p.name for p in store.layers_dir.iterdir())


def blob_names(store: ImageStore) -> set[str]:
    return {p.name for p in store.blobs.iterdir()}


def small_tar(path: Path, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


# ------------------------------------------------------------------ import


def test_import_busybox(store: ImageStore, rootfs_tar: Path) -> None:
    rec = store.import_tar(rootfs_tar, "busybox")
    assert rec.repo_tags == ["busybox:latest"]
    assert rec.id.startswith("sha256:") and len(rec.id) == 71
    assert len(rec.layers) == 1 and rec.size > 100_000
    # Image ID is the digest of the config blob; the layer blob is the uncompressed tar.
    assert (store.blobs / rec.id[7:]).exists()
    assert (store.blobs / rec.layers[0][7:]).stat().st_size == rootfs_tar.stat().st_size
    (lower,) = store.layer_dirs("busybox")
    assert os.readlink(lower / "bin/sh") == "busybox"
    assert (lower / "etc/passwd").read_text().startswith("root:")
    cfg = store.config(rec.id)
    assert cfg["os"] == "linux" and cfg["architecture"]
    assert cfg["config"]["Env"] == [
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    ]
    assert cfg["rootfs"] == {"type": "layers", "diff_ids": rec.layers}
    assert cfg["history"][0]["comment"] == "Imported from -"
    # OCI layout
    layout = json.loads((store.layout / "oci-layout").read_text())
    assert layout == {"imageLayoutVersion": "1.0.0"}
    index = json.loads((store.layout / "index.json").read_text())
    (m,) = index["manifests"]
    assert m["digest"] == rec.manifest_digest
    assert m["annotations"]["org.opencontainers.image.ref.name"] == "latest"
    manifest = json.loads((store.blobs / rec.manifest_digest[7:]).read_bytes())
    assert manifest["config"]["digest"] == rec.id
    assert manifest["layers"][0]["mediaType"] == "application/vnd.oci.image.layer.v1.tar"


def test_second_import_shares_the_layer(store: ImageStore, rootfs_tar: Path) -> None:
    a = store.import_tar(rootfs_tar, "busybox")
    b = store.import_tar(rootfs_tar, "other:1")
    assert a.id != b.id and a.layers == b.layers
    assert len(layer_names(store)) == 1
    assert store.layer_dirs(a.id) == store.layer_dirs(b.id)


def test_import_gzip_and_changes(store: ImageStore, tmp_path: Path) -> None:
    import gzip

    plain = small_tar(tmp_path / "x.tar", {"hello": b"world"})
    gz = tmp_path / "x.tar.gz"
    gz.write_bytes(gzip.compress(plain.read_bytes()))
    rec = store.import_tar(
        gz,
        "x:gz",
        changes={"Cmd": ["/hello"], "Env": ["FOO=1", "PATH=/bin"], "WorkingDir": "/w"},
        message="hi",
    )
    # The stored blob is the uncompressed tar: same diffid as the plain import.
    assert rec.layers == store.import_tar(plain, None).layers
    insp = image_views.inspect(store, "x:gz")
    assert insp["Config"]["Cmd"] == ["/hello"]
    assert insp["Config"]["Env"] == ["PATH=/bin", "FOO=1"]
    assert insp["Config"]["WorkingDir"] == "/w"
    assert insp["Comment"] == "hi"
    with pytest.raises(InvalidArgument):
        store.import_tar(plain, None, changes={"Bogus": 1})


@pytest.mark.parametrize(
    "files", [{"ok": b"1", "../escape": b"x"}, {"/abs": b"x"}], ids=["dotdot", "abs"]
)
def test_hostile_import_leaves_nothing(
    store: ImageStore, tmp_path: Path, files: dict[str, bytes]
) -> None:
    before_blobs = blob_names(store)
    with pytest.raises(InvalidArgument, match="refusing tar entry"):
        store.import_tar(small_tar(tmp_path / "evil.tar", files), "evil")
    assert layer_names(store) == []
    assert blob_names(store) == before_blobs
    assert list(store.tmp.iterdir()) == []
    assert store.list() == []
    assert store.db.execute("SELECT count(*) FROM layer_layers").fetchone()[0] == 0
    assert not (tmp_path / "escape").exists()


def test_symlink_escape_import_leaves_nothing(store: ImageStore, tmp_path: Path) -> None:
    tar_path = tmp_path / "evil.tar"
    with tarfile.open(tar_path, "w") as tar:
        s = tarfile.TarInfo("evil")
        s.type, s.linkname = tarfile.SYMTYPE, str(tmp_path)
        tar.addfile(s)
        f = tarfile.TarInfo("evil/pwned")
        tar.addfile(f, io.BytesIO(b""))
    with pytest.raises(InvalidArgument, match="evil/pwned"):
        store.import_tar(tar_path, "evil")
    assert not (tmp_path / "pwned").exists()
    assert layer_names(store) == [] and store.list() == []


def test_import_refuses_digest_ref_and_garbage(store: ImageStore, tmp_path: Path) -> None:
    t = small_tar(tmp_path / "x.tar", {"a": b"1"})
    with pytest.raises(InvalidArgument):
        store.import_tar(t, "x@sha256:" + "a" * 64)
    with pytest.raises(InvalidArgument):
        store.import_tar(t, "Bad:Name")
    junk = tmp_path / "junk"
    junk.write_bytes(b"\x1f\x8b" + b"garbage" * 10)
    with pytest.raises(InvalidArgument):
        store.import_tar(junk, "x")
    assert store.list() == [] and layer_names(store) == []


def test_restart_keeps_images_and_sweeps_orphans(tmp_path: Path, rootfs_tar: Path) -> None:
    root = tmp_path / "state"
    db = Database(root / "corral.db")
    s1 = ImageStore(root, db)
    rec = s1.import_tar(rootfs_tar, "busybox")
    (root / "layers" / ("f" * 64)).mkdir()  # as if a crash hit before the row commit
    (s1.blobs / ("e" * 64)).write_bytes(b"orphan")
    (s1.tmp / "blob-xyz").write_bytes(b"partial")
    s2 = ImageStore(root, db)
    assert s2.resolve("busybox").id == rec.id
    assert layer_names(s2) == [rec.layers[0][7:]]
    assert "e" * 64 not in blob_names(s2)
    assert list(s2.tmp.iterdir()) == []


# ------------------------------------------------------------------ commit


def test_commit_adds_a_layer_with_whiteout(
    store: ImageStore, rootfs_tar: Path, tmp_path: Path
) -> None:
    base = store.import_tar(rootfs_tar, "busybox")
    upper = tmp_path / "upper"
    (upper / "etc").mkdir(parents=True)
    (upper / "etc/motd").write_text("welcome\n")
    (upper / "var").mkdir()
    os.mknod(upper / "var/www", stat.S_IFCHR, os.makedev(0, 0))  # rm -rf /var/www
    rec = store.commit(
        upper,
        base.id,
        {"Cmd": ["sh"], "Env": ["PATH=/bin"]},
        "mine:v1",
        comment="c1",
        author="me",
        created_by="/bin/sh -c touch",
    )
    assert rec.layers[0] == base.layers[0] and len(rec.layers) == 2
    assert rec.parent == base.id
    lower, top = store.layer_dirs("mine:v1")
    assert (top / "etc/motd").read_text() == "welcome\n"
    wh = os.lstat(top / "var/www")
    assert stat.S_ISCHR(wh.st_mode) and wh.st_rdev == 0
    with tarfile.open(store.blobs / rec.layers[1][7:]) as tar:
        assert sorted(tar.getnames()) == ["etc", "etc/motd", "var", "var/.wh.www"]
    insp = image_views.inspect(store, "mine:v1")
    assert insp["Parent"] == base.id
    assert insp["Author"] == "me" and insp["Comment"] == "c1"
    assert insp["Config"]["Cmd"] == ["sh"]
    assert insp["RootFS"]["Layers"] == rec.layers
    hist = image_views.history(store, "mine:v1")
    assert [h["Id"] for h in hist] == [rec.id, base.id]
    assert hist[0]["CreatedBy"] == "/bin/sh -c touch" and hist[0]["Tags"] == ["mine:v1"]
    assert hist[0]["Size"] == len("welcome\n") and hist[1]["Tags"] == ["busybox:latest"]
    assert isinstance(hist[0]["Created"], int)


def test_commit_of_empty_upper_adds_no_layer(
    store: ImageStore, rootfs_tar: Path, tmp_path: Path
) -> None:
    base = store.import_tar(rootfs_tar, "busybox")
    upper = tmp_path / "upper"
    upper.mkdir()
    rec = store.commit(upper, "busybox", {"Cmd": ["sh"]}, None)
    assert rec.layers == base.layers and rec.repo_tags == []
    assert store.config(rec.id)["history"][-1]["empty_layer"] is True
    assert [h["Size"] for h in image_views.history(store, rec.id)] == [0, base.size]


# ----------------------------------------------------------------- resolve


def test_resolve_forms(store: ImageStore, rootfs_tar: Path) -> None:
    rec = store.import_tar(rootfs_tar, "busybox")
    hexid = rec.id[7:]
    for s in (
        "busybox",
        "busybox:latest",
        "library/busybox",
        "docker.io/library/busybox:latest",
        rec.id,
        hexid,
        hexid[:12],
        hexid[:1],
        "sha256:" + hexid[:5],
        f"busybox@{rec.manifest_digest}",
        f"docker.io/library/busybox@{rec.manifest_digest}",
    ):
        assert store.resolve(s).id == rec.id, s
    digests = image_views.inspect(store, "busybox")["RepoDigests"]
    assert digests == [f"busybox@{rec.manifest_digest}"]
    for s in ("busybox:1", "nope", f"other@{rec.manifest_digest}", "sha256:" + "0" * 64, "0" * 64):
        with pytest.raises(NotFound, match="No such image"):
            store.resolve(s)
    with pytest.raises(NotFound, match="No such image: nope:latest"):
        store.resolve("nope")
    with pytest.raises(InvalidArgument):
        store.resolve("Not::valid")


def test_ambiguous_short_id(store: ImageStore, tmp_path: Path) -> None:
    ids = [
        store.import_tar(small_tar(tmp_path / f"{i}.tar", {"f": str(i).encode()}), None).id[7:]
        for i in range(40)
    ]
    firsts = [i[0] for i in ids]
    dup = next(c for c in firsts if firsts.count(c) > 1)
    with pytest.raises(NotFound, match="ambiguous"):
        store.resolve(dup)


def test_tag_and_list(store: ImageStore, rootfs_tar: Path) -> None:
    rec = store.import_tar(rootfs_tar, "busybox")
    store.tag("busybox", "localhost:5000/me/bb:2")
    store.tag(rec.id[7:19], "docker.io/library/alias")
    assert store.tags_of(rec.id) == ["alias:latest", "busybox:latest", "localhost:5000/me/bb:2"]
    with pytest.raises(InvalidArgument):
        store.tag("busybox", "x@sha256:" + "a" * 64)
    with pytest.raises(NotFound):
        store.tag("missing", "x")
    # Moving a tag leaves the old image dangling, as Docker does.
    newer = store.import_tar(rootfs_tar, None)
    store.tag(newer.id, "busybox")
    assert store.resolve("busybox").id == newer.id
    assert [r.id for r in store.list()] == [newer.id, rec.id]
    index = json.loads((store.layout / "index.json").read_text())
    names = sorted(
        m["annotations"]["io.containerd.image.name"]
        for m in index["manifests"]
        if "annotations" in m
    )
    assert names == [
        "docker.io/library/alias:latest",
        "docker.io/library/busybox:latest",
        "localhost:5000/me/bb:2",
    ]


# --------------------------------------------------------------------- rmi


def test_rmi_untags_when_other_tags_remain(store: ImageStore, rootfs_tar: Path) -> None:
    rec = store.import_tar(rootfs_tar, "busybox")
    store.tag("busybox", "bb:2")
    assert store.delete("busybox") == [{"Untagged": "busybox:latest"}]
    assert store.resolve("bb:2").id == rec.id
    assert store.delete("bb:2") == [
        {"Untagged": "bb:2"},
        {"Deleted": rec.id},
        {"Deleted": rec.layers[0]},
    ]
    assert store.list() == [] and layer_names(store) == [] and blob_names(store) == set()
    index = json.loads((store.layout / "index.json").read_text())
    assert index["manifests"] == []


def test_rmi_shared_layer_kept_until_last_image(store: ImageStore, rootfs_tar: Path) -> None:
    a = store.import_tar(rootfs_tar, "a")
    b = store.import_tar(rootfs_tar, "b")
    assert store.delete("a") == [{"Untagged": "a:latest"}, {"Deleted": a.id}]
    assert layer_names(store) == [b.layers[0][7:]]
    assert (store.blobs / b.layers[0][7:]).exists()
    store.delete("b")
    assert layer_names(store) == []


def test_rmi_by_id_with_several_tags_needs_force(store: ImageStore, rootfs_tar: Path) -> None:
    rec = store.import_tar(rootfs_tar, "busybox")
    store.tag("busybox", "bb:2")
    with pytest.raises(Conflict, match=r"unable to delete \w{12} \(must be forced\)"):
        store.delete(rec.id[7:19])
    out = store.delete(rec.id[7:19], force=True)
    assert out[:2] == [{"Untagged": "bb:2"}, {"Untagged": "busybox:latest"}]
    assert {"Deleted": rec.id} in out


def test_rmi_by_id_single_tag(store: ImageStore, rootfs_tar: Path) -> None:
    rec = store.import_tar(rootfs_tar, "busybox")
    out = store.delete(rec.id)
    assert out[:2] == [{"Untagged": "busybox:latest"}, {"Deleted": rec.id}]


def test_rmi_in_use(store: ImageStore, rootfs_tar: Path) -> None:
    rec = store.import_tar(rootfs_tar, "busybox")
    cid = "c" * 64

    def stopped(image_id: str) -> str | None:
        return cid if image_id == rec.id else None

    with pytest.raises(Conflict) as exc:
        store.delete("busybox", in_use=stopped)
    assert exc.value.message == (
        'conflict: unable to remove repository reference "busybox" (must force) - '
        f"container {'c' * 12} is using its referenced image {rec.id[7:19]}"
    )
    with pytest.raises(Conflict, match="being used by stopped container cccccccccccc"):
        store.delete(rec.id, in_use=stopped)
    with pytest.raises(Conflict, match=r"\(cannot be forced\) - image is being used by running"):
        store.delete(rec.id, force=True, in_use=lambda _i: ImageUser(cid, running=True))
    assert store.resolve("busybox").id == rec.id
    # Forced by tag: untagged, but the image (and its layers) stay for the container.
    assert store.delete("busybox", force=True, in_use=lambda _i: True) == [
        {"Untagged": "busybox:latest"}
    ]
    assert store.resolve(rec.id).repo_tags == [] and layer_names(store) == [rec.layers[0][7:]]
    # Once the container is gone, rmi by ID deletes it.
    assert store.delete(rec.id)[0] == {"Deleted": rec.id}
    assert layer_names(store) == []


def test_rmi_parent_with_child_and_prune(
    store: ImageStore, rootfs_tar: Path, tmp_path: Path
) -> None:
    base = store.import_tar(rootfs_tar, "busybox")
    upper = tmp_path / "u"
    upper.mkdir()
    (upper / "f").write_text("x")
    child = store.commit(upper, base.id, {}, "child")
    with pytest.raises(Conflict, match="dependent child images"):
        store.delete(base.id, force=True)
    # Untagging the parent keeps it as an intermediate image.
    assert store.delete("busybox") == [{"Untagged": "busybox:latest"}]
    assert [r.id for r in store.list(all=False)] == [child.id]
    assert {r.id for r in store.list()} == {child.id, base.id}
    # Deleting the child prunes the untagged parent and every layer.
    out = store.delete("child")
    assert {"Deleted": child.id} in out and {"Deleted": base.id} in out
    assert store.list() == [] and layer_names(store) == [] and blob_names(store) == set()


def test_rmi_unknown(store: ImageStore) -> None:
    with pytest.raises(NotFound, match="No such image: nope:latest"):
        store.delete("nope")


# ------------------------------------------------- real overlayfs (root only)


def _mount_overlay(lowers: list[Path], upper: Path, work: Path, merged: Path) -> bool:
    import subprocess

    opts = f"lowerdir={':'.join(str(p) for p in reversed(lowers))},upperdir={upper},workdir={work}"
    r = subprocess.run(
        ["mount", "-t", "overlay", "overlay", "-o", opts, str(merged)], capture_output=True
    )
    return r.returncode == 0


def test_layer_dirs_work_as_overlay_lowers_and_commit_round_trips(
    store: ImageStore, rootfs_tar: Path, tmp_path: Path
) -> None:
    import subprocess

    base = store.import_tar(rootfs_tar, "busybox")
    upper, work, merged = (tmp_path / n for n in ("upper", "work", "merged"))
    for d in (upper, work, merged):
        d.mkdir()
    if not _mount_overlay(store.layer_dirs(base.id), upper, work, merged):
        pytest.skip("overlayfs not available")
    try:
        (merged / "etc/motd").write_text("hi\n")
        (merged / "var/www/index.html").unlink()
        (merged / "etc/passwd").unlink()
        import shutil

        shutil.rmtree(merged / "usr")
        (merged / "usr").mkdir()
        (merged / "usr/new").write_text("n")
    finally:
        subprocess.run(["umount", str(merged)], check=True)
    child = store.commit(upper, base.id, {"Cmd": ["sh"]}, "child")
    with tarfile.open(store.blobs / child.layers[-1][7:]) as tar:
        names = set(tar.getnames())
    assert {"etc/motd", "etc/.wh.passwd", "var/www/.wh.index.html", "usr/.wh..wh..opq"} <= names

    # The child's layers, stacked, show the change.
    upper2, work2 = tmp_path / "u2", tmp_path / "w2"
    upper2.mkdir()
    work2.mkdir()
    assert _mount_overlay(store.layer_dirs("child"), upper2, work2, merged)
    try:
        assert (merged / "etc/motd").read_text() == "hi\n"
        assert not (merged / "etc/passwd").exists()
        assert not (merged / "var/www/index.html").exists()
        assert os.readlink(merged / "bin/sh") == "busybox"
        assert sorted(os.listdir(merged / "usr")) == ["new"]
    finally:
        subprocess.run(["umount", str(merged)], check=True)
