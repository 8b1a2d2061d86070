"""`--init` and `--privileged` applied, and what corral does not apply refused by name.

Through the real docker CLI, docker-py, corral's CLI and compose, as Docker behaves:
`--init` runs tini (Debian's tini-static) as PID 1 at /sbin/docker-init with the command
as its child; `--privileged` gives every capability, the host's devices, nothing
masked or read-only, a writable /sys and no no_new_privs.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import docker
import pytest
from conftest import Daemon

IMAGE = "busybox:latest"

pytestmark = pytest.mark.skipif(
    shutil.which("tini-static") is None, reason="needs Debian's tini (scripts/setup)"
)


def ok(corral: Daemon, *args: str) -> str:
    r = corral.docker(*args)
    assert r.returncode == 0, f"docker {' '.join(args)} -> {r.returncode}: {r.stderr}"
    return r.stdout


# ------------------------------------------------------------------------ --init
def test_docker_run_init_is_pid_1_with_the_command_its_child(corral: Daemon) -> None:
    script = "cat /proc/1/comm; cat /proc/1/cmdline | tr '\\0' ' '; echo; echo ppid=$PPID; exit 7"
    r = corral.docker("run", "--rm", "--init", IMAGE, "sh", "-c", script)
    assert r.returncode == 7, r.stderr  # the command's exit code passes through tini
    comm, cmdline, ppid = r.stdout.splitlines()
    assert comm == "docker-init"
    assert cmdline.startswith("/sbin/docker-init -- sh -c ")
    assert ppid == "ppid=1"
    plain = corral.docker("run", "--rm", IMAGE, "sh", "-c", "cat /proc/1/comm; echo ppid=$PPID")
    assert plain.stdout.splitlines() == ["sh", "ppid=0"]


def test_init_forwards_signals_to_the_command(dk: Any) -> None:
    # PID 1 `sleep` ignores SIGTERM (no handler, PID 1); under tini it is forwarded.
    # Signal only once the command runs (tini forwards from before its fork on; a signal
    # that arrives while runc's init is still becoming tini has nobody to forward it).
    c = dk.containers.run(IMAGE, ["sh", "-c", "echo ready; exec sleep 1000"], init=True,
                          detach=True)  # fmt: skip
    lines = c.logs(stream=True, follow=True)
    assert next(lines) == b"ready\n"
    lines.close()
    c.kill(signal="SIGTERM")
    assert c.wait(timeout=30)["StatusCode"] == 143
    c.reload()
    assert c.attrs["HostConfig"]["Init"] is True
    assert c.attrs["Path"] == "sh"  # as Docker: the user's command, not docker-init


ORPHAN = "mkfifo /tmp/f; (cat /tmp/f & echo $! > /tmp/orphan); exec sleep 1000"
# Wait until the orphan's parent is PID 1 (its own parent has exited), then let it exit.
RELEASE = (
    "until [ -s /tmp/orphan ]; do :; done; p=$(cat /tmp/orphan); "
    'until [ "$(cut -d" " -f4 /proc/$p/stat)" = 1 ]; do :; done; echo go > /tmp/f; '
)


def test_init_reaps_orphaned_zombies(corral: Daemon) -> None:
    # tini, PID 1, reaps the orphan once it exits: its /proc entry goes away
    cid = ok(corral, "run", "-d", "--init", IMAGE, "sh", "-c", ORPHAN).strip()
    probe = RELEASE + "while [ -e /proc/$p ]; do :; done; echo reaped"
    r = corral.docker("exec", cid, "sh", "-c", probe, timeout=30)
    assert r.stdout == "reaped\n", r.stderr
    ok(corral, "rm", "-f", cid)
    # without it PID 1 is `sleep`, which never waits: the orphan stays a zombie
    cid = ok(corral, "run", "-d", IMAGE, "sh", "-c", ORPHAN).strip()
    probe = RELEASE + 'until [ "$(cut -d" " -f3 /proc/$p/stat)" = Z ]; do :; done; cat /proc/1/comm'
    r = corral.docker("exec", cid, "sh", "-c", probe, timeout=30)
    assert r.stdout == "sleep\n", r.stderr
    ok(corral, "rm", "-f", cid)


def test_corral_run_init(corral: Daemon) -> None:
    r = corral.cli("run", "--rm", "--init", IMAGE, "sh", "-c", "cat /proc/1/comm; exit 3")
    assert (r.returncode, r.stdout) == (3, "docker-init\n"), r.stderr


def test_compose_init_and_privileged(corral: Daemon, dk: Any, tmp_path: Path) -> None:
    file = tmp_path / "compose.yaml"
    file.write_text(
        "name: initp\nservices:\n"
        "  a:\n    image: busybox\n    command: [sleep, '1000']\n    init: true\n"
        "    privileged: true\n    stop_grace_period: 1s\n"
        "  b:\n    image: busybox\n    command: [sleep, '1000']\n    stop_grace_period: 1s\n"
    )
    r = corral.cli("compose", "-f", str(file), "up", "-d")
    assert r.returncode == 0, r.stderr
    a = ok(corral, "exec", "initp-a-1", "sh", "-c",
           "cat /proc/1/comm; grep NoNewPrivs /proc/1/status")
    assert a.split() == ["docker-init", "NoNewPrivs:", "0"]
    b = ok(corral, "exec", "initp-b-1", "cat", "/proc/1/comm")
    assert b.strip() == "sleep"
    r = corral.cli("compose", "-f", str(file), "down")
    assert r.returncode == 0, r.stderr


def _start_with(private_daemon: Any, monkeypatch: pytest.MonkeyPatch, **env: str) -> Daemon:
    with monkeypatch.context() as m:  # the daemon's environment only, not the test's
        for key, value in env.items():
            m.setenv(key, value)
        d: Daemon = private_daemon()
    return d


def test_daemon_init_true_is_the_default_a_container_may_refuse(
    private_daemon: Any, rootfs_tar: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf = tmp_path / "daemon.yaml"
    conf.write_text("init: true\n")
    d = _start_with(private_daemon, monkeypatch, CORRAL_CONFIG=str(conf))
    d.client().api.import_image_from_data(rootfs_tar.read_bytes(), repository="busybox",
                                          tag="latest")
    assert ok(d, "run", "--rm", IMAGE, "cat", "/proc/1/comm").strip() == "docker-init"
    # `docker run --init=false` sends Init: false, which beats the daemon's default
    assert ok(d, "run", "--rm", "--init=false", IMAGE, "cat", "/proc/1/comm").strip() == "cat"


def test_init_without_an_init_binary_is_refused_by_name(
    private_daemon: Any, rootfs_tar: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # runc is in /usr/sbin; tini-static (/usr/bin) is not on this daemon's PATH
    d = _start_with(private_daemon, monkeypatch, PATH="/usr/sbin:/sbin", CORRAL_CONFIG="")
    d.client().api.import_image_from_data(rootfs_tar.read_bytes(), repository="busybox",
                                          tag="latest")
    r = d.docker("run", "--init", IMAGE, "true")
    assert r.returncode == 125
    assert "--init (HostConfig.Init): no init binary on this host" in r.stderr
    assert ok(d, "ps", "-aq") == ""  # nothing half made
    assert ok(d, "run", "--rm", IMAGE, "echo", "fine").strip() == "fine"


def test_daemon_refuses_an_init_path_that_can_not_run_in_containers(tmp_path: Path) -> None:
    dynamic = shutil.which("tini") or "/bin/sh"  # dynamically linked: no ld.so in an image
    conf = tmp_path / "daemon.yaml"
    conf.write_text(f"root: {tmp_path}/root\ninit-path: {dynamic}\n")
    r = subprocess.run(
        [sys.executable, "-m", "supervisor.daemon", "--config", str(conf)],
        capture_output=True, text=True, timeout=30,
    )
    assert r.returncode == 1
    assert r.stderr.startswith(f"{conf}:2:12: {Path(dynamic)}: not a statically linked")
    assert not (tmp_path / "root").exists()
    r = subprocess.run(
        [sys.executable, "-m", "supervisor.daemon", "--config", "", "--init-path", "/no/tini"],
        capture_output=True, text=True, timeout=30,
    )
    assert (r.returncode, r.stderr) == (1, "corral daemon: --init-path /no/tini: no such file\n")


# ------------------------------------------------------------------ --privileged
POWERS = (
    "grep -E 'CapEff|NoNewPrivs' /proc/self/status; "
    "ip link add v0 type veth peer name v1 2>/dev/null && echo netadmin; "
    "mkdir -p /tmp/m && mount -t tmpfs none /tmp/m 2>/dev/null && echo mount; "
    "[ -c /dev/loop-control ] && echo hostdev; "
    "head -c1 /proc/timer_list | grep -q . && echo unmasked; "
    "grep -q ' /sys rw,' /proc/self/mountinfo && echo sysrw; "
    "(echo p > /proc/sys/kernel/hostname) 2>/dev/null && echo procsysrw; true"
)


def _bounding() -> str:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapBnd:"):
            return line.split()[1]
    raise AssertionError("no CapBnd")


def test_privileged_has_the_hosts_powers_and_plain_has_none(corral: Daemon) -> None:
    if not Path("/dev/loop-control").exists():
        pytest.skip("the host has no /dev/loop-control")
    out = ok(corral, "run", "--rm", "--privileged", IMAGE, "sh", "-c", POWERS).split()
    assert out == ["CapEff:", _bounding(), "NoNewPrivs:", "0", "netadmin", "mount", "hostdev",
                   "unmasked", "sysrw", "procsysrw"]
    plain = ok(corral, "run", "--rm", IMAGE, "sh", "-c", POWERS).split()
    assert plain == ["CapEff:", "00000000a80425fb", "NoNewPrivs:", "1"]


def test_privileged_from_docker_py_and_corral_and_in_execs(corral: Daemon, dk: Any) -> None:
    c = dk.containers.run(IMAGE, ["sleep", "1000"], privileged=True, detach=True)
    code, out = c.exec_run(["grep", "CapEff", "/proc/self/status"])
    assert (code, out.split()) == (0, [b"CapEff:", _bounding().encode()])
    c.reload()
    assert c.attrs["HostConfig"]["Privileged"] is True
    assert c.attrs["HostConfig"].get("MaskedPaths") in (None, [])  # Docker stores none
    c.remove(force=True)
    r = corral.cli("run", "--rm", "--privileged", IMAGE, "grep", "CapEff", "/proc/self/status")
    assert r.stdout.split() == ["CapEff:", _bounding()], r.stderr


def test_an_unprivileged_container_shows_dockers_masked_paths(dk: Any) -> None:
    c = dk.containers.create(IMAGE, ["true"])
    assert "/proc/timer_list" in c.attrs["HostConfig"]["MaskedPaths"]
    assert "/proc/sys" in c.attrs["HostConfig"]["ReadonlyPaths"]
    # `--security-opt systempaths=unconfined` is sent as empty lists: nothing masked
    c2 = dk.api.create_container(
        IMAGE, ["sh", "-c", "head -c1 /proc/timer_list | grep -q ."],
        host_config={"MaskedPaths": [], "ReadonlyPaths": []},
    )
    dk.api.start(c2)
    assert dk.api.wait(c2, timeout=30)["StatusCode"] == 0


def test_cap_add_all_and_unknown_capabilities(corral: Daemon) -> None:
    out = ok(corral, "run", "--rm", "--cap-add", "ALL", "--cap-drop", "NET_RAW", IMAGE,
             "grep", "CapEff", "/proc/self/status").split()[1]
    assert int(out, 16) == int(_bounding(), 16) & ~(1 << 13)
    r = corral.docker("run", "--rm", "--cap-add", "BOGUS", IMAGE, "true")
    assert r.returncode == 125
    assert 'invalid CapAdd: unknown capability: "CAP_BOGUS"' in r.stderr


# ------------------------------------------------------------ nothing dropped
@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--cgroup-parent", "x"], 'HostConfig.CgroupParent="x" (--cgroup-parent) is not'),
        (["--blkio-weight", "300"], "HostConfig.BlkioWeight=300 (--blkio-weight) is not"),
        (["--storage-opt", "size=1G"], "HostConfig.StorageOpt="),
        (["--security-opt", "label=level:s0"], 'invalid --security-opt 2: "label=level:s0"'),
        (["--device-read-bps", "/dev/null:1mb"], "(--device-read-bps) is not supported"),
        (["--platform", "linux/arm64"], "does not match the specified platform (linux/arm64)"),
    ],
)
def test_docker_flags_corral_does_not_apply_are_refused_by_name(
    corral: Daemon, flags: list[str], message: str
) -> None:
    r = corral.docker("run", *flags, IMAGE, "true")
    assert r.returncode == 125
    assert message in r.stderr
    assert ok(corral, "ps", "-aq") == ""  # nothing made


def test_docker_py_fields_corral_does_not_apply_are_refused_by_name(dk: Any) -> None:
    with pytest.raises(docker.errors.APIError) as err:
        dk.containers.create(IMAGE, ["true"], blkio_weight=500)
    assert err.value.status_code == 400
    assert "HostConfig.BlkioWeight=500 (--blkio-weight) is not supported by corral" in str(
        err.value
    )
    assert dk.containers.list(all=True) == []


def test_domainname_and_volume_nocopy_are_applied(corral: Daemon) -> None:
    out = ok(corral, "run", "--rm", "--domainname", "example.org", IMAGE, "cat",
             "/proc/sys/kernel/domainname")
    assert out == "example.org\n"
    assert ok(corral, "run", "--rm", "-v", "initcopied:/etc", IMAGE, "ls", "/etc") != ""
    assert ok(corral, "run", "--rm", "-v", "initnocopy:/etc:nocopy", IMAGE, "ls", "/etc") == ""
