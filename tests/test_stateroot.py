"""The state root against other host users, and its start-up sweep (issue 12).

A container is root inside: it can `chmod 4755` a copy of busybox in its /tmp.  If the
state root were open, user `nobody` on the host could run that copy from
`containers/<id>/rootfs/tmp/`, `upper/tmp/`, or an imported layer under `layers/`, as
root, and read `-e DB_PASSWORD=...` in corral.db or config.json.  These tests try all of
it as `nobody` against a real daemon, whose root sits in a directory anyone may enter
(the session daemon's is inside a private temporary directory, where `nobody` stops
before the root, so a test there could not fail).

And no tree under tmp/, however deep, may keep the daemon from starting.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import stat
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from busybox import find_busybox
from conftest import (
    IMAGE,
    Daemon,
    _needs_root,
    assert_nothing_left,
    cleanup,
    session_dir,
    start_daemon,
    stop_daemon,
)
from deeptree import plant_deep_tree

from supervisor import stateroot
from supervisor.rmtree import remove_tree

SECRET = "hunter2-a1b2c3"
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
SKELETON = ("containers", "images", "layers", "volumes", "runc", "netns", "tmp")

#: Run by `nobody`: for each path, stat, open, and (for executables) exec it.
PROBE = r"""
import errno, json, os, sys
out = {}
for path, executable in json.load(sys.stdin):
    tried = []
    for what in ("stat", "open", "exec") if executable else ("stat", "open"):
        try:
            if what == "stat":
                os.stat(path, follow_symlinks=False)
            elif what == "open":
                os.close(os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW))
            else:
                os.waitpid(os.posix_spawn(path, [path, "true"], {}), 0)
            tried.append(what + ":ok")
        except OSError as e:
            tried.append(what + ":" + errno.errorcode[e.errno])
    out[path] = tried
json.dump(out, sys.stdout)
"""


def as_nobody(paths: list[tuple[str, bool]]) -> dict[str, list[str]]:
    """What user nobody (no groups) gets trying each (path, is-executable)."""
    res = subprocess.run(
        [*NOBODY, "/usr/bin/python3", "-c", PROBE],
        input=json.dumps(paths),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    out: dict[str, list[str]] = json.loads(res.stdout)
    return out


def every_path(root: Path) -> list[tuple[str, bool]]:
    """Every path under `root` (not root itself), walked as root, mounts included."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            out.append((path, stat.S_ISREG(st.st_mode) and bool(st.st_mode & 0o111)))
    return out


def mode(p: Path) -> int:
    return stat.S_IMODE(os.lstat(p).st_mode)


@pytest.fixture
def open_root(rootfs_tar: Path) -> Iterator[Callable[[], Daemon]]:
    """Start (again) a daemon whose state root is in a directory every user may enter."""
    _needs_root()
    if shutil.which("setpriv") is None or not os.path.exists("/usr/bin/python3"):
        pytest.skip("needs setpriv and /usr/bin/python3")
    base = session_dir(Path(tempfile.mkdtemp(prefix="corral-open-", dir="/tmp")))
    os.chmod(base, 0o755)
    root, sock, log = base / "root", base / "d.sock", base / "d.log"
    procs: list[Any] = []

    def start() -> Daemon:
        p = start_daemon(root, sock, log)
        procs.append(p)
        d = Daemon(root=root, sock=sock, proc=p, log=log)
        client = d.client()
        if not client.images.list(name="busybox"):
            client.api.import_image_from_data(
                rootfs_tar.read_bytes(), repository="busybox", tag="latest"
            )
        client.close()
        return d

    yield start
    for p in procs:
        if p.poll() is None:
            client = Daemon(root=root, sock=sock, proc=p, log=log).client()
            cleanup(client)
            client.close()
            stop_daemon(p)
    assert_nothing_left(root)
    remove_tree(base)


def setuid_layer() -> bytes:
    """An image layer holding a setuid-root busybox."""
    data = find_busybox().read_bytes()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("bin/busybox")
        info.mode, info.size = 0o4755, len(data)
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def wait_for_log(c: Any, text: str) -> None:
    for chunk in c.logs(stream=True, follow=True):
        if text.encode() in chunk:
            return
    raise AssertionError(f"{text!r} never appeared in the log")


