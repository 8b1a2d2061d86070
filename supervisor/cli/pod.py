"""`corral pod ls|inspect|start|stop|rm`: pods made by `kube play`, managed as a whole
(the infra first at start and last at stop, so members always have its namespace)."""

from __future__ import annotations

import json

from supervisor.cli import format as fmt
from supervisor.cli.context import CliError
from supervisor.cli.parser import Command, Opt, parse

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from supervisor.cli.context import Cli
    from supervisor.kube.pods import Pod

LS = Command("pod ls", "corral pod ls [OPTIONS]", "List pods", (
    Opt("quiet", "q", help="Only display pod names"),
), max_args=0)
INSPECT = Command("pod inspect", "corral pod inspect POD [POD...]",
                  "Display detailed information on one or more pods", (), min_args=1)
START = Command("pod start", "corral pod start POD [POD...]", "Start one or more pods", (),
                min_args=1)
STOP = Command("pod stop", "corral pod stop [OPTIONS] POD [POD...]", "Stop one or more pods", (
    Opt("time", "t", "int", help="Seconds to wait before killing the containers"),
), min_args=1)
RM = Command("pod rm", "corral pod rm [OPTIONS] POD [POD...]", "Remove one or more pods", (
    Opt("force", "f", help="Stop and remove running pods"),
), min_args=1)

HELP = ("\nUsage:  corral pod COMMAND\n\nManage pods (made by `corral kube play`)\n\n"
        "Commands:\n  inspect     Display detailed information on one or more pods\n"
        "  ls          List pods\n  rm          Remove one or more pods\n"
        "  start       Start one or more pods\n  stop        Stop one or more pods\n")


def _pods(cli: Cli) -> dict[str, Pod]:
    from supervisor.kube.play import POD_LABEL
    from supervisor.kube.pods import group

    filters = json.dumps({"label": [POD_LABEL]})
    listed = cli.client.get("/containers/json", {"all": True, "filters": filters}) or []
    return {p.name: p for p in group(listed)}


def _find(pods: dict[str, Pod], names: list[str]) -> list[Pod]:
    for name in names:
        if name not in pods:
            raise CliError(f"no such pod: {name}")
    return [pods[n] for n in names]


def _name(c: dict[str, Any] | Any) -> str:
    return str((c.get("Names") or [""])[0]).lstrip("/")


def cmd_pod(cli: Cli, argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        cli.stdout.write(HELP)
        return 0
    sub = {"list": "ls", "ps": "ls", "remove": "rm"}.get(argv[0], argv[0])
    rest = argv[1:]
    if sub == "ls":
        p = parse(LS, rest)
        by_name = _pods(cli)
        if p["quiet"]:
            for name in by_name:
                cli.out(name)
            return 0
        rows = ["NAME\tSTATUS\tINFRA ID\t# OF CONTAINERS"]
        for pod in by_name.values():
            infra = str((pod.infra or {}).get("Id", ""))[:12]
            rows.append(f"{pod.name}\t{pod.phase}\t{infra}\t{len(pod.members)}")
        cli.stdout.write(fmt.tabwrite("\n".join(rows) + "\n"))
        return 0
    if sub == "inspect":
        found = _find(_pods(cli), parse(INSPECT, rest).args)
        out = [{"Name": pod.name, "State": pod.phase,
                "InfraContainerID": (pod.infra or {}).get("Id", ""),
                "Containers": [{"Id": c.get("Id"), "Name": _name(c), "State": c.get("State")}
                               for c in pod.members]} for pod in found]
        cli.out(json.dumps(out, indent=4))
        return 0
    if sub == "start":
        for pod in _find(_pods(cli), parse(START, rest).args):
            for c in ([pod.infra] if pod.infra else []) + pod.members:
                if c.get("State") != "running":
                    cli.client.post(f"/containers/{c['Id']}/start")
            cli.out(pod.name)
        return 0
    if sub == "stop":
        p = parse(STOP, rest)
        query = {"t": p["time"]} if p["time"] is not None else None
        for pod in _find(_pods(cli), p.args):
            for c in pod.members + ([pod.infra] if pod.infra else []):
                if c.get("State") in ("running", "restarting", "paused"):
                    cli.client.post(f"/containers/{c['Id']}/stop", query)
            cli.out(pod.name)
        return 0
    if sub == "rm":
        p = parse(RM, rest)
        chosen = _find(_pods(cli), p.args)
        if not p["force"]:
            for pod in chosen:
                if pod.phase == "Running":
                    raise CliError(f"pod {pod.name} is running: stop it first or use -f")
        for pod in chosen:
            for c in pod.members + ([pod.infra] if pod.infra else []):
                cli.client.delete(f"/containers/{c['Id']}", {"force": True})
            cli.out(pod.name)
        return 0
    raise CliError(f"'pod {argv[0]}' is not a corral command.\nSee 'corral pod --help'")
