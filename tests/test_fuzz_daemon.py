"""Fuzz the real daemon over its socket (tests/conftest.py's session daemon): random
requests, create bodies and layer tarballs.  A client's mistake is never a 500 (a 500
is a failure unless the server itself failed), the daemon stays up (`/_ping` after
every case), and it leaves no mount, container or image behind."""

from __future__ import annotations

import io
import json
import socket
import tarfile
from pathlib import Path
from typing import Any

from conftest import Daemon
from fuzzing import Refused, case, fuzz
from hypothesis import given
from hypothesis import strategies as st

TIMEOUT = 30.0


def request(sock_path: Path, method: str, target: str, body: bytes = b"", **headers: str) -> int:
    """One request on a fresh connection; the response's status (0: no answer)."""
    return exchange(sock_path, method, target, body, **headers)[0]


def exchange(
    sock_path: Path, method: str, target: str, body: bytes = b"", **headers: str
) -> tuple[int, bytes]:
    """One request on a fresh connection: (status, the raw response; 0 for no answer)."""
    head = f"{method} {target} HTTP/1.1\r\nHost: corral\r\nConnection: close\r\n"
    head += "".join(f"{k.replace('_', '-')}: {v}\r\n" for k, v in headers.items())
    if body or method in ("POST", "PUT"):
        head += f"Content-Length: {len(body)}\r\n"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(TIMEOUT)
    try:
        s.connect(str(sock_path))
        data = b""
        try:
            s.sendall(head.encode("utf-8", "surrogateescape") + b"\r\n" + body)
            while chunk := s.recv(65536):
                data += chunk
        except (ConnectionResetError, BrokenPipeError):
            # the daemon answered and closed before reading all of a refused body
            return (RESET, data) if not data.startswith(b"HTTP/") else (_status(data), data)
    finally:
        s.close()
    return _status(data), data


RESET = 499  # the connection was closed under an unread request body (a refusal)


def _status(data: bytes) -> int:
    line = data.split(b"\r\n", 1)[0].split()
    return int(line[1]) if len(line) > 1 and line[1].isdigit() else 0


def mounts_under(root: Path) -> list[str]:
    return [ln for ln in Path("/proc/self/mountinfo").read_text().splitlines() if str(root) in ln]


def alive(daemon: Daemon) -> None:
    assert daemon.proc.poll() is None, "the daemon died"
    assert request(daemon.sock, "GET", "/_ping") == 200, "the daemon stopped answering"


ROUTES = [
    ("GET", "/containers/json"), ("GET", "/containers/{id}/json"),
    ("POST", "/containers/{id}/start"),
    ("POST", "/containers/{id}/stop"), ("POST", "/containers/{id}/kill"),
    ("POST", "/containers/{id}/update"), ("POST", "/containers/{id}/rename"),
    ("POST", "/containers/{id}/resize"), ("POST", "/containers/{id}/wait"),
    ("DELETE", "/containers/{id}"), ("GET", "/containers/{id}/logs"),
    ("POST", "/containers/{id}/exec"), ("POST", "/exec/{id}/start"), ("GET", "/exec/{id}/json"),
    ("POST", "/commit"), ("GET", "/images/json"), ("GET", "/images/{id}/json"),
    ("GET", "/images/{id}/history"), ("POST", "/images/{id}/tag"), ("GET", "/networks"),
    ("GET", "/networks/{id}"), ("POST", "/networks/create"), ("DELETE", "/networks/{id}"),
    ("POST", "/networks/{id}/connect"), ("POST", "/volumes/create"), ("GET", "/volumes"),
    ("GET", "/volumes/{id}"), ("DELETE", "/volumes/{id}"), ("GET", "/version"), ("GET", "/info"),
    ("GET", "/containers/{id}/stats"), ("POST", "/swarm/init"), ("GET", "/nope"),
    ("PUT", "/containers/json"), ("GET", "/v1.44/_ping"), ("GET", "/v9.99/version"),
    ("GET", "/v1.1/version"), ("HEAD", "/_ping"), ("GET", "/containers/{id}/archive"),
]  # fmt: skip
IDS = ["", "x", "nope", "0" * 64, "..", "a%2Fb", "%00", "busybox:nope", "sha256:zz", "é", "a b"]
QUERIES = ["", "all=1", "filters=%7B", "filters=%7B%22label%22%3A5%7D", "filters=[]", "t=-1",
           "t=abc", "signal=NOPE", "h=x&w=1", "limit=-5", "tail=x", "since=x", "stream=0",
           "name=%2F..", "repo=%20&tag=%25", "size=2", "v=yes", "follow=1&tail=1"]  # fmt: skip
