"""`network create|ls|inspect|rm|connect|disconnect|prune` through `/networks` endpoints."""

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

CREATE = Command("network create", "corral network create [OPTIONS] NETWORK", "Create a network", (
    Opt("driver", "d", "str", default="bridge", help="Driver to manage the Network"),
    Opt("subnet", kind="list", help="Subnet in CIDR format that represents a network segment"),
    Opt("gateway", kind="list", help="IPv4 Gateway for the master subnet"),
    Opt("ip-range", kind="list", help="Allocate container ip from a sub-range"),
    Opt("internal", help="Restrict external access to the network"),
    Opt("attachable", help="Enable manual container attachment"),
    Opt("ipv6", help="Enable IPv6 networking"),
    Opt("label", kind="list", help="Set metadata on a network"),
    Opt("opt", "o", "list", help="Set driver specific options"),
), min_args=1, max_args=1)
LS = Command("network ls", "corral network ls [OPTIONS]", "List networks", (
    Opt("filter", "f", "list", help="Provide filter values (e.g. 'driver=bridge')"),
    Opt("format", kind="str", help="Format output using a custom template"),
    Opt("quiet", "q", help="Only display network IDs"),
    Opt("no-trunc", help="Do not truncate the output"),
), max_args=0)
INSPECT = Command("network inspect", "corral network inspect [OPTIONS] NETWORK [NETWORK...]",
                  "Display detailed information on one or more networks",
                  (Opt("format", "f", "str", help="Format output using a custom template"),),
                  min_args=1)
RM = Command("network rm", "corral network rm NETWORK [NETWORK...]",
             "Remove one or more networks",
             (Opt("force", "f", help="Do not error if the network does not exist"),), min_args=1)
CONNECT = Command("network connect", "corral network connect [OPTIONS] NETWORK CONTAINER",
                  "Connect a container to a network", (
    Opt("alias", kind="list", help="Add network-scoped alias for the container"),
    Opt("ip", kind="str", help="IPv4 address (e.g., 172.30.100.104)"),
    Opt("ip6", kind="str", help="IPv6 address (e.g., 2001:db8::33)"),
    Opt("link", kind="list", help="Add link to another container"),
), min_args=2, max_args=2)
DISCONNECT = Command("network disconnect", "corral network disconnect [OPTIONS] NETWORK CONTAINER",
                     "Disconnect a container from a network",
                     (Opt("force", "f", help="Force the container to disconnect from a network"),),
                     min_args=2, max_args=2)
PRUNE = Command("network prune", "corral network prune [OPTIONS]", "Remove all unused networks", (
    Opt("filter", kind="list", help="Provide filter values (e.g. 'label=<label>')"),
    Opt("force", "f", help="Do not prompt for confirmation"),
), max_args=0)

SUBS = {"create": "create", "ls": "ls", "list": "ls", "inspect": "inspect", "rm": "rm",
        "remove": "rm", "connect": "connect", "disconnect": "disconnect", "prune": "prune"}

HELP = (
    "Usage:  corral network COMMAND\n\nManage networks\n\nCommands:\n"
    "  connect     Connect a container to a network\n"
    "  create      Create a network\n"
    "  disconnect  Disconnect a container from a network\n"
    "  inspect     Display detailed information on one or more networks\n"
    "  ls          List networks\n"
    "  prune       Remove all unused networks\n"
    "  rm          Remove one or more networks\n"
    "\nRun 'corral network COMMAND --help' for more information on a command.\n"
)


