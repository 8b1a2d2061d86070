"""`history --format/--no-trunc/-H/-q/--platform`, side by side with the docker 28 CLI
on one daemon (docker's historyContext: ID, CreatedSince, CreatedAt, CreatedBy, Size,
Comment; the CREATED column ticks with the clock, so `-H` tables are compared without
it)."""

from __future__ import annotations

import os

import pytest
from conftest import Daemon

IMAGE = "busybox:latest"


@pytest.fixture
def committed(corral: Daemon) -> str:
    """An image with a two-entry history and a comment."""
    r = corral.cli("run", "--name", "hist", IMAGE, "sh", "-c", "echo x > /made")
    assert r.returncode == 0, r.stderr
    r = corral.cli("commit", "-m", "a\tcomment", "hist", "hist:one")
    assert r.returncode == 0, r.stderr
    return "hist:one"


@pytest.mark.parametrize(
    "args",
    [
        ["-H=false"],
        ["--no-trunc", "-H=false"],
        ["-q"],
        ["-q", "--no-trunc"],
        ["--format", "{{.ID}}|{{.CreatedAt}}|{{.Size}}|{{.Comment}}"],
        ["--format", "table {{.ID}}\t{{.CreatedBy}}\t{{.Comment}}"],
        ["--format", "json", "-H=false"],
        ["--format", "{{.CreatedSince}}", "-H=false"],
        ["-q", "--format", "{{.Size}}"],
        ["--format", "{{.Nope}}"],
    ],
)
def test_history_as_docker_prints_it(corral: Daemon, committed: str, args: list[str]) -> None:
    docker = corral.docker("history", *args, committed)
    mine = corral.cli("history", *args, committed)
    assert (mine.returncode, mine.stdout) == (docker.returncode, docker.stdout)
    if docker.returncode:
        assert mine.stderr.removeprefix("corral: ").strip() == docker.stderr.replace(
            "docker", "corral").removeprefix("corral: ").strip()  # fmt: skip


def test_history_human_table_headers_and_columns(corral: Daemon, committed: str) -> None:
    docker = corral.docker("history", committed).stdout.splitlines()
    mine = corral.cli("history", committed).stdout.splitlines()
    assert mine[0].split() == docker[0].split() == [
        "IMAGE", "CREATED", "CREATED", "BY", "SIZE", "COMMENT"]  # fmt: skip
    assert [row.split()[0] for row in mine] == [row.split()[0] for row in docker]
    assert [row.split()[-1] for row in mine[1:]] == [row.split()[-1] for row in docker[1:]]


def test_history_platform(corral: Daemon, committed: str) -> None:
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)
    r = corral.cli("history", "-q", "--platform", f"linux/{arch}", committed)
    assert r.returncode == 0 and r.stdout
    other = "arm64" if arch == "amd64" else "amd64"
    r = corral.cli("history", "--platform", f"linux/{other}", committed)
    assert r.returncode == 1 and f"does not match the specified platform (linux/{other})" in (
        r.stderr)  # fmt: skip
