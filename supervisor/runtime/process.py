"""Waiting for container processes without polling and without a runc per container.

The daemon calls `set_child_subreaper()` once at startup.  `runc create` forks the
container's init and exits; with the subreaper bit set, the orphaned init is reparented
to the daemon instead of pid 1, so the daemon can `waitid()` it and learn its exit
status.  That avoids a foreground `runc run` (~10 MB RSS) per running container.

Waiting is event-driven: a pidfd becomes readable when its process exits, so
`PidFd.wait()` parks the task in epoll until then and reaps through the pidfd.

Ownership rule: reap only pids you own, i.e. container inits (and `runc exec --detach`
processes) that were reparented to us.  Never call `os.wait()`/`waitpid(-1)`: trio
reaps the children *it* spawned (e.g. the `runc` CLI invocations) through their own
pidfds, and a wildcard wait would steal their status.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import select
import signal

import trio

from supervisor.errors import CorralError
from supervisor.runtime.fds import OwnedFd

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


def exit_code_from_waitid(result: os.waitid_result) -> int:
    """Docker's convention: the exit status, or 128 + the signal that killed it."""
    if result.si_code in (os.CLD_KILLED, os.CLD_DUMPED):
        return 128 + result.si_status
    return result.si_status


#: Pids some PidFd waits to reap: the orphan reaper below leaves them alone.
_claimed: set[int] = set()


class PidFd(OwnedFd):
    """A pidfd on one of our children (a container init, a detached exec), which owns
    the duty to reap it.

    Open it while the process is known to be alive or an unreaped zombie (right after
    `runc create` / `runc exec --detach` returns) so it cannot name a recycled pid.
    While it is open the pid is claimed: `reap_runtime_orphans` will not reap it, so
    `wait()` always finds the exit status.  Signals go through the pidfd, never the
    pid, which may name another process once ours was reaped.
    """

    __slots__ = ("pid", "_reaped")

    def __init__(self, pid: int, what: str) -> None:
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            raise CorralError(f"process {pid} does not exist") from None
        super().__init__(fd, f"{what} pidfd (pid {pid})")
        self.pid = pid
        self._reaped = False
        _claimed.add(pid)

    def send_signal(self, sig: int) -> bool:
        """Signal it; False if it has already exited (nothing to signal)."""
        try:
            signal.pidfd_send_signal(self.fileno(), sig)
        except ProcessLookupError:
            return False
        return True

    def has_exited(self) -> bool:
        """One look, no wait: has the process exited (reaped or not)?"""
        return has_exited(self)

    async def wait(self) -> int:
        """Wait for the exit, reap it, return its exit code (Docker's convention).

        Raises ChildProcessError if the process is not our child (an init adopted by
        pid 1 while the daemon was down): its status is lost.
        """
        await trio.lowlevel.wait_readable(self.fileno())
        result = os.waitid(os.P_PIDFD, self.fileno(), os.WEXITED)
        self._release()
        if result is None:  # only possible with WNOHANG; keep mypy and readers honest
            raise CorralError(f"process {self.pid} has not exited")
        return exit_code_from_waitid(result)

    def _release(self) -> None:
        if not self._reaped:
            self._reaped = True
            _claimed.discard(self.pid)

    def close(self) -> None:
        self._release()
        super().close()


def has_exited(fd: OwnedFd) -> bool:
    """Is the pidfd readable now, i.e. has its process exited?  (poll: any fd number)"""
    poller = select.poll()
    poller.register(fd.fileno(), select.POLLIN)
    return bool(poller.poll(0))


# Being the subreaper has a second effect: runc's own intermediate processes
# (`runc:[1:CHILD]`, forked during `runc create` and left when its parent exits) are
# reparented to us too, and nobody else will ever wait for them.  Left alone they stay
# zombies, one per container start, until the daemon runs out of pids.  They are
# recognised by their name.  A process of ours can carry it too: a container init or a
# health probe that died before its execve (killed with its container while runc was
# setting it up) is still `runc:[2:INIT]`.  Reaping one of those made the waitid of its
# PidFd fail with ECHILD -- under load an uncaught ChildProcessError in a health probe
# ended the daemon -- so claimed pids (an open PidFd) are left to their owner.  One
# killed before it named itself (runc killed at a cancelled exec, its child dying with
# it) is still `exe`, as runc re-execs itself through /proc/self/exe; no other child
# of the daemon is run from a file of that name.
_ORPHAN_PREFIX = "runc:["
_ORPHAN_UNNAMED = "exe"


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
        orphan = comm.startswith(_ORPHAN_PREFIX) or comm == _ORPHAN_UNNAMED
        if state == "Z" and orphan and pid not in _claimed:
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
