"""Seccomp and `--security-opt` in real containers: what a process inside may call.

A static probe (tests/data/seccomp_probe.c, built here with `cc -static`) calls each
system call issue 12 found open -- user namespaces, keyrings, perf, userfaultfd,
io_uring, AF_VSOCK, personality(ADDR_NO_RANDOMIZE), kcmp -- and prints `name=ok` or
`name=<errno>`.  Under Docker's default profile each is refused with EPERM; under
`seccomp=unconfined` each behaves as it does for a host process with the container's
capabilities (the probe run on the host under `setpriv --bounding-set` is the oracle).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import IMAGE, Daemon

from supervisor.runtime.spec import DEFAULT_CAPABILITIES

PROBE_SOURCE = Path(__file__).parent / "data" / "seccomp_probe.c"

#: What Docker's default profile (moby/profiles default.json) answers for each probe.
#: process_vm_readv is allowed from kernel 4.8 on (`includes.minKernel`), as in Docker:
#: since then ptrace-access checks make it safe; it reads only the probe's own memory.
DEFAULT_PROFILE_ANSWERS = {
    "unshare_user": "EPERM",
    "userns_tmpfs": "EPERM",
    "keyctl": "EPERM",
    "add_key": "EPERM",
    "perf_event_open": "EPERM",
    "userfaultfd": "EPERM",
    "io_uring_setup": "EPERM",
    "socket_vsock": "EPERM",
    "socket_inet": "ok",  # socket() is allowed for families but AF_ALG and AF_VSOCK
    "personality_query": "ok",  # personality(0xffffffff) only reads the persona
    "personality_no_randomize": "EPERM",
    "kcmp": "EPERM",  # only with CAP_SYS_PTRACE
    "process_vm_readv": "ok",
    "clone3": "ENOSYS",  # so libcs fall back to clone(2), which the profile checks
}


def parse_probe(out: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


@pytest.fixture(scope="module")
def probe_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("cc") is None:
        pytest.skip("needs a C compiler (cc) to build the probe")
    d = tmp_path_factory.mktemp("probe")
    subprocess.run(
        ["cc", "-static", "-O1", "-o", str(d / "probe"), str(PROBE_SOURCE)],
        check=True,
        capture_output=True,
    )
    d.chmod(0o755)
    return d


@pytest.fixture(scope="module")
def host_answers(probe_dir: Path) -> dict[str, str]:
    """The probe as a host process with Docker's default capabilities and no filter."""
    caps = ",".join("+" + c.removeprefix("CAP_").lower() for c in DEFAULT_CAPABILITIES)
    out = subprocess.run(
        ["setpriv", f"--bounding-set=-all,{caps}", str(probe_dir / "probe")],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return parse_probe(out)


def run_probe(dk: Any, probe_dir: Path, **kwargs: Any) -> dict[str, str]:
    out = dk.containers.run(
        IMAGE,
        ["/probe/probe"],
        volumes={str(probe_dir): {"bind": "/probe", "mode": "ro"}},
        remove=True,
        **kwargs,
    )
    return parse_probe(out.decode())


def test_default_profile_refuses_what_docker_refuses_and_unconfined_does_not(
    dk: Any, probe_dir: Path, host_answers: dict[str, str]
) -> None:
    assert run_probe(dk, probe_dir) == DEFAULT_PROFILE_ANSWERS
    got = run_probe(dk, probe_dir, security_opt=["seccomp=unconfined"])
    assert got == host_answers
    assert got["personality_no_randomize"] == "ok" and got["kcmp"] == "ok"


def test_rules_follow_the_containers_capabilities(dk: Any, probe_dir: Path) -> None:
    # moby's `includes.caps`: CAP_SYS_PTRACE opens kcmp (and ptrace, pidfd_getfd...)
    got = run_probe(dk, probe_dir, cap_add=["SYS_PTRACE"])
    assert got == {**DEFAULT_PROFILE_ANSWERS, "kcmp": "ok"}


def test_exec_is_confined_as_the_container(dk: Any, probe_dir: Path) -> None:
    c = dk.containers.run(
        IMAGE,
        ["sleep", "1d"],
        detach=True,
        volumes={str(probe_dir): {"bind": "/probe", "mode": "ro"}},
    )
    code, out = c.exec_run(["/probe/probe"])
    assert code == 0
    assert parse_probe(out.decode()) == DEFAULT_PROFILE_ANSWERS


def test_unshare_user_and_mount_refused_by_default(dk: Any) -> None:
    script = ("mkdir -p /mnt; unshare -U -r -m sh -c 'mount -t tmpfs tmpfs /mnt && echo mounted'"
              " 2>&1; echo rc=$?")
    out = dk.containers.run(IMAGE, ["sh", "-c", script], remove=True).decode()
    assert "mounted" not in out and "rc=0" not in out, out
    assert "Operation not permitted" in out, out
    free = dk.containers.run(
        IMAGE, ["sh", "-c", script], remove=True, security_opt=["seccomp=unconfined"]
    ).decode()
    assert "mounted" in free and "rc=0" in free, free


def test_status_shows_the_filter_and_no_new_privs(dk: Any) -> None:
    def status(**kwargs: Any) -> dict[str, str]:
        out = dk.containers.run(
            IMAGE, ["grep", "-E", "^(Seccomp|NoNewPrivs):", "/proc/self/status"],
            remove=True, **kwargs,
        ).decode()
        return dict(line.split(":\t") for line in out.splitlines())

    assert status() == {"NoNewPrivs": "1", "Seccomp": "2"}  # 2: SECCOMP_MODE_FILTER
    assert status(security_opt=["seccomp=unconfined"])["Seccomp"] == "0"
    assert status(security_opt=["no-new-privileges:false"])["NoNewPrivs"] == "0"
    assert status(security_opt=["no-new-privileges=false", "no-new-privileges"]) == {
        "NoNewPrivs": "1",
        "Seccomp": "2",
    }
    # moby's WithSeccomp: a privileged container gets no default profile
    assert status(privileged=True)["Seccomp"] == "0"
    # what service files written for AppArmor/SELinux hosts say to turn those off holds
    free = ["apparmor=unconfined", "label=disable", "seccomp=builtin"]
    assert status(security_opt=free) == {"NoNewPrivs": "1", "Seccomp": "2"}


def test_normal_workload_still_works(dk: Any) -> None:
    script = (
        "grep -q 'Seccomp:.2' /proc/self/status"
        " && mkdir -p /www && echo served > /www/index.html && httpd -p 127.0.0.1:8080 -h /www"
        " && ls / >/dev/null && ps | grep -q httpd && wget -q -O - http://127.0.0.1:8080/"
        " && sh -c 'echo child' && date +%Y >/dev/null && echo done"
    )
    out = dk.containers.run(IMAGE, ["sh", "-c", script], remove=True).decode()
    assert out.split() == ["served", "child", "done"]


def test_custom_profile_applies(dk: Any) -> None:
    profile = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
        ],
    }
    out = dk.containers.run(
        IMAGE,
        ["sh", "-c", "mkdir /made 2>&1; grep Seccomp: /proc/self/status"],
        remove=True,
        security_opt=["seccomp=" + json.dumps(profile)],
    ).decode()
    assert "Permission denied" in out  # EACCES, the profile's errnoRet
    assert "Seccomp:\t2" in out


