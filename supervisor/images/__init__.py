"""The image component: content store, shared layer store, references, import, commit."""

from supervisor.images.records import ImageRecord, ImageUser
from supervisor.images.store import ImageStore

__all__ = ["ImageRecord", "ImageStore", "ImageUser"]
