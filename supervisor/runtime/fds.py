"""File descriptors with one owner each, closed exactly once.

A descriptor is a number, and numbers are reused: the kernel hands out the lowest free
one, so a second `os.close(n)` of a number that was already closed does not fail, it
closes whatever the number names now -- in a daemon that opens pipes and pidfds all the
time, most likely another container's.  And a task parked in `wait_readable(n)` when
`n` is closed behind trio's back is never woken (or is woken by the next file to get
that number).  `OwnedFd` makes both mistakes impossible to write by accident:

- the number lives in one object; `close()` is idempotent and forgets it first, so a
  second close (an error path and a `finally`, say) does nothing;
- `close()` calls `trio.lowlevel.notify_closing` first, so a task waiting on the fd
  wakes with `trio.ClosedResourceError` instead of waiting on a number that moved on;
- `fileno()` of a closed owner raises instead of answering a number, so code that kept
  the owner across an await never reads or writes someone else's descriptor;
- `detach()` hands the number to a new owner (a `trio.lowlevel.FdStream`, a child
  process that closes its copy) and this one forgets it.

Borrowing is fine inside one synchronous stretch (`fd.fileno()` passed to a syscall,
or as a child's stdio to `subprocess`, which dups it); keeping a bare number across an
await is not.
"""

from __future__ import annotations

import contextlib
import os
from types import TracebackType
from typing import Self

import structlog
import trio

log = structlog.get_logger("corral.fds")


class ClosedFd(trio.ClosedResourceError):
    """The owner's descriptor was closed (or handed over): there is no number to use."""


class OwnedFd:
    """One open descriptor and the duty to close it; `what` names it in logs."""

    __slots__ = ("_fd", "what")

    def __init__(self, fd: int, what: str) -> None:
        if fd < 0:
            raise ValueError(f"not a file descriptor: {fd}")
        self._fd = fd
        self.what = what

    # ---------------------------------------------------------------- making
    @classmethod
    def pipe(cls, what: str) -> tuple[OwnedFd, OwnedFd]:
        """A close-on-exec pipe: (read end, write end)."""
        r, w = os.pipe()
        return cls(r, f"{what} (read end)"), cls(w, f"{what} (write end)")

    @classmethod
    def open(
        cls, path: str | os.PathLike[str], flags: int, what: str, mode: int = 0o777
    ) -> OwnedFd:
        """`os.open`, close-on-exec."""
        return cls(os.open(path, flags | os.O_CLOEXEC, mode), what)

    @classmethod
    def devnull(cls) -> OwnedFd:
        return cls.open(os.devnull, os.O_RDONLY, "/dev/null")

    def dup(self, what: str) -> OwnedFd:
        """A second descriptor on the same open file, with its own owner."""
        return OwnedFd(os.dup(self.fileno()), what)

    # ---------------------------------------------------------------- using
    @property
    def closed(self) -> bool:
        return self._fd < 0

    def fileno(self) -> int:
        """The number, to use now (not to keep across an await)."""
        if self._fd < 0:
            raise ClosedFd(f"{self.what} is closed")
        return self._fd

    def detach(self) -> int:
        """Give the number to a new owner; this one will not close it."""
        fd = self.fileno()
        self._fd = -1
        return fd

    def stream(self) -> trio.lowlevel.FdStream:
        """A trio stream that owns the descriptor from now on."""
        return trio.lowlevel.FdStream(self.detach())

    # ---------------------------------------------------------------- closing
    def close(self) -> None:
        """Close it, once: waiters are told first; a second call does nothing."""
        fd, self._fd = self._fd, -1
        if fd < 0:
            return
        with contextlib.suppress(RuntimeError):  # outside trio.run nobody can wait on it
            trio.lowlevel.notify_closing(fd)
        os.close(fd)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __del__(self) -> None:
        # Dropped while open: a leak in the code that owned it.  Closing here is safe
        # (no one else may close this number) and keeps a leak from piling up.
        fd = getattr(self, "_fd", -1)
        if fd < 0:
            return
        with contextlib.suppress(Exception):  # at interpreter exit logging may be gone
            log.warning("fd.leaked", what=self.what, fd=fd)
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._fd < 0 else f"fd={self._fd}"
        return f"<OwnedFd {self.what} {state}>"


def close_all(*fds: OwnedFd | None) -> None:
    """Close each owner given (None: nothing to close), all of them even if one fails."""
    error: OSError | None = None
    for fd in fds:
        if fd is None:
            continue
        try:
            fd.close()
        except OSError as exc:
            error = error or exc
    if error is not None:
        raise error