JSONS = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**64), 2**64) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


@st.composite
def api_requests(draw: st.DrawFn) -> tuple[str, str, bytes, str, str]:
    method, route = draw(st.sampled_from(ROUTES))
    path = route
    path = path.replace("{id}", draw(st.sampled_from(IDS) | st.text("abc0123-_.", max_size=8)))
    query = draw(st.sampled_from(QUERIES))
    kind = draw(st.integers(0, 3))
    if kind == 0:
        body = b""
    elif kind == 1:
        body = json.dumps(draw(JSONS)).encode()
    elif kind == 2:
        body = draw(st.sampled_from([b"{", b"[" * 100_000, b"\xff", b"null", b'{"a":1}{"a":2}']))
    else:
        body = draw(st.binary(max_size=30))
    ctype = draw(st.sampled_from(["application/json", "text/plain", "", "application/x-tar"]))
    return method, path + ("?" + query if query else ""), body, ctype, route


def _leftovers(daemon: Daemon) -> None:
    """Remove every container by ID (a broken record may fail `ps`, not this)."""
    for name in (
        (daemon.root / "containers").iterdir() if (daemon.root / "containers").is_dir() else ()
    ):
        request(daemon.sock, "DELETE", f"/containers/{name.name}?force=1&v=1")


def server_error(target: str, key: str, what: str) -> None:
    """A 500 for a client's mistake: a failure, which hypothesis shrinks."""
    raise AssertionError(f"{target}: a 500 for a client's mistake at {key}: {what}")


@fuzz(ci_cases=150)
@given(api_requests())
def test_random_requests_never_500(
    daemon: Daemon, dk: Any, req: tuple[str, str, bytes, str, str]
) -> None:
    method, target, body, ctype, route = req
    mounts = mounts_under(daemon.root)
    with case("daemon requests") as fig:
        hdrs = {"Content_Type": ctype} if ctype else {}
        status = request(daemon.sock, method, target, body, **hdrs)
        assert status != 0, f"no answer to {method} {target}"
        if status >= 500 and status not in (501, 503):  # Docker: 503 = not a swarm manager
            where = f"{method} {route}"
            server_error("daemon requests", where, f"{method} {target} {body[:60]!r}: {status}")
        if status >= 400:
            raise Refused(str(status))
    _leftovers(daemon)
    alive(daemon)
    assert mounts_under(daemon.root) == mounts
    assert fig.cases


BASE_BODY: dict[str, Any] = {"Image": "busybox", "Cmd": ["true"]}
FIELDS = ["Cmd", "Entrypoint", "Env", "Labels", "User", "WorkingDir", "ExposedPorts", "Tty",
          "StopSignal", "StopTimeout", "Healthcheck", "Image", "Volumes", "HostConfig.Binds",
          "HostConfig.CapAdd", "HostConfig.CapDrop", "HostConfig.Memory", "HostConfig.PortBindings",
          "HostConfig.RestartPolicy", "HostConfig.ExtraHosts", "HostConfig.Dns",
          "HostConfig.Mounts", "HostConfig.Tmpfs", "HostConfig.SecurityOpt",
          "HostConfig.NetworkMode", "HostConfig.LogConfig", "HostConfig.Ulimits",
          "NetworkingConfig", "Bogus"]  # fmt: skip
