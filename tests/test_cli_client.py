"""The hand-written HTTP/1.1 client against a tiny in-test Unix-socket server.

The server reads each request (Content-Length or chunked body) and lets the test reply
with raw bytes, so every framing the client must understand is exercised exactly.
"""

from __future__ import annotations

import io
import json
import os
import socket
import socketserver
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from supervisor.api.client import ApiError, Client, DaemonUnavailable, encode_query
from supervisor.cli.autostart import start_daemon
from supervisor.cli.context import Cli, CliError
from supervisor.cli.main import run_verb
from supervisor.cli.stream import pump


class Request:
    def __init__(self, method: str, target: str, headers: dict[str, str], body: bytes,
                 rfile: Any, sock: socket.socket) -> None:
        self.method = method
        self.target = target
        self.path, _, self.query = target.partition("?")
        self.headers = headers
        self.body = body
        self.rfile = rfile
        self.sock = sock


Handler = Callable[[Request], bytes | None]


def read_request(rfile: Any, sock: socket.socket) -> Request | None:
    line = rfile.readline()
    if not line:
        return None
    method, target, _ = line.decode().split(" ", 2)
    headers: dict[str, str] = {}
    while True:
        h = rfile.readline().decode()
        if h in ("\r\n", ""):
            break
        k, _, v = h.partition(":")
        headers[k.strip().lower()] = v.strip()
    body = b""
    if headers.get("transfer-encoding") == "chunked":
        while True:
            size = int(rfile.readline().strip(), 16)
            if size == 0:
                rfile.readline()
                break
            body += rfile.read(size)
            rfile.readline()
    elif "content-length" in headers:
        body = rfile.read(int(headers["content-length"]))
    return Request(method, target, headers, body, rfile, sock)


class Server:
    """Serve one scripted handler per connection; records every request."""

    def __init__(self, path: Path, handler: Handler) -> None:
        self.requests: list[Request] = []
        outer = self

        class H(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                req = read_request(self.rfile, self.request)
                if req is None:
                    return
                outer.requests.append(req)
                reply = handler(req)
                if reply is not None:
                    self.wfile.write(reply)

        self.server = socketserver.ThreadingUnixStreamServer(str(path), H)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.01,),
                                       daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[[Handler], tuple[Server, Client]]]:
    servers: list[Server] = []

    def start(handler: Handler) -> tuple[Server, Client]:
        path = tmp_path / "api.sock"
        if path.exists():
            path.unlink()
        srv = Server(path, handler)
        servers.append(srv)
        return srv, Client(f"unix://{path}")

    yield start
    for srv in servers:
        srv.close()


def http(status: str, body: bytes = b"", headers: str = "", length: bool = True) -> bytes:
    head = f"HTTP/1.1 {status}\r\n{headers}"
    if length:
        head += f"Content-Length: {len(body)}\r\n"
    return (head + "\r\n").encode() + body


def chunked(*parts: bytes) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"


def test_content_length_json_and_request_shape(serve: Any) -> None:
    srv, client = serve(lambda r: http("200 OK", b'[{"Id": "abc"}]',
                                       "Content-Type: application/json\r\n"))
    assert client.get("/containers/json", {"all": True, "limit": 3, "x": None}) == [{"Id": "abc"}]
    req = srv.requests[0]
    assert req.method == "GET"
    assert req.target == "/v1.44/containers/json?all=1&limit=3"


def test_chunked_lines_across_chunk_boundaries(serve: Any) -> None:
    _, client = serve(lambda r: http("200 OK", chunked(b'{"a":', b'1}\n{"b"', b":2}\n"),
                                     "Transfer-Encoding: chunked\r\n", length=False))
    lines = list(client.request("GET", "/events").iter_lines())
    assert [json.loads(x) for x in lines] == [{"a": 1}, {"b": 2}]


def test_close_delimited_body(serve: Any) -> None:
    _, client = serve(lambda r: http("200 OK", b"until the end", length=False))
    assert client.request("GET", "/x").read() == b"until the end"


def test_no_content(serve: Any) -> None:
    _, client = serve(lambda r: http("204 No Content", length=False))
    assert client.request("POST", "/containers/x/start").read() == b""


