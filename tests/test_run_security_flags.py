"""The run flags of Docker's security defaults, applied as Docker applies them.

`--cap-add`/`--cap-drop` (ALL, with or without CAP_, any case), `--device`,
`--device-cgroup-rule`, `--read-only`, `exec --privileged`, `--userns=host` and the
daemon's `userns-remap: default` (root inside unprivileged outside), seen from inside
containers through the docker CLI, docker-py, corral's CLI and compose; every bad
input a clear error with nothing made.

/dev/fuse (c 10:229) is the device of these tests: Docker's defaults deny it, and
opening it does nothing until a FUSE mount is asked for.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from conftest import Daemon, session_dir

IMAGE = "busybox:latest"
CAP_CHOWN, CAP_NET_BIND_SERVICE, CAP_NET_ADMIN = 1 << 0, 1 << 10, 1 << 12
DEFAULT_CAPS = 0xA80425FB


def ok(corral: Daemon, *args: str) -> str:
    r = corral.docker(*args)
    assert r.returncode == 0, f"docker {' '.join(args)} -> {r.returncode}: {r.stderr}"
    return r.stdout


def cap_eff(out: str | bytes) -> int:
    text = out.decode() if isinstance(out, bytes) else out
    for line in text.splitlines():
        if line.startswith("CapEff:"):
            return int(line.split()[1], 16)
    raise AssertionError(f"no CapEff in {text!r}")


def bounding() -> int:
    """The daemon's (this root test's) bounding set: what `ALL` gives."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapBnd:"):
            return int(line.split()[1], 16)
    raise AssertionError("no CapBnd")


# ------------------------------------------------------------ --cap-add / --cap-drop
def test_cap_drop_all_then_add_one(corral: Daemon) -> None:
    script = "grep CapEff /proc/self/status; chown 1:1 /tmp && echo chowned; true"
    out = ok(corral, "run", "--rm", "--cap-drop", "ALL", "--cap-add", "NET_BIND_SERVICE",
             IMAGE, "sh", "-c", script)
    assert cap_eff(out) == CAP_NET_BIND_SERVICE
    assert "chowned" not in out  # no CAP_CHOWN: even root may not give a file away
    r = corral.docker("run", "--rm", "--cap-drop", "ALL", IMAGE, "chown", "1:1", "/tmp")
    assert r.returncode == 1
    assert "Operation not permitted" in r.stderr
    # with the defaults root may chown
    assert ok(corral, "run", "--rm", IMAGE, "sh", "-c", script).endswith("chowned\n")


def test_capability_names_in_any_case_with_or_without_cap(corral: Daemon) -> None:
    for name in ("net_admin", "CAP_NET_ADMIN", "cap_Net_Admin", "NET_ADMIN"):
        out = ok(corral, "run", "--rm", "--cap-add", name, "--cap-drop", "chown", IMAGE,
                 "grep", "CapEff", "/proc/self/status")
        assert cap_eff(out) == (DEFAULT_CAPS | CAP_NET_ADMIN) & ~CAP_CHOWN, name
    r = corral.cli("run", "--rm", "--cap-drop", "all", "--cap-add", "cap_net_bind_service",
                   IMAGE, "grep", "CapEff", "/proc/self/status")
    assert cap_eff(r.stdout) == CAP_NET_BIND_SERVICE, r.stderr


def test_docker_py_capabilities_and_a_lone_string(dk: Any, corral: Daemon) -> None:
    out = dk.containers.run(IMAGE, ["grep", "CapEff", "/proc/self/status"],
                            cap_drop=["ALL"], cap_add=["chown"], remove=True)
    assert cap_eff(out) == CAP_CHOWN
    # A lone string is a list of one, as Docker's StrSlice reads it: "ALL", not A, L, L
    cid = dk.api.create_container(IMAGE, ["grep", "CapEff", "/proc/self/status"],
                                  host_config={"CapAdd": "ALL"})["Id"]
    assert dk.api.inspect_container(cid)["HostConfig"]["CapAdd"] == ["ALL"]
    dk.api.start(cid)
    assert dk.api.wait(cid, timeout=30)["StatusCode"] == 0
    assert cap_eff(dk.api.logs(cid)) == bounding()
    dk.api.remove_container(cid)


