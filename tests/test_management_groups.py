"""`corral container|image|volume|network --help` as docker 28's, word for word, and
every subcommand they list answers its own `--help` (none missing)."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

GROUPS = ("container", "image", "volume", "network")


def corral(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "supervisor", *args], capture_output=True,
                          text=True, timeout=60, env={"CORRAL_NO_AUTOSTART": "1",
                                                      "PATH": "/usr/bin:/bin"})  # fmt: skip


def subcommands(help_text: str) -> list[str]:
    lines = help_text.split("Commands:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    return [line.split()[0] for line in lines]


@pytest.mark.parametrize("group", GROUPS)
def test_group_help_is_dockers(group: str) -> None:
    if shutil.which("docker") is None:
        pytest.skip("docker CLI not installed")
    docker = subprocess.run(["docker", group, "--help"], capture_output=True, text=True,
                            check=True).stdout  # fmt: skip
    mine = corral(group, "--help")
    assert mine.returncode == 0
    assert mine.stdout == docker.replace("docker", "corral")


@pytest.mark.parametrize("group", GROUPS)
def test_every_listed_subcommand_answers(group: str) -> None:
    listed = subcommands(corral(group, "--help").stdout)
    assert listed
    for sub in listed:
        if (group, sub) == ("volume", "update"):
            continue
        r = corral(group, sub, "--help")
        assert r.returncode == 0, (group, sub, r.stderr)
        assert "Usage:" in r.stdout, (group, sub)


def test_volume_update_is_refused_by_name() -> None:
    r = corral("volume", "update", "data")
    assert r.returncode == 1
    assert "volume update is for cluster volumes (swarm), which corral does not run" in r.stderr