def test_api_error_carries_message(serve: Any) -> None:
    _, client = serve(lambda r: http("404 Not Found", b'{"message": "No such container: x"}'))
    with pytest.raises(ApiError) as info:
        client.get("/containers/x/json")
    assert (info.value.status, info.value.message) == (404, "No such container: x")


def test_api_error_with_plain_body(serve: Any) -> None:
    _, client = serve(lambda r: http("500 Internal Server Error", b"it broke\n"))
    with pytest.raises(ApiError, match="it broke"):
        client.get("/x")


def test_json_body_and_query_quoting(serve: Any) -> None:
    srv, client = serve(lambda r: http("201 Created", b'{"Id": "new"}'))
    assert client.post("/containers/create", {"name": "a b/c"}, {"Image": "busybox"}) == {
        "Id": "new"}
    req = srv.requests[0]
    assert req.query == "name=a%20b%2Fc"
    assert req.headers["content-type"] == "application/json"
    assert json.loads(req.body) == {"Image": "busybox"}


def test_upload_file_with_content_length(serve: Any, tmp_path: Path) -> None:
    data = os.urandom(200_000)
    (tmp_path / "img.tar").write_bytes(data)
    srv, client = serve(lambda r: http("200 OK", b'{"status":"ok"}\n'))
    with open(tmp_path / "img.tar", "rb") as f:
        client.request("POST", "/images/create", {"fromSrc": "-"}, body=f).read()
    req = srv.requests[0]
    assert req.headers["content-length"] == str(len(data))
    assert req.body == data


def test_upload_stream_chunked(serve: Any) -> None:
    srv, client = serve(lambda r: http("200 OK"))
    client.request("POST", "/upload", body=iter([b"ab", b"", b"cd" * 40000])).read()
    req = srv.requests[0]
    assert req.headers["transfer-encoding"] == "chunked"
    assert req.body == b"ab" + b"cd" * 40000


def test_upload_pipe_is_chunked(serve: Any) -> None:
    srv, client = serve(lambda r: http("200 OK"))
    r, w = os.pipe()
    os.write(w, b"piped bytes")
    os.close(w)
    with os.fdopen(r, "rb") as f:
        client.request("POST", "/upload", body=f).read()
    assert srv.requests[0].headers["transfer-encoding"] == "chunked"
    assert srv.requests[0].body == b"piped bytes"


def frame(stream: int, data: bytes) -> bytes:
    return bytes([stream, 0, 0, 0]) + len(data).to_bytes(4, "big") + data


def echo_hijack(req: Request) -> None:
    """101, then echo everything received as stdout frames until the client half-closes."""
    assert req.headers["connection"] == "Upgrade" and req.headers["upgrade"] == "tcp"
    req.sock.sendall(b"HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream"
                     b"\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n" + frame(2, b"hello err\n"))
    while True:
        data = req.rfile.read1(65536)
        if not data:
            break
        req.sock.sendall(frame(1, data.upper()))
    req.sock.sendall(frame(1, b"bye\n"))
    req.sock.shutdown(socket.SHUT_WR)


def test_hijack_demux_and_stdin_half_close(serve: Any) -> None:
    _, client = serve(echo_hijack)
    conn = client.hijack("/exec/abc/start", None, {"Detach": False, "Tty": False})
    r, w = os.pipe()
    os.write(w, b"some input\n")
    os.close(w)
    out, err = io.BytesIO(), io.BytesIO()
    try:
        pump(conn, out, err, r)
    finally:
        conn.close()
        os.close(r)
    assert out.getvalue() == b"SOME INPUT\nbye\n"
    assert err.getvalue() == b"hello err\n"


def test_hijack_refused_raises_api_error(serve: Any) -> None:
    _, client = serve(lambda r: http("409 Conflict", b'{"message": "container is not running"}'))
    with pytest.raises(ApiError, match="not running"):
        client.hijack("/containers/x/attach", {"stream": True})


def test_unavailable_and_autostart_hook(tmp_path: Path) -> None:
    with pytest.raises(DaemonUnavailable):
        Client(f"unix://{tmp_path}/none.sock").get("/_ping")
    calls: list[int] = []
    client = Client(f"unix://{tmp_path}/none.sock", autostart=lambda: calls.append(1))
    with pytest.raises(DaemonUnavailable):
        client.get("/_ping")
    assert calls == [1]