@pytest.mark.parametrize("value", [5, {"ALL": True}, ["CHOWN", 7]])
def test_capabilities_not_a_list_of_names_are_a_400(dk: Any, value: Any) -> None:
    with pytest.raises(docker.errors.APIError) as err:
        dk.api.create_container(IMAGE, ["true"], host_config={"CapAdd": value})
    assert err.value.status_code == 400
    assert "CapAdd" in str(err.value)
    assert dk.containers.list(all=True) == []


def test_compose_cap_add_and_cap_drop(corral: Daemon, tmp_path: Path) -> None:
    file = tmp_path / "compose.yaml"
    file.write_text(
        "name: caps\nservices:\n  a:\n    image: busybox\n"
        "    command: [grep, CapEff, /proc/self/status]\n"
        "    cap_drop: [ALL]\n    cap_add: [net_bind_service, CAP_CHOWN]\n"
    )
    r = corral.cli("compose", "-f", str(file), "up")
    assert r.returncode == 0, r.stderr
    assert cap_eff(r.stdout.split("|")[-1].strip()) == CAP_NET_BIND_SERVICE | CAP_CHOWN, r.stdout
    assert corral.cli("compose", "-f", str(file), "down").returncode == 0


# ------------------------------------------------------------------------ --device
FUSE = "/dev/fuse"
needs_fuse = pytest.mark.skipif(not Path(FUSE).is_char_device(), reason="no /dev/fuse here")
# How an open of $1 went: the shell's redirection error names the errno.
OPEN = 'for m in "<" "<>"; do (eval "exec 3$m$1") 2>/dev/null && echo "$m ok" || echo "$m no"; done'


def opens(corral: Daemon, *flags: str, path: str = "/dev/fuse", pre: str = "") -> list[str]:
    out = ok(corral, "run", "--rm", *flags, IMAGE, "sh", "-c", f"{pre}set -- {path}; {OPEN}")
    return out.split("\n")[:-1]


@needs_fuse
def test_device_is_made_where_asked_with_its_permissions(corral: Daemon) -> None:
    assert ok(corral, "run", "--rm", "--device", "/dev/null:/dev/mynull", IMAGE, "sh", "-c",
              "echo x > /dev/mynull && echo written; [ -e /dev/fuse ] || echo no-fuse") == (
        "written\nno-fuse\n")
    assert opens(corral, "--device", FUSE) == ["< ok", "<> ok"]
    assert opens(corral, "--device", f"{FUSE}:/dev/f2", path="/dev/f2") == ["< ok", "<> ok"]
    assert opens(corral, "--device", f"{FUSE}:/dev/f2:r", path="/dev/f2") == ["< ok", "<> no"]
    assert opens(corral, "--device", f"{FUSE}:r") == ["< ok", "<> no"]
    # a device not given is absent, and made by hand it may not be opened
    r = corral.docker("run", "--rm", IMAGE, "ls", FUSE)
    assert r.returncode == 1 and "No such file or directory" in r.stderr
    assert opens(corral, pre="mknod /dev/fuse c 10 229; ") == ["< no", "<> no"]
    # privileged: every host device, and a --device under another path besides
    out = ok(corral, "run", "--rm", "--privileged", "--device", "/dev/null:/dev/mynull", IMAGE,
             "sh", "-c", "[ -c /dev/fuse ] && [ -c /dev/mynull ] && echo both")
    assert out == "both\n"
    st = Path(FUSE).stat()
    out = ok(corral, "run", "--rm", "--device", FUSE, IMAGE, "stat", "-c", "%t:%T %a %u",
             FUSE)
    assert out == f"{os.major(st.st_rdev):x}:{os.minor(st.st_rdev):x} 600 0\n"


@needs_fuse
def test_device_cgroup_rule_allows_a_mknod_device(corral: Daemon) -> None:
    mk = "mknod /dev/f c 10 229; "
    assert opens(corral, "--device-cgroup-rule", "c 10:229 rwm", path="/dev/f",
                 pre=mk) == ["< ok", "<> ok"]
    assert opens(corral, "--device-cgroup-rule", "c 10:* r", path="/dev/f",
                 pre=mk) == ["< ok", "<> no"]
    assert opens(corral, "--device-cgroup-rule", "b 10:229 rwm", path="/dev/f",
                 pre=mk) == ["< no", "<> no"]


