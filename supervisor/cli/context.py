"""What every verb receives: where the daemon is, the output streams, and a lazy client.

The client is built on first use so `--help` and flag errors never touch the socket
(and never auto-start a daemon).
"""

from __future__ import annotations

import os
import sys

from supervisor.api.client import DEFAULT_HOST, Client

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import BinaryIO, TextIO


class CliError(Exception):
    """A failure to report as `corral: <message>` with a docker-like exit code."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


class Cli:
    """Per-invocation context handed to every verb."""

    def __init__(
        self,
        host: str | None = None,
        *,
        stdout: TextIO | None = None,
        stderr: TextIO | None = None,
        environ: Mapping[str, str] | None = None,
        client: Client | None = None,
        autostart: bool = True,
    ) -> None:
        self.environ: Mapping[str, str] = os.environ if environ is None else environ
        self.host = host or self.environ.get("CORRAL_HOST") or DEFAULT_HOST
        self.stdout: TextIO = stdout if stdout is not None else sys.stdout
        self.stderr: TextIO = stderr if stderr is not None else sys.stderr
        self._client = client
        self._autostart = autostart

    @property
    def client(self) -> Client:
        if self._client is None:
            try:
                self._client = Client(
                    self.host, autostart=self._start_daemon if self._autostart else None
                )
            except ValueError as exc:
                raise CliError(str(exc)) from None
        return self._client

    def _start_daemon(self) -> None:
        from supervisor.cli.autostart import start_daemon

        start_daemon(self.host, self.stderr, self.environ)

    @property
    def bout(self) -> BinaryIO:
        """Binary stdout for container output (bytes pass through undecoded)."""
        self.stdout.flush()
        return self.stdout.buffer

    @property
    def berr(self) -> BinaryIO:
        self.stderr.flush()
        return self.stderr.buffer

    def out(self, text: str = "") -> None:
        self.stdout.write(text + "\n")

    def err(self, text: str) -> None:
        self.stderr.write(text + "\n")
        self.stderr.flush()
