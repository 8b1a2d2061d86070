"""The distribution protocol's harder parts against a real registry (distribution 2.8):
zstd and uncompressed layers, a broken download resumed with `Range`, blob redirects
to another host (no credentials follow), registries that lie about lengths, chunked
uploads, refresh tokens.  Misbehaviour comes from `registry.Proxy` in front of the
real registry; images are put there by skopeo."""

from __future__ import annotations

import base64
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Daemon
from registry import Layer, Proxy, Registry, Seen, make_image


def _repo(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _stamp(name: str = "etc/stamp") -> bytes:
    return Layer({"etc/": b"", name: uuid.uuid4().hex.encode()}).tar()


def _stored(daemon: Daemon) -> dict[str, set[str]]:
    root = daemon.root
    return {
        "blobs": {p.name for p in (root / "images/blobs/sha256").iterdir()},
        "layers": {p.name for p in (root / "layers").iterdir()},
        "tmp": {p.name for p in (root / "tmp/images").iterdir()},
    }


def _image_ids(dk: Any) -> set[str]:
    return {i.id for i in dk.images.list(all=True)}


@pytest.fixture
def proxy(registry: Registry) -> Iterator[Proxy]:
    p = Proxy(registry.host)
    yield p
    p.stop()


def _blob_get(seen: Seen, digest: str) -> bool:
    return seen.method == "GET" and seen.path.endswith(f"/blobs/{digest}")


def test_pull_zstd_and_uncompressed_layers(corral: Daemon, dk: Any, registry: Registry,
                                           tmp_path: Path, rootfs_tar: Path) -> None:
    """An OCI image whose layers are gzip, zstd (two frames) and plain tar: pulled,
    each checked against its diff ID, run; pushed back, the same manifest digest."""
    repo = _repo("zstd")
    layers = [rootfs_tar.read_bytes(),
              Layer({"data/": b"", "data/z": b"from zstd\n"}).tar(),
              Layer({"data/": b"", "data/p": b"from a plain tar\n"}).tar()]
    layout = make_image(tmp_path / "z", layers, compression=["gzip", "zstd", "none"])
    registry.push(layout, repo, preserve=True)
    raw = registry.inspect(f"{repo}:latest", raw=True)
    assert [x["mediaType"].rpartition(".")[2] for x in raw["layers"]] == [
        "tar+gzip", "tar+zstd", "tar"]
    name = f"{registry.host}/{repo}"
    r = corral.cli("pull", name)
    assert r.returncode == 0, r.stderr
    out = dk.containers.run(name, ["cat", "/data/z", "/data/p"], remove=True)
    assert out == b"from zstd\nfrom a plain tar\n"
    dk.images.get(name).tag(f"{name}-copy", "v1")
    r = corral.cli("push", f"{name}-copy:v1")
    assert r.returncode == 0, r.stderr
    assert registry.manifest_digest(f"{repo}-copy:v1") == registry.manifest_digest(
        f"{repo}:latest")


def test_a_broken_download_resumes_with_range(corral: Daemon, dk: Any, registry: Registry,
                                              proxy: Proxy, tmp_path: Path,
                                              rootfs_tar: Path) -> None:
    """The connection breaks halfway through a layer: the pull asks for the rest
    (`Range: bytes=N-`, N the bytes it has) and completes; the layer is whole."""
    repo = _repo("resume")
    payload = os.urandom(6 << 20)
    registry.push(make_image(tmp_path / "r", [
        rootfs_tar.read_bytes(), Layer({"big/": b"", "big/blob": payload}).tar()]), repo,
        fmt="v2s2")
    victim = registry.inspect(f"{repo}:latest", raw=True)["layers"][1]["digest"]
    cut = 3 << 20
    broken: list[Seen] = []

    def rule(seen: Seen) -> Any:
        if _blob_get(seen, victim) and not broken:
            broken.append(seen)
            return ("cut", cut)
        return None

    proxy.rule = rule
    name = f"{proxy.host}/{repo}"
    r = corral.cli("pull", name)
    assert r.returncode == 0, r.stderr
    gets = [s for s in proxy.seen if _blob_get(s, victim)]
    assert [s.headers.get("range") for s in gets] == [None, f"bytes={cut}-"]
    out = dk.containers.run(name, ["md5sum", "/big/blob"], remove=True)
    import hashlib

    assert out.decode().split()[0] == hashlib.md5(payload).hexdigest()


def test_a_registry_ignoring_range_sends_it_all_again(corral: Daemon, dk: Any,
                                                      registry: Registry, proxy: Proxy,
                                                      tmp_path: Path) -> None:
    """A registry that answers a Range request with the whole blob (a 200): the pull
    starts that blob over instead of appending it twice."""
    repo = _repo("norange")
    registry.push(make_image(tmp_path / "r", [
        Layer({"big/": b"", "big/blob": os.urandom(3 << 20)}).tar()]), repo, fmt="v2s2")
    victim = registry.inspect(f"{repo}:latest", raw=True)["layers"][0]["digest"]
    gets: list[Seen] = []

    def rule(seen: Seen) -> Any:
        if _blob_get(seen, victim):
            gets.append(seen)
            if len(gets) == 1:
                return ("cut", 1 << 20)
        return None

    proxy.rule = rule
    proxy.strip = {"range"}
    r = corral.cli("pull", f"{proxy.host}/{repo}")
    assert r.returncode == 0, r.stderr
    assert len(gets) == 2


def test_blob_redirect_to_another_host_gets_no_credentials(
        corral: Daemon, dk: Any, auth_registry: Registry, tmp_path: Path,
        rootfs_tar: Path) -> None:
    """Blobs redirected to storage on another host (as Docker Hub sends them to its
    CDN): followed, and the registry's credentials stay with the registry."""
    reg = auth_registry
    repo = _repo("redirected")
    reg.push(make_image(tmp_path / "img", [_stamp(), _stamp("etc/two")]), repo, fmt="v2s2")
    basic = "Basic " + base64.b64encode(b"corral:s3cret").decode()
    proxy = Proxy(reg.host, upstream_auth=basic)
    try:
        def rule(seen: Seen) -> Any:
            if (seen.method == "GET" and "/blobs/" in seen.path
                    and seen.host.startswith("127.0.0.1:")):
                return ("redirect", f"http://localhost:{proxy.port}{seen.path}")
            return None

        proxy.rule = rule
        name = f"{proxy.host}/{repo}"
        dk.images.pull(name, tag="latest",
                       auth_config={"username": "corral", "password": "s3cret"})
        assert dk.images.get(name).attrs["RepoDigests"]
        to_registry = [s for s in proxy.seen if s.host.startswith("127.0.0.1:")
                       and "/blobs/" in s.path]
        to_storage = [s for s in proxy.seen if s.host.startswith("localhost:")]
        assert len(to_storage) == 3  # config and two layers
        assert all(s.headers.get("authorization") == basic for s in to_registry)
        assert not any("authorization" in s.headers for s in to_storage)
    finally:
        proxy.stop()


def test_a_10_gb_content_length_is_refused(corral: Daemon, dk: Any, registry: Registry,
                                           proxy: Proxy, tmp_path: Path) -> None:
    """A registry that claims 10 GB for a layer or a manifest: refused at the headers,
    in words naming the blob, nothing stored (and nothing 10 GB long written)."""
    repo = _repo("liar")
    registry.push(make_image(tmp_path / "l", [_stamp()]), repo, fmt="v2s2")
    victim = registry.inspect(f"{repo}:latest", raw=True)["layers"][0]
    ten_gb = 10 << 30
    target = {"what": "blob"}

    def rule(seen: Seen) -> Any:
        if target["what"] == "blob" and _blob_get(seen, victim["digest"]):
            return ("length", ten_gb)
        if target["what"] == "manifest" and seen.method == "GET" and "/manifests/" in seen.path:
            return ("length", ten_gb)
        return None

    proxy.rule = rule
    name = f"{proxy.host}/{repo}"
    before, ids = _stored(corral), _image_ids(dk)
    r = corral.cli("pull", name)
    assert r.returncode == 1
    assert r.stderr.strip() == (
        f"corral: blob {victim['digest']}: the registry sends {ten_gb} bytes, the manifest "
        f"says {victim['size']}")
    target["what"] = "manifest"
    r = corral.cli("pull", name)
    assert r.returncode == 1
    assert r.stderr.strip() == (
        f"corral: Error response from daemon: manifest {name}:latest: manifest larger "
        f"than {4 << 20} bytes")
    assert _stored(corral) == before and _image_ids(dk) == ids


def test_push_uploads_a_large_layer_in_chunks(corral: Daemon, dk: Any, registry: Registry,
                                              proxy: Proxy) -> None:
    """A layer above the chunk size goes up in PATCH requests with `Content-Range`
    (the OCI spec's chunked upload), a small blob in one PUT (monolithic); skopeo
    reads what was pushed, and the image comes back with the same ID and digest."""
    from supervisor.distribution.push import UPLOAD_CHUNK

    repo = _repo("chunked")
    name = f"{proxy.host}/{repo}"
    c = dk.containers.create("busybox", ["sh", "-c",
                                         f"head -c {UPLOAD_CHUNK * 2 + 12345} /dev/urandom > /big"])
    c.start()
    c.wait()
    image = c.commit(repository=name, tag="v1")
    c.remove()
    r = corral.cli("push", f"{name}:v1")
    assert r.returncode == 0, r.stderr
    patches = [s for s in proxy.seen if s.method == "PATCH"]
    assert len(patches) == 3
    ranges = [s.headers["content-range"] for s in patches]
    assert ranges[0] == f"0-{UPLOAD_CHUNK - 1}"
    assert ranges[1] == f"{UPLOAD_CHUNK}-{2 * UPLOAD_CHUNK - 1}"
    puts = [s for s in proxy.seen if s.method == "PUT" and "/blobs/uploads/" in s.path]
    # the chunked upload's close (no body); the busybox layer and config: monolithic
    assert sorted(s.headers["content-length"] == "0" for s in puts) == [False, False, True]
    inspected = registry.inspect(f"{repo}:v1")
    digest = inspected["Digest"]
    dk.images.remove(f"{name}:v1")
    dk.images.pull(name, tag="v1")
    back = dk.images.get(f"{name}:v1")
    assert back.id == image.id
    assert back.attrs["RepoDigests"] == [f"{name}@{digest}"]


def test_login_keeps_a_refresh_token_as_docker_does(corral: Daemon, dk: Any,
                                                    token_registry: Any, tmp_path: Path,
                                                    rootfs_tar: Path) -> None:
    """A token server that hands out refresh tokens (`offline_token=true`, as Docker
    Hub): login answers it as `IdentityToken`, the CLI keeps it instead of the password
    (config.json's `identitytoken`), and later pulls trade it for access tokens with an
    OAuth2 POST (`grant_type=refresh_token`), never sending the password again."""
    import subprocess
    import sys

    reg, tokens = token_registry
    repo = _repo("private/refresh")
    reg.push(make_image(tmp_path / "img", [rootfs_tar.read_bytes(), _stamp()]), repo,
             fmt="v2s2")
    r = dk.api.login("corral", "s3cret", registry=reg.host)
    assert r["Status"] == "Login Succeeded" and r["IdentityToken"]
    env = corral.env(DOCKER_CONFIG=str(tmp_path / "cfg"))
    config = tmp_path / "cfg" / "config.json"

    def cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "supervisor", *args], env=env,
                              input=stdin, capture_output=True, text=True, timeout=60)

    r2 = cli("login", "-u", "corral", "--password-stdin", reg.host, stdin="s3cret\n")
    assert r2.returncode == 0, r2.stderr
    entry = json.loads(config.read_text())["auths"][reg.host]
    assert entry["identitytoken"] in tokens.refresh
    assert base64.b64decode(entry["auth"]).decode() == "corral:"  # no password kept
    tokens.requests.clear()
    tokens.posts.clear()
    r3 = cli("pull", f"{reg.host}/{repo}")
    assert r3.returncode == 0, r3.stderr
    assert [p["grant_type"] for p in tokens.posts] == ["refresh_token"]
    assert tokens.posts[0]["refresh_token"] == entry["identitytoken"]
    assert tokens.posts[0]["client_id"] == "docker"
    # the docker CLI reads the same file, and its pull works the same way
    dk.images.remove(f"{reg.host}/{repo}")
    d = subprocess.run(["docker", "pull", "-q", f"{reg.host}/{repo}"], env=env,
                       capture_output=True, text=True, timeout=60)
    assert d.returncode == 0, d.stderr
    # the docker CLI's own login through corral keeps the refresh token the same way
    denv = corral.env(DOCKER_CONFIG=str(tmp_path / "dcfg"))
    d = subprocess.run(["docker", "login", "-u", "corral", "--password-stdin", reg.host],
                       env=denv, input="s3cret\n", capture_output=True, text=True, timeout=60)
    assert d.returncode == 0, d.stderr
    kept = json.loads((tmp_path / "dcfg" / "config.json").read_text())["auths"][reg.host]
    assert kept["identitytoken"] in tokens.refresh
    # a refresh token the server no longer knows: refused in Docker's words
    tokens.refresh.clear()
    dk.images.remove(f"{reg.host}/{repo}")
    r4 = cli("pull", f"{reg.host}/{repo}")
    assert r4.returncode == 1
    assert r4.stderr.strip() == (f'corral: Error response from daemon: Get "http://{reg.host}'
                                 '/v2/": unauthorized: incorrect username or password')


