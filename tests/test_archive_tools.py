"""save/load against the real daemon, checked by other tools: skopeo and umoci read
corral's archives, podman loads them, corral loads what buildah built, the docker CLI
and docker-py round-trip through corral, and a second daemon gets the same image ID.

Tools that are missing make their test skip (`.ci/run` installs them).  podman and
buildah run on private roots (vfs driver: no mounts) removed afterwards.
"""

from __future__ import annotations

import json
import os
import pty
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from busybox import extract
from conftest import IMAGE, Daemon, start_daemon, stop_daemon

OCI_REF_NAME = "org.opencontainers.image.ref.name"


def need(tool: str) -> None:
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} not installed")


def ok(args: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(args, capture_output=True, text=True, timeout=120, **kw)
    assert r.returncode == 0, f"{' '.join(args)} -> {r.returncode}: {r.stderr}"
    return r


def cli_ok(d: Daemon, *args: str) -> str:
    r = d.cli(*args)
    assert r.returncode == 0, f"corral {' '.join(args)} -> {r.returncode}: {r.stderr}"
    return r.stdout


def image_id(d: Daemon, name: str) -> str:
    return cli_ok(d, "inspect", "-f", "{{.Id}}", name).strip()


def scratch_left(d: Daemon) -> list[str]:
    return sorted(p.name for p in (d.root / "tmp" / "images").iterdir())


@pytest.fixture
def saved(corral: Daemon, tmp_path: Path) -> Path:
    """busybox saved under two tags (two index.json entries, one manifest.json entry)."""
    cli_ok(corral, "tag", IMAGE, "mine:v1")
    out = tmp_path / "x.tar"
    cli_ok(corral, "save", "-o", str(out), IMAGE, "mine:v1")
    return out


def test_skopeo_reads_both_views(corral: Daemon, saved: Path) -> None:
    need("skopeo")
    info = json.loads(cli_ok(corral, "inspect", IMAGE))[0]
    docker_view = json.loads(ok(["skopeo", "inspect", f"docker-archive:{saved}"]).stdout)
    assert docker_view["Layers"] == info["RootFS"]["Layers"]
    manifest_digest = info["RepoDigests"][0].split("@")[1]
    for ref in ("latest", "v1"):  # each tag is its own index.json entry
        oci_view = json.loads(ok(["skopeo", "inspect", f"oci-archive:{saved}:{ref}"]).stdout)
        assert oci_view["Digest"] == manifest_digest
        assert oci_view["Layers"] == info["RootFS"]["Layers"]
    config = ok(["skopeo", "inspect", "--raw", "--config", f"docker-archive:{saved}"]).stdout
    assert json.loads(config)["rootfs"]["diff_ids"] == info["RootFS"]["Layers"]


def test_umoci_unpacks_the_oci_view(saved: Path, tmp_path: Path) -> None:
    need("umoci")
    layout = tmp_path / "layout"
    layout.mkdir()
    extract(saved, layout, filter="data")
    ok(["umoci", "unpack", "--image", f"{layout}:v1", str(tmp_path / "bundle")])
    rootfs = tmp_path / "bundle" / "rootfs"
    assert (rootfs / "bin" / "busybox").is_file()
    assert (rootfs / "bin" / "sh").is_symlink()


@pytest.fixture
def podman(tmp_path: Path) -> Iterator[list[str]]:
    need("podman")
    root = tmp_path / "podman-root"
    run = Path(tempfile.mkdtemp(prefix="corral-pm-"))  # podman wants a short runroot
    yield [
        "podman", "--root", str(root), "--runroot", str(run), "--runtime", "runc",
        "--storage-driver", "vfs",
    ]  # fmt: skip
    shutil.rmtree(root, ignore_errors=True)
    shutil.rmtree(run, ignore_errors=True)


def test_podman_loads_corral_archive(corral: Daemon, saved: Path, podman: list[str]) -> None:
    out = ok([*podman, "load", "-i", str(saved)]).stdout
    # podman qualifies short names (docker.io/library/ or localhost/, by version)
    loaded = sorted(line.rsplit("/", 1)[-1] for line in out.splitlines() if "Loaded" in line)
    assert loaded == ["busybox:latest", "mine:v1"]
    listed = ok([*podman, "images", "--no-trunc", "--format", "{{.ID}}"]).stdout.split()
    assert set(listed) == {image_id(corral, IMAGE)}


@pytest.fixture
def buildah_image(tmp_path: Path, rootfs_tar: Path) -> Iterator[tuple[Path, Path, str]]:
    """An image buildah built (busybox base + a RUN layer), pushed as an OCI archive
    named mytest:1 and as a docker-archive named localhost/mytest:2."""
    need("buildah")
    root = tmp_path / "buildah-root"
    run = Path(tempfile.mkdtemp(prefix="corral-ba-"))  # a short runroot, as for podman
    b = ["buildah", "--root", str(root), "--runroot", str(run), "--storage-driver", "vfs"]
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    shutil.copy(rootfs_tar, ctx / "rootfs.tar")
    (ctx / "Dockerfile").write_text(
        "FROM scratch\nADD rootfs.tar /\nRUN echo hello > /greeting\n"
        'ENV FOO=bar\nCMD ["cat", "/greeting"]\n'
    )
    try:
        ok([*b, "bud", "--isolation", "chroot", "--layers", "-t", "mytest:1", str(ctx)])
        built = ok([*b, "inspect", "-f", "{{.FromImageID}}", "mytest:1"]).stdout.strip()
        oci, dock = tmp_path / "b-oci.tar", tmp_path / "b-docker.tar"
        ok([*b, "push", "mytest:1", f"oci-archive:{oci}:mytest:1"])
        ok([*b, "push", "mytest:1", f"docker-archive:{dock}:localhost/mytest:2"])
        yield oci, dock, "sha256:" + built.removeprefix("sha256:")
    finally:
        subprocess.run([*b, "rm", "--all"], capture_output=True, timeout=60)
        subprocess.run([*b, "rmi", "--all", "--force"], capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(run, ignore_errors=True)


def test_corral_loads_what_buildah_built(
    corral: Daemon, buildah_image: tuple[Path, Path, str]
) -> None:
    oci, dock, built = buildah_image
    with tarfile.open(oci) as tar:
        index = json.load(tar.extractfile("index.json"))  # type: ignore[arg-type]
    assert index["manifests"][0]["annotations"][OCI_REF_NAME] == "mytest:1"
    assert cli_ok(corral, "load", "-i", str(oci)) == "Loaded image: mytest:1\n"
    # buildah's docker-archive also lists the image's own name (localhost/mytest:1)
    assert "Loaded image: localhost/mytest:2" in cli_ok(corral, "load", "-i", str(dock)).split("\n")
    assert image_id(corral, "mytest:1") == image_id(corral, "localhost/mytest:2") == built
    assert cli_ok(corral, "run", "--rm", "mytest:1") == "hello\n"
    assert cli_ok(corral, "run", "--rm", "localhost/mytest:2", "sh", "-c", "echo $FOO") == "bar\n"
    assert scratch_left(corral) == []


def test_round_trip_into_a_second_daemon_keeps_the_image_id(corral: Daemon, tmp_path: Path) -> None:
    cli_ok(corral, "run", "--name", "maker", IMAGE, "sh", "-c", "echo made > /made")
    cli_ok(corral, "commit", "-c", 'CMD ["cat", "/made"]', "maker", "made:1")
    want = image_id(corral, "made:1")
    other = Daemon(tmp_path / "root2", tmp_path / "d2.sock", None, tmp_path / "d2.log")  # type: ignore[arg-type]
    other.proc = start_daemon(other.root, other.sock, other.log)
    try:
        save = subprocess.Popen(
            [sys.executable, "-m", "supervisor", "save", "made:1"],
            env=corral.env(), stdout=subprocess.PIPE,
        )  # fmt: skip
        load = subprocess.run(
            [sys.executable, "-m", "supervisor", "load"],
            env=other.env(), stdin=save.stdout, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert save.stdout is not None
        save.stdout.close()
        assert save.wait(timeout=60) == 0
        assert (load.returncode, load.stdout) == (0, "Loaded image: made:1\n"), load.stderr
        assert image_id(other, "made:1") == want
        client = other.client()
        history = [h["CreatedBy"] for h in client.api.history("made:1")]
        client.close()
        assert "sh -c echo made > /made" in history
        assert cli_ok(other, "run", "--rm", "made:1") == "made\n"
    finally:
        stop_daemon(other.proc)


def test_docker_cli_save_and_load(corral: Daemon, tmp_path: Path) -> None:
    out = tmp_path / "d.tar"
    r = corral.docker("save", "-o", str(out), IMAGE)
    assert r.returncode == 0, r.stderr
    want = image_id(corral, IMAGE)
    cli_ok(corral, "tag", IMAGE, "keep:1")  # so rmi of busybox deletes nothing
    cli_ok(corral, "rmi", IMAGE)
    r = corral.docker("load", "-i", str(out))
    assert (r.returncode, r.stdout) == (0, "Loaded image: busybox:latest\n"), r.stderr
    assert image_id(corral, IMAGE) == want
    r = corral.docker("save", "nothere:1", "-o", str(tmp_path / "n.tar"))
    assert r.returncode == 1 and "No such image: nothere:1" in r.stderr
    assert not (tmp_path / "n.tar").exists()


def test_docker_py_save_and_load(dk: Any) -> None:
    data = b"".join(dk.images.get(IMAGE).save(named=True))
    dk.images.get(IMAGE).tag("again", "2")
    dk.images.remove("again:2")
    (img,) = dk.images.load(data)
    assert img.id == dk.images.get(IMAGE).id and IMAGE in img.tags


# ------------------------------------------------------------------ the CLI's refusals


def test_save_refuses_a_terminal(corral: Daemon) -> None:
    main, sub = pty.openpty()
    try:
        r = subprocess.run(
            [sys.executable, "-m", "supervisor", "save", IMAGE],
            env=corral.env(), stdout=sub, stderr=subprocess.PIPE, timeout=60,
        )  # fmt: skip
    finally:
        os.close(sub)
        os.close(main)
    assert r.returncode == 1
    assert b"cowardly refusing to save to a terminal. Use the -o flag or redirect" in r.stderr


def test_save_errors_leave_no_file(corral: Daemon, tmp_path: Path) -> None:
    r = corral.cli("save", "-o", str(tmp_path / "no" / "x.tar"), IMAGE)
    assert r.returncode == 1 and "directory" in r.stderr and "does not exist" in r.stderr
    r = corral.cli("save", "-o", str(tmp_path / "x.tar"), IMAGE, "nothere")
    assert (r.returncode, r.stderr) == (
        1,
        "corral: Error response from daemon: No such image: nothere:latest\n",
    )
    assert list(tmp_path.iterdir()) == []
    r = corral.cli("save")
    assert r.returncode == 1 and "requires at least 1 argument" in r.stderr


def test_bad_archives_load_nothing(corral: Daemon, tmp_path: Path, rootfs_tar: Path) -> None:
    before = cli_ok(corral, "images", "-q", "--no-trunc")
    r = corral.cli("load", "-i", str(tmp_path / "missing.tar"))
    assert r.returncode == 1 and "no such file or directory" in r.stderr
    r = corral.cli("load", "-i", str(rootfs_tar))
    assert r.returncode == 1
    assert "invalid image archive: no manifest.json or index.json" in r.stderr
    evil = tmp_path / "evil.tar"
    with tarfile.open(evil, "w") as tar:
        info = tarfile.TarInfo("manifest.json")
        info.type, info.linkname = tarfile.SYMTYPE, "../../../etc/passwd"
        tar.addfile(info)
    r = corral.cli("load", "-i", str(evil))
    assert r.returncode == 1 and "escapes the archive" in r.stderr
    assert cli_ok(corral, "images", "-q", "--no-trunc") == before
    assert scratch_left(corral) == []
