"""The content store: blobs by digest in an OCI image layout, and ingests into it.

    images/               oci-layout, index.json, blobs/sha256/<hex>

A blob is immutable and named by its sha256, so a blob that exists is the right one:
writers never overwrite, readers never lock.  New content arrives through an
`Ingest` (containerd's word): bytes are hashed and counted as they are written into
scratch, the expected digest and size are held to them (a registry's lie is refused at
the first byte too many), and `commit` fsyncs the file and renames it into place, so a
blob is either whole under its name or absent.  Which blobs are kept is decided by the
image records (`ImageStore` sweeps the rest at start-up); this module knows no rows.

Everything here is blocking file work: callers on the trio thread go through
`trio.to_thread` (see `ImageStore` and distribution/pull.py).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import structlog

from supervisor import durable
from supervisor.errors import DigestMismatch as DigestMismatch  # re-exported: its old home
from supervisor.images import oci
from supervisor.rmtree import remove_tree

log = structlog.get_logger("corral.images")


class Ingest:
    """One blob being written: hashed and counted while it streams, committed under
    its digest only if it matches (`expected`, when known) and is whole."""

    def __init__(self, content: ContentStore, *, expected: str | None = None,
                 size: int | None = None) -> None:
        self.content = content
        self.expected = expected
        self.size = size
        fd, name = tempfile.mkstemp(dir=content.tmp, prefix="ingest-")
        self.path = Path(name)
        self._f = os.fdopen(fd, "wb")
        self._h = hashlib.sha256()
        self.written = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += len(data)
        if self.size is not None and self.written > self.size:
            raise DigestMismatch(
                f"blob {self.expected}: more than the expected {self.size} bytes"
            )
        self._h.update(data)
        self._f.write(data)

    @property
    def digest(self) -> str:
        return "sha256:" + self._h.hexdigest()

    def commit(self) -> str:
        """Verify, fsync and rename into place; the blob's digest.  An existing blob of
        the same digest is kept (it is the same content) and the scratch removed."""
        self._f.close()
        try:
            digest = self.digest
            if self.size is not None and self.written != self.size:
                raise DigestMismatch(
                    f"blob {self.expected}: short read, {self.written} of {self.size} bytes"
                )
            if self.expected is not None and digest != self.expected:
                raise DigestMismatch(f"blob verification failed for digest {self.expected}")
            self.content.commit_file(self.path, digest)
        except BaseException:
            self.path.unlink(missing_ok=True)
            raise
        return digest

    def abort(self) -> None:
        with contextlib.suppress(OSError):
            self._f.close()
        self.path.unlink(missing_ok=True)


class ContentStore:
    """Blobs under `layout/blobs/sha256`, scratch in `tmp` (same filesystem)."""

    def __init__(self, layout: Path, tmp: Path) -> None:
        self.layout = layout
        self.blobs = layout / "blobs" / "sha256"
        self.tmp = tmp
        for d in (self.blobs, tmp):
            d.mkdir(parents=True, exist_ok=True)
        layout_file = layout / "oci-layout"
        if not layout_file.exists():
            self.write_atomic(layout_file, json.dumps({"imageLayoutVersion": "1.0.0"}).encode())

    def write_atomic(self, path: Path, data: bytes) -> None:
        durable.write_atomic(path, data, tmp_dir=self.tmp)  # data on disk before the name

    def path(self, digest: str) -> Path:
        return self.blobs / oci.hex_of(digest)

    def has(self, digest: str) -> bool:
        return self.path(digest).exists()

    def size(self, digest: str) -> int:
        return self.path(digest).stat().st_size

    def ingest(self, *, expected: str | None = None, size: int | None = None) -> Ingest:
        return Ingest(self, expected=expected, size=size)

    def put(self, data: bytes) -> tuple[str, int, bool]:
        """Store `data`: (digest, size, new).  `new` tells the caller's undo list that
        this call created the blob (and so may remove it if the operation fails)."""
        digest = oci.digest_of(data)
        path = self.path(digest)
        if path.exists():
            return digest, len(data), False
        self.write_atomic(path, data)
        return digest, len(data), True

    def commit_file(self, src: Path, digest: str) -> bool:
        """Make the verified scratch file `src` blob `digest`: True if it is new (an
        existing blob is the same content: `src` is then removed)."""
        target = self.path(digest)
        if target.exists():
            src.unlink()
            return False
        os.chmod(src, 0o644)
        durable.fsync_path(src)
        durable.rename_into_place(src, target)
        return True

    def read_json(self, digest: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.path(digest).read_bytes())
        return data

    def remove(self, digest: str) -> None:
        remove_tree(self.path(digest))

    def sweep(self, keep: set[str]) -> None:
        """Remove blobs whose hex is not in `keep` (what no record references)."""
        for p in self.blobs.iterdir():
            if p.name not in keep:
                sweep_path(p)

    def write_index(self, manifests: Iterable[dict[str, Any]]) -> None:
        """index.json, unless it already says the same (a start on a full disk needs
        no write)."""
        index = {"schemaVersion": 2, "mediaType": oci.MEDIA_INDEX, "manifests": list(manifests)}
        data = json.dumps(index, indent=2).encode()
        path = self.layout / "index.json"
        with contextlib.suppress(OSError):
            if path.read_bytes() == data:
                return
        self.write_atomic(path, data)


def sweep_path(p: Path) -> None:
    """A start-up removal: logged if it fails, never fatal (the daemon must start)."""
    try:
        remove_tree(p)
    except Exception as exc:  # noqa: BLE001 - a sweep never stops the daemon
        log.warning("images.sweep_failed", path=str(p), error=str(exc))
