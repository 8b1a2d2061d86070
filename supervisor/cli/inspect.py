"""`inspect`: low-level JSON of containers, images and volumes, optionally templated.

Without `--type`, a name is looked up as a container, then an image, then a volume, as
docker does; the output is a JSON array (4-space indent) or one template line per object.
"""

from __future__ import annotations

import json

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

KINDS = ("container", "image", "volume")


def _path(kind: str, name: str) -> str:
    if kind == "container":
        return f"/containers/{quote(name)}/json"
    if kind == "image":
        return f"/images/{quote(name, safe='/:@')}/json"
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
    raise CliError(f"No such object: {name}")


def show(cli: Cli, names: list[str], kind: str | None, template: str | None,
         size: bool = False) -> int:
    """Print the objects (array or template lines); misses go to stderr, exit 1."""
    tmpl = None
    if template:
        from supervisor.cli.template import Template, TemplateError

        try:
            tmpl = Template(template.replace("\\n", "\n").replace("\\t", "\t"))
        except TemplateError as exc:
            raise CliError(f"template parsing error: {exc}") from None
    found: list[Any] = []
    errors: list[str] = []
    for name in names:
        try:
            obj = lookup(cli, name, kind, size)
        except ApiError as exc:
            errors.append(f"Error response from daemon: {exc.message}")
            continue
        except CliError as exc:
            errors.append(exc.message)
            continue
        if tmpl is None:
            found.append(obj)
            continue
        from supervisor.cli.template import TemplateError

        try:
            cli.out(tmpl.render(obj))
        except TemplateError as exc:
            errors.append(f"template: {exc}")
    if tmpl is None:
        cli.out(json.dumps(found, indent=4, ensure_ascii=False))
    for message in errors:
        cli.err(f"corral: {message}")
    return 1 if errors else 0


def cmd_inspect(cli: Cli, argv: list[str]) -> int:
    p = parse(INSPECT, argv)
    kind = p["type"]
    if kind is not None and kind not in KINDS:
        raise UsageError(f'"{kind}" is not a valid value for --type')
    return show(cli, p.args, kind, p["format"], bool(p["size"]))
