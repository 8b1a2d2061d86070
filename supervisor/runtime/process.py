"""Waiting for container processes without polling and without a runc per container.

The daemon calls `set_child_subreaper()` once at startup.  `runc create` forks the
container's init and exits; with the subreaper bit set, the orphaned init is reparented
to the daemon instead of pid 1, so the daemon can `waitid()` it and learn its exit
status.  That avoids a foreground `runc run` (~10 MB RSS) per running container.

Waiting is event-driven: a pidfd becomes readable when its process exits, so
`trio.lowlevel.wait_readable(pidfd)` parks the task in epoll until then.

Ownership rule: reap only pids you own, i.e. container inits (and `runc exec --detach`
processes) that were reparented to us.  Never call `os.wait()`/`waitpid(-1)`: trio
reaps the children *it* spawned (e.g. the `runc` CLI invocations) through their own
pidfds, and a wildcard wait would steal their status.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal

import trio

from supervisor.errors import CorralError

PR_SET_CHILD_SUBREAPER = 36

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.prctl.argtypes = [
    ctypes.c_int,
    ctypes.c_ulong,
    ctypes.c_ulong,
    ctypes.c_ulong,
    ctypes.c_ulong,
]
_libc.prctl.restype = ctypes.c_int


def set_child_subreaper() -> None:
    """Make this process adopt orphaned descendants (container inits after create)."""
    if _libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise CorralError(f"prctl(PR_SET_CHILD_SUBREAPER): {os.strerror(err)}")


def pidfd_open(pid: int) -> int:
    """A pidfd for `pid` (non-blocking, close-on-exec); the caller closes it.

    Open it while the process is known to be alive or an unreaped zombie (e.g. right
    after `runc create` returns) so the fd cannot name a recycled pid.
    """
    try:
        return os.pidfd_open(pid)
    except ProcessLookupError:
        raise CorralError(f"process {pid} does not exist") from None


def exit_code_from_waitid(result: os.waitid_result) -> int:
    """Docker's convention: the exit status, or 128 + the signal that killed it."""
    if result.si_code in (os.CLD_KILLED, os.CLD_DUMPED):
        return 128 + result.si_status
    return result.si_status


async def wait_exit(pidfd: int, pid: int) -> int:
    """Wait for the process behind `pidfd` to exit, reap it, return its exit code.

    The process must be our child (a subreaped container init); otherwise `waitid`
    raises ChildProcessError -- e.g. for inits adopted by pid 1 while the daemon was
    down, whose exit status is then lost.  Does not close `pidfd`; if another task may
    be blocked here, call `trio.lowlevel.notify_closing(pidfd)` before closing it.
    """
    await trio.lowlevel.wait_readable(pidfd)
    result = os.waitid(os.P_PIDFD, pidfd, os.WEXITED)
    if result is None:  # only possible with WNOHANG; keep mypy and readers honest
        raise CorralError(f"process {pid} has not exited")
    return exit_code_from_waitid(result)


def pidfd_send_signal(pidfd: int, sig: int) -> None:
    """Signal through the pidfd, immune to pid reuse (unlike kill(2))."""
    signal.pidfd_send_signal(pidfd, sig)


# Being the subreaper has a second effect: runc's own intermediate processes
# (`runc:[1:CHILD]`, forked during `runc create` and left when its parent exits) are
# reparented to us too, and nobody else will ever wait for them.  Left alone they stay
# zombies, one per container start, until the daemon runs out of pids.  They are
# recognised by their name, which no process we own carries, so reaping them cannot
# steal the status of a child that trio or a supervision task waits for.
_ORPHAN_PREFIX = "runc:["


def _children() -> list[int]:
    pids: list[int] = []
    for task in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{task}/children") as f:
                pids += [int(p) for p in f.read().split()]
        except OSError:
            continue
    return pids


def reap_runtime_orphans() -> int:
    """Reap every zombie child left by runc's own forks; returns how many."""
    reaped = 0
    for pid in _children():
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        state = stat[stat.rindex(")") + 2 : stat.rindex(")") + 3]
        if state == "Z" and comm.startswith(_ORPHAN_PREFIX):
            try:
                os.waitpid(pid, os.WNOHANG)
                reaped += 1
            except ChildProcessError:
                pass
    return reaped


async def reap_runtime_orphans_forever() -> None:
    """Reap runc's orphans whenever a child changes state (SIGCHLD): no polling."""
    with trio.open_signal_receiver(signal.SIGCHLD) as signals:
        reap_runtime_orphans()
        async for _ in signals:
            reap_runtime_orphans()
