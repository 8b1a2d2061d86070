"""One daemon per socket and per state root: the flock(2) locks both the daemon and the CLI use.

Three lock files, each holding the pid of the daemon that locked it:

- `<socket>.lock`, the owner lock: held by the daemon that owns the socket, from its
  first step (before recovery) to its exit.
- `<socket>.starting`, the start gate: held by whoever is starting a daemon on the
  socket, or deciding whether to: a daemon until its API listens; a CLI for the moment
  it takes to decide (if it starts a daemon, it hands both locks over to it). A CLI
  that finds no answer waits for a starting daemon by blocking on the gate.
- `<root>/daemon.lock`: held by the daemon using that state root.

Why flock: the kernel drops a lock when its holder dies, kill -9 included, so there is
no stale pid file to judge; and a lock belongs to the open file description, so a CLI
hands a held lock to the daemon it spawns by passing the descriptor, with no moment
when the lock is free. The gate is taken before the owner lock and released only once
the API listens, so "owner held, gate free, no answer" means a daemon that has been
ready and no longer answers (it is shutting down), never one still starting.

Stays lean (os, fcntl): the CLI imports it on its error path.
"""

from __future__ import annotations

import fcntl
import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import FrameType


def socket_locks(sock: str) -> tuple[str, str]:
    """The owner lock and the start gate beside the socket `sock`."""
    return f"{sock}.lock", f"{sock}.starting"


def root_lock(root: str) -> str:
    return os.path.join(root, "daemon.lock")


def open_lock(path: str, *, create: bool = True) -> int:
    """A descriptor on the lock file (0600, close-on-exec); FileNotFoundError without
    `create` if no daemon ever made it."""
    flags = os.O_RDWR | os.O_CLOEXEC | (os.O_CREAT if create else 0)
    return os.open(path, flags, 0o600)


def try_lock(fd: int) -> bool:
    """Take the exclusive lock if it is free; False if someone holds it."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


class _Expired(Exception):
    pass


def _expire(signum: int, frame: FrameType | None) -> None:
    raise _Expired


def lock_within(fd: int, seconds: float) -> bool:
    """Block until the exclusive lock is ours, or `seconds` pass (False).

    flock(2) has no timeout of its own: an interval timer's SIGALRM interrupts it (the
    handler raises, so Python does not retry the call). Main thread only, as the CLI
    is. If the alarm lands just after the lock was taken we report a timeout while
    holding it; the caller closes the descriptor either way, which releases it.
    """
    import signal

    previous = signal.signal(signal.SIGALRM, _expire)
    try:
        try:
            signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.001))
            fcntl.flock(fd, fcntl.LOCK_EX)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    except _Expired:
        return False
    finally:
        signal.signal(signal.SIGALRM, previous)
    return True


def unlock(fd: int) -> None:
    """Release for every descriptor sharing this open file (a CLI's copy included)."""
    fcntl.flock(fd, fcntl.LOCK_UN)


def read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0)
    except OSError:
        return None
    try:
        return int(text.strip() or b"0") or None
    except ValueError:
        return None


def write_pid(fd: int, pid: int) -> None:
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{pid}\n".encode(), 0)


def pid_in(path: str) -> int | None:
    """The pid written in a lock file, None if there is none (for messages only)."""
    try:
        fd = open_lock(path, create=False)
    except OSError:
        return None
    try:
        return read_pid(fd)
    finally:
        os.close(fd)
