"""`volume create|ls|inspect|rm|prune`: named volumes through `/volumes` endpoints."""

from __future__ import annotations

from supervisor.api.client import ApiError, quote
from supervisor.cli import format as fmt
from supervisor.cli.context import CliError
from supervisor.cli.filters import filters_query
from supervisor.cli.parser import Command, Opt, UsageError, parse

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from supervisor.cli.context import Cli
    from supervisor.cli.govalues import Record

CREATE = Command("volume create", "corral volume create [OPTIONS] [VOLUME]", "Create a volume", (
    Opt("driver", "d", "str", default="local", help="Specify volume driver name"),
    Opt("label", kind="list", help="Set metadata for a volume"),
    Opt("name", kind="str", help="Specify volume name"),
    Opt("opt", "o", "list", help="Set driver specific options"),
), max_args=1)
LS = Command("volume ls", "corral volume ls [OPTIONS]", "List volumes", (
    Opt("filter", "f", "list", help="Provide filter values (e.g. 'dangling=true')"),
    Opt("format", kind="str", help="Format output using a custom template"),
    Opt("quiet", "q", help="Only display volume names"),
), max_args=0)
INSPECT = Command("volume inspect", "corral volume inspect [OPTIONS] VOLUME [VOLUME...]",
                  "Display detailed information on one or more volumes",
                  (Opt("format", "f", "str", help="Format output using a custom template"),),
                  min_args=1)
RM = Command("volume rm", "corral volume rm [OPTIONS] VOLUME [VOLUME...]",
             "Remove one or more volumes",
             (Opt("force", "f", help="Force the removal of one or more volumes"),), min_args=1)
PRUNE = Command("volume prune", "corral volume prune [OPTIONS]", "Remove unused local volumes", (
    Opt("all", "a", help="Remove all unused volumes, not just anonymous ones"),
    Opt("filter", kind="list", help="Provide filter values (e.g. 'label=<label>')"),
    Opt("force", "f", help="Do not prompt for confirmation"),
), max_args=0)

SUBS = {"create": "create", "ls": "ls", "list": "ls", "inspect": "inspect", "rm": "rm",
        "remove": "rm", "prune": "prune"}


