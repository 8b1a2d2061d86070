"""`--mount` and `-v` options a user sees: bind propagation (`rshared`, `rslave`,
dockerd's checks of the source's mount), `bind-recursive=disabled`,
`bind-create-mountpoint`, `volume-subpath` (resolved inside the volume), through the
docker CLI, corral's CLI and docker-py, as Docker 28 behaves.

The tests mount only under their own tmp_path and unmount what they mounted.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from conftest import Daemon

IMAGE = "busybox:latest"


def ok(corral: Daemon, *args: str, cli: bool = False) -> str:
    r = corral.cli(*args) if cli else corral.docker(*args)
    assert r.returncode == 0, f"{' '.join(args)} -> {r.returncode}: {r.stderr}"
    return r.stdout


def sh(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True)


def mounted(path: Path) -> bool:
    real = str(path.resolve())
    return any(line.split()[4] == real for line in Path("/proc/self/mountinfo").read_text()
               .splitlines())  # fmt: skip


@pytest.fixture
def shared_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory that is its own shared mount (what rshared/rslave binds need)."""
    src = tmp_path / "shared"
    src.mkdir()
    sh("mount", "--bind", str(src), str(src))
    sh("mount", "--make-shared", str(src))
    try:
        yield src
    finally:
        subprocess.run(["umount", "-R", "-l", str(src)], capture_output=True)
        assert not mounted(src)


def test_rshared_bind_a_mount_made_inside_reaches_the_host(corral: Daemon,
                                                           shared_dir: Path) -> None:
    (shared_dir / "sub").mkdir()
    cid = ok(corral, "run", "-d", "--privileged", "--mount",
             f"type=bind,src={shared_dir},dst=/m,bind-propagation=rshared", IMAGE, "sh", "-c",
             "mount -t tmpfs none /m/sub && touch /m/sub/made-inside && exec sleep 100"
             ).strip()  # fmt: skip
    ok(corral, "exec", cid, "sh", "-c", "until [ -e /m/sub/made-inside ]; do :; done")
    assert mounted(shared_dir / "sub") and (shared_dir / "sub" / "made-inside").exists()
    mounts = corral.client().api.inspect_container(cid)["Mounts"]
    assert [m["Propagation"] for m in mounts] == ["rshared"]
    ok(corral, "rm", "-f", cid)


@pytest.mark.parametrize("cli", [False, True], ids=["docker", "corral"])
def test_rslave_bind_sees_a_mount_the_host_makes_later(corral: Daemon, shared_dir: Path,
                                                       cli: bool) -> None:
    (shared_dir / "later").mkdir()
    cid = ok(corral, "run", "-d", "-v", f"{shared_dir}:/m:rslave", IMAGE, "sleep", "100",
             cli=cli).strip()  # fmt: skip
    sh("mount", "-t", "tmpfs", "-o", "size=1m", "later", str(shared_dir / "later"))
    (shared_dir / "later" / "note").write_text("from the host")
    out = ok(corral, "exec", cid, "cat", "/m/later/note")
    assert out == "from the host"
    ok(corral, "rm", "-f", cid)


def test_shared_propagation_needs_a_shared_source(corral: Daemon, tmp_path: Path) -> None:
    src = tmp_path / "plain"
    src.mkdir()
    for mode, want in (("rshared", "shared"), ("rslave", "shared or slave")):
        r = corral.docker("run", "--rm", "-v", f"{src}:/m:{mode}", IMAGE, "true")
        assert r.returncode == 125, r.stderr
        assert f"path {src} is mounted on " in r.stderr
        assert f"but it is not a {want} mount" in r.stderr
    r = corral.docker("run", "--rm", "--mount", f"type=bind,src={src},dst=/m,"
                      "bind-propagation=sideways", IMAGE, "true")  # fmt: skip
    assert r.returncode == 125 and "invalid propagation mode: sideways" in r.stderr
    assert ok(corral, "ps", "-aq") == ""


