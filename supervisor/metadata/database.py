"""The metadata store: one embedded SQLite database (WAL) under the state root.

Every component that keeps records (images, containers, volumes) keeps them here, in
its own tables, created by that component with `CREATE TABLE IF NOT EXISTS` through
`Database.ensure_schema`.  One connection, owned by the daemon, used from the trio
thread only: statements are short, so they run inline rather than in worker threads.
The file is made 0600 before SQLite opens it (its -wal and -shm take the database's
mode): rows hold containers' environments, secrets included.

Durability.  WAL with `synchronous=FULL`: every commit fsyncs the WAL, so what the
API acknowledged (a create, a tag, a volume, an exit code) survives a power cut, not
only a kill -9 of the daemon.  `NORMAL` would lose the last commits on power loss
(never corrupt), and a record that came back from before its last commit could show
a removed container or an untagged image again.  The price is one WAL fsync per
committing write on the trio thread (measured 1.5 ms a commit on the development
VM's virtio disk, against 0.05 ms with NORMAL); the event history, a write per event
that Docker keeps only in memory, commits with `NORMAL` (`durable=False`), and so do
live restore's init records (`metadata/inits.InitStore`: no init outlives a power cut);
a user's start, an API create and a removal commit with `NORMAL` and await `synced`
before they answer (durable when acknowledged: one WAL fsync in a worker thread,
shared by every write in flight).

A full disk is an error for the operation that needs the space, never for the
daemon.  A statement that fails for want of space raises `DiskFull` (a 500 naming
"no space left on device", as Docker answers).  But a record's latest state (a
container's exit, its removal, an event) is written with `persist`, which cannot
fail that way: it first gives back `reserve`, a file of RESERVE_BYTES kept
allocated beside the database for this moment (the ballast some databases keep),
and retries; if the disk is still full, the write is kept in memory, latest per
key, and retried at the next write that succeeds and by `keep_pending` with a
backoff (no event tells that space was freed).  Readers are served from memory
meanwhile (the container store's index), so `ps` and `inspect` show the exit at
once.  The reserve is made again once there is room for it twice over.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import stat
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import structlog
import trio

from supervisor.errors import CorralError, DiskFull
from supervisor.metadata import migrations

log = structlog.get_logger("corral.metadata")

#: What `reserve` holds back: many times a record write, the WAL's growth included.
RESERVE_BYTES = 8 * 1024 * 1024
#: Bound on writes kept in memory while the disk is full (events beyond it are lost).
PENDING_LIMIT = 10_000
#: Retry delays (seconds) of the pending writes while the disk stays full.
RETRY_FIRST, RETRY_MAX = 1.0, 30.0

Params = tuple[object, ...] | dict[str, object]


def is_disk_full(exc: BaseException) -> bool:
    """SQLite's SQLITE_FULL, or ENOSPC/EDQUOT from the kernel."""
    if isinstance(exc, sqlite3.OperationalError):
        code = getattr(exc, "sqlite_errorcode", None)
        return code == sqlite3.SQLITE_FULL or "database or disk is full" in str(exc)
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


