"""A container's seccomp filter compiled once per profile, not at every create and exec.

runc compiles the OCI `linux.seccomp` section with libseccomp in every `runc init`:
for Docker's default profile on x86-64 (three architectures, ~370 syscalls) that is
~25 ms of CPU and ~10-15 ms of wall time of every container start, policy restart,
`exec` and health probe (measured with `perf stat`, 2-CPU VM: 67-70 ms of CPU for a
`runc run` of `true` with the filter, 41-44 ms without).  Podman and Docker pay it
too.  The filter runc installs depends on that section alone, so corral has runc
make it once (`seccompcapture.py` reads it back from the kernel: the very
instructions runc loads), keeps it under `<root>/seccomp/<digest>`, and for each
container hands runc a config without the section whose command is the helper
`corral-seccomp-exec` (`seccompexec.c`), which loads those instructions and execs
the command.  The installed filter, the capability sets and no_new_privs are the
same as under runc alone (`tests/test_seccomp_exec.py` compares them).

What keeps this as tight as runc's own order:
- The helper runs after runc has set the user, the capabilities and no_new_privs,
  and installs the filter before anything of the container's runs under it: it is
  the first program runc execs.  It is exec'd from a sealed memfd runc passes as fd 3
  (`--preserve-fds 1`), closed before the command's exec: nothing of it is left in
  the container's filesystem or descriptors.
- Between runc's exec of the helper and the helper's filter, another process of the
  container must not ptrace it (or read its memory or descriptors: the same check).
  runc's init is not dumpable; an exec'd program is again.  So runc gives the helper
  one capability the container has not got (`guard`): the kernel lets a process
  ptrace another of its uid only if its own permitted set holds all of the other's,
  which no process of the container can then.  The helper also sets itself not
  dumpable first thing, and checks the guard is in its permitted set (a runtime that
  ignored it fails the start: exit 125).
- Only Docker's default profile goes this way (the helper's few syscalls after the
  filter, prctl/capset/stat/execve, are allowed there); a profile of the user's, a
  process without no_new_privs, or one with inheritable or ambient capabilities of
  its own keeps runc's path.  A container made this way has a marker in its bundle
  (`seccomp-filter`), and every exec into it goes through the helper or is refused:
  never without the filter.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import struct
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
import trio

from supervisor import stateroot
from supervisor.errors import CorralError
from supervisor.rmtree import discard_tree
from supervisor.runtime import seccompcapture
from supervisor.runtime.fds import OwnedFd
from supervisor.runtime.runcbin import RUNC_SEALS
from supervisor.runtime.spec import ALL_CAPABILITIES, cap_name

log = structlog.get_logger("corral.runtime")

#: the helper, built by scripts/setup from seccompexec.c beside this module
HELPER = Path(__file__).with_name("corral-seccomp-exec")
#: the helper as runc sees it in the container: `--preserve-fds 1`
HELPER_IN_CONTAINER = "/proc/self/fd/3"
#: the bundle's marker: this container's filter is the helper's to install
MARKER = "seccomp-filter"
#: [ELF][sock_filter x n][u32 n][u32 magic], as seccompexec.c reads it
TRAILER = struct.Struct("<II")
TRAILER_MAGIC = 0x43524246
MAX_INSNS = 4096
#: a capture's bundle, under the filters' directory (not tmp/, swept at every boot
#: while the boot's own capture may be running)
CAPTURE_PREFIX = ".capture-"

#: capability numbers as the kernel has them (spec.ALL_CAPABILITIES is in bit order)
CAP_NUMBER = {name: n for n, name in enumerate(ALL_CAPABILITIES)}


def digest_of(section: dict[str, Any], runtime: str) -> str:
    """The name a filter is kept under: its OCI section's canonical JSON and what the
    runtime says of itself (`runc --version`: its version, its package's, libseccomp's:
    an upgrade of either may make another filter), hashed."""
    text = json.dumps([section, runtime], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def guard_for(caps: list[str], bounding: int) -> str | None:
    """A capability the container has not got and runc can give (in the daemon's
    bounding set: the highest there), or None (pure).  None too where CAP_SETPCAP,
    which the helper needs when the container has not got it, cannot be given."""
    held = {cap_name(c) for c in caps}
    if "CAP_SETPCAP" not in held and not bounding >> CAP_NUMBER["CAP_SETPCAP"] & 1:
        return None
    for n in range(len(ALL_CAPABILITIES) - 1, -1, -1):
        if bounding >> n & 1 and ALL_CAPABILITIES[n] not in held:
            return ALL_CAPABILITIES[n]
    return None


def bounding_set() -> int:
    """This process's capability bounding set (CapBnd): what runc can give."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapBnd:"):
            return int(line.split()[1], 16)
    return 0


