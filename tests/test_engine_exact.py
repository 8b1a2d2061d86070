"""Where corral used to differ from Docker, as a user meets it (issue 11).

Each test drives the `corral` CLI, and where it is cheap the real `docker` CLI or
docker-py, against the session daemon, and asserts what Docker 28 does.
"""

from __future__ import annotations

import io
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker.errors
import pytest
from conftest import IMAGE, Daemon

NOPASSWD = "nopasswd:latest"


# --- images without /etc/passwd -----------------------------------------------------


@pytest.fixture
def nopasswd(corral: Daemon, dk: Any, rootfs_tar: Path) -> Iterator[str]:
    """busybox with no /etc at all, as `FROM scratch` + a static binary gives."""
    buf = io.BytesIO()
    with tarfile.open(rootfs_tar) as src, tarfile.open(fileobj=buf, mode="w") as dst:
        for member in src.getmembers():
            if member.name == "etc" or member.name.startswith("etc/"):
                continue
            dst.addfile(member, src.extractfile(member) if member.isfile() else None)
    dk.api.import_image_from_data(buf.getvalue(), repository="nopasswd", tag="latest")
    yield NOPASSWD


def ids(corral: Daemon, *args: str) -> tuple[int, str, str]:
    r = corral.cli(*args, "sh", "-c", 'echo "$(id -u):$(id -g)"')
    return r.returncode, r.stdout, r.stderr


def test_image_without_passwd_runs_as_root(corral: Daemon, nopasswd: str) -> None:
    assert ids(corral, "run", "--rm", nopasswd) == (0, "0:0\n", "")
    # A numeric user not in any passwd runs as that uid, group 0 unless given.
    assert ids(corral, "run", "--rm", "-u", "1000", nopasswd) == (0, "1000:0\n", "")
    assert ids(corral, "run", "--rm", "-u", "1000:1000", nopasswd) == (0, "1000:1000\n", "")
    # Only a user *name* that no passwd holds is an error, in Docker's words.
    r = corral.cli("run", "--rm", "-u", "root", nopasswd, "true")
    assert r.returncode == 125
    assert "unable to find user root: no matching entries in passwd file" in r.stderr
    r = corral.cli("run", "--rm", "-u", "0:wheel", nopasswd, "true")
    assert r.returncode == 125
    assert "unable to find group wheel: no matching entries in group file" in r.stderr
    assert corral.cli("ps", "-aq").stdout == ""


def test_exec_in_image_without_passwd(corral: Daemon, nopasswd: str) -> None:
    cid = corral.cli("run", "-d", nopasswd, "sleep", "1d", check=True).stdout.strip()
    assert ids(corral, "exec", cid) == (0, "0:0\n", "")
    assert ids(corral, "exec", "-u", "1000", cid) == (0, "1000:0\n", "")
    assert ids(corral, "exec", "-u", "1000:1000", cid) == (0, "1000:1000\n", "")


def test_build_and_healthcheck_without_passwd(
    corral: Daemon, dk: Any, nopasswd: str, tmp_path: Path
) -> None:
    (tmp_path / "Dockerfile").write_text(
        f"FROM {nopasswd}\n"
        'RUN echo "$(id -u):$(id -g)" > /tmp/ids && chmod 666 /tmp/ids\n'
        "USER 1000\n"
        'RUN echo "$(id -u):$(id -g)" >> /tmp/ids\n'
        'HEALTHCHECK --interval=1s CMD [ "$(id -u)" = 1000 ]\n'
    )
    r = corral.cli("build", "-q", "-t", "nopasswd:built", str(tmp_path))
    assert r.returncode == 0, r.stderr
    out = corral.cli("run", "--rm", "nopasswd:built", "cat", "/tmp/ids")
    assert (out.returncode, out.stdout) == (0, "0:0\n1000:0\n"), out.stderr
    # The probe runs as the image's user too: the container turns healthy.
    c = dk.containers.run("nopasswd:built", ["sleep", "1d"], detach=True)
    events = dk.events(decode=True, until=time.time() + 60,
                       filters={"container": c.id, "event": "health_status"})  # fmt: skip
    try:
        first = next(iter(events), {"status": "no health_status event in 60 s"})
    finally:
        events.close()
    assert first["status"] == "health_status: healthy", first


