"""The default seccomp filter compiled once and installed by corral's helper
(supervisor/runtime/seccompexec.py) is what runc alone installs.

The session daemon runs with the helper (the default); a private daemon runs with
`--seccomp-helper=false`, where runc compiles the profile itself.  For the same
containers and execs the two must show the same: the filter the kernel holds (read
back with ptrace and compared by what it answers: tests/seccompbpf.py), the
capability sets, no_new_privs, the command's arguments and
descriptors, and the same errors for a command that is missing or cannot run.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import seccompbpf
from conftest import IMAGE, Daemon

from supervisor.runtime import seccompcapture, seccompexec
from supervisor.runtime.spec import DEFAULT_CAPABILITIES

pytestmark = pytest.mark.skipif(
    not seccompexec.HELPER.exists(), reason="the seccomp helper is not built (scripts/setup)")

STATUS_KEYS = ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp",
               "Seccomp_filters")


@pytest.fixture
def plain(private_daemon: Any, rootfs_tar: Path) -> Iterator[Any]:
    """A docker-py client of a daemon that leaves the filter to runc."""
    d: Daemon = private_daemon("--seccomp-helper=false")
    client = d.client()
    with rootfs_tar.open("rb") as f:
        client.api.import_image_from_data(f.read(), repository="busybox", tag="latest")
    yield client
    client.close()


def status(pid: int | str) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    fields = dict(line.split(":\t", 1) for line in lines if ":\t" in line)
    return {k: fields[k].strip() for k in STATUS_KEYS}


def seen(client: Any, **kwargs: Any) -> dict[str, Any]:
    """What a container's init shows from the host: status, filter, argv, fds."""
    c = client.containers.run(IMAGE, ["sleep", "1000"], detach=True, **kwargs)
    try:
        c.reload()
        pid = c.attrs["State"]["Pid"]
        # the start answers once the init is released; its exec of the command (the
        # helper's, or runc's own from `runc init`) follows at once, but on a loaded
        # host not at once
        deadline = time.monotonic() + 10
        while (not Path(f"/proc/{pid}/cmdline").read_bytes().startswith(
                (b"sleep\0", b"/sbin/docker-init\0")) and time.monotonic() < deadline):
            time.sleep(0.005)
        return {
            "status": status(pid),
            "filter": seccompcapture.read_filter(seccompcapture._libc(), pid),
            "argv": Path(f"/proc/{pid}/cmdline").read_bytes(),
            "fds": sorted(p.name for p in Path(f"/proc/{pid}/fd").iterdir()),
            "marker": (Path(c.attrs["ResolvConfPath"]).parent / seccompexec.MARKER).exists(),
        }
    finally:
        c.remove(force=True)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"user": "1000"},
        {"user": "1000:1000", "cap_drop": ["ALL"], "cap_add": ["NET_RAW"]},
        {"cap_drop": ["SETPCAP", "SETUID"]},
        {"cap_add": ["SYS_ADMIN", "SYS_PTRACE"]},
        {"cap_add": ["ALL"]},  # all runc can give: no guard left, runc's own path
        {"init": True},
        {"tty": True, "user": "1000"},
    ],
    ids=["default", "user", "user-one-cap", "no-setpcap", "more-caps", "all-caps", "init",
         "tty"],
)
def test_the_init_is_as_under_runc_alone(dk: Any, plain: Any, kwargs: dict[str, Any]) -> None:
    ours, runcs = seen(dk, **kwargs), seen(plain, **kwargs)
    assert ours.pop("marker") is (kwargs.get("cap_add") != ["ALL"])
    assert runcs.pop("marker") is False
    mine, theirs = ours.pop("filter"), runcs.pop("filter")
    assert len(mine) // 8 > 100  # Docker's profile, not an empty filter
    assert seccompbpf.differences(mine, theirs) == []
    assert ours == runcs


def test_execs_are_as_under_runc_alone(dk: Any, plain: Any) -> None:
    """An exec (a user's, `-u`, `--privileged`) gets the container's filter, as runc's."""
    probe = "grep -E '^(Cap|NoNewPrivs|Seccomp)' /proc/self/status; ls /proc/self/fd"
    shown = {}
    for name, client in (("ours", dk), ("runc", plain)):
        c = client.containers.run(IMAGE, ["sleep", "1000"], detach=True)
        try:
            shown[name] = [c.exec_run(["sh", "-c", probe], **kw).output
                           for kw in ({}, {"user": "1000"}, {"privileged": True})]
        finally:
            c.remove(force=True)
    assert shown["ours"] == shown["runc"]
    assert b"Seccomp:\t2" in shown["ours"][2]  # --privileged keeps the filter (Docker's)


def test_a_missing_command_fails_the_same_way(dk: Any, plain: Any) -> None:
    import docker

    for args, code in ((["nosuch"], 127), (["/nosuch"], 127), (["/etc"], 126),
                       (["/etc/passwd"], 126)):
        errors = []
        for client in (dk, plain):
            with pytest.raises(docker.errors.APIError) as info:
                client.containers.run(IMAGE, args, name="missing")
            c = client.containers.get("missing")
            assert c.status == "created" and c.attrs["State"]["ExitCode"] == code
            errors.append(str(info.value.explanation))
            c.remove()
        assert errors[0] == errors[1]
        assert "unable to start container process" in errors[0]


