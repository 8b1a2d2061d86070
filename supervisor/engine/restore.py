"""Live restore: a new daemon takes back the containers an earlier one left running.

Every container init is the child of the holder (`runtime/holderd.py`), not of the
daemon, and the holder keeps the read ends of its output pipes, its pty master and
its ports' listening sockets.  So a daemon that dies (kill
-9, a crash) or stops with `live-restore` ends no container, and what a container
writes meanwhile waits in its pipe (1 MiB, `F_SETPIPE_SZ`; a full pipe blocks the
writer, which never gets EPIPE since the holder keeps a read end open).

At start (`Engine.recover`) the daemon asks the holder what it keeps and adopts each
container whose record agrees (`refusal` is the pure check): the same pid, and the
same start time (`/proc/PID/stat` field 22) now as recorded when it started, so a
pid the kernel gave to another process is never adopted.  An adopted container gets
its supervision back as if it had just started: its pumps read the pipes from where
the old daemon stopped (the lines written meanwhile are logged once, in order), its
health checks and restart policy resume, its published ports are relayed again from
the same listening sockets.  One whose init ended while no daemon ran is finished
with the exit status the holder reaped: its policy decides as for any exit.

`metadata/inits.InitStore` is the record of each running container's init (table `container_inits`,
schema version 1, `metadata/migrations.py`).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import socket
from pathlib import Path
from typing import TYPE_CHECKING

import structlog
import trio

from supervisor.engine.state import Status
from supervisor.metadata.containers import Container
from supervisor.runtime.fds import OwnedFd, close_all
from supervisor.runtime.holder import Held, HeldPid, start_ticks
from supervisor.runtime.runc import EXEC_FIFO
from supervisor.supervise import spool
from supervisor.supervise.logs import ContainerLog, LogOptions
from supervisor.supervise.spool import Spool

if TYPE_CHECKING:
    from supervisor.engine.engine import Engine

log = structlog.get_logger("corral.restore")

#: Pipe size while the daemon is away: how much a container writes before it blocks
#: (the kernel's default fs.pipe-max-size; an unprivileged maximum).
PIPE_SIZE = 1024 * 1024
F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)


def raise_pipe_size(fd: OwnedFd) -> None:
    """As big as the kernel allows (1 MiB by default; less if pipe-max-size says)."""
    with contextlib.suppress(OSError):  # over the user's pipe quota: 64 KiB stays
        fcntl.fcntl(fd.fileno(), F_SETPIPE_SZ, PIPE_SIZE)


def refusal(
    status: Status,
    state_pid: int,
    recorded: tuple[int, int] | None,
    held: tuple[int, int],
    exited: bool,
    start_now: int,
) -> str:
    """Why a held init must not be adopted ("" if it may).  Pure.

    `held` is the holder's (pid, start time), `recorded` ours, `start_now` the start
    time of that pid now (0: no such process).  An init that has exited is adopted
    for its exit status only if it is the one we recorded.
    """
    if status not in (Status.RUNNING, Status.PAUSED):
        return f"its record is {status.value}, not running"
    if recorded is None:
        return "no init recorded for it"
    if recorded != held or state_pid != held[0]:
        return f"the holder's init {held} is not the recorded one {recorded}"
    if not exited and start_now != held[1]:
        return f"pid {held[0]} now names another process (start time {start_now})"
    return ""


def choose(engine: Engine, held: list[Held]) -> tuple[list[tuple[Container, Held]], list[str]]:
    """The held containers to adopt, and the ids of the others: their descriptors are
    closed here, their inits (if any still run) killed with the rest of the last
    run's leftovers, and the holder told to forget them."""
    chosen: list[tuple[Container, Held]] = []
    refused: list[str] = []
    for h in held:
        c = next((x for x in engine.containers.all() if x.id == h.id), None)
        why = "no such container" if c is None else refusal(
            c.state.status, c.state.pid, engine.inits.get(h.id), (h.pid, h.start),
            h.exit is not None, start_ticks(h.pid),
        )
        if c is None or why:
            log.warning("restore.refused", id=h.id[:12], pid=h.pid, reason=why)
            h.close()
            refused.append(h.id)
            continue
        chosen.append((c, h))
    return chosen, refused


