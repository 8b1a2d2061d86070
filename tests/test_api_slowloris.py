"""Half-sent requests against a real daemon (issue 12, item 6): 500 incomplete request
heads are all closed by the daemon once `api-header-timeout` (set in daemon.yaml)
passes, an idle keep-alive connection after `api-idle-timeout`, while `logs -f` and
`events` streams opened before them stay open and keep delivering."""

from __future__ import annotations

import json
import selectors
import socket
import time
from pathlib import Path
from typing import Any

import pytest

HALF_OPEN = 500
BOUND = 120.0  # seconds: how long the test waits for the daemon before it fails


def connect(sock: Path) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(str(sock))
    return s


def read_until(s: socket.socket, needle: bytes, timeout: float = BOUND) -> bytes:
    s.settimeout(timeout)
    data = b""
    while needle not in data:
        chunk = s.recv(65536)
        assert chunk, f"closed before {needle!r}: {data[-300:]!r}"
        data += chunk
    return data


def read_to_eof(s: socket.socket, timeout: float = BOUND) -> bytes:
    s.settimeout(timeout)
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    return data


def wait_all_closed(socks: list[socket.socket]) -> dict[socket.socket, bytes]:
    """Read every socket until the daemon closes it; what each received."""
    sel = selectors.DefaultSelector()
    got: dict[socket.socket, bytes] = {}
    for s in socks:
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
        got[s] = b""
    open_ = set(socks)
    deadline = time.monotonic() + BOUND
    while open_:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"{len(open_)} of {len(socks)} half-sent heads still open"
        for key, _ in sel.select(remaining):
            s = key.fileobj
            assert isinstance(s, socket.socket)
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                chunk = b""
            if chunk:
                got[s] += chunk
            else:
                sel.unregister(s)
                open_.discard(s)
    sel.close()
    return got


def test_half_sent_heads_are_closed_and_streams_are_not(
    private_daemon: Any, rootfs_tar: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "daemon.yaml"
    config.write_text(
        "api-header-timeout: 1s\napi-idle-timeout: 2s\napi-max-client-connections: 1000\n"
    )
    monkeypatch.setenv("CORRAL_CONFIG", str(config))
    d = private_daemon()
    client = d.client()
    with rootfs_tar.open("rb") as f:
        client.api.import_image_from_data(f.read(), repository="busybox", tag="latest")
    script = "echo first; while [ ! -e /tmp/go ]; do sleep 0.1; done; echo second"
    c = client.containers.run("busybox:latest", ["sh", "-c", script], detach=True)

    logs = connect(d.sock)
    logs.sendall(
        f"GET /v1.44/containers/{c.id}/logs?follow=1&stdout=1 HTTP/1.1\r\nHost: d\r\n\r\n".encode()
    )
    read_until(logs, b"first")
    events = connect(d.sock)
    events.sendall(b"GET /v1.44/events HTTP/1.1\r\nHost: d\r\n\r\n")
    read_until(events, b"\r\n\r\n")

    half = [connect(d.sock) for _ in range(HALF_OPEN)]
    for s in half:
        s.sendall(b"GET /v1.44/containers/json HTTP/1.1\r\nHost: d\r\nX-Slow: ")
    idle = connect(d.sock)
    idle.sendall(b"GET /_ping HTTP/1.1\r\nHost: d\r\n\r\n")
    assert read_until(idle, b"OK").startswith(b"HTTP/1.1 200")

    answers = wait_all_closed(half)
    assert len(answers) == HALF_OPEN
    statuses = {a.split(b" ", 2)[1] for a in answers.values()}
    assert statuses == {b"408"}, statuses
    assert read_to_eof(idle) == b""  # idle keep-alive: closed without an answer

    # the streams opened before them outlived both timeouts and still deliver
    c.exec_run(["touch", "/tmp/go"])
    read_until(logs, b"second")
    assert b'"exec_start' in read_until(events, b'"exec_start')
    for s in (logs, events, *half):
        s.close()
    assert json.loads(json.dumps(client.api.containers(all=True)))  # still serving
    client.close()
