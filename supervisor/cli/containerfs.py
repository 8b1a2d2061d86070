"""`corral top`, `diff` and `export`: looking into a container, as docker prints it."""

from __future__ import annotations

import os

from supervisor.cli.context import CliError
from supervisor.cli.parser import Command, Opt, parse

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from supervisor.cli.context import Cli

TOP = Command(
    "top",
    "corral top CONTAINER [ps OPTIONS]",
    "Display the running processes of a container",
    min_args=1,
    interspersed=False,
)

DIFF = Command(
    "diff",
    "corral diff CONTAINER",
    "Inspect changes to files or directories on a container's filesystem",
    min_args=1,
    max_args=1,
)

EXPORT = Command(
    "export",
    "corral export [OPTIONS] CONTAINER",
    "Export a container's filesystem as a tar archive",
    (Opt("output", "o", "str", help="Write to a file, instead of STDOUT"),),
    min_args=1,
    max_args=1,
)

KINDS = {0: "C", 1: "A", 2: "D"}


def top_table(body: dict[str, Any]) -> str:
    """docker's top table: tabwriter with minwidth 20, padding 3."""
    from supervisor.cli.format import tabwrite

    rows = [body.get("Titles") or [], *(body.get("Processes") or [])]
    return tabwrite("".join("\t".join(r) + "\n" for r in rows), minwidth=20, padding=3)


def cmd_top(cli: Cli, argv: list[str]) -> int:
    from urllib.parse import quote

    p = parse(TOP, argv)
    name, ps = p.args[0], p.args[1:]
    query = {"ps_args": " ".join(ps)} if ps else None
    body = cli.client.get(f"/containers/{quote(name, safe='')}/top", query) or {}
    cli.stdout.write(top_table(body))
    return 0


def cmd_diff(cli: Cli, argv: list[str]) -> int:
    from urllib.parse import quote

    p = parse(DIFF, argv)
    changes = cli.client.get(f"/containers/{quote(p.args[0], safe='')}/changes") or []
    for ch in changes:
        cli.out(f"{KINDS.get(int(ch.get('Kind', 0)), '?')} {ch.get('Path', '')}")
    return 0


def cmd_export(cli: Cli, argv: list[str]) -> int:
    from urllib.parse import quote

    from supervisor.cli.archive import write_stream

    p = parse(EXPORT, argv)
    output: str | None = p["output"]
    if output is None and cli.stdout.isatty():
        raise CliError("cowardly refusing to save to a terminal. Use the -o flag or redirect")
    if output is not None:
        parent = os.path.dirname(os.path.abspath(output))
        if not os.path.isdir(parent):
            raise CliError(f'failed to export container: invalid output path: directory '
                           f'"{parent}" does not exist')
    resp = cli.client.request("GET", f"/containers/{quote(p.args[0], safe='')}/export")
    write_stream(cli, resp.iter_chunks(), output)
    return 0
