"""Container records and their table in the metadata store.

A `Container` is what `docker inspect` shows, kept as Docker keeps it: the merged
`Config` and the `HostConfig` as the user asked, plus the `State` the engine maintains.
The store writes through to SQLite on every change, so a kill -9 of the daemon loses
nothing that was acknowledged; an in-memory index serves lookups.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from supervisor.errors import Conflict, NotFound
from supervisor.metadata.database import Database
from supervisor.metadata.health import Health

#: Go's zero time, as Docker shows a time never set
ZERO_TIME = "0001-01-01T00:00:00Z"


class Status(enum.StrEnum):
    """A container's status as stored; how it moves is the engine's lifecycle table
    (`engine/state.py`)."""

    CREATED = "created"
    RUNNING = "running"
    PAUSED = "paused"
    RESTARTING = "restarting"
    EXITED = "exited"
    REMOVING = "removing"
    DEAD = "dead"

SCHEMA = """
CREATE TABLE IF NOT EXISTS containers (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    image_id    TEXT NOT NULL,
    created     TEXT NOT NULL,
    record      TEXT NOT NULL
);
"""


@dataclass
class State:
    """Docker's `State` object, snake_cased; `to_api` gives the API's shape."""

    status: Status = Status.CREATED
    pid: int = 0
    exit_code: int = 0
    error: str = ""
    oom_killed: bool = False
    started_at: str = ZERO_TIME
    finished_at: str = ZERO_TIME
    restart_count: int = 0
    user_stopped: bool = False
    health: Health | None = None  # set by supervise/health.py when it has a check

    def to_api(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "Status": self.status.value,
            "Running": self.status in (Status.RUNNING, Status.PAUSED),
            "Paused": self.status is Status.PAUSED,
            "Restarting": self.status is Status.RESTARTING,
            "OOMKilled": self.oom_killed,
            "Dead": self.status is Status.DEAD,
            "Pid": self.pid,
            "ExitCode": self.exit_code,
            "Error": self.error,
            "StartedAt": self.started_at,
            "FinishedAt": self.finished_at,
        }
        if self.health is not None:
            out["Health"] = self.health.to_api()
        return out


@dataclass
class MountPoint:
    """One resolved mount: a volume, a bind or a tmpfs, in Docker's `Mounts` shape."""

    type: str  # volume | bind | tmpfs
    destination: str
    source: str = ""
    name: str = ""
    read_only: bool = False
    options: list[str] = field(default_factory=list)
    anonymous: bool = False
    nocopy: bool = False  # a new volume is not filled from the image (`nocopy`)
    #: a bind's propagation (`-v ...:rshared`, `bind-propagation`); "" is rprivate
    propagation: str = ""
    #: `bind-recursive=disabled` (`BindOptions.NonRecursive`): submounts not bound
    non_recursive: bool = False
    #: `volume-subpath` (`VolumeOptions.Subpath`): a directory of the volume is mounted
    subpath: str = ""
    #: `--mount volume-opt=`/`volume-label=` (VolumeOptions.DriverConfig.Options,
    #: .Labels): the local driver's options and labels of a volume this mount creates
    driver_opts: dict[str, str] = field(default_factory=dict)
    volume_labels: dict[str, str] = field(default_factory=dict)

    def to_api(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "Type": self.type,
            "Source": self.source,
            "Destination": self.destination,
            "Mode": ",".join(self.options)
            if self.type == "tmpfs"
            else ("ro" if self.read_only else ""),
            "RW": not self.read_only,
            "Propagation": (self.propagation or "rprivate") if self.type == "bind" else "",
        }
        if self.type == "volume":
            out["Name"] = self.name
            out["Driver"] = "local"
        return out


@dataclass
class Container:
    id: str
    name: str
    image_id: str
    image: str
    created: str
    path: str
    args: list[str]
    config: dict[str, Any]
    host_config: dict[str, Any]
    mounts: list[MountPoint] = field(default_factory=list)
    state: State = field(default_factory=State)

    @property
    def short_id(self) -> str:
        return self.id[:12]

    def to_json(self) -> str:
        """The record as stored: `dataclasses.asdict`'s shape, built field by field
        (asdict deep-copies every dict and list first; the record is written at every
        state change, a fleet's hundreds of them)."""
        out = {name: getattr(self, name) for name in _CONTAINER_FIELDS}
        out["mounts"] = [{n: getattr(m, n) for n in _MOUNT_FIELDS} for m in self.mounts]
        state = {name: getattr(self.state, name) for name in _STATE_FIELDS}
        if self.state.health is not None:
            state["health"] = asdict(self.state.health)
        out["state"] = state
        return json.dumps(out)

    @classmethod
    def from_json(cls, text: str) -> Container:
        raw = json.loads(text)
        raw["state"]["status"] = Status(raw["state"]["status"])
        if raw["state"].get("health"):
            raw["state"]["health"] = Health.from_dict(raw["state"]["health"])
        raw["state"] = State(**raw["state"])
        raw["mounts"] = [MountPoint(**m) for m in raw["mounts"]]
        return cls(**raw)


