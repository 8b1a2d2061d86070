"""Bad input through the real docker CLI: one clear error naming the culprit, docker's
exit code, and nothing half made (no container, volume, directory, mount or runc state;
no image, layer or blob)."""

from __future__ import annotations

import io
import os
import tarfile
import uuid
from pathlib import Path
from typing import Any

import pytest
from conftest import Daemon

IMAGE = "busybox:latest"


def ok(corral: Daemon, *args: str) -> str:
    r = corral.docker(*args)
    assert r.returncode == 0, f"docker {' '.join(args)} -> {r.returncode}: {r.stderr}"
    return r.stdout


def snapshot(corral: Daemon) -> dict[str, Any]:
    return {
        "containers": sorted(ok(corral, "ps", "-aq", "--no-trunc").split()),
        "volumes": sorted(ok(corral, "volume", "ls", "-q").split()),
        "dirs": sorted(p.name for p in (corral.root / "containers").iterdir()),
    }


def image_snapshot(corral: Daemon) -> dict[str, Any]:
    def files(d: Path) -> list[str]:
        return sorted(str(p.relative_to(d)) for p in d.rglob("*")) if d.exists() else []

    return {
        "images": sorted(ok(corral, "images", "-aq", "--no-trunc").split()),
        "layers": sorted(p.name for p in (corral.root / "layers").iterdir()),
        "blobs": files(corral.root / "images" / "blobs"),
    }


def mounts_under(path: Path) -> list[str]:
    return [ln for ln in Path("/proc/self/mountinfo").read_text().splitlines()
            if f" {path}/" in ln]


def runc_state(corral: Daemon) -> list[str]:
    d = corral.root / "runc"
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


def error_lines(stderr: str) -> list[str]:
    """Non-empty stderr lines, without the CLI's usage hints."""
    return [ln for ln in stderr.splitlines()
            if ln.strip() and not ln.startswith(("See 'docker", "Run 'docker", "Usage:"))]


def error_line(stderr: str) -> str:
    """The CLI's error: one non-empty line (docker's usage hint aside)."""
    lines = error_lines(stderr)
    assert len(lines) == 1, f"expected one error line, got: {stderr!r}"
    return lines[0]


# --- docker run / create --------------------------------------------------------------


def test_unknown_image(corral: Daemon, registry: Any) -> None:
    before = snapshot(corral)
    r = corral.docker("run", "--pull", "never", "nosuch:image", "true")
    assert r.returncode == 125
    line = error_line(r.stderr)
    assert "nosuch:image" in line and "No such image" in line
    # Without --pull never the CLI says it will pull, then fails (the registry has no
    # such image): docker's two lines, both naming the image; still 125.
    name = f"{registry.host}/nosuch:image"
    r = corral.docker("run", name, "true")
    assert r.returncode == 125
    lines = error_lines(r.stderr)
    assert lines[0] == f"Unable to find image '{name}' locally"
    assert len(lines) == 2 and f"manifest for {name} not found" in lines[1]
    assert snapshot(corral) == before


def test_name_already_in_use(corral: Daemon) -> None:
    first = ok(corral, "create", "--name", "dup", IMAGE, "true").strip()
    before = snapshot(corral)
    r = corral.docker("run", "--name", "dup", IMAGE, "true")
    assert r.returncode == 125
    line = error_line(r.stderr)
    assert '"/dup"' in line and "already in use" in line and first in line
    assert snapshot(corral) == before


def test_remove_running_without_force(corral: Daemon) -> None:
    ok(corral, "run", "-d", "--name", "busy", IMAGE, "sleep", "1d")
    r = corral.docker("rm", "busy")
    assert r.returncode == 1
    line = error_line(r.stderr)
    assert "busy" in line or ok(corral, "inspect", "-f", "{{.Id}}", "busy").strip() in line
    assert "running" in line and "force" in line
    assert ok(corral, "inspect", "-f", "{{.State.Status}}", "busy").strip() == "running"
    assert ok(corral, "exec", "busy", "echo", "still") == "still\n"