def _make_foreign(layout: Path, index: int, url: str) -> None:
    """Turn layer `index` of the layout's image into a non-distributable one that
    names `url` (the manifest rewritten, index.json pointed at it)."""
    import hashlib

    top = json.loads((layout / "index.json").read_text())
    desc = top["manifests"][0]
    blobs = layout / "blobs/sha256"
    manifest = json.loads((blobs / desc["digest"].removeprefix("sha256:")).read_bytes())
    layer = manifest["layers"][index]
    layer["mediaType"] = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
    layer["urls"] = [url]
    body = json.dumps(manifest, sort_keys=True).encode()
    digest = hashlib.sha256(body).hexdigest()
    (blobs / digest).write_bytes(body)
    desc.update(digest=f"sha256:{digest}", size=len(body))
    (layout / "index.json").write_text(json.dumps(top))


def test_foreign_layers_come_from_their_urls_and_are_never_pushed(
        corral: Daemon, dk: Any, registry: Registry, proxy: Proxy, tmp_path: Path,
        rootfs_tar: Path) -> None:
    """A non-distributable layer (as Windows base images have): pulled from the URL its
    descriptor names, as dockerd (the registry is never asked for it); pushed, it is
    skipped (`Skipped foreign layer`) and the manifest keeps its URLs, same digest."""
    content = uuid.uuid4().hex.encode()
    stamp = Layer({"etc/": b"", "etc/stamp": content}).tar()
    elsewhere = _repo("cdn")
    registry.push(make_image(tmp_path / "cdn", [stamp]), elsewhere, fmt="oci")
    blob = registry.inspect(f"{elsewhere}:latest", raw=True)["layers"][0]["digest"]
    repo = _repo("foreign")
    layout = make_image(tmp_path / "f", [rootfs_tar.read_bytes(), stamp])
    url = f"http://localhost:{proxy.port}/v2/{elsewhere}/blobs/{blob}"
    _make_foreign(layout, 1, url)
    registry.push(layout, repo, fmt="oci")
    pushed = registry.inspect(f"{repo}:latest", raw=True)
    assert pushed["layers"][1]["urls"] == [url]
    name = f"{proxy.host}/{repo}"
    r = corral.cli("pull", name)
    assert r.returncode == 0, r.stderr
    assert [s.host for s in proxy.seen if s.path.endswith(blob)] == [f"localhost:{proxy.port}"]
    assert dk.containers.run(name, ["cat", "/etc/stamp"], remove=True) == content
    dk.images.get(name).tag(f"{name}-copy", "v1")
    r = corral.cli("push", f"{name}-copy:v1")
    assert r.returncode == 0, r.stderr
    import hashlib

    diff_id = hashlib.sha256(stamp).hexdigest()
    assert f"{diff_id[:12]}: Skipped foreign layer" in r.stdout.splitlines()
    # (skopeo inspect without --raw fails on such an image: compare the raw manifests)
    copy = registry.inspect(f"{repo}-copy:v1", raw=True)
    assert copy == pushed and copy["layers"][1]["urls"] == [url]
    digest = "sha256:" + hashlib.sha256(json.dumps(pushed, sort_keys=True).encode()).hexdigest()
    assert r.stdout.splitlines()[-1].startswith(f"v1: digest: {digest} size: ")


