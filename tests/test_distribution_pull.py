"""`docker pull` against a real registry (distribution 2.8), images put there by skopeo."""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from conftest import Daemon
from registry import Layer, Registry, make_image


def _repo(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _stamp(name: str = "etc/stamp") -> bytes:
    """A layer no other test has: its content is random."""
    return Layer({"etc/": b"", name: uuid.uuid4().hex.encode()}).tar()


@pytest.fixture
def busybox_remote(registry: Registry, rootfs_tar: Path, tmp_path: Path) -> str:
    """The busybox test rootfs (a layer the daemon already has from the session's
    busybox:latest) plus a new layer, pushed as a schema2 image; returns its name."""
    repo = _repo("busybox")
    layout = make_image(tmp_path / "bb", [rootfs_tar.read_bytes(), _stamp()])
    registry.push(layout, repo, fmt="v2s2")
    return f"{registry.host}/{repo}"


def test_pull_schema2_then_run(corral: Daemon, dk: Any, registry: Registry,
                               busybox_remote: str) -> None:
    lines = [json.loads(x) for x in dk.api.pull(busybox_remote, tag="latest", stream=True)]
    statuses = [m["status"] for m in lines]
    assert statuses[0] == "Pulling from " + busybox_remote.split("/", 1)[1]
    # the busybox layer is the session image's: never downloaded again
    assert statuses[1] == "Already exists"
    assert statuses.count("Pulling fs layer") == 1
    assert statuses.count("Pull complete") == 1
    digest = registry.manifest_digest(busybox_remote.split("/", 1)[1] + ":latest")
    assert f"Digest: {digest}" in statuses
    assert statuses[-1] == f"Status: Downloaded newer image for {busybox_remote}:latest"
    img = dk.images.get(f"{busybox_remote}:latest")
    assert img.attrs["RepoDigests"] == [f"{busybox_remote}@{digest}"]
    listed = corral.cli("images", "--digests", "--format", "{{.Digest}}", busybox_remote)
    assert listed.stdout == f"{digest}\n"
    out = dk.containers.run(f"{busybox_remote}:latest", ["cat", "/var/www/index.html"],
                            remove=True)
    assert out == b"hello from corral\n"
    # again: nothing is downloaded, Docker's up-to-date line
    again = [json.loads(x)["status"] for x in dk.api.pull(busybox_remote, tag="latest",
                                                         stream=True)]
    assert again[-1] == f"Status: Image is up to date for {busybox_remote}:latest"
    assert "Pulling fs layer" not in again
    # and by digest
    by_digest = dk.images.get(f"{busybox_remote}@{digest}")
    assert by_digest.id == img.id


def _stored(daemon: Daemon) -> dict[str, set[str]]:
    """What the store holds on disk: blobs, layer dirs, scratch."""
    root = daemon.root
    return {
        "blobs": {p.name for p in (root / "images/blobs/sha256").iterdir()},
        "layers": {p.name for p in (root / "layers").iterdir()},
        "tmp": {p.name for p in (root / "tmp/images").iterdir()},
    }


def _image_ids(dk: Any) -> set[str]:
    return {i.id for i in dk.images.list(all=True)}


def test_pull_oci_multilayer_with_docker_cli(corral: Daemon, dk: Any, registry: Registry,
                                            tmp_path: Path, rootfs_tar: Path) -> None:
    """An OCI manifest, busybox and three new layers (the top one overrides a file and
    deletes one with a whiteout); the docker CLI's plain (non-TTY) output, as Docker
    prints it."""
    repo = _repo("multi")
    layers = [
        rootfs_tar.read_bytes(),
        Layer({"data/": b"", "data/a": b"one\n", "data/gone": b"x"}).tar(),
        _stamp("data/stamp"),
        Layer({"data/": b"", "data/a": b"three\n", "data/.wh.gone": b""}).tar(),
    ]
    base = tmp_path / "base"
    registry.push(make_image(base, layers), repo, fmt="oci")
    name = f"{registry.host}/{repo}"
    r = corral.docker("pull", name)
    assert r.returncode == 0, r.stderr
    out = r.stdout.splitlines()
    assert out[:2] == ["Using default tag: latest", f"latest: Pulling from {repo}"]
    assert sum(1 for x in out if x.endswith(": Already exists")) == 1
    assert sum(1 for x in out if x.endswith(": Pull complete")) == 3
    digest = registry.manifest_digest(f"{repo}:latest")
    assert f"Digest: {digest}" in out
    assert out[-2] == f"Status: Downloaded newer image for {name}:latest"
    assert out[-1] == f"{name}:latest"
    run = corral.docker("run", "--rm", name, "sh", "-c", "cat /data/a; ls /data")
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == ["three", "a", "stamp"]
    inspect = json.loads(corral.docker("image", "inspect", name).stdout)[0]
    assert inspect["RepoDigests"] == [f"{name}@{digest}"]
    assert len(inspect["RootFS"]["Layers"]) == 4


def _index_image(registry: Registry, tmp_path: Path, arches: list[str]) -> str:
    from registry import image_manifest, new_layout, write_oci_layout

    layout = new_layout(tmp_path / "idx")
    descs = [image_manifest(layout, [_stamp(f"etc/{a}")], arch=a) for a in arches]
    write_oci_layout(layout, descs, index=True)
    repo = _repo("multiarch")
    registry.push(layout, repo, all_=True)
    return f"{registry.host}/{repo}"


def _host_arch() -> str:
    from supervisor.distribution.manifests import host_platform

    return host_platform().architecture


def test_pull_index_selects_platform(corral: Daemon, dk: Any, registry: Registry,
                                     tmp_path: Path) -> None:
    other = "s390x" if _host_arch() != "s390x" else "ppc64le"
    name = _index_image(registry, tmp_path, [other, _host_arch()])
    # GET /distribution/{name}/json, as docker-py reads it
    data = dk.images.get_registry_data(name)
    assert data.id == registry.manifest_digest(name.split("/", 1)[1] + ":latest")
    assert data.has_platform(f"linux/{other}") and data.has_platform(f"linux/{_host_arch()}")
    assert not data.has_platform("linux/mips64le")
    dk.images.pull(name, tag="latest")
    assert dk.images.get(name).attrs["Architecture"] == _host_arch()
    # --platform picks the other one (a different image, same tag moved)
    dk.api.pull(name, tag="latest", platform=f"linux/{other}")
    assert dk.images.get(name).attrs["Architecture"] == other


def test_pull_index_without_this_platform(corral: Daemon, dk: Any, registry: Registry,
                                          tmp_path: Path) -> None:
    other = "s390x" if _host_arch() != "s390x" else "ppc64le"
    name = _index_image(registry, tmp_path, [other])
    before, ids = _stored(corral), _image_ids(dk)
    r = corral.docker("pull", name)
    assert r.returncode == 1
    assert r.stderr.strip() == (
        f"Error response from daemon: no matching manifest for linux/{_host_arch()} "
        "in the manifest list entries"
    )
    assert _stored(corral) == before and _image_ids(dk) == ids


def test_pull_unknown_repository_and_tag(corral: Daemon, dk: Any, registry: Registry,
                                         busybox_remote: str) -> None:
    before = _stored(corral)
    r = corral.docker("pull", f"{registry.host}/no-such-repo")
    assert r.returncode == 1
    assert r.stderr.strip() == (
        f"Error response from daemon: manifest for {registry.host}/no-such-repo:latest "
        "not found: manifest unknown: manifest unknown"
    )
    import docker.errors

    with pytest.raises(docker.errors.NotFound) as e:
        dk.images.pull(busybox_remote, tag="nope")
    assert f"manifest for {busybox_remote}:nope not found" in str(e.value)
    assert _stored(corral) == before


def test_pull_registry_down(corral: Daemon, dk: Any) -> None:
    import socket

    with socket.socket() as s:  # bound, not listening: connections are refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        r = corral.docker("pull", f"127.0.0.1:{port}/busybox")
    assert r.returncode == 1
    assert r.stderr.strip() == (
        f'Error response from daemon: Get "http://127.0.0.1:{port}/v2/": '
        f"dial tcp 127.0.0.1:{port}: connect: connection refused"
    )


def test_pull_tampered_blob_is_refused(corral: Daemon, dk: Any, registry: Registry,
                                       tmp_path: Path) -> None:
    """A blob whose bytes no longer match its digest (corrupted in the registry's own
    storage, same size): refused and named while streaming, nothing stored."""
    repo = _repo("tampered")
    registry.push(make_image(tmp_path / "t", [_stamp(), _stamp("etc/two")]), repo, fmt="v2s2")
    manifest = registry.inspect(f"{repo}:latest", raw=True)
    victim = manifest["layers"][1]["digest"]
    f = registry.blob_file(repo, victim)
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0xFF
    f.write_bytes(bytes(data))
    name = f"{registry.host}/{repo}"
    before, ids = _stored(corral), _image_ids(dk)
    msgs = [json.loads(x) for x in dk.api.pull(name, tag="latest", stream=True)]
    assert msgs[-1]["error"] == f"filesystem layer verification failed for digest {victim}"
    assert msgs[-1]["errorDetail"] == {"message": msgs[-1]["error"]}
    r = corral.docker("pull", name)
    assert r.returncode == 1
    assert r.stderr.strip() == f"filesystem layer verification failed for digest {victim}"
    assert _stored(corral) == before and _image_ids(dk) == ids
    with pytest.raises(Exception, match="No such image"):
        dk.images.get(name)


def test_corral_pull_plain_and_quiet(corral: Daemon, dk: Any, registry: Registry,
                                     busybox_remote: str) -> None:
    repo = busybox_remote.split("/", 1)[1]
    digest = registry.manifest_digest(f"{repo}:latest")
    r = corral.cli("pull", busybox_remote)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    layer = registry.inspect(f"{repo}:latest", raw=True)["layers"][1]["digest"][7:19]
    assert lines[:2] == ["Using default tag: latest", f"latest: Pulling from {repo}"]
    assert f"{layer}: Pulling fs layer" in lines and f"{layer}: Pull complete" in lines
    assert not any("Downloading" in x for x in lines)  # byte progress only on a TTY
    assert lines[-3:] == [
        f"Digest: {digest}",
        f"Status: Downloaded newer image for {busybox_remote}:latest",
        f"{busybox_remote}:latest",
    ]
    q = corral.cli("pull", "-q", f"{busybox_remote}@{digest}")
    assert (q.returncode, q.stdout) == (0, f"{busybox_remote}@{digest}\n")
    assert dk.images.get(f"{busybox_remote}@{digest}").id == dk.images.get(busybox_remote).id


def test_corral_pull_bad_input(corral: Daemon, registry: Registry) -> None:
    r = corral.cli("pull", "-a", f"{registry.host}/x:1")
    assert (r.returncode, r.stderr.strip()) == (1, "corral: tag can't be used with --all-tags/-a")
    r = corral.cli("pull", "Upper/Case")
    assert r.returncode == 1
    assert r.stderr.strip() == (
        "corral: invalid reference format: repository name (Case) must be lowercase")
    r = corral.cli("pull", f"{registry.host}/nope:1")
    assert r.returncode == 1
    assert r.stderr.strip() == (
        f"corral: Error response from daemon: manifest for {registry.host}/nope:1 not "
        "found: manifest unknown: manifest unknown"
    )


def test_docker_run_pulls_a_missing_image(corral: Daemon, busybox_remote: str) -> None:
    r = corral.docker("run", "--rm", busybox_remote, "cat", "/etc/stamp")
    assert r.returncode == 0, r.stderr
    assert r.stderr.splitlines()[0] == f"Unable to find image '{busybox_remote}:latest' locally"
    assert len(r.stdout.strip()) == 32


def test_run_pulls_a_missing_image(corral: Daemon, dk: Any, busybox_remote: str) -> None:
    r = corral.cli("run", "--rm", "--pull", "never", busybox_remote, "true")
    assert r.returncode == 125
    assert r.stderr.strip() == (
        f"corral: Error response from daemon: No such image: {busybox_remote}:latest")
    r = corral.cli("run", "--rm", busybox_remote, "cat", "/etc/stamp")
    assert r.returncode == 0, r.stderr
    err = r.stderr.splitlines()
    assert err[0] == f"Unable to find image '{busybox_remote}:latest' locally"
    assert err[-1] == f"Status: Downloaded newer image for {busybox_remote}:latest"
    assert len(r.stdout.strip()) == 32  # the stamp layer's content
    again = corral.cli("create", "--pull", "always", busybox_remote)
    assert again.returncode == 0, again.stderr
    assert again.stderr.splitlines()[-1] == (
        f"Status: Image is up to date for {busybox_remote}:latest")
    quiet = corral.cli("create", "-q", "--pull", "always", busybox_remote)
    assert quiet.returncode == 0 and quiet.stderr == ""
    bad = corral.cli("run", "--pull", "sometimes", busybox_remote)
    assert bad.returncode == 125
    assert bad.stderr.strip() == ("corral: invalid pull option: 'sometimes': must be one of "
                                  '"always", "missing" or "never"')


def test_terminal_progress_is_redrawn_in_place() -> None:
    import io

    from supervisor.cli.pull import show_pull

    msgs = [
        {"status": "Pulling from x", "id": "latest"},
        {"status": "Pulling fs layer", "progressDetail": {}, "id": "aaa"},
        {"status": "Pulling fs layer", "progressDetail": {}, "id": "bbb"},
        {"status": "Downloading", "progressDetail": {"current": 1, "total": 2},
         "progress": "[=>  ] 1B/2B", "id": "aaa"},
    ]
    out = io.BytesIO()
    show_pull([json.dumps(m).encode() for m in msgs], out, tty=True)
    assert out.getvalue().decode() == (
        "latest: Pulling from x\naaa: Pulling fs layer\nbbb: Pulling fs layer\n"
        "\x1b[2A\r\x1b[2Kaaa: Downloading [=>  ] 1B/2B\x1b[2B\r"
    )


# ------------------------------------------------------------------------- push


def test_push_round_trip(corral: Daemon, dk: Any, registry: Registry, tmp_path: Path) -> None:
    """A local image pushed by corral: the registry holds what corral said (skopeo
    inspects the same digest), and pulling it back gives the same image ID."""
    repo = _repo("pushed")
    name = f"{registry.host}/{repo}"
    container = dk.containers.create("busybox", ["sh", "-c", f"echo {uuid.uuid4()} > /stamp"])
    container.start()
    container.wait()
    committed = container.commit(repository=name, tag="v1")
    r = corral.cli("push", f"{name}:v1")
    assert r.returncode == 0, r.stderr
    out = r.stdout.splitlines()
    assert out[0] == f"The push refers to repository [{name}]"
    assert any(x.endswith(": Pushed") for x in out)
    digest = registry.manifest_digest(f"{repo}:v1")
    size = len(json.dumps(registry.inspect(f"{repo}:v1", raw=True), indent=3))
    assert out[-1] == f"v1: digest: {digest} size: {size}"
    assert dk.images.get(name + ":v1").attrs["RepoDigests"] == [f"{name}@{digest}"]
    # again, with docker-py: nothing to send, the same digest in the aux message
    again = list(dk.images.push(name, tag="v1", stream=True, decode=True))
    statuses = [m.get("status") for m in again]
    assert "Pushed" not in statuses and "Layer already exists" in statuses
    assert again[-1] == {"progressDetail": {}, "aux": {"Tag": "v1", "Digest": digest,
                                                       "Size": size}}
    # another client reads what corral pushed: podman pulls it (private storage)
    import shutil
    import subprocess

    if shutil.which("podman"):
        import tempfile

        store = tmp_path / "podman"
        run = Path(tempfile.mkdtemp(prefix="cr-"))  # podman wants a runroot under 50 chars
        podman = ["podman", "--root", str(store / "root"), "--runroot", str(run),
                  "--storage-driver", "vfs"]
        try:
            got = subprocess.run([*podman, "pull", "-q", "--tls-verify=false", f"{name}:v1"],
                                 capture_output=True, text=True, timeout=120)
            assert got.returncode == 0, got.stderr
            ids = subprocess.run([*podman, "image", "inspect", "--format", "{{.Id}}",
                                  f"{name}:v1"], capture_output=True, text=True, timeout=60)
            assert ids.stdout.strip() == committed.id.removeprefix("sha256:")
        finally:
            subprocess.run([*podman, "system", "reset", "-f"], capture_output=True, timeout=120)
            shutil.rmtree(run, ignore_errors=True)
    # back and forth: same image, same digest
    dk.images.remove(name + ":v1")
    dk.images.pull(name, tag="v1")
    back = dk.images.get(name + ":v1")
    assert back.id == committed.id
    assert back.attrs["RepoDigests"] == [f"{name}@{digest}"]


def test_push_of_a_pulled_image_is_byte_identical(corral: Daemon, dk: Any, registry: Registry,
                                                  busybox_remote: str) -> None:
    """The registry's own blobs are reused (mounted across repositories), so the
    manifest pushed is the one pulled, digest for digest."""
    src_repo = busybox_remote.split("/", 1)[1]
    original = registry.manifest_digest(f"{src_repo}:latest")
    dk.images.pull(busybox_remote, tag="latest")
    repo = _repo("copy")
    dk.images.get(busybox_remote).tag(f"{registry.host}/{repo}", "latest")
    r = corral.docker("push", f"{registry.host}/{repo}")
    assert r.returncode == 0, r.stderr
    assert f": Mounted from {src_repo}" in r.stdout
    assert registry.manifest_digest(f"{repo}:latest") == original
    assert f"latest: digest: {original} size:" in r.stdout


def test_push_bad_input(corral: Daemon, dk: Any, registry: Registry) -> None:
    r = corral.cli("push", f"{registry.host}/never-made:1")
    assert r.returncode == 1
    assert r.stderr.strip() == (
        f"corral: Error response from daemon: tag does not exist: {registry.host}/never-made:1")
    r = corral.cli("push", f"{registry.host}/never-made")
    assert r.stderr.strip() == (
        f"corral: Error response from daemon: tag does not exist: "
        f"{registry.host}/never-made:latest")
    import socket

    dk.images.get("busybox").tag("127.0.0.1:1/x", "latest")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        dk.images.get("busybox").tag(f"127.0.0.1:{port}/x", "latest")
        r = corral.cli("push", f"127.0.0.1:{port}/x")
    assert r.returncode == 1
    assert r.stderr.strip().endswith(
        f'Get "http://127.0.0.1:{port}/v2/": dial tcp 127.0.0.1:{port}: connect: '
        "connection refused")


# ------------------------------------------------------------------------ login


def test_login_then_pull_and_push(corral: Daemon, dk: Any, auth_registry: Registry,
                                  tmp_path: Path, rootfs_tar: Path) -> None:
    """An htpasswd registry: anonymous pulls are refused, a wrong password is refused
    and saves nothing, `corral login` saves the login where the docker CLI reads it
    (0600) and pull and push use it; logout forgets it."""
    import subprocess
    import sys

    reg = auth_registry
    repo = _repo("private")
    reg.push(make_image(tmp_path / "img", [rootfs_tar.read_bytes(), _stamp()]), repo,
             fmt="v2s2")
    name = f"{reg.host}/{repo}"
    env = corral.env(DOCKER_CONFIG=str(tmp_path / "dockercfg"))
    config = tmp_path / "dockercfg" / "config.json"

    def cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "supervisor", *args], env=env,
                              input=stdin, capture_output=True, text=True, timeout=60)

    r = cli("pull", name)
    assert r.returncode == 1
    assert r.stderr.strip() == (
        f'corral: Error response from daemon: Get "http://{name.split("/")[0]}/v2/{repo}/'
        'manifests/latest": no basic auth credentials')
    r = cli("login", "-u", "corral", "--password-stdin", reg.host, stdin="wrong\n")
    assert r.returncode == 1
    assert r.stderr.strip() == (
        f"corral: Error response from daemon: login attempt to http://{reg.host}/v2/ "
        "failed with status: 401 Unauthorized")
    assert not config.exists()
    r = cli("login", "-u", "corral", "--password-stdin", reg.host, stdin="s3cret\n")
    assert (r.returncode, r.stdout) == (0, "Login Succeeded\n"), r.stderr
    assert config.stat().st_mode & 0o777 == 0o600
    assert set(json.loads(config.read_text())["auths"]) == {reg.host}
    r = cli("pull", name)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1] == f"{name}:latest"
    # the docker CLI reads the same file
    dk.images.remove(f"{name}:latest")
    d = subprocess.run(["docker", "pull", "-q", name], env=env, capture_output=True,
                       text=True, timeout=60)
    assert (d.returncode, d.stdout) == (0, f"{name}:latest\n"), d.stderr
    dk.images.get(f"{name}:latest").tag(f"{reg.host}/{repo}-copy", "v2")
    r = cli("push", f"{reg.host}/{repo}-copy:v2")
    assert r.returncode == 0, r.stderr
    assert reg.manifest_digest(f"{repo}-copy:v2") == reg.manifest_digest(f"{repo}:latest")
    # docker-py's login is POST /auth
    assert dk.login("corral", "s3cret", registry=reg.host)["Status"] == "Login Succeeded"
    r = cli("logout", reg.host)
    assert (r.returncode, r.stdout) == (0, f"Removing login credentials for {reg.host}\n")
    assert json.loads(config.read_text())["auths"] == {}
    assert cli("pull", name).returncode == 1