@pytest.mark.parametrize(
    ("opt", "message"),
    [
        ("apparmor=docker-default", "AppArmor is not enabled on this host"),
        ("label=type:svirt_t", "SELinux is not enabled on this host"),
        ("bogus=1", "unknown option \"bogus\""),
        ("no-new-privileges=maybe", "want true or false"),
        ("seccomp=/etc/profile.json", "the client sends the profile's content"),
        ('seccomp={"defaultAction": "SCMP_ACT_NOPE"}', "unknown action 'SCMP_ACT_NOPE'"),
        ('seccomp={"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": "read"}]}',
         "syscalls[0].names: want a list of strings"),
    ],
)
def test_bad_security_opt_is_a_400_and_makes_nothing(dk: Any, opt: str, message: str) -> None:
    import docker

    before = dk.containers.list(all=True)
    with pytest.raises(docker.errors.APIError) as err:
        dk.containers.create(IMAGE, ["true"], security_opt=[opt])
    assert err.value.status_code == 400
    assert message in str(err.value.explanation)
    assert dk.containers.list(all=True) == before


def test_docker_cli_security_opt(corral: Daemon, tmp_path: Path) -> None:
    r = corral.docker("run", "--rm", "--security-opt", "seccomp=unconfined", IMAGE,
                      "grep", "Seccomp:", "/proc/self/status")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["Seccomp:", "0"]
    profile = tmp_path / "profile.json"
    profile.write_text(json.dumps({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}],
    }, indent=2))
    r = corral.docker("create", "--name", "custom", "--security-opt", f"seccomp={profile}",
                      "--security-opt", "no-new-privileges", IMAGE, "mkdir", "/x")
    assert r.returncode == 0, r.stderr
    opts = json.loads(corral.docker("inspect", "-f", "{{json .HostConfig.SecurityOpt}}",
                                    "custom").stdout)
    assert opts[1] == "no-new-privileges"
    assert opts[0].startswith("seccomp={") and json.loads(opts[0][8:])["syscalls"][0][
        "names"] == ["mkdir", "mkdirat"]
    corral.docker("create", "--name", "plain", IMAGE, "true")
    assert corral.docker("inspect", "-f", "{{json .HostConfig.SecurityOpt}}",
                         "plain").stdout.strip() == "null"  # as dockerd's
    r = corral.docker("start", "-a", "custom")
    assert "Operation not permitted" in r.stderr + r.stdout
    r = corral.docker("run", "--rm", "--security-opt", "apparmor=docker-default", IMAGE, "true")
    assert r.returncode == 125
    assert "AppArmor is not enabled on this host" in r.stderr