@needs_fuse
def test_devices_from_docker_py_and_corral_and_compose(
    dk: Any, corral: Daemon, tmp_path: Path
) -> None:
    script = f"set -- /dev/f2; {OPEN}; mknod /dev/f3 c 10 229; set -- /dev/f3; {OPEN}"
    c = dk.containers.run(IMAGE, ["sh", "-c", script], devices=[f"{FUSE}:/dev/f2:r"],
                          detach=True)
    assert c.wait(timeout=30)["StatusCode"] == 0
    # the rule is the device's number's: the same node made by hand is as readable
    assert c.logs().decode().split("\n")[:-1] == ["< ok", "<> no", "< ok", "<> no"]
    c.reload()
    assert c.attrs["HostConfig"]["Devices"] == [
        {"PathOnHost": FUSE, "PathInContainer": "/dev/f2", "CgroupPermissions": "r"}]
    c.remove()
    # as dockerd's inspect of a container given none
    plain = dk.containers.create(IMAGE, ["true"]).attrs["HostConfig"]
    assert (plain["Devices"], plain["DeviceCgroupRules"], plain["UsernsMode"]) == ([], None, "")
    c = dk.containers.run(IMAGE, ["sh", "-c", f"mknod /dev/f c 10 229; set -- /dev/f; {OPEN}"],
                          device_cgroup_rules=["c 10:229 rw"], detach=True)
    assert c.wait(timeout=30)["StatusCode"] == 0
    assert c.logs().decode().split("\n")[:-1] == ["< ok", "<> ok"]
    c.reload()
    assert c.attrs["HostConfig"]["DeviceCgroupRules"] == ["c 10:229 rw"]
    c.remove()
    r = corral.cli("run", "--rm", "--device", f"{FUSE}:/dev/f2", IMAGE, "sh", "-c",
                   f"set -- /dev/f2; {OPEN}")
    assert r.stdout == "< ok\n<> ok\n", r.stderr
    file = tmp_path / "compose.yaml"
    file.write_text(
        "name: devs\nservices:\n  a:\n    image: busybox\n    command: [sleep, '1000']\n"
        "    stop_grace_period: 1s\n"
        f"    devices: ['{FUSE}:/dev/f2:r', {{source: /dev/null, target: /dev/n2}}]\n"
        "    device_cgroup_rules: ['c 10:229 rw']\n"
    )
    r = corral.cli("compose", "-f", str(file), "up", "-d")
    assert r.returncode == 0, r.stderr
    out = ok(corral, "exec", "devs-a-1", "sh", "-c",
             f"set -- /dev/f2; {OPEN}; echo x > /dev/n2 && echo n2")
    assert out == "< ok\n<> ok\nn2\n"  # the rule allows more than the device's own
    assert corral.cli("compose", "-f", str(file), "down").returncode == 0


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--device", "/dev/nope"], 'error gathering device information while adding custom '
         'device "/dev/nope": no such file or directory'),
        (["--device", "/etc/passwd"], 'adding custom device "/etc/passwd": not a device node'),
        (["--device", "/dev/null:dev/n"], ": dev/n is not an absolute path\n"),
        (["--device", "/dev/null:/n:rwx"], ": bad mode specified: rwx\n"),
        (["--device", "a:b:c:d"], ": bad format for path: a:b:c:d\n"),
        (["--device", ":/x"], ": bad format for path: :/x\n"),
        (["--device-cgroup-rule", "c 1:3"], 'invalid argument "c 1:3" for '
         '"--device-cgroup-rule" flag: invalid device cgroup format \'c 1:3\''),
        (["--device-cgroup-rule", "x 1:3 rwm"], "invalid device cgroup format 'x 1:3 rwm'"),
    ],
)
def test_bad_devices_and_rules_are_refused_with_nothing_made(
    corral: Daemon, flags: list[str], message: str
) -> None:
    r = corral.docker("run", *flags, IMAGE, "true")
    # the docker CLI's own rule: 127 for an error naming "no such file or directory"
    code = 127 if "no such file" in message else 125
    assert r.returncode == code, r.stderr
    assert message in r.stderr
    assert ok(corral, "ps", "-aq") == ""
    c = corral.cli("run", *flags, IMAGE, "true")
    assert c.returncode == code, c.stderr  # corral's CLI maps it as docker's does
    assert message in c.stderr
    assert ok(corral, "ps", "-aq") == ""