def _mask(caps: list[str]) -> int:
    return sum(1 << CAP_NUMBER[c] for c in set(caps))


def wrap_process(process: dict[str, Any], guard: str) -> dict[str, Any] | None:
    """The OCI process that runs the helper in front of `process`'s command, or None
    if this process must keep runc's path (pure).

    The caps runc gives the helper: the process's own plus `guard` and CAP_SETPCAP
    (the extras it drops), all of them also inheritable and ambient, so a non-root
    user keeps them across runc's exec of the helper (see seccompexec.c)."""
    caps = process.get("capabilities") or {}
    own = list(caps.get("permitted") or [])
    if (
        not process.get("noNewPrivileges")
        or caps.get("inheritable") or caps.get("ambient")
        or list(caps.get("bounding") or []) != own or list(caps.get("effective") or []) != own
        or any(c not in CAP_NUMBER for c in own)
        or guard not in CAP_NUMBER
    ):
        return None
    extra = [c for c in (guard, "CAP_SETPCAP") if c not in own]
    raised = list(dict.fromkeys([*own, *extra]))
    return {
        **process,
        "args": [HELPER_IN_CONTAINER, str(_mask(raised)), str(_mask(extra)),
                 *process["args"]],
        "capabilities": {k: list(raised)
                         for k in ("bounding", "effective", "permitted", "inheritable",
                                   "ambient")},
    }


@dataclass(frozen=True)
class Marker:
    """What a bundle's marker says: the filter (by digest) and the guard capability."""

    digest: str
    guard: str

    def text(self) -> bytes:
        return json.dumps({"filter": self.digest, "guard": self.guard}).encode()

    @staticmethod
    def parse(data: bytes) -> Marker:
        doc = json.loads(data)
        return Marker(str(doc["filter"]), str(doc["guard"]))


def wrap_config(config: dict[str, Any], marker: Marker) -> dict[str, Any] | None:
    """`config` with its filter left to the helper (pure): no `linux.seccomp`, the
    helper in front of the command; None if its process must keep runc's path."""
    process = wrap_process(config["process"], marker.guard)
    if process is None:
        return None
    linux = {k: v for k, v in config["linux"].items() if k != "seccomp"}
    return {**config, "process": process, "linux": linux}


def read_marker(bundle: Path) -> Marker | None:
    """The bundle's marker, or None: runc's own seccomp path (blocking, tiny)."""
    try:
        data = (bundle / MARKER).read_bytes()
    except FileNotFoundError:
        return None
    try:
        return Marker.parse(data)
    except (ValueError, KeyError, TypeError):
        # fail closed: this container's filter is ours to install, and unknown
        raise CorralError(f"{bundle / MARKER}: unreadable seccomp marker") from None