# --- kill answers after the exit ----------------------------------------------------


def test_kill_returns_after_the_container_exited(corral: Daemon, dk: Any) -> None:
    for _ in range(5):
        c = dk.containers.run(IMAGE, ["sleep", "1d"], detach=True)
        c.kill()
        c.reload()
        assert (c.attrs["State"]["Running"], c.attrs["State"]["ExitCode"]) == (False, 137)
        c.remove()
    cid = corral.cli("run", "-d", IMAGE, "sleep", "1d", check=True).stdout.strip()
    assert corral.cli("kill", cid).stdout == f"{cid}\n"
    state = corral.cli("inspect", "-f", "{{.State.Running}} {{.State.ExitCode}}", cid)
    assert state.stdout == "false 137\n"


    # Docker waits only for SIGKILL: a TERM the init ignores (pid 1, no handler) returns.
    c = dk.containers.run(IMAGE, ["sleep", "1d"], detach=True)
    c.kill("SIGTERM")
    c.reload()
    assert c.attrs["State"]["Running"] is True


def test_rm_force_answers_after_the_exit(corral: Daemon, dk: Any) -> None:
    for _ in range(3):
        c = dk.containers.run(IMAGE, ["sleep", "1d"], detach=True)
        since = int(time.time()) - 1
        c.remove(force=True)
        with pytest.raises(docker.errors.NotFound):
            dk.api.inspect_container(c.id)
        until = int(time.time()) + 1
        seen = [
            (e["Action"], e["Actor"]["Attributes"].get("exitCode"))
            for e in dk.events(since=since, until=until, decode=True, filters={"container": c.id})
            if e["Action"] not in ("create", "start")
        ]
        assert seen == [("kill", None), ("die", "137"), ("destroy", None)], seen


# --- commit of a container that is exiting ------------------------------------------


def test_commit_while_the_container_exits(corral: Daemon, dk: Any) -> None:
    """pause=true applies only while the container runs; an exit in between is fine."""
    for i in range(10):
        c = dk.containers.run(IMAGE, ["touch", f"/x{i}"], detach=True)
        c.commit(f"exiting:{i}")  # raised 500 "container not running" before
    c.wait()
    c.commit("exited:latest")
    assert dk.containers.run("exited:latest", ["ls", "/x9"], remove=True) == b"/x9\n"


# --- a failed exec ------------------------------------------------------------------


def test_failed_exec_is_an_oci_runtime_error(corral: Daemon, dk: Any) -> None:
    cid = corral.cli("run", "-d", IMAGE, "sleep", "1d", check=True).stdout.strip()
    cases = [
        ([cid, "nosuch"], 127, 'exec: "nosuch": executable file not found in $PATH'),
        (["-w", "/nowhere", cid, "true"], 127, "/nowhere"),
        ([cid, "/etc/passwd"], 126, "permission denied"),
    ]
    for args, code, detail in cases:
        for cli in (corral.cli, corral.docker):
            r = cli("exec", *args)
            assert r.returncode == code, (args, r)
            assert r.stdout.startswith("OCI runtime exec failed: "), (args, r)
            assert detail in r.stdout and r.stdout.endswith(": unknown\n"), (args, r)
            assert len(r.stdout.splitlines()) == 1, (args, r)
            assert '"level"' not in r.stdout + r.stderr, (args, r)
    r = corral.cli("exec", "-u", "nobody2", cid, "true")
    assert (r.returncode, r.stdout) == (
        126, "unable to find user nobody2: no matching entries in passwd file\n"
    ), r
    c = dk.containers.get(cid)
    res = c.exec_run(["nosuch"])
    assert res.exit_code == 127 and res.output.startswith(b"OCI runtime exec failed: "), res
    assert c.exec_run(["/etc/passwd"]).exit_code == 126
    # A detached exec that cannot start is an error of the start request itself.
    r = corral.docker("exec", "-d", cid, "nosuch")
    assert r.returncode != 0 and "OCI runtime exec failed" in r.stderr, r
    r = corral.cli("exec", "-d", cid, "nosuch")
    assert r.returncode != 0 and "OCI runtime exec failed" in r.stderr, r