@pytest.mark.parametrize(
    ("host_config", "message"),
    [
        ({"DeviceCgroupRules": ["c 1:3"]}, "invalid device cgroup rule format: 'c 1:3'"),
        ({"DeviceCgroupRules": ["c 99999999999999999999:3 r"]},
         "invalid major value in device cgroup rule format"),
        ({"Devices": [{"PathOnHost": "/dev/null", "PathInContainer": "/n",
                       "CgroupPermissions": "rwq"}]}, "CgroupPermissions: invalid device mode"),
        ({"Devices": [{"PathOnHost": "/dev/null", "PathInContainer": "n"}]},
         "PathInContainer: 'n' is not an absolute path"),
        ({"Devices": [{"PathInContainer": "/n"}]}, "PathOnHost: a device path on the host"),
    ],
)
def test_bad_device_bodies_are_a_400(dk: Any, host_config: dict[str, Any], message: str) -> None:
    with pytest.raises(docker.errors.APIError) as err:
        dk.api.create_container(IMAGE, ["true"], host_config=host_config)
    assert err.value.status_code == 400
    assert message in str(err.value)
    assert dk.containers.list(all=True) == []


# ---------------------------------------------------------------------- --read-only
RO = ("touch /x 2>&1; touch /tmp/y && echo tmp; touch /dev/shm/z && echo shm; "
      "{ echo 1.2.3.4 h >> /etc/hosts; } 2>&1 && echo hosts; true")


def test_read_only_root_keeps_tmpfs_writable(corral: Daemon) -> None:
    out = ok(corral, "run", "--rm", "--read-only", "--tmpfs", "/tmp", IMAGE, "sh", "-c", RO)
    # as Docker: the daemon's /etc/hosts, resolv.conf, hostname are read-only with the root
    assert out == ("touch: /x: Read-only file system\ntmp\nshm\n"
                   "sh: can't create /etc/hosts: Read-only file system\n")
    plain = ok(corral, "run", "--rm", IMAGE, "sh", "-c", RO)
    assert plain == "tmp\nshm\nhosts\n"
    # volumes are the user's mounts: writable under a read-only root
    out = ok(corral, "run", "--rm", "--read-only", "-v", "rovol:/data", IMAGE, "sh", "-c",
             "touch /data/z && echo vol")
    assert out == "vol\n"
    r = corral.cli("run", "--rm", "--read-only", IMAGE, "touch", "/x")
    assert (r.returncode, r.stderr) == (1, "touch: /x: Read-only file system\n")


def test_read_only_from_docker_py_and_compose(dk: Any, corral: Daemon, tmp_path: Path) -> None:
    out = dk.containers.run(IMAGE, ["sh", "-c", RO], read_only=True, tmpfs={"/tmp": ""},
                            remove=True)
    assert out.decode().splitlines()[1:3] == ["tmp", "shm"]
    assert "Read-only file system" in out.decode().splitlines()[0]
    file = tmp_path / "compose.yaml"
    file.write_text("name: ro\nservices:\n  a:\n    image: busybox\n"
                    "    command: [sh, -c, 'touch /x']\n    read_only: true\n")
    r = corral.cli("compose", "-f", str(file), "up")
    assert r.returncode == 0, r.stderr
    assert "touch: /x: Read-only file system" in r.stdout
    assert corral.cli("compose", "-f", str(file), "down").returncode == 0


# ------------------------------------------------------------------ exec --privileged
def test_exec_privileged_gives_that_exec_every_capability(corral: Daemon, dk: Any) -> None:
    cid = ok(corral, "run", "-d", IMAGE, "sleep", "1000").strip()
    priv = ok(corral, "exec", "--privileged", cid, "grep", "CapEff", "/proc/self/status")
    assert cap_eff(priv) == bounding()
    plain = ok(corral, "exec", cid, "grep", "CapEff", "/proc/self/status")
    assert cap_eff(plain) == DEFAULT_CAPS
    r = corral.cli("exec", "--privileged", cid, "grep", "CapEff", "/proc/self/status")
    assert cap_eff(r.stdout) == bounding(), r.stderr
    ex = dk.api.exec_create(cid, ["true"], privileged=True)
    assert dk.api.exec_inspect(ex["Id"])["ProcessConfig"]["privileged"] is True
    ok(corral, "rm", "-f", cid)


