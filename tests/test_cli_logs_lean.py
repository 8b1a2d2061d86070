"""`corral logs` on its lean path (`cli/logslean`): the same bytes, streams and exit
codes as the full CLI, for every form it takes; every other form is the full CLI's."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import IMAGE, Daemon

from supervisor.api import client
from supervisor.cli import logslean

BASE = "/v1.44/containers/c1/logs?stdout=1&stderr=1"


@pytest.mark.parametrize(
    ("argv", "target"),
    [
        (["c1"], f"{BASE}&tail=all"),
        (["--tail", "100", "c1"], f"{BASE}&tail=100"),
        (["-n", "5", "c1"], f"{BASE}&tail=5"),
        (["-n5", "c1"], f"{BASE}&tail=5"),
        (["c1", "--tail=7"], f"{BASE}&tail=7"),
        (["-f", "-t", "c1"], f"{BASE}&follow=1&timestamps=1&tail=all"),
        (["--details", "--follow", "c1"], f"{BASE}&follow=1&details=1&tail=all"),
    ],
)
def test_the_forms_it_takes(argv: list[str], target: str) -> None:
    assert logslean.query(argv) == target


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["c1", "c2"],
        ["--since", "5m", "c1"],
        ["--until=1", "c1"],
        ["-ft", "c1"],
        ["--follow=false", "c1"],
        ["-h"],
        ["--", "c1"],
        ["--tail"],
        ["--tail", "x y", "c1"],
        ["a/b"],
        ["-n", "", "c1"],
    ],
)
def test_other_forms_are_the_full_clis(argv: list[str]) -> None:
    assert logslean.query(argv) is None


def test_it_talks_to_the_daemon_the_full_cli_talks_to() -> None:
    assert logslean.DEFAULT_HOST == client.DEFAULT_HOST
    assert f"/v{client.API_VERSION}" == logslean.API_PREFIX
    assert logslean.socket_path("unix:///run/x.sock") == client.socket_path("unix:///run/x.sock")
    assert logslean.socket_path("/run/x.sock") == "/run/x.sock"
    assert logslean.socket_path("tcp://1.2.3.4:2375") is None


def _corral(daemon: Daemon, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "supervisor", *args],
        env=daemon.env(),
        capture_output=True,
        timeout=60,
        check=False,
    )


def test_the_lean_path_prints_what_the_full_cli_prints(dk: Any, daemon: Daemon) -> None:
    """Each form against the same form made to go the full way (`--follow=false` is
    not a form the lean path reads): stdout, stderr and exit code alike; a `-t`
    container's raw stream too; and the lean path loads none of the full CLI."""
    script = "i=0; while [ $i -lt 3000 ]; do echo out $i; i=$((i+1)); done; echo err >&2"
    c = dk.containers.run(IMAGE, ["sh", "-c", script], detach=True)
    t = dk.containers.run(IMAGE, ["sh", "-c", "echo tty; echo tty-err >&2"], detach=True, tty=True)
    try:
        for x in (c, t):
            assert x.wait(timeout=60)["StatusCode"] == 0
        for x in (c, t):
            for form in ([], ["--tail", "10"], ["-n", "0"], ["-t"], ["-f"], ["--details"]):
                lean = _corral(daemon, "logs", *form, x.id)
                full = _corral(daemon, "logs", "--follow=false", *form, x.id)
                assert lean.returncode == full.returncode == 0, (form, lean.stderr)
                assert (lean.stdout, lean.stderr) == (full.stdout, full.stderr), form
        assert _corral(daemon, "logs", c.id).stderr == b"err\n"
        last = _corral(daemon, "logs", "--tail", "3", c.id)  # both streams count
        assert last.stdout.endswith(b"out 2998\nout 2999\n")
        assert last.stdout.count(b"\n") + last.stderr.count(b"\n") == 3
        assert _corral(daemon, "logs", t.id).stdout == b"tty\r\ntty-err\r\n"
        flagged = _corral(daemon, "-H", daemon.host, "logs", "--tail", "3", c.id)
        assert (flagged.stdout, flagged.stderr) == (last.stdout, last.stderr)
        imported = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "supervisor", "logs", "-n", "3", c.id],
            env=daemon.env(), capture_output=True, timeout=60, check=True,
        )  # fmt: skip
        assert imported.stdout == last.stdout
        assert b"supervisor.cli.context" not in imported.stderr
        assert b"supervisor.api.client" not in imported.stderr
    finally:
        c.remove(force=True)
        t.remove(force=True)


def test_errors_are_the_full_clis(daemon: Daemon) -> None:
    r = _corral(daemon, "logs", "--tail", "5", "no-such-container")
    assert r.returncode == 1
    assert r.stderr == b"corral: Error response from daemon: No such container: no-such-container\n"
    assert r.stdout == b""


def test_the_launcher_answers_logs_as_the_full_cli(dk: Any, daemon: Daemon) -> None:
    """scripts/setup's `.venv/bin/corral` takes `logs` to the lean path before the CLI
    loads and ends the process there (`logslean.main`): the same bytes, streams and
    exit codes as the full CLI, a closed stdout (141) and an error that goes the full
    way (the daemon's 404) too."""
    launcher = Path(sys.executable).parent / "corral"
    if not launcher.exists():
        pytest.skip("no launcher: scripts/setup writes it")
    c = dk.containers.run(IMAGE, ["sh", "-c", "seq 1 20000; echo err >&2"], detach=True)
    try:
        assert c.wait(timeout=60)["StatusCode"] == 0
        for form in (["--tail", "100"], ["-n", "0"], ["-t", "--tail", "2"], []):
            lean = subprocess.run([str(launcher), "logs", *form, c.id], env=daemon.env(),
                                  capture_output=True, timeout=60, check=False)  # fmt: skip
            full = _corral(daemon, "logs", "--follow=false", *form, c.id)
            assert lean.returncode == full.returncode == 0, (form, lean.stderr)
            assert (lean.stdout, lean.stderr) == (full.stdout, full.stderr), form
        gone = subprocess.run([str(launcher), "logs", "-n", "5", "no-such-container"],
                              env=daemon.env(), capture_output=True, timeout=60, check=False)
        assert (gone.returncode, gone.stdout) == (1, b"")
        assert gone.stderr == (
            b"corral: Error response from daemon: No such container: no-such-container\n")
        r, w = os.pipe()
        os.close(r)  # nobody reads: the first write fails (EPIPE)
        try:
            closed = subprocess.run([str(launcher), "logs", c.id], env=daemon.env(), stdout=w,
                                    stderr=subprocess.PIPE, timeout=60, check=False)
        finally:
            os.close(w)
        assert (closed.returncode, closed.stderr) == (141, b"")
    finally:
        c.remove(force=True)
