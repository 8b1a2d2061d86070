"""`inspect`: low-level JSON of containers, images, volumes and networks, or templated.

Without `--type`, a name is looked up as a container, then an image, a volume, a
network, as docker does; the output is a JSON array (4-space indent; `--format json`
on one line) or one template line per object (`supervisor.cli.output`).
"""

from __future__ import annotations

from supervisor.api.client import ApiError, quote
from supervisor.cli.context import CliError
from supervisor.cli.parser import Command, Opt, UsageError, parse

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from supervisor.cli.context import Cli

INSPECT = Command("inspect", "corral inspect [OPTIONS] NAME|ID [NAME|ID...]",
                  "Return low-level information on corral objects", (
    Opt("format", "f", "str", help="Format output using a custom template"),
    Opt("size", "s", help="Display total file sizes if the type is container"),
    Opt("type", kind="str", help="Only inspect objects of the given type"),
), min_args=1)

KINDS = ("container", "image", "volume", "network")


def _path(kind: str, name: str) -> str:
    if kind == "container":
        return f"/containers/{quote(name)}/json"
    if kind == "image":
        return f"/images/{quote(name, safe='/:@')}/json"
    if kind == "network":
        return f"/networks/{quote(name)}"
    return f"/volumes/{quote(name)}"


def lookup(cli: Cli, name: str, kind: str | None, size: bool = False) -> Any:
    """Fetch one object; raises ApiError (typed lookup) or CliError (untyped miss)."""
    kinds = (kind,) if kind else KINDS
    for k in kinds:
        query = {"size": True} if size and k == "container" else None
        try:
            return cli.client.get(_path(k, name), query)
        except ApiError as exc:
            if exc.status != 404 or kind:
                raise
    raise CliError(f"Error: No such object: {name}")  # docker's words


def show(cli: Cli, names: list[str], kind: str | None, template: str | None,
         size: bool = False) -> int:
    """Print the objects (JSON array, or a template line each); misses go to stderr, exit 1.

    The template is parsed before anything is fetched, so a bad one fails alone (64).
    """
    from supervisor.cli.output import ObjectFormat

    out = ObjectFormat(template)
    found: list[Any] = []
    errors: list[str] = []
    printed = False
    for name in names:
        try:
            obj = lookup(cli, name, kind, size)
        except ApiError as exc:
            errors.append(f"Error response from daemon: {exc.message}")
            continue
        except CliError as exc:
            errors.append(exc.message)
            continue
        if out.template is None:
            found.append(obj)
            continue
        try:
            cli.stdout.write(out.render(obj))
            printed = True
        except CliError as exc:
            errors.append(exc.message)
    if out.template is None:
        cli.stdout.write(out.render_all(found))
    elif not printed:  # docker's inspector writes a bare newline when it wrote nothing
        cli.stdout.write("\n")
    for message in errors:
        cli.err(f"corral: {message}")
    return 1 if errors else 0


def cmd_inspect(cli: Cli, argv: list[str]) -> int:
    p = parse(INSPECT, argv)
    kind = p["type"]
    if kind is not None and kind not in KINDS:
        raise UsageError(f'"{kind}" is not a valid value for --type')
    return show(cli, p.args, kind, p["format"], bool(p["size"]))