def test_a_manifest_for_another_platform_only(corral: Daemon, dk: Any, registry: Registry,
                                              tmp_path: Path) -> None:
    """A single-platform image for another architecture, pulled with this host's
    --platform: dockerd's error, nothing stored."""
    from supervisor.distribution.manifests import host_platform

    here = host_platform()
    other = "s390x" if here.architecture != "s390x" else "ppc64le"
    repo = _repo("elsewhere")
    registry.push(make_image(tmp_path / "o", [_stamp()], arch=other), repo, fmt="oci")
    name = f"{registry.host}/{repo}"
    before, ids = _stored(corral), _image_ids(dk)
    r = corral.docker("pull", "--platform", f"linux/{here.architecture}", name)
    assert r.returncode == 1
    assert r.stderr.strip() == (
        f"Error response from daemon: image with reference {name}:latest was found but "
        f"does not match the specified platform: wanted linux/{here.architecture}, "
        f"actual: linux/{other}")
    assert _stored(corral) == before and _image_ids(dk) == ids


def test_identity_tokens_in_the_docker_config(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """config.json keeps an identity token as the docker CLI does (`auth` of `user:`,
    `identitytoken`); a credential helper gets it as Username `<token>`; both come
    back in X-Registry-Auth as `identitytoken`."""
    from supervisor.cli import credentials as c

    doc: dict[str, Any] = {}
    c.put(doc, "reg:5000", "me", "pw", "rt-1")
    assert doc["auths"]["reg:5000"] == {"auth": base64.b64encode(b"me:").decode(),
                                        "identitytoken": "rt-1"}
    assert c.lookup(doc, "reg:5000") == ("me", "", "rt-1")
    cfg = tmp_path / "cfg"
    c.save(cfg / "config.json", doc)
    header = c.registry_auth_header("reg:5000", {"DOCKER_CONFIG": str(cfg)})
    assert header is not None
    assert json.loads(base64.urlsafe_b64decode(header))["identitytoken"] == "rt-1"
    # a helper: a shell script keeping one secret in a file, as docker-credential-* do
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    store = tmp_path / "secret.json"
    (bin_ / "docker-credential-test").write_text(
        "#!/bin/sh\n"
        f'case "$1" in store) cat > {store};; get) cat {store};; erase) rm -f {store};; esac\n')
    (bin_ / "docker-credential-test").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_}:{os.environ['PATH']}")
    helped: dict[str, Any] = {"credsStore": "test"}
    c.put(helped, "reg:5000", "me", "pw", "rt-2")
    assert json.loads(store.read_text()) == {"ServerURL": "reg:5000", "Username": "<token>",
                                             "Secret": "rt-2"}
    assert c.lookup(helped, "reg:5000") == ("", "", "rt-2")
    c.put(helped, "reg:5000", "me", "pw")
    assert c.lookup(helped, "reg:5000") == ("me", "pw", "")