def _make_private(path: Path, *, create: bool) -> None:
    """Make `path` 0600 (`create`: make it if missing) without ever closing a readable
    or writable fd of it.  SQLite's locks on the database and its -shm are POSIX locks,
    which the kernel drops when the process closes *any* fd of the file: a second
    `Database` on the same file (the image store's connection) must not take away the
    first one's locks, or another process opening the database (a user's `sqlite3`, a
    backup) would take itself for the only connection, rebuild the -shm under the
    daemon's mapping (SIGBUS) and, at its close, checkpoint and delete the WAL the
    daemon still writes to.  A file just made with O_EXCL is nobody's yet; an existing
    one is reached by an O_PATH fd, whose close drops no lock."""
    if create:
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW
            os.close(os.open(path, flags, 0o600))
            return
        except FileExistsError:
            pass
    try:
        fd = os.open(path, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise CorralError(f"{path}: not a regular file (the metadata store refuses it)")
        if stat.S_IMODE(mode) != 0o600:
            os.chmod(f"/proc/self/fd/{fd}", 0o600)  # the file this fd is, never a link's target
    finally:
        os.close(fd)


class Reserve:
    """`size` bytes kept allocated at `path`, given back when a critical write needs room."""

    def __init__(self, path: Path, size: int) -> None:
        self.path = path
        self.size = size
        self.present = False  # known to be allocated (by us, or found at start)

    def release(self) -> bool:
        """Free the reserve; True if there was one to free."""
        self.present = False
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            return False
        log.warning("metadata.reserve_released", path=str(self.path), bytes=self.size)
        return True

    def ensure(self) -> None:
        """Allocate the reserve if it is missing and the disk has room for it twice over."""
        if self.present or self.size <= 0:
            return
        if self.path.exists() and self.path.stat().st_blocks * 512 >= self.size:
            self.present = True
            return
        try:
            st = os.statvfs(self.path.parent)
            if st.f_bavail * st.f_frsize < 2 * self.size:
                return
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                os.posix_fallocate(fd, 0, self.size)
            finally:
                os.close(fd)
            self.present = True
        except OSError as exc:
            log.warning("metadata.reserve_failed", path=str(self.path), error=str(exc))
            with suppress(OSError):
                os.unlink(self.path)


class Database:
    """A thin owner of the daemon's single SQLite connection."""

    def __init__(self, path: Path, *, reserve_bytes: int = RESERVE_BYTES) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.reserve = Reserve(path.with_name("reserve"), reserve_bytes)
        self._pending: dict[str, tuple[str, Params, bool]] = {}
        self._wake: trio.Event | None = None
        #: table changes no store's own write call announces (a rolled-back
        #: transaction, a held write landing late): views cached by what they read
        #: compare it (`NetworkStore.revision_of`)
        self.late_changes = 0
        self._wal_fd: int | None = None  # `sync_wal`'s, opened once (see `_make_private`)
        # group commit (`synced`): calls counted, calls a finished sync covers, the
        # sync in flight
        self._sync_wanted = 0
        self._sync_covered = 0
        self._sync_done: trio.Event | None = None
        for name in (path.name, f"{path.name}-wal", f"{path.name}-shm"):
            _make_private(path.with_name(name), create=name == path.name)
        try:
            self.conn = self._open()
        except sqlite3.OperationalError as exc:
            # Opening makes the -wal and -shm: on a full disk, give the reserve back.
            if not (is_disk_full(exc) and self.reserve.release()):
                raise
            self.conn = self._open()
        self.migrate(migrations.MIGRATIONS)
        self.reserve.ensure()

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except BaseException:
            conn.close()
            raise
        return conn

    @property
    def version(self) -> int:
        """The schema version (`PRAGMA user_version`; 0: before numbered migrations)."""
        return int(self.conn.execute("PRAGMA user_version").fetchone()[0])

    def migrate(self, steps: tuple[tuple[int, str, str], ...]) -> None:
        """Bring the schema to the newest step, each step with its version bump in
        one transaction; a database newer than the steps is refused."""
        latest = steps[-1][0] if steps else 0
        current = self.version
        if current > latest:
            raise CorralError(
                f"{self.path}: schema version {current} is newer than this corral "
                f"knows ({latest}); run the corral that made it"
            )
        for number, why, sql in steps:
            if number <= current:
                continue
            try:
                self.conn.execute("BEGIN IMMEDIATE")
                for statement in sql.split(";"):
                    if statement.strip():
                        self.conn.execute(statement)
                self.conn.execute(f"PRAGMA user_version = {int(number)}")
                self.conn.execute("COMMIT")
            except BaseException:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                raise
            log.info("metadata.migrated", path=str(self.path), version=number, why=why)

    def ensure_schema(self, ddl: str) -> None:
        """Run a component's `CREATE TABLE IF NOT EXISTS ...` script."""
        self.conn.executescript(ddl)

    @contextmanager
    def transaction(self, *, durable: bool = True) -> Iterator[sqlite3.Connection]:
        """All-or-nothing: a failure inside leaves no row behind.

        `durable=False` commits without the WAL's fsync: for a caller that awaits
        `synced()` before it answers (one fsync then covers every commit made
        meanwhile, off the trio thread)."""
        if not durable:
            self.conn.execute("PRAGMA synchronous=NORMAL")
        try:
            with self._transaction() as conn:
                yield conn
        finally:
            if not durable:
                self.conn.execute("PRAGMA synchronous=FULL")

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        try:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                self.late_changes += 1
                self.conn.execute("ROLLBACK")
                raise
            else:
                self.conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            if self.conn.in_transaction:
                self.late_changes += 1
                self.conn.execute("ROLLBACK")
            self._raise_full(exc)
            raise
        self._flush_pending()

    def execute(self, sql: str, params: Params = ()) -> sqlite3.Cursor:
        """One statement; a failure for want of space is `DiskFull`."""
        try:
            cur = self.conn.execute(sql, params)
        except sqlite3.OperationalError as exc:
            self._raise_full(exc)
            raise
        if self._pending and not self.conn.in_transaction:
            self._flush_pending()  # a statement went through: maybe the held ones do too
        return cur

    def _raise_full(self, exc: sqlite3.OperationalError) -> None:
        if is_disk_full(exc):
            raise DiskFull(f"write {self.path}: no space left on device") from exc

    def write_now(self, key: str, sql: str, params: Params = (), *,
                  durable: bool = True) -> None:  # fmt: skip
        """`persist`'s write, but one that may fail: on a full disk `DiskFull`, the
        reserve kept for the writes that cannot fail left alone (a start's record
        written ahead: the start fails, as it would have without it)."""
        try:
            self._run(sql, params, durable)
        except sqlite3.OperationalError as exc:
            self._raise_full(exc)
            raise
        self._pending.pop(key, None)  # superseded

    # ------------------------------------------------- writes that cannot fail
    def persist(self, key: str, sql: str, params: Params = (), *, durable: bool = True) -> bool:
        """Write a record's latest state (`key` names the record); on a full disk keep
        it in memory and retry later, latest per key.  True if it is in the database.

        `durable=False` commits without the WAL fsync (a write whose loss at a power
        cut costs nothing the user was promised: an event of the history).
        """
        self._pending.pop(key, None)
        try:
            self._run(sql, params, durable)
        except sqlite3.OperationalError as exc:
            if not is_disk_full(exc):
                raise
            if self.reserve.release():
                try:
                    self._run(sql, params, durable)
                except sqlite3.OperationalError as again:
                    if not is_disk_full(again):
                        raise
                else:
                    return True
            self._defer(key, sql, params, durable)
            return False
        self._flush_pending()  # that one went through: maybe the held ones do too
        return True

    def _run(self, sql: str, params: Params, durable: bool) -> None:
        if durable:
            self.conn.execute(sql, params)
            return
        self.conn.execute("PRAGMA synchronous=NORMAL")
        try:
            self.conn.execute(sql, params)
        finally:
            self.conn.execute("PRAGMA synchronous=FULL")

    def sync_wal(self) -> None:
        """Make every commit so far durable: the WAL's fdatasync, the one a FULL
        commit makes itself.  Blocking, for a worker thread: a write committed with
        `durable=False` whose durability the caller awaits while it does other work
        (a start's record, synced while runc's init is released)."""
        if self._wal_fd is None:
            try:  # kept open until `close`: closing it would drop this process's locks
                self._wal_fd = os.open(f"{self.path}-wal", os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                return  # no WAL (never in WAL mode with the connection open): nothing to sync
        os.fdatasync(self._wal_fd)

    async def synced(self) -> None:
        """Return once every commit made before this call is durable: group commit.

        The WAL's fdatasync runs in a worker thread (`sync_wal`), one at a time, and
        covers every commit made before it began; callers arriving while one runs
        wait for it and, if it began before their call, for the next, which one of
        them runs for all.  A fleet's creates, starts and removals, each committed
        without its fsync (`durable=False`), so share a few fsyncs instead of one
        each on the trio thread; each still answers only once its write is durable.
        An OSError of the sync is raised to the caller that ran it; the others try
        again themselves."""
        self._sync_wanted += 1
        ticket = self._sync_wanted
        while self._sync_covered < ticket:
            if self._sync_done is not None:
                await self._sync_done.wait()  # one in flight: it may cover this call
                continue
            done = self._sync_done = trio.Event()
            upto = self._sync_wanted
            try:
                await trio.to_thread.run_sync(self.sync_wal)  # not abandoned on cancel
            finally:
                self._sync_done = None
                done.set()
            self._sync_covered = max(self._sync_covered, upto)

    def _defer(self, key: str, sql: str, params: Params, durable: bool) -> None:
        if not self._pending:
            log.warning("metadata.disk_full", path=str(self.path), deferred=key)
        if len(self._pending) >= PENDING_LIMIT:
            dropped = next((k for k in self._pending if k.startswith("event:")), None)
            if dropped is None:
                dropped = next(iter(self._pending))
            del self._pending[dropped]
            log.error("metadata.pending_dropped", key=dropped)
        self._pending[key] = (sql, params, durable)
        if self._wake is not None:
            self._wake.set()

    def supersede(self, key: str) -> None:
        """A write of record `key` follows outside `persist`: drop any held one."""
        self._pending.pop(key, None)

    @property
    def pending(self) -> int:
        """How many writes wait for space."""
        return len(self._pending)

    def _flush_pending(self) -> bool:
        """Write what waits, in order; stop at the first still without space."""
        while self._pending:
            key, (sql, params, durable) = next(iter(self._pending.items()))
            try:
                self._run(sql, params, durable)
            except sqlite3.OperationalError as exc:
                if is_disk_full(exc):
                    return False
                log.error("metadata.pending_failed", key=key, error=str(exc))
            self.late_changes += 1
            del self._pending[key]
            if not self._pending:
                log.info("metadata.pending_written", path=str(self.path))
        self.reserve.ensure()
        return True

    async def keep_pending(self) -> None:
        """Retry held writes while the disk is full: woken when one is held, then with
        a growing delay until all are written.  Runs in the daemon's nursery."""
        while True:
            self._wake = trio.Event()
            if not self._pending:
                await self._wake.wait()
            delay = RETRY_FIRST
            while True:
                await trio.sleep(delay)
                if self._flush_pending():
                    break
                delay = min(delay * 2, RETRY_MAX)

    def close(self) -> None:
        if not self._flush_pending():
            log.error("metadata.pending_lost", writes=len(self._pending))
        self.conn.close()
        if self._wal_fd is not None:  # after the connection: no lock of it is left to drop
            os.close(self._wal_fd)
            self._wal_fd = None
