"""The daemon's side of the holder (`runtime/holderd.py`): live restore's keeper.

`Holder.open` connects to the state root's holder, starting one if none listens, and
learns what it keeps (`Held`: containers of an earlier daemon, with duplicates of their
descriptors).  Then:

- `spawn` runs `runc create` in the holder, so the init it forks is the holder's child
  and outlives this daemon;
- `adopt` hands the holder an init (pid + start time) and the descriptors it must keep
  open while no daemon runs: the read ends of the output pipes, a pty master, the
  listening sockets of published ports (not stdin's write end: see engine._start);
- `HeldPid` is the init's pidfd as the supervision task uses it: signals and health
  watches go through the pidfd as before; the exit status comes from the holder, which
  reaped it (the daemon is not the parent);
- `forget` once the exit is recorded; `quit` at a stop without live restore.

Re-adoption is checked twice: the pid the holder reports must match the recorded one,
and `/proc/PID/stat`'s start time (field 22) the recorded start time, so that a pid
the kernel reused for another process is never adopted.
"""

from __future__ import annotations

import array
import contextlib
import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
import trio

from supervisor.errors import CorralError
from supervisor.runtime import holderd
from supervisor.runtime.fds import OwnedFd, close_all
from supervisor.runtime.process import PidFd

log = structlog.get_logger("corral.holder")

SOCKET_NAME = "holder.sock"


start_ticks = holderd.start_ticks


@dataclass
class Held:
    """A container the holder kept for us: its init, exit (if it ended), descriptors."""

    id: str
    pid: int
    start: int
    exit: int | None
    fds: dict[str, OwnedFd] = field(default_factory=dict)

    def take(self, name: str) -> OwnedFd | None:
        return self.fds.pop(name, None)

    def close(self) -> None:
        close_all(*self.fds.values())
        self.fds.clear()


@dataclass
class Handover:
    """What the holder is to keep of the init a spawn's `runc create` makes: the
    container, the file runc writes the init's pid to and the descriptors (borrowed:
    the holder gets copies).  `pid` and `start` are set once the holder adopted it
    with the spawn (0: it did not, an older holder or no pid file: `Holder.adopt`)."""

    cid: str
    pid_file: str
    fds: dict[str, OwnedFd]
    pid: int = 0
    start: int = 0


class HolderLost(CorralError):
    """The holder went away: inits it parented cannot tell us their exit status."""


