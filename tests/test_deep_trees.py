"""Trees too deep for paths (issue 12): an import or a load 2,100 directories deep is
refused by name with nothing left, and a container may make its /tmp and its volumes
that deep and still be removed with them."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from typing import Any

import docker
import pytest
from conftest import IMAGE, Daemon

from supervisor.rmtree import remove_tree


def deep_tar(depth: int) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for n in range(1, depth + 1):
            info = tarfile.TarInfo("/".join(["a"] * n))
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
    return buf.getvalue()


def test_an_import_2100_directories_deep_is_refused_by_name_and_leaves_nothing(
    daemon: Daemon, dk: Any
) -> None:
    tmp = daemon.root / "tmp"
    try:
        with pytest.raises(docker.errors.APIError) as err:
            dk.api.import_image_from_data(deep_tar(2100), repository="deep")
        assert err.value.response.status_code == 400
        msg = err.value.explanation
        assert msg.startswith("refusing tar entry 'a/a/a/"), msg
        assert "513 levels deep (at most 512)" in msg and "\n" not in msg
        assert [p for p in tmp.iterdir() if not p.is_dir()] == []
        assert list((tmp / "images").iterdir()) == []
        assert [i.tags for i in dk.images.list()] == [[IMAGE]]
    finally:
        for p in (tmp / "images").iterdir():  # a failure must not break the teardown
            remove_tree(p)


def test_a_load_with_a_layer_2100_directories_deep_is_refused_and_leaves_nothing(
    daemon: Daemon, dk: Any
) -> None:
    layer = deep_tar(2100)
    diffid = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": [diffid]},
        }
    ).encode()
    cfg_name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = [{"Config": cfg_name, "RepoTags": ["deep:1"], "Layers": ["l/layer.tar"]}]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in (
            ("manifest.json", json.dumps(manifest).encode()),
            (cfg_name, config),
            ("l/layer.tar", layer),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    scratch = daemon.root / "tmp" / "images"
    try:
        with pytest.raises(docker.errors.APIError) as err:
            dk.images.load(buf.getvalue())
        assert err.value.response.status_code == 400
        assert "refusing tar entry 'a/a/a/" in err.value.explanation
        assert "513 levels deep" in err.value.explanation
        assert list(scratch.iterdir()) == []
        assert [i.tags for i in dk.images.list()] == [[IMAGE]]
    finally:
        for p in scratch.iterdir():  # a failure must not break the teardown
            remove_tree(p)


def test_a_container_that_made_deep_trees_is_removed_with_its_volume(
    daemon: Daemon, dk: Any
) -> None:
    # 2,500 levels, 500 per `mkdir -p` (each argument stays short of PATH_MAX).
    step = "d/" * 500
    deepen = f"for i in 1 2 3 4 5; do mkdir -p {step} && cd -P {step} || exit 1; done"
    c = dk.containers.run(
        IMAGE,
        ["sh", "-c", f"(cd /tmp && {deepen}) && (cd /data && {deepen})"],
        volumes={"deepvol": {"bind": "/data"}},
        detach=True,
    )
    cdir, vdir = daemon.root / "containers" / c.id, daemon.root / "volumes" / "deepvol"
    try:
        assert c.wait()["StatusCode"] == 0, c.logs()
        assert (cdir / "upper" / "tmp" / "d").is_dir()
        c.remove(v=True)
        assert not cdir.exists()
        dk.volumes.get("deepvol").remove()
        assert not vdir.exists()
    finally:  # a failure must not break the teardown
        remove_tree(cdir / "upper" / "tmp")
        remove_tree(vdir / "_data" / "d")
