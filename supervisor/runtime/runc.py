"""The OCI runtime driver: the one place that invokes `runc` (or `crun`, same CLI).

Every container is run *detached*: `runc create` forks the container init (parked on
its exec fifo) and exits, `start` releases it (reading the fifo here, as `runc start`
would).  No runc process stays behind; the daemon adopts the init as child subreaper
(see `process.py`) and waits on a pidfd.

Stdio is pass-through (no terminal, no console socket): runc hands its own fds 0/1/2
to the container init, so the caller passes pipe ends as runc's stdio and closes its
own copies of the write ends afterwards.  A side effect worth knowing: when create
fails, runc also prints its error line on that stderr fd, so the caller should discard
what the pipes hold after a failed create.  We read the clean error from runc's JSON
log file (`--log`) instead.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import os
import resource
import signal
import subprocess
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import trio

from supervisor.errors import (
    CannotExecute,
    CommandNotFound,
    Conflict,
    CorralError,
    DiskFull,
    NotFound,
)
from supervisor.rmtree import discard_tree
from supervisor.runtime import cgroups, commandpath, seccompexec
from supervisor.runtime.fds import OwnedFd
from supervisor.runtime.holder import Handover
from supervisor.runtime.process import PidFd, has_exited
from supervisor.runtime.runcbin import SealedBinary
from supervisor.runtime.seccompexec import Filters
from supervisor.runtime.spec import ProcessSpec, process_config

DEFAULT_STATE_DIR = Path("/run/corral/runc")
#: the fifo a created init waits on, in runc's state directory of the container
EXEC_FIFO = "exec.fifo"

#: RLIMIT_NOFILE assumed when the host reports "unlimited" (exec of a ProcessSpec).
_DEFAULT_HOST_NOFILE = 1048576


def _error_lines(text: str) -> list[str]:
    """`msg` of every error-level record in runc's JSON log output, in order."""
    msgs: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            record = json.loads(line)
        except ValueError:
            msgs.append(line)  # a plain `fmt.Fprintln(os.Stderr, err)` line
            continue
        if isinstance(record, dict) and record.get("level") in ("error", "fatal"):
            msgs.append(str(record.get("msg", "")))
    return [m for m in msgs if m]


def runc_error_message(text: str) -> str:
    """The most useful one-line error from runc's log/stderr output."""
    msgs = _error_lines(text)
    return msgs[-1] if msgs else text.strip() or "runc failed"


@dataclass(frozen=True)
class RuntimeVersion:
    """What `runc --version` (or crun's) says: `runc version 1.1.5`, `commit: ...`."""

    name: str
    version: str
    commit: str


def parse_version(text: str) -> RuntimeVersion | None:
    """The first line's `<name> version <v>` and the `commit:` line; None if neither."""
    lines = text.splitlines()
    first = lines[0].split() if lines else []
    name, version = (first[0], first[2]) if len(first) >= 3 and first[1] == "version" else ("", "")
    commit = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("commit:")), "")
    if not version and not commit:
        return None
    return RuntimeVersion(name, version, commit)


def classify_error(message: str) -> CorralError:
    """Map runc's failure to Docker's start errors (exit codes 127 / 126)."""
    low = message.lower()
    is_exec = 'exec: "' in low or "executable file" in low or "open executable" in low
    if "executable file not found" in low or (
        "executable file `" in low and "not found" in low  # crun
    ):
        return CommandNotFound(message)
    if is_exec and "no such file or directory" in low:
        return CommandNotFound(message)
    if is_exec and ("permission denied" in low or "is a directory" in low):
        return CannotExecute(message)
    return CorralError(message)


_LOW_SPACE = 1 << 20


def _name_full_disk(error: CorralError, *dirs: Path) -> CorralError:
    """runc cannot always say it ran out of space (`unable to store init state:
    %!w(<nil>)`): a plain failure while its state or bundle directory has almost no
    room left says so, as a full disk's error does (`DiskFull`)."""
    if type(error) is not CorralError or "no space left on device" in error.message.lower():
        return error
    for d in dirs:
        try:
            st = os.statvfs(d)
        except OSError:
            continue
        if st.f_bavail * st.f_frsize < _LOW_SPACE:
            return DiskFull(f"{error.message}: {d}: no space left on device")
    return error


