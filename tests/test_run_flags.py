"""`run`/`create` flags a user sees inside the container: `--shm-size`, `--sysctl`,
`--group-add`, `--oom-*`, `--memory-reservation`, `--cpu-shares`, `--cpuset-*`,
`--ipc`, `--pid`, `--uts`, `--cidfile`, `--label-file`, `-a`, `--platform`.

Each through corral's CLI, the docker CLI or docker-py, as Docker 28 behaves, bad
values with docker's wording (the CLI's before anything is sent, the daemon's with
nothing made).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import docker
import pytest
from conftest import Daemon, kill_holder

IMAGE = "busybox:latest"


def ok(corral: Daemon, *args: str, cli: bool = False) -> str:
    r = corral.cli(*args) if cli else corral.docker(*args)
    assert r.returncode == 0, f"{' '.join(args)} -> {r.returncode}: {r.stderr}"
    return r.stdout


def refused(corral: Daemon, *args: str, cli: bool = False) -> str:
    r = corral.cli(*args) if cli else corral.docker(*args)
    assert r.returncode == 125, (r.returncode, r.stdout, r.stderr)
    return r.stderr


def nothing_made(corral: Daemon) -> None:
    assert ok(corral, "ps", "-aq") == ""


# ------------------------------------------------------------- /dev/shm, sysctl
@pytest.mark.parametrize("cli", [False, True], ids=["docker", "corral"])
def test_shm_size_is_the_size_of_dev_shm(corral: Daemon, cli: bool) -> None:
    out = ok(corral, "run", "--rm", "--shm-size", "128m", IMAGE, "df", "-k", "/dev/shm", cli=cli)
    assert out.splitlines()[1].split()[1] == str(128 * 1024)
    default = ok(corral, "run", "--rm", IMAGE, "df", "-k", "/dev/shm", cli=cli)
    assert default.splitlines()[1].split()[1] == str(64 * 1024)  # Docker's 64 MiB


def test_shm_size_bad_values(corral: Daemon) -> None:
    err = refused(corral, "run", "--rm", "--shm-size", "12x", IMAGE, "true", cli=True)
    assert "invalid argument \"12x\" for \"--shm-size\" flag: invalid suffix: 'x'" in err
    dk = corral.client()
    with pytest.raises(docker.errors.APIError) as exc:
        dk.containers.create(IMAGE, ["true"], shm_size=-1)
    assert "SHM size can not be less than 0" in str(exc.value)
    nothing_made(corral)


@pytest.mark.parametrize("cli", [False, True], ids=["docker", "corral"])
def test_sysctl_is_set_in_the_containers_namespaces(corral: Daemon, cli: bool) -> None:
    out = ok(corral, "run", "--rm", "--sysctl", "net.ipv4.ip_forward=1", "--sysctl",
             "kernel.msgmax=12345", IMAGE, "cat", "/proc/sys/net/ipv4/ip_forward",
             "/proc/sys/kernel/msgmax", cli=cli)  # fmt: skip
    assert out.split() == ["1", "12345"]


def test_sysctl_refusals(corral: Daemon) -> None:
    for cli in (False, True):
        err = refused(corral, "run", "--sysctl", "kernel.pid_max=10", IMAGE, "true", cli=cli)
        assert "sysctl 'kernel.pid_max=10' is not allowed" in err
    err = refused(corral, "run", "--network", "host", "--sysctl", "net.ipv4.ip_forward=1",
                  IMAGE, "true")  # fmt: skip
    assert 'sysctl "net.ipv4.ip_forward" is not allowed in the hosts network namespace' in err
    err = refused(corral, "run", "--ipc", "host", "--sysctl", "kernel.shmmax=1", IMAGE, "true")
    assert 'sysctl "kernel.shmmax" is not allowed in the hosts ipc namespace' in err
    nothing_made(corral)


# ------------------------------------------------------------------ groups, oom
def test_group_add_by_name_and_number(corral: Daemon) -> None:
    out = ok(corral, "run", "--rm", "--group-add", "www-data", "--group-add", "4242", IMAGE,
             "id", "-G")  # fmt: skip
    groups = out.split()
    assert "33" in groups and "4242" in groups  # the image's www-data
    # exec'd processes get them too, as dockerd's getUser
    cid = ok(corral, "run", "-d", "--group-add", "4242", IMAGE, "sleep", "100").strip()
    assert "4242" in ok(corral, "exec", cid, "id", "-G").split()
    ok(corral, "rm", "-f", cid)


def test_group_add_unknown_name_fails_the_start(corral: Daemon) -> None:
    r = corral.docker("run", "--rm", "--group-add", "nosuchgroup", IMAGE, "true")
    assert r.returncode != 0
    assert "Unable to find group nosuchgroup" in r.stderr


def test_oom_score_adj_and_its_range(corral: Daemon, dk: Any) -> None:
    out = ok(corral, "run", "--rm", "--oom-score-adj", "500", IMAGE, "cat",
             "/proc/self/oom_score_adj")  # fmt: skip
    assert out.strip() == "500"
    with pytest.raises(docker.errors.APIError) as exc:
        dk.containers.create(IMAGE, ["true"], oom_score_adj=1001)
    assert "Invalid value 1001, range for oom score adj is [-1000, 1000]" in str(exc.value)
    nothing_made(corral)


def _cgroup_file(dk: Any, cid: str, controller: str, name: str) -> str:
    """A cgroup v1 knob of the running container, read on the host."""
    pid = dk.api.inspect_container(cid)["State"]["Pid"]
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            for mount in Path("/sys/fs/cgroup").iterdir():
                if controller in mount.name.split(","):
                    return (mount / path.lstrip("/") / name).read_text()
    pytest.skip(f"no cgroup v1 {controller} controller here")


def test_memory_reservation_oom_kill_disable_cpu_shares_cpuset(corral: Daemon, dk: Any) -> None:
    cid = ok(corral, "run", "-d", "-m", "64m", "--memory-reservation", "32m",
             "--oom-kill-disable", "-c", "512", "--cpuset-cpus", "0", IMAGE, "sleep",
             "100").strip()  # fmt: skip
    assert _cgroup_file(dk, cid, "memory", "memory.soft_limit_in_bytes").strip() == str(32 << 20)
    assert "oom_kill_disable 1" in _cgroup_file(dk, cid, "memory", "memory.oom_control")
    assert _cgroup_file(dk, cid, "cpu", "cpu.shares").strip() == "512"
    assert _cgroup_file(dk, cid, "cpuset", "cpuset.cpus").strip() == "0"
    hc = dk.api.inspect_container(cid)["HostConfig"]
    assert (hc["MemoryReservation"], hc["OomKillDisable"], hc["CpuShares"]) == (
        32 << 20, True, 512)  # fmt: skip
    ok(corral, "rm", "-f", cid)


def test_memory_reservation_above_the_limit_is_refused(corral: Daemon) -> None:
    err = refused(corral, "run", "-m", "32m", "--memory-reservation", "64m", IMAGE, "true")
    assert "Minimum memory limit can not be less than memory reservation limit" in err
    nothing_made(corral)


# --------------------------------------------------------------- ipc, pid, uts
def test_ipc_shareable_joined_by_another_container(corral: Daemon) -> None:
    donor = ok(corral, "run", "-d", "--ipc", "shareable", IMAGE, "sh", "-c",
               "echo hi > /dev/shm/note; exec sleep 100").strip()  # fmt: skip
    ok(corral, "exec", donor, "sh", "-c", "until [ -s /dev/shm/note ]; do :; done")
    out = ok(corral, "run", "--rm", "--ipc", f"container:{donor}", IMAGE, "sh", "-c",
             "cat /dev/shm/note; readlink /proc/self/ns/ipc")  # fmt: skip
    note, ns = out.split()
    assert note == "hi"
    assert ns == ok(corral, "exec", donor, "readlink", "/proc/self/ns/ipc").strip()
    assert json.loads(ok(corral, "inspect", "-f", "{{json .HostConfig.IpcMode}}", donor)) == (
        "shareable")  # fmt: skip
    ok(corral, "rm", "-f", donor)


def test_ipc_private_donor_and_stopped_donor_are_refused(corral: Daemon) -> None:
    private = ok(corral, "run", "-d", IMAGE, "sleep", "100").strip()
    assert ok(corral, "inspect", "-f", "{{.HostConfig.IpcMode}}", private).strip() == "private"
    r = corral.docker("run", "--rm", "--ipc", f"container:{private}", IMAGE, "true")
    assert r.returncode != 0 and "non-shareable IPC" in r.stderr
    ok(corral, "rm", "-f", private)
    stopped = ok(corral, "create", "--ipc", "shareable", IMAGE, "true").strip()
    r = corral.docker("run", "--rm", "--pid", f"container:{stopped}", IMAGE, "true")
    assert r.returncode != 0 and "cannot join PID of a non running container" in r.stderr
    err = refused(corral, "run", "--ipc", "bogus", IMAGE, "true", cli=True)
    assert "--ipc: invalid IPC mode" in err


def test_ipc_host_and_none(corral: Daemon) -> None:
    host_ns = os.readlink("/proc/self/ns/ipc")
    assert ok(corral, "run", "--rm", "--ipc", "host", IMAGE, "readlink",
              "/proc/self/ns/ipc").strip() == host_ns  # fmt: skip
    private = ok(corral, "run", "--rm", IMAGE, "readlink", "/proc/self/ns/ipc").strip()
    assert private != host_ns
    out = ok(corral, "run", "--rm", "--ipc", "none", IMAGE, "sh", "-c",
             "grep -c ' /dev/shm ' /proc/self/mounts || true")  # fmt: skip
    assert out.strip() == "0"


def test_pid_host_and_container(corral: Daemon) -> None:
    out = ok(corral, "run", "--rm", "--pid", "host", IMAGE, "sh", "-c",
             "readlink /proc/self/ns/pid; cat /proc/1/comm")  # fmt: skip
    ns, comm = out.split()
    assert ns == os.readlink("/proc/self/ns/pid")
    assert comm == Path("/proc/1/comm").read_text().strip()
    donor = ok(corral, "run", "-d", IMAGE, "sleep", "100").strip()
    out = ok(corral, "run", "--rm", "--pid", f"container:{donor}", IMAGE, "cat", "/proc/1/comm")
    assert out.strip() == "sleep"  # the donor's PID 1
    ok(corral, "rm", "-f", donor)
    err = refused(corral, "run", "--pid", "container:", IMAGE, "true")
    assert "--pid: invalid PID mode" in err


def test_uts_host(corral: Daemon) -> None:
    out = ok(corral, "run", "--rm", "--uts", "host", IMAGE, "hostname")
    assert out.strip() == os.uname().nodename
    err = refused(corral, "run", "--uts", "host", "-h", "x", IMAGE, "true")
    assert "conflicting options: hostname and the UTS mode" in err
    err = refused(corral, "run", "--uts", "private", IMAGE, "true", cli=True)
    assert "--uts: invalid UTS mode" in err
    nothing_made(corral)


def test_docker_py_host_config_fields(corral: Daemon, dk: Any) -> None:
    out = dk.containers.run(IMAGE, ["sh", "-c", "df -k /dev/shm | tail -1; id -G; "
                                    "cat /proc/sys/net/ipv4/tcp_syncookies"],
                            shm_size="32m", group_add=["4243"],
                            sysctls={"net.ipv4.tcp_syncookies": "0"}, remove=True)  # fmt: skip
    shm, groups, cookies = out.decode().splitlines()
    assert shm.split()[1] == str(32 * 1024)
    assert "4243" in groups.split()
    assert cookies == "0"


# ----------------------------------------------------- client side: cidfile, ...
@pytest.mark.parametrize("cli", [False, True], ids=["docker", "corral"])
def test_cidfile_written_and_never_overwritten(corral: Daemon, cli: bool, tmp_path: Path) -> None:
    path = tmp_path / "cid"
    cid = ok(corral, "create", "--cidfile", str(path), IMAGE, "true", cli=cli).strip()
    assert path.read_text() == cid
    r = (corral.cli if cli else corral.docker)("create", "--cidfile", str(path), IMAGE, "true")
    assert r.returncode == 1  # docker create's exit code (run: 125)
    err = r.stderr
    assert "container ID file found, make sure the other container isn't running or delete" in err
    assert ok(corral, "ps", "-aq", "--no-trunc").split() == [cid]
    err = refused(corral, "run", "--cidfile", str(path), IMAGE, "true", cli=cli)
    assert "container ID file found" in err


@pytest.mark.parametrize("cli", [False, True], ids=["docker", "corral"])
def test_label_file(corral: Daemon, cli: bool, tmp_path: Path) -> None:
    labels = tmp_path / "labels"
    labels.write_text("# comment\na=1\nbare\n\nb=two words\n")
    cid = ok(corral, "create", "--label-file", str(labels), "-l", "a=override", IMAGE, "true",
             cli=cli).strip()  # fmt: skip
    got = json.loads(ok(corral, "inspect", "-f", "{{json .Config.Labels}}", cid))
    assert (got["a"], got["b"]) == ("override", "two words")
    assert "bare" not in got  # a line with no `=` is dropped, as docker reads it


@pytest.mark.parametrize("cli", [False, True], ids=["docker", "corral"])
def test_attach_names_the_streams(corral: Daemon, cli: bool) -> None:
    r = (corral.cli if cli else corral.docker)(
        "run", "--rm", "-a", "stderr", IMAGE, "sh", "-c", "echo out; echo err >&2"
    )
    assert r.returncode == 0, r.stderr
    assert (r.stdout, r.stderr) == ("", "err\n")
    err = refused(corral, "run", "-a", "bogus", IMAGE, "true", cli=cli)
    assert "valid streams are STDIN, STDOUT and STDERR" in err
    r = (corral.cli if cli else corral.docker)("run", "-d", "-a", "stdout", IMAGE, "true")
    assert r.returncode == 1  # docker 28's
    assert r.stderr.startswith("conflicting options: cannot specify both --attach and --detach")


def test_platform(corral: Daemon) -> None:
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)
    assert ok(corral, "run", "--rm", "--platform", f"linux/{arch}", IMAGE, "true", cli=True) == ""
    other = "arm64" if arch == "amd64" else "amd64"
    err = refused(corral, "run", "--rm", "--platform", f"linux/{other}", IMAGE, "true", cli=True)
    assert f"does not match the specified platform (linux/{other})" in err
    nothing_made(corral)


# -------------------------------------------------------------------------- --link
@pytest.mark.parametrize("cli", [False, True], ids=["docker", "corral"])
def test_link_on_the_default_bridge(corral: Daemon, dk: Any, cli: bool) -> None:
    ok(corral, "run", "-d", "--name", "db", "-h", "dbhost", "-e", "SECRET=s3", "--expose",
       "5432", "--expose", "80/udp", IMAGE, "sleep", "100")  # fmt: skip
    ip = dk.api.inspect_container("db")["NetworkSettings"]["Networks"]["bridge"]["IPAddress"]
    out = ok(corral, "run", "--name", "web", "--link", "db:data-base", IMAGE, "sh", "-c",
             "grep data-base /etc/hosts; env | grep ^DATA_BASE_ | sort", cli=cli)  # fmt: skip
    hosts, *env = out.splitlines()
    assert hosts.split() == [ip, "data-base", "dbhost", "db"]
    assert env == sorted([
        f"DATA_BASE_PORT=udp://{ip}:80",  # the first port in docker's order
        f"DATA_BASE_PORT_80_UDP=udp://{ip}:80", f"DATA_BASE_PORT_80_UDP_ADDR={ip}",
        "DATA_BASE_PORT_80_UDP_PORT=80", "DATA_BASE_PORT_80_UDP_PROTO=udp",
        f"DATA_BASE_PORT_5432_TCP=tcp://{ip}:5432", f"DATA_BASE_PORT_5432_TCP_ADDR={ip}",
        "DATA_BASE_PORT_5432_TCP_PORT=5432", "DATA_BASE_PORT_5432_TCP_PROTO=tcp",
        "DATA_BASE_NAME=/web/data-base", "DATA_BASE_ENV_SECRET=s3",
    ])  # fmt: skip
    assert dk.api.inspect_container("web")["HostConfig"]["Links"] == ["/db:/web/data-base"]


def test_link_refusals(corral: Daemon) -> None:
    r = corral.docker("run", "--rm", "--link", "nosuch", IMAGE, "true")
    assert r.returncode == 125 and "could not get container for nosuch" in r.stderr
    ok(corral, "create", "--name", "idle", IMAGE, "true")
    r = corral.docker("run", "--rm", "--name", "xx", "--link", "idle", IMAGE, "true")
    assert r.returncode != 0
    assert "Cannot link to a non running container: /idle AS /xx/idle" in r.stderr
    err = refused(corral, "run", "--rm", "--network", "container:idle", "--link", "idle",
                  IMAGE, "true")  # fmt: skip
    assert "container type network can't be used with links" in err
    err = refused(corral, "run", "--rm", "--network", "host", "--link", "idle", IMAGE, "true")
    assert "host type networking can't be used with links" in err
    idle = ok(corral, "inspect", "-f", "{{.Id}}", "idle").strip()
    assert ok(corral, "ps", "-aq", "--no-trunc").split() == [idle]  # nothing else made


# ------------------------------------------------------------------ --mac-address
@pytest.mark.parametrize("cli", [False, True], ids=["docker", "corral"])
def test_mac_address(corral: Daemon, dk: Any, cli: bool) -> None:
    ok(corral, "network", "create", "macs")
    for net in ("bridge", "macs"):
        cid = ok(corral, "run", "-d", "--network", net, "--mac-address", "92:D0:C6:0A:29:33",
                 IMAGE, "sleep", "100", cli=cli).strip()  # fmt: skip
        out = ok(corral, "exec", cid, "cat", "/sys/class/net/eth0/address")
        assert out.strip() == "92:d0:c6:0a:29:33"
        nets = dk.api.inspect_container(cid)["NetworkSettings"]["Networks"]
        assert nets[net]["MacAddress"] == "92:d0:c6:0a:29:33"
        ok(corral, "rm", "-f", cid)
    err = refused(corral, "run", "--mac-address", "92:d0:c6", IMAGE, "true", cli=cli)
    assert "92:d0:c6 is not a valid mac address" in err


def test_mac_address_through_docker_py_and_the_daemons_checks(corral: Daemon, dk: Any) -> None:
    out = dk.containers.run(IMAGE, ["cat", "/sys/class/net/eth0/address"],
                            mac_address="02:42:ac:11:00:99", remove=True)  # fmt: skip
    assert out == b"02:42:ac:11:00:99\n"  # the deprecated Config.MacAddress
    with pytest.raises(docker.errors.APIError) as exc:
        dk.containers.create(IMAGE, ["true"], mac_address="01:00:5e:00:00:01")
    assert "invalid MAC address 01:00:5e:00:00:01: a multicast address" in str(exc.value)
    nothing_made(corral)


# ---------------------------------------------------------------------- --ulimit
@pytest.mark.parametrize("cli", [False, True], ids=["docker", "corral"])
def test_ulimit_is_what_the_process_gets(corral: Daemon, cli: bool) -> None:
    out = ok(corral, "run", "--rm", "--ulimit", "nofile=1024:2048", "--ulimit", "nproc=77",
             IMAGE, "cat", "/proc/self/limits", cli=cli)  # fmt: skip
    rows = {line[:26].strip(): line[26:].split()[:2] for line in out.splitlines()[1:]}
    assert rows["Max open files"] == ["1024", "2048"]
    assert rows["Max processes"] == ["77", "77"]
    err = refused(corral, "run", "--ulimit", "bogus=1", IMAGE, "true", cli=cli)
    assert "invalid ulimit type: bogus" in err
    err = refused(corral, "run", "--ulimit", "nofile=20:10", IMAGE, "true", cli=cli)
    assert "ulimit soft limit must be less than or equal to hard limit: 20 > 10" in err


@pytest.mark.parametrize("cli", [False, True], ids=["docker", "corral"])
def test_oom_kill_disable_without_a_memory_limit_warns(corral: Daemon, cli: bool) -> None:
    r = (corral.cli if cli else corral.docker)("create", "--oom-kill-disable", IMAGE, "true")
    assert r.returncode == 0, r.stderr
    assert "WARNING: OOM killer is disabled for the container, but no memory limit is set" in (
        r.stderr)  # fmt: skip
    r = (corral.cli if cli else corral.docker)("create", "--oom-kill-disable", "-m", "64m",
                                               IMAGE, "true")  # fmt: skip
    assert r.returncode == 0 and "WARNING" not in r.stderr


def test_a_joiner_starts_after_its_donor_at_boot(private_daemon: Any, rootfs_tar: Path) -> None:
    d = private_daemon()
    first = d.client()
    first.api.import_image_from_data(rootfs_tar.read_bytes(), repository="busybox", tag="latest")
    first.close()
    ok(d, "run", "-d", "--name", "donor", "--restart", "always", "--ipc", "shareable", IMAGE,
       "sleep", "1000", cli=True)  # fmt: skip
    ok(d, "run", "-d", "--name", "joiner", "--restart", "always", "--ipc", "container:donor",
       "--pid", "container:donor", IMAGE, "sleep", "1000", cli=True)  # fmt: skip
    d.proc.kill()  # a host crash: both were running, both start again at boot
    d.proc.wait()
    kill_holder(d.root)  # (the daemon's alone would be a live restore: no boot start)
    crashed = time.time_ns()
    d = private_daemon()
    dk = d.client()
    for name in ("donor", "joiner"):  # each one's start after the crash
        events = dk.events(decode=True, since=crashed // 10**9,
                           until=crashed // 10**9 + 120,  # a start that never comes fails
                           filters={"container": name, "event": "start"})  # fmt: skip
        next(e for e in events if e["timeNano"] > crashed)
        events.close()
    ns = {n: ok(d, "exec", n, "readlink", "/proc/self/ns/ipc", cli=True) for n in
          ("donor", "joiner")}  # fmt: skip
    assert ns["donor"] == ns["joiner"]
    dk.close()


@pytest.mark.parametrize("cli", [False, True], ids=["docker", "corral"])
def test_link_on_a_user_network_is_a_container_scoped_alias(
    corral: Daemon, dk: Any, cli: bool
) -> None:
    """dockerd 28: on a user network `--link db:dbalias` is libnetwork's alias of the
    linking container alone (no variables, HostConfig.Links empty in inspect)."""
    ok(corral, "network", "create", "own")
    ok(corral, "run", "-d", "--name", "db", "--network", "own", "-e", "SECRET=s3", IMAGE,
       "sleep", "100")  # fmt: skip
    ip = dk.api.inspect_container("db")["NetworkSettings"]["Networks"]["own"]["IPAddress"]
    ok(corral, "run", "-d", "--name", "web", "--network", "own", "--link", "db:dbalias",
       IMAGE, "sleep", "100", cli=cli)  # fmt: skip
    r = corral.docker("exec", "web", "sh", "-c", "grep -w dbalias /etc/hosts; env")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0].split() == [ip, "dbalias"]
    assert "DBALIAS_" not in r.stdout and "SECRET" not in r.stdout
    r = corral.docker("exec", "db", "grep", "-w", "dbalias", "/etc/hosts")
    assert r.returncode == 1  # the linking container's name alone
    web = dk.api.inspect_container("web")
    assert web["NetworkSettings"]["Networks"]["own"]["Links"] == ["db:dbalias"]
    assert not web["HostConfig"]["Links"]
    # network connect --link: an alias on that endpoint (docker-py too)
    ok(corral, "network", "create", "two")
    ok(corral, "network", "connect", "two", "db")
    ok(corral, "network", "connect", "--link", "db:other", "two", "web", cli=cli)
    ip2 = dk.api.inspect_container("db")["NetworkSettings"]["Networks"]["two"]["IPAddress"]
    r = corral.docker("exec", "web", "grep", "-w", "other", "/etc/hosts")
    assert r.returncode == 0 and r.stdout.split() == [ip2, "other"]
    c = dk.containers.run(IMAGE, ["grep", "-w", "py", "/etc/hosts"], network="own",
                          links={"db": "py"}, detach=True)  # fmt: skip
    assert c.wait()["StatusCode"] == 0 and c.logs().decode().split() == [ip, "py"]
    c.remove()
    # a name not on the network resolves nothing (libnetwork's resolver), a bad one is refused
    out = ok(corral, "run", "--rm", "--network", "two", "--link", "web:w2", IMAGE, "cat",
             "/etc/hosts")  # fmt: skip
    assert "w2" in out  # web is on two
    out = ok(corral, "run", "--rm", "--network", "own", "--link", "nosuch:zz", IMAGE, "cat",
             "/etc/hosts")  # fmt: skip
    assert "zz" not in out.split()
    err = refused(corral, "run", "--rm", "--network", "own", "--link", "a:b:c", IMAGE, "true",
                  cli=True)  # fmt: skip
    assert "invalid link: a:b:c" in err
