"""The image component: content store, shared layer store, references, import, commit.

`ImageStore` and the records are loaded on first use, so the CLI can use the pure parts
(`images.reference`, Docker's name rules) without importing the store (sqlite,
structlog): a third of a second at every `corral pull`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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