async def adopt(engine: Engine, c: Container, h: Held) -> bool:
    """Take back one container: its log, pumps, pidfd, health checks and ports."""
    live = engine.live(c)
    out_r, err_r = h.take("stdout"), h.take("stderr")
    stdin_w, console_fd = h.take("stdin"), h.take("console")
    relay_r, relay_w = h.take("ttyrelay_r"), h.take("ttyrelay_w")
    listeners = {n: socket.socket(fileno=fd.detach()) for n, fd in list(h.fds.items())
                 if n.startswith("port:")}
    h.close()
    cdir = engine.dir_of(c)
    for name, fd in (("stdout", out_r), ("stderr", err_r)):
        if fd is not None and (sp := Spool.open(cdir, name, resume=True)) is not None:
            live.spools[name] = sp
    if console_fd is not None and relay_r is not None and relay_w is not None and (
        sp := Spool.open(cdir, "stdout", resume=True)
    ) is not None:  # a pty's output, spooled through its relay pipe
        live.spools["stdout"] = sp
        os.set_blocking(relay_r.fileno(), False)
        live.tty_relay = (relay_r, relay_w)
    else:
        close_all(relay_r, relay_w)
    cut, renamed = spool.cut_back(engine.log_path(c), list(live.spools.values()))
    if renamed:  # a rotation undone: the log's files are counted again
        live.log = ContainerLog(engine.log_path(c))
    if cut or renamed:
        log.info("restore.log_cut_back", id=c.short_id, bytes=cut, rotations_undone=renamed)
    live.log.open_writer(LogOptions.from_log_config(c.host_config.get("LogConfig")))
    live.stopped = trio.Event()
    live.started_clock = trio.current_time()
    from supervisor.runtime.console import Console

    console = Console(console_fd.detach()) if console_fd is not None else None
    out = out_r.stream() if out_r is not None else None
    err = err_r.stream() if err_r is not None else None
    if h.exit is not None:  # it ended while no daemon ran: log what is left, finish it
        close_all(stdin_w)
        engine.holder.exit_known(c.id, h.exit)
        engine.nursery.start_soon(_finish_ended, engine, c, live, out, err, console, h.exit)
        for sock in listeners.values():
            sock.close()
        return False
    try:
        pidfd = HeldPid(h.pid, f"container {c.short_id} init", engine.holder, c.id)
    except Exception:  # noqa: BLE001 - gone between the check and the open
        pidfd = None
    # The last daemon died between `runc create` and reading the init's exec fifo
    # (its record already said running): the init still waits in `runc init`, the
    # command never ran, and no one would ever release it.  It is killed, and its
    # exit goes the way of any exit (the restart policy decides): a start that did
    # not happen, not a container to keep.
    # (the pid checked first: a pid the kernel gave to another process is never killed)
    moved = pidfd is None or start_ticks(h.pid) != h.start
    parked = not moved and never_released(engine.runtime.state_dir, c.id, h.pid)
    if pidfd is None or moved or parked:
        # Else it ended (or the pid moved on) just now: the holder tells its exit next.
        if pidfd is not None:
            if parked:
                log.warning("restore.never_released", id=c.short_id, pid=h.pid)
                pidfd.send_signal(signal.SIGKILL)
            pidfd.close()
        close_all(stdin_w)
        code = await engine.holder.exit_of(c.id)
        engine.nursery.start_soon(_finish_ended, engine, c, live, out, err, console,
                                  255 if code is None else code)
        for sock in listeners.values():
            sock.close()
        return False
    live.pidfd = pidfd
    live.stdin_w = stdin_w
    live.console = console
    engine.networks.adopt(c.id, listeners)
    for hook in engine.hooks:  # health checks, probes (its log's writer is open above)
        hook.running(c, live, restored=True)
    done = trio.Event()
    done.set()  # its `runc start` is long over
    engine.nursery.start_soon(engine._supervise, c, live, pidfd, out, err, done)
    log.info("container.restored", id=c.short_id, name=c.name, pid=h.pid)
    return True


def never_released(state_dir: Path, cid: str, pid: int) -> bool:
    """Whether the init is still runc's, parked on its exec fifo: the fifo is there
    (the release unlinks it), the process is still `runc init` (its name until it
    execs the command: `runc:[2:INIT]`) and it sleeps in the fifo's open, waiting for a
    reader (`wait_for_partner`).  An init the release has read is past that open even
    before it execs, so a kill between the release's read and its unlink is never
    taken for a parked one, however slow the init is to exec."""
    if not (state_dir / cid / EXEC_FIFO).exists():
        return False
    proc = Path(f"/proc/{pid}")
    try:
        if not (proc / "comm").read_text().startswith("runc:["):
            return False
        return (proc / "wchan").read_text().strip() == "wait_for_partner"
    except OSError:
        return False


async def _finish_ended(
    engine: Engine,
    c: Container,
    live: object,
    out: trio.lowlevel.FdStream | None,
    err: trio.lowlevel.FdStream | None,
    console: object,
    code: int,
) -> None:
    """A container whose init ended while no daemon ran: what it wrote is logged, then
    its exit is recorded and its restart policy asked, as for any exit."""
    from supervisor.engine.live import Live
    from supervisor.runtime.console import Console

    assert isinstance(live, Live)
    async with trio.open_nursery() as n:
        if isinstance(console, Console):
            n.start_soon(engine._pump_console, live, console)
        if out is not None:
            n.start_soon(engine._pump, live, out, "stdout")
        if err is not None:
            n.start_soon(engine._pump, live, err, "stderr")
    if isinstance(console, Console):
        console.close()
    with trio.CancelScope(shield=True):
        try:
            await engine._finish(c, live, code)
        except Exception:  # noqa: BLE001 - one container's exit never ends the daemon
            log.exception("container.finish_failed", id=c.short_id, name=c.name)