VALUES = st.sampled_from(
    [[1, 2], "ALL", "a\nb", -1, 2**63, 1.5, None, True, {}, [], {"a": 1}, [[]], "", "..",
     "/etc:/x", ["/:/host"], ["a:b:c:d"], {"Name": 5}, {"80/tcp": [{"HostPort": "x"}]},
     ["host\n1.2.3.4"], ["seccomp=/nope.json"], "container:nope", {"Type": "bogus"}]
)  # fmt: skip


@st.composite
def create_bodies(draw: st.DrawFn) -> dict[str, Any]:
    body = json.loads(json.dumps(BASE_BODY))
    for field in draw(st.lists(st.sampled_from(FIELDS), min_size=1, max_size=3)):
        value = draw(VALUES | JSONS)
        if field.startswith("HostConfig."):
            body.setdefault("HostConfig", {})[field.split(".", 1)[1]] = value
        else:
            body[field] = value
    return body


@fuzz(ci_cases=120)
@given(create_bodies())
def test_create_bodies_never_500(daemon: Daemon, dk: Any, body: dict[str, Any]) -> None:
    mounts = mounts_under(daemon.root)
    raw = json.dumps(body).encode()
    with case("daemon create bodies") as fig:
        status = request(
            daemon.sock, "POST", "/containers/create", raw, Content_Type="application/json"
        )
        listed = request(daemon.sock, "GET", "/containers/json?all=1")
        _leftovers(daemon)
        assert status != 0 and listed != 0, f"create {status}, then ps {listed}: {raw!r}"
        if status >= 500 or listed >= 500:
            key = "ps" if listed >= 500 else "create"
            what = f"{raw.decode()}: create {status}, ps {listed}"
            server_error("daemon create bodies", key, what)
        if status >= 400:
            raise Refused(str(status))
    alive(daemon)
    assert mounts_under(daemon.root) == mounts
    assert fig.cases


def _layer(entries: list[tuple[str, bytes, str]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, type_, link in entries:
            info = tarfile.TarInfo(name)
            info.type, info.linkname = type_, link
            data = b"x" if type_ == tarfile.REGTYPE else b""
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


LAYER_NAMES = ["a", "a/b", "../x", "/abs", "l", "l/x", ".wh.a", "a/.wh..wh..opq", ".wh..", ".",
               "/tmp/corral-fuzz-escape", "hl", "x" * 300, "/".join(["d"] * 600),
               "a\x00b"]  # fmt: skip
LAYER_TYPES = [tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.FIFOTYPE]
LAYER_LINKS = ["", "a", "/", "..", "../../../../tmp", "/tmp", "hl", "l"]


@fuzz(ci_cases=60)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(LAYER_NAMES), st.sampled_from(LAYER_TYPES), st.sampled_from(LAYER_LINKS)
        ),
        max_size=5,
    ),
    st.lists(st.tuples(st.integers(0, 4000), st.integers(0, 255)), max_size=2),
)
def test_import_hostile_layers(
    daemon: Daemon, dk: Any, entries: list[tuple[str, bytes, str]], flips: list[tuple[int, int]]
) -> None:
    raw = _layer(entries)
    for pos, byte in flips:
        raw = raw[: pos % len(raw)] + bytes([byte]) + raw[pos % len(raw) + 1 :]
    mounts = mounts_under(daemon.root)
    escape = Path("/tmp/corral-fuzz-escape")
    with case("daemon import") as fig:
        status = request(
            daemon.sock, "POST", "/images/create?fromSrc=-&repo=fuzzimport&tag=x", raw,
            Content_Type="application/x-tar",
        )  # fmt: skip
        assert status != 0 and status < 500, f"import answered {status}: {raw!r}"
        if status >= 400:
            raise Refused(str(status))
        dk.images.remove("fuzzimport:x", force=True)
    assert not escape.exists() and not escape.is_symlink(), "an import wrote outside its layer"
    tmp = daemon.root / "tmp"
    left = [p for d in tmp.iterdir() if d.is_dir() for p in d.iterdir()] if tmp.exists() else []
    assert left == [], "an import left its unpack behind"
    alive(daemon)
    assert mounts_under(daemon.root) == mounts
    assert fig.cases
