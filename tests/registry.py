"""A real registry for the pull tests: Debian's `docker-registry` (distribution 2.8).

`start_registry` runs it on 127.0.0.1 with port 0 (the kernel picks a free port, so
parallel sessions never collide) on a private storage dir and config file, plain HTTP,
and returns once its log says `listening on 127.0.0.1:PORT` (read from its stderr: no
polling, no sleeps).  Test images get into it through `skopeo copy`, the reference
client, from OCI layouts `write_oci_layout` makes here, so what corral pulls was
written by someone else's code.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REGISTRY_BIN = "docker-registry"
_LISTENING = re.compile(rb'msg="listening on (127\.0\.0\.1:\d+)')

CONFIG = """\
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: {storage}
  delete:
    enabled: true
compatibility:
  schema1:
    enabled: true
validation:
  manifests:
    urls:
      allow: ['^https?://']
http:
  addr: 127.0.0.1:0
  secret: corral-test-secret
"""


@dataclass
class Registry:
    """A running registry: `host` is `127.0.0.1:PORT`, `storage` its filesystem root."""

    host: str
    storage: Path
    proc: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)

    def blob_file(self, repository: str, digest: str) -> Path:
        """The file distribution keeps blob `digest` in (for corrupting it on purpose)."""
        hex_ = digest.removeprefix("sha256:")
        return self.storage / "docker/registry/v2/blobs/sha256" / hex_[:2] / hex_ / "data"

    creds: str | None = None  # user:password, for skopeo

    def push(self, layout: Path, repository: str, *, fmt: str | None = None, all_: bool = False,
             preserve: bool = False) -> None:
        """skopeo copy the OCI layout (its tag `latest`) to `repository` here.  `fmt`
        is skopeo's `--format` (`v2s2` for a Docker schema2 manifest, `oci`);
        `preserve` keeps every blob as it is (no compression of plain tar layers)."""
        args = ["skopeo", "copy", "-q", "--dest-tls-verify=false"]
        if preserve:
            args.append("--preserve-digests")
        if self.creds:
            args += ["--dest-creds", self.creds]
        if fmt:
            args += ["--format", fmt]
        if all_:
            args.append("--all")
        args += [f"oci:{layout}:latest", f"docker://{self.host}/{repository}"]
        subprocess.run(args, check=True, capture_output=True, timeout=120)

    def inspect(self, reference: str, *, raw: bool = False) -> Any:
        args = ["skopeo", "inspect", "--tls-verify=false"]
        if self.creds:
            args += ["--creds", self.creds]
        if raw:
            args.append("--raw")
        out = subprocess.run(
            [*args, f"docker://{self.host}/{reference}"],
            check=True,
            capture_output=True,
            timeout=60,
        ).stdout
        return json.loads(out)

    def manifest_digest(self, reference: str) -> str:
        return str(self.inspect(reference)["Digest"])


def htpasswd_line(user: str, password: str) -> str:
    """A bcrypt htpasswd entry (what distribution's htpasswd auth reads), made with the
    C library's crypt(3) so no tool or package is needed for it."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt

    salt = "$2b$05$" + hashlib.sha256(user.encode()).hexdigest()[:22].replace("f", ".")
    hashed = crypt.crypt(password, salt)
    assert hashed and hashed.startswith("$2b$"), "crypt(3) without bcrypt support"
    return f"{user}:{hashed}\n"


def start_registry(workdir: Path, users: dict[str, str] | None = None,
                   token: TokenServer | None = None, tls: bool = False,
                   client_ca: Path | None = None) -> Registry:
    """Start docker-registry on a free port under `workdir`; stop it with `.stop()`.
    With `users` (name -> password) it asks for Basic auth (htpasswd); with `token`,
    for Bearer tokens from that server; with `client_ca` (and `tls`), it serves only
    clients whose certificate that CA signed."""
    if shutil.which(REGISTRY_BIN) is None:
        raise FileNotFoundError("docker-registry not installed (Debian's docker-registry)")
    storage = workdir / "storage"
    storage.mkdir(parents=True, exist_ok=True)
    config = workdir / "config.yml"
    text = CONFIG.format(storage=storage)
    if users:
        htpasswd = workdir / "htpasswd"
        htpasswd.write_text("".join(htpasswd_line(u, p) for u, p in users.items()))
        text += f"auth:\n  htpasswd:\n    realm: corral-test\n    path: {htpasswd}\n"
    elif token is not None:
        text += (f"auth:\n  token:\n    realm: {token.url}\n    service: corral-test\n"
                 f"    issuer: corral-test-issuer\n    rootcertbundle: {token.cert}\n")
    if tls:  # a certificate for 127.0.0.1 that no CA vouches for
        key, cert = workdir / "tls.key", workdir / "tls.crt"
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
             "-keyout", str(key), "-out", str(cert)],
            check=True, capture_output=True, timeout=60)
        text = text.replace("  secret: corral-test-secret\n",
                            f"  secret: corral-test-secret\n  tls:\n    certificate: {cert}\n"
                            f"    key: {key}\n")
        if client_ca is not None:
            text = text.replace(f"    key: {key}\n",
                                f"    key: {key}\n    clientcas:\n      - {client_ca}\n")
    config.write_text(text)
    log = workdir / "registry.log"
    proc = subprocess.Popen(
        [REGISTRY_BIN, "serve", str(config)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert proc.stderr is not None
    with log.open("wb") as logf:
        for line in proc.stderr:  # EOF here means it died before listening
            logf.write(line)
            m = _LISTENING.search(line)
            if m is not None:
                break
        else:
            proc.wait()
            raise RuntimeError(f"docker-registry did not start:\n{log.read_text()}")
    # Keep draining its log so it never blocks on a full pipe.
    drain = subprocess.Popen(["tee", "-a", str(log)], stdin=proc.stderr,
                             stdout=subprocess.DEVNULL)
    proc.stderr.close()
    reg = Registry(host=m.group(1).decode(), storage=storage, proc=proc, log=log)
    if users:
        user, password = next(iter(users.items()))
        reg.creds = f"{user}:{password}"
    reg._drain = drain  # type: ignore[attr-defined]
    return reg


# ------------------------------------------------------------ test images


@dataclass
class Layer:
    """One layer's files: name -> bytes (a name ending in `/` is a directory)."""

    files: dict[str, bytes] = field(default_factory=dict)

    def tar(self) -> bytes:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
            for name, data in self.files.items():
                info = tarfile.TarInfo(name.rstrip("/"))
                info.mtime = 1700000000
                if name.endswith("/"):
                    info.type = tarfile.DIRTYPE
                    info.mode = 0o755
                    t.addfile(info)
                else:
                    info.size = len(data)
                    info.mode = 0o755 if name.startswith("bin/") else 0o644
                    t.addfile(info, io.BytesIO(data))
        return buf.getvalue()


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _put(layout: Path, data: bytes) -> str:
    d = _sha(data)
    p = layout / "blobs/sha256" / d.removeprefix("sha256:")
    p.write_bytes(data)
    return d


def compress(tar: bytes, compression: str) -> tuple[str, bytes]:
    """(OCI media type, blob) of a layer: `gzip`, `zstd` (two frames, as zstd:chunked
    writes several) or `none`."""
    if compression == "zstd":
        import zstandard

        half = len(tar) // 2
        c = zstandard.ZstdCompressor()
        return ("application/vnd.oci.image.layer.v1.tar+zstd",
                c.compress(tar[:half]) + c.compress(tar[half:]))
    if compression == "none":
        return "application/vnd.oci.image.layer.v1.tar", tar
    return "application/vnd.oci.image.layer.v1.tar+gzip", gzip.compress(tar, mtime=0)


def image_manifest(layout: Path, layers: list[bytes], *, arch: str = "amd64",
                   cmd: list[str] | None = None, compression: str | list[str] = "gzip"
                   ) -> dict[str, Any]:
    """Write layers (compressed as `compression` says, one for all or one each), config
    and OCI manifest blobs for `layers` (uncompressed tars); return the manifest's
    descriptor (for an index)."""
    diff_ids = [_sha(t) for t in layers]
    layer_descs = []
    kinds = [compression] * len(layers) if isinstance(compression, str) else compression
    for t, kind in zip(layers, kinds, strict=True):
        media_type, blob = compress(t, kind)
        layer_descs.append({"mediaType": media_type, "digest": _put(layout, blob),
                            "size": len(blob)})
    config = json.dumps({
        "architecture": arch,
        "os": "linux",
        "created": "2024-01-01T00:00:00Z",
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                   "Cmd": cmd or ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": "2024-01-01T00:00:00Z", "created_by": f"layer {i}"}
                    for i in range(len(layers))],
    }, sort_keys=True).encode()
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": _put(layout, config), "size": len(config)},
        "layers": layer_descs,
    }, sort_keys=True).encode()
    return {"mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": _put(layout, manifest), "size": len(manifest),
            "platform": {"architecture": arch, "os": "linux"}}


