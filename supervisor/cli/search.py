"""`corral search TERM`: Docker Hub's (or a registry's) v1 search, docker's table."""

from __future__ import annotations

from supervisor.cli import format as fmt
from supervisor.cli.context import CliError
from supervisor.cli.parser import Command, Opt, parse

TYPE_CHECKING = False
if TYPE_CHECKING:
    from supervisor.cli.context import Cli

SEARCH = Command("search", "corral search [OPTIONS] TERM", "Search Docker Hub for images", (
    Opt("filter", "f", "list", help="Filter output based on conditions provided"),
    Opt("format", kind="str", help="Pretty-print search using a Go template (not supported)"),
    Opt("limit", kind="int", help="Max number of search results (default 25)"),
    Opt("no-trunc", help="Don't truncate output"),
), min_args=1, max_args=1)


def cmd_search(cli: Cli, argv: list[str]) -> int:
    from supervisor.cli.filters import filters_query

    p = parse(SEARCH, argv)
    if p["format"]:
        raise CliError("search --format is not supported yet")
    query = {"term": p.args[0], "limit": p["limit"] or None,
             "filters": filters_query(list(p["filter"]))}
    found = cli.client.get("/images/search", query) or []
    rows = [["NAME", "DESCRIPTION", "STARS", "OFFICIAL"]]
    for r in found:
        desc = str(r.get("description") or "").replace("\n", " ")
        if not p["no_trunc"] and len(desc) > 45:
            desc = desc[:44] + "…"
        rows.append([str(r.get("name", "")), desc, str(r.get("star_count", 0)),
                     "[OK]" if r.get("is_official") else ""])
    cli.stdout.write(fmt.table(rows))
    return 0
