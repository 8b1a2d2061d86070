"""Errors every component raises, each carrying the Docker API status it maps to.

The API layer turns any `CorralError` into Docker's `{"message": ...}` body with
`status`; the CLI turns that into one line on stderr and a docker-like exit code.
Components raise these instead of inventing their own so that the mapping lives here once.
"""

from __future__ import annotations


class CorralError(Exception):
    """Base: a user-visible failure with a one-line message."""

    status: int = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(CorralError):
    """Malformed input: bad reference, bad -v, bad --memory... (HTTP 400)."""

    status = 400


class DigestMismatch(InvalidArgument):
    """Content that is not what its descriptor said: refused, nothing stored."""


class NotFound(CorralError):
    """No such container, image, volume, exec instance (HTTP 404)."""

    status = 404


class Conflict(CorralError):
    """Name in use, container running, image in use (HTTP 409)."""

    status = 409


class NotModified(CorralError):
    """Start of a running container, stop of a stopped one (HTTP 304)."""

    status = 304


class CannotExecute(CorralError):
    """The command exists but cannot be executed (docker exit code 126)."""

    status = 400
    exit_code = 126


class CommandNotFound(CorralError):
    """The command does not exist in the image (docker exit code 127)."""

    status = 400
    exit_code = 127


class DiskFull(CorralError):
    """A write failed for want of space: the operation fails, the daemon goes on."""


_SPACE_ERRNOS = {28: "no space left on device", 122: "disk quota exceeded"}  # ENOSPC, EDQUOT


def disk_full(exc: BaseException) -> DiskFull | None:
    """ENOSPC or EDQUOT (an `OSError` here or anywhere in its causes), worded as Go's
    PathError words it in dockerd's answers: `write PATH: no space left on device`."""
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, DiskFull):
            return e
        if isinstance(e, OSError) and e.errno in _SPACE_ERRNOS:
            text = _SPACE_ERRNOS[e.errno]
            name = e.filename
            if isinstance(name, bytes):
                name = name.decode(errors="replace")
            return DiskFull(f"write {name}: {text}" if name else text)
        e = e.__cause__ or e.__context__
    return None
