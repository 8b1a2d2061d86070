"""`HostConfig.SecurityOpt` (`--security-opt`, compose `security_opt`): read, checked.

The daemon's side of Docker's security options (moby `parseSecurityOpt`):

- `seccomp=builtin` (the default), `seccomp=unconfined`, or `seccomp={...}`: a profile's
  JSON content, which the CLIs read from the file the user named (`seccomp=FILE`);
- `no-new-privileges`, `no-new-privileges=true|false` (also with `:`);
- `apparmor=PROFILE`, `label=...`: confinement corral does not give (and this host,
  without AppArmor or SELinux, could not), so refused rather than silently dropped.
  The values that ask for *no* confinement (`apparmor=unconfined`, `label=disable`)
  hold and are accepted, so service files written for such hosts still run.

Pure but for `host_security`, which reads once what the kernel offers.  Every problem
is an InvalidArgument (400) naming the option, at create, so nothing is made.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from supervisor.errors import InvalidArgument
from supervisor.runtime import seccomp
from supervisor.runtime.seccomp import Platform, Profile

BUILTIN = "builtin"
UNCONFINED = "unconfined"

#: Go's strconv.ParseBool, which moby uses for `no-new-privileges=VALUE`.
_BOOLS = {
    **dict.fromkeys(("1", "t", "T", "TRUE", "true", "True"), True),
    **dict.fromkeys(("0", "f", "F", "FALSE", "false", "False"), False),
}
_KNOWN = "seccomp, no-new-privileges, apparmor, label"

#: corral's daemon-wide default, as dockerd's `--no-new-privileges` (runtime/spec.py's).
DEFAULT_NO_NEW_PRIVILEGES = True


@dataclass(frozen=True)
class HostSecurity:
    """What the kernel offers: seccomp filters, AppArmor, SELinux."""

    seccomp: bool
    apparmor: bool
    selinux: bool


@dataclass(frozen=True)
class SecurityOptions:
    """A container's security options, as its SecurityOpt says (defaults otherwise)."""

    #: "builtin", "unconfined", a user profile (checked), or None: not said (the default
    #: profile, but none for a privileged container).
    seccomp: str | Profile | None = None
    #: None: the daemon's default (`DEFAULT_NO_NEW_PRIVILEGES`).
    no_new_privileges: bool | None = None

    @property
    def process_no_new_privileges(self) -> bool:
        """The OCI `process.noNewPrivileges` of the container's processes (execs too)."""
        if self.no_new_privileges is None:
            return DEFAULT_NO_NEW_PRIVILEGES
        return self.no_new_privileges

    def linux_seccomp(
        self, caps: Iterable[str], platform: Platform, *, privileged: bool = False
    ) -> dict[str, Any] | None:
        """The OCI `linux.seccomp`, or None for none (moby's `WithSeccomp`).

        `--privileged` runs without the default profile, but a profile the user gave
        still applies (`seccomp=builtin` too: moby would fail to read it as JSON then);
        `unconfined` is none at all.
        """
        if self.seccomp == UNCONFINED or (self.seccomp is None and privileged):
            return None
        if isinstance(self.seccomp, Profile):
            return seccomp.linux_seccomp(self.seccomp, platform, caps)
        return _default_seccomp(platform, frozenset(caps))


@functools.lru_cache(maxsize=64)
def _default_seccomp(platform: Platform, caps: frozenset[str]) -> dict[str, Any] | None:
    """The default profile's OCI section for a bounding set: one conversion per set a
    daemon sees (~0.6 ms of every start otherwise).  Shared: read, never changed (the
    bundle's config.json is its JSON)."""
    return seccomp.linux_seccomp(seccomp.default_profile(), platform, caps)


def _invalid(n: int, opt: str, why: str) -> InvalidArgument:
    # moby's wording (`invalid --security-opt 2: "OPT"`) with the reason after it
    return InvalidArgument(f"invalid --security-opt {n}: {json.dumps(opt)}: {why}")


