"""COPY/ADD owners and modes as Docker's classic builder sets them.

`--chown=1000` is 1000:1000 (a user alone names the group too, moby's
parseChownFlag), a name is looked up in the image's /etc/passwd and /etc/group, and a
setuid file keeps its bit (Docker chowns before it chmods: a chown clears setuid).
Checked through `corral build` and the real `DOCKER_BUILDKIT=0 docker build`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import Daemon

DOCKERFILE = (
    "FROM busybox\n"
    "COPY --chown=1000 plain /n/plain\n"
    "COPY --chown=daemon plain /n/named\n"
    "COPY --chown=daemon:1234 plain /n/mixed\n"
    "COPY suid /n/suid\n"
    "COPY --chown=1000:1000 suid /n/suid-owned\n"
    "ADD --chown=1000 suid /n/suid-added\n"
)
EXPECTED = [
    "1000:1000 644 /n/plain",
    "1:1 644 /n/named",  # busybox: user daemon is uid 1, group daemon gid 1
    "1:1234 644 /n/mixed",
    "0:0 4755 /n/suid",
    "1000:1000 4755 /n/suid-owned",
    "1000:1000 4755 /n/suid-added",
]


def context(tmp_path: Path, dockerfile: str) -> Path:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(dockerfile)
    (ctx / "plain").write_text("p\n")
    os.chmod(ctx / "plain", 0o644)
    (ctx / "suid").write_text("#!/bin/sh\nid -u\n")
    os.chmod(ctx / "suid", 0o4755)
    return ctx


@pytest.mark.parametrize("client", ["corral", "docker"])
def test_copy_and_add_owners_and_setuid_as_docker(
    corral: Daemon, tmp_path: Path, client: str
) -> None:
    ctx = context(tmp_path, DOCKERFILE)
    tag = f"owners-{client}"
    if client == "corral":
        r = corral.cli("build", "-q", "-t", tag, str(ctx), timeout=120)
    else:
        if shutil.which("docker") is None:
            pytest.skip("docker CLI not installed")
        r = subprocess.run(["docker", "build", "-q", "-t", tag, str(ctx)],
                           env=corral.env(DOCKER_BUILDKIT="0"), capture_output=True, text=True,
                           timeout=120)  # fmt: skip
    assert r.returncode == 0, r.stderr
    out = corral.cli("run", "--rm", tag, "sh", "-c", "stat -c '%u:%g %a %n' /n/*")
    assert out.returncode == 0, out.stderr
    assert sorted(out.stdout.splitlines()) == sorted(EXPECTED)


def test_chown_to_a_group_the_image_lacks_is_dockers_error(corral: Daemon, tmp_path: Path) -> None:
    """`--chown=nobody` also names the group nobody; busybox has only `nogroup`."""
    ctx = context(tmp_path, "FROM busybox\nCOPY --chown=nobody plain /p\n")
    r = corral.cli("build", "-q", str(ctx), timeout=120)
    assert r.returncode == 1
    assert "can't find gid for group nobody: no such group: nobody" in r.stderr, r.stderr


def test_chown_ids_pure() -> None:
    from supervisor.engine.users import GroupEntry, PasswdEntry, chown_ids
    from supervisor.errors import CorralError

    passwd = [PasswdEntry("app", 1500, 1600, "/home/app")]
    groups = [GroupEntry("app", 1700, ()), GroupEntry("staff", 50, ())]
    assert chown_ids("1000", passwd, groups) == (1000, 1000)
    assert chown_ids("app", passwd, groups) == (1500, 1700)  # the group app, not 1600
    assert chown_ids("app:staff", passwd, groups) == (1500, 50)
    assert chown_ids("7:8", [], []) == (7, 8)
    with pytest.raises(CorralError, match="invalid chown string format: a:b:c"):
        chown_ids("a:b:c", passwd, groups)
    with pytest.raises(CorralError, match="can't find uid for user bob: no such user: bob"):
        chown_ids("bob", passwd, groups)
