"""The archive format's pure parts: tar headers, metadata files, reading manifests,
indexes and names (no daemon, no store)."""

from __future__ import annotations

import io
import json
import tarfile
from typing import Any

import pytest

from supervisor.errors import InvalidArgument
from supervisor.images import archive
from supervisor.images.archive import BlobRef, SaveItem
from supervisor.images.store import AddedImage, ExportedImage

CFG = "sha256:" + "c" * 64
MAN = "sha256:" + "d" * 64
L1 = "sha256:" + "1" * 64
L2 = "sha256:" + "2" * 64


def exported(tags: list[str], layers: list[str] | None = None) -> ExportedImage:
    return ExportedImage(
        id=CFG,
        manifest_digest=MAN,
        tags=tags,
        config={"architecture": "arm64", "os": "linux", "variant": "v8"},
        layers=[L1, L2] if layers is None else layers,
    )


# ------------------------------------------------------------------ writing


def test_headers_and_padding_make_a_tar_python_reads() -> None:
    data = b"x" * 700
    raw = (
        archive.tar_header("blobs/", 0, directory=True)
        + archive.tar_header("blobs/f", len(data))
        + data
        + archive.padding(len(data))
        + archive.END_OF_ARCHIVE
    )
    assert len(raw) % 512 == 0
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        d, f = tar.getmembers()
        assert d.isdir() and d.name == "blobs" and d.mode == 0o755
        assert f.isreg() and f.size == 700 and f.mtime == 0 and f.uid == 0
        assert tar.extractfile(f).read() == data  # type: ignore[union-attr]


