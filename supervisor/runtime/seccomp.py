"""Seccomp profiles in Docker's format, and their conversion to the OCI `linux.seccomp`.

Docker confines every unprivileged container with an allow-list of system calls: the
default action is ERRNO (EPERM) and only the calls listed are allowed, some only for
some architectures, some only with a capability in the container's bounding set (so
`--cap-add SYS_PTRACE` also opens `kcmp`, `ptrace`...), some only from a kernel
version on.  The profile is data in Docker's public JSON format (`Seccomp` of
github.com/moby/profiles/seccomp): `seccomp_default.json` beside this module is that
project's `default.json` (see `PROFILE_SOURCE`), and a user's `--security-opt
seccomp=PROFILE.json` is the same format.

This module is pure: `parse_profile` checks a profile's text and makes typed records,
`linux_seccomp` applies a profile's conditions (`includes`/`excludes` of caps, arches
and minKernel, `archMap`) for one container on one host, as moby's `setupSeccomp`
does, and returns the dict runc reads.  The host facts it needs (architecture and
kernel release) are passed in; `host_platform` reads them once for the daemon.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

from supervisor.errors import InvalidArgument

#: Where `seccomp_default.json` comes from (copied unchanged, as data).
PROFILE_SOURCE = "github.com/moby/profiles/seccomp v0.2.3 default.json (as vendored by moby)"

#: Actions runc (libseccomp) knows; anything else fails only at start, so refuse it here.
ACTIONS = frozenset(
    {
        "SCMP_ACT_KILL",
        "SCMP_ACT_KILL_PROCESS",
        "SCMP_ACT_KILL_THREAD",
        "SCMP_ACT_TRAP",
        "SCMP_ACT_ERRNO",
        "SCMP_ACT_TRACE",
        "SCMP_ACT_ALLOW",
        "SCMP_ACT_LOG",
        "SCMP_ACT_NOTIFY",
    }
)
#: Actions that take a return value (`errnoRet`, `defaultErrnoRet`).
_ERRNO_ACTIONS = frozenset({"SCMP_ACT_ERRNO", "SCMP_ACT_TRACE"})
OPERATORS = frozenset(
    {
        "SCMP_CMP_NE",
        "SCMP_CMP_LT",
        "SCMP_CMP_LE",
        "SCMP_CMP_EQ",
        "SCMP_CMP_GE",
        "SCMP_CMP_GT",
        "SCMP_CMP_MASKED_EQ",
    }
)
FLAGS = frozenset(
    {
        "SECCOMP_FILTER_FLAG_TSYNC",
        "SECCOMP_FILTER_FLAG_LOG",
        "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
        "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
    }
)

#: libseccomp's native architecture names (what `arches` filters say) -> the OCI
#: `SCMP_ARCH_*` of that architecture (moby's `nativeToSeccomp`).
NATIVE_TO_SECCOMP: Mapping[str, str] = {
    "x86": "SCMP_ARCH_X86",
    "amd64": "SCMP_ARCH_X86_64",
    "arm": "SCMP_ARCH_ARM",
    "arm64": "SCMP_ARCH_AARCH64",
    "loong64": "SCMP_ARCH_LOONGARCH64",
    "mips64": "SCMP_ARCH_MIPS64",
    "mips64n32": "SCMP_ARCH_MIPS64N32",
    "mipsel64": "SCMP_ARCH_MIPSEL64",
    "mips3l64n32": "SCMP_ARCH_MIPSEL64N32",
    "mipsle": "SCMP_ARCH_MIPSEL",
    "ppc": "SCMP_ARCH_PPC",
    "ppc64": "SCMP_ARCH_PPC64",
    "ppc64le": "SCMP_ARCH_PPC64LE",
    "riscv64": "SCMP_ARCH_RISCV64",
    "s390": "SCMP_ARCH_S390",
    "s390x": "SCMP_ARCH_S390X",
}
ARCHES = frozenset(
    {*NATIVE_TO_SECCOMP.values(), "SCMP_ARCH_X32", "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPSEL",
     "SCMP_ARCH_PARISC", "SCMP_ARCH_PARISC64"}
)

#: `uname -m` -> the native name Docker would use (its GOARCH through `goToNative`).
_MACHINE_TO_NATIVE: Mapping[str, str] = {
    "x86_64": "amd64",
    "i386": "x86",
    "i486": "x86",
    "i586": "x86",
    "i686": "x86",
    "aarch64": "arm64",
    "arm64": "arm64",
    "armv6l": "arm",
    "armv7l": "arm",
    "armv8l": "arm",
    "ppc64le": "ppc64le",
    "ppc64": "ppc64",
    "s390x": "s390x",
    "riscv64": "riscv64",
    "loongarch64": "loong64",
    "mips64": "mips64",
}


@dataclass(frozen=True)
class Arg:
    """A condition on one argument of a call (`args` of a rule)."""

    index: int
    value: int
    value_two: int
    op: str


@dataclass(frozen=True)
class Filter:
    """`includes`/`excludes` of a rule: capabilities, native arches, a kernel version."""

    caps: tuple[str, ...] = ()
    arches: tuple[str, ...] = ()
    min_kernel: tuple[int, int] | None = None


@dataclass(frozen=True)
class Rule:
    """One entry of `syscalls`: these names get this action (under these conditions)."""

    names: tuple[str, ...]
    action: str
    errno_ret: int | None = None
    args: tuple[Arg, ...] = ()
    includes: Filter | None = None
    excludes: Filter | None = None


@dataclass(frozen=True)
class Profile:
    """A Docker-format seccomp profile, checked."""

    default_action: str
    default_errno_ret: int | None = None
    architectures: tuple[str, ...] = ()
    #: archMap: (architecture, its sub-architectures).
    arch_map: tuple[tuple[str, tuple[str, ...]], ...] = ()
    flags: tuple[str, ...] = ()
    listener_path: str = ""
    listener_metadata: str = ""
    syscalls: tuple[Rule, ...] = ()


@dataclass(frozen=True)
class Platform:
    """The two host facts a profile's conditions read."""

    arch: str  # libseccomp native name ("amd64")
    kernel: tuple[int, int]  # (kernel version, major revision): 6.8.0-45 -> (6, 8)


