"""Seccomp profiles and `--security-opt`, without containers: the pure cores.

`linux_seccomp` must give what moby's `setupSeccomp` gives for the same profile, caps,
architecture and kernel; the expectations below are read off moby/profiles'
default.json (its rules for clone, clone3, personality, socket, ptrace...).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from supervisor.errors import InvalidArgument
from supervisor.runtime.seccomp import (
    Platform,
    default_profile,
    linux_seccomp,
    native_arch,
    parse_profile,
    parse_release,
)
from supervisor.runtime.spec import DEFAULT_CAPABILITIES, ContainerSpec, ProcessSpec, build_config

AMD64 = Platform(arch="amd64", kernel=(6, 8))


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
