"""`corral up -d` hands the project to the daemon, which keeps it across its restarts;
`corral daemon --config FILE` takes its settings from a file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import Daemon, assert_nothing_left, cgroup_parent, stop_daemon

PROJECT = "com.docker.compose.project"

KEPT = """\
name: kept
services:
  db:
    image: busybox
    command: [sleep, '1000']
    stop_grace_period: 1s
    restart: always  # started by the engine at boot; web, with no policy, by the keeper
    healthcheck:
      test: [CMD, 'true']
      interval: 1s
  web:
    image: busybox
    command: [sleep, '1000']
    stop_grace_period: 1s
    scale: 2
    depends_on:
      db: {condition: service_healthy}
"""


def projects(client: Any, wait: bool = False) -> list[dict[str, Any]]:
    """The daemon's own projects (`GET /corral/projects`)."""
    api = client.api
    params = {"wait": 1} if wait else {}
    found: list[dict[str, Any]] = api._result(
        api._get(api._url("/corral/projects"), params=params), json=True
    )
    return found


def states(client: Any, project: str) -> dict[str, tuple[str, str]]:
    found = client.containers.list(all=True, filters={"label": f"{PROJECT}={project}"})
    return {c.name: (c.id, c.status) for c in found}


def test_the_daemon_brings_a_handed_over_project_back_after_kill_9_until_down(
    private_daemon: Any, rootfs_tar: Path, tmp_path: Path
) -> None:
    d = private_daemon()
    client = d.client()
    client.api.import_image_from_data(rootfs_tar.read_bytes(), repository="busybox", tag="latest")
    file = tmp_path / "compose.yaml"
    file.write_text(KEPT)

    r = d.cli("up", "-d", "-f", str(file))
    assert r.returncode == 0, r.stderr
    # compose's progress lines, in dependency order: web waited for a healthy db
    lines = [line.strip() for line in r.stderr.splitlines()]
    assert lines.index("Container kept-db-1  Healthy") < lines.index(
        "Container kept-web-1  Started"
    )
    before = states(client, "kept")
    assert {n: s for n, (_, s) in before.items()} == {
        "kept-db-1": "running",
        "kept-web-1": "running",
        "kept-web-2": "running",
    }
    [owned] = projects(client)
    assert (owned["Name"], owned["Status"], owned["ConfigFiles"]) == ("kept", "up", [str(file)])
    client.close()

    d.proc.send_signal(signal.SIGKILL)
    d.proc.wait()
    d2 = private_daemon()
    client = d2.client()
    [owned] = projects(client, wait=True)  # answers once the boot reconcile is over
    assert owned["Status"] == "up", owned
    after = states(client, "kept")
    assert after == {n: (cid, "running") for n, (cid, _) in before.items()}

    r = d2.cli("down", "-f", str(file))
    assert r.returncode == 0, r.stderr
    assert projects(client) == []
    assert states(client, "kept") == {}
    client.close()

    stop_daemon(d2.proc)
    d3 = private_daemon()
    client = d3.client()
    assert projects(client, wait=True) == []
    assert states(client, "kept") == {}
    client.close()


def test_a_failed_up_d_leaves_the_daemon_owning_nothing(
    corral: Daemon, dk: Any, tmp_path: Path
) -> None:
    file = tmp_path / "compose.yaml"
    file.write_text(
        "name: broken\nservices:\n  a:\n    image: nosuch:1\n    pull_policy: never\n"
    )
    r = corral.cli("up", "-d", "-f", str(file))
    assert r.returncode == 1
    assert r.stderr.strip().endswith('service "a": No such image: nosuch:1')
    assert [p["Name"] for p in projects(dk)] == []
    assert dk.containers.list(all=True) == []


def test_a_handover_that_is_not_a_project_is_refused_in_one_line(dk: Any) -> None:
    import docker  # type: ignore[import-untyped]

    api = dk.api
    body = {"Name": "Bad Name", "Model": {"services": {}}, "WorkingDir": "/"}
    with pytest.raises(docker.errors.APIError) as info:
        api._result(api._post_json(api._url("/corral/projects"), data=body))
    assert info.value.status_code == 400
    assert "invalid project name 'Bad Name'" in str(info.value.explanation)
    assert projects(dk) == []


# -- the daemon's config file ----------------------------------------------------------


def test_daemon_settings_come_from_its_config_file_and_flags_override_it(
    tmp_path: Path, rootfs_tar: Path
) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    root, sock, other = tmp_path / "root", tmp_path / "file.sock", tmp_path / "flag.sock"
    conf = tmp_path / "daemon.yaml"
    conf.write_text(
        f"root: {root.name}\n"  # relative: from the file's directory
        f"host: unix://{sock}\n"
        f"cgroup-parent: {cgroup_parent(root)}\n"
        "metrics-addr: ''\n"
        "log-level: debug\n"
        "log-opts: {max-size: 1m, max-file: 2}\n"
    )
    r, w = os.pipe()
    with (tmp_path / "d.log").open("ab") as logf:
        proc = subprocess.Popen(
            [sys.executable, "-m", "supervisor.daemon", "--config", str(conf)]
            + ["--host", f"unix://{other}", "--ready-fd", str(w)],
            stdin=subprocess.DEVNULL,
            stdout=logf,
            stderr=logf,
            pass_fds=(w,),
            env={k: v for k, v in os.environ.items() if not k.startswith("CORRAL_")},
        )
    os.close(w)
    with os.fdopen(r, "rb") as ready:
        assert ready.readline().strip() == b"ready", (tmp_path / "d.log").read_text()
    try:
        d = Daemon(root=root, sock=other, proc=proc, log=tmp_path / "d.log")
        assert not sock.exists()  # --host won over the file's
        assert (root / "corral.db").exists()
        client = d.client()
        client.api.import_image_from_data(rootfs_tar.read_bytes(), repository="busybox")
        c = client.containers.create("busybox", ["true"])
        assert c.attrs["HostConfig"]["LogConfig"] == {
            "Type": "json-file",
            "Config": {"max-size": "1m", "max-file": "2"},
        }
        c.remove()
        client.close()
    finally:
        stop_daemon(proc)
    assert_nothing_left(root)


def test_a_bad_daemon_config_file_names_each_culprit_and_starts_nothing(tmp_path: Path) -> None:
    conf = tmp_path / "daemon.yaml"
    conf.write_text("roots: /x\nmetrics-addr: nope\nlog-opts:\n  max-size: banana\n")
    r = subprocess.run(
        [sys.executable, "-m", "supervisor.daemon", "--config", str(conf)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 1
    assert r.stderr.splitlines() == [
        f"{conf}:1:1: unknown key 'roots' (did you mean 'root'?)",
        f"{conf}:2:15: invalid address 'nope': expected host:port, e.g. 127.0.0.1:9323",
        f"{conf}:4:3: invalid log opt max-size: invalid size: 'banana'",
    ]
    assert list(tmp_path.iterdir()) == [conf]
