"""A container whose start fails (issue 11): removed if auto-remove, waiters answer;
and the exit codes of `run` and `create` when the daemon refuses, as docker 28's.

Docker 28: `docker run --rm IMAGE nosuch` prints `OCI runtime create failed: ...
exec: "nosuch": executable file not found in $PATH: unknown`, exits 127, and leaves
no container; the CLI's `wait?condition=removed`, opened before the start, answers.
"""

from __future__ import annotations

import subprocess
from typing import Any

import docker.errors
import pytest
from conftest import IMAGE, Daemon


def test_docker_run_rm_missing_command_exits_127_and_removes(corral: Daemon) -> None:
    try:
        r = corral.docker("run", "--rm", IMAGE, "nosuch", timeout=30)
    except subprocess.TimeoutExpired:
        raise AssertionError(
            "docker run --rm hung: its wait?condition=removed never answered"
        ) from None
    assert r.returncode == 127, r.stderr
    assert 'exec: "nosuch": executable file not found in $PATH' in r.stderr
    assert corral.docker("ps", "-aq").stdout == ""


def test_docker_py_auto_remove_raises_and_removes(dk: Any) -> None:
    with pytest.raises(docker.errors.APIError) as info:
        dk.containers.run(IMAGE, "nosuch", auto_remove=True)
    assert "executable file not found" in str(info.value)
    assert dk.containers.list(all=True) == []


@pytest.mark.parametrize("condition", ["removed", "next-exit", "not-running"])
def test_waiters_of_a_failed_auto_remove_start_answer(dk: Any, condition: str) -> None:
    c = dk.api.create_container(IMAGE, "nosuch", host_config=dk.api.create_host_config(
        auto_remove=True))
    waiter = dk.api._post(dk.api._url("/containers/{0}/wait", c["Id"]),
                          params={"condition": condition}, stream=True, timeout=30)
    with pytest.raises(docker.errors.APIError):
        dk.api.start(c["Id"])
    assert dk.containers.list(all=True) == []
    result = waiter.json()
    assert result["StatusCode"] == (0 if condition == "not-running" else 127)


# --- the corral CLI's exit codes, as the docker CLI 28 computes them ---------------


@pytest.mark.parametrize("tool", ["docker", "corral"])
def test_run_create_error_naming_a_missing_file_is_127(corral: Daemon, tool: str) -> None:
    # docker run maps the create's error like the start's: "no such file" is 127
    args = ("run", "--device", "/dev/nosuch", IMAGE, "true")
    r = corral.docker(*args) if tool == "docker" else corral.cli(*args)
    assert r.returncode == 127, r.stderr
    assert '"/dev/nosuch": no such file or directory' in r.stderr
    assert corral.cli("ps", "-aq").stdout == ""


@pytest.mark.parametrize("tool", ["docker", "corral"])
@pytest.mark.parametrize("flag", [
    ("--device", "/dev/nosuch"), ("--mount", "type=bind,src=/nosuch,dst=/x"),
])
def test_create_refused_by_the_daemon_exits_1(
    corral: Daemon, tool: str, flag: tuple[str, str]
) -> None:
    # docker create returns the daemon's error as is: exit 1, not run's 125/127
    args = ("create", *flag, IMAGE, "true")
    r = corral.docker(*args) if tool == "docker" else corral.cli(*args)
    assert r.returncode == 1, r.stderr
    assert "/nosuch" in r.stderr
    assert corral.cli("ps", "-aq").stdout == ""
