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