def test_bind_recursive_disabled_leaves_submounts_out(corral: Daemon, tmp_path: Path) -> None:
    src = tmp_path / "tree"
    (src / "sub").mkdir(parents=True)
    sh("mount", "-t", "tmpfs", "-o", "size=1m", "sub", str(src / "sub"))
    try:
        (src / "sub" / "on-the-submount").write_text("x")
        check = "ls /m/sub"
        for opt, seen in (("", "on-the-submount\n"), (",bind-recursive=disabled", "")):
            out = ok(corral, "run", "--rm", "--mount", f"type=bind,src={src},dst=/m{opt}",
                     IMAGE, "sh", "-c", check)  # fmt: skip
            assert out == seen
        out = ok(corral, "run", "--rm", "--mount", f"type=bind,src={src},dst=/m,"
                 "bind-nonrecursive", IMAGE, "ls", "/m/sub", cli=True)  # fmt: skip
        assert out == ""
    finally:
        subprocess.run(["umount", "-l", str(src / "sub")], capture_output=True)


def test_bind_create_mountpoint(corral: Daemon, dk: Any, tmp_path: Path) -> None:
    src = tmp_path / "made" / "here"
    r = corral.docker("run", "--rm", "--mount", f"type=bind,src={src},dst=/m", IMAGE, "true")
    assert r.returncode == 125 and "bind source path does not exist" in r.stderr
    # API only (compose's `bind: create_host_path`); docker 28's CLI has no such key
    r = corral.cli("run", "--rm", "--mount", f"type=bind,src={src},dst=/m,"
                   "bind-create-mountpoint=true", IMAGE, "true")  # fmt: skip
    assert r.returncode == 125 and "unexpected key 'bind-create-mountpoint'" in r.stderr
    c = dk.api.create_container(IMAGE, ["touch", "/m/x"], host_config={"Mounts": [{
        "Type": "bind", "Source": str(src), "Target": "/m",
        "BindOptions": {"CreateMountpoint": True}}]})  # fmt: skip
    dk.api.start(c["Id"])
    assert dk.api.wait(c["Id"])["StatusCode"] == 0
    assert (src / "x").exists()


def test_volume_subpath(corral: Daemon, dk: Any) -> None:
    ok(corral, "volume", "create", "data")
    ok(corral, "run", "--rm", "-v", "data:/d", IMAGE, "sh", "-c",
       "mkdir -p /d/app/conf && echo sub > /d/app/conf/f && echo top > /d/top && "
       "ln -s /etc /d/escape && ln -s ../../.. /d/app/up")  # fmt: skip
    out = ok(corral, "run", "--rm", "--mount", "src=data,dst=/c,volume-subpath=app/conf",
             IMAGE, "ls", "/c")  # fmt: skip
    assert out.split() == ["f"]
    out = ok(corral, "run", "--rm", "--mount", "src=data,dst=/c,volume-subpath=app/conf",
             IMAGE, "cat", "/c/f", cli=True)  # fmt: skip
    assert out == "sub\n"
    # a symlink in the volume resolves inside it: /etc there is the volume's own (none)
    r = corral.docker("run", "--rm", "--mount", "src=data,dst=/c,volume-subpath=escape",
                      IMAGE, "true")  # fmt: skip
    assert r.returncode != 0 and "cannot mount subpath escape of volume data" in r.stderr
    out = ok(corral, "run", "--rm", "--mount", "src=data,dst=/c,volume-subpath=app/up",
             IMAGE, "ls", "/c")  # fmt: skip
    assert sorted(out.split()) == ["app", "escape", "top"]  # the volume's root, no higher
    for bad in ("../x", "/abs"):
        with pytest.raises(docker.errors.APIError) as exc:
            dk.api.create_container(IMAGE, ["true"], host_config={"Mounts": [{
                "Type": "volume", "Source": "data", "Target": "/c",
                "VolumeOptions": {"Subpath": bad}}]})  # fmt: skip
        assert "subpath must be a relative path within the volume" in str(exc.value)
    assert ok(corral, "ps", "-aq") == ""