def test_a_chunked_upload_goes_on_where_it_broke(corral: Daemon, dk: Any, registry: Registry,
                                                proxy: Proxy) -> None:
    """A chunk whose connection breaks before the registry has it: the push asks the
    registry how much of the upload it holds (GET of the upload, its `Range`), sends
    the rest from there, and the image arrives whole (pulled back to the same ID)."""
    from supervisor.distribution.push import UPLOAD_CHUNK

    repo = _repo("rechunked")
    name = f"{proxy.host}/{repo}"
    c = dk.containers.create("busybox", ["sh", "-c",
                                         f"head -c {UPLOAD_CHUNK + 4321} /dev/urandom > /big"])
    c.start()
    c.wait()
    image = c.commit(repository=name, tag="v1")
    c.remove()
    second = f"{UPLOAD_CHUNK}-"
    dropped: list[Seen] = []
    asked: list[Seen] = []

    def rule(seen: Seen) -> Any:
        # the second chunk is lost until the push asks where the upload is: first on
        # the kept-alive connections (the client retries on the next, then on a new
        # one, by itself: how many are idle depends on what else went up beside the
        # big layer), then on a new one, which fails the request
        if seen.method == "GET" and "/blobs/uploads/" in seen.path:
            asked.append(seen)
        if (seen.method == "PATCH" and seen.headers.get("content-range", "").startswith(second)
                and not asked and len(dropped) < 20):
            dropped.append(seen)
            return ("drop",)
        return None

    proxy.rule = rule
    r = corral.cli("push", f"{name}:v1")
    assert r.returncode == 0, r.stderr
    ranges = [s.headers["content-range"] for s in proxy.seen if s.method == "PATCH"]
    assert [x.partition("-")[0] for x in ranges] == ["0", *[str(UPLOAD_CHUNK)] * (len(dropped) + 1)]
    assert len(asked) == 1 and len(dropped) < 20
    digest = registry.manifest_digest(f"{repo}:v1")
    dk.images.remove(f"{name}:v1")
    dk.images.pull(name, tag="v1")
    back = dk.images.get(f"{name}:v1")
    assert back.id == image.id and back.attrs["RepoDigests"] == [f"{name}@{digest}"]


