"""Seccomp profiles and `--security-opt`, without containers: the pure cores.

`linux_seccomp` must give what moby's `setupSeccomp` gives for the same profile, caps,
architecture and kernel; the expectations below are read off moby/profiles'
default.json (its rules for clone, clone3, personality, socket, ptrace...).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from config.container import create_body
from config.errors import ConfigError
from config.project import load_project
from supervisor.cli.flags import RUN, container_body
from supervisor.cli.parser import UsageError, parse
from supervisor.errors import InvalidArgument
from supervisor.runtime import securityopt
from supervisor.runtime.seccomp import (
    Platform,
    default_profile,
    linux_seccomp,
    native_arch,
    parse_profile,
    parse_release,
)
from supervisor.runtime.securityopt import HostSecurity, SecurityOptions
from supervisor.runtime.spec import DEFAULT_CAPABILITIES, ContainerSpec, ProcessSpec, build_config

AMD64 = Platform(arch="amd64", kernel=(6, 8))
NO_LSM = HostSecurity(seccomp=True, apparmor=False, selinux=False)


def allowed(out: dict[str, Any]) -> set[str]:
    """The calls allowed without conditions on their arguments."""
    return {
        n
        for r in out["syscalls"]
        if r["action"] == "SCMP_ACT_ALLOW" and "args" not in r
        for n in r["names"]
    }


def rules_for(out: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k != "names"} for r in out["syscalls"]
            if name in r["names"]]


def default_out(caps: Any = DEFAULT_CAPABILITIES, platform: Platform = AMD64) -> dict[str, Any]:
    out = linux_seccomp(default_profile(), platform, caps)
    assert out is not None
    return out


# -- the default profile ---------------------------------------------------------------


def test_default_profile_is_an_allow_list_returning_eperm() -> None:
    out = default_out()
    assert out["defaultAction"] == "SCMP_ACT_ERRNO"
    assert out["defaultErrnoRet"] == 1  # EPERM
    assert out["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    calls = allowed(out)
    assert {"read", "write", "openat", "execve", "exit_group", "futex"} <= calls
    for refused in ("keyctl", "add_key", "request_key", "unshare", "mount", "umount2",
                    "setns", "perf_event_open", "userfaultfd", "io_uring_setup", "kcmp",
                    "bpf", "init_module", "reboot", "swapon", "pivot_root"):
        assert refused not in calls and rules_for(out, refused) == [], refused


def test_argument_conditions_as_moby() -> None:
    out = default_out()
    persona = sorted(r["args"][0]["value"] for r in rules_for(out, "personality"))
    assert persona == [0, 8, 0x20000, 0x20008, 0xFFFFFFFF]  # no ADDR_NO_RANDOMIZE
    sockets = [r["args"][0] for r in rules_for(out, "socket")]
    assert [(a["op"], a["value"]) for a in sockets] == [
        ("SCMP_CMP_LT", 38), ("SCMP_CMP_EQ", 39), ("SCMP_CMP_GT", 40),  # not AF_ALG, AF_VSOCK
    ]
    assert rules_for(out, "clone") == [{
        "action": "SCMP_ACT_ALLOW",
        "args": [{"index": 0, "value": 0x7E020000, "op": "SCMP_CMP_MASKED_EQ"}],
    }]
    assert rules_for(out, "clone3") == [{"action": "SCMP_ACT_ERRNO", "errnoRet": 38}]


def test_capabilities_open_their_calls() -> None:
    admin = default_out([*DEFAULT_CAPABILITIES, "CAP_SYS_ADMIN"])
    assert {"unshare", "mount", "setns", "clone", "clone3"} <= allowed(admin)
    assert rules_for(admin, "clone3") == [{"action": "SCMP_ACT_ALLOW"}]  # no ENOSYS rule
    ptrace = default_out([*DEFAULT_CAPABILITIES, "CAP_SYS_PTRACE"])
    assert {"kcmp", "pidfd_getfd", "process_madvise"} <= allowed(ptrace)
    assert "perf_event_open" in allowed(default_out(["CAP_PERFMON"]))
    # dropping a cap the rule wants removes it: no CAP_SYS_CHROOT, no chroot
    assert "chroot" in allowed(default_out())
    assert "chroot" not in allowed(default_out(["CAP_CHOWN"]))


def test_kernel_and_architecture_conditions() -> None:
    assert "ptrace" in allowed(default_out())
    old = default_out(platform=Platform(arch="amd64", kernel=(4, 4)))
    assert "ptrace" not in allowed(old) and "process_vm_readv" not in allowed(old)
    arm = default_out(platform=Platform(arch="arm64", kernel=(6, 1)))
    assert arm["architectures"] == ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
    assert {"set_tls", "cacheflush"} <= allowed(arm) and "arch_prctl" not in allowed(arm)
    s390 = default_out(platform=Platform(arch="s390x", kernel=(6, 1)))
    assert [r["args"][0]["index"] for r in rules_for(s390, "clone")] == [1]


def test_host_facts_parsed_as_moby() -> None:
    assert parse_release("6.8.0-45-generic") == (6, 8)
    assert parse_release("3.12-1-amd64") == (3, 12)
    assert parse_release("6.18.44-fc-v657") == (6, 18)
    assert native_arch("x86_64") == "amd64" and native_arch("aarch64") == "arm64"


def test_spec_carries_the_filter_only_when_given() -> None:
    spec = ContainerSpec(id="c", rootfs="/r", hostname="h", process=ProcessSpec(["sh"], []))
    assert "seccomp" not in build_config(spec, 1024)["linux"]
    spec.seccomp = default_out()
    assert build_config(spec, 1024)["linux"]["seccomp"]["defaultAction"] == "SCMP_ACT_ERRNO"


# -- user profiles ---------------------------------------------------------------------


def test_user_profile_conversion() -> None:
    profile = parse_profile(json.dumps({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64"],
        "flags": ["SECCOMP_FILTER_FLAG_LOG"],
        "syscalls": [
            {"name": "mkdir", "action": "SCMP_ACT_ERRNO", "errnoRet": 13, "comment": "old"},
            {"names": ["chmod"], "action": "SCMP_ACT_LOG", "excludes": {"arches": ["amd64"]}},
            {"names": ["kill"], "action": "SCMP_ACT_ERRNO",
             "args": [{"index": 1, "value": 9, "valueTwo": 0, "op": "SCMP_CMP_EQ"}]},
        ],
    }))
    assert linux_seccomp(profile, AMD64, DEFAULT_CAPABILITIES) == {
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64"],
        "flags": ["SECCOMP_FILTER_FLAG_LOG"],
        "syscalls": [
            {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
            {"names": ["kill"], "action": "SCMP_ACT_ERRNO",
             "args": [{"index": 1, "value": 9, "op": "SCMP_CMP_EQ"}]},
        ],
    }
    assert linux_seccomp(parse_profile("{}"), AMD64, []) is None  # moby: filters nothing


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ("{", "Decoding seccomp profile failed: Expecting"),
        ("[]", "Decoding seccomp profile failed: want an object, got []"),
        ('{"defaultAction": "ALLOW"}', "defaultAction: unknown action 'ALLOW'"),
        ('{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": -1}',
         "defaultErrnoRet: want an unsigned integer, got -1"),
        ('{"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 1}',
         "defaultErrnoRet: only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take one"),
        ('{"defaultAction": "SCMP_ACT_ALLOW", "sycalls": []}', "unknown field 'sycalls'"),
        ('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": {}}', "syscalls: want a list, got {}"),
        ('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"action": "SCMP_ACT_LOG"}]}',
         "syscalls[0]: no system call named"),
        ('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"name": "a", "names": ["b"],'
         ' "action": "SCMP_ACT_LOG"}]}', "both 'name' and 'names'"),
        ('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["kill"], "action":'
         ' "SCMP_ACT_ERRNO", "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}',
         "syscalls[0].args[0].index: a system call has 6 arguments (0-5), got 6"),
        ('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["kill"], "action":'
         ' "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1.5, "op": "SCMP_CMP_EQ"}]}]}',
         "syscalls[0].args[0].value: want an unsigned integer, got 1.5"),
        ('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["kill"], "action":'
         ' "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "EQ"}]}]}',
         "syscalls[0].args[0].op: unknown operator 'EQ'"),
        ('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["kill"], "action":'
         ' "SCMP_ACT_LOG", "includes": {"minKernel": "4"}}]}',
         "syscalls[0].includes.minKernel: invalid kernel version"),
        ('{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["x86_64"]}',
         "architectures[0]: unknown architecture 'x86_64'"),
        ('{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86"], "archMap":'
         ' [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": null}]}',
         "both 'architectures' and 'archMap'"),
        ('{"defaultAction": "SCMP_ACT_NOTIFY"}', "SCMP_ACT_NOTIFY needs a listenerPath"),
        ("[" * 100000, "Decoding seccomp profile failed"),
    ],
)
def test_bad_profiles_name_what_is_wrong(doc: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        parse_profile(doc)
    assert message in err.value.message
    assert "\n" not in err.value.message


# -- --security-opt ----------------------------------------------------------------


def test_security_opt_values() -> None:
    assert securityopt.parse(None, NO_LSM) == SecurityOptions()
    assert SecurityOptions().process_no_new_privileges is True  # corral's daemon default
    for opt, nnp in [("no-new-privileges", True), ("no-new-privileges:false", False),
                     ("no-new-privileges=false", False), ("no-new-privileges=1", True),
                     ("no-new-privileges:F", False)]:
        got = securityopt.parse([opt], NO_LSM)
        assert got.no_new_privileges is nnp and got.process_no_new_privileges is nnp, opt
    assert securityopt.parse(["seccomp=unconfined"], NO_LSM).seccomp == "unconfined"
    assert securityopt.parse(["seccomp:unconfined", "seccomp=builtin"], NO_LSM).seccomp == (
        "builtin"
    )  # the last one wins, as in moby
    custom = securityopt.parse(['seccomp={"defaultAction":"SCMP_ACT_LOG"}'], NO_LSM).seccomp
    assert not isinstance(custom, str) and custom.default_action == "SCMP_ACT_LOG"
    # no confinement asked for: holds on a host without AppArmor or SELinux
    assert securityopt.parse(["apparmor=unconfined", "label=disable", "disable"], NO_LSM) == (
        SecurityOptions()
    )


@pytest.mark.parametrize(
    ("opts", "host", "message"),
    [
        (["apparmor=docker-default"], NO_LSM,
         'invalid --security-opt 2: "apparmor=docker-default": AppArmor is not enabled on '
         "this host"),
        (["apparmor=docker-default"], HostSecurity(True, True, False),
         "corral applies no AppArmor profile"),
        (["label=level:s0:c100,c200"], NO_LSM, "SELinux is not enabled on this host"),
        (["label=user:x"], HostSecurity(True, False, True), "corral applies no SELinux label"),
        (["seccomp"], NO_LSM, 'invalid --security-opt 1: "seccomp": want KEY=VALUE'),
        (["seccomp="], NO_LSM, 'invalid --security-opt 1: "seccomp=": no value'),
        (["no-new-privileges=yes"], NO_LSM, "want true or false"),
        (["writable-cgroups=true"], NO_LSM, "writable cgroups are not supported"),
        (["systempaths=unconfined"], NO_LSM, 'unknown option "systempaths"'),
        (["seccomp=./p.json"], NO_LSM, "the client sends the profile's content"),
        (['seccomp={"defaultAction":"SCMP_ACT_LOG"}'], HostSecurity(False, False, False),
         "seccomp is not enabled in your kernel"),
        ("seccomp=unconfined", NO_LSM, "want a list of strings"),
        ([1], NO_LSM, "want a list of strings"),
    ],
)
def test_bad_security_opts_refused(opts: Any, host: HostSecurity, message: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        securityopt.parse(opts, host)
    assert message in err.value.message


def test_which_filter_a_container_gets() -> None:
    caps = DEFAULT_CAPABILITIES
    default = securityopt.parse([], NO_LSM)
    assert default.linux_seccomp(caps, AMD64) == default_out()
    assert default.linux_seccomp(caps, AMD64, privileged=True) is None
    builtin = securityopt.parse(["seccomp=builtin"], NO_LSM)
    assert builtin.linux_seccomp(caps, AMD64, privileged=True) == default_out()
    assert securityopt.parse(["seccomp=unconfined"], NO_LSM).linux_seccomp(caps, AMD64) is None
    custom = securityopt.parse(['seccomp={"defaultAction":"SCMP_ACT_LOG"}'], NO_LSM)
    # moby: a profile the user gave applies to a privileged container too
    assert custom.linux_seccomp(caps, AMD64, privileged=True) == {
        "defaultAction": "SCMP_ACT_LOG", "syscalls": []}
    # a kernel without seccomp runs the default unconfined, as moby (with a warning) does
    assert securityopt.parse([], HostSecurity(False, False, False)).seccomp == "unconfined"


def test_info_security_options() -> None:
    assert securityopt.info_options(NO_LSM) == [
        "name=seccomp,profile=builtin",
        "name=no-new-privileges",
    ]
    # corral confines with neither AppArmor nor SELinux, so never reports them
    assert securityopt.info_options(HostSecurity(True, True, True), False) == [
        "name=seccomp,profile=builtin"
    ]


# -- the CLIs read a profile's file ------------------------------------------------


def test_cli_sends_the_profile_content(tmp_path: Path) -> None:
    f = tmp_path / "p.json"
    f.write_text('{\n  "defaultAction": "SCMP_ACT_ALLOW",\n  "syscalls": []\n}\n')
    _, b = container_body(parse(RUN, [
        "--security-opt", f"seccomp={f}", "--security-opt", "no-new-privileges",
        "--security-opt", "seccomp:unconfined", "busybox"]), {})
    assert b["HostConfig"]["SecurityOpt"] == [
        'seccomp={"defaultAction":"SCMP_ACT_ALLOW","syscalls":[]}',
        "no-new-privileges",
        "seccomp:unconfined",
    ]
    assert container_body(parse(RUN, ["busybox"]), {})[1]["HostConfig"]["SecurityOpt"] is None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("seccomp=/nonexistent/p.json",
         "opening seccomp profile (/nonexistent/p.json) failed: No such file or directory"),
        ("bad.json", "compacting json for seccomp profile"),
        ("label", 'invalid --security-opt: "label"'),
    ],
)
def test_cli_security_opt_errors(tmp_path: Path, value: str, message: str) -> None:
    (tmp_path / "bad.json").write_text("{nope")
    if value == "bad.json":
        value = f"seccomp={tmp_path / 'bad.json'}"
    with pytest.raises(UsageError) as err:
        container_body(parse(RUN, ["--security-opt", value, "busybox"]), {})
    assert message in str(err.value)


def _compose(text: str, files: dict[str, str] | None = None) -> Any:
    tree = {"/p/compose.yaml": text, **(files or {})}

    def read(path: str) -> str:
        if path not in tree:
            raise FileNotFoundError(2, "No such file or directory", path)
        return tree[path]

    return load_project(["/p/compose.yaml"], environ={}, cwd="/p", read_file=read)


def test_compose_security_opt_is_applied() -> None:
    p = _compose(
        "services:\n  web:\n    image: x\n    security_opt:\n"
        "      - seccomp=profiles/p.json\n      - no-new-privileges:true\n      - label=disable\n",
        {"/p/profiles/p.json": '{ "defaultAction": "SCMP_ACT_LOG" }'},
    )
    assert p.warnings == []
    host = create_body(p, "web", 1)[1]["HostConfig"]
    assert host["SecurityOpt"] == [
        'seccomp={"defaultAction":"SCMP_ACT_LOG"}', "no-new-privileges:true", "label=disable"]


def test_compose_security_opt_errors_name_the_place() -> None:
    with pytest.raises(ConfigError) as err:
        _compose("services:\n  web:\n    image: x\n    security_opt:\n"
                 "      - seccomp=missing.json\n      - label\n")
    assert [str(p) for p in err.value.problems] == [
        "compose.yaml:5:9: services.web.security_opt.0: opening seccomp profile "
        "(missing.json) failed: No such file or directory",
        'compose.yaml:6:9: services.web.security_opt.1: invalid security-opt: "label"',
    ]