def test_encode_query_lists_and_bools() -> None:
    assert encode_query({"changes": ["ENV A=1", "CMD x"], "pause": False, "t": 0}) == (
        "?changes=ENV%20A%3D1&changes=CMD%20x&pause=0&t=0")
    assert encode_query({"x": None}) == ""


# -- whole verbs against a scripted daemon ---------------------------------------------


class FakeDaemon:
    """Answers the `run` sequence the way Docker does, recording the order of calls."""

    def __init__(self, exit_code: int = 3, start_error: str | None = None) -> None:
        self.exit_code = exit_code
        self.start_error = start_error
        self.started = threading.Event()
        self.calls: list[str] = []

    def __call__(self, req: Request) -> bytes | None:
        path = req.path.removeprefix("/v1.44")
        self.calls.append(f"{req.method} {path}")
        if path == "/containers/create":
            return http("201 Created", b'{"Id": "c0ffee", "Warnings": []}')
        if path.endswith("/attach"):
            req.sock.sendall(b"HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\n"
                             b"Upgrade: tcp\r\n\r\n")
            self.started.wait(5)
            req.sock.sendall(frame(1, b"out\n") + frame(2, b"err\n"))
            req.sock.shutdown(socket.SHUT_WR)
            return None
        if path.endswith("/wait"):
            req.sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             b"Transfer-Encoding: chunked\r\n\r\n")
            self.started.wait(5)
            return chunked(json.dumps({"StatusCode": self.exit_code, "Error": None}).encode())
        if path.endswith("/start"):
            if self.start_error:
                self.started.set()
                return http("400 Bad Request",
                            json.dumps({"message": self.start_error}).encode())
            self.started.set()
            return http("204 No Content", length=False)
        if req.method == "DELETE":
            return http("204 No Content", length=False)
        return http("404 Not Found", b'{"message": "page not found"}')