@pytest.mark.parametrize("spec", ["a:b:c:d", "data:relative", "data:/x:bogusmode"])
def test_malformed_volume_spec(corral: Daemon, spec: str) -> None:
    before = snapshot(corral)
    r = corral.docker("run", "-v", spec, IMAGE, "true")
    assert r.returncode == 125
    line = error_line(r.stderr)
    assert spec in line, line
    # Nothing made: no container, and in particular no volume "data" or "a".
    assert snapshot(corral) == before


def test_malformed_env(corral: Daemon) -> None:
    before = snapshot(corral)
    r = corral.docker("run", "-e", "=x", IMAGE, "true")
    assert r.returncode == 125
    assert "=x" in error_line(r.stderr)
    assert snapshot(corral) == before


def test_bad_memory(corral: Daemon) -> None:
    before = snapshot(corral)
    r = corral.docker("run", "--memory", "12q", IMAGE, "true")
    assert r.returncode == 125
    assert "12q" in error_line(r.stderr)
    # Parsable but too small: the daemon refuses it (docker: "Minimum memory limit ...").
    r = corral.docker("run", "--memory", "1k", IMAGE, "true")
    assert r.returncode == 125
    assert "Minimum memory limit" in error_line(r.stderr)
    assert snapshot(corral) == before


def test_unknown_network(corral: Daemon) -> None:
    before = snapshot(corral)
    r = corral.docker("run", "--network", "nosuch", IMAGE, "true")
    assert r.returncode == 125
    # Docker: "docker: Error response from daemon: network nosuch not found." and nothing
    # about the image (a 404 from create makes the CLI think the image is missing and
    # try to pull it).
    line = error_line(r.stderr)
    assert "network nosuch not found" in line
    after = snapshot(corral)
    # Docker finds the network missing at start, leaving a created container; refusing
    # at create is fine too.  Either way nothing runs and nothing is mounted.
    for cid in set(after["containers"]) - set(before["containers"]):
        assert ok(corral, "inspect", "-f", "{{.State.Status}}", cid).strip() == "created"
    assert after["volumes"] == before["volumes"]
    assert mounts_under(corral.root / "containers") == []
    assert runc_state(corral) == []


def _assert_failed_start_left_nothing_running(corral: Daemon, before: dict[str, Any]) -> None:
    after = snapshot(corral)
    # docker run = create + start: the created container stays (as with Docker) ...
    new = [c for c in after["containers"] if c not in before["containers"]]
    assert len(new) == 1
    assert ok(corral, "inspect", "-f", "{{.State.Status}}", new[0]).strip() == "created"
    # ... but nothing of the failed start survives: no rootfs mount, no runc state.
    assert mounts_under(corral.root / "containers") == []
    assert runc_state(corral) == []
    assert after["volumes"] == before["volumes"]
    assert [d for d in after["dirs"] if d not in before["dirs"]] == new
    # It can be removed without force, like any stopped container.
    ok(corral, "rm", new[0])


def test_command_not_found(corral: Daemon) -> None:
    before = snapshot(corral)
    r = corral.docker("run", IMAGE, "/no/such")
    assert r.returncode == 127
    line = error_line(r.stderr)
    assert "/no/such" in line and "no such file or directory" in line
    _assert_failed_start_left_nothing_running(corral, before)


def test_command_not_found_in_path(corral: Daemon) -> None:
    before = snapshot(corral)
    r = corral.docker("run", IMAGE, "nosuchcmd")
    assert r.returncode == 127
    line = error_line(r.stderr)
    assert "nosuchcmd" in line
    _assert_failed_start_left_nothing_running(corral, before)


def test_command_not_executable(corral: Daemon) -> None:
    before = snapshot(corral)
    r = corral.docker("run", IMAGE, "/etc/passwd")
    assert r.returncode == 126
    line = error_line(r.stderr)
    assert "/etc/passwd" in line and "permission denied" in line
    _assert_failed_start_left_nothing_running(corral, before)


def test_rm_unknown_container(corral: Daemon) -> None:
    r = corral.docker("rm", "nosuch")
    assert r.returncode == 1
    assert error_line(r.stderr) == "Error response from daemon: No such container: nosuch"