def _is_missing(message: str) -> bool:
    """runc: "container does not exist"; crun: "...status`: No such file or directory"."""
    low = message.lower()
    return "does not exist" in low or "no such file or directory" in low


@contextlib.contextmanager
def _stdin_fd(stdin: int | None) -> Iterator[int]:
    """Never let a container inherit the daemon's stdin: None means /dev/null (ours,
    closed on leaving); a number given is the caller's, borrowed."""
    if stdin is not None:
        yield stdin
        return
    with OwnedFd.devnull() as devnull:
        yield devnull.fileno()


def _memfd(what: str, data: bytes = b"") -> OwnedFd:
    """An anonymous file holding `data`, for runc to read as /dev/fd/N."""
    fd = OwnedFd(os.memfd_create(what), what)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd.fileno(), view) :]
    except BaseException:
        fd.close()
        raise
    return fd


async def _release(fifo: OwnedFd, init: OwnedFd) -> bool:
    """libcontainer's `exec()`: reading `exec.fifo` (opened O_NONBLOCK) lets the
    parked `runc init` open it for writing; the init writes one byte and execs (its
    end is close-on-exec), so the byte then EOF means the command runs.  False: the
    init exited without writing it.

    `runc create` returns before the init opens its end, so an EOF before any byte
    may only mean "no writer yet": the fifo is not reported readable until a writer
    has opened it (Linux keeps EPOLLHUP back on a reader that has seen none), and
    the init's pidfd says if it died meanwhile (runc's own `start` stats the pid
    every 100 ms for the same reason).
    """
    data = b""
    fifo_ready = False  # the fifo was reported readable before the last read
    while True:
        chunk = _read_some(fifo)  # None: the init has its end open, no byte yet
        if chunk:
            data += chunk
            continue
        if data:
            if chunk == b"":
                return True  # the byte, then EOF: exec'd (or already exited after it)
            await trio.lowlevel.wait_readable(fifo.fileno())
            continue
        if has_exited(init):
            return bool(_read_some(fifo))  # a byte it wrote before exiting (`true`)
        if fifo_ready and chunk == b"":
            await trio.lowlevel.wait_readable(init.fileno())  # gone without its byte
            continue
        fifo_ready = await _first_readable(fifo, init) is fifo


def _read_some(fd: OwnedFd) -> bytes | None:
    try:
        return os.read(fd.fileno(), 64)
    except BlockingIOError:
        return None


async def _first_readable(*fds: OwnedFd) -> OwnedFd:
    """Wait until one of `fds` is readable; which one (the first seen)."""
    found: list[OwnedFd] = []
    async with trio.open_nursery() as nursery:

        async def wait(fd: OwnedFd) -> None:
            await trio.lowlevel.wait_readable(fd.fileno())
            found.append(fd)
            nursery.cancel_scope.cancel()

        for fd in fds:
            nursery.start_soon(wait, fd)
    return found[0]


def check_command(pid: int, process: dict[str, Any], prefix: str) -> None:
    """runc's check of an OCI process's command, in the root of process `pid`, made
    where runc checks the seccomp helper instead (runtime/commandpath.py); raises
    what runc would, worded as its `prefix` says ("runc create failed: ", "exec
    failed: ").  Blocking."""
    user = process.get("user") or {}
    args = process.get("args") or [""]
    try:
        found = commandpath.problem(
            pid, args[0], process.get("env") or [], process.get("cwd") or "/",
            user.get("uid", 0), [user.get("gid", 0), *user.get("additionalGids", [])])
    except OSError:  # its root: the process is gone (a crash loop's exit, a kill)
        raise CorralError("cannot exec in a stopped container") from None
    if found is not None:
        raise classify_error(f"{prefix}unable to start container process: {found}")


def _process_dict(process: ProcessSpec | dict[str, Any]) -> dict[str, Any]:
    if isinstance(process, ProcessSpec):
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        if hard == resource.RLIM_INFINITY:
            hard = _DEFAULT_HOST_NOFILE
        return process_config(process, hard)
    return process