def test_metadata_for_a_tagged_image_has_both_views() -> None:
    files = archive.metadata_files(
        [SaveItem(exported(["busybox:latest"]), ["busybox:latest"])], {MAN: 400}
    )
    assert json.loads(files["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads(files["index.json"])
    assert index["mediaType"] == "application/vnd.oci.image.index.v1+json"
    (desc,) = index["manifests"]
    assert desc["digest"] == MAN and desc["size"] == 400
    assert desc["annotations"] == {
        "io.containerd.image.name": "docker.io/library/busybox:latest",
        "org.opencontainers.image.ref.name": "latest",
    }
    assert desc["platform"] == {"architecture": "arm64", "os": "linux", "variant": "v8"}
    (item,) = json.loads(files["manifest.json"])
    assert item == {
        "Config": "blobs/sha256/" + "c" * 64,
        "RepoTags": ["busybox:latest"],
        "Layers": ["blobs/sha256/" + "1" * 64, "blobs/sha256/" + "2" * 64],
    }
    assert json.loads(files["repositories"]) == {"busybox": {"latest": "2" * 64}}


def test_metadata_for_several_tags_and_an_untagged_image() -> None:
    tags = ["localhost:5000/app:1", "app:2"]
    files = archive.metadata_files([SaveItem(exported(tags), tags)], {MAN: 1})
    names = [
        d["annotations"]["io.containerd.image.name"]
        for d in json.loads(files["index.json"])["manifests"]
    ]
    assert names == ["localhost:5000/app:1", "docker.io/library/app:2"]
    assert json.loads(files["repositories"]) == {
        "localhost:5000/app": {"1": "2" * 64},
        "app": {"2": "2" * 64},
    }
    untagged = archive.metadata_files([SaveItem(exported([]))], {MAN: 1})
    (desc,) = json.loads(untagged["index.json"])["manifests"]
    assert "annotations" not in desc
    assert json.loads(untagged["manifest.json"])[0]["RepoTags"] is None
    assert "repositories" not in untagged


# ------------------------------------------------------------------ reading


@pytest.mark.parametrize("name", ["../x", "a/../../x", "/etc/passwd", "..", "a\\..\\b", ""])
def test_member_names_that_escape_are_refused(name: str) -> None:
    with pytest.raises(InvalidArgument, match="escapes the archive"):
        archive.member_name(name)


def test_member_names_are_normalised() -> None:
    assert archive.member_name("./blobs//sha256/ab") == "blobs/sha256/ab"
    assert archive.member_name("a/../b") == "b"


def test_docker_manifest_old_layout_and_config_digest_from_name() -> None:
    doc = [
        {
            "Config": "c" * 64 + ".json",
            "RepoTags": ["localhost/mytest:1", "busybox"],
            "Layers": ["abc/layer.tar", "./def/layer.tar"],
        }
    ]
    (img,) = archive.docker_manifest_images(doc)
    assert img.config == BlobRef("c" * 64 + ".json", CFG)
    assert [x.path for x in img.layers] == ["abc/layer.tar", "def/layer.tar"]
    assert img.tags == ["localhost/mytest:1", "busybox:latest"]


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({}, "is not a list"),
        ([{"Layers": []}], "has no Config"),
        ([{"Config": "c.json", "Layers": "x"}], "Layers must be a list"),
        ([{"Config": "../c.json", "Layers": []}], "escapes the archive"),
        ([{"Config": "c.json", "Layers": ["/etc/shadow"]}], "escapes the archive"),
        ([{"Config": "c.json", "Layers": [], "RepoTags": ["Bad:Tag"]}], "must be lowercase"),
        ([{"Config": "c.json", "Layers": [], "RepoTags": ["a@sha256:" + "0" * 64]}], "not a tag"),
    ],
)
def test_bad_docker_manifests_are_refused(doc: Any, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        archive.docker_manifest_images(doc)


@pytest.mark.parametrize(
    ("annotations", "tag"),
    [
        ({"io.containerd.image.name": "docker.io/library/busybox:latest"}, "busybox:latest"),
        (
            {"io.containerd.image.name": "quay.io/a/b:2", "org.opencontainers.image.ref.name": "2"},
            "quay.io/a/b:2",
        ),
        ({"org.opencontainers.image.ref.name": "latest"}, None),
        ({"org.opencontainers.image.ref.name": "mytest:1"}, "mytest:1"),
        ({"org.opencontainers.image.ref.name": "localhost/x"}, "localhost/x:latest"),
        ({}, None),
        (None, None),
    ],
)
def test_names_from_index_annotations(annotations: Any, tag: str | None) -> None:
    assert archive.tag_from_annotations(annotations) == tag


def _desc(
    digest: str, media: str = "application/vnd.oci.image.manifest.v1+json", **extra: Any
) -> dict[str, Any]:
    return {"mediaType": media, "digest": digest, "size": 10, **extra}


def test_oci_index_merges_tags_and_picks_the_host_platform() -> None:
    nested = "sha256:" + "e" * 64
    amd, arm = "sha256:" + "a" * 64, "sha256:" + "b" * 64
    manifest = {"config": _desc(CFG), "layers": [_desc(L1)]}
    blobs: dict[str, Any] = {
        nested: {
            "manifests": [
                _desc(arm, platform={"os": "linux", "architecture": "arm64"}),
                _desc(amd, platform={"os": "linux", "architecture": "amd64"}),
            ]
        },
        amd: manifest,
        MAN: manifest,
    }
    index = {
        "manifests": [
            _desc(MAN, annotations={"io.containerd.image.name": "docker.io/library/a:1"}),
            _desc(MAN, annotations={"io.containerd.image.name": "docker.io/library/a:2"}),
            _desc(nested, "application/vnd.oci.image.index.v1+json"),
            _desc(L2, "application/vnd.in-toto+json"),
        ]
    }
    read: list[str] = []

    def read_json(ref: BlobRef) -> Any:
        assert ref.path == "blobs/sha256/" + ref.digest.removeprefix("sha256:")  # type: ignore[union-attr]
        read.append(ref.digest or "")
        return blobs[ref.digest or ""]

    a, b = archive.oci_index_images(index, read_json, "amd64")
    assert a.tags == ["a:1", "a:2"] and b.tags == []
    assert a.config.digest == CFG and [x.digest for x in a.layers] == [L1]
    assert arm not in read
    with pytest.raises(InvalidArgument, match="no linux/s390x image"):
        archive.oci_index_images(index, read_json, "s390x")


@pytest.mark.parametrize(
    "index",
    [
        [],
        {"manifests": "x"},
        {"manifests": [{"digest": "sha256:12", "size": 1}]},
        {"manifests": [{"digest": "md5:" + "0" * 64, "size": 1}]},
    ],
)
def test_bad_indexes_are_refused(index: Any) -> None:
    with pytest.raises(InvalidArgument, match="invalid image archive"):
        archive.oci_index_images(index, lambda ref: {}, "amd64")


def test_diff_ids_must_be_sha256() -> None:
    assert archive.diff_ids({"rootfs": {"diff_ids": [L1]}}) == [L1]
    bads: list[Any] = [{}, {"rootfs": {}}, {"rootfs": {"diff_ids": ["sha256:zz"]}}]
    for bad in bads:
        with pytest.raises(InvalidArgument):
            archive.diff_ids(bad)


def test_loaded_lines_are_dockers() -> None:
    added = [
        AddedImage("sha256:" + "a" * 64, ["busybox:latest"], [("busybox:latest", "sha256:old")]),
        AddedImage("sha256:" + "b" * 64, [], []),
    ]
    assert archive.loaded_lines(added) == [
        "The image busybox:latest already exists, renaming the old one with ID sha256:old "
        "to empty string",
        "Loaded image: busybox:latest",
        "Loaded image ID: sha256:" + "b" * 64,
    ]
