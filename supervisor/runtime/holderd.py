"""The holder: the one process that keeps containers alive while the daemon is away.

Live restore needs someone other than the daemon to be each container init's parent
and to keep its stdio read ends (and its published ports' listening sockets) open, so
that a daemon that crashes, is killed -9 or restarts for an upgrade ends no container,
and a container writing meanwhile blocks on a full pipe instead of getting EPIPE.
This program is that someone, one per state root, for every container (a conmon per
container costs Podman ~2 MB each; here a container costs one table entry and its
descriptors).  It is deliberately small and passive, and imports only the standard
library so that it is cheap to keep (no trio, no structlog):

- it is a child subreaper, and the daemon asks it to run `runc create`
  (`spawn`): the init runc forks is then reparented to the holder, not the daemon;
- it keeps the descriptors the daemon hands it for a container (`adopt`, SCM_RIGHTS)
  and never reads them; a new daemon gets duplicates back (`hello`);
- it reaps its children and keeps each init's exit status until a daemon has
  recorded it (`forget`), telling the connected daemon at once (`exit`);
- it does nothing per idle second: it sleeps in one `select` on the daemon's socket,
  its listening socket and a signal wake-up pipe (SIGCHLD);
- it runs SCHED_BATCH (`batch()`), and what it spawns runs as the daemon did: a
  request wakes it without taking the CPU from the daemon's event loop (a woken normal
  task preempts the waker; a crash-looping fleet sends several requests per restart),
  and runc and the containers get the scheduling policy they had before.

Wire: a SOCK_SEQPACKET Unix socket (`holder.sock` under the state root, 0600), one
JSON object per packet, descriptors as SCM_RIGHTS of that packet.  One daemon is
connected at a time; a new connection replaces the old (the old daemon is gone).

The holder ends on `quit` (a daemon stopping its containers for good), when it
holds nothing and no daemon is connected (a daemon that died before it handed over
anything), or when its state root is removed (inotify on the socket's directory: its
socket unlinked or moved, or the directory itself); it signals nothing then.  At a
removal it runs `corral daemon --cleanup` once (a child: this process stays stdlib
only), so the bridges of a root deleted after its daemon was killed go at once
(supervisor/network/orphans.py) rather than at the next daemon start on the host.
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import ctypes.util
import fcntl
import json
import os
import select
import signal
import socket
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

PR_SET_CHILD_SUBREAPER = 36
# inotify(7): the state root's removal (its socket unlinked or moved, or the root)
IN_MOVED_FROM, IN_DELETE, IN_DELETE_SELF, IN_MOVE_SELF = 0x40, 0x200, 0x400, 0x800
IN_NONBLOCK, IN_CLOEXEC = os.O_NONBLOCK, os.O_CLOEXEC
#: SCM_RIGHTS carries at most 253 descriptors a packet (the kernel's SCM_MAX_FD).
MAX_FDS = 253
MAX_PACKET = 65536
#: Exit statuses of children nobody adopted (yet): an init may exit before its
#: `adopt` arrives.  Bounded: runc's own intermediate processes land here too.
UNCLAIMED_LIMIT = 4096
#: sockaddr_un's sun_path: 108 bytes with the terminating NUL (unix(7)).
SUN_PATH_MAX = 108
#: The autogroup nice of a `background` spawn's session (a policy restart's `runc
#: create`): its CPU weight against every other session is 335 instead of 1024.
BACKGROUND_NICE = 5


@contextlib.contextmanager
def reachable(path: str) -> Iterator[str]:
    """A name under which `bind`/`connect` reach the Unix socket `path`, however long.

    A state root deeper than sun_path allows (pytest's default basetemp is close)
    would make bind fail with `AF_UNIX path too long`.  Such a path is reached through
    an O_PATH descriptor of its directory, `/proc/self/fd/N/holder.sock`, which the
    kernel resolves as any path (so the socket is still the one in the root); the
    descriptor is closed when the block ends.  Short paths are used as they are."""
    if len(os.fsencode(path)) < SUN_PATH_MAX:
        yield path
        return
    fd = os.open(os.path.dirname(path) or ".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        yield f"/proc/self/fd/{fd}/{os.path.basename(path)}"
    finally:
        os.close(fd)


def close_fds(fds: list[int]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)


def exit_code(status: int) -> int:
    """Docker's convention: the exit status, or 128 + the signal that killed it."""
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


@dataclass
class Held:
    """One container the holder keeps: its init and descriptors, and its exit once known."""

    pid: int
    start: int  # /proc/PID/stat field 22 (start time in clock ticks since boot)
    fds: dict[str, int] = field(default_factory=dict)
    exit: int | None = None

    def close(self) -> None:
        close_fds(list(self.fds.values()))
        self.fds.clear()


class Holder:
    def __init__(self, path: str) -> None:
        self.path = path
        self.held: dict[str, Held] = {}
        self.spawns: dict[int, int] = {}  # runc create pid -> request tag
        # runc create pid -> its spawn's `adopt` and the descriptors to keep
        self.adopting: dict[int, tuple[dict[str, Any], list[int]]] = {}
        # `runc create`s a daemon started and did not see end (it died): their state
        # appears when they end, so a new daemon's `hello` is answered only then.
        self.stale_spawns: set[int] = set()
        self.pending_hello: dict[str, Any] | None = None
        self.unclaimed: collections.OrderedDict[int, int] = collections.OrderedDict()
        self.conn: socket.socket | None = None
        self.quit = False
        self.served = False  # a daemon connected once (the idle end waits for one)
        self.root_gone = False  # the state root was removed (the end then cleans up)
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        old = os.umask(0o177)
        try:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            with reachable(path) as name:
                self.listener.bind(name)
        finally:
            os.umask(old)
        os.chmod(path, 0o600)
        st = os.stat(path)
        self.socket_id = (st.st_dev, st.st_ino)
        self.listener.listen(8)
        self.wake_r, self.wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(self.wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        for s in (signal.SIGINT, signal.SIGHUP, signal.SIGPIPE):
            signal.signal(s, signal.SIG_IGN)
        self.watch = watch_root(os.path.dirname(path) or ".")

    def close(self) -> None:
        if self.watch >= 0:
            os.close(self.watch)

    # ------------------------------------------------------------ the loop
    def run(self) -> None:
        self.reap()
        while not self.quit:
            watched = [self.listener.fileno(), self.wake_r]
            if self.watch >= 0:
                watched.append(self.watch)
            if self.conn is not None:
                watched.append(self.conn.fileno())
            try:
                ready, _, _ = select.select(watched, [], [])
            except InterruptedError:
                continue
            if self.wake_r in ready:
                try:
                    while os.read(self.wake_r, 256):
                        pass
                except BlockingIOError:
                    pass
                self.reap()
            if self.watch in ready:  # something in the root was removed: checked below
                with contextlib.suppress(BlockingIOError):
                    while os.read(self.watch, 4096):
                        pass
                if not self.socket_present():
                    self.root_gone = True
                    break  # the root went away, with a daemon or none: see `run`
            if self.listener.fileno() in ready:
                conn, _ = self.listener.accept()
                if self.conn is not None:
                    self.conn.close()  # a new daemon: the old one is gone
                self.stale_spawns.update(self.spawns)  # their answers had no one to go to
                self.spawns.clear()
                self.pending_hello = None
                self.conn = conn
                self.served = True
            if self.conn is not None and self.conn.fileno() in ready:
                self.receive(self.conn)
            if (self.conn is None and self.served and not self.held and not self.spawns
                    and not self.stale_spawns):
                break  # nothing to keep and nobody to keep it for (any more)
            if self.conn is None and not self.socket_present():
                self.root_gone = True
                break  # the root went away (removed): no daemon can ever ask again
        # Ending: what it holds is let go, nothing is signalled.  If the root went away,
        # its containers run on, orphans of pid 1 with no logs to write (their output
        # pipes close with us); a daemon on a new root knows nothing of them and a
        # daemon on this path again finds no socket and starts a new holder.
        self.close()
        self.listener.close()
        if self.root_gone:
            remove_orphan_bridges()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    def socket_present(self) -> bool:
        try:
            st = os.stat(self.path)
        except OSError:
            return False
        return (st.st_dev, st.st_ino) == self.socket_id

    def send(self, msg: dict[str, Any], fds: list[int] | None = None) -> None:
        if self.conn is None:
            return
        try:
            socket.send_fds(self.conn, [json.dumps(msg).encode()], fds or [])
        except OSError:
            self.conn.close()
            self.conn = None

    def receive(self, conn: socket.socket) -> None:
        try:
            data, fds, _flags, _addr = socket.recv_fds(conn, MAX_PACKET, MAX_FDS,
                                                       socket.MSG_CMSG_CLOEXEC)
        except OSError:
            data, fds = b"", []
        if not data:
            for fd in fds:
                os.close(fd)
            conn.close()
            if self.conn is conn:
                self.conn = None
            return
        msg: Any = None
        try:
            msg = json.loads(data)
            handler = getattr(self, "op_" + str(msg["op"]))
        except Exception as exc:  # noqa: BLE001 - a bad request never ends the holder
            close_fds(fds)
            self.send({"op": "error", "tag": None, "error": repr(exc)})
            return
        try:
            handler(msg, fds)  # it owns fds now: kept or closed, even when it fails
        except Exception as exc:  # noqa: BLE001 - a bad request never ends the holder
            self.send({"op": "error", "tag": msg.get("tag"), "error": repr(exc)})

    # ----------------------------------------------------------- requests
    def op_spawn(self, msg: dict[str, Any], fds: list[int]) -> None:
        """Run `runc create` (argv) with fds as its stdio; answer `spawned` at its exit.
        After the stdio, runc's sealed memfd if `exe` (exec'd as /proc/self/fd/N,
        resolved before close-on-exec closes N: runc then skips its own protective
        copy), then `preserve` descriptors that become runc's 3, 4, ... (its
        `--preserve-fds`).  An older daemon's request has no `exe`: a fourth fd is it.

        `adopt` ({id, pid_file, names}; the named descriptors come last, the child
        gets none of them): once runc exits 0 the init it wrote to `pid_file` is
        adopted as `op_adopt` would, and `spawned` says its pid and start time, so a
        start needs no second round trip (`adopted`: 1 in the answer).
        `background` (a policy restart's): runc runs in a session of its own at a lower
        CPU weight (`lower_weight`)."""
        high: list[int] = []
        adopt = msg.get("adopt")
        kept: list[int] = []
        if adopt is not None:
            count = len(adopt["names"])
            if count > len(fds):
                close_fds(fds)
                raise ValueError("names and descriptors differ in number")
            fds, kept = fds[: len(fds) - count], fds[len(fds) - count :]
        try:
            preserve = int(msg.get("preserve", 0))
            exe = bool(msg.get("exe", len(fds) > 3))
            if len(fds) != 3 + exe + preserve:
                close_fds(kept)
                raise ValueError("descriptors and request differ in number")
            # every source above every target first: a dup2 onto a number another
            # source still has would lose that one
            high = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 64) for fd in fds]
            targets = [0, 1, 2, *([None] if exe else []), *range(3, 3 + preserve)]
            actions = [(os.POSIX_SPAWN_DUP2, fd, t) for fd, t in zip(high, targets, strict=True)
                       if t is not None]
            background = bool(msg.get("background"))
            kw: dict[str, Any] = {"file_actions": actions, "setsid": background}
            if _SPAWN_SCHED is not None:  # (None is refused: the key is left out)
                kw["scheduler"] = _SPAWN_SCHED
            if exe:
                pid = os.posix_spawn(f"/proc/self/fd/{high[3]}", msg["argv"], dict(os.environ),
                                     **kw)  # fmt: skip
            else:
                pid = os.posix_spawnp(msg["argv"][0], msg["argv"], dict(os.environ), **kw)
        except BaseException:
            close_fds(kept)
            raise
        finally:
            close_fds(fds)
            close_fds(high)
        if background:
            lower_weight(pid)
        self.spawns[pid] = msg["tag"]
        if adopt is not None:
            self.adopting[pid] = (adopt, kept)
        self.reap()  # it may have exited already

    def op_adopt(self, msg: dict[str, Any], fds: list[int]) -> None:
        """Keep container `id`: init `pid` (started at `start`) and the named fds."""
        if len(msg["names"]) != len(fds):
            close_fds(fds)
            raise ValueError("names and descriptors differ in number")
        h = self.keep_init(msg["id"], int(msg["pid"]), int(msg["start"]),
                           dict(zip(msg["names"], fds, strict=True)))
        self.send({"op": "adopted", "tag": msg.get("tag"), "id": msg["id"]})
        self.tell_unclaimed(msg["id"], h)

    def keep_init(self, cid: str, pid: int, start: int, fds: dict[str, int]) -> Held:
        """`cid`'s init is `pid` now, with `fds` (an earlier entry of it let go)."""
        old = self.held.pop(cid, None)
        if old is not None:
            old.close()
        h = self.held[cid] = Held(pid=pid, start=start, fds=fds)
        return h

    def tell_unclaimed(self, cid: str, h: Held) -> None:
        """An init that ended before it was adopted: its exit, kept meanwhile."""
        code = self.unclaimed.pop(h.pid, None)
        if code is not None:
            h.exit = code
            self.send({"op": "exit", "id": cid, "code": code})

    def adopt_spawned(self, pid: int, code: int) -> tuple[str, Held] | None:
        """The `adopt` of spawn `pid` (runc create) that exited with `code`: the
        init runc made, adopted; None if there is none (or no pid file to name it:
        the daemon then reads it and adopts the init itself)."""
        adopt, kept = self.adopting.pop(pid)
        try:
            with open(adopt["pid_file"]) as f:
                init = int(f.read().strip()) if code == 0 else 0
        except (OSError, ValueError):
            init = 0
        if init <= 0:
            close_fds(kept)
            return None
        cid = str(adopt["id"])
        return cid, self.keep_init(cid, init, start_ticks(init),
                                   dict(zip(adopt["names"], kept, strict=True)))

    def op_keep(self, msg: dict[str, Any], fds: list[int]) -> None:
        """More descriptors for a held container (the listeners of its ports), and
        fewer: those named in `drop` are closed (a rollout moved them elsewhere)."""
        h = self.held.get(msg["id"])
        if h is None or len(msg["names"]) != len(fds):
            close_fds(fds)
            return
        for name in msg.get("drop", []):
            if name in h.fds:
                os.close(h.fds.pop(name))
        for name, fd in zip(msg["names"], fds, strict=True):
            if name in h.fds:
                os.close(h.fds[name])
            h.fds[name] = fd

    def op_forget(self, msg: dict[str, Any], fds: list[int]) -> None:
        """The daemon recorded this container's exit (or removed it): let it go."""
        h = self.held.pop(msg["id"], None)
        if h is not None:
            h.close()

    def op_hello(self, msg: dict[str, Any], fds: list[int]) -> None:
        """A (new) daemon: every held container, one packet each, with copies of its fds.

        Not before the `runc create`s of the daemon before it have ended: one still
        running would make its container's runc state after the new daemon cleaned
        the last run's, and that container's next `runc create` (a crash loop's
        restart at boot) fail with `container with given ID already exists`."""
        if self.stale_spawns:
            self.pending_hello = msg  # answered by `reap` once they have ended
            return
        for cid, h in list(self.held.items()):
            names = list(h.fds)
            self.send({"op": "held", "id": cid, "pid": h.pid, "start": h.start,
                       "exit": h.exit, "names": names}, [h.fds[n] for n in names])
        # preserve: `spawn` takes descriptors for runc's --preserve-fds; adopt: and
        # adopts the init it makes
        self.send({"op": "hello", "tag": msg.get("tag"), "pid": os.getpid(),
                   "rss_kb": rss_kb(), "preserve": 1, "adopt": 1})

    def op_stat(self, msg: dict[str, Any], fds: list[int]) -> None:
        self.send({"op": "stat", "tag": msg.get("tag"), "pid": os.getpid(),
                   "rss_kb": rss_kb(), "held": len(self.held),
                   "fds": sum(len(h.fds) for h in self.held.values())})

    def op_quit(self, msg: dict[str, Any], fds: list[int]) -> None:
        for h in self.held.values():
            h.close()
        self.held.clear()
        self.quit = True

    # ------------------------------------------------------------- reaping
    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            code = exit_code(status)
            if pid in self.stale_spawns:
                self.stale_spawns.discard(pid)
                if pid in self.adopting:  # no daemon asked for it any more
                    close_fds(self.adopting.pop(pid)[1])
                if not self.stale_spawns and self.pending_hello is not None:
                    msg, self.pending_hello = self.pending_hello, None
                    self.op_hello(msg, [])
                continue
            tag = self.spawns.pop(pid, None)
            if tag is not None:
                adopted = self.adopt_spawned(pid, code) if pid in self.adopting else None
                extra = {} if adopted is None else {
                    "adopted": 1, "pid": adopted[1].pid, "start": adopted[1].start}
                self.send({"op": "spawned", "tag": tag, "code": code, **extra})
                if adopted is not None:
                    self.tell_unclaimed(*adopted)
                continue
            for cid, h in self.held.items():
                if h.pid == pid and h.exit is None:
                    h.exit = code
                    self.send({"op": "exit", "id": cid, "code": code})
                    break
            else:
                self.unclaimed[pid] = code
                while len(self.unclaimed) > UNCLAIMED_LIMIT:
                    self.unclaimed.popitem(last=False)