# ----------------------------------------------------------- --userns, userns-remap
def test_userns_host_is_the_default_and_the_only_mode(corral: Daemon, dk: Any) -> None:
    host_map = Path("/proc/self/uid_map").read_text().split()
    out = ok(corral, "run", "--rm", "--userns=host", IMAGE, "cat", "/proc/self/uid_map")
    assert out.split() == host_map == ["0", "0", "4294967295"]
    assert ok(corral, "run", "--rm", IMAGE, "cat", "/proc/self/uid_map").split() == host_map
    r = corral.cli("run", "--rm", "--userns", "host", IMAGE, "cat", "/proc/self/uid_map")
    assert r.stdout.split() == host_map, r.stderr
    r = corral.docker("run", "--rm", "--userns=private", IMAGE, "true")
    assert (r.returncode, r.stderr.splitlines()[0]) == (125, "docker: --userns: invalid USER mode")
    with pytest.raises(docker.errors.APIError) as err:
        dk.api.create_container(IMAGE, ["true"], host_config={"UsernsMode": "private"})
    assert err.value.status_code == 400
    assert 'HostConfig.UsernsMode="private" (--userns) is not supported by corral' in str(
        err.value)
    assert dk.containers.list(all=True) == []


def _subordinate(user: str, file: str) -> tuple[int, int]:
    for line in Path(file).read_text().splitlines():
        name, start, count = line.split(":")
        if name == user:
            return int(start), int(count)
    raise AssertionError(f"no {user} in {file}")


@pytest.fixture
def remapped(rootfs_tar: Path) -> Iterator[Daemon]:
    """A daemon with `userns-remap: default`, its root where the range may reach it."""
    from conftest import assert_nothing_left, stop_daemon

    base = session_dir(Path(tempfile.mkdtemp(prefix="corral-remap-", dir="/tmp")))
    base.chmod(0o711)
    d = _start_remapped(base)
    client = d.client()
    client.api.import_image_from_data(rootfs_tar.read_bytes(), repository="busybox",
                                      tag="latest")
    yield d
    client.close()
    client = d.client()  # a test may have restarted it
    for c in client.containers.list(all=True):
        c.remove(force=True, v=True)
    client.close()
    stop_daemon(d.proc)
    assert_nothing_left(base / "root")
    shutil.rmtree(base, ignore_errors=True)


def _start_remapped(base: Path) -> Daemon:
    from conftest import start_daemon

    conf = base / "daemon.yaml"
    conf.write_text("userns-remap: default\n")
    os.environ["CORRAL_CONFIG"] = str(conf)
    try:
        proc = start_daemon(base / "root", base / "d.sock", base / "d.log")
    finally:
        del os.environ["CORRAL_CONFIG"]
    return Daemon(root=base / "root", sock=base / "d.sock", proc=proc, log=base / "d.log")


def test_a_remapped_container_runs_again_after_a_daemon_restart(remapped: Daemon) -> None:
    from conftest import stop_daemon

    cid = ok(remapped, "create", IMAGE, "sh", "-c", "echo ran >> /tmp/runs; cat /tmp/runs")
    ok(remapped, "start", "-a", cid.strip())
    stop_daemon(remapped.proc)
    remapped.proc = _start_remapped(remapped.root.parent).proc
    assert ok(remapped, "start", "-a", cid.strip()) == "ran\nran\n"