def parse(opts: Any, host: HostSecurity) -> SecurityOptions:
    """HostConfig.SecurityOpt -> SecurityOptions; InvalidArgument naming the bad option."""
    if opts is None:
        opts = []
    if not isinstance(opts, list) or not all(isinstance(o, str) for o in opts):
        raise InvalidArgument("invalid HostConfig.SecurityOpt: want a list of strings")
    profile: str | Profile | None = None
    nnp: bool | None = None
    for opt in opts:
        if opt == "no-new-privileges":
            nnp = True
            continue
        if opt == "disable":  # moby: the old spelling of label=disable
            continue
        sep = "=" if "=" in opt else ":" if ":" in opt else ""
        if not sep:
            raise _invalid(1, opt, f"want KEY=VALUE ({_KNOWN})")
        key, _, value = opt.partition(sep)
        if not value:
            raise _invalid(1, opt, "no value")
        if key == "seccomp":
            profile = _seccomp(value, host)
        elif key == "no-new-privileges":
            if value not in _BOOLS:
                raise _invalid(2, opt, "want true or false")
            nnp = _BOOLS[value]
        elif key == "apparmor":
            if value != UNCONFINED:
                raise _invalid(2, opt, "AppArmor is not enabled on this host" if not
                               host.apparmor else "corral applies no AppArmor profile")
        elif key == "label":
            if value != "disable":
                raise _invalid(2, opt, "SELinux is not enabled on this host" if not
                               host.selinux else "corral applies no SELinux label")
        elif key == "writable-cgroups":
            raise _invalid(2, opt, "writable cgroups are not supported by corral")
        else:
            raise _invalid(2, opt, f"unknown option {json.dumps(key)} ({_KNOWN})")
    if profile in (None, BUILTIN) and not host.seccomp:
        profile = UNCONFINED  # moby: no default profile on a kernel without seccomp
    return SecurityOptions(seccomp=profile, no_new_privileges=nnp)


def _seccomp(value: str, host: HostSecurity) -> str | Profile:
    if value in (UNCONFINED, BUILTIN):
        return value
    if not host.seccomp:
        raise InvalidArgument("seccomp is not enabled in your kernel, cannot run a custom "
                              "seccomp profile")
    if not value.lstrip().startswith(("{", "[")):
        raise InvalidArgument(
            f"Decoding seccomp profile failed: {value[:60]!r} is not JSON: the client "
            "sends the profile's content (the docker and corral CLIs read the file)"
        )
    return seccomp.parse_profile(value)


def _enabled(path: str) -> bool:
    try:
        with open(path) as f:
            return f.read().strip() in ("Y", "1")
    except OSError:
        return False


@functools.cache
def host_security() -> HostSecurity:
    """What this kernel offers, found as dockerd's sysinfo finds it (read once)."""
    try:
        with open("/proc/self/status") as f:
            has_seccomp = any(line.startswith("Seccomp:") for line in f)
    except OSError:
        has_seccomp = False
    apparmor = os.path.isdir("/sys/kernel/security/apparmor") and _enabled(
        "/sys/module/apparmor/parameters/enabled"
    )
    selinux = os.path.isfile("/sys/fs/selinux/enforce")  # selinuxfs is mounted
    return HostSecurity(seccomp=has_seccomp, apparmor=apparmor, selinux=selinux)


def of_container(host_config: Mapping[str, Any]) -> SecurityOptions:
    """A stored container's options (checked at its create) on this host."""
    return parse(host_config.get("SecurityOpt"), host_security())


def no_new_privileges(host_config: Mapping[str, Any]) -> bool:
    """The no_new_privs bit of a container's processes (init, execs, probes): as its
    SecurityOpt says, else the daemon's default, but off for `--privileged` unless
    asked, as in Docker (whose default is off): setuid programs keep working there."""
    asked = of_container(host_config).no_new_privileges
    if asked is not None:
        return asked
    return False if host_config.get("Privileged") else DEFAULT_NO_NEW_PRIVILEGES


def info_options(
    host: HostSecurity, no_new_privileges: bool = DEFAULT_NO_NEW_PRIVILEGES
) -> list[str]:
    """/info's SecurityOptions, in dockerd's order, only what is true of corral here.

    No `name=apparmor`/`name=selinux` even on a host that has them: corral confines
    with neither.  No `name=cgroupns`: containers share the host's cgroup namespace.
    """
    out = []
    if host.seccomp:
        out.append(f"name=seccomp,profile={BUILTIN}")
    if no_new_privileges:
        out.append("name=no-new-privileges")
    return out