def test_an_exec_of_a_missing_command_fails_the_same_way(dk: Any, plain: Any) -> None:
    import docker

    answers = []
    for client in (dk, plain):
        c = client.containers.run(IMAGE, ["sleep", "1000"], detach=True)
        got = []
        try:
            for cmd in (["nosuch"], ["/etc/passwd"], ["./sleep"], ["/bin/true"]):
                e = client.api.exec_create(c.id, cmd, workdir="/bin")
                try:
                    out: Any = client.api.exec_start(e)
                except docker.errors.APIError as exc:
                    out = str(exc.explanation)
                got.append((out, client.api.exec_inspect(e)["ExitCode"]))
        finally:
            c.remove(force=True)
        answers.append(got)
    assert answers[0] == answers[1]
    # ./sleep ran (from the exec's working directory): no operand, its usage, 1
    assert [code for _, code in answers[0]] == [127, 126, 1, 0]


def test_a_custom_profile_stays_with_runc(dk: Any) -> None:
    profile = {"defaultAction": "SCMP_ACT_ALLOW",
               "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}
    c = dk.containers.run(IMAGE, ["sleep", "1000"], detach=True,
                          security_opt=[f"seccomp={json.dumps(profile)}"])
    try:
        c.reload()
        bundle = Path(c.attrs["ResolvConfPath"]).parent
        assert not (bundle / seccompexec.MARKER).exists()
        assert "seccomp" in json.loads((bundle / "config.json").read_text())["linux"]
        assert c.exec_run(["mkdir", "/tmp/x"]).exit_code == 1
    finally:
        c.remove(force=True)


def test_wrap_process_keeps_runc_for_what_it_cannot_guard() -> None:
    caps = list(DEFAULT_CAPABILITIES)
    base = {"args": ["sleep", "1"], "noNewPrivileges": True,
            "capabilities": {k: caps for k in ("bounding", "effective", "permitted")}}
    wrapped = seccompexec.wrap_process(base, "CAP_CHECKPOINT_RESTORE")
    assert wrapped is not None
    assert wrapped["args"][0] == seccompexec.HELPER_IN_CONTAINER
    assert wrapped["args"][3:] == ["sleep", "1"]
    assert "CAP_CHECKPOINT_RESTORE" in wrapped["capabilities"]["ambient"]
    assert seccompexec.wrap_process({**base, "noNewPrivileges": False}, "CAP_BPF") is None
    own = {**base, "capabilities": {**base["capabilities"], "ambient": ["CAP_KILL"]}}
    assert seccompexec.wrap_process(own, "CAP_BPF") is None
    every = (1 << 41) - 1
    assert seccompexec.guard_for(caps, every) == "CAP_CHECKPOINT_RESTORE"
    assert seccompexec.guard_for(["chown", "checkpoint_restore"], every) == "CAP_BPF"
    assert seccompexec.guard_for(list(seccompexec.CAP_NUMBER), every) is None  # all held
    # only what runc can give (the daemon's bounding set): not SYS_RESOURCE here
    no_resource = every & ~(1 << seccompexec.CAP_NUMBER["CAP_SYS_RESOURCE"])
    rest = [c for c in seccompexec.CAP_NUMBER if c != "CAP_SYS_RESOURCE"]
    assert seccompexec.guard_for(rest, no_resource) is None
    no_setpcap = every & ~(1 << seccompexec.CAP_NUMBER["CAP_SETPCAP"])
    assert seccompexec.guard_for(["CAP_CHOWN"], no_setpcap) is None


def test_the_helper_refuses_to_run_without_its_guard() -> None:
    """A runtime that did not give the helper its guard capability (one it does not
    know) must not leave the command running unguarded: exit 125, nothing exec'd."""
    import shutil
    import subprocess

    if shutil.which("setpriv") is None:
        pytest.skip("needs setpriv")
    guard = seccompexec.CAP_NUMBER["CAP_CHECKPOINT_RESTORE"]
    done = subprocess.run(
        ["setpriv", "--bounding-set", "-checkpoint_restore", "--", str(seccompexec.HELPER),
         str(1 << guard), str(1 << guard), "/bin/echo", "ran"],
        capture_output=True, text=True, check=False)
    assert done.returncode == 125
    assert done.stdout == ""
    assert "not all held" in done.stderr


def test_lookpath_candidates_are_gos() -> None:
    from supervisor.runtime.commandpath import candidates

    env = ["PATH=/usr/bin:/bin", "HOME=/", "PATH=/sbin::/bin"]  # the last PATH wins
    assert candidates("sh", env) == ["/sbin/sh", "./sh", "/bin/sh"]
    assert candidates("./x", env) == ["./x"]
    assert candidates("sh", ["HOME=/"]) == []


def test_the_command_check_of_a_gone_process_is_an_error_not_a_crash() -> None:
    """A probe's exec as its crash-looping container exits: the daemon's check of the
    command finds no root; that exec fails as runc's would, the daemon goes on."""
    import subprocess

    from supervisor.errors import CorralError
    from supervisor.runtime.runc import check_command

    gone = subprocess.Popen(["true"])
    gone.wait()
    with pytest.raises(CorralError, match="stopped container"):
        check_command(gone.pid, {"args": ["true"], "env": [], "cwd": "/"}, "exec failed: ")
