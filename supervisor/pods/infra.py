"""The pod infra: no image, a daemon-made one-layer root holding only catatonit.

Why catatonit in pause mode (`catatonit -P`): it is what Podman runs as its own pod
pause process, a static binary Debian ships (`catatonit`, as tini-static is for
`--init`), so no compiler is needed on a host and nothing is pulled; it sleeps
holding the namespaces, reaps nothing it does not need to and exits on SIGTERM/SIGINT
as PID 1.  tini cannot serve: it needs a child and exits with it.

The root is `<state root>/pods/infra-layer/` (the binary copied in at daemon start,
so an upgrade of the host's file does not change a running infra), presented to the
engine as an image through `InfraImages`, a thin `ImageStore` whose `resolve`,
`config` and `layer_dirs` know one more, reserved, reference: INFRA_REF.  It is in
no image list and cannot be removed, tagged or pushed.
"""

from __future__ import annotations

import builtins
import hashlib
import os
import shutil
from pathlib import Path
from typing import Any

from supervisor.errors import InvalidArgument
from supervisor.images.records import ImageRecord
from supervisor.images.store import ImageStore
from supervisor.metadata.database import Database
from supervisor.pods.labels import INFRA_REF
from supervisor.runtime.initbin import is_static_elf

PAUSE_CANDIDATES = ("/usr/bin/catatonit", "/usr/libexec/podman/catatonit")
PAUSE_IN_ROOT = "/catatonit"


def find_pause() -> str:
    """The host's static catatonit, or "" (pods then refused with how to get it)."""
    for path in (shutil.which("catatonit") or "", *PAUSE_CANDIDATES):
        if path and os.path.isfile(path) and os.access(path, os.X_OK):
            with open(path, "rb") as f:
                if is_static_elf(f.read(4096)):
                    return path
    return ""


def infra_config(digest: str) -> dict[str, Any]:
    """The infra's image config: catatonit in pause mode, stopped by SIGTERM."""
    return {
        "architecture": _arch(), "os": "linux",
        "config": {"Entrypoint": [PAUSE_IN_ROOT, "-P"], "Env": ["PATH=/"],
                   "StopSignal": "SIGTERM", "Labels": {}},
        "rootfs": {"type": "layers", "diff_ids": [digest]},
    }


def _arch() -> str:
    machine = os.uname().machine
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


class InfraImages(ImageStore):
    """The image store, plus the infra root under INFRA_REF (module doc)."""

    def __init__(self, root: Path, db: Database) -> None:
        super().__init__(root, db)
        self.infra_layer = root / "pods" / "infra-layer"
        self.infra_id = ""
        self._prepare_infra()

    def _prepare_infra(self) -> None:
        source = find_pause()
        if not source:
            return
        data = Path(source).read_bytes()
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        target = self.infra_layer / PAUSE_IN_ROOT.lstrip("/")
        self.infra_layer.mkdir(parents=True, exist_ok=True)
        os.chmod(self.infra_layer.parent, 0o700)
        if not target.exists() or target.read_bytes() != data:
            tmp = target.with_name(".catatonit.tmp")
            tmp.write_bytes(data)
            os.chmod(tmp, 0o755)
            os.replace(tmp, target)
        self.infra_id = "sha256:" + hashlib.sha256(
            b"corral pod infra\0" + digest.encode()).hexdigest()
        self._infra_digest = digest
        self._infra_size = len(data)

    def _is_infra(self, s: str) -> bool:
        return s == INFRA_REF or (bool(self.infra_id) and s == self.infra_id)

    def resolve(self, s: str) -> ImageRecord:
        if s == INFRA_REF and not self.infra_id:
            raise InvalidArgument("pods need catatonit (a static pause binary) on this "
                                  "host: install Debian's catatonit package")
        if self._is_infra(s):
            return ImageRecord(id=self.infra_id, repo_tags=[INFRA_REF], created=0.0,
                               size=self._infra_size, layers=[self._infra_digest],
                               manifest_digest="")
        return super().resolve(s)

    def config(self, image_id: str) -> dict[str, Any]:
        if self._is_infra(image_id):
            return infra_config(self._infra_digest)
        return super().config(image_id)

    def layer_dirs(self, image_id: str) -> builtins.list[Path]:
        if self._is_infra(image_id):
            return [self.infra_layer]
        return super().layer_dirs(image_id)
