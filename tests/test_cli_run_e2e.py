"""The `corral` CLI against the real daemon: the README tour, exit codes, auto-start."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from conftest import Daemon, assert_nothing_left

IMAGE = "busybox:latest"


def test_tour(corral: Daemon) -> None:
    images = corral.cli("images")
    assert images.returncode == 0
    assert images.stdout.split("\n")[0].split() == [
        "REPOSITORY",
        "TAG",
        "IMAGE",
        "ID",
        "CREATED",
        "SIZE",
    ]
    assert re.search(r"^busybox\s+latest\s+[0-9a-f]{12}\s+.*\s[\d.]+MB$", images.stdout, re.M)

    run = corral.cli("run", "-d", "--name", "web1", IMAGE, "httpd", "-f", "-p", "3000")
    assert run.returncode == 0 and re.fullmatch(r"[0-9a-f]{64}\n", run.stdout)

    hi = corral.cli("run", "--rm", IMAGE, "echo", "hi")
    assert (hi.returncode, hi.stdout) == (0, "hi\n")

    ps = corral.cli("ps")
    assert "web1" in ps.stdout and "Up " in ps.stdout
    assert corral.cli("exec", "web1", "sh", "-c", "echo layer > /tmp/f").returncode == 0
    assert corral.cli("stop", "-t", "1", "web1").stdout == "web1\n"
    assert "web1" not in corral.cli("ps").stdout
    assert re.search(r"Exited \(137\).*web1", corral.cli("ps", "-a").stdout)
    assert corral.cli("start", "web1").returncode == 0
    assert corral.cli("exec", "web1", "cat", "/tmp/f").stdout == "layer\n"

    ls = corral.cli("exec", "web1", "ls", "/")
    assert "bin" in ls.stdout.split()
    assert corral.cli("exec", "web1", "sh", "-c", "exit 4").returncode == 4

    commit = corral.cli("commit", "web1", "mine:v1")
    assert commit.stdout.startswith("sha256:")
    assert corral.cli("run", "--rm", "mine:v1", "cat", "/tmp/f").stdout == "layer\n"

    assert corral.cli("volume", "create", "data").stdout == "data\n"
    assert (
        corral.cli(
            "run", "--rm", "-v", "data:/data", IMAGE, "sh", "-c", "echo x > /data/f"
        ).returncode
        == 0
    )
    assert corral.cli("run", "--rm", "-v", "data:/data", IMAGE, "cat", "/data/f").stdout == "x\n"

    assert corral.cli("rm", "-f", "web1").stdout == "web1\n"
    rmi = corral.cli("rmi", "mine:v1")
    assert rmi.stdout.startswith("Untagged: mine:v1\nDeleted: sha256:")
    inspect = corral.cli("inspect", "-f", "{{.RepoTags}}", "busybox")
    assert inspect.stdout == "[busybox:latest]\n"


def test_run_exit_code_and_streams(corral: Daemon) -> None:
    r = corral.cli("run", "--rm", IMAGE, "sh", "-c", "echo out; echo err >&2; exit 3")
    assert (r.returncode, r.stdout, r.stderr) == (3, "out\n", "err\n")


def test_run_missing_command_is_127_and_leaves_nothing(corral: Daemon) -> None:
    before = sorted(p.name for p in (corral.root / "containers").iterdir())
    r = corral.cli("run", IMAGE, "/no/such/cmd")
    assert r.returncode == 127
    assert "/no/such/cmd" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    # Docker's CLI would leave a "Created" container; corral's run removes what it made.
    assert corral.cli("ps", "-aq").stdout == ""
    assert sorted(p.name for p in (corral.root / "containers").iterdir()) == before


def test_run_not_executable_is_126(corral: Daemon) -> None:
    r = corral.cli("run", IMAGE, "/etc/passwd")
    assert r.returncode == 126
    assert corral.cli("ps", "-aq").stdout == ""


def test_unknown_image_is_125(corral: Daemon) -> None:
    r = corral.cli("run", "nosuch:image", "true")
    assert r.returncode == 125
    assert "nosuch:image" in r.stderr


def test_bad_flag_is_125_and_sends_nothing(corral: Daemon) -> None:
    r = corral.cli("run", "--memory", "12q", IMAGE, "true")
    assert r.returncode == 125
    assert "12q" in r.stderr
    assert corral.cli("ps", "-aq").stdout == ""


def test_logs_follow_and_tail(corral: Daemon) -> None:
    corral.cli(
        "run", "-d", "--name", "talker", IMAGE, "sh", "-c", "for i in 1 2 3 4 5; do echo l$i; done"
    )
    follow = corral.cli("logs", "-f", "talker")  # ends when the container exits
    assert follow.stdout == "l1\nl2\nl3\nl4\nl5\n"
    assert corral.cli("logs", "--tail", "2", "talker").stdout == "l4\nl5\n"
    stamped = corral.cli("logs", "-t", "talker").stdout.splitlines()
    assert all(re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z l\d$", s) for s in stamped)


def test_interactive_stdin(corral: Daemon) -> None:
    r = corral.cli("run", "-i", "--rm", IMAGE, "cat", input=b"piped\n")
    assert (r.returncode, r.stdout) == (0, "piped\n")


def test_cli_starts_a_daemon_when_none_answers(tmp_path: Path, daemon: Daemon) -> None:
    sock = tmp_path / "auto" / "corral.sock"
    env = dict(os.environ, CORRAL_HOST=f"unix://{sock}", CORRAL_ROOT=str(tmp_path / "root"))
    r = subprocess.run(
        [sys.executable, "-m", "supervisor", "ps"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    try:
        assert r.returncode == 0, r.stderr
        (line,) = r.stderr.splitlines()
        assert "started one in the background" in line
        assert r.stdout.split() == [
            "CONTAINER",
            "ID",
            "IMAGE",
            "COMMAND",
            "CREATED",
            "STATUS",
            "PORTS",
            "NAMES",
        ]
        # The socket is root-only.
        assert sock.stat().st_mode & 0o777 == 0o600
        # A second command finds it and says nothing.
        again = subprocess.run(
            [sys.executable, "-m", "supervisor", "ps", "-q"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert (again.returncode, again.stderr) == (0, "")
    finally:
        m = re.search(r"pid (\d+)", r.stderr)
        if m:
            pid = int(m.group(1))
            os.kill(pid, signal.SIGTERM)
            _wait_gone(pid)
    assert_nothing_left(tmp_path / "root")


def _wait_gone(pid: int) -> None:
    """Wait for a process that is not our child to exit, via its pidfd."""
    import select

    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        select.select([fd], [], [], 30)
    finally:
        os.close(fd)


def test_network_flags_alias_ip_and_hosts(corral: Daemon) -> None:
    assert corral.cli("network", "create", "--subnet", "10.213.0.0/24", "flagnet").returncode == 0
    try:
        srv = corral.cli(
            "run",
            "-d",
            "--name",
            "srv",
            "--network",
            "flagnet",
            "--ip",
            "10.213.0.50",
            "--network-alias",
            "db",
            IMAGE,
            "sleep",
            "1d",
        )
        assert srv.returncode == 0, srv.stderr
        r = corral.cli(
            "run",
            "--rm",
            "--network",
            "flagnet",
            "--add-host",
            "extra:10.9.9.9",
            "--dns",
            "10.213.0.1",
            IMAGE,
            "sh",
            "-c",
            "grep -w db /etc/hosts; grep -w extra /etc/hosts; grep nameserver /etc/resolv.conf",
        )
        assert r.returncode == 0, r.stderr
        lines = r.stdout.splitlines()
        assert lines[0].split()[0] == "10.213.0.50"
        assert lines[1].split() == ["10.9.9.9", "extra"]
        assert lines[2] == "nameserver 10.213.0.1"
        bad = corral.cli("run", "--rm", "--ip", "10.213.0.9", IMAGE, "true")
        assert bad.returncode == 125 and "--ip" in bad.stderr
    finally:
        corral.cli("rm", "-f", "srv")
        corral.cli("network", "rm", "flagnet")


def test_log_opts_update_and_events_json(corral: Daemon) -> None:
    import json
    import time

    r = corral.cli(
        "run",
        "-d",
        "--name",
        "rot",
        "--log-opt",
        "max-size=1k",
        "--log-opt",
        "max-file=2",
        IMAGE,
        "sh",
        "-c",
        "for i in $(seq 1 200); do echo $i; done",
    )
    assert r.returncode == 0, r.stderr
    assert corral.cli("wait", "rot").stdout == "0\n"
    logs = sorted(p.name for p in (corral.root / "containers").glob("*/*-json.log*"))
    assert len(logs) == 2 and logs[1].endswith(".log.1")
    assert corral.cli("logs", "--tail", "1", "rot").stdout == "200\n"
    bad = corral.cli("run", "--log-opt", "nonsense", IMAGE, "true")
    assert bad.returncode == 125 and "nonsense" in bad.stderr
    up = corral.cli("update", "--restart", "on-failure:2", "--pids-limit", "64", "rot")
    assert up.returncode == 0, up.stderr
    out = corral.cli("inspect", "-f", "{{json .HostConfig.RestartPolicy}}", "rot").stdout
    assert json.loads(out) == {"Name": "on-failure", "MaximumRetryCount": 2}
    ev = corral.cli(
        "events",
        "--since",
        str(time.time() - 60),
        "--until",
        "0s",
        "--format",
        "json",
        "-f",
        "container=rot",
        "-f",
        "event=update",
    )
    (line,) = ev.stdout.splitlines()
    assert json.loads(line)["Action"] == "update"