# ------------------------------------------------------------------ --volumes-from
@pytest.mark.parametrize("cli", [False, True], ids=["docker", "corral"])
def test_volumes_from(corral: Daemon, cli: bool, tmp_path: Path) -> None:
    (tmp_path / "host.txt").write_text("bound\n")
    src = ok(corral, "create", "--name", "src", "-v", "named:/named", "-v", "/anon", "-v",
             f"{tmp_path}:/bound", "--tmpfs", "/scratch", IMAGE, "true").strip()  # fmt: skip
    ok(corral, "run", "--rm", "-v", "named:/named", IMAGE, "sh", "-c", "echo n > /named/f")
    out = ok(corral, "run", "--rm", "--volumes-from", "src", IMAGE, "sh", "-c",
             "cat /named/f /bound/host.txt; echo a > /anon/f; "
             "grep -c ' /scratch ' /proc/self/mounts || true", cli=cli)  # fmt: skip
    assert out.split() == ["n", "bound", "0"]  # volumes and binds, not the tmpfs
    r = corral.docker("run", "--rm", "--volumes-from", "src:ro", IMAGE, "sh", "-c",
                      "cat /anon/f; touch /named/g")  # fmt: skip
    assert r.stdout == "a\n" and "Read-only file system" in r.stderr and r.returncode == 1
    # the container's own mount wins on a destination they share
    out = ok(corral, "run", "--rm", "--volumes-from", "src", "-v", "other:/named", IMAGE,
             "ls", "/named")  # fmt: skip
    assert out == ""
    # the anonymous volume is shared: `rm -v` of one user keeps it for the other, the
    # last one's removes it (dockerd skips a volume in use)
    (anon,) = [m["Name"] for m in corral.client().api.inspect_container(src)["Mounts"]
               if m["Destination"] == "/anon"]  # fmt: skip
    user = ok(corral, "create", "--volumes-from", "src", IMAGE, "true").strip()
    ok(corral, "rm", "-v", src)
    assert anon in ok(corral, "volume", "ls", "-q").split()
    ok(corral, "rm", "-v", user)
    assert anon not in ok(corral, "volume", "ls", "-q").split()
    r = corral.docker("run", "--rm", "--volumes-from", "nosuch", IMAGE, "true")
    assert r.returncode == 125 and "No such container: nosuch" in r.stderr
    r = corral.docker("run", "--rm", "--volumes-from", "x:bogus", IMAGE, "true")
    assert r.returncode == 125


def _vol_path(dk: Any, name: str) -> Path:
    return Path(dk.api.inspect_volume(name)["Mountpoint"])


@pytest.mark.parametrize("cli", [False, True], ids=["docker", "corral"])
def test_volume_local_driver_tmpfs_options(corral: Daemon, dk: Any, cli: bool) -> None:
    """moby's local driver: `type`/`device`/`o` mounted at first use, gone at last."""
    ok(corral, "volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs",
       "-o", "o=size=10m,uid=1000", "tv", cli=cli)  # fmt: skip
    data = _vol_path(dk, "tv")
    assert dk.api.inspect_volume("tv")["Options"] == {
        "type": "tmpfs", "device": "tmpfs", "o": "size=10m,uid=1000"}  # fmt: skip
    assert not mounted(data)  # not before a container uses it
    out = ok(corral, "run", "--rm", "-v", "tv:/data", IMAGE, "sh", "-c",
             "df -k /data | tail -1; stat -c %u /data; echo x > /data/f", cli=cli)  # fmt: skip
    df, uid = out.splitlines()
    assert df.split()[0] == "tmpfs" and df.split()[1] == str(10 * 1024) and uid == "1000"
    assert not mounted(data)  # unmounted with its last user: a tmpfs, its file gone
    assert not (data / "f").exists()
    ok(corral, "run", "-d", "--name", "ua", "-v", "tv:/data", IMAGE, "sleep", "100")
    ok(corral, "run", "-d", "--name", "ub", "-v", "tv:/data", IMAGE, "sh", "-c",
       "echo shared > /data/g; sleep 100")  # fmt: skip
    assert ok(corral, "exec", "ua", "cat", "/data/g").strip() == "shared"  # one mount
    assert mounted(data)
    ok(corral, "rm", "-f", "ub")
    assert mounted(data)  # ua still uses it
    ok(corral, "rm", "-f", "ua")
    assert not mounted(data)
    ok(corral, "volume", "rm", "tv")


