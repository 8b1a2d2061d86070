"""Named and anonymous volumes: state kept apart from containers.

A volume is a directory `root/volumes/<name>/_data` plus a row; it outlives every
container that mounts it, so deleting and re-creating a container with the same volume
finds the data still there.  Anonymous volumes (from `-v /path` or an image's VOLUME)
get a 64-hex name and are removed with their container by `rm -v`.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from supervisor.engine import volopts
from supervisor.engine.timefmt import rfc3339_nano
from supervisor.errors import Conflict, InvalidArgument, NotFound
from supervisor.metadata.database import Database
from supervisor.rmtree import discard_tree
from supervisor.stateroot import make_private_dir

SCHEMA = """
CREATE TABLE IF NOT EXISTS volumes (
    name      TEXT PRIMARY KEY,
    created   TEXT NOT NULL,
    labels    TEXT NOT NULL,
    anonymous INTEGER NOT NULL DEFAULT 0
);
-- the local driver's options (type/device/o), for the volumes made with any
CREATE TABLE IF NOT EXISTS volume_options (
    name    TEXT PRIMARY KEY,
    options TEXT NOT NULL
);
"""

_SELECT = (
    "SELECT v.*, o.options FROM volumes v LEFT JOIN volume_options o ON o.name = v.name"
)

log = structlog.get_logger("corral.volumes")

VOLUME_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")


@dataclass
class Volume:
    name: str
    mountpoint: Path
    created: str
    labels: dict[str, str] = field(default_factory=dict)
    anonymous: bool = False
    #: the local driver's `type`/`device`/`o` (volopts): mounted on `_data` while used
    options: dict[str, str] = field(default_factory=dict)

    def to_api(self) -> dict[str, Any]:
        return {
            "Name": self.name,
            "Driver": "local",
            "Mountpoint": str(self.mountpoint),
            "CreatedAt": self.created,
            "Labels": self.labels or None,
            "Scope": "local",
            "Options": self.options or None,
        }


class VolumeStore:
    """Owner of `root/volumes` and the `volumes` table."""

    def __init__(self, root: Path, db: Database) -> None:
        self.dir = root / "volumes"
        self.dir.parent.mkdir(parents=True, exist_ok=True)
        make_private_dir(self.dir)
        self.db = db
        db.ensure_schema(SCHEMA)

    def _row_to_volume(self, row: Any) -> Volume:
        return Volume(
            name=row["name"],
            mountpoint=self.dir / row["name"] / "_data",
            created=row["created"],
            labels=json.loads(row["labels"]),
            anonymous=bool(row["anonymous"]),
            options=json.loads(row["options"] or "{}"),
        )

    def list_all(self) -> list[Volume]:
        rows = self.db.execute(_SELECT + " ORDER BY v.name").fetchall()
        return [self._row_to_volume(r) for r in rows]

    def find(self, name: str) -> Volume | None:
        row = self.db.execute(_SELECT + " WHERE v.name=?", (name,)).fetchone()
        return self._row_to_volume(row) if row else None

    def get(self, name: str) -> Volume:
        v = self.find(name)
        if v is None:
            raise NotFound(f"get {name}: no such volume")
        return v

    def create(
        self,
        name: str = "",
        labels: dict[str, str] | None = None,
        *,
        anonymous: bool = False,
        options: dict[str, str] | None = None,
    ) -> tuple[Volume, bool]:
        """Create (or return the existing) volume; the flag says whether it is new
        (an existing one keeps its options, as moby's volume store)."""
        if not name:
            name = secrets.token_hex(32)
            anonymous = True
        elif not VOLUME_NAME_RE.match(name):
            raise InvalidArgument(
                f'create {name}: "{name}" includes invalid characters for a local volume '
                'name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to '
                "pass a host directory, use absolute path"
            )
        if len(name) > 255:  # the directory's name limit: mkdir would fail with ENAMETOOLONG
            raise InvalidArgument(
                f"create {name[:32]}...: a volume name is at most 255 characters, not {len(name)}"
            )
        existing = self.find(name)
        if existing is not None:
            return existing, False
        options = volopts.check(name, options or {})
        data = self.dir / name / "_data"
        make_private_dir(data.parent)  # _data itself is the mount's root: 0755, as Docker's
        try:
            data.mkdir(exist_ok=True)  # (not fsynced: `remake_lost` makes it again)
            self.db.execute(
                "INSERT INTO volumes (name, created, labels, anonymous) VALUES (?,?,?,?)",
                (name, rfc3339_nano(), json.dumps(labels or {}), int(anonymous)),
            )
            if options:
                self.db.execute(
                    "INSERT OR REPLACE INTO volume_options (name, options) VALUES (?,?)",
                    (name, json.dumps(options)),
                )
        except BaseException:
            discard_tree(self.dir / name)
            raise
        return self.get(name), True

    def discard_dir(self, name: str) -> None:
        """The directory of a volume whose row a failed transaction rolled back (a
        create's, with its container's)."""
        discard_tree(self.dir / name)

    def remake_lost(self, in_use: frozenset[str] = frozenset()) -> None:
        """At start: a volume's directories, made at create but not fsynced, are made
        again if a power cut took them (its content is the user's, as under Docker)."""
        for v in self.list_all():
            if v.options and v.name not in in_use:  # only live-restored users keep one
                volopts.Mounts.clear(v.mountpoint)
            if not v.mountpoint.is_dir():
                log.warning("volume.dir_remade", name=v.name)
                make_private_dir(v.mountpoint.parent)
                v.mountpoint.mkdir(exist_ok=True)

    def remove(
        self, name: str, *, in_use_by: Callable[[str], str | None], force: bool = False
    ) -> None:
        v = self.get(name)
        user = in_use_by(v.name)
        if user is not None:
            raise Conflict(f"remove {name}: volume is in use - [{user}]")
        if v.options:  # never remove what a bind (o=bind) or a filesystem shows there
            volopts.Mounts.clear(v.mountpoint)
        self.db.execute("DELETE FROM volumes WHERE name=?", (v.name,))
        self.db.execute("DELETE FROM volume_options WHERE name=?", (v.name,))
        discard_tree(self.dir / v.name)

    def prune(
        self,
        *,
        in_use_by: Callable[[str], str | None],
        all_volumes: bool,
        keep: Callable[[Volume], bool] | None = None,
    ) -> tuple[list[str], int]:
        """Docker >= 23 prunes only anonymous volumes unless `all` is set; `keep`
        spares what the filters (labels) leave out."""
        removed: list[str] = []
        reclaimed = 0
        for v in self.list_all():
            if in_use_by(v.name) is not None or (not all_volumes and not v.anonymous):
                continue
            if keep is not None and keep(v):
                continue
            reclaimed += _du(v.mountpoint)
            self.remove(v.name, in_use_by=in_use_by)
            removed.append(v.name)
        return removed, reclaimed


def _du(path: Path) -> int:
    """Bytes of regular files under `path`; a loop, not recursion (a container may have
    made the tree thousands of levels deep), and what cannot be read is not counted."""
    total = 0
    stack = [os.fspath(path)]
    while stack:
        try:
            with os.scandir(stack.pop()) as it:
                for entry in it:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                    elif entry.is_file(follow_symlinks=False):
                        total += entry.stat(follow_symlinks=False).st_size
        except OSError:
            pass
    return total