def write_oci_layout(layout: Path, manifests: list[dict[str, Any]], *, index: bool = False
                     ) -> Path:
    """index.json naming the manifest (or, with `index`, an image index of them) as
    `latest`."""
    if index:
        doc = json.dumps({"schemaVersion": 2,
                          "mediaType": "application/vnd.oci.image.index.v1+json",
                          "manifests": manifests}, sort_keys=True).encode()
        top = {"mediaType": "application/vnd.oci.image.index.v1+json",
               "digest": _put(layout, doc), "size": len(doc)}
    else:
        (top,) = manifests
        top = {k: v for k, v in top.items() if k != "platform"}
    top["annotations"] = {"org.opencontainers.image.ref.name": "latest"}
    (layout / "index.json").write_text(json.dumps(
        {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
         "manifests": [top]}))
    return layout


def new_layout(layout: Path) -> Path:
    (layout / "blobs/sha256").mkdir(parents=True, exist_ok=True)
    (layout / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    return layout


def busybox_layers(rootfs_tar: Path) -> list[bytes]:
    """The busybox test rootfs as one layer."""
    return [rootfs_tar.read_bytes()]


def make_image(layout: Path, layers: list[bytes], **kw: Any) -> Path:
    new_layout(layout)
    return write_oci_layout(layout, [image_manifest(layout, layers, **kw)])


# ------------------------------------------------------------ token auth


class TokenServer:
    """A small Docker-style token server (the Hub's auth.docker.io flow, offline):
    `GET /token?service=&scope=` answers a JWT (RS256, signed with openssl, the signing
    certificate in its `x5c` header) that the registry verifies against the bundle it
    is configured with.  Anonymous requests get pull access to `public/*` only; Basic
    `user:password` gets pull and push everywhere.  Runs in a thread of the test
    process (the daemon under test is the client)."""

    def __init__(self, workdir: Path, users: dict[str, str]) -> None:
        import http.server
        import threading

        self.users = users
        self.key = workdir / "token.key"
        self.cert = workdir / "token.crt"
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-subj", "/CN=corral-test-token", "-keyout", str(self.key),
             "-out", str(self.cert)],
            check=True, capture_output=True, timeout=60)
        der = subprocess.run(["openssl", "x509", "-in", str(self.cert), "-outform", "DER"],
                             check=True, capture_output=True, timeout=60).stdout
        import base64

        self.x5c = base64.b64encode(der).decode()
        self.requests: list[tuple[str, str]] = []  # (account or "", scope)
        self.refresh: dict[str, str] = {}  # refresh token -> user (offline_token=true)
        self.posts: list[dict[str, str]] = []  # the OAuth2 POSTs' forms
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                from urllib.parse import parse_qs, urlsplit

                q = parse_qs(urlsplit(self.path).query)
                user = ""
                auth = self.headers.get("Authorization", "")
                if auth.startswith("Basic "):
                    u, _, p = base64.b64decode(auth[6:]).decode().partition(":")
                    if server.users.get(u) != p:
                        self.send_response(401)
                        self.end_headers()
                        return
                    user = u
                scopes = q.get("scope", [])
                server.requests.append((user, " ".join(scopes)))
                doc = {"token": server.token(user, q.get("service", [""])[0], scopes),
                       "expires_in": 300}
                if user and q.get("offline_token") == ["true"]:
                    doc["refresh_token"] = server.new_refresh(user)
                self._answer(200, doc)

            def do_POST(self) -> None:  # noqa: N802 - OAuth2's token endpoint
                from urllib.parse import parse_qs

                n = int(self.headers.get("Content-Length") or 0)
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(n).decode()).items()}
                server.posts.append(form)
                user = server.refresh.get(form.get("refresh_token", ""))
                if form.get("grant_type") != "refresh_token" or user is None:
                    self._answer(401, {"error": "invalid_grant"})
                    return
                scopes = form.get("scope", "").split()
                server.requests.append((user, " ".join(scopes)))
                self._answer(200, {"access_token": server.token(user, form.get("service", ""),
                                                                scopes),
                                   "expires_in": 300})

            def _answer(self, status: int, doc: dict[str, Any]) -> None:
                body = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/token"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def new_refresh(self, user: str) -> str:
        tok = "rt-" + os.urandom(12).hex()
        self.refresh[tok] = user
        return tok

    def token(self, user: str, service: str, scopes: list[str]) -> str:
        import base64
        import time

        def b64(data: bytes) -> str:
            return base64.urlsafe_b64encode(data).decode().rstrip("=")

        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            allowed = [a for a in actions.split(",")
                       if user or (a == "pull" and name.startswith("public/"))]
            access.append({"type": kind, "name": name, "actions": allowed})
        now = int(time.time())
        claims = {"iss": "corral-test-issuer", "sub": user, "aud": service,
                  "exp": now + 300, "nbf": now - 10, "iat": now, "jti": os.urandom(8).hex(),
                  "access": access}
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self.x5c]}
        signing = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", str(self.key)],
                             input=signing.encode(), check=True, capture_output=True,
                             timeout=60).stdout
        return f"{signing}.{b64(sig)}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