def test_volume_local_driver_bind_and_mount_volume_opt(
    corral: Daemon, dk: Any, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "hello").write_text("from the host\n")
    vol = dk.volumes.create("bv", driver_opts={"type": "none", "device": str(src), "o": "bind"})
    out = ok(corral, "run", "--rm", "-v", "bv:/data", IMAGE, "sh", "-c",
             "cat /data/hello; echo back > /data/new")  # fmt: skip
    assert out == "from the host\n" and (src / "new").read_text() == "back\n"
    assert not mounted(_vol_path(dk, "bv"))
    # cp into a stopped container mounts the volume for the copy, as dockerd's
    ok(corral, "create", "--name", "cpv", "-v", "bv:/data", IMAGE, "true")
    (tmp_path / "up").write_text("copied\n")
    ok(corral, "cp", str(tmp_path / "up"), "cpv:/data/up")
    assert (src / "up").read_text() == "copied\n" and not mounted(_vol_path(dk, "bv"))
    ok(corral, "rm", "cpv")
    vol.remove()
    assert sorted(p.name for p in src.iterdir()) == ["hello", "new", "up"]  # the host's kept
    # --mount volume-opt= and volume-label= make the volume with them (docker CLI)
    out = ok(corral, "run", "--rm", "--mount",
             "src=mv,dst=/v,volume-opt=type=tmpfs,volume-opt=device=tmpfs,"
             "volume-opt=o=size=2m,volume-label=team=db", IMAGE, "df", "-k", "/v")  # fmt: skip
    assert out.splitlines()[1].split()[:2] == ["tmpfs", str(2 * 1024)]
    info = dk.api.inspect_volume("mv")
    assert info["Options"]["o"] == "size=2m" and info["Labels"] == {"team": "db"}
    out = ok(corral, "run", "--rm", "--mount",
             "src=mv2,dst=/v,volume-opt=type=tmpfs,volume-opt=device=tmpfs,"
             "volume-opt=o=size=3m,volume-label=team=web", IMAGE, "df", "-k", "/v",
             cli=True)  # fmt: skip
    assert out.splitlines()[1].split()[:2] == ["tmpfs", str(3 * 1024)]
    assert dk.api.inspect_volume("mv2")["Labels"] == {"team": "web"}


def test_volume_local_driver_bad_options(corral: Daemon, dk: Any) -> None:
    """dockerd's checks at create (validateOpts), the mount's error at first use."""
    for opts, err in (
        (["-o", "foo=bar"], 'create x1: invalid option: "foo"'),
        (["-o", "type=tmpfs"], 'create x1: missing required option: "device"'),
        (["-o", "o=size=1m"], 'create x1: missing required option: "device"'),
        (["-o", "size=10m"], "create x1: quota size requested but no quota support"),
    ):
        for cli in (False, True):
            r = (corral.cli if cli else corral.docker)("volume", "create", *opts, "x1")
            assert r.returncode == 1 and err in r.stderr, (opts, r.stderr)
    assert ok(corral, "volume", "ls", "-q") == ""
    ok(corral, "volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs",
       "-o", "o=size=1m,bogus=1", "bad")  # fmt: skip
    data = _vol_path(dk, "bad")
    r = corral.docker("run", "--name", "cc", "-v", "bad:/data", IMAGE, "true")
    assert r.returncode != 0
    assert (f"error while mounting volume '{data}': failed to mount local volume: "
            f"mount tmpfs:{data}, data: size=1m,bogus=1: invalid argument") in r.stderr
    assert not mounted(data)
    ok(corral, "rm", "cc")
    ok(corral, "volume", "rm", "bad")
    r = corral.docker("run", "--rm", "--mount", "src=yy,dst=/v,volume-opt=nope=1", IMAGE, "true")
    assert r.returncode == 125 and 'create yy: invalid option: "nope"' in r.stderr
    assert ok(corral, "volume", "ls", "-q") == "" and ok(corral, "ps", "-aq") == ""


def test_volume_local_driver_mount_gone_after_kill_9(private_daemon: Any, rootfs_tar: Path) -> None:
    """A daemon killed while an option volume is mounted: the container is live
    restored, its volume stays mounted and counted as its (a stop unmounts it), and it
    mounts again at the next use."""
    import signal

    d = private_daemon()
    dk = d.client()
    dk.api.import_image_from_data(rootfs_tar.read_bytes(), repository="busybox", tag="latest")
    dk.volumes.create("kv", driver_opts={"type": "tmpfs", "device": "tmpfs", "o": "size=1m"})
    dk.containers.run(IMAGE, "sleep 1d", detach=True, name="kv1", volumes=["kv:/data"])
    data = Path(dk.api.inspect_volume("kv")["Mountpoint"])
    assert mounted(data)
    dk.close()
    d.proc.send_signal(signal.SIGKILL)
    d.proc.wait()
    d = private_daemon()
    dk = d.client()
    c = dk.containers.get("kv1")
    assert c.status == "running" and mounted(data)  # adopted with its volume
    c.stop(timeout=0)
    assert not mounted(data)  # its stop was the last use
    c.start()
    assert mounted(data)
    c.remove(force=True)
    assert not mounted(data)
    dk.volumes.get("kv").remove()
    dk.close()