class Holder:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.path = root / SOCKET_NAME
        self.sock: trio.socket.SocketType | None = None
        self.pid = 0
        self.preserves = False  # the holder takes `preserve` in spawn (hello says so)
        self.adopts = False  # and `adopt` (the init adopted with the spawn's answer)
        self._send_lock = trio.Lock()
        self._tag = 0
        self._replies: dict[int, tuple[trio.Event, list[dict[str, Any]]]] = {}
        self._exits: dict[str, int] = {}
        self._exit_events: dict[str, trio.Event] = {}
        self._held: list[Held] = []
        self.lost = trio.Event()
        self.closing = False  # we leave on purpose: losing the connection is no error
        self._process: trio.Process | None = None

    # ------------------------------------------------------------ connecting
    async def open(self, nursery: trio.Nursery) -> list[Held]:
        """Connect (starting a holder if none listens); what it holds from before."""
        try:
            sock = await self._connect()
        except (FileNotFoundError, ConnectionRefusedError):
            await self._start_holder(nursery)
            sock = await self._connect()
        self.sock = sock
        nursery.start_soon(self._read_forever)
        reply = await self._request({"op": "hello"})
        self.pid = int(reply["pid"])
        # an older holder (kept across a daemon upgrade) takes no preserved fds
        self.preserves = bool(reply.get("preserve"))
        self.adopts = bool(reply.get("adopt"))
        held, self._held = self._held, []
        log.info("holder.connected", pid=self.pid, held=len(held), rss_kb=reply["rss_kb"])
        return held

    async def _connect(self) -> trio.socket.SocketType:
        sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            with holderd.reachable(str(self.path)) as name:
                await sock.connect(name)
        except BaseException:
            sock.close()
            raise
        return sock

    async def _start_holder(self, nursery: trio.Nursery) -> None:
        """A fresh holder in its own session (no terminal signal reaches it); it says
        `ready` on its stdout once it listens.  `-I -S`: stdlib only, a small process."""
        # 0600, as everything under the root (stateroot.py); the child keeps a copy
        logf = OwnedFd.open(self.root / "holder.log",
                            os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC,
                            "holder log", 0o600)
        os.fchmod(logf.fileno(), 0o600)
        try:
            proc = await trio.lowlevel.open_process(
                [sys.executable, "-I", "-S", holderd.__file__, str(self.path)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=logf.fileno(),
                start_new_session=True,
                cwd="/",  # pins no mount: the state root may be one
            )
        finally:
            logf.close()
        assert proc.stdout is not None
        with trio.fail_after(30):
            line = b""
            while not line.endswith(b"\n"):
                chunk = await proc.stdout.receive_some(64)
                if not chunk:
                    raise CorralError(f"the holder did not start (see {self.root}/holder.log)")
                line += chunk
        await proc.stdout.aclose()
        self._process = proc
        nursery.start_soon(proc.wait)  # it is our child until we die: reap it if it ends

    # ------------------------------------------------------------ the wire
    async def _send(self, msg: dict[str, Any], fds: list[int] | None = None) -> None:
        if self.sock is None or self.lost.is_set():
            raise HolderLost("the container holder is gone")
        data = json.dumps(msg).encode()
        anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))] if fds else []
        async with self._send_lock:
            try:
                await self.sock.sendmsg([data], anc)
            except OSError as exc:
                self._lose(str(exc))
                raise HolderLost(f"the container holder is gone: {exc}") from exc

    async def _request(
        self, msg: dict[str, Any], fds: list[int] | None = None,
        meanwhile: Callable[[], None] | None = None,
    ) -> dict[str, Any]:
        """Send `msg` and wait for its answer; `meanwhile` runs once it is sent (its
        error raised after the answer came: what was asked for is not left running)."""
        self._tag += 1
        tag = self._tag
        done = trio.Event()
        slot: list[dict[str, Any]] = []
        self._replies[tag] = (done, slot)
        failed: BaseException | None = None
        try:
            await self._send({**msg, "tag": tag}, fds)
            if meanwhile is not None:
                try:
                    meanwhile()
                except BaseException as exc:  # noqa: BLE001 - raised below
                    failed = exc
            with trio.CancelScope() as scope:
                async with trio.open_nursery() as n:
                    async def lost() -> None:
                        await self.lost.wait()
                        scope.cancel()
                    n.start_soon(lost)
                    await done.wait()
                    n.cancel_scope.cancel()
            if failed is not None:
                raise failed
            if not slot:
                raise HolderLost("the container holder is gone")
        finally:
            self._replies.pop(tag, None)
            del failed  # no cycle through the traceback
        if slot[0]["op"] == "error":
            raise CorralError(f"holder: {slot[0]['error']}")
        return slot[0]

    async def _read_forever(self) -> None:
        assert self.sock is not None
        fd_space = socket.CMSG_SPACE(holderd.MAX_FDS * 4)
        try:
            while True:
                data, anc, _flags, _addr = await self.sock.recvmsg(
                    holderd.MAX_PACKET, fd_space, socket.MSG_CMSG_CLOEXEC
                )
                if not data:
                    break
                fds: list[int] = []
                for level, kind, payload in anc:
                    if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                        arr = array.array("i")
                        arr.frombytes(payload[: len(payload) - len(payload) % arr.itemsize])
                        fds += list(arr)
                self._dispatch(json.loads(data), fds)
        except (OSError, trio.ClosedResourceError) as exc:
            self._lose(str(exc))
            return
        self._lose("connection closed")

    def _dispatch(self, msg: dict[str, Any], fds: list[int]) -> None:
        op = msg["op"]
        if op == "held":
            owned = {n: OwnedFd(fd, f"{n} of held container {msg['id'][:12]}")
                     for n, fd in zip(msg["names"], fds, strict=True)}
            self._held.append(Held(msg["id"], int(msg["pid"]), int(msg["start"]),
                                   msg["exit"], owned))
            return
        for fd in fds:
            os.close(fd)
        if op == "exit":
            self._exits[msg["id"]] = int(msg["code"])
            ev = self._exit_events.pop(msg["id"], None)
            if ev is not None:
                ev.set()
            return
        slot = self._replies.get(msg.get("tag") or 0)
        if slot is not None:
            slot[1].append(msg)
            slot[0].set()

    def _lose(self, why: str) -> None:
        if not self.lost.is_set():
            if not self.closing:
                log.error("holder.lost", pid=self.pid, reason=why)
            self.lost.set()
            for ev in self._exit_events.values():
                ev.set()

    # ------------------------------------------------------------ requests
    async def spawn(
        self, argv: list[str], stdin: int, stdout: int, stderr: int, exe: int | None = None,
        preserve: tuple[int, ...] = (), *, meanwhile: Callable[[], None] | None = None,
        adopt: Handover | None = None, background: bool = False,
    ) -> int:
        """Run argv in the holder with that stdio; its exit code.  Given `exe`, the
        runtime's sealed memfd (runtime/runcbin.py), the holder execs that file;
        `preserve` become the child's fds 3, 4, ... (runc's `--preserve-fds`).

        `meanwhile` runs on this thread once the request is out, while the child runs
        (a start's work that needs no pid: its record's write, its spools).  `adopt`:
        `runc create`'s init adopted by the holder as it exits, as `adopt` would (one
        round trip fewer a start); `adopt.pid` says it was (not by an older holder).
        `background`: at a lower CPU weight (holderd.lower_weight; an older holder
        ignores it)."""
        if preserve and not self.preserves:
            raise CorralError("the container holder is too old to pass descriptors")
        fds = [stdin, stdout, stderr, *([] if exe is None else [exe]), *preserve]
        msg: dict[str, Any] = {"op": "spawn", "argv": argv, "exe": exe is not None,
                               "preserve": len(preserve), "background": background}
        if adopt is not None and self.adopts:
            names = list(adopt.fds)
            msg["adopt"] = {"id": adopt.cid, "pid_file": adopt.pid_file, "names": names}
            fds += [adopt.fds[n].fileno() for n in names]
            self._exits.pop(adopt.cid, None)  # a new run: an earlier run's status is not its own
        reply = await self._request(msg, fds, meanwhile)
        if adopt is not None and reply.get("adopted"):
            adopt.pid, adopt.start = int(reply["pid"]), int(reply["start"])
        return int(reply["code"])

    async def adopt(self, cid: str, pid: int, start: int, fds: dict[str, OwnedFd]) -> None:
        """The holder keeps init `pid` of `cid` and copies of `fds` (ours stay ours)."""
        names = list(fds)
        self._exits.pop(cid, None)  # a new run: an earlier run's status is not its own
        await self._request({"op": "adopt", "id": cid, "pid": pid, "start": start,
                             "names": names}, [fds[n].fileno() for n in names])

    async def keep(self, cid: str, fds: dict[str, int], drop: tuple[str, ...] = ()) -> None:
        """The holder keeps copies of more of `cid`'s fds, and lets go of those named in
        `drop` (a rollout's ports moved from one container to another)."""
        names = list(fds)
        await self._send({"op": "keep", "id": cid, "names": names, "drop": list(drop)},
                         [fds[n] for n in names])

    async def forget(self, cid: str) -> None:
        self._exits.pop(cid, None)
        with contextlib.suppress(HolderLost):
            await self._send({"op": "forget", "id": cid})

    def exit_known(self, cid: str, code: int) -> None:
        """An exit the holder reported before we asked (in `hello`)."""
        self._exits[cid] = code

    async def exit_of(self, cid: str) -> int | None:
        """The init's exit code once the holder reaped it; None if the holder is lost."""
        while cid not in self._exits:
            if self.lost.is_set():
                return None
            ev = self._exit_events.setdefault(cid, trio.Event())
            await ev.wait()
        return self._exits[cid]

    async def stat(self) -> dict[str, Any]:
        return await self._request({"op": "stat"})

    async def quit(self) -> None:
        """A stop without live restore: the holder lets everything go and ends."""
        self.closing = True
        try:
            await self._send({"op": "quit"})
        except HolderLost:
            return
        with trio.move_on_after(10):
            await self.lost.wait()  # its socket is gone before its end closes ours
        if self._process is not None:
            with trio.move_on_after(10):
                await self._process.wait()

    def close(self) -> None:
        """Leave (live restore): the holder keeps everything for the next daemon."""
        self.closing = True
        if self.sock is not None:
            self.sock.close()


class HeldPid(PidFd):
    """A pidfd on an init the holder parents: signals through the pidfd, the exit
    status from the holder (which reaps it)."""

    __slots__ = ("holder", "cid")

    def __init__(self, pid: int, what: str, holder: Holder, cid: str) -> None:
        super().__init__(pid, what)
        self.holder = holder
        self.cid = cid

    async def wait(self) -> int:
        code = await self.holder.exit_of(self.cid)
        if code is None:  # the holder is gone: the init was reparented to pid 1
            await trio.lowlevel.wait_readable(self.fileno())
            code = 255
        self._release()
        return code
