"""`cp` as users meet it: the docker CLI, docker-py and corral's CLI, both ways, on
running and stopped containers, into volumes; and every way out of the container's
root tried and refused (or resolved inside), with host sentinels to prove it."""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Daemon
from test_run_security_flags import remapped  # noqa: F401 - the userns-remap daemon

from supervisor.cli.cp import CopyInfo, plan_copy, split_cp_arg, split_dir_entry
from supervisor.engine.archive import (
    GO_DIR,
    GO_SYMLINK,
    container_abs_path,
    go_file_mode,
    parse_stat_header,
)

IMAGE = "busybox:latest"


# ------------------------------------------------------------------ pure rules


def test_go_file_mode_bits_as_docker_sends_them() -> None:
    assert go_file_mode(0o040755) == GO_DIR | 0o755
    assert go_file_mode(0o120777) == GO_SYMLINK | 0o777
    assert go_file_mode(0o104755) == (1 << 23) | 0o755  # setuid file
    assert go_file_mode(0o020666) == (1 << 26) | (1 << 21) | 0o666  # char device


def test_container_paths_keep_their_tails() -> None:
    assert container_abs_path("tmp/d/.") == "/tmp/d/."
    assert container_abs_path("/tmp/d/") == "/tmp/d/"
    assert container_abs_path("../../etc") == "/etc"
    assert split_dir_entry("a/b/.") == ("a/b", ".")
    assert split_cp_arg("c1:/tmp") == ("c1", "/tmp")
    assert split_cp_arg("/abs:colon") == ("", "/abs:colon")
    assert split_cp_arg("plain") == ("", "plain")


def test_plan_copy_follows_dockers_table() -> None:
    d, f = CopyInfo("/src/d", True, True), CopyInfo("/src/f", True, False)
    assert plan_copy(f, CopyInfo("/dst", True, True)) == ("/dst", None)
    assert plan_copy(f, CopyInfo("/dst/new")) == ("/dst", ("f", "new"))
    assert plan_copy(d, CopyInfo("/dst/new")) == ("/dst", ("d", "new"))
    assert plan_copy(f, CopyInfo("/dst/file", True, False)) == ("/dst", ("f", "file"))
    with pytest.raises(ValueError, match="cannot copy directory"):
        plan_copy(d, CopyInfo("/dst/file", True, False))
    with pytest.raises(ValueError, match="no such directory"):
        plan_copy(f, CopyInfo("/dst/new/"))
    dot = CopyInfo("/src/d/.", True, True)
    assert plan_copy(dot, CopyInfo("/dst/new")) == ("/dst", (".", "new"))


# ------------------------------------------------------------------ helpers


@pytest.fixture
def sentinel() -> Iterator[Path]:
    """An empty host directory a copy that escapes would write into."""
    d = Path(f"/tmp/corral-cp-sentinel-{uuid.uuid4().hex[:8]}")
    d.mkdir()
    yield d
    for p in sorted(d.rglob("*"), reverse=True):
        p.unlink() if not p.is_dir() or p.is_symlink() else p.rmdir()
    d.rmdir()


def sh(c: Any, script: str) -> str:
    res = c.exec_run(["sh", "-c", script])
    assert res.exit_code == 0, res.output
    return str(res.output.decode())


