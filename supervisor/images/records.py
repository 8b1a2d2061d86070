"""Plain records the image store hands out (and the one it takes from the engine)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class ImageRecord:
    """One image as the API lists it.  `size` is the sum of its layers' content bytes;
    `layers` are diffids bottom -> top; `parent` is set for committed images (Docker's
    Parent), which is what makes an untagged parent an 'intermediate' image."""

    id: str
    repo_tags: list[str]
    created: float
    size: int
    layers: list[str]
    manifest_digest: str
    parent: str | None = None
    repo_digests: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ImageUser:
    """A container using an image, as the engine reports it to `ImageStore.delete`.

    Running matters: Docker refuses even a forced removal of an image a running
    container uses ("cannot be forced"), but forces past a stopped one.
    """

    container_id: str
    running: bool = False


# What `delete(in_use=...)` accepts: for an image ID, the container using it
# (an ImageUser, or just its ID as str, or True when unknown), or None/False.
InUse = Callable[[str], "ImageUser | str | bool | None"]


def as_user(value: ImageUser | str | bool | None) -> ImageUser | None:
    """Normalise whatever the engine's in_use callable returned."""
    if value is None or value is False:
        return None
    if value is True:
        return ImageUser("")
    if isinstance(value, str):
        return ImageUser(value)
    return value