def test_corral_cli_reads_the_profile_file(corral: Daemon, tmp_path: Path) -> None:
    profile = tmp_path / "deny-mkdir.json"
    profile.write_text('{"defaultAction": "SCMP_ACT_ALLOW",\n "syscalls": '
                       '[{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}\n')
    r = corral.cli("run", "--rm", "--security-opt", f"seccomp={profile}", IMAGE, "mkdir", "/x")
    assert r.returncode == 1 and "Operation not permitted" in r.stderr, r
    profile.write_text('{"defaultAction": ')
    r = corral.cli("run", "--rm", "--security-opt", f"seccomp={profile}", IMAGE, "true")
    assert r.returncode == 125
    assert f"compacting json for seccomp profile ({profile}) failed" in r.stderr


def test_info_security_options(dk: Any) -> None:
    assert dk.info()["SecurityOptions"] == [
        "name=seccomp,profile=builtin",
        "name=no-new-privileges",
    ]


def test_compose_security_opt_is_applied(corral: Daemon, dk: Any, tmp_path: Path) -> None:
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "deny-mkdir.json").write_text(json.dumps({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}],
    }))
    (tmp_path / "compose.yaml").write_text(
        "name: sec\nservices:\n"
        "  free:\n    image: busybox\n    command: [sleep, '1000']\n"
        "    stop_grace_period: 1s\n    security_opt: [seccomp=unconfined]\n"
        "  custom:\n    image: busybox\n    command: [sleep, '1000']\n"
        "    stop_grace_period: 1s\n"
        "    security_opt: ['seccomp=profiles/deny-mkdir.json', 'no-new-privileges:false']\n"
    )
    file = str(tmp_path / "compose.yaml")
    r = corral.cli("compose", "-f", file, "up", "-d")
    assert r.returncode == 0, r.stderr
    try:
        free = dk.containers.get("sec-free-1")
        code, out = free.exec_run(["grep", "Seccomp:", "/proc/self/status"])
        assert out.split() == [b"Seccomp:", b"0"]
        custom = dk.containers.get("sec-custom-1")
        code, out = custom.exec_run(["mkdir", "/x"])
        assert code == 1 and b"Operation not permitted" in out
        code, out = custom.exec_run(["grep", "NoNewPrivs:", "/proc/self/status"])
        assert out.split() == [b"NoNewPrivs:", b"0"]
    finally:
        corral.cli("compose", "-f", file, "down")