def test_rmi_image_in_use(corral: Daemon, rootfs_tar: Path) -> None:
    image_id = ok(corral, "import", str(rootfs_tar), "used:1").strip()
    cid = ok(corral, "create", "used:1", "true").strip()
    r = corral.docker("rmi", "used:1")
    assert r.returncode == 1
    line = error_line(r.stderr)
    assert "conflict" in line and "used:1" in line and cid[:12] in line
    r = corral.docker("rmi", image_id)
    assert r.returncode == 1
    line = error_line(r.stderr)
    assert "conflict" in line and cid[:12] in line
    assert ok(corral, "images", "-q", "--no-trunc", "used:1").strip() == image_id
    assert ok(corral, "run", "--rm", "used:1", "echo", "kept") == "kept\n"


def test_rmi_unknown_image(corral: Daemon) -> None:
    r = corral.docker("rmi", "nosuch:image")
    assert r.returncode == 1
    line = error_line(r.stderr)
    assert "No such image" in line and "nosuch:image" in line


# --- hostile tarballs -------------------------------------------------------------------


def _tar(path: Path, entries: list[tarfile.TarInfo]) -> Path:
    with tarfile.open(path, "w") as tar:
        base = tarfile.TarInfo("ok-file")
        base.size = 3
        tar.addfile(base, io.BytesIO(b"ok\n"))
        for info in entries:
            data = io.BytesIO(b"pwned\n") if info.isfile() else None
            if info.isfile():
                info.size = 6
            tar.addfile(info, data)
    return path


def _file(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.REGTYPE
    return info


def _link(name: str, target: str, kind: bytes) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


def _hostile_cases(outside: Path, tag: str) -> dict[str, tuple[list[tarfile.TarInfo], str]]:
    """case -> (tar entries after a harmless file, the entry the error must name)."""
    return {
        "dotdot": ([_file(f"../escape-{tag}")], f"../escape-{tag}"),
        "deep-dotdot": ([_file(f"a/../../../escape-{tag}")], f"escape-{tag}"),
        "absolute": ([_file(f"/abs-{tag}")], f"/abs-{tag}"),
        "symlink-then-through": (
            [_link("evil", str(outside), tarfile.SYMTYPE), _file(f"evil/x-{tag}")],
            f"evil/x-{tag}",
        ),
        "hardlink-outside": ([_link("pw", "/etc/passwd", tarfile.LNKTYPE)], "pw"),
    }


CASES = ["dotdot", "deep-dotdot", "absolute", "symlink-then-through", "hardlink-outside"]


@pytest.mark.parametrize("case", CASES)
def test_hostile_import_refused(corral: Daemon, tmp_path: Path, case: str) -> None:
    tag = uuid.uuid4().hex[:8]
    outside = tmp_path / "outside"
    outside.mkdir()
    entries, culprit = _hostile_cases(outside, tag)[case]
    tar = _tar(tmp_path / "hostile.tar", entries)
    passwd = os.stat("/etc/passwd")
    before = image_snapshot(corral)

    r = corral.docker("import", str(tar), f"hostile:{tag}")

    assert r.returncode == 1, r.stdout
    line = error_line(r.stderr)
    assert culprit in line, line
    # Nothing written outside the layer ...
    assert list(outside.iterdir()) == []
    assert not Path(f"/abs-{tag}").exists()
    found = [p for p in (corral.root.parent, Path("/tmp"), Path("/"))
             for p in p.glob(f"*escape-{tag}*")]
    found += list(corral.root.rglob(f"*{tag}*"))
    assert found == []
    after_pw = os.stat("/etc/passwd")
    assert (after_pw.st_ino, after_pw.st_nlink, after_pw.st_mtime_ns) == (
        passwd.st_ino, passwd.st_nlink, passwd.st_mtime_ns)
    # ... and no image, layer or blob left by the refused import.
    assert image_snapshot(corral) == before
    assert ok(corral, "images", "-q", f"hostile:{tag}") == ""
    tmp = corral.root / "tmp"
    assert [p for p in tmp.rglob("*") if not p.is_dir()] == []


def test_not_a_tarball_import(corral: Daemon, tmp_path: Path) -> None:
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"this is not a tar archive\n" * 100)
    before = image_snapshot(corral)
    r = corral.docker("import", str(junk), "junk:1")
    assert r.returncode == 1
    error_line(r.stderr)
    assert image_snapshot(corral) == before