def assert_private_modes(root: Path, cid: str) -> None:
    """The modes the fix sets (checked as root): dirs 0700, secret-holding files 0600."""
    cdir = root / "containers" / cid
    dirs = [root, *(root / s for s in SKELETON), cdir, *(root / "volumes").iterdir()]
    assert {str(d): mode(d) for d in dirs} == {str(d): 0o700 for d in dirs}
    files = [root / "corral.db", cdir / "config.json", cdir / f"{cid}-json.log"]
    files += [f for f in (root / "corral.db-wal", root / "corral.db-shm") if f.exists()]
    assert {str(f): mode(f) for f in files} == {str(f): 0o600 for f in files}
    assert SECRET.encode() in (cdir / "config.json").read_bytes()
    assert SECRET.encode() in (cdir / f"{cid}-json.log").read_bytes()
    db_files = (root / "corral.db", root / "corral.db-wal")
    db = b"".join(f.read_bytes() for f in db_files if f.exists())
    assert SECRET.encode() in db


def assert_nobody_reaches_nothing(root: Path, among: list[Path]) -> None:
    paths = every_path(root)
    assert {str(p) for p in among} <= {p for p, _ in paths}
    got = as_nobody(paths)
    reached = {p: r for p, r in got.items() if any(not x.endswith(":EACCES") for x in r)}
    assert reached == {}
    # Control: nobody does reach the root directory itself, so the walls are ours.
    assert as_nobody([(str(root), False)]) == {str(root): ["stat:ok", "open:EACCES"]}


def test_no_host_user_reaches_anything_under_the_state_root(
    open_root: Callable[[], Daemon],
) -> None:
    d = open_root()
    root = d.root
    client = d.client()
    client.api.import_image_from_data(setuid_layer(), repository="suid", tag="1")
    c = client.containers.run(
        IMAGE,
        ["sh", "-c", "echo DB_PASSWORD=$DB_PASSWORD; exec sleep 1d"],
        environment={"DB_PASSWORD": SECRET},
        volumes={"shared": {"bind": "/data"}},
        detach=True,
    )
    wait_for_log(c, SECRET)
    made = c.exec_run(
        [
            "sh",
            "-c",
            "mkdir /tmp/s && cp /bin/busybox /tmp/s/ && chmod 4755 /tmp/s/busybox"
            " && chmod 1777 /data",
        ]
    )
    assert made.exit_code == 0, made.output
    cdir = root / "containers" / c.id
    suid = [cdir / "rootfs/tmp/s/busybox", cdir / "upper/tmp/s/busybox"]
    suid += [p / "bin/busybox" for p in (root / "layers").iterdir()]
    assert sum(bool(os.stat(p).st_mode & stat.S_ISUID) for p in suid) == 3

    # The container's own users still reach their files: /etc files bind-mounted from
    # containers/<id>/, the root, a volume; and its root is not nosuid (as Docker's).
    out = (
        client.containers.run(
            IMAGE,
            [
                "sh",
                "-c",
                "id -u && cat /etc/hostname /etc/hosts /etc/resolv.conf >/dev/null"
                " && ls /bin >/dev/null && echo written >/data/by-1000 && cat /data/by-1000"
                " && grep ' / / ' /proc/self/mountinfo",
            ],
            user="1000",
            volumes={"shared": {"bind": "/data"}},
            remove=True,
        )
        .decode()
        .splitlines()
    )
    assert out[:2] == ["1000", "written"]
    assert "nosuid" not in out[2].split()[5].split(",")
    assert c.exec_run(["cat", "/data/by-1000", "/etc/hosts"], user="1000").exit_code == 0

    assert_nobody_reaches_nothing(
        root, [*suid, cdir / "config.json", root / "corral.db", root / "volumes/shared/_data"]
    )
    assert_private_modes(root, c.id)

    # Defence in depth: were the root itself opened, every directory and secret-holding
    # file under it still is closed.
    os.chmod(root, 0o755)
    try:
        got = as_nobody(every_path(root))
    finally:
        os.chmod(root, 0o700)
    for path, tried in got.items():
        if len(Path(path).relative_to(root).parts) == 1:
            assert tried[1] == "open:EACCES", (path, tried)  # corral.db, containers/...
        else:
            assert set(tried) <= {"stat:EACCES", "open:EACCES", "exec:EACCES"}, (path, tried)
    client.close()