def test_pull_truncated_blob_is_refused(corral: Daemon, dk: Any, registry: Registry,
                                        tmp_path: Path) -> None:
    """A blob the registry has lost half of: its length no longer matches the manifest."""
    repo = _repo("truncated")
    registry.push(make_image(tmp_path / "t", [_stamp()]), repo, fmt="v2s2")
    victim = registry.inspect(f"{repo}:latest", raw=True)["layers"][0]
    f = registry.blob_file(repo, victim["digest"])
    f.write_bytes(f.read_bytes()[: victim["size"] // 2])
    name = f"{registry.host}/{repo}"
    before, ids = _stored(corral), _image_ids(dk)
    r = corral.cli("pull", name)
    assert r.returncode == 1
    assert r.stderr.strip() == (
        f"corral: blob {victim['digest']}: the registry sends {victim['size'] // 2} bytes, "
        f"the manifest says {victim['size']}")
    assert _stored(corral) == before and _image_ids(dk) == ids


def test_two_pulls_download_a_shared_layer_once(corral: Daemon, dk: Any, registry: Registry,
                                                tmp_path: Path) -> None:
    """Two images with a new layer in common, pulled at the same time: the second pull
    waits for the first's download instead of fetching the layer again."""
    import os

    shared = Layer({"big/": b"", "big/blob": os.urandom(24 << 20)}).tar()
    a, b = _repo("share-a"), _repo("share-b")
    registry.push(make_image(tmp_path / "a", [shared, _stamp()]), a, fmt="v2s2")
    registry.push(make_image(tmp_path / "b", [shared, _stamp()]), b, fmt="v2s2")
    layer = registry.inspect(f"{a}:latest", raw=True)["layers"][0]["digest"][7:19]
    first = dk.api.pull(f"{registry.host}/{a}", tag="latest", stream=True, decode=True)
    seen = []
    for msg in first:  # until the first pull is downloading the shared layer
        seen.append(msg)
        if msg.get("id") == layer and msg["status"] == "Pulling fs layer":
            break
    second = list(dk.api.pull(f"{registry.host}/{b}", tag="latest", stream=True, decode=True))
    seen += list(first)
    done = [m for m in seen + second if m.get("id") == layer and m["status"] == "Pull complete"]
    assert len(done) == 1
    assert [m["status"] for m in second if m.get("id") == layer][-1] == "Already exists"
    assert dk.images.get(f"{registry.host}/{b}").attrs["RootFS"]["Layers"][0] == (
        dk.images.get(f"{registry.host}/{a}").attrs["RootFS"]["Layers"][0])


def test_compose_up_pulls_missing_images(corral: Daemon, dk: Any, registry: Registry,
                                         busybox_remote: str, tmp_path: Path) -> None:
    """`up` pulls a service's missing image (pull_policy missing, the default) and
    refuses a pull_policy it does not know at its line and column."""
    file = tmp_path / "compose.yaml"
    file.write_text(
        "name: pulled\nservices:\n"
        f"  web:\n    image: {busybox_remote}\n    command: sleep 600\n"
    )
    r = corral.cli("up", "-d", "-f", str(file))
    try:
        assert r.returncode == 0, r.stderr
        assert " web Pulled" in r.stdout + r.stderr
        (c,) = dk.containers.list(filters={"label": "com.docker.compose.project=pulled"})
        assert c.image.id == dk.images.get(busybox_remote).id
    finally:
        corral.cli("down", "-f", str(file))
    file.write_text(
        "name: pulled\nservices:\n"
        f"  web:\n    image: {busybox_remote}\n    pull_policy: sometimes\n"
    )
    r = corral.cli("up", "-d", "-f", str(file))
    assert r.returncode == 1
    assert r.stderr.splitlines()[0] == (
        f"{file}:5:18: services.web.pull_policy must be one of always, never, missing, "
        "if_not_present, build, not 'sometimes'")


def test_build_pulls_its_from_image(corral: Daemon, dk: Any, busybox_remote: str,
                                    tmp_path: Path) -> None:
    """FROM an image that is not here pulls it, its progress in the build output;
    `--pull` pulls even when it is here."""
    (tmp_path / "Dockerfile").write_text(f"FROM {busybox_remote}\nRUN cat /etc/stamp > /copy\n")
    msgs = list(dk.api.build(path=str(tmp_path), tag="built-on-pulled", decode=True))
    assert not [m for m in msgs if "error" in m], msgs
    statuses = [m.get("status") for m in msgs]
    assert f"Status: Downloaded newer image for {busybox_remote}:latest" in statuses
    out = dk.containers.run("built-on-pulled", ["cat", "/copy"], remove=True)
    assert out == dk.containers.run(busybox_remote, ["cat", "/etc/stamp"], remove=True)
    again = corral.cli("build", "--pull", "-t", "built-on-pulled", str(tmp_path))
    assert again.returncode == 0, again.stderr
    assert f"Status: Image is up to date for {busybox_remote}:latest" in again.stdout


def test_a_pull_whose_client_leaves_is_cancelled_and_leaves_nothing(
    corral: Daemon, dk: Any, registry: Registry, tmp_path: Path
) -> None:
    """The client goes away mid-download: the pull is cancelled, its scratch removed,
    no layer or image kept; the next pull of the image starts afresh and completes."""
    import os
    import socket

    repo = _repo("cancelled")
    registry.push(make_image(tmp_path / "c", [
        Layer({"big/": b"", "big/blob": os.urandom(40 << 20)}).tar()]), repo, fmt="v2s2")
    before, ids = _stored(corral), _image_ids(dk)
    s = socket.socket(socket.AF_UNIX)
    s.connect(str(corral.sock))
    s.sendall(f"POST /v1.44/images/create?fromImage={registry.host}/{repo}&tag=latest "
              "HTTP/1.1\r\nHost: corral\r\nContent-Length: 0\r\n\r\n".encode())
    got = b""
    with s.makefile("rb") as f:
        while b'"Downloading"' not in got:  # the layer is on its way
            line = f.readline()
            assert line, got
            got += line
    s.close()
    # the job ends once the daemon sees its only client gone; a pull sent before that
    # would join it as a second watcher (as Docker's), so the test waits for the end
    assert wait_for_log(corral.log, timeout=30, event="job.cancelled",
                        job=f"pull {registry.host}/{repo}:latest"), "the pull was not cancelled"
    msgs = [json.loads(x) for x in dk.api.pull(f"{registry.host}/{repo}", tag="latest",
                                                 stream=True)]
    assert "Pull complete" in [m["status"] for m in msgs]  # downloaded anew, whole
    assert _stored(corral)["tmp"] == before["tmp"]
    dk.images.remove(f"{registry.host}/{repo}")
    assert _stored(corral) == before and _image_ids(dk) == ids


def test_bearer_token_flow(corral: Daemon, dk: Any, token_registry: Any, tmp_path: Path,
                           rootfs_tar: Path) -> None:
    """Docker Hub's flow, offline: the registry's challenge names a token server; an
    anonymous token pulls a public repository, a private one is refused in Docker's
    words, a login fetches tokens with Basic credentials, and a token is reused for its
    scope (one token request per pull, not one per blob)."""
    import docker.errors

    reg, tokens = token_registry
    pub, priv = _repo("public/img"), _repo("private/img")
    layout = make_image(tmp_path / "img", [rootfs_tar.read_bytes(), _stamp(), _stamp("etc/b")])
    reg.push(layout, pub, fmt="v2s2")
    reg.push(layout, priv, fmt="v2s2")
    tokens.requests.clear()
    dk.images.pull(f"{reg.host}/{pub}", tag="latest")
    assert tokens.requests == [("", f"repository:{pub}:pull")]
    with pytest.raises(docker.errors.NotFound) as e:
        dk.images.pull(f"{reg.host}/{priv}", tag="latest")
    assert (f"pull access denied for {reg.host}/{priv}, repository does not exist or may "
            "require 'docker login'") in str(e.value)
    with pytest.raises(docker.errors.APIError) as e2:
        dk.login("corral", "wrong", registry=reg.host)
    assert f'Get "http://{reg.host}/v2/": unauthorized: incorrect username or password' in (
        str(e2.value))
    assert dk.login("corral", "s3cret", registry=reg.host)["Status"] == "Login Succeeded"
    auth = {"username": "corral", "password": "s3cret"}
    dk.images.pull(f"{reg.host}/{priv}", tag="latest", auth_config=auth)
    dk.images.get(f"{reg.host}/{priv}").tag(f"{reg.host}/{priv}-copy", "v1")
    out = list(dk.images.push(f"{reg.host}/{priv}-copy", tag="v1", auth_config=auth,
                              stream=True, decode=True))
    assert "error" not in out[-1], out
    assert reg.manifest_digest(f"{priv}-copy:v1") == reg.manifest_digest(f"{priv}:latest")
    assert ("corral", f"repository:{priv}-copy:pull,push") in tokens.requests


def test_pull_all_tags(corral: Daemon, dk: Any, registry: Registry, tmp_path: Path,
                       rootfs_tar: Path) -> None:
    """`pull -a` (the API's name-only pull): every tag, one Status line for the
    repository, its name last."""
    import subprocess

    repo = _repo("tags")
    layout = make_image(tmp_path / "a", [rootfs_tar.read_bytes(), _stamp()])
    registry.push(layout, repo, fmt="v2s2")
    for tag in ("v1", "v2"):
        subprocess.run(["skopeo", "copy", "-q", "--src-tls-verify=false",
                        "--dest-tls-verify=false", f"docker://{registry.host}/{repo}:latest",
                        f"docker://{registry.host}/{repo}:{tag}"], check=True, timeout=60)
    name = f"{registry.host}/{repo}"
    r = corral.cli("pull", "-a", name)
    assert r.returncode == 0, r.stderr
    out = r.stdout.splitlines()
    assert [x for x in out if x.endswith(f"Pulling from {repo}")] == [
        f"latest: Pulling from {repo}", f"v1: Pulling from {repo}", f"v2: Pulling from {repo}"]
    assert out[-2:] == [f"Status: Downloaded newer image for {name}", name]
    assert sorted(dk.images.get(name).tags) == [f"{name}:{t}" for t in ("latest", "v1", "v2")]


def test_loopback_registry_over_tls(corral: Daemon, dk: Any, tls_registry: Registry,
                                    tmp_path: Path, rootfs_tar: Path) -> None:
    """A loopback registry is one of Docker's default insecure registries: TLS first
    (its certificate unchecked), plain HTTP only if it does not speak TLS; this one
    speaks only TLS (plain HTTP gets a 400), and pull, push and login work."""
    import urllib.request

    reg = tls_registry
    repo = _repo("tls")
    reg.push(make_image(tmp_path / "t", [rootfs_tar.read_bytes(), _stamp()]), repo,
             fmt="v2s2")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(f"http://{reg.host}/v2/", timeout=30)
    assert e.value.code == 400
    name = f"{reg.host}/{repo}"
    r = corral.cli("pull", name)
    assert r.returncode == 0, r.stderr
    dk.images.get(name).tag(f"{name}-copy", "v1")
    r = corral.cli("push", f"{name}-copy:v1")
    assert r.returncode == 0, r.stderr
    assert reg.manifest_digest(f"{repo}-copy:v1") == reg.manifest_digest(f"{repo}:latest")
    assert dk.login("anyone", "anything", registry=reg.host)["Status"] == "Login Succeeded"


def test_compose_pull_and_push(corral: Daemon, dk: Any, registry: Registry,
                               busybox_remote: str, tmp_path: Path) -> None:
    repo = _repo("composed")
    file = tmp_path / "compose.yaml"
    file.write_text(
        "name: pp\nservices:\n"
        f"  web:\n    image: {busybox_remote}\n"
        f"  out:\n    image: {registry.host}/{repo}:v1\n"
    )
    r = corral.cli("compose", "-f", str(file), "pull", "web")
    assert r.returncode == 0, r.stderr
    assert r.stderr.splitlines() == [" web Pulling", " web Pulled"]
    dk.images.get(busybox_remote).tag(f"{registry.host}/{repo}", "v1")
    r = corral.cli("compose", "-f", str(file), "push", "out")
    assert r.returncode == 0, r.stderr
    assert r.stderr.splitlines() == [" out Pushing", " out Pushed"]
    assert registry.manifest_digest(f"{repo}:v1") == registry.manifest_digest(
        busybox_remote.split("/", 1)[1] + ":latest")
    file.write_text(f"name: pp\nservices:\n  web:\n    image: {registry.host}/nope:1\n")
    r = corral.cli("compose", "-f", str(file), "pull")
    assert r.returncode == 1
    assert r.stderr.splitlines()[-1] == (
        f'corral: service "web": manifest for {registry.host}/nope:1 not found: '
        "manifest unknown: manifest unknown")
    r = corral.cli("compose", "-f", str(file), "pull", "--ignore-pull-failures")
    assert r.returncode == 0


def test_search_a_registry_without_the_api(corral: Daemon, dk: Any, registry: Registry
                                           ) -> None:
    """distribution has no v1 search: Docker's words for it; a bad filter is named."""
    import docker.errors

    r = corral.cli("search", f"{registry.host}/busybox")
    assert r.returncode == 1
    assert r.stderr.strip() == "corral: Error response from daemon: Unexpected status code 404"
    r = corral.docker("search", f"{registry.host}/busybox")
    assert r.stderr.strip() == "Error response from daemon: Unexpected status code 404"
    with pytest.raises(docker.errors.APIError, match="Unexpected status code 404"):
        dk.images.search(f"{registry.host}/busybox")
    r = corral.cli("search", "-f", "color=blue", f"{registry.host}/busybox")
    assert r.stderr.strip() == "corral: Error response from daemon: invalid filter 'color'"


def test_rmi_of_a_pulled_image_as_docker(corral: Daemon, dk: Any, registry: Registry,
                                         busybox_remote: str) -> None:
    """By digest only the digest reference goes; by its repository's last tag, the
    repository's digest references go with it and then the image."""
    dk.images.pull(busybox_remote, tag="latest")
    digest = registry.manifest_digest(busybox_remote.split("/", 1)[1] + ":latest")
    out = dk.api.remove_image(f"{busybox_remote}@{digest}")
    assert out == [{"Untagged": f"{busybox_remote}@{digest}"}]
    img = dk.images.get(f"{busybox_remote}:latest")
    assert f"{busybox_remote}@{digest}" not in img.attrs["RepoDigests"]
    dk.images.pull(busybox_remote, tag="latest")
    out = dk.api.remove_image(f"{busybox_remote}:latest")
    assert out[:2] == [{"Untagged": f"{busybox_remote}:latest"},
                       {"Untagged": f"{busybox_remote}@{digest}"}]
    assert {"Deleted": img.id} in out


def wait_for_log(log: Path, *, timeout: float, **fields: str) -> bool:
    """Block until the daemon's JSON log has a line with these fields (read as it is
    written: `tail -F` follows it by inotify), at most `timeout` seconds."""
    import select

    with subprocess.Popen(["tail", "-n", "+1", "-F", str(log)], stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL) as tail:
        assert tail.stdout is not None
        deadline = time.monotonic() + timeout
        pending = b""
        try:
            while (left := deadline - time.monotonic()) > 0:
                if not select.select([tail.stdout], [], [], left)[0]:
                    break
                chunk = os.read(tail.stdout.fileno(), 1 << 16)
                if not chunk:
                    break
                *lines, pending = (pending + chunk).split(b"\n")
                for line in lines:
                    try:
                        record = json.loads(line)
                    except ValueError:
                        continue
                    if isinstance(record, dict) and all(
                            record.get(k) == v for k, v in fields.items()):
                        return True
        finally:
            tail.kill()
    return False
