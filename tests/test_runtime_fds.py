"""One owner per descriptor: closed once, waiters told, pidfds that keep their child.

No containers: plain pipes and short-lived children of the test process.
"""

from __future__ import annotations

import os
import sys

import pytest
import trio
import trio.testing

from supervisor.runtime.fds import ClosedFd, OwnedFd
from supervisor.runtime.process import PidFd, reap_runtime_orphans


def test_a_second_close_leaves_the_number_next_owner_alone() -> None:
    r, w = OwnedFd.pipe("test")
    number = r.fileno()
    r.close()
    with OwnedFd.devnull() as newcomer:  # the kernel hands out the lowest free number
        assert newcomer.fileno() == number
        r.close()  # an error path and a finally, say
        os.fstat(newcomer.fileno())  # still open: the second close did nothing
    w.close()


def test_a_closed_owner_has_no_number_to_give() -> None:
    r, w = OwnedFd.pipe("test")
    with w:
        r.close()
        assert r.closed
        with pytest.raises(ClosedFd, match="test .read end. is closed"):
            r.fileno()
    with pytest.raises(ClosedFd):
        w.detach()


def test_detach_hands_the_number_over() -> None:
    r, w = OwnedFd.pipe("test")
    number = w.detach()
    w.close()  # nothing: it is not this owner's any more
    os.write(number, b"x")
    os.close(number)
    with r:
        assert os.read(r.fileno(), 1) == b"x"


async def test_closing_wakes_a_task_waiting_on_it() -> None:
    r, w = OwnedFd.pipe("test")
    woke: list[type[BaseException]] = []

    async def reader() -> None:
        try:
            await trio.lowlevel.wait_readable(r.fileno())
        except trio.ClosedResourceError as exc:
            woke.append(type(exc))

    with trio.fail_after(5):
        async with trio.open_nursery() as n:
            n.start_soon(reader)
            await trio.testing.wait_all_tasks_blocked()
            r.close()
    w.close()
    assert woke == [trio.ClosedResourceError]


def _spawn_named(name: str, code: int) -> int:
    """A child of this process that renames itself (like runc's init) and exits."""
    script = (
        "import ctypes, os; "
        f"ctypes.CDLL(None).prctl(15, {name.encode()!r}, 0, 0, 0); os._exit({code})"
    )
    return os.posix_spawn(sys.executable, [sys.executable, "-c", script], os.environ)


async def test_the_orphan_reaper_leaves_a_claimed_child_to_its_pidfd() -> None:
    # A probe killed before its execve is still named like runc's leftovers.
    pid = _spawn_named("runc:[2:INIT]", 3)
    with PidFd(pid, "test child") as child:
        with trio.fail_after(10):
            await trio.lowlevel.wait_readable(child.fileno())  # a zombie now
            assert child.has_exited()
            reap_runtime_orphans()
            assert await child.wait() == 3  # its status is still there to reap


async def test_the_orphan_reaper_still_reaps_runc_leftovers() -> None:
    pid = _spawn_named("runc:[1:CHILD]", 0)
    pidfd = os.pidfd_open(pid)  # only to know when it has exited; no claim
    try:
        with trio.fail_after(10):
            await trio.lowlevel.wait_readable(pidfd)
        assert reap_runtime_orphans() >= 1  # (other tests' runc leftovers may be there too)
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
    finally:
        os.close(pidfd)
