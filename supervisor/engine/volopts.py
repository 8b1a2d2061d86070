"""The local volume driver's options (`volume create -o type=... -o device=... -o o=...`,
`--mount volume-opt=`), as moby's volume/local: checked at create, mounted with mount(2)
on the volume's `_data` when a first container uses it, unmounted when the last stops.

`check` and `parse_o` are pure (moby's validateOpts and moby/sys/mount's parseOptions);
`Mounts` is the one owner of which volume is mounted for whom.  A failed mount gives
dockerd's words (`error while mounting volume '...': failed to mount local volume:
mount DEV:TARGET, flags: 0x..., data: ...: ERRNO`) and leaves nothing mounted.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Mapping
from pathlib import Path

import trio

from supervisor.errors import CorralError, InvalidArgument
from supervisor.runtime import rootfs
from supervisor.runtime.rootfs import is_mounted, unmount

VALID = ("type", "o", "device", "size")
#: moby's mandatoryOpts: each key needs the others named
MANDATORY = {"device": ("type",), "type": ("device",), "o": ("device",)}

MS_RDONLY = 0x1
MS_BIND = 0x1000
MS_REC = 0x4000
MS_REMOUNT = 0x20
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_SILENT = 0x8000
PTYPES = MS_SHARED | MS_PRIVATE | MS_SLAVE | MS_UNBINDABLE

#: moby/sys/mount's flag words: (clear, flag); anything else is filesystem data
FLAGS: dict[str, tuple[bool, int]] = {
    "defaults": (False, 0),
    "ro": (False, MS_RDONLY),
    "rw": (True, MS_RDONLY),
    "suid": (True, 0x2),
    "nosuid": (False, 0x2),
    "dev": (True, 0x4),
    "nodev": (False, 0x4),
    "exec": (True, 0x8),
    "noexec": (False, 0x8),
    "sync": (False, 0x10),
    "async": (True, 0x10),
    "dirsync": (False, 0x80),
    "remount": (False, MS_REMOUNT),
    "mand": (False, 0x40),
    "nomand": (True, 0x40),
    "atime": (True, 0x400),
    "noatime": (False, 0x400),
    "diratime": (True, 0x800),
    "nodiratime": (False, 0x800),
    "bind": (False, MS_BIND),
    "rbind": (False, MS_BIND | MS_REC),
    "unbindable": (False, MS_UNBINDABLE),
    "runbindable": (False, MS_UNBINDABLE | MS_REC),
    "private": (False, MS_PRIVATE),
    "rprivate": (False, MS_PRIVATE | MS_REC),
    "shared": (False, MS_SHARED),
    "rshared": (False, MS_SHARED | MS_REC),
    "slave": (False, MS_SLAVE),
    "rslave": (False, MS_SLAVE | MS_REC),
    "relatime": (False, 1 << 21),
    "norelatime": (True, 1 << 21),
    "strictatime": (False, 1 << 24),
    "nostrictatime": (True, 1 << 24),
}


def check(name: str, opts: Mapping[str, str]) -> dict[str, str]:
    """moby's validateOpts at `volume create`, its errors as the volume store's OpErr."""
    out = {str(k): str(v) for k, v in opts.items()}
    for key in out:
        if key not in VALID:
            raise InvalidArgument(f'create {name}: invalid option: "{key}"')
    if out.get("size", "") not in ("", "0"):  # an xfs project quota on the volume root
        raise InvalidArgument(f"create {name}: quota size requested but no quota support")
    for key, needs in MANDATORY.items():
        for need in needs:
            if key in out and need not in out:
                raise InvalidArgument(f'create {name}: missing required option: "{need}"')
    return out


def parse_o(options: str) -> tuple[int, str]:
    """moby/sys/mount's parseOptions: mount flags and the filesystem's data string."""
    flags = 0
    data: list[str] = []
    for word in options.split(","):
        if word in FLAGS:
            clear, f = FLAGS[word]
            flags = flags & ~f if clear else flags | f
        elif word:
            data.append(word)
    return flags, ",".join(data)


def needs_mount(opts: Mapping[str, str]) -> bool:
    return bool(opts.get("device") or opts.get("type"))


def _mount_error(op: str, source: str, target: Path, flags: int, data: str, err: int) -> str:
    out = f"{op} " + (f"{source}:{target}" if source else str(target))
    if flags:
        out += f", flags: {flags:#x}"
    if data:
        out += f", data: {data}"
    return f"{out}: {os.strerror(err).lower() if err != 0 else 'error'}"


def _call(source: str, target: Path, fstype: str, flags: int, data: str) -> int:
    rc: int = rootfs._libc.mount(
        source.encode() if source else None,
        os.fsencode(target),
        fstype.encode() if fstype else None,
        flags,
        data.encode() if data else None,
    )
    return 0 if rc == 0 else ctypes.get_errno()


def mount(opts: Mapping[str, str], target: Path) -> None:
    """moby/sys/mount's Mount(device, target, type, o): the mount, then a propagation
    change and a read-only bind's remount if asked; undone if a later step fails."""
    device, fstype = opts.get("device", ""), opts.get("type", "")
    flags, data = parse_o(opts.get("o", ""))
    oflags = flags & ~PTYPES

    def fail(op: str, src: str, fl: int, dt: str, err: int) -> CorralError:
        return CorralError(
            f"error while mounting volume '{target}': failed to mount local volume: "
            + _mount_error(op, src, target, fl, dt, err)
        )

    if not (flags & MS_REMOUNT) or data:
        err = _call(device, target, fstype, oflags, data)
        if err:
            raise fail("mount", device, oflags, data, err)
    try:
        if flags & PTYPES:
            pflags = flags & (PTYPES | MS_REC | MS_SILENT)
            err = _call("", target, "", pflags, "")
            if err:
                raise fail("remount", "", pflags, "", err)
        if oflags & (MS_BIND | MS_RDONLY) == MS_BIND | MS_RDONLY:
            err = _call("", target, "", oflags | MS_REMOUNT, "")
            if err:
                raise fail("remount", "", oflags | MS_REMOUNT, "", err)
    except CorralError:
        unmount(target)
        raise


class Mounts:
    """Which option volumes are mounted, for which holders (container ids): mounted
    at the first `acquire`, unmounted at the last `release`, as moby's refcount."""

    def __init__(self) -> None:
        self._holders: dict[str, set[str]] = {}
        self._lock = trio.Lock()  # two starts of one volume's users mount it once

    async def acquire(self, name: str, opts: Mapping[str, str], target: Path, holder: str) -> None:
        """mount(2) off the trio thread: a network filesystem's may wait long."""
        async with self._lock:
            held = self._holders.setdefault(name, set())
            if not held:
                try:
                    await trio.to_thread.run_sync(mount, opts, target)
                except BaseException:
                    del self._holders[name]
                    raise
            held.add(holder)

    def adopt(self, name: str, holder: str) -> None:
        """Live restore: a kept container still uses the volume mounted before."""
        self._holders.setdefault(name, set()).add(holder)

    def release(self, name: str, target: Path, holder: str) -> None:
        held = self._holders.get(name)
        if not held or holder not in held:
            return
        held.discard(holder)
        if not held:
            del self._holders[name]
            unmount(target)

    @staticmethod
    def clear(target: Path) -> None:
        """After a restart or before a remove: nothing mounted on `_data` stays."""
        while is_mounted(target):
            unmount(target)