def watch_root(root: str) -> int:
    """An inotify descriptor that wakes the loop when the socket's directory loses an
    entry or itself goes (-1 if inotify is unavailable: the check then runs at the
    next wake-up only)."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    fd = int(libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC))
    if fd < 0:
        return -1
    mask = IN_DELETE | IN_MOVED_FROM | IN_DELETE_SELF | IN_MOVE_SELF
    if libc.inotify_add_watch(fd, os.fsencode(root), mask) < 0:
        os.close(fd)
        return -1
    return fd


def start_ticks(pid: int) -> int:
    """`/proc/PID/stat` field 22: when the process started (clock ticks since boot);
    0 if there is no such process."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return 0
    # Fields after the command (which may hold spaces and parentheses): state is 3.
    return int(stat[stat.rindex(")") + 2 :].split()[19])


def rss_kb() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


CLEANUP_TIMEOUT = 30.0


def remove_orphan_bridges() -> None:
    """`corral daemon --cleanup`, the same Python without -I -S (it needs pyroute2): the
    bridges naming a root that is gone, this one's among them, are removed."""
    import subprocess

    with contextlib.suppress(OSError, subprocess.SubprocessError):
        subprocess.run(
            [sys.executable, "-m", "supervisor.daemon", "--cleanup", "--config", ""],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            cwd="/", timeout=CLEANUP_TIMEOUT, check=False,
        )  # fmt: skip