def test_userns_remap_default_makes_root_inside_unprivileged_outside(remapped: Daemon) -> None:
    start, count = _subordinate("dockremap", "/etc/subuid")
    gstart, _ = _subordinate("dockremap", "/etc/subgid")
    out = ok(remapped, "run", "--rm", IMAGE, "cat", "/proc/self/uid_map", "/proc/self/gid_map")
    assert out.split() == ["0", str(start), str(count), "0", str(gstart), str(count)]
    shared = Path(tempfile.mkdtemp(prefix="corral-shared-", dir="/tmp"))
    try:
        shared.chmod(0o777)
        script = "id -u; touch /data/made && echo made; touch /etc/x && ls -n /etc/x"
        out = ok(remapped, "run", "--rm", "-v", f"{shared}:/data", IMAGE, "sh", "-c", script)
        lines = out.splitlines()
        assert lines[:2] == ["0", "made"]
        assert lines[2].split()[2:4] == ["0", "0"]  # root's own file, inside
        st = (shared / "made").stat()
        assert (st.st_uid, st.st_gid) == (start, gstart)  # the range's root, outside
        # root inside may not touch a host file it was not given
        (shared / "hosts-own").write_text("x")
        (shared / "hosts-own").chmod(0o644)
        r = remapped.docker("run", "--rm", "-v", f"{shared}:/data", IMAGE, "sh", "-c",
                            "echo y >> /data/hosts-own")
        assert r.returncode == 1 and "Permission denied" in r.stderr
    finally:
        shutil.rmtree(shared)
    # the default bridge and none both work (the netns belongs to the namespace)
    out = ok(remapped, "run", "--rm", "--network", "none", IMAGE, "sh", "-c",
             "ls /sys/class/net; cat /proc/self/uid_map")
    assert out.split() == ["lo", "0", str(start), str(count)]
    out = ok(remapped, "run", "--rm", IMAGE, "sh", "-c", "ls /sys/class/net; hostname -i")
    assert out.split()[:2] == ["eth0", "lo"]
    # a new named volume is the mapped root's, as dockerd makes it
    out = ok(remapped, "run", "--rm", "-v", "rvol:/v", IMAGE, "sh", "-c",
             "touch /v/x && stat -c %u /v/x /v")
    assert out.split() == ["0", "0"]


def test_userns_remap_opt_out_and_refusals(remapped: Daemon) -> None:
    out = ok(remapped, "run", "--rm", "--userns=host", IMAGE, "cat", "/proc/self/uid_map")
    assert out.split() == ["0", "0", "4294967295"]
    r = remapped.docker("run", "--privileged", IMAGE, "true")
    assert r.returncode == 125
    assert "privileged mode is incompatible with user namespaces" in r.stderr
    assert ok(remapped, "run", "--rm", "--privileged", "--userns=host", IMAGE, "true") == ""
    cid = ok(remapped, "run", "-d", IMAGE, "sleep", "1000").strip()
    assert ok(remapped, "exec", cid, "cat", "/proc/self/uid_map").split()[1] != "0"
    r = remapped.docker("commit", cid, "x:1")
    assert "commit of a container under userns-remap is not supported yet" in r.stderr
    ok(remapped, "rm", "-f", cid)
    assert ok(remapped, "ps", "-aq") == ""


def test_daemon_userns_remap_bad_values_are_refused_and_nothing_started(tmp_path: Path) -> None:
    conf = tmp_path / "daemon.yaml"
    conf.write_text(f"root: {tmp_path}/root\nuserns-remap: 'a:b:c'\n")
    r = subprocess.run([sys.executable, "-m", "supervisor.daemon", "--config", str(conf)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert r.stderr == (f"{conf}:2:15: userns-remap 'a:b:c': want default, USER or "
                        "USER:GROUP (names or ids)\n")
    r = subprocess.run([sys.executable, "-m", "supervisor.daemon", "--config", "",
                        "--root", f"{tmp_path}/root", "--userns-remap", "nosuchuser"],
                       capture_output=True, text=True, timeout=30)
    assert (r.returncode, r.stderr) == (1, "corral daemon: userns-remap 'nosuchuser': no such "
                                        "user 'nosuchuser'\n")
    assert not (tmp_path / "root").exists()
    # pytest's directories are 0700: the range could not walk down to a rootfs
    r = subprocess.run([sys.executable, "-m", "supervisor.daemon", "--config", "",
                        "--root", f"{tmp_path}/root", "--userns-remap", "default"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert r.stderr.startswith(f"corral daemon: userns-remap: the state root {tmp_path}/root "
                               "is not reachable by the remapped root: ")
    assert "lacks o+x" in r.stderr
    assert not (tmp_path / "root").exists()