def _clear_pid_temp(pid_file: Path) -> None:
    """runc writes `pid_file` as `.NAME` (O_EXCL, synced) renamed into place: a full
    disk failing that write leaves `.NAME` behind, as does a power cut before the
    rename reached the journal, and every later `runc create` of that container then
    failed with "file exists" (test_diskfull_ops' start at every boundary, whenever a
    step fell on that write).  Nothing but a runc of ours that ended writes it."""
    with contextlib.suppress(FileNotFoundError):
        (pid_file.parent / f".{pid_file.name}").unlink()


class Spawner(Protocol):
    """`Holder.spawn`'s shape, the runtime's way to run `runc create` elsewhere."""

    def __call__(
        self, argv: list[str], stdin: int, stdout: int, stderr: int, exe: int | None = None,
        preserve: tuple[int, ...] = (), *, meanwhile: Callable[[], None] | None = None,
        adopt: Handover | None = None, background: bool = False,
    ) -> Awaitable[int]: ...


class Runtime:
    """A runc binary plus its state root (`runc --root`)."""

    def __init__(self, binary: str = "runc", state_dir: Path = DEFAULT_STATE_DIR) -> None:
        self.binary = binary
        self.state_dir = state_dir
        #: the binary as a sealed memfd, exec'd from (runtime/runcbin.py)
        self.sealed = SealedBinary(binary)
        #: who runs `runc create` (`Holder.spawn`: argv, stdin, stdout, stderr, the
        #: sealed binary's fd or None, fds for `--preserve-fds`, what to do meanwhile,
        #: what to keep of the init -> exit code): the holder (runtime/holder.py), so
        #: the init is its child and outlives the daemon; None: this process.
        self.spawner: Spawner | None = None
        #: the compiled seccomp filters (runtime/seccompexec.py); None: runc's own path
        self.filters: Filters | None = None
        self._fifo_start: bool | None = None  # runc's exec fifo protocol (`start`)

    def _argv(self, *args: str) -> list[str]:
        return [self.binary, "--root", str(self.state_dir), "--log-format", "json", *args]

    async def _run(self, *args: str) -> str:
        """Run a short runc command; stdout on success, CorralError on failure."""
        result = await trio.run_process(
            self._argv(*args),
            stdin=subprocess.DEVNULL,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            **self.sealed.popen_args(),
        )
        if result.returncode != 0:
            raise CorralError(runc_error_message(result.stderr.decode(errors="replace")))
        return result.stdout.decode(errors="replace")

    async def version(self) -> RuntimeVersion | None:
        """The runtime's version, or None if it does not run or says nothing we read."""
        try:
            with trio.fail_after(10):
                result = await trio.run_process(
                    [self.binary, "--version"],
                    stdin=subprocess.DEVNULL,
                    capture_stdout=True,
                    capture_stderr=True,
                    check=False,
                )
        except (OSError, trio.TooSlowError):
            return None
        if result.returncode != 0:
            return None
        return parse_version(result.stdout.decode(errors="replace"))

    async def create(
        self,
        id: str,
        bundle: Path,
        *,
        stdin: int | None,
        stdout: int,
        stderr: int,
        pid_file: Path,
        console_socket: str | None = None,
        helper: OwnedFd | None = None,
        meanwhile: Callable[[], None] | None = None,
        adopt: Handover | None = None,
        background: bool = False,
    ) -> int:
        """`runc create`; returns the container init's pid (parked until `start`).

        `helper`: the bundle's command is the seccomp helper, this its sealed memfd
        (runtime/seccompexec.py), the init's fd 3.  `meanwhile`: work of this thread
        done while runc runs (before it, without a spawner; its error raised once runc
        has ended, the half-made container deleted).  `adopt`: the spawner's holder
        keeps the init with these descriptors as runc exits (`adopt.pid` set: it did).
        `background` (a policy restart): runc at a lower CPU weight than the daemon and
        its clients, where the spawner can (runtime/holderd.lower_weight).

        `stdin`/`stdout`/`stderr` become the container's stdio; close your copies of
        the write ends after this returns so readers see EOF when the container exits.
        Raises CommandNotFound / CannotExecute for a missing / non-executable command,
        Conflict if runc already has `id`; any other failure (or cancellation) deletes
        the half-created container before raising.
        """
        self.state_dir.mkdir(parents=True, exist_ok=True)
        log = bundle / "runc-create.log"
        log.write_bytes(b"")
        _clear_pid_temp(pid_file)
        with _stdin_fd(stdin) as in_fd:
            result = await self._create_process(
                id, bundle, log, pid_file, in_fd, stdout, stderr, console_socket, helper,
                meanwhile, adopt, background,
            )
        if result.returncode != 0:
            message = runc_error_message(log.read_text(errors="replace"))
            if "already exists" in message:
                raise Conflict(message)  # someone else's container: leave it alone
            # A half-created container keeps its state dir (and maybe cgroup); drop it.
            await self.delete(id, force=True)
            raise _name_full_disk(classify_error(message), self.state_dir, bundle)
        return int(pid_file.read_text().strip())

    async def _create_process(
        self,
        id: str,
        bundle: Path,
        log: Path,
        pid_file: Path,
        stdin: int,
        stdout: int,
        stderr: int,
        console_socket: str | None = None,
        helper: OwnedFd | None = None,
        meanwhile: Callable[[], None] | None = None,
        adopt: Handover | None = None,
        background: bool = False,
    ) -> subprocess.CompletedProcess[bytes]:
        # A terminal (process.terminal) is handed to whoever listens on the socket.
        console = ["--console-socket", console_socket] if console_socket else []
        preserve = () if helper is None else (helper.fileno(),)
        argv = [
            self.binary,
            "--root",
            str(self.state_dir),
            "--log",
            str(log),
            "--log-format",
            "json",
            "create",
            "--bundle",
            str(bundle),
            "--pid-file",
            str(pid_file),
            *console,
            *(["--preserve-fds", str(len(preserve))] if preserve else []),
            id,
        ]
        try:
            if self.spawner is not None:
                code = await self.spawner(
                    argv, stdin, stdout, stderr, self.sealed.exe(), preserve,
                    meanwhile=meanwhile, adopt=adopt, background=background)
                return subprocess.CompletedProcess(argv, code)
            if meanwhile is not None:
                meanwhile()
            if preserve:
                code = await self._spawn_wait(argv, [stdin, stdout, stderr, *preserve])
                return subprocess.CompletedProcess(argv, code)
            return await trio.run_process(
                argv, stdin=stdin, stdout=stdout, stderr=stderr, check=False,
                **self.sealed.popen_args(),
            )
        except BaseException:
            # Cancelled mid-create (trio kills runc): don't leave a half-made container.
            with trio.CancelScope(shield=True):
                await self.delete(id, force=True)
            raise

    async def start(self, id: str, *, init: OwnedFd | None = None, hop: bool = False) -> None:
        """Release the parked init: it execs the container's command now.

        `hop`: open the exec fifo in a worker thread.  The open wakes the init, which
        on a busy host takes the waker's CPU at once and runs until it blocks or
        exits (a crash-looping `sh -c 'exit 1'`: its whole run), ~1 ms of the trio
        thread per policy restart (a trio Instrument's step times); a user's start
        keeps the open inline (a hop is ~0.1 ms of its latency).

        Given `init`, a pidfd on the created init, this does what `runc start` does
        for a created container without a second runc process (a Go binary's start:
        20-40 ms of every container start on the 2-CPU VM, see `_release`).  Without
        it, or for another runtime (crun's fifo runs the other way), or with no fifo
        (not created: running, stopped, unknown), `runc start` itself, for its own
        error.
        """
        fifo = self.state_dir / id / EXEC_FIFO
        if init is None or not await self._runc_fifo():
            await self._run("start", id)
            return
        open_fifo = functools.partial(OwnedFd.open, fifo, os.O_RDONLY | os.O_NONBLOCK,
                                      f"exec fifo of {id}")  # fmt: skip
        # A copy of the pidfd, taken before the open: another task waits on the init's
        # own, and the open releases the init (it was parked opening the fifo for
        # writing): in the worker thread's time it may run, exit and be reaped by
        # that task, its pidfd closed (a crash loop's `exit 1`).
        with init.dup(f"init pidfd of {id} (start)") as watched:
            try:
                fd = await trio.to_thread.run_sync(open_fifo) if hop else open_fifo()
            except FileNotFoundError:
                await self._run("start", id)
                return
            with fd:
                released = await _release(fd, watched)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(fifo)  # how runc tells "created" from "running" from now on
        if not released:
            raise CorralError("cannot start a container that has stopped")

    async def _runc_fifo(self) -> bool:
        """Whether the runtime is runc (its init writes the exec fifo): asked once."""
        if self._fifo_start is None:
            found = await self.version()
            self._fifo_start = found is not None and found.name == "runc"
        return self._fifo_start

    async def kill(self, id: str, signal: int | str, all: bool = False) -> None:
        """Signal init (or, with `all`, every process in the container)."""
        args = ["kill"]
        if all:
            args.append("--all")
        await self._run(*args, id, str(signal))

    async def pause(self, id: str) -> None:
        await self._run("pause", id)

    async def update(self, id: str, resources: dict[str, Any]) -> None:
        """`runc update`: apply OCI `linux.resources` to a live container's cgroup.

        runc writes v1 or v2 files as the host has them (memory before or after
        memsw as the kernel needs); a field left out or 0 keeps its current value.
        """
        result = await trio.run_process(
            self._argv("update", "--resources", "-", id),
            stdin=json.dumps(resources).encode(),
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            **self.sealed.popen_args(),
        )
        if result.returncode != 0:
            raise CorralError(runc_error_message(result.stderr.decode(errors="replace")))

    async def resume(self, id: str) -> None:
        await self._run("resume", id)

    async def delete(self, id: str, force: bool = False) -> None:
        """Remove runc's state (and cgroup); a container runc doesn't know is fine."""
        args = ["delete", "--force", id] if force else ["delete", id]
        try:
            await self._run(*args)
        except CorralError as exc:
            if not _is_missing(exc.message):
                raise

    async def delete_exited(
        self, id: str, cgroups_path: str, *, own_pid_namespace: bool
    ) -> None:
        """`runc delete --force` of a container whose init has exited (its status is in
        hand), without a runc process where none is needed.

        With its own PID namespace nothing of the container outlives its init (the
        kernel kills and reaps the namespace's other processes before the init's exit
        is reported), so what runc's delete of a stopped container does is what is
        left to do: rmdir its cgroups and remove its state directory (no poststop
        hooks: corral's specs have none; `discard_exited`).  With a shared PID
        namespace (`--pid host`, `container:`), or a cgroup that will not go, runc's
        delete, which kills what is left in the cgroup first; the cgroups are then
        removed again.
        """
        # rmdir and unlink in a worker thread: an exiting fleet must leave the event
        # loop free for the API.
        if own_pid_namespace and await trio.to_thread.run_sync(
                self.discard_exited, id, cgroups_path):
            return
        await self.delete(id, force=True)
        await trio.to_thread.run_sync(cgroups.cleanup, cgroups_path)

    def discard_exited(self, id: str, cgroups_path: str) -> bool:
        """Blocking: an exited container's cgroups and runc state directory removed, as
        runc's delete of a stopped one with its own PID namespace; False if either is
        left (then `runc delete`, by `delete_exited`)."""
        return not cgroups.cleanup(cgroups_path) and discard_tree(self.state_dir / id)

    async def state(self, id: str) -> dict[str, Any] | None:
        """runc's state record (`status`, `pid`, ...), or None if runc doesn't know id."""
        try:
            out = await self._run("state", id)
        except CorralError as exc:
            if _is_missing(exc.message):
                return None
            raise
        state: dict[str, Any] = json.loads(out)
        return state

    def sweep_unlisted(self, keep: frozenset[str], listed: list[str]) -> list[str]:
        """Remove state directories runc did not list (a power cut left their
        state.json empty or torn: `runc list` skips what it cannot load, and `create`
        of that id then fails with "already exists"), except those in `keep`."""
        if not self.state_dir.exists():
            return []
        gone = [e.name for e in os.scandir(self.state_dir)
                if e.is_dir(follow_symlinks=False) and e.name not in keep
                and e.name not in listed]  # fmt: skip
        for name in gone:
            discard_tree(self.state_dir / name)
        return gone

    async def list_ids(self) -> list[str]:
        if not self.state_dir.exists():
            return []
        out = await self._run("list", "--format", "json")
        records = json.loads(out) if out.strip() else None
        return [str(r["id"]) for r in records or []]

    async def exec_detached(
        self,
        id: str,
        process: ProcessSpec | dict[str, Any],
        *,
        bundle: Path,
        init_pid: int,
        stdin: int | None,
        stdout: int,
        stderr: int,
        pid_file: Path,
        console_socket: str | None = None,
    ) -> int:
        """`runc exec --detach`: returns the exec'd pid once it runs, like `create`.

        The process is reparented to the (subreaper) daemon; wait on it with a
        `process.PidFd`.  Start failures raise CommandNotFound / CannotExecute.  A
        container whose filter is the seccomp helper's (its `bundle` has the marker)
        gets the helper in front of the command too, or no exec at all; runc's check
        of the command is then made here, in the root of `init_pid`
        (runtime/commandpath.py).
        """
        oci = _process_dict(process)
        helper: OwnedFd | None = None
        marker = seccompexec.read_marker(bundle)
        if marker is not None:
            wrapped = seccompexec.wrap_process(oci, marker.guard)
            if wrapped is None or self.filters is None:
                raise CorralError(
                    "this exec cannot run under its container's seccomp filter "
                    "(no_new_privileges off, or capabilities of its own)")
            await trio.to_thread.run_sync(
                check_command, init_pid, oci, "exec failed: ")
            helper = await self.filters.for_exec(marker)
            oci = wrapped
        with (
            _memfd("corral-exec-process", json.dumps(oci).encode()) as spec,
            _memfd("corral-exec-log") as log,
            _stdin_fd(stdin) as in_fd,
        ):
            argv = [
                self.binary,
                "--root",
                str(self.state_dir),
                "--log",
                f"/dev/fd/{log.fileno()}",
                "--log-format",
                "json",
                "exec",
                "--detach",
                "--pid-file",
                str(pid_file),
                "--process",
                f"/dev/fd/{spec.fileno()}",
                *(["--console-socket", console_socket] if console_socket else []),
                *(["--preserve-fds", "1"] if helper is not None else []),
                id,
            ]
            if helper is not None:
                # the helper must be runc's fd 3; spec and log follow it, named anew
                argv[argv.index(f"/dev/fd/{log.fileno()}")] = "/dev/fd/5"
                argv[argv.index(f"/dev/fd/{spec.fileno()}")] = "/dev/fd/4"
                code = await self._spawn_wait(
                    argv, [in_fd, stdout, stderr, helper.fileno(), spec.fileno(),
                           log.fileno()])
            else:
                sealed = self.sealed.popen_args()
                code = (await trio.run_process(
                    argv,
                    stdin=in_fd,
                    stdout=stdout,
                    stderr=stderr,
                    executable=sealed.get("executable"),
                    pass_fds=(spec.fileno(), log.fileno(), *sealed.get("pass_fds", ())),
                    check=False,
                )).returncode
            if code != 0:
                os.lseek(log.fileno(), 0, os.SEEK_SET)
                chunks = []
                while chunk := os.read(log.fileno(), 65536):
                    chunks.append(chunk)
                text = b"".join(chunks).decode(errors="replace")
                message = runc_error_message(text)
                error = classify_error(message)
                if type(error) is CorralError and _is_missing(message):
                    raise NotFound(message)
                raise error
            return int(pid_file.read_text().strip())

    async def _spawn_wait(self, argv: list[str], fds: list[int]) -> int:
        """Run runc (argv) with `fds[i]` as its descriptor i: the stdio, then what
        `--preserve-fds` passes on from 3; its exit code.  subprocess keeps a
        descriptor's number, posix_spawn's dup2 sets it.  Cancelled, runc is killed
        and reaped before this returns."""
        exe = self.sealed.exe()
        high: list[int] = []
        try:
            # every source above every target first: a dup2 onto a number another
            # source (or the sealed binary) still has would lose that one
            high = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 64)
                    for fd in [*fds, *([] if exe is None else [exe])]]
            actions = [(os.POSIX_SPAWN_DUP2, fd, i) for i, fd in enumerate(high[:len(fds)])]
            if exe is not None:
                pid = os.posix_spawn(f"/proc/self/fd/{high[-1]}", argv, dict(os.environ),
                                     file_actions=actions)
            else:
                pid = os.posix_spawnp(argv[0], argv, dict(os.environ), file_actions=actions)
        finally:
            for fd in high:
                os.close(fd)
        with PidFd(pid, "runc") as proc:
            try:
                return await proc.wait()
            except BaseException:
                proc.send_signal(signal.SIGKILL)
                with trio.CancelScope(shield=True):
                    await proc.wait()
                raise
