"""`corral save` and `corral load`: image archives to and from files (or pipes).

As with docker: save writes to `-o FILE` (through a temporary file renamed into place,
so a failed save never leaves a truncated archive under the name) or to stdout when it
is not a terminal; load reads `-i FILE` or stdin, and prints the daemon's
`Loaded image: ...` lines.
"""

from __future__ import annotations

import os
import sys

from supervisor.cli.context import CliError
from supervisor.cli.parser import Command, Opt, parse

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import IO

    from supervisor.cli.context import Cli

SAVE = Command(
    "save",
    "corral save [OPTIONS] IMAGE [IMAGE...]",
    "Save one or more images to a tar archive (streamed to STDOUT by default)",
    (Opt("output", "o", "str", help="Write to a file, instead of STDOUT"),),
    min_args=1,
)

LOAD = Command(
    "load",
    "corral load [OPTIONS]",
    "Load an image from a tar archive or STDIN",
    (
        Opt("input", "i", "str", help="Read from tar archive file, instead of STDIN"),
        Opt("quiet", "q", help="Suppress the load output"),
    ),
    max_args=0,
)


def output_dir_error(path: str) -> str | None:
    """docker's check before saving: the directory of `-o` must exist."""
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        return f'failed to save image: invalid output path: directory "{parent}" does not exist'
    return None


def cmd_save(cli: Cli, argv: list[str]) -> int:
    p = parse(SAVE, argv)
    output: str | None = p["output"]
    if output is None and cli.stdout.isatty():
        raise CliError("cowardly refusing to save to a terminal. Use the -o flag or redirect")
    if output is not None and (problem := output_dir_error(output)):
        raise CliError(problem)
    resp = cli.client.request("GET", "/images/get", {"names": list(p.args)})
    write_stream(cli, resp.iter_chunks(), output)
    return 0


def write_stream(cli: Cli, chunks: Iterable[bytes], output: str | None) -> None:
    """A tar the daemon streams (`save`, `export`) to stdout, or to `output` whole or not
    at all: written beside it under a temporary name, renamed once complete."""
    if output is None:
        out = cli.bout
        for chunk in chunks:
            out.write(chunk)
        out.flush()
        return
    import tempfile

    directory = os.path.dirname(os.path.abspath(output))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".corral_temp_")
    try:
        with os.fdopen(fd, "wb") as f:
            for chunk in chunks:
                f.write(chunk)
        os.chmod(tmp, 0o644)
        os.replace(tmp, output)
    except BaseException:
        os.unlink(tmp)
        raise


def cmd_load(cli: Cli, argv: list[str]) -> int:
    from supervisor.cli.stream import show_json_messages

    p = parse(LOAD, argv)
    source: str | None = p["input"]
    body: IO[bytes]
    opened: IO[bytes] | None = None
    if source is None:
        if sys.stdin.isatty():
            raise CliError("requested load from stdin, but stdin is empty")
        body = sys.stdin.buffer
    else:
        try:
            opened = body = open(source, "rb")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise CliError(f"open {source}: {(exc.strerror or str(exc)).lower()}") from None
    try:
        resp = cli.client.request(
            "POST",
            "/images/load",
            {"quiet": "1" if p["quiet"] else "0"},
            body=body,
            headers={"Content-Type": "application/x-tar"},
        )
        show_json_messages(resp.iter_lines(), cli.bout)
    finally:
        if opened is not None:
            opened.close()
    return 0
