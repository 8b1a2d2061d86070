"""The image component: content store (content.py), shared layer store (layers.py),
image records (imagedb.py), rmi rules (removal.py), references, and `ImageStore`
(store.py), the one owner that runs import, commit, tag, load and rmi over them.

`ImageStore` and the records are loaded on first use, so the CLI can use the pure parts
(`images.reference`, Docker's name rules) without importing the store (sqlite,
structlog): a third of a second at every `corral pull`.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: the CLI imports this package, and typing costs
if TYPE_CHECKING:
    from typing import Any

    from supervisor.images.records import ImageRecord, ImageUser
    from supervisor.images.store import ImageStore

__all__ = ["ImageRecord", "ImageStore", "ImageUser"]


def __getattr__(name: str) -> Any:
    if name == "ImageStore":
        from supervisor.images.store import ImageStore

        return ImageStore
    if name in ("ImageRecord", "ImageUser"):
        from supervisor.images import records

        return getattr(records, name)
    raise AttributeError(name)
