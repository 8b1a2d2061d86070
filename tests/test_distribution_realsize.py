"""Pull and push at real size: a Debian bookworm minimal root filesystem (~170 MB, made by
`mmdebstrap --variant=minbase` through Debian's mirror, cached outside the checkout),
as a multi-platform index (two manifests sharing the layer, made with umoci, copied by
skopeo), a multi-layer image corral builds on it, and corral's pushes read back by
`skopeo inspect` and `podman pull`, digests identical both ways.

Marked `heavy` (`-m "not heavy"` leaves them out): the first run builds the root
filesystem (~30 s, cached in $CORRAL_TEST_CACHE, default /var/cache/corral-test);
after that each session spends ~1 min here."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Daemon
from registry import Registry

pytestmark = pytest.mark.heavy

CACHE = Path(os.environ.get("CORRAL_TEST_CACHE") or "/var/cache/corral-test")
ROOTFS = "bookworm-minbase.tar"


def _run(*args: str, timeout: float = 300) -> str:
    r = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"{args}: {r.stderr}"
    return r.stdout


@pytest.fixture(scope="session")
def debian_tar() -> Path:
    """The root filesystem tar, made once per machine (a lock keeps two sessions from
    making it at once; it is written aside and renamed, so it is whole or absent)."""
    path = CACHE / ROOTFS
    if path.is_file():
        return path
    if shutil.which("mmdebstrap") is None:
        pytest.skip("needs mmdebstrap (scripts/setup installs it)")
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if path.is_dir():  # what an older fixture made (its temporary name's suffix)
            shutil.rmtree(path)
        if not path.exists():
            # the name ends in .tar: mmdebstrap picks its output format by the suffix
            # (anything else is a directory)
            tmp = CACHE / f".{os.getpid()}.{ROOTFS}"
            r = subprocess.run(["mmdebstrap", "--variant=minbase", "--quiet", "bookworm",
                                str(tmp)], capture_output=True, text=True, timeout=900)
            if r.returncode != 0:
                tmp.unlink(missing_ok=True)
                pytest.skip(f"mmdebstrap failed (no Debian mirror?): {r.stderr[-300:]}")
            tmp.rename(path)
    return path


@pytest.fixture(scope="session")
def debian_index(debian_tar: Path, registry: Registry, workdir: Path) -> str:
    """`debian:bookworm` in the session's registry: an OCI index of two manifests
    (linux/amd64 and linux/arm64, the same layer, configs differing in architecture)
    made with umoci and copied with skopeo --all.  Returns the repository's name."""
    if shutil.which("umoci") is None:
        pytest.skip("needs umoci")
    layout = workdir / "debian-oci"
    _run("umoci", "init", "--layout", str(layout))
    _run("umoci", "new", "--image", f"{layout}:amd64")
    _run("umoci", "raw", "add-layer", "--image", f"{layout}:amd64", str(debian_tar),
         timeout=600)
    _run("umoci", "config", "--image", f"{layout}:amd64", "--architecture", "amd64",
         "--os", "linux", "--config.cmd", "bash",
         "--config.env", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    _run("umoci", "config", "--image", f"{layout}:amd64", "--tag", "arm64",
         "--architecture", "arm64", "--os", "linux")
    index = json.loads((layout / "index.json").read_text())
    by_tag = {m["annotations"]["org.opencontainers.image.ref.name"]: m
              for m in index["manifests"]}
    entries = []
    for arch in ("amd64", "arm64"):
        m = {k: v for k, v in by_tag[arch].items() if k != "annotations"}
        m["platform"] = {"architecture": arch, "os": "linux"}
        entries.append(m)
    doc = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                      "manifests": entries}).encode()
    import hashlib

    digest = hashlib.sha256(doc).hexdigest()
    (layout / "blobs/sha256" / digest).write_bytes(doc)
    index["manifests"].append({
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "digest": f"sha256:{digest}", "size": len(doc),
        "annotations": {"org.opencontainers.image.ref.name": "latest"}})
    (layout / "index.json").write_text(json.dumps(index))
    repo = f"debian-{uuid.uuid4().hex[:8]}"
    registry.push(layout, repo, all_=True)
    return repo


def _arch() -> str:
    from supervisor.distribution.manifests import host_platform

    return host_platform().architecture


@pytest.fixture
def podman(tmp_path: Path) -> Iterator[list[str]]:
    if shutil.which("podman") is None:
        pytest.skip("needs podman")
    run = Path(tempfile.mkdtemp(prefix="cr-"))  # podman wants a short runroot
    cmd = ["podman", "--root", str(tmp_path / "podman"), "--runroot", str(run),
           "--storage-driver", "vfs"]
    yield cmd
    subprocess.run([*cmd, "system", "reset", "-f"], capture_output=True, timeout=300)
    shutil.rmtree(run, ignore_errors=True)