_CONTAINER_FIELDS = tuple(f.name for f in fields(Container))
_MOUNT_FIELDS = tuple(f.name for f in fields(MountPoint))
_STATE_FIELDS = tuple(f.name for f in fields(State))


class ContainerStore:
    """Owner of the `containers` table, with name and ID-prefix resolution."""

    def __init__(self, db: Database) -> None:
        self.db = db
        db.ensure_schema(SCHEMA)
        self._by_id: dict[str, Container] = {}
        # `all()`'s order, made again only when a container comes or goes (`created`
        # never changes): a listing, a scrape and each start ask for it.
        self._sorted: list[Container] | None = None
        self._revisions: dict[str, int] = {}  # saves per container (`revision`)
        for row in db.execute("SELECT record FROM containers"):
            c = Container.from_json(row["record"])
            self._by_id[c.id] = c

    def all(self) -> list[Container]:
        """Every container, newest first (a new list: the caller's to change)."""
        if self._sorted is None:
            self._sorted = sorted(self._by_id.values(), key=lambda c: c.created, reverse=True)
        return list(self._sorted)

    def values(self) -> Iterable[Container]:
        """Every container in no particular order (a view: not to be kept across an
        await), for a search that needs no order."""
        return self._by_id.values()

    def names(self) -> set[str]:
        return {c.name for c in self._by_id.values()}

    def check_name_free(self, name: str) -> None:
        other = next((x for x in self._by_id.values() if x.name == name), None)
        if other is not None:
            raise Conflict(
                f'Conflict. The container name "/{name}" is already in use by container '
                f'"{other.id}". You have to remove (or rename) that container to be able '
                "to reuse that name."
            )

    def add(self, c: Container) -> None:
        self.check_name_free(c.name)
        self.db.execute(
            "INSERT INTO containers (id, name, image_id, created, record) VALUES (?,?,?,?,?)",
            (c.id, c.name, c.image_id, c.created, c.to_json()),
        )
        self._by_id[c.id] = c
        self._sorted = None

    def save(self, c: Container, *, durable: bool = True, may_fail: bool = False) -> None:
        """Write the record through; called after every state change.  Never fails for
        a full disk (an exit must be recorded): the database holds it until there is
        room, and lookups are served from memory meanwhile.

        `durable=False` (the steps of a policy restart) commits without the WAL's
        fsync: the write survives a daemon crash, only a power cut can take it back,
        and after one the container is not running whatever the record says (the
        next durable write, an exit for good or a user's verb, covers it).
        `may_fail`: a full disk raises `DiskFull` instead (`Database.write_now`)."""
        write = self.db.write_now if may_fail else self.db.persist
        write(
            f"container:{c.id}",
            "UPDATE containers SET name=?, record=? WHERE id=?",
            (c.name, c.to_json(), c.id),
            durable=durable,
        )
        self._revisions[c.id] = self._revisions.get(c.id, 0) + 1

    def revision(self, cid: str) -> int:
        """How many times `cid`'s record was saved by this process: a caller that
        wrote it ahead tells whether anyone wrote it since (a start's record)."""
        return self._revisions.get(cid, 0)

    def forget(self, cid: str) -> None:
        """Out of the in-memory index only: an `add` whose transaction rolled back."""
        self._by_id.pop(cid, None)
        self._sorted = None

    def delete(self, c: Container, *, durable: bool = True) -> None:
        """The row goes (later, if the disk is full: a pending save of it is replaced).
        `durable=False`: without the WAL's fsync, for a caller that awaits
        `Database.synced` before it answers."""
        self.db.persist(f"container:{c.id}", "DELETE FROM containers WHERE id=?", (c.id,),
                        durable=durable)
        self._by_id.pop(c.id, None)
        self._revisions.pop(c.id, None)
        self._sorted = None

    def get(self, ref: str) -> Container:
        """Resolve as Docker does: full ID, exact name, then unique ID prefix."""
        ref = ref.lstrip("/")
        if ref in self._by_id:
            return self._by_id[ref]
        for c in self._by_id.values():
            if c.name == ref:
                return c
        if ref:
            matches = [c for c in self._by_id.values() if c.id.startswith(ref)]
            if len(matches) == 1:
                return matches[0]
            if len(matches) > 1:
                raise NotFound(f"multiple IDs found with provided prefix: {ref}")
        raise NotFound(f"No such container: {ref}")

    def using_image(self, image_id: str) -> Container | None:
        return next((c for c in self._by_id.values() if c.image_id == image_id), None)

    def using_volume(self, name: str) -> Container | None:
        for c in self._by_id.values():
            if any(m.type == "volume" and m.name == name for m in c.mounts):
                return c
        return None

    def bundle_dir(self, root: Path, c: Container) -> Path:
        return root / "containers" / c.id