def _pairs(items: list[str], what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, _, value = item.partition("=")
        if not key:
            raise UsageError(f'invalid argument "{item}" for "--{what}" flag: bad format')
        out[key] = value
    return out


def cmd_volume(cli: Cli, argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        cli.stdout.write(
            "Usage:  corral volume COMMAND\n\nManage volumes\n\nCommands:\n"
            "  create      Create a volume\n  inspect     Display detailed information on "
            "one or more volumes\n  ls          List volumes\n  prune       Remove unused "
            "local volumes\n  rm          Remove one or more volumes\n"
            "  update      Update a volume (cluster volumes only)\n"
            "\nRun 'corral volume COMMAND --help' for more information on a command.\n"
        )
        return 0
    if argv[0] == "update":  # docker's is for swarm's cluster volumes only
        raise CliError("volume update is for cluster volumes (swarm), which corral does not "
                       "run: a local volume has nothing to update")  # fmt: skip
    sub = SUBS.get(argv[0])
    if sub is None:
        raise CliError(f"'volume {argv[0]}' is not a corral command.\nSee 'corral volume --help'")
    rest = argv[1:]
    if sub == "create":
        return _create(cli, rest)
    if sub == "ls":
        return _ls(cli, rest)
    if sub == "inspect":
        from supervisor.cli.inspect import show

        p = parse(INSPECT, rest)
        return show(cli, p.args, "volume", p["format"])
    if sub == "rm":
        return _rm(cli, rest)
    return _prune(cli, rest)


def _create(cli: Cli, argv: list[str]) -> int:
    p = parse(CREATE, argv)
    name = p.args[0] if p.args else (p["name"] or "")
    if p.args and p["name"] and p["name"] != p.args[0]:
        raise UsageError(f"conflicting options: cannot specify a volume-name through both "
                         f"--name and as a positional arg ({p['name']} vs {p.args[0]})")
    body = {
        "Name": name,
        "Driver": p["driver"] or "local",
        "DriverOpts": _pairs(p["opt"], "opt"),
        "Labels": _pairs(p["label"], "label"),
    }
    vol = cli.client.post("/volumes/create", None, body) or {}
    cli.out(str(vol.get("Name", name)))
    return 0


# docker's volumeContext: the fields `--format` sees, and their table headers.
VOLUME_HEADERS = {"ID": "ID", "Name": "VOLUME NAME", "Group": "GROUP", "Driver": "DRIVER",
                  "Scope": "SCOPE", "Availability": "AVAILABILITY", "Mountpoint": "MOUNTPOINT",
                  "Labels": "LABELS", "Links": "LINKS", "Size": "SIZE", "Status": "STATUS"}


def volume_record(v: dict[str, Any]) -> Record:
    """A volume as docker's `*formatter.volumeContext` (cluster fields: `N/A`)."""
    from supervisor.cli.govalues import Record

    labels = v.get("Labels") or {}
    usage = v.get("UsageData")
    fields = {
        "Name": str(v.get("Name", "")), "Driver": str(v.get("Driver", "")),
        "Scope": str(v.get("Scope", "")), "Mountpoint": str(v.get("Mountpoint", "")),
        "Labels": ",".join(f"{k}={val}" for k, val in sorted(labels.items())),
        "Links": "N/A" if not usage else str(usage.get("RefCount", 0)),
        "Size": "N/A" if not usage else fmt.human_size(float(usage.get("Size") or 0), 4),
        "Group": "N/A", "Availability": "N/A", "Status": "N/A",
    }
    return Record("*formatter.volumeContext", fields,
                  {"Label": (lambda key: str(labels.get(key, "")), ("string",))})


def _ls(cli: Cli, argv: list[str]) -> int:
    from supervisor.cli.output import Defaults, RowFormat

    p = parse(LS, argv)
    source = Defaults("table {{.Driver}}\t{{.Name}}", "{{.Name}}",
                      "name: {{.Name}}\\ndriver: {{.Driver}}\\n", "name: {{.Name}}",
                      ).pick(p["format"], p["quiet"])
    out = RowFormat(source, VOLUME_HEADERS)  # a bad template fails before any request
    resp = cli.client.get("/volumes", {"filters": filters_query(p["filter"])}) or {}
    for warning in resp.get("Warnings") or []:
        cli.err(f"WARNING: {warning}")
    vols = sorted(resp.get("Volumes") or [], key=lambda v: str(v.get("Name", "")))
    cli.stdout.write(out.render(volume_record(v) for v in vols))
    return 0


def _rm(cli: Cli, argv: list[str]) -> int:
    p = parse(RM, argv)
    failed = False
    for name in p.args:
        try:
            cli.client.request("DELETE", f"/volumes/{quote(name)}",
                               {"force": True if p["force"] else None}).close()
        except ApiError as exc:
            cli.err(f"corral: Error response from daemon: {exc.message}")
            failed = True
            continue
        cli.out(name)
    return 1 if failed else 0


def _prune(cli: Cli, argv: list[str]) -> int:
    import sys

    p = parse(PRUNE, argv)
    filters = list(p["filter"])
    if p["all"]:
        filters.append("all=true")
    if not p["force"]:
        warning = ("WARNING! This will remove all local volumes not used by at least one "
                   "container." if p["all"] else
                   "WARNING! This will remove anonymous local volumes not used by at least "
                   "one container.")
        cli.stdout.write(f"{warning}\nAre you sure you want to continue? [y/N] ")
        cli.stdout.flush()
        answer = sys.stdin.readline().strip().lower()
        if answer not in ("y", "yes"):
            return 0
    report = cli.client.post("/volumes/prune", {"filters": filters_query(filters)}) or {}
    deleted = report.get("VolumesDeleted") or []
    if deleted:
        cli.out("Deleted Volumes:")
        for name in deleted:
            cli.out(str(name))
        cli.out()
    cli.out(f"Total reclaimed space: {fmt.human_size(float(report.get('SpaceReclaimed') or 0))}")
    return 0