def test_pull_a_real_size_multi_platform_image(corral: Daemon, dk: Any, registry: Registry,
                                               debian_index: str) -> None:
    """The index's entry for this host is chosen, 170 MB arrive verified, Debian runs;
    the other platform's manifest shares the layer: pulled by --platform, nothing is
    downloaded again.  Both images keep the index's digest as RepoDigest."""
    if _arch() not in ("amd64", "arm64"):
        pytest.skip("the index has amd64 and arm64")
    other = "arm64" if _arch() == "amd64" else "amd64"
    name = f"{registry.host}/{debian_index}"
    r = corral.cli("pull", name, timeout=600)
    assert r.returncode == 0, r.stderr
    index_digest = registry.manifest_digest(f"{debian_index}:latest")
    assert f"Digest: {index_digest}" in r.stdout.splitlines()
    out = dk.containers.run(name, ["sh", "-c", "cat /etc/debian_version; dpkg -s bash | "
                                   "grep ^Status"], remove=True)
    version, status = out.decode().splitlines()
    assert version.startswith("12.") and status == "Status: install ok installed"
    image = dk.images.get(name)
    assert image.attrs["Architecture"] == _arch()
    assert image.attrs["Size"] > 100_000_000
    r = corral.cli("pull", "--platform", f"linux/{other}", name, timeout=600)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert sum(x.endswith(": Already exists") for x in lines) == 1, lines
    assert not any(x.endswith("Pull complete") for x in lines)
    assert dk.images.get(name).attrs["Architecture"] == other
    assert dk.images.get(image.id).attrs["RepoTags"] == []  # the other one, untagged


def test_build_on_it_push_and_read_back(corral: Daemon, dk: Any, registry: Registry,
                                        auth_registry: Registry, debian_index: str,
                                        tmp_path: Path, podman: list[str]) -> None:
    """A multi-layer image corral builds FROM the pulled Debian (the build pulls it),
    pushed to another registry, so every layer, 170 MB among them, is compressed and
    uploaded (in chunks); `skopeo inspect` reads the digest corral printed, podman pulls
    it to the same image ID, and corral pulls it back to the same ID and digest."""
    base = f"{registry.host}/{debian_index}"
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "app.sh").write_text("#!/bin/sh\necho app on $(cat /etc/debian_version)\n")
    (ctx / "Dockerfile").write_text(
        f"FROM {base}\n"
        "RUN useradd --create-home app && mkdir /srv/app\n"
        "COPY app.sh /srv/app/app.sh\n"
        "RUN chmod 755 /srv/app/app.sh && rm -rf /usr/share/doc\n"
        'CMD ["/srv/app/app.sh"]\n')
    repo = f"app-{uuid.uuid4().hex[:8]}"
    target = f"{auth_registry.host}/{repo}"
    r = corral.cli("build", "-q", "-t", f"{target}:v1", str(ctx), timeout=900)
    assert r.returncode == 0, r.stderr
    built = dk.images.get(f"{target}:v1")
    assert len(built.attrs["RootFS"]["Layers"]) == 4
    env = corral.env(DOCKER_CONFIG=str(tmp_path / "cfg"))

    def cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        import sys

        return subprocess.run([sys.executable, "-m", "supervisor", *args], env=env,
                              input=stdin, capture_output=True, text=True, timeout=900)

    assert cli("login", "-u", "corral", "--password-stdin", auth_registry.host,
               stdin="s3cret\n").returncode == 0
    r = cli("push", f"{target}:v1")
    assert r.returncode == 0, r.stderr
    pushed = r.stdout.splitlines()
    assert sum(x.endswith(": Pushed") for x in pushed) == 4, pushed
    digest = pushed[-1].split()[2]
    assert auth_registry.manifest_digest(f"{repo}:v1") == digest
    got = subprocess.run([*podman, "pull", "-q", "--tls-verify=false", "--creds",
                          "corral:s3cret", f"{target}:v1"], capture_output=True, text=True,
                         timeout=600)
    assert got.returncode == 0, got.stderr
    ids = _run(*podman, "image", "inspect", "--format", "{{.Id}}", f"{target}:v1")
    assert ids.strip() == built.id.removeprefix("sha256:")
    dk.images.remove(f"{target}:v1")
    r = cli("pull", f"{target}:v1")
    assert r.returncode == 0, r.stderr
    back = dk.images.get(f"{target}:v1")
    assert back.id == built.id
    assert back.attrs["RepoDigests"] == [f"{target}@{digest}"]
    out = dk.containers.run(f"{target}:v1", remove=True)
    assert out.decode().startswith("app on 12.")