def pack(helper: bytes, insns: bytes) -> OwnedFd:
    """The helper followed by the filter and its trailer, in a memfd sealed against
    every change (what runc execs as fd 3 in the container)."""
    if len(insns) % 8 or not 0 < len(insns) // 8 <= MAX_INSNS:
        raise OSError(f"a seccomp filter of {len(insns)} bytes")
    fd = OwnedFd(os.memfd_create("corral-seccomp-exec",
                                 os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING), "seccomp helper")
    try:
        view = memoryview(helper + insns + TRAILER.pack(len(insns) // 8, TRAILER_MAGIC))
        while view:
            view = view[os.write(fd.fileno(), view):]
        fcntl.fcntl(fd.fileno(), fcntl.F_ADD_SEALS, RUNC_SEALS)
    except BaseException:
        fd.close()
        raise
    return fd


def capture_config(section: dict[str, Any], cgroups_path: str) -> dict[str, Any]:
    """The bundle `seccompcapture.py` creates: an empty read-only root, the section,
    no_new_privs (runc loads the filter last, as for a container); its command is
    never run (the init is deleted while parked)."""
    return {
        "ociVersion": "1.0.2",
        "process": {"terminal": False, "user": {"uid": 0, "gid": 0},
                    "args": ["/proc/self/exe"], "env": [], "cwd": "/",
                    "capabilities": {}, "noNewPrivileges": True},
        "root": {"path": "rootfs", "readonly": True},
        "mounts": [{"destination": "/proc", "type": "proc", "source": "proc",
                    "options": ["nosuid", "noexec", "nodev"]}],
        "linux": {"namespaces": [{"type": t} for t in ("pid", "mount", "ipc", "uts",
                                                        "network")],
                  "cgroupsPath": cgroups_path, "seccomp": section},
    }


class Filters:
    """The one owner of the compiled filters (one per daemon): `<root>/seccomp/` on
    disk, sealed memfds in memory."""

    def __init__(self, root: Path, runc: str, cgroup_parent: str, *,
                 enabled: bool = True) -> None:
        #: whether new starts use the helper (`seccomp-helper`); execs into a
        #: container made with it always do
        self.enabled = enabled
        self.dir = root / "seccomp"
        self.runc = runc
        self.cgroup_parent = cgroup_parent
        self._helper: bytes | None = None
        self._version: str | None = None  # `runc --version`, asked once
        self._fds: dict[str, OwnedFd] = {}
        self._refused: set[str] = set()
        self._lock = trio.Lock()
        self.bounding = bounding_set()

    def available(self) -> bool:
        """Whether the helper is built (scripts/setup); read once."""
        if self._helper is None:
            try:
                data = HELPER.read_bytes()
            except OSError:
                data = b""
            self._helper = data if data[:4] == b"\x7fELF" else b""
            if not self._helper:
                log.info("seccomp.no_helper", path=str(HELPER))
        return bool(self._helper)

    async def marker_for(
        self, section: dict[str, Any] | None, caps: list[str]
    ) -> Marker | None:
        """A new start's marker if its filter can be the helper's, else None."""
        if section is None or not self.enabled or not self.available():
            return None
        if self._version is None:
            done = await trio.run_process([self.runc, "--version"], capture_stdout=True,
                                          capture_stderr=True, check=False)
            self._version = done.stdout.decode(errors="replace") if not done.returncode else ""
        if not self._version:
            return None
        digest = digest_of(section, self._version)
        guard = guard_for(caps, self.bounding)
        if guard is None or digest in self._refused:
            return None
        return Marker(digest, guard)

    async def prepare(self, section: dict[str, Any], marker: Marker) -> OwnedFd | None:
        """The sealed helper for this section's filter (kept; not the caller's to
        close), made on first use: read from disk, or captured from runc once.  None
        (runc's path, logged once) if it cannot be made."""
        fd = self._fds.get(marker.digest)
        if fd is not None:
            return fd
        async with self._lock:
            if marker.digest in self._fds:
                return self._fds[marker.digest]
            if marker.digest in self._refused:
                return None
            try:
                insns = await trio.to_thread.run_sync(self._read, marker.digest)
                if insns is None:
                    insns = await self._capture(section, marker.digest)
                fd = pack(self._helper or b"", insns)
            except OSError as exc:
                self._refused.add(marker.digest)
                log.warning("seccomp.precompile_failed", digest=marker.digest[:12],
                            error=str(exc))
                return None
            self._fds[marker.digest] = fd
            log.info("seccomp.precompiled", digest=marker.digest[:12],
                     insns=len(insns) // 8)
            return fd

    async def for_exec(self, marker: Marker) -> OwnedFd:
        """The sealed helper of a running container's filter: an exec into it needs
        it (after a daemon restart, from disk).  CorralError if it is gone: an exec
        never runs without its container's filter."""
        fd = self._fds.get(marker.digest)
        if fd is not None:
            return fd
        async with self._lock:
            if marker.digest not in self._fds:
                insns = await trio.to_thread.run_sync(self._read, marker.digest)
                if insns is None or not self.available():
                    raise CorralError(
                        f"the container's seccomp filter {marker.digest[:12]} is gone "
                        f"({self.dir}): restart the container")
                self._fds[marker.digest] = pack(self._helper or b"", insns)
            return self._fds[marker.digest]

    def _read(self, digest: str) -> bytes | None:
        try:
            return (self.dir / digest).read_bytes()
        except FileNotFoundError:
            return None

    async def _capture(self, section: dict[str, Any], digest: str) -> bytes:
        """runc's filter for `section`, from a container created for it alone (its
        bundle and its own runc state under `seccomp/.capture-<id>/`, so no listing of
        the daemon's sees it), deleted again whatever happens (a cancelled capture
        leaves no parked init); one a killed daemon left is deleted first."""
        cid = f"corral-seccomp-{digest[:16]}-{os.getpid()}"
        for old in await trio.to_thread.run_sync(self._left_captures):
            await self._delete_capture(old)
        bundle = self.dir / f"{CAPTURE_PREFIX}{cid}"
        await trio.to_thread.run_sync(self._make_bundle, bundle, section, cid)
        try:
            done = await trio.run_process(
                [sys.executable, "-I", "-S", seccompcapture.__file__, self.runc,
                 str(bundle / "runc"), str(bundle), cid],
                capture_stdout=True, capture_stderr=True, check=False)
        finally:
            with trio.CancelScope(shield=True):
                await self._delete_capture(bundle)
        if done.returncode != 0:
            raise OSError(done.stderr.decode(errors="replace").strip() or "capture failed")
        insns = done.stdout
        if len(insns) % 8 or not 0 < len(insns) // 8 <= MAX_INSNS:
            raise OSError(f"captured a filter of {len(insns)} bytes")
        await trio.to_thread.run_sync(self._keep, digest, insns)
        return insns

    def _left_captures(self) -> list[Path]:
        try:
            return [self.dir / e.name for e in os.scandir(self.dir)
                    if e.name.startswith(CAPTURE_PREFIX)]
        except FileNotFoundError:
            return []

    async def _delete_capture(self, bundle: Path) -> None:
        """A capture's container (runc's delete: the parked init, its cgroups), then
        its directory."""
        cid = bundle.name.removeprefix(CAPTURE_PREFIX)
        await trio.run_process([self.runc, "--root", str(bundle / "runc"), "delete",
                                "--force", cid],
                               capture_stdout=True, capture_stderr=True, check=False)
        await trio.to_thread.run_sync(discard_tree, bundle)

    def _make_bundle(self, bundle: Path, section: dict[str, Any], cid: str) -> None:
        stateroot.make_private_dir(self.dir)
        discard_tree(bundle)
        stateroot.make_private_dir(bundle)
        os.makedirs(bundle / "rootfs" / "proc")
        config = capture_config(section, f"/{self.cgroup_parent}/{cid}")
        stateroot.write_private_file(bundle / "config.json", json.dumps(config).encode())

    def _keep(self, digest: str, insns: bytes) -> None:
        stateroot.make_private_dir(self.dir)
        tmp = self.dir / f".{digest}.tmp"
        stateroot.write_private_file(tmp, insns)
        os.replace(tmp, self.dir / digest)

    def close(self) -> None:
        for fd in self._fds.values():
            fd.close()
        self._fds.clear()