# ------------------------------------------------------------ a proxy that misbehaves


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    host: str  # the Host header: which name the client used


class Proxy:
    """An HTTP proxy in front of a registry, in a thread of the test process, that
    misbehaves on purpose for the requests `rule(seen)` picks: `rule` returns None to
    pass the request through, or an action:
    - `("cut", n)`: send the real headers, then only the first n body bytes, and close;
    - `("length", n)`: send the real headers with `Content-Length: n` (a lie) and close
      after the real body;
    - `("redirect", url)`: answer 307 to `url`;
    - `("drop",)`: read the request, close the connection without an answer.
    Every request is recorded in `seen`; a connection that starts a TLS handshake is
    closed at once, counted in `tls_tries`.  The registry is reached as `127.0.0.1:PORT`;
    the proxy also answers as `localhost:PORT` (another host, to the client)."""

    def __init__(self, upstream: str, rule: Any = None, upstream_auth: str | None = None
                 ) -> None:
        import http.client
        import http.server
        import threading

        self.upstream = upstream
        self.rule = rule or (lambda seen: None)
        self.seen: list[Seen] = []
        self.tls_tries = 0  # connections that began with a TLS handshake
        self.strip: set[str] = set()  # request headers not passed on (lower case)
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self) -> None:
                seen = Seen(self.command, self.path,
                            {k.lower(): v for k, v in self.headers.items()},
                            self.headers.get("Host", ""))
                proxy.seen.append(seen)
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else None
                action = proxy.rule(seen)
                if action is not None and action[0] == "drop":  # read, never answered
                    self.close_connection = True
                    return
                if action is not None and action[0] == "redirect":
                    self.send_response(307)
                    self.send_header("Location", action[1])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("host", "connection", *proxy.strip)}
                if upstream_auth and seen.host.startswith("localhost:"):
                    headers["Authorization"] = upstream_auth  # the storage's own access
                conn = http.client.HTTPConnection(proxy.upstream, timeout=60)
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                self.send_response(resp.status, resp.reason)
                for k, v in resp.getheaders():
                    if k.lower() in ("content-length", "connection", "transfer-encoding"):
                        continue
                    if k.lower() == "location" and v.startswith(f"http://{proxy.upstream}"):
                        v = v.replace(proxy.upstream, proxy.host, 1)
                    self.send_header(k, v)
                length = len(data)
                if action is not None and action[0] == "length":
                    length = action[1]
                self.send_header("Content-Length", str(length))
                if action is not None:
                    self.send_header("Connection", "close")
                self.end_headers()
                if self.command != "HEAD":
                    if action is not None and action[0] == "cut":
                        data = data[: action[1]]
                    self.wfile.write(data)
                if action is not None:
                    self.wfile.flush()
                    self.close_connection = True
                conn.close()

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _any

            def handle(self) -> None:
                import socket

                # a TLS ClientHello (a client trying HTTPS first, as Docker does with
                # an insecure registry) is counted and refused at once
                if self.connection.recv(1, socket.MSG_PEEK) == b"\x16":
                    proxy.tls_tries += 1
                    return
                super().handle()

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.host = f"127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