def test_a_second_push_goes_straight_to_plain_http_and_mounts_at_once(
        corral: Daemon, dk: Any, registry: Registry, proxy: Proxy) -> None:
    """What a push costs when the registry has the layers in another repository: the
    loopback registry that answered TLS in plain HTTP is spoken to in plain HTTP at
    once the next time (one failed handshake per registry, not one per push); each
    layer is mounted from the repository it was pushed to (no HEAD before the mount),
    and the manifest is the same, digest for digest."""
    first, second = _repo("mount-a"), _repo("mount-b")
    c = dk.containers.create("busybox", ["sh", "-c", f"echo {uuid.uuid4()} > /stamp"])
    c.start()
    c.wait()
    c.commit(repository=f"{proxy.host}/{first}", tag="v1")
    c.remove()
    r = corral.cli("push", f"{proxy.host}/{first}:v1")
    assert r.returncode == 0, r.stderr
    assert proxy.tls_tries == 1  # TLS first, as Docker tries an insecure registry
    layers = [x["digest"] for x in registry.inspect(f"{first}:v1", raw=True)["layers"]]
    dk.images.get(f"{proxy.host}/{first}:v1").tag(f"{proxy.host}/{second}", "v1")
    proxy.seen.clear()
    r = corral.cli("push", f"{proxy.host}/{second}:v1")
    assert r.returncode == 0, r.stderr
    assert proxy.tls_tries == 1
    assert r.stdout.count(f": Mounted from {first}") == len(layers)
    heads = [s.path for s in proxy.seen if s.method == "HEAD"]
    assert not [h for h in heads if any(h.endswith(f"/blobs/{d}") for d in layers)]
    mounts = [s.path for s in proxy.seen if s.method == "POST" and "mount=" in s.path]
    assert len(mounts) == len(layers)
    assert registry.manifest_digest(f"{second}:v1") == registry.manifest_digest(f"{first}:v1")