def test_a_root_an_older_corral_left_open_is_closed_at_the_next_start(
    open_root: Callable[[], Daemon],
) -> None:
    d = open_root()
    root = d.root
    client = d.client()
    c = client.containers.run(
        IMAGE,
        ["sh", "-c", "echo DB_PASSWORD=$DB_PASSWORD"],
        environment={"DB_PASSWORD": SECRET},
        volumes={"kept": {"bind": "/data"}},
        detach=True,
    )
    assert c.wait()["StatusCode"] == 0
    client.close()
    stop_daemon(d.proc)
    # The modes corral used to leave: 0755 directories, 0644 files, 0640 logs.
    cdir = root / "containers" / c.id
    for p in [root, *(root / s for s in SKELETON), cdir, root / "volumes" / "kept"]:
        os.chmod(p, 0o755)
    for p in [root / "corral.db", cdir / "config.json"]:
        os.chmod(p, 0o644)
    os.chmod(cdir / f"{c.id}-json.log", 0o640)
    assert SECRET.encode() in (cdir / "config.json").read_bytes()

    d = open_root()
    assert_nobody_reaches_nothing(root, [cdir / "config.json", root / "volumes/kept/_data"])
    assert_private_modes(root, c.id)


def test_the_daemon_starts_whatever_deep_tree_tmp_holds(private_daemon: Any) -> None:
    d = private_daemon()
    stop_daemon(d.proc)
    tmp = d.root / "tmp"
    for sub in ("images/layer-crashed", "build/0123456789abcdef/context", "upload"):
        (tmp / sub).mkdir(parents=True)
        plant_deep_tree(tmp / sub, 2100)
    try:
        d = private_daemon()  # raises if the daemon dies on its way up
        assert d.client().ping()
        leftovers = [str(p) for p in tmp.rglob("*") if not p.is_dir() or any(p.iterdir())]
        assert leftovers == []
    finally:  # a failure must not leave pytest a tree it cannot remove
        for sub in ("images/layer-crashed", "build/0123456789abcdef", "upload"):
            remove_tree(tmp / sub)


def test_the_sweep_empties_tmp_and_survives_what_it_cannot_remove(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "root"
    tmp = root / "tmp"
    for name in ("images", "build", "stuck", "upload.tar"):
        if name.endswith(".tar"):
            (tmp / name).write_bytes(b"x")
        else:
            (tmp / name).mkdir(parents=True)
    plant_deep_tree(tmp / "images", 2100)
    plant_deep_tree(tmp / "build", 2100)
    real = stateroot.remove_tree

    def failing(path: str | os.PathLike[str]) -> None:
        if os.path.basename(path) == "stuck":
            raise RecursionError("what an unforeseen failure looks like")
        real(path)

    monkeypatch.setattr(stateroot, "remove_tree", failing)
    try:
        stateroot.sweep_tmp(root)
        assert sorted(p.name for p in tmp.iterdir()) == ["stuck"]
    finally:  # a failure must not leave pytest a tree it cannot remove
        remove_tree(root)


def test_prepare_closes_the_skeleton_and_follows_an_admins_symlinks(tmp_path: Path) -> None:
    elsewhere = tmp_path / "bigdisk"
    (elsewhere / "root").mkdir(parents=True)
    (elsewhere / "layers").mkdir(mode=0o755)
    os.symlink(elsewhere / "root", tmp_path / "root")
    os.symlink(elsewhere / "layers", elsewhere / "root" / "layers")
    stateroot.prepare(tmp_path / "root")
    assert os.stat(elsewhere / "root").st_mode & 0o777 == 0o700
    assert os.stat(elsewhere / "layers").st_mode & 0o777 == 0o700
    for name in stateroot.SKELETON:
        assert os.stat(tmp_path / "root" / name).st_mode & 0o777 == 0o700, name