def _pairs(items: list[str], what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, _, value = item.partition("=")
        if not key:
            raise UsageError(f'invalid argument "{item}" for "--{what}" flag: bad format')
        out[key] = value
    return out


def create_body(p: Any) -> dict[str, Any]:
    """The `POST /networks/create` body for `network create`'s flags (as docker sends it)."""
    subnets, gateways, ranges = p["subnet"], p["gateway"], p["ip_range"]
    if len(gateways) > len(subnets) or len(ranges) > len(subnets):
        raise UsageError("every --gateway and --ip-range needs a --subnet")
    config = []
    for i, subnet in enumerate(subnets):
        entry = {"Subnet": subnet}
        if i < len(gateways):
            entry["Gateway"] = gateways[i]
        if i < len(ranges):
            entry["IPRange"] = ranges[i]
        config.append(entry)
    return {
        "Name": p.args[0],
        "CheckDuplicate": True,
        "Driver": p["driver"] or "bridge",
        "Internal": bool(p["internal"]),
        "Attachable": bool(p["attachable"]),
        "EnableIPv6": bool(p["ipv6"]),
        "IPAM": {"Driver": "default", "Options": {}, "Config": config},
        "Options": _pairs(p["opt"], "opt"),
        "Labels": _pairs(p["label"], "label"),
    }


def cmd_network(cli: Cli, argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        cli.stdout.write(HELP)
        return 0
    sub = SUBS.get(argv[0])
    if sub is None:
        raise CliError(f"'network {argv[0]}' is not a corral command.\nSee 'corral network --help'")
    rest = argv[1:]
    handler = {"create": _create, "ls": _ls, "inspect": _inspect, "rm": _rm,
               "connect": _connect, "disconnect": _disconnect, "prune": _prune}[sub]
    return handler(cli, rest)


def _create(cli: Cli, argv: list[str]) -> int:
    p = parse(CREATE, argv)
    resp = cli.client.post("/networks/create", None, create_body(p)) or {}
    cli.out(str(resp.get("Id", "")))
    return 0


# docker's networkContext: the fields `--format` sees, and their table headers.
NETWORK_HEADERS = {"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE",
                   "IPv4": "IPV4", "IPv6": "IPV6", "Internal": "INTERNAL", "Labels": "LABELS",
                   "CreatedAt": "CREATED AT"}


def network_record(n: dict[str, Any], trunc: bool) -> Record:
    """A network summary as docker's `*network.networkContext`."""
    from supervisor.cli.govalues import Record

    labels = n.get("Labels") or {}
    ident = str(n.get("Id", ""))
    fields = {
        "ID": fmt.short_id(ident) if trunc else ident, "Name": str(n.get("Name", "")),
        "Driver": str(n.get("Driver", "")), "Scope": str(n.get("Scope", "")),
        "IPv4": str(bool(n.get("EnableIPv4"))).lower(),
        "IPv6": str(bool(n.get("EnableIPv6"))).lower(),
        "Internal": str(bool(n.get("Internal"))).lower(),
        "Labels": ",".join(f"{k}={v}" for k, v in sorted(labels.items())),
        "CreatedAt": fmt.go_time(str(n.get("Created") or "0001-01-01T00:00:00Z")),
    }
    return Record("*network.networkContext", fields,
                  {"Label": (lambda key: str(labels.get(key, "")), ("string",))})


def _ls(cli: Cli, argv: list[str]) -> int:
    from supervisor.cli.output import Defaults, RowFormat

    p = parse(LS, argv)
    source = Defaults("table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}", "{{.ID}}",
                      "network_id: {{.ID}}\\nname: {{.Name}}\\ndriver: {{.Driver}}\\n"
                      "scope: {{.Scope}}\\n", "network_id: {{.ID}}").pick(p["format"], p["quiet"])
    out = RowFormat(source, NETWORK_HEADERS)  # a bad template fails before any request
    nets = cli.client.get("/networks", {"filters": filters_query(p["filter"])}) or []
    nets = sorted(nets, key=lambda n: str(n.get("Name", "")))
    cli.stdout.write(out.render(network_record(n, not p["no_trunc"]) for n in nets))
    return 0


def _inspect(cli: Cli, argv: list[str]) -> int:
    from supervisor.cli.inspect import show

    p = parse(INSPECT, argv)
    return show(cli, p.args, "network", p["format"])


def _rm(cli: Cli, argv: list[str]) -> int:
    p = parse(RM, argv)
    failed = False
    for name in p.args:
        try:
            cli.client.request("DELETE", f"/networks/{quote(name)}").close()
        except ApiError as exc:
            if p["force"] and exc.status == 404:
                continue
            cli.err(f"corral: Error response from daemon: {exc.message}")
            failed = True
            continue
        cli.out(name)
    return 1 if failed else 0


def _connect(cli: Cli, argv: list[str]) -> int:
    p = parse(CONNECT, argv)
    endpoint: dict[str, Any] = {"Aliases": p["alias"] or None, "Links": p["link"] or None}
    ipam_cfg = {k: v for k, v in (("IPv4Address", p["ip"]), ("IPv6Address", p["ip6"])) if v}
    if ipam_cfg:
        endpoint["IPAMConfig"] = ipam_cfg
    cli.client.post(f"/networks/{quote(p.args[0])}/connect", None,
                    {"Container": p.args[1], "EndpointConfig": endpoint})
    return 0


def _disconnect(cli: Cli, argv: list[str]) -> int:
    p = parse(DISCONNECT, argv)
    cli.client.post(f"/networks/{quote(p.args[0])}/disconnect", None,
                    {"Container": p.args[1], "Force": bool(p["force"])})
    return 0


def _prune(cli: Cli, argv: list[str]) -> int:
    import sys

    p = parse(PRUNE, argv)
    if not p["force"]:
        cli.stdout.write("WARNING! This will remove all custom networks not used by at least one "
                         "container.\nAre you sure you want to continue? [y/N] ")
        cli.stdout.flush()
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            return 0
    report = cli.client.post("/networks/prune", {"filters": filters_query(p["filter"])}) or {}
    deleted = report.get("NetworksDeleted") or []
    if deleted:
        cli.out("Deleted Networks:")
        for name in deleted:
            cli.out(str(name))
    return 0
