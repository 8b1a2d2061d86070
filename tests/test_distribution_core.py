"""The distribution client's pure parts: names, endpoints, challenges, manifests,
platform choice, Docker's error wording and progress bars."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import zlib
from pathlib import Path

import pytest
import trio

from supervisor.distribution import manifests as mf
from supervisor.distribution.auth import parse_challenge, parse_registry_auth
from supervisor.distribution.compress import BLOCK, gzip_small, gzip_stream
from supervisor.distribution.progress import human_size, message, progress_bar
from supervisor.distribution.pull import Progress
from supervisor.distribution.reference import endpoint, remote
from supervisor.distribution.registry import errors_to_error, parse_errors
from supervisor.errors import InvalidArgument, NotFound

D = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("name", "tag", "domain", "path", "ref", "familiar"),
    [
        ("nginx", None, "docker.io", "library/nginx", "latest", "nginx:latest"),
        ("nginx", "1.25", "docker.io", "library/nginx", "1.25", "nginx:1.25"),
        ("foo/bar:2", None, "docker.io", "foo/bar", "2", "foo/bar:2"),
        ("index.docker.io/library/nginx", None, "docker.io", "library/nginx", "latest",
         "nginx:latest"),
        ("127.0.0.1:5000/a/b", "v1", "127.0.0.1:5000", "a/b", "v1", "127.0.0.1:5000/a/b:v1"),
        ("localhost/x", None, "localhost", "x", "latest", "localhost/x:latest"),
        (f"busybox@{D}", None, "docker.io", "library/busybox", D, f"busybox@{D}"),
        ("busybox", D, "docker.io", "library/busybox", D, f"busybox@{D}"),
    ],
)
def test_remote_names(name: str, tag: str | None, domain: str, path: str, ref: str,
                      familiar: str) -> None:
    r = remote(name, tag)
    assert (r.domain, r.path, r.reference, r.familiar()) == (domain, path, ref, familiar)


def test_remote_digest_pull_sets_no_tag() -> None:
    assert remote(f"busybox@{D}").tag_name() is None
    assert remote("busybox").tag_name() == "busybox:latest"


def test_remote_bad_names() -> None:
    with pytest.raises(InvalidArgument, match="invalid reference format"):
        remote("Busybox")
    with pytest.raises(InvalidArgument, match="invalid reference format"):
        remote("busybox:1", "2")


@pytest.mark.parametrize(
    ("domain", "origin"),
    [
        ("docker.io", "https://registry-1.docker.io"),
        ("quay.io", "https://quay.io"),
        ("registry.example:5000", "https://registry.example:5000"),
        ("localhost:5000", "http://localhost:5000"),
        ("127.0.0.1:5000", "http://127.0.0.1:5000"),
        ("127.1.2.3", "http://127.1.2.3"),
        ("[::1]:5000", "http://[::1]:5000"),
    ],
)
def test_endpoints(domain: str, origin: str) -> None:
    """Loopback registries as Docker's default insecure ones: TLS unverified first,
    then plain HTTP on the same port (port 80 when none was given)."""
    ep = endpoint(domain)
    if origin.startswith("http://"):
        assert ep.insecure and ep.scheme == "https"
        assert ep.plain().origin == origin
    else:
        assert not ep.insecure and ep.origin == origin


def test_insecure_registries_fall_back_to_plain_http() -> None:
    ep = endpoint("reg.lan:5000", frozenset({"reg.lan:5000"}))
    assert ep.insecure and ep.origin == "https://reg.lan:5000"
    assert ep.plain().origin == "http://reg.lan:5000"


def test_bearer_challenge() -> None:
    (ch,) = parse_challenge(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
        'scope="repository:library/busybox:pull"'
    )
    assert ch.scheme == "bearer"
    assert ch.params == {
        "realm": "https://auth.docker.io/token",
        "service": "registry.docker.io",
        "scope": "repository:library/busybox:pull",
    }
    (basic,) = parse_challenge('Basic realm="Registry Realm"')
    assert basic.scheme == "basic" and basic.params == {"realm": "Registry Realm"}


def test_registry_auth_header() -> None:
    import base64

    assert parse_registry_auth(None) is None
    assert parse_registry_auth("e30=") is None  # {} as the docker CLI sends it
    raw = base64.urlsafe_b64encode(json.dumps({"username": "u", "password": "p"}).encode())
    creds = parse_registry_auth(raw.decode().rstrip("="))
    assert creds is not None and (creds.username, creds.password) == ("u", "p")
    with pytest.raises(InvalidArgument, match="X-Registry-Auth"):
        parse_registry_auth("!!!")


def _desc(arch: str, variant: str = "") -> dict[str, object]:
    p = {"os": "linux", "architecture": arch}
    if variant:
        p["variant"] = variant
    return {"mediaType": mf.OCI_MANIFEST, "digest": D, "size": 1, "platform": p}


def test_index_platform_selection() -> None:
    doc = {"schemaVersion": 2, "mediaType": mf.OCI_INDEX,
           "manifests": [_desc("amd64"), _desc("arm", "v6"), _desc("arm", "v7"),
                         _desc("arm64", "v8")]}
    index = mf.parse_manifest(json.dumps(doc).encode(), None)
    assert isinstance(index, mf.Index)
    pick = mf.select(index, mf.parse_platform("linux/arm/v7"))
    assert pick.platform == mf.Platform("linux", "arm", "v7")
    assert mf.select(index, mf.parse_platform("linux/arm64")).platform == mf.Platform(
        "linux", "arm64", "v8")
    with pytest.raises(NotFound, match="^no matching manifest for linux/s390x in the "
                                       "manifest list entries$"):
        mf.select(index, mf.parse_platform("linux/s390x"))


def test_schema1_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="schema 1"):
        mf.parse_manifest(b'{"schemaVersion": 1, "fsLayers": []}', mf.DOCKER_SCHEMA1_SIGNED)


def test_docker_schema2_manifest() -> None:
    doc = {"schemaVersion": 2, "mediaType": mf.DOCKER_MANIFEST,
           "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                      "digest": D, "size": 10},
           "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                       "digest": D, "size": 20}]}
    m = mf.parse_manifest(json.dumps(doc).encode(), "application/json")
    assert isinstance(m, mf.ImageManifest)
    assert m.config.size == 10 and m.layers[0].short == "ab" * 6
    assert mf.layer_compression(m.layers[0].media_type) == "gzip"
    with pytest.raises(InvalidArgument, match="unsupported layer media type"):
        mf.layer_compression("application/x-foo")


def test_bad_platform() -> None:
    with pytest.raises(InvalidArgument, match="invalid platform 'linux/'"):
        mf.parse_platform("linux/")


def test_registry_errors_in_docker_words() -> None:
    r = remote("127.0.0.1:5000/x", "nope")
    body = b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}'
    e = errors_to_error(404, parse_errors(body), r, "manifest")
    assert isinstance(e, NotFound)
    assert e.message == ("manifest for 127.0.0.1:5000/x:nope not found: manifest unknown: "
                         "manifest unknown")
    denied = errors_to_error(
        401, [("UNAUTHORIZED", "authentication required")], remote("foo/bar"), "manifest")
    assert denied.message == (
        "pull access denied for foo/bar, repository does not exist or may require "
        "'docker login': unauthorized: authentication required"
    )


def test_progress_messages() -> None:
    assert human_size(1024) == "1.024kB" and human_size(2_810_000) == "2.81MB"
    assert progress_bar(0, 100).startswith("[>" + " " * 49 + "]")
    assert progress_bar(100, 100) == "[" + "=" * 50 + "] 100B/100B"
    assert message(Progress("Pulling from library/busybox", "latest")) == {
        "status": "Pulling from library/busybox", "id": "latest"}
    assert message(Progress("Pulling fs layer", "abc")) == {
        "status": "Pulling fs layer", "progressDetail": {}, "id": "abc"}
    m = message(Progress("Downloading", "abc", 10, 20))
    assert m["progressDetail"] == {"current": 10, "total": 20} and m["id"] == "abc"
    assert message(Progress("Digest: " + D)) == {"status": "Digest: " + D}


def test_saved_logins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from supervisor.cli import credentials as c
    from supervisor.distribution.auth import server_domain

    assert server_domain("") == server_domain("https://index.docker.io/v1/") == "docker.io"
    assert server_domain("https://reg.lan:5000/v2/") == "reg.lan:5000"
    assert c.server_key("docker.io") == "https://index.docker.io/v1/"
    doc: dict[str, object] = {"other": {"kept": True}}
    c.put(doc, "docker.io", "u", "p:w")
    assert c.get(doc, "docker.io") == ("u", "p:w") and c.get(doc, "reg:1") is None
    path = tmp_path / "cfg" / "config.json"
    c.save(path, doc)
    assert c.load(path) == doc and path.stat().st_mode & 0o777 == 0o600
    # a credential helper (docker-credential-*) keeps them instead
    helper = tmp_path / "bin" / "docker-credential-fake"
    helper.parent.mkdir()
    store = tmp_path / "store"
    helper.write_text(
        "#!/bin/sh\n"
        f'case "$1" in store) cat > {store} ;; '
        f"get) read s; [ -f {store} ] && cat {store} || "
        '{ echo "credentials not found"; exit 1; } ;; '
        f"erase) rm -f {store} ;; esac\n"
    )
    helper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{helper.parent}:/usr/bin:/bin")
    doc2: dict[str, object] = {"credsStore": "fake"}
    assert c.get(doc2, "reg:5000") is None
    c.put(doc2, "reg:5000", "me", "pw")
    assert c.get(doc2, "reg:5000") == ("me", "pw")
    assert doc2["auths"] == {"reg:5000": {}}  # the file keeps no secret
    assert c.erase(doc2, "reg:5000") and c.get(doc2, "reg:5000") is None


def test_search_terms_and_filters() -> None:
    from supervisor.distribution.search import SearchResult, apply_filters, split_term

    assert split_term("nginx") == ("docker.io", "nginx")
    assert split_term("foo/bar") == ("docker.io", "foo/bar")
    assert split_term("127.0.0.1:5000/busy") == ("127.0.0.1:5000", "busy")
    rows = [SearchResult("a", "", 10, True, False), SearchResult("b", "", 3, False, False)]
    assert [r.name for r in apply_filters(rows, {"is-official": ["true"]})] == ["a"]
    assert [r.name for r in apply_filters(rows, {"stars": ["5"]})] == ["a"]
    with pytest.raises(InvalidArgument, match="invalid filter 'stars=x'"):
        apply_filters(rows, {"stars": ["x"]})


async def test_parallel_gzip_is_one_deterministic_member(tmp_path: Path) -> None:
    """A layer compressed in parallel blocks is one gzip member (a reader that stops at
    the first member's end still gets every byte), its digest and size as reported,
    the same bytes however many workers compress it; an empty layer is valid gzip."""
    text = b"".join(b"line %d of a text file in a layer\n" % i for i in range(100_000))
    data = text + os.urandom(BLOCK + 123) + text[: BLOCK // 3]
    for content in (data, b""):
        src = tmp_path / "layer.tar"
        src.write_bytes(content)
        outs = []
        for workers in (1, 3):
            parts: list[bytes] = []

            async def sink(b: bytes, parts: list[bytes] = parts) -> None:
                parts.append(b)

            done: list[int] = []
            digest, size = await gzip_stream(src, sink, limiter=trio.CapacityLimiter(workers),
                                             progress=done.append)
            blob = b"".join(parts)
            assert (digest, size) == ("sha256:" + hashlib.sha256(blob).hexdigest(), len(blob))
            assert done[-1] == len(content)
            d = zlib.decompressobj(wbits=31)
            assert d.decompress(blob) == content and d.eof and d.unused_data == b""
            assert gzip.decompress(blob) == content
            outs.append(blob)
        assert outs[0] == outs[1]
        # a small layer compressed in one go is the same blob, byte for byte
        assert gzip_small(src, len(content)) == (
            "sha256:" + hashlib.sha256(outs[0]).hexdigest(), outs[0], len(content))
        assert gzip_small(src, len(content) - 1) is None
    assert len(text) > 2 * BLOCK  # several blocks, each primed with the one before
    assert len(outs[0]) < 30  # the empty layer: header, an empty final block, trailer


async def test_a_spool_sends_recent_bytes_from_memory_and_older_from_its_file(
        tmp_path: Path) -> None:
    """A layer compressed into a spool while it uploads: every byte is in the file (a
    retried part reads it back) and the last `keep` bytes are also held in memory,
    so a part the upload reads right behind the compression never touches the file;
    an older part comes from the file."""
    from supervisor.distribution.compress import Spool

    src = tmp_path / "layer.tar"
    src.write_bytes(os.urandom(3 * BLOCK + 77))
    fd = os.open(tmp_path / "spool", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        spool = Spool(fd, keep=BLOCK)
        digest, size = await gzip_stream(src, spool.grew, limiter=trio.CapacityLimiter(2),
                                         store=spool.store)
        spool.finish(digest)
        blob = (tmp_path / "spool").read_bytes()
        assert (spool.size, spool.digest) == (size, digest)
        assert digest == "sha256:" + hashlib.sha256(blob).hexdigest()
        assert gzip.decompress(blob) == src.read_bytes()

        async def read(start: int, end: int) -> bytes:
            return b"".join([p async for p in spool.part(start, end)])

        assert await read(0, size) == blob  # the head is no longer in memory: the file
        os.ftruncate(fd, 0)  # from here on the file has nothing to give
        assert await read(size - BLOCK // 2, size) == blob[size - BLOCK // 2:]
        with pytest.raises(OSError, match="spool truncated"):
            await read(0, 10)
    finally:
        os.close(fd)
