"""`Live`: the in-memory companions of a container record while the daemon runs.

Its own module so that the engine's parts (restore, the hooks) name it without
importing the engine, which imports them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import trio

from supervisor.runtime.console import Console
from supervisor.runtime.fds import OwnedFd
from supervisor.runtime.process import PidFd
from supervisor.supervise.logs import ContainerLog
from supervisor.supervise.output import Fanout
from supervisor.supervise.spool import Spool


@dataclass
class Live:
    """In-memory companions of a container record: its log, live output and waiters."""

    log: ContainerLog
    output: Fanout = field(default_factory=Fanout)
    exited: trio.Event = field(default_factory=trio.Event)  # the *next* exit
    started: trio.Event = field(default_factory=trio.Event)  # the *next* start
    removed: trio.Event = field(default_factory=trio.Event)
    stopped: trio.Event = field(default_factory=trio.Event)  # supervision task finished
    pidfd: PidFd | None = None  # the init's, while it runs (owned by the supervision task)
    stdin_w: OwnedFd | None = None  # the write end of its stdin pipe (-i), while it runs
    console: Console | None = None  # the pty master of a `Tty` container's run (owner)
    spools: dict[str, Spool] = field(default_factory=dict)  # per stream, until its pump takes it
    # A `Tty` run's relay pipe (read end, write end): pty -> relay -> spool, all by
    # splice, the holder keeping both ends (see `Engine._pump_console_spooled`).
    tty_relay: tuple[OwnedFd, OwnedFd] | None = None
    removing: bool = False
    # Restart policy bookkeeping (supervise/restart.py decides; this remembers).
    restart_scope: trio.CancelScope | None = None  # a pending policy restart
    # The root (and shm) an exit left mounted for the policy restart due at once
    # (`Engine._finish`); the start takes it, anyone who calls the restart off unmounts it.
    root_kept: bool = False
    # The exit's unmounted root, its superblock held by this O_PATH descriptor until
    # the exit is recorded (`Engine._finish`): the last reference's close syncs the
    # overlay's upper filesystem, after `wait` has its answer; a mount of the same
    # upper waits for `root_released` (`Engine.root_settled`).
    root_pin: int | None = None
    root_released: trio.Event = field(default_factory=trio.Event)
    delay: float = 0.0  # the last backoff delay
    recent_restarts: list[float] = field(default_factory=list)  # trio clock times
    started_clock: float = 0.0
    killed_by_user: bool = False
    unhealthy_restart: bool = False  # killed for being unhealthy: restart it
    start_lock: trio.Lock = field(default_factory=trio.Lock)
