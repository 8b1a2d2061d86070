"""Saving and loading through the image store (no daemon): round trips, every archive
layout corral reads, digests checked, hostile archives refused with nothing left."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from pathlib import Path
from typing import Any

import pytest
from busybox import make_rootfs_tar

from supervisor.errors import InvalidArgument, NotFound
from supervisor.images import archive
from supervisor.images.store import AddedImage, ImageStore
from supervisor.metadata.database import Database


@pytest.fixture(scope="session")
def rootfs_tar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_rootfs_tar(tmp_path_factory.mktemp("bb") / "busybox.tar")


def new_store(root: Path) -> ImageStore:
    if os.geteuid() != 0:
        pytest.skip("unpacking layers needs root (chown, mknod)")
    return ImageStore(root, Database(root / "corral.db"))


@pytest.fixture
def src(tmp_path: Path) -> ImageStore:
    return new_store(tmp_path / "src")


@pytest.fixture
def dst(tmp_path: Path) -> ImageStore:
    return new_store(tmp_path / "dst")


def load(store: ImageStore, path: Path) -> list[AddedImage]:
    """What POST /images/load does, minus HTTP."""
    work = store.tmp / "load-test"
    work.mkdir()
    try:
        return store.add_images(archive.read_archive(store, path, work, store.layer_ids()))
    finally:
        import shutil

        shutil.rmtree(work)


def assert_empty(store: ImageStore) -> None:
    """Nothing of a refused load remains: no row, layer, blob or scratch file."""
    assert store.list() == []
    assert list(store.layers_dir.iterdir()) == []
    assert list(store.blobs.iterdir()) == []
    assert list(store.tmp.iterdir()) == []


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def layer_tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def config_for(layers: list[bytes], **extra: Any) -> bytes:
    doc = {
        "architecture": "amd64",
        "os": "linux",
        "created": "2024-05-01T12:00:00Z",
        "config": {"Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [sha(x) for x in layers]},
        **extra,
    }
    return json.dumps(doc).encode()


def write_tar(path: Path, members: dict[str, bytes | tuple[str, str]]) -> Path:
    """Members: name -> content, or name -> ("sym"|"hard", target)."""
    with tarfile.open(path, "w") as tar:
        for name, value in members.items():
            info = tarfile.TarInfo(name)
            if isinstance(value, tuple):
                info.type = tarfile.SYMTYPE if value[0] == "sym" else tarfile.LNKTYPE
                info.linkname = value[1]
                tar.addfile(info)
            else:
                info.size = len(value)
                tar.addfile(info, io.BytesIO(value))
    return path


def oci_archive(path: Path, config: bytes, layers: list[bytes], name: str | None) -> Path:
    blobs = {sha(config): config, **{sha(x): x for x in layers}}
    manifest = {
        "schemaVersion": 2,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": sha(config),
            "size": len(config),
        },
        "layers": [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": sha(x),
                "size": len(x),
            }
            for x in layers
        ],
    }
    mbytes = json.dumps(manifest).encode()
    blobs[sha(mbytes)] = mbytes
    desc: dict[str, Any] = {
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": sha(mbytes),
        "size": len(mbytes),
    }
    if name:
        desc["annotations"] = {"org.opencontainers.image.ref.name": name}
    members: dict[str, bytes | tuple[str, str]] = {
        "oci-layout": b'{"imageLayoutVersion":"1.0.0"}',
        "index.json": json.dumps({"schemaVersion": 2, "manifests": [desc]}).encode(),
    }
    members.update({"blobs/sha256/" + d[7:]: b for d, b in blobs.items()})
    return write_tar(path, members)


# ------------------------------------------------------------------ round trips


def test_save_then_load_keeps_id_tags_and_content(
    src: ImageStore, dst: ImageStore, rootfs_tar: Path, tmp_path: Path
) -> None:
    rec = src.import_tar(rootfs_tar, "busybox:latest")
    src.tag("busybox", "localhost:5000/bb:v1")
    out = tmp_path / "x.tar"
    with out.open("wb") as f:
        archive.write_archive(src, ["busybox", "localhost:5000/bb:v1"], f)
    with tarfile.open(out) as tar:
        names = tar.getnames()
    assert names[:2] == ["blobs", "blobs/sha256"]
    assert set(names[-4:]) == {"index.json", "manifest.json", "oci-layout", "repositories"}
    added = load(dst, out)
    assert [a.id for a in added] == [rec.id]
    assert sorted(added[0].tags) == ["busybox:latest", "localhost:5000/bb:v1"]
    got = dst.resolve("localhost:5000/bb:v1")
    assert got.id == rec.id and got.layers == rec.layers and got.size == rec.size
    (lower,) = dst.layer_dirs(rec.id)
    assert (lower / "bin" / "busybox").is_file()
    assert list(dst.tmp.iterdir()) == []
    # Loading again changes nothing and stores nothing twice.
    before = sorted(p.name for p in dst.blobs.iterdir())
    assert [a.moved for a in load(dst, out)] == [[]]
    assert sorted(p.name for p in dst.blobs.iterdir()) == before


def test_save_by_repository_takes_every_tag_and_by_id_none(
    src: ImageStore, rootfs_tar: Path
) -> None:
    rec = src.import_tar(rootfs_tar, "bb:1")
    src.tag("bb:1", "bb:2")
    src.tag("bb:1", "other:3")
    (item,) = archive.select_images(src, ["bb"])
    assert sorted(item.tags) == ["bb:1", "bb:2"]
    (item,) = archive.select_images(src, [rec.id[7:19]])
    assert item.tags == []
    (item,) = archive.select_images(src, ["other:3", rec.id, "bb:1"])
    assert item.tags == ["other:3", "bb:1"]
    with pytest.raises(NotFound, match="No such image: nothere:latest"):
        archive.select_images(src, ["nothere"])


def test_a_loaded_tag_moves_like_dockers(
    src: ImageStore, dst: ImageStore, rootfs_tar: Path, tmp_path: Path
) -> None:
    src.import_tar(rootfs_tar, "busybox")
    out = tmp_path / "x.tar"
    with out.open("wb") as f:
        archive.write_archive(src, ["busybox"], f)
    old = dst.import_tar(rootfs_tar, "busybox", message="another one")
    (added,) = load(dst, out)
    assert added.moved == [("busybox:latest", old.id)]
    assert dst.resolve("busybox").id == added.id != old.id
    assert dst.tags_of(old.id) == []


# ------------------------------------------------------------------ other layouts


def test_old_docker_layout_with_symlinked_layers_and_gzip(dst: ImageStore, tmp_path: Path) -> None:
    base = layer_tar({"etc/hostname": b"base\n"})
    top = layer_tar({"greeting": b"hello\n"})
    cfg = config_for([base, top, base])
    cfg_hex = sha(cfg)[7:]
    path = write_tar(
        tmp_path / "old.tar",
        {
            "aaa/VERSION": b"1.0",
            "aaa/layer.tar": gzip.compress(base),
            "bbb/layer.tar": top,
            "ccc/layer.tar": ("sym", "../aaa/layer.tar"),
            f"{cfg_hex}.json": cfg,
            "manifest.json": json.dumps(
                [
                    {
                        "Config": f"{cfg_hex}.json",
                        "RepoTags": ["app:old"],
                        "Layers": ["aaa/layer.tar", "bbb/layer.tar", "ccc/layer.tar"],
                    }
                ]
            ).encode(),
            "repositories": b"{}",
        },
    )
    (added,) = load(dst, path)
    assert added.id == sha(cfg) and added.tags == ["app:old"]
    dirs = dst.layer_dirs("app:old")
    assert len(dirs) == 3 and dirs[0] == dirs[2]
    assert (dirs[1] / "greeting").read_bytes() == b"hello\n"


def test_oci_archive_with_gzip_layers_and_a_compressed_archive(
    dst: ImageStore, tmp_path: Path
) -> None:
    raw = layer_tar({"f": b"content"})
    cfg = config_for([raw])
    path = oci_archive(tmp_path / "oci.tar", cfg, [gzip.compress(raw)], "mytest:1")
    gz = tmp_path / "oci.tar.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    (added,) = load(dst, gz)
    assert added.id == sha(cfg) and added.tags == ["mytest:1"]
    assert dst.resolve("mytest:1").layers == [sha(raw)]


def test_oci_archive_without_a_name_loads_untagged(dst: ImageStore, tmp_path: Path) -> None:
    raw = layer_tar({"f": b"x"})
    cfg = config_for([raw])
    (added,) = load(dst, oci_archive(tmp_path / "o.tar", cfg, [raw], "latest"))
    assert added.tags == [] and archive.loaded_lines([added]) == [f"Loaded image ID: {sha(cfg)}"]


# ------------------------------------------------------------------ refusals


def docker_archive(
    tmp_path: Path, layers: list[bytes], cfg: bytes, extra: dict[str, Any] | None = None
) -> Path:
    members: dict[str, bytes | tuple[str, str]] = {f"l{i}.tar": x for i, x in enumerate(layers)}
    members["c.json"] = cfg
    members["manifest.json"] = json.dumps(
        [
            {
                "Config": "c.json",
                "RepoTags": ["bad:1"],
                "Layers": [f"l{i}.tar" for i in range(len(layers))],
            }
        ]
    ).encode()
    members.update(extra or {})
    return write_tar(tmp_path / "bad.tar", members)


def refused(store: ImageStore, path: Path, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        load(store, path)
    assert_empty(store)


def test_layer_not_matching_its_diff_id_is_refused(dst: ImageStore, tmp_path: Path) -> None:
    good, evil = layer_tar({"a": b"1"}), layer_tar({"a": b"2"})
    refused(dst, docker_archive(tmp_path, [evil], config_for([good])), "does not match diff_id")


def test_layer_count_not_matching_the_config_is_refused(dst: ImageStore, tmp_path: Path) -> None:
    x = layer_tar({"a": b"1"})
    refused(
        dst,
        docker_archive(tmp_path, [x], config_for([x, x])),
        "lists 1 layers but its config has 2",
    )


def test_layer_escaping_through_tarsafe_is_refused_and_nothing_left(
    dst: ImageStore, tmp_path: Path
) -> None:
    ok = layer_tar({"fine": b"1"})
    evil = layer_tar({"../../etc/evil": b"x"})
    refused(
        dst, docker_archive(tmp_path, [ok, evil], config_for([ok, evil])), "path escapes the layer"
    )
    assert not Path("/etc/evil").exists()


def test_archive_entries_escaping_are_refused(dst: ImageStore, tmp_path: Path) -> None:
    x = layer_tar({"a": b"1"})
    refused(
        dst,
        docker_archive(tmp_path, [x], config_for([x]), {"../outside": b"x"}),
        "escapes the archive",
    )


@pytest.mark.parametrize("target", ["/etc/passwd", "../../etc/passwd"])
def test_links_out_of_the_archive_are_refused(dst: ImageStore, tmp_path: Path, target: str) -> None:
    x = layer_tar({"a": b"1"})
    path = docker_archive(tmp_path, [x], config_for([x]), {"l0.tar": ("sym", target)})
    refused(dst, path, "escapes the archive")


def test_oci_blob_not_matching_its_descriptor_is_refused(dst: ImageStore, tmp_path: Path) -> None:
    raw = layer_tar({"f": b"content"})
    path = oci_archive(tmp_path / "oci.tar", config_for([raw]), [raw], "t:1")
    with tarfile.open(path) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]
    members["blobs/sha256/" + sha(raw)[7:]] = layer_tar({"f": b"CONTENT"})
    refused(dst, write_tar(tmp_path / "swapped.tar", dict(members)), "digest does not match")


def test_config_not_matching_its_name_is_refused(dst: ImageStore, tmp_path: Path) -> None:
    x = layer_tar({"a": b"1"})
    cfg = config_for([x])
    members: dict[str, bytes | tuple[str, str]] = {
        "l.tar": x,
        "0" * 64 + ".json": cfg,
        "manifest.json": json.dumps([{"Config": "0" * 64 + ".json", "Layers": ["l.tar"]}]).encode(),
    }
    refused(dst, write_tar(tmp_path / "c.tar", members), "digest does not match")


def test_one_bad_image_loads_none(dst: ImageStore, tmp_path: Path) -> None:
    good, evil = layer_tar({"g": b"1"}), layer_tar({"/abs": b"x"})
    cg, ce = config_for([good]), config_for([evil])
    members: dict[str, bytes | tuple[str, str]] = {
        "g.tar": good,
        "e.tar": evil,
        "g.json": cg,
        "e.json": ce,
        "manifest.json": json.dumps(
            [
                {"Config": "g.json", "RepoTags": ["good:1"], "Layers": ["g.tar"]},
                {"Config": "e.json", "RepoTags": ["evil:1"], "Layers": ["e.tar"]},
            ]
        ).encode(),
    }
    refused(dst, write_tar(tmp_path / "two.tar", members), "refusing tar entry '/abs'")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "invalid image archive: empty"),
        (b"not a tar at all" * 100, "invalid image archive"),
        (b"\x28\xb5\x2f\xfd" + b"\0" * 100, "zstd"),
    ],
)
def test_garbage_is_refused(dst: ImageStore, tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "g.tar"
    path.write_bytes(content)
    refused(dst, path, message)


def test_a_tar_without_manifest_or_index_is_refused(
    dst: ImageStore, tmp_path: Path, rootfs_tar: Path
) -> None:
    refused(dst, rootfs_tar, "no manifest.json or index.json")