def test_a_download_that_gets_nowhere_is_retried_after_a_pause(
        corral: Daemon, dk: Any, registry: Registry, proxy: Proxy, tmp_path: Path) -> None:
    """A blob whose connection closes before its first byte: Docker's `Retrying in N
    seconds` line, then the pull completes."""
    repo = _repo("retry")
    registry.push(make_image(tmp_path / "r", [_stamp()]), repo, fmt="v2s2")
    victim = registry.inspect(f"{repo}:latest", raw=True)["layers"][0]["digest"]
    cut: list[Seen] = []

    def rule(seen: Seen) -> Any:
        if _blob_get(seen, victim) and not cut:
            cut.append(seen)
            return ("cut", 0)
        return None

    proxy.rule = rule
    msgs = [json.loads(x) for x in dk.api.pull(f"{proxy.host}/{repo}", tag="latest",
                                                 stream=True)]
    short = victim.removeprefix("sha256:")[:12]
    assert {"status": "Retrying in 1 second", "progressDetail": {}, "id": short} in msgs
    assert msgs[-1]["status"] == f"Status: Downloaded newer image for {proxy.host}/{repo}:latest"


def test_a_schema1_image_is_refused_in_dockerds_words(corral: Daemon, dk: Any,
                                                      registry: Registry,
                                                      tmp_path: Path) -> None:
    """A Docker schema 1 image (signed, as skopeo writes one): refused in dockerd 28's
    words (support removed in 28.2, moby#50036) naming the image, after the `Pulling
    from` line as dockerd's graphdriver store prints them (moby#47459 shows both
    orders: the containerd store refuses before any output); nothing stored."""
    repo = _repo("schema1")
    registry.push(make_image(tmp_path / "s", [_stamp()]), repo, fmt="v2s1")
    raw = registry.inspect(f"{repo}:latest", raw=True)
    assert raw["schemaVersion"] == 1
    name = f"{registry.host}/{repo}"
    before, ids = _stored(corral), _image_ids(dk)
    r = corral.docker("pull", name)
    assert r.returncode == 1
    assert r.stdout.splitlines() == ["Using default tag: latest",
                                     f"latest: Pulling from {repo}"]
    assert r.stderr.strip() == (
        "Docker Image Format v1 and Docker Image manifest version 2, schema 1 support has "
        f"been removed. Suggest the author of {name}:latest to upgrade the image to the OCI "
        "Format or Docker Image manifest v2, schema 2. More information at "
        "https://docs.docker.com/go/deprecated-image-specs/")
    assert _stored(corral) == before and _image_ids(dk) == ids


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_push_of_a_layer_on_a_pulled_oci_image_never_mixes_formats(
        corral: Daemon, dk: Any, registry: Registry, tmp_path: Path, rootfs_tar: Path,
        compression: str) -> None:
    """A layer committed on an image pulled as OCI: the pushed manifest reuses the
    pulled blobs under one family of media types, Docker schema2 when every layer has a
    Docker type (as dockerd), OCI when one has none (zstd); skopeo reads it, and it
    comes back as the same image."""
    repo = _repo(f"mixed-{compression}")
    layout = make_image(tmp_path / "m", [rootfs_tar.read_bytes(), _stamp()],
                        compression=["gzip", compression])
    registry.push(layout, repo, preserve=True)
    name = f"{registry.host}/{repo}"
    dk.images.pull(name, tag="latest")
    c = dk.containers.create(f"{name}:latest", ["sh", "-c", "echo on top > /top"])
    c.start()
    c.wait()
    image = c.commit(repository=f"{name}-top", tag="v1")
    c.remove()
    r = corral.cli("push", f"{name}-top:v1")
    assert r.returncode == 0, r.stderr
    raw = registry.inspect(f"{repo}-top:v1", raw=True)
    types = {raw["config"]["mediaType"], *(x["mediaType"] for x in raw["layers"])}
    if compression == "gzip":
        assert raw["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
        assert all("docker" in t for t in types), types
    else:
        assert raw["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
        assert all("oci" in t for t in types), types
    digest = registry.manifest_digest(f"{repo}-top:v1")  # skopeo parses it whole
    dk.images.remove(f"{name}-top:v1")
    dk.images.pull(f"{name}-top", tag="v1")
    back = dk.images.get(f"{name}-top:v1")
    assert back.id == image.id and back.attrs["RepoDigests"] == [f"{name}-top@{digest}"]


def test_a_tag_is_resolved_with_head_then_fetched_by_digest(
        corral: Daemon, dk: Any, registry: Registry, proxy: Proxy, tmp_path: Path) -> None:
    """HEAD of the tag for its Docker-Content-Digest, then GET of that digest (the body
    verified against it), as containerd resolves a tag, and no GET when that manifest
    was pulled before; an unknown tag's error is still the registry's own words (from
    the GET it falls back to)."""
    repo = _repo("head")
    registry.push(make_image(tmp_path / "h", [_stamp()]), repo, fmt="v2s2")
    digest = registry.manifest_digest(f"{repo}:latest")
    r = corral.cli("pull", f"{proxy.host}/{repo}")
    assert r.returncode == 0, r.stderr
    asked = [(s.method, s.path) for s in proxy.seen if "/manifests/" in s.path]
    assert asked == [("HEAD", f"/v2/{repo}/manifests/latest"),
                     ("GET", f"/v2/{repo}/manifests/{digest}")]
    # pulled again: the HEAD names the digest of the manifest stored, so no GET
    mark = len(proxy.seen)
    r = corral.cli("pull", f"{proxy.host}/{repo}")
    assert r.returncode == 0, r.stderr
    out = r.stdout.splitlines()
    assert f"Digest: {digest}" in out
    assert f"Status: Image is up to date for {proxy.host}/{repo}:latest" in out
    asked = [(s.method, s.path) for s in proxy.seen[mark:] if "/manifests/" in s.path]
    assert asked == [("HEAD", f"/v2/{repo}/manifests/latest")]
    r = corral.cli("pull", f"{proxy.host}/{repo}:nope")
    assert r.returncode == 1
    assert r.stderr.strip() == (
        f"corral: Error response from daemon: manifest for {proxy.host}/{repo}:nope not "
        "found: manifest unknown: manifest unknown")