# ------------------------------------------------------------------ parsing (pure)


class _Bad(Exception):
    """A problem at a place in the profile; turned into one InvalidArgument line."""

    def __init__(self, where: str, what: str) -> None:
        super().__init__(f"{where}: {what}" if where else what)


def _show(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _obj(value: Any, where: str, known: Iterable[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Bad(where, f"want an object, got {_show(value)}")
    unknown = sorted(set(value) - set(known))
    if unknown:
        raise _Bad(where, f"unknown field {unknown[0]!r}")
    return value


def _str(value: Any, where: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _Bad(where, f"want a string, got {_show(value)}")
    return value


def _uint(value: Any, where: str, bits: int = 64) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 1 << bits:
        raise _Bad(where, f"want an unsigned integer, got {_show(value)}")
    return value


def _strs(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _Bad(where, f"want a list of strings, got {_show(value)}")
    return tuple(_str(v, f"{where}[{i}]") for i, v in enumerate(value))


def _one_of(value: str, allowed: frozenset[str], where: str, what: str) -> str:
    if value not in allowed:
        raise _Bad(where, f"unknown {what} {value!r}")
    return value


def _kernel(value: Any, where: str) -> tuple[int, int] | None:
    """moby's KernelVersion: "<kernel>.<major>", each 0..255, not 0.0; "" is none."""
    text = _str(value, where)
    if not text:
        return None
    parts = text.split(".")
    want = f'invalid kernel version {_show(value)}, expected "<kernel>.<major>"'
    if len(parts) != 2 or not all(p.isdigit() and int(p) < 256 for p in parts):
        raise _Bad(where, want)
    version = (int(parts[0]), int(parts[1]))
    if version == (0, 0):
        raise _Bad(where, f"{want}: version cannot be 0.0")
    return version


def _filter(value: Any, where: str) -> Filter | None:
    if value is None:
        return None
    o = _obj(value, where, ("caps", "arches", "minKernel"))
    return Filter(
        caps=_strs(o.get("caps"), f"{where}.caps"),
        arches=_strs(o.get("arches"), f"{where}.arches"),
        min_kernel=_kernel(o.get("minKernel"), f"{where}.minKernel"),
    )


def _arg(value: Any, where: str) -> Arg:
    o = _obj(value, where, ("index", "value", "valueTwo", "op"))
    index = _uint(o.get("index", 0), f"{where}.index")
    if index > 5:
        raise _Bad(f"{where}.index", f"a system call has 6 arguments (0-5), got {index}")
    return Arg(
        index=index,
        value=_uint(o.get("value", 0), f"{where}.value"),
        value_two=_uint(o.get("valueTwo", 0), f"{where}.valueTwo"),
        op=_one_of(_str(o.get("op"), f"{where}.op"), OPERATORS, f"{where}.op", "operator"),
    )


_RULE_KEYS = ("names", "name", "action", "errnoRet", "args", "comment", "includes", "excludes")


def _rule(value: Any, where: str) -> Rule:
    o = _obj(value, where, _RULE_KEYS)
    names = _strs(o.get("names"), f"{where}.names")
    name = _str(o.get("name"), f"{where}.name")
    if name:
        if names:
            raise _Bad(where, "both 'name' and 'names' are given, use either 'name' or 'names'")
        names = (name,)
    if not names:
        raise _Bad(where, "no system call named ('names' is empty)")
    action = _one_of(_str(o.get("action"), f"{where}.action"), ACTIONS, f"{where}.action",
                     "action")
    errno_ret = None
    if o.get("errnoRet") is not None:
        errno_ret = _uint(o["errnoRet"], f"{where}.errnoRet", 32)
        if action not in _ERRNO_ACTIONS:
            raise _Bad(f"{where}.errnoRet", f"only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take one, "
                       f"not {action}")
    args = o.get("args")
    if args is not None and not isinstance(args, list):
        raise _Bad(f"{where}.args", f"want a list, got {_show(args)}")
    _str(o.get("comment"), f"{where}.comment")
    return Rule(
        names=names,
        action=action,
        errno_ret=errno_ret,
        args=tuple(_arg(a, f"{where}.args[{i}]") for i, a in enumerate(args or [])),
        includes=_filter(o.get("includes"), f"{where}.includes"),
        excludes=_filter(o.get("excludes"), f"{where}.excludes"),
    )


_PROFILE_KEYS = (
    "defaultAction",
    "defaultErrnoRet",
    "architectures",
    "archMap",
    "flags",
    "listenerPath",
    "listenerMetadata",
    "syscalls",
)


def _profile(doc: Any) -> Profile:
    o = _obj(doc, "", _PROFILE_KEYS)
    action = _str(o.get("defaultAction"), "defaultAction")
    syscalls = o.get("syscalls")
    if syscalls is not None and not isinstance(syscalls, list):
        raise _Bad("syscalls", f"want a list, got {_show(syscalls)}")
    rules = tuple(_rule(r, f"syscalls[{i}]") for i, r in enumerate(syscalls or []))
    if action or rules:
        _one_of(action, ACTIONS, "defaultAction", "action")
    default_errno = None
    if o.get("defaultErrnoRet") is not None:
        default_errno = _uint(o["defaultErrnoRet"], "defaultErrnoRet", 32)
        if action not in _ERRNO_ACTIONS:
            raise _Bad("defaultErrnoRet", f"only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take one, "
                       f"not {action}")
    arches = tuple(
        _one_of(a, ARCHES, f"architectures[{i}]", "architecture")
        for i, a in enumerate(_strs(o.get("architectures"), "architectures"))
    )
    amap = o.get("archMap")
    if amap is not None and not isinstance(amap, list):
        raise _Bad("archMap", f"want a list, got {_show(amap)}")
    arch_map = []
    for i, entry in enumerate(amap or []):
        where = f"archMap[{i}]"
        e = _obj(entry, where, ("architecture", "subArchitectures"))
        arch = _one_of(_str(e.get("architecture"), f"{where}.architecture"), ARCHES,
                       f"{where}.architecture", "architecture")
        subs = tuple(
            _one_of(s, ARCHES, f"{where}.subArchitectures[{j}]", "architecture")
            for j, s in enumerate(_strs(e.get("subArchitectures"), f"{where}.subArchitectures"))
        )
        arch_map.append((arch, subs))
    if arches and arch_map:
        raise _Bad("", "both 'architectures' and 'archMap' are given, use either one")
    flags = tuple(
        _one_of(f, FLAGS, f"flags[{i}]", "flag")
        for i, f in enumerate(_strs(o.get("flags"), "flags"))
    )
    listener = _str(o.get("listenerPath"), "listenerPath")
    if not listener and (action == "SCMP_ACT_NOTIFY" or any(
        r.action == "SCMP_ACT_NOTIFY" for r in rules
    )):
        raise _Bad("listenerPath", "SCMP_ACT_NOTIFY needs a listenerPath")
    return Profile(
        default_action=action,
        default_errno_ret=default_errno,
        architectures=arches,
        arch_map=tuple(arch_map),
        flags=flags,
        listener_path=listener,
        listener_metadata=_str(o.get("listenerMetadata"), "listenerMetadata"),
        syscalls=rules,
    )


def parse_profile(text: str) -> Profile:
    """A profile's JSON text -> Profile; InvalidArgument naming what is wrong, and where."""
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise InvalidArgument(f"Decoding seccomp profile failed: {exc}") from None
    except RecursionError:
        raise InvalidArgument("Decoding seccomp profile failed: nested too deeply") from None
    try:
        return _profile(doc)
    except _Bad as exc:
        raise InvalidArgument(f"Decoding seccomp profile failed: {exc}") from None


@functools.cache
def default_profile() -> Profile:
    """Docker's default profile, shipped beside this module (read once)."""
    text = resources.files(__package__).joinpath("seccomp_default.json").read_text()
    return parse_profile(text)


# --------------------------------------------------------------- conversion (pure)


def _applies(rule: Rule, platform: Platform, caps: frozenset[str]) -> bool:
    """moby's conditions: any excluded cap/arch/kernel drops the rule, includes need all."""
    ex = rule.excludes
    if ex is not None:
        if platform.arch in ex.arches:
            return False
        if any(c in caps for c in ex.caps):
            return False
        if ex.min_kernel is not None and platform.kernel >= ex.min_kernel:
            return False
    inc = rule.includes
    if inc is not None:
        if inc.arches and platform.arch not in inc.arches:
            return False
        if not all(c in caps for c in inc.caps):
            return False
        if inc.min_kernel is not None and platform.kernel < inc.min_kernel:
            return False
    return True


def _oci_rule(rule: Rule) -> dict[str, Any]:
    out: dict[str, Any] = {"names": list(rule.names), "action": rule.action}
    if rule.errno_ret is not None:
        out["errnoRet"] = rule.errno_ret
    if rule.args:
        out["args"] = [
            {"index": a.index, "value": a.value, "op": a.op}
            | ({"valueTwo": a.value_two} if a.value_two else {})
            for a in rule.args
        ]
    return out


def linux_seccomp(
    profile: Profile, platform: Platform, caps: Iterable[str]
) -> dict[str, Any] | None:
    """The OCI `linux.seccomp` for a container with bounding set `caps` on `platform`.

    None when the profile filters nothing (no default action and no rules), as moby.
    """
    if not profile.default_action and not profile.syscalls:
        return None
    bounding = frozenset(caps)
    arches = list(profile.architectures)
    native = NATIVE_TO_SECCOMP.get(platform.arch)
    for arch, subs in profile.arch_map:
        if arch == native:
            arches += [arch, *subs]
            break
    out: dict[str, Any] = {"defaultAction": profile.default_action}
    if profile.default_errno_ret is not None:
        out["defaultErrnoRet"] = profile.default_errno_ret
    if arches:
        out["architectures"] = arches
    if profile.flags:
        out["flags"] = list(profile.flags)
    if profile.listener_path:
        out["listenerPath"] = profile.listener_path
    if profile.listener_metadata:
        out["listenerMetadata"] = profile.listener_metadata
    out["syscalls"] = [
        _oci_rule(r) for r in profile.syscalls if _applies(r, platform, bounding)
    ]
    return out


def parse_release(release: str) -> tuple[int, int]:
    """`uname -r` -> (kernel, major), as moby reads it ("6.8.0-45-generic" -> (6, 8))."""
    head = release.split("-", 1)[0].split(".")
    try:
        return int(head[0]), int("".join(ch for ch in head[1] if ch.isdigit()) or 0)
    except (IndexError, ValueError):
        raise InvalidArgument(f"failed to parse kernel version {release!r}") from None


def native_arch(machine: str) -> str:
    """`uname -m` -> libseccomp's native name ("x86_64" -> "amd64"); unknown kept as is."""
    return _MACHINE_TO_NATIVE.get(machine, machine)


@functools.cache
def host_platform() -> Platform:
    """This host's architecture and kernel version (read once: they do not change)."""
    uts = os.uname()
    return Platform(arch=native_arch(uts.machine), kernel=parse_release(uts.release))