def run_with(client: Client, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    bout, berr = io.BytesIO(), io.BytesIO()
    out.buffer = bout  # type: ignore[misc]
    err.buffer = berr  # type: ignore[misc]
    cli = Cli(stdout=out, stderr=err, environ={}, client=client)
    code = run_verb(cli, argv[0], list(argv[1:]))
    stdout = out.getvalue() + bout.getvalue().decode()
    return code, stdout, err.getvalue() + berr.getvalue().decode()


def test_run_attached_sequence_and_exit_code(serve: Any) -> None:
    fake = FakeDaemon(exit_code=3)
    _, client = serve(fake)
    code, out, err = run_with(client, "run", "--name", "x", "busybox", "sh")
    assert (code, out, err) == (3, "out\n", "err\n")
    assert fake.calls == ["POST /containers/create", "POST /containers/c0ffee/attach",
                          "POST /containers/c0ffee/wait", "POST /containers/c0ffee/start"]


def test_run_rm_waits_for_removal(serve: Any) -> None:
    fake = FakeDaemon(exit_code=0)
    srv, client = serve(fake)
    assert run_with(client, "run", "--rm", "busybox")[0] == 0
    wait = next(r for r in srv.requests if r.path.endswith("/wait"))
    assert wait.query == "condition=removed"
    attach = next(r for r in srv.requests if r.path.endswith("/attach"))
    assert attach.query == "stream=1&stdout=1&stderr=1"


@pytest.mark.parametrize(
    ("message", "code"),
    [('exec: "nope": executable file not found in $PATH', 127),
     ('exec: "/etc": permission denied', 126), ("cgroup trouble", 125)],
)
def test_run_start_failure_exit_codes(serve: Any, message: str, code: int) -> None:
    _, client = serve(FakeDaemon(start_error=message))
    got, _, err = run_with(client, "run", "busybox")
    assert got == code
    assert err == f"corral: Error response from daemon: {message}\n"


def test_run_missing_image(serve: Any) -> None:
    _, client = serve(lambda r: http("404 Not Found", b'{"message": "No such image: nope:latest"}'))
    code, out, err = run_with(client, "run", "nope")
    assert code == 125 and out == ""
    # as docker run: the notice, then the pull's error (here the fake daemon's 404)
    assert err == (
        "Unable to find image 'nope:latest' locally\n"
        "corral: Error response from daemon: No such image: nope:latest\n"
    )


def test_rm_reports_each_failure(serve: Any) -> None:
    def handler(req: Request) -> bytes:
        if "missing" in req.path:
            return http("404 Not Found", b'{"message": "No such container: missing"}')
        return http("204 No Content", length=False)

    srv, client = serve(handler)
    code, out, err = run_with(client, "rm", "-f", "a", "missing", "b")
    assert (code, out) == (1, "a\nb\n")
    assert err == "corral: Error response from daemon: No such container: missing\n"
    assert srv.requests[0].target == "/v1.44/containers/a?force=1"


def test_inspect_falls_back_to_image(serve: Any) -> None:
    def handler(req: Request) -> bytes:
        if req.path.startswith("/v1.44/containers/"):
            return http("404 Not Found", b'{"message": "No such container: busybox"}')
        return http("200 OK", b'{"Id": "sha256:1", "RepoTags": ["busybox:latest"]}')

    _, client = serve(handler)
    code, out, _ = run_with(client, "inspect", "busybox")
    assert code == 0
    assert json.loads(out) == [{"Id": "sha256:1", "RepoTags": ["busybox:latest"]}]
    assert out.startswith('[\n    {\n        "Id"')
    assert run_with(client, "inspect", "-f", "{{index .RepoTags 0}}", "busybox")[1] == (
        "busybox:latest\n")


def test_import_sends_tarball_and_prints_id(serve: Any, tmp_path: Path) -> None:
    (tmp_path / "r.tar").write_bytes(b"tar bytes")
    srv, client = serve(lambda r: http("200 OK", b'{"status":"sha256:abc"}\r\n'))
    code, out, _ = run_with(client, "import", "-c", "CMD [\"sh\"]", "-m", "hi",
                            str(tmp_path / "r.tar"), "bb:1.0")
    assert (code, out) == (0, "sha256:abc\n")
    req = srv.requests[0]
    assert req.path == "/v1.44/images/create"
    assert req.query == "fromSrc=-&repo=bb&tag=1.0&message=hi&changes=CMD%20%5B%22sh%22%5D"
    assert req.body == b"tar bytes"


# -- auto-start -------------------------------------------------------------------------

FAKE_DAEMON = """
import os, socket, sys
path, fd = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_UNIX)
s.bind(path)
s.listen()
os.write(fd, b"ready\\n")
os.close(fd)
while True:
    c, _ = s.accept()
    c.recv(65536)
    c.sendall(b"HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\nOK")
    c.close()
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="auto-start requires root")
def test_autostart_waits_for_ready_pipe(tmp_path: Path) -> None:
    sock = tmp_path / "run" / "d.sock"
    script = tmp_path / "fake_daemon.py"
    script.write_text(FAKE_DAEMON)
    stderr = io.StringIO()
    host = f"unix://{sock}"
    # a socket of its own: started only because CORRAL_ROOT names the root
    environ = dict(os.environ, CORRAL_ROOT=str(tmp_path / "root"))
    start_daemon(host, stderr, environ, command=[sys.executable, str(script), str(sock), "{fd}"])
    message = stderr.getvalue()
    pid = int(message.split("(pid ")[1].split(",")[0])
    try:
        assert message == (f"corral: no daemon was running; started one in the background "
                           f"(pid {pid}, log {sock.parent}/corral-daemon.log)\n")
        assert Client(host).request("GET", "/_ping").read() == b"OK"
    finally:
        os.kill(pid, 9)


@pytest.mark.skipif(os.geteuid() != 0, reason="auto-start requires root")
def test_autostart_failure_points_at_log(tmp_path: Path) -> None:
    sock = tmp_path / "d.sock"
    with pytest.raises(CliError) as info:
        start_daemon(f"unix://{sock}", io.StringIO(),
                     dict(os.environ, CORRAL_ROOT=str(tmp_path / "root")),
                     command=[sys.executable, "-c",
                              "import sys; print('cannot mount', file=sys.stderr)"])
    assert f"see {tmp_path}/corral-daemon.log" in info.value.message
    assert "cannot mount" in info.value.message


def test_not_modified_is_success_as_in_docker(serve: Any) -> None:
    """docker's client takes a 304 (stop of a stopped container) as done: name, exit 0."""
    srv, client = serve(lambda r: http("304 Not Modified", length=False))
    assert run_with(client, "stop", "idle") == (0, "idle\n", "")
    assert run_with(client, "start", "idle") == (0, "idle\n", "")
    assert srv.requests[0].path == "/v1.44/containers/idle/stop"