# The policy the holder started with (the daemon's), for what it spawns: `batch()`.
_SPAWN_SCHED: tuple[int, os.sched_param] | None = None


def batch() -> None:
    """SCHED_BATCH for the holder itself, when it runs SCHED_OTHER (an admin's other
    choice, idle or real-time, is left as it is): a batch task woken by a request
    does not preempt the daemon that sent it, it runs once that CPU is free or at the
    next tick.  What it spawns gets SCHED_OTHER back (posix_spawn's `scheduler`)."""
    global _SPAWN_SCHED
    with contextlib.suppress(OSError, AttributeError):
        if os.sched_getscheduler(0) == os.SCHED_OTHER:
            os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
            _SPAWN_SCHED = (os.SCHED_OTHER, os.sched_param(0))


def lower_weight(pid: int) -> None:
    """A spawn in a session of its own gets a lower CPU weight: its autogroup's nice.

    Where the scheduler groups tasks by session (sched_autogroup, for processes in
    the root CPU cgroup, as a daemon started from a shell), every session weighs the
    same whatever its tasks' nice, so the `runc create`s of a crash-looping fleet
    (~30 ms of CPU each) took as much of a busy host as the daemon's event loop and
    its API clients together: a listing waited on the run queue.  Only runc's own
    process is in that group: the init it forks joins the container's CPU cgroup,
    which autogroups do not apply to, and no task's own nice changes, so the
    container runs as any other.  Without autogroups (no such file, or a service's
    cgroup) nothing changes."""
    with contextlib.suppress(OSError), open(f"/proc/{pid}/autogroup", "w") as f:
        f.write(str(BACKGROUND_NICE))


def main(argv: list[str]) -> int:
    path = argv[1]
    batch()
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        print("holder: prctl(PR_SET_CHILD_SUBREAPER) failed", file=sys.stderr)
        return 1
    holder = Holder(path)
    # Ready: the daemon that started us waits for this line (no polling for the socket).
    os.write(1, b"ready\n")
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 1)
    os.close(devnull)
    holder.run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