def tar_of(*entries: tuple[str, bytes | str | None]) -> bytes:
    """A tar: (name, bytes) files, (name, None) directories, (name, "->target") links."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
            elif isinstance(data, str):
                info.type = tarfile.SYMTYPE
                info.linkname = data.removeprefix("->")
                tar.addfile(info)
            else:
                info.size = len(data)
                info.mode = 0o644
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def tar_names(data: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return tar.getnames()


def get_archive(c: Any, path: str) -> tuple[bytes, dict[str, Any]]:
    stream, st = c.get_archive(path)
    return b"".join(stream), st


# ------------------------------------------------------------------ docker CLI


def test_docker_cli_copies_both_ways_with_dockers_path_rules(
    daemon: Daemon, dk: Any, tmp_path: Path
) -> None:
    c = dk.containers.run(IMAGE, ["sleep", "1d"], detach=True, name="cpcli")
    sh(c, "mkdir -p /tmp/d/e && echo x > /tmp/d/e/g && echo hi > /tmp/f")
    ok = lambda *a: daemon.docker(*a, check=True)  # noqa: E731
    ok("cp", "cpcli:/tmp/f", str(tmp_path))
    assert (tmp_path / "f").read_text() == "hi\n"
    ok("cp", "cpcli:/tmp/d", str(tmp_path / "newd"))  # missing dest: takes the name
    assert (tmp_path / "newd/e/g").read_text() == "x\n"
    ok("cp", "cpcli:/tmp/d/.", str(tmp_path / "newd"))  # `/.`: the contents, merged
    ok("cp", "cpcli:/tmp/d", str(tmp_path / "newd"))  # existing dir: d goes inside
    assert (tmp_path / "newd/d/e/g").is_file()
    # and into the container
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "sub/a").write_text("a\n")
    ok("cp", str(src), "cpcli:/tmp/fresh")
    ok("cp", f"{src}/.", "cpcli:/tmp/d")
    ok("cp", str(tmp_path / "f"), "cpcli:/tmp/renamed")
    assert sh(c, "cat /tmp/fresh/sub/a /tmp/d/sub/a /tmp/renamed") == "a\na\nhi\n"
    # docker's refusals, with its words
    res = daemon.docker("cp", str(src), "cpcli:/tmp/f")
    assert res.returncode == 1 and "cannot copy directory" in res.stderr
    res = daemon.docker("cp", "cpcli:/nope", str(tmp_path))
    assert res.returncode == 1
    assert "Could not find the file /nope in container cpcli" in res.stderr
    res = daemon.docker("cp", str(tmp_path / "f"), "cpcli:/no/such/dir/")
    assert res.returncode == 1 and res.stderr.endswith("no such directory\n")
    res = daemon.docker("cp", str(tmp_path / "f"), "cpcli:/no/such/file")
    assert res.returncode == 1 and "Could not find the file /no/such in container" in res.stderr


def test_docker_cli_tar_on_stdin_and_stdout(daemon: Daemon, dk: Any) -> None:
    c = dk.containers.run(IMAGE, ["sleep", "1d"], detach=True, name="cppipe")
    sh(c, "mkdir -p /srv/x && echo one > /srv/x/1")
    out = subprocess.run(["docker", "cp", "cppipe:/srv/x", "-"], env=daemon.env(),
                         capture_output=True, check=True).stdout
    assert tar_names(out) == ["x", "x/1"]
    subprocess.run(["docker", "cp", "-", "cppipe:/tmp"], env=daemon.env(),
                   input=tar_of(("in/", None), ("in/t", b"typed\n")), check=True)
    assert sh(c, "cat /tmp/in/t") == "typed\n"


def test_stopped_container_both_ways_and_into_a_volume(
    daemon: Daemon, dk: Any, tmp_path: Path
) -> None:
    c = dk.containers.run(IMAGE, ["sh", "-c", "echo made > /made"], detach=True,
                          name="cpstopped", volumes={"cpvol": {"bind": "/data"}})
    c.wait()
    (tmp_path / "in.txt").write_text("into volume\n")
    daemon.docker("cp", str(tmp_path / "in.txt"), "cpstopped:/data/", check=True)
    daemon.docker("cp", str(tmp_path / "in.txt"), "cpstopped:/layer.txt", check=True)
    daemon.docker("cp", "cpstopped:/made", str(tmp_path / "out.txt"), check=True)
    assert (tmp_path / "out.txt").read_text() == "made\n"
    mountpoint = Path(dk.volumes.get("cpvol").attrs["Mountpoint"])
    assert (mountpoint / "in.txt").read_text() == "into volume\n"
    # nothing of the copy's view stays mounted, and the container starts as usual
    assert str(daemon.root / "tmp") not in Path("/proc/self/mountinfo").read_text()
    out = dk.containers.run(IMAGE, ["cat", "/data/in.txt"], remove=True,
                            volumes={"cpvol": {"bind": "/data"}})
    assert out == b"into volume\n"
    c.start()
    c.wait()
    assert get_archive(c, "/layer.txt")[1]["size"] == len("into volume\n")


def test_running_container_copy_into_volume_mount_point(dk: Any, daemon: Daemon,
                                                        tmp_path: Path) -> None:
    c = dk.containers.run(IMAGE, ["sleep", "1d"], detach=True, name="cpvolrun",
                          volumes={"cpvol2": {"bind": "/data"}})
    (tmp_path / "v").write_text("v\n")
    daemon.docker("cp", str(tmp_path / "v"), "cpvolrun:/data", check=True)
    mountpoint = Path(dk.volumes.get("cpvol2").attrs["Mountpoint"])
    assert (mountpoint / "v").read_text() == "v\n"
    assert sh(c, "cat /data/v") == "v\n"


# ------------------------------------------------------------------ docker-py


def test_docker_py_put_and_get_archive_round_trip(dk: Any) -> None:
    c = dk.containers.run(IMAGE, ["sleep", "1d"], detach=True)
    assert c.put_archive("/tmp", tar_of(("dir/", None), ("dir/file", b"payload")))
    data, st = get_archive(c, "/tmp/dir")
    assert tar_names(data) == ["dir", "dir/file"]
    assert st["name"] == "dir" and st["mode"] & GO_DIR
    data, st = get_archive(c, "/tmp/dir/file")
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        member = tar.extractfile("file")
        assert member is not None and member.read() == b"payload"
    assert (st["name"], st["size"], st["mode"] & 0o777) == ("file", 7, 0o644)
    sh(c, "ln -s ../tmp/dir /tmp/rel")
    st = dk.api.get_archive(c.id, "/tmp/rel")[1]
    assert st["mode"] & GO_SYMLINK and st["linkTarget"] == "/tmp/dir"
    # a missing extraction point and a file as one: Docker's answers
    with pytest.raises(Exception, match="Could not find the file /nope"):
        c.put_archive("/nope", tar_of(("x", b"")))
    with pytest.raises(Exception, match="extraction point is not a directory"):
        c.put_archive("/tmp/dir/file", tar_of(("x", b"")))


# ------------------------------------------------------------------ escapes


def test_symlink_to_etc_inside_the_container_stays_inside(
    daemon: Daemon, dk: Any, tmp_path: Path, sentinel: Path
) -> None:
    c = dk.containers.run(IMAGE, ["sleep", "1d"], detach=True, name="cpesc")
    name = sentinel.name
    sh(c, f"ln -s /etc /tmp/evil && ln -s ../../../../../../../..{sentinel} /tmp/up"
          f" && mkdir -p {sentinel}")
    marker = tmp_path / f"{name}.txt"
    marker.write_text("inside\n")
    # through an absolute link: lands in the container's /etc, never the host's
    daemon.docker("cp", str(marker), "cpesc:/tmp/evil/", check=True)
    assert sh(c, f"cat /etc/{marker.name}") == "inside\n"
    assert not Path(f"/etc/{marker.name}").exists()
    # through a link climbing with `..`: the container's copy of the sentinel path
    daemon.docker("cp", str(marker), "cpesc:/tmp/up/", check=True)
    assert sh(c, f"cat {sentinel}/{marker.name}") == "inside\n"
    # `../../` in the destination itself
    daemon.docker("cp", str(marker), f"cpesc:../../../../..{sentinel}/dots", check=True)
    assert sh(c, f"cat {sentinel}/dots") == "inside\n"
    assert list(sentinel.iterdir()) == []
    # reading through the link gives the container's file, not the host's
    out, _ = get_archive(c, "/tmp/evil/passwd")
    with tarfile.open(fileobj=io.BytesIO(out)) as tar:
        member = tar.extractfile("passwd")
        assert member is not None and b"www-data" in member.read()
    assert not any(c.id in line for line in Path("/etc/passwd").read_text().splitlines())


def test_put_of_a_tar_climbing_out_writes_nothing(dk: Any, sentinel: Path) -> None:
    c = dk.containers.run(IMAGE, ["sleep", "1d"], detach=True)
    depth = "../" * 12
    for bad in (
        tar_of(("good", b"g"), (f"{depth}{sentinel.relative_to('/')}/evil", b"x")),
        tar_of(("good", b"g"), (f"{sentinel}/abs", b"x")),
        tar_of(("good", b"g"), ("lnk", f"->{depth}{sentinel.relative_to('/')}")),
    ):
        with pytest.raises(Exception, match="refusing tar entry"):
            c.put_archive("/tmp", bad)
        assert list(sentinel.iterdir()) == []
        assert c.exec_run(["test", "-e", "/tmp/good"]).exit_code == 1  # nothing half made


def test_put_through_an_absolute_link_entry_stays_in_the_root(
    dk: Any, sentinel: Path
) -> None:
    c = dk.containers.run(IMAGE, ["sleep", "1d"], detach=True)
    sh(c, f"mkdir -p {sentinel}")
    assert c.put_archive("/tmp", tar_of(("hop", f"->{sentinel}"), ("hop/dropped", b"d")))
    assert sh(c, f"cat {sentinel}/dropped") == "d"
    assert list(sentinel.iterdir()) == []


def test_stat_header_for_dirs_and_links_as_docker_encodes_it(daemon: Daemon, dk: Any) -> None:
    import base64
    import json

    from supervisor.api.client import Client

    c = dk.containers.run(IMAGE, ["sleep", "1d"], detach=True)
    sh(c, "ln -s /etc/passwd /tmp/pw")
    resp = Client(daemon.host).request("HEAD", f"/containers/{c.id}/archive",
                                       {"path": "/tmp/pw"})
    raw = resp.headers["x-docker-container-path-stat"]
    st = json.loads(base64.b64decode(raw))
    assert st == parse_stat_header(raw)
    assert set(st) == {"name", "size", "mode", "mtime", "linkTarget"}
    assert (st["name"], st["linkTarget"]) == ("pw", "/etc/passwd")
    assert st["mode"] == GO_SYMLINK | 0o777 and st["mtime"].endswith("Z")


# ------------------------------------------------------------------ corral CLI


def test_corral_cp_mirrors_docker_cp(daemon: Daemon, dk: Any, tmp_path: Path) -> None:
    c = dk.containers.run(IMAGE, ["sleep", "1d"], detach=True, name="cpcorral")
    sh(c, "mkdir -p /tmp/d/e && echo x > /tmp/d/e/g && ln -s /tmp/d /tmp/dl")
    assert daemon.cli("cp", "cpcorral:/tmp/d", str(tmp_path / "copy")).returncode == 0
    assert (tmp_path / "copy/e/g").read_text() == "x\n"
    assert daemon.cli("cp", "cpcorral:/tmp/dl", str(tmp_path)).returncode == 0
    assert os.readlink(tmp_path / "dl") == "/tmp/d"  # the link itself, without -L
    assert daemon.cli("cp", "-L", "cpcorral:/tmp/dl", str(tmp_path / "followed")).returncode == 0
    assert (tmp_path / "followed/e/g").is_file()
    (tmp_path / "up").write_text("up\n")
    assert daemon.cli("cp", "-a", str(tmp_path / "up"), "cpcorral:/tmp/d/").returncode == 0
    assert sh(c, "cat /tmp/d/up") == "up\n"
    out = subprocess.run([*daemon_cli(), "cp", "cpcorral:/tmp/d/e", "-"], env=daemon.env(),
                         capture_output=True, check=True).stdout
    assert tar_names(out) == ["e", "e/g"]
    subprocess.run([*daemon_cli(), "cp", "-", "cpcorral:/tmp"], env=daemon.env(),
                   input=tar_of(("piped", b"p")), check=True)
    assert sh(c, "cat /tmp/piped") == "p"
    res = daemon.cli("cp", str(tmp_path / "copy"), "cpcorral:/tmp/piped")
    assert (res.returncode, res.stderr.strip()) == (1, "corral: cannot copy directory")
    res = daemon.cli("cp", "cpcorral:/a", "nocontainer:/b")
    assert res.stderr.strip() == "corral: copying between containers is not supported"
    res = daemon.cli("cp", "nosuch:/a", str(tmp_path))
    assert res.returncode == 1 and "No such container: nosuch" in res.stderr


def daemon_cli() -> list[str]:
    import sys

    return [sys.executable, "-m", "supervisor"]


def test_read_only_root_and_volume_refused_as_docker_does(dk: Any) -> None:
    c = dk.containers.run(IMAGE, ["sleep", "1d"], detach=True, read_only=True,
                          volumes={"cprw": {"bind": "/rw"}, "cpro": {"bind": "/ro", "mode": "ro"}})
    with pytest.raises(Exception, match="container rootfs is marked read-only"):
        c.put_archive("/", tar_of(("x", b"x")))
    with pytest.raises(Exception, match="mounted volume is marked read-only"):
        c.put_archive("/ro", tar_of(("x", b"x")))
    assert c.put_archive("/rw", tar_of(("x", b"x")))
    c.stop(timeout=0)  # the same answers from a stopped container's view
    with pytest.raises(Exception, match="container rootfs is marked read-only"):
        c.put_archive("/", tar_of(("y", b"y")))
    with pytest.raises(Exception, match="mounted volume is marked read-only"):
        c.put_archive("/ro", tar_of(("y", b"y")))
    assert c.put_archive("/rw", tar_of(("y", b"y")))
    assert sorted(p.name for p in Path(dk.volumes.get("cprw").attrs["Mountpoint"]).iterdir()) \
        == ["x", "y"]


def test_archive_mode_gives_files_to_the_containers_user(
    daemon: Daemon, dk: Any, tmp_path: Path
) -> None:
    c = dk.containers.run(IMAGE, ["sleep", "1d"], detach=True, name="cpowner", user="www-data")
    f = tmp_path / "owned"
    f.write_text("o\n")
    os.chown(f, 1234, 1234)
    daemon.docker("cp", str(f), "cpowner:/tmp/kept", check=True)
    daemon.docker("cp", "-a", str(f), "cpowner:/tmp/given", check=True)
    assert daemon.cli("cp", "-a", str(f), "cpowner:/tmp/given2").returncode == 0
    ids = sh(c, "stat -c '%u:%g' /tmp/kept /tmp/given /tmp/given2").split()
    assert ids == ["1234:1234", "33:33", "33:33"]


def test_copy_of_the_whole_root_skips_proc_and_sys(dk: Any) -> None:
    c = dk.containers.run(IMAGE, ["sleep", "1d"], detach=True)
    data, _ = get_archive(c, "/")
    names = tar_names(data)
    assert "bin/busybox" in names and "proc" in names and "sys" in names
    assert not [n for n in names if n.startswith(("proc/", "sys/"))]
    with pytest.raises(Exception, match="Could not find the file /proc/cpuinfo"):
        get_archive(c, "/proc/cpuinfo")


def test_cp_into_a_bind_mount_lands_on_the_host_dir_it_binds(
    daemon: Daemon, dk: Any, tmp_path: Path
) -> None:
    bound = tmp_path / "bound"
    bound.mkdir()
    c = dk.containers.run(IMAGE, ["sleep", "1d"], detach=True, name="cpbind",
                          volumes={str(bound): {"bind": "/srv/b"}})
    (tmp_path / "in").write_text("bound\n")
    daemon.docker("cp", str(tmp_path / "in"), "cpbind:/srv/b/running", check=True)
    c.stop(timeout=0)
    daemon.docker("cp", str(tmp_path / "in"), "cpbind:/srv/b/stopped", check=True)
    assert sorted(p.name for p in bound.iterdir()) == ["running", "stopped"]
    out, st = get_archive(c, "/srv/b/running")
    assert st["size"] == 6


def test_cp_events_as_docker_names_them(dk: Any) -> None:
    import time

    c = dk.containers.run(IMAGE, ["sleep", "1d"], detach=True)
    since = time.time() - 1
    c.put_archive("/tmp", tar_of(("e", b"e")))
    get_archive(c, "/tmp/e")
    events = dk.events(since=since, until=time.time(), decode=True,
                       filters={"container": c.id})
    actions = [e["Action"] for e in events]
    assert "extract-to-dir" in actions and "archive-path" in actions


def test_cp_and_export_under_userns_remap_show_the_containers_owners(
    remapped: Daemon, tmp_path: Path  # noqa: F811
) -> None:
    dk = remapped.client()
    c = dk.containers.run(IMAGE, ["sleep", "1d"], detach=True, name="cpremap")
    with tarfile.open(fileobj=io.BytesIO(get_archive(c, "/etc/passwd")[0])) as tar:
        assert (tar.getmembers()[0].uid, tar.getmembers()[0].gid) == (0, 0)
    assert c.put_archive("/tmp", tar_of(("mine", b"m")))  # a root-owned entry
    assert sh(c, "stat -c %u:%g /tmp/mine") == "0:0\n"  # root inside the container
    c.stop(timeout=0)  # the stopped container's view: the same owners
    with tarfile.open(fileobj=io.BytesIO(get_archive(c, "/tmp/mine")[0])) as tar:
        assert (tar.getmembers()[0].uid, tar.getmembers()[0].gid) == (0, 0)
    exported = b"".join(c.export())
    with tarfile.open(fileobj=io.BytesIO(exported)) as tar:
        member = tar.getmember("bin/busybox")
        assert (member.uid, member.gid) == (0, 0)
    dk.close()


def test_what_an_exit_wrote_is_there_the_moment_wait_returns(dk: Any) -> None:
    """An exit's root is let go after `wait` has its answer (the sync its superblock's
    last reference does comes after: `Engine._detach_exited`): at that moment the root
    is out of the mount table, and a copy out of it, an export and the next start all
    find what the run wrote, run after run."""
    c = dk.containers.create(IMAGE, ["sh", "-c", "echo run >> /out; seq 1 100000"])
    try:
        for n in range(1, 4):
            c.start()
            assert c.wait(timeout=60)["StatusCode"] == 0
            mounts = Path("/proc/self/mountinfo").read_text()
            assert f"/{c.id}/rootfs " not in mounts
            stream, _ = c.get_archive("/out")
            with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
                member = tar.extractfile("out")
                assert member is not None and member.read() == b"run\n" * n
            exported = b"".join(c.export())
            with tarfile.open(fileobj=io.BytesIO(exported)) as tar:
                assert "out" in tar.getnames()
    finally:
        c.remove(force=True)
