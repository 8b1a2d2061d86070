"""`docker rmi`'s rules over the image records (Docker's daemon/images/image_delete.go).

By tag: untag; if other tags remain that is all.  A tag that is the image's only one
cannot be removed while a container uses the image unless forced.  By ID: an image with
several tags needs force; a single tag is removed with it.  A registry digest reference
(`repo@sha256:`) goes alone.  `in_use(image_id)` reports the container using an image
(see ImageUser); running containers block even a forced removal.

One deliberate difference: a forced removal of an image a container still uses untags
it but keeps it (dangling) instead of deleting it, because its layer directories are
that container's lowerdirs.  It goes with a later rmi by ID.  With `prune`, parents
left untagged and childless are deleted too.

A `Removal` does the rows (inside the owning store's lock) and collects the files to
remove, which `remove_files` deletes after the lock is released: the rows are the truth,
and a crash between the two leaves only files the start-up sweep takes.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable

from supervisor.errors import Conflict, CorralError
from supervisor.images.imagedb import ImageDB, repo_of
from supervisor.images.layers import LayerStore
from supervisor.images.records import ImageUser, InUse, as_user
from supervisor.images.reference import parse
from supervisor.metadata.database import Database


def short_id(image_id: str) -> str:
    return image_id.removeprefix("sha256:")[:12]


class _Conflict(Conflict):
    """Docker's imageDeleteConflict: `hard` ones cannot be forced; `used` ones are
    about a container (and are not silenced when pruning a dangling image)."""

    def __init__(self, image_id: str, message: str, *, hard: bool, used: bool) -> None:
        how = "cannot be forced" if hard else "must be forced"
        super().__init__(f"conflict: unable to delete {short_id(image_id)} ({how}) - {message}")
        self.hard = hard
        self.used = used


def _is_id_ref(s: str, image_id: str) -> bool:
    """Docker's isImageIDPrefix: was the image named by (a prefix of) its ID?"""
    return image_id.removeprefix("sha256:").startswith(s.removeprefix("sha256:")) or (
        image_id.startswith(s)
    )


class Removal:
    """One rmi (with its pruned parents) over `db`'s connection (see module doc)."""

    def __init__(self, db: Database, records: ImageDB, layers: LayerStore,
                 check: InUse) -> None:
        self.db = db
        self.records = records
        self.layers = layers
        self.check = check
        self.garbage: list[Callable[[], None]] = []

    def remove_files(self) -> None:
        """The files of what the committed rows removed (outside the store's lock)."""
        for remove in self.garbage:
            remove()
        self.garbage.clear()

    def delete(self, s: str, *, force: bool, prune: bool) -> list[dict[str, str]]:
        """The rows part of an rmi of `s`: what Docker reports, Untagged and Deleted."""
        check = self.check
        db = self.records
        image_id = db.lookup(s)
        records: list[dict[str, str]] = []
        tags = db.tags(image_id)
        user = as_user(check(image_id))
        by_id = _is_id_ref(s, image_id)
        removed_ref = False
        if not by_id:
            if not force and len(tags) == 1 and user is not None:
                raise Conflict(
                    f'conflict: unable to remove repository reference "{s}" '
                    f"(must force) - container {short_id(user.container_id)} "
                    f"is using its referenced image {short_id(image_id)}"
                )
            ref = parse(s)
            pulled = f"{ref.repository}@{ref.digest}"
            if ref.digest is not None and pulled in db.repo_digests(image_id):
                # a registry digest reference (Docker's): it alone goes
                self._drop_digests([pulled], records)
                if db.tags(image_id) or db.repo_digests(image_id):
                    return records
                self._delete_helper(image_id, user, records, force, prune, quiet=True)
                return records
            if ref.digest is not None:
                names = [t for t in tags if repo_of(t) == ref.repository]
            else:
                names = [ref.name()]
            self._untag(names, records)
            if not any(repo_of(t) == ref.repository for t in db.tags(image_id)):
                # the repository's last tag: its digest references go too (Docker)
                self._drop_digests(
                    [d for d in db.repo_digests(image_id)
                     if d.partition("@")[0] == ref.repository],
                    records,
                )
            if db.tags(image_id) or db.repo_digests(image_id):
                return records
            removed_ref = True
        elif len(tags) == 1:
            conflict = self._conflict(image_id, user, force=force, refs=False)
            if conflict is not None:
                raise conflict
            self._untag(tags, records)
        self._delete_helper(image_id, user, records, force, prune, quiet=removed_ref)
        return records

    def _drop_digests(
        self, names: list[str], records: list[dict[str, str]]
    ) -> None:
        with self.db.transaction() as conn:
            ImageDB.drop_digests(conn, names)
        records.extend({"Untagged": n} for n in names)

    def _untag(self, names: list[str], records: list[dict[str, str]]) -> None:
        with self.db.transaction() as conn:
            ImageDB.untag(conn, names)
        records.extend({"Untagged": n} for n in names)

    def _conflict(
        self, image_id: str, user: ImageUser | None, *, force: bool, refs: bool
    ) -> _Conflict | None:
        """checkImageDeleteConflict: hard conflicts always, soft ones unless forced."""
        if self.records.has_children(image_id):
            return _Conflict(image_id, "image has dependent child images", hard=True, used=False)
        if user is not None and user.running:
            msg = f"image is being used by running container {short_id(user.container_id)}"
            return _Conflict(image_id, msg, hard=True, used=True)
        if force:
            return None
        if refs and self.records.tags(image_id):
            msg = "image is referenced in multiple repositories"
            return _Conflict(image_id, msg, hard=False, used=False)
        if user is not None:
            msg = f"image is being used by stopped container {short_id(user.container_id)}"
            return _Conflict(image_id, msg, hard=False, used=True)
        return None

    def _delete_helper(
        self,
        image_id: str,
        user: ImageUser | None,
        records: list[dict[str, str]],
        force: bool,
        prune: bool,
        *,
        quiet: bool,
    ) -> None:
        conflict = self._conflict(image_id, user, force=force, refs=True)
        if conflict is not None:
            dangling = not self.records.tags(image_id) and not self.records.has_children(image_id)
            if quiet and (not dangling or conflict.used):
                return
            raise conflict
        self._untag(self.records.tags(image_id), records)
        if user is not None:
            return  # forced, but a container needs its layers: keep it dangling
        row = self.records.row(image_id)
        parent, manifest = row["parent"], row["manifest_digest"]
        with self.db.transaction() as conn:
            ImageDB.remove(conn, image_id)
            gone = self.layers.unreferenced(conn)
        records.append({"Deleted": image_id})
        for digest in (image_id, manifest):
            self.garbage.append(functools.partial(self.layers.content.remove, digest))
        for diffid in gone:
            self.garbage.append(functools.partial(self.layers.remove, diffid))
            records.append({"Deleted": diffid})
        if prune and parent and self.records.exists(parent):
            with contextlib.suppress(CorralError):
                parent_user = as_user(self.check(parent))
                self._delete_helper(parent, parent_user, records, False, True, quiet=True)
