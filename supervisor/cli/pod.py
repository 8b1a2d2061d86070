"""`corral pod create|ls|inspect|start|stop|restart|kill|pause|unpause|top|logs|rm`.

A pod is its infra container (`supervisor/pods/`: catatonit holding the network, ipc
and uts namespaces) and the containers joined to it by the pod label (`run --pod`,
`kube play`).  Managed as a whole: the infra first at start and last at stop, so
members always have its namespaces; a restart restarts the members too (their
namespaces were the old infra's).  The pod's ID is its infra's."""

from __future__ import annotations

import json

from supervisor.cli import format as fmt
from supervisor.cli.context import CliError
from supervisor.cli.parser import Command, Opt, UsageError, parse

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from supervisor.cli.context import Cli
    from supervisor.kube.pods import Pod

CREATE = Command("pod create", "corral pod create [OPTIONS] [NAME]", "Create a new pod", (
    Opt("name", "n", "str", help="Assign a name to the pod"),
    Opt("publish", "p", "list", help="Publish a port or a range of ports of the pod to the host"),
    Opt("hostname", kind="str", help="Set the pod's hostname"),
    Opt("label", "l", "list", help="Set metadata on the pod"),
    Opt("share", kind="str", help="Namespaces to share: net, ipc, uts (default all three)"),
), max_args=1)
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
RESTART = Command("pod restart", "corral pod restart [OPTIONS] POD [POD...]",
                  "Restart one or more pods", (
    Opt("time", "t", "int", help="Seconds to wait before killing the containers"),
), min_args=1)
KILL = Command("pod kill", "corral pod kill [OPTIONS] POD [POD...]",
               "Send a signal to the containers of one or more pods", (
    Opt("signal", "s", "str", default="KILL", help="Signal to send to the containers"),
), min_args=1)
PAUSE = Command("pod pause", "corral pod pause POD [POD...]",
                "Pause all the containers of one or more pods", (), min_args=1)
UNPAUSE = Command("pod unpause", "corral pod unpause POD [POD...]",
                  "Unpause all the containers of one or more pods", (), min_args=1)
TOP = Command("pod top", "corral pod top POD [ps OPTIONS]",
              "Display the running processes of a pod's containers", (), min_args=1,
              interspersed=False)
LOGS = Command("pod logs", "corral pod logs [OPTIONS] POD",
               "Fetch the logs of a pod's containers", (
    Opt("follow", "f", help="Follow log output"),
    Opt("tail", "n", "str", default="all", help="Number of lines to show from the end"),
    Opt("timestamps", "t", help="Show timestamps"),
), min_args=1, max_args=1)
RM = Command("pod rm", "corral pod rm [OPTIONS] POD [POD...]", "Remove one or more pods", (
    Opt("force", "f", help="Stop and remove running pods"),
), min_args=1)

HELP = ("\nUsage:  corral pod COMMAND\n\nManage pods\n\nCommands:\n"
        "  create      Create a new pod\n"
        "  inspect     Display detailed information on one or more pods\n"
        "  kill        Send a signal to the containers of one or more pods\n"
        "  logs        Fetch the logs of a pod's containers\n"
        "  ls          List pods\n"
        "  pause       Pause all the containers of one or more pods\n"
        "  restart     Restart one or more pods\n"
        "  rm          Remove one or more pods\n"
        "  start       Start one or more pods\n  stop        Stop one or more pods\n"
        "  top         Display the running processes of a pod's containers\n"
        "  unpause     Unpause all the containers of one or more pods\n")

_ACTIVE = ("running", "restarting", "paused")


def _pods(cli: Cli) -> dict[str, Pod]:
    from supervisor.kube.pods import group
    from supervisor.pods.labels import POD_LABEL

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


def _infra(pod: Pod) -> list[Any]:
    return [pod.infra] if pod.infra else []


def create(cli: Cli, argv: list[str]) -> int:
    from supervisor.cli.flags import parse_kv_labels, parse_publish
    from supervisor.engine.names import NAME_RE
    from supervisor.pods import labels as pl

    p = parse(CREATE, argv)
    if p.args and p["name"] and p.args[0] != p["name"]:
        raise UsageError("pod create: give the name once (NAME or --name)")
    name = p["name"] or (p.args[0] if p.args else "")
    if not name:
        raise UsageError("pod create: a pod needs a name (NAME or --name)")
    if not NAME_RE.fullmatch(name):
        raise CliError(f"invalid pod name {name!r}: it must match [a-zA-Z0-9][a-zA-Z0-9_.-]+")
    share = [s.strip() for s in (p["share"] or ",".join(pl.DEFAULT_SHARE)).split(",")]
    for ns in share:
        if ns not in pl.SHAREABLE:
            raise CliError(f"--share {ns}: corral pods share only {', '.join(pl.SHAREABLE)}")
    if "net" not in share:
        raise CliError("--share must include net: a pod's ports and localhost are its network's")
    try:
        user_labels = parse_kv_labels(p["label"])
    except ValueError as exc:
        raise CliError(f"--label: {exc}") from None
    bindings: dict[str, list[dict[str, str]]] = {}
    for spec in p["publish"]:
        try:
            pairs = parse_publish(spec)
        except ValueError as exc:
            raise CliError(f"--publish {spec}: {exc}") from None
        for port, binding in pairs:
            bindings.setdefault(port, []).append(binding)
    if name in _pods(cli):
        raise CliError(f"pod {name} already exists")
    body: dict[str, Any] = {
        "Image": pl.INFRA_REF,
        "Hostname": p["hostname"] or name,
        "Labels": {pl.POD_LABEL: name, pl.INFRA_LABEL: "true", pl.SHARE_LABEL: ",".join(share),
                   **{pl.POD_LABELS_PREFIX + k: v for k, v in user_labels.items()}},
        "ExposedPorts": {port: {} for port in bindings},
        "HostConfig": {"NetworkMode": "bridge", "PortBindings": bindings,
                       "RestartPolicy": {"Name": "unless-stopped"}},
    }
    created = cli.client.post("/containers/create", {"name": f"{name}-infra"}, body)
    cid = str(created["Id"])
    try:
        cli.client.post(f"/containers/{cid}/start")
    except BaseException:
        cli.client.delete(f"/containers/{cid}", {"force": True})
        raise
    cli.out(cid)
    return 0


def _inspect(pod: Pod) -> dict[str, Any]:
    from supervisor.pods.labels import POD_LABELS_PREFIX, SHARE_LABEL

    infra = pod.infra or {}
    labels = infra.get("Labels") or {}
    ports = [{"HostIp": p.get("IP", ""), "HostPort": p.get("PublicPort"),
              "ContainerPort": p.get("PrivatePort"), "Protocol": p.get("Type")}
             for p in infra.get("Ports") or [] if p.get("PublicPort")]
    return {
        "Id": infra.get("Id", ""), "Name": pod.name, "State": pod.phase,
        "InfraContainerID": infra.get("Id", ""),
        "InfraState": infra.get("State", ""),
        "Labels": {k[len(POD_LABELS_PREFIX):]: v for k, v in labels.items()
                   if k.startswith(POD_LABELS_PREFIX)},
        "SharedNamespaces": str(labels.get(SHARE_LABEL) or "net,ipc,uts").split(","),
        "Ports": ports,
        "Ready": bool(pod.members) and all(_ready(c) for c in pod.members),
        "Containers": [{"Id": c.get("Id"), "Name": _name(c), "State": c.get("State"),
                        "Status": c.get("Status"), "Ready": _ready(c)} for c in pod.members],
    }


def _ready(c: Mapping[str, Any]) -> bool:
    """Kubernetes' container readiness: running, and its readiness probe (its health
    on corral) passed, when it has one."""
    status = str(c.get("Status") or "")
    return c.get("State") == "running" and not status.endswith(
        ("(unhealthy)", "(health: starting)"))


def _start(cli: Cli, pod: Pod) -> None:
    for c in _infra(pod) + pod.members:
        if c.get("State") not in _ACTIVE:
            cli.client.post(f"/containers/{c['Id']}/start")


def _stop(cli: Cli, pod: Pod, query: dict[str, Any] | None) -> None:
    for c in pod.members + _infra(pod):
        if c.get("State") in _ACTIVE:
            cli.client.post(f"/containers/{c['Id']}/stop", query)


def _each(cli: Cli, pods: list[Pod], action: str, states: tuple[str, ...],
          query: dict[str, Any] | None = None) -> None:
    for pod in pods:
        for c in pod.members + _infra(pod):
            if c.get("State") in states:
                cli.client.post(f"/containers/{c['Id']}/{action}", query)
        cli.out(pod.name)


def _top(cli: Cli, pod: Pod, ps: list[str]) -> int:
    query = {"ps_args": " ".join(ps)} if ps else None
    titles: list[str] = []
    rows: list[list[str]] = []
    for c in _infra(pod) + pod.members:
        if c.get("State") not in ("running", "paused"):
            continue
        body = cli.client.get(f"/containers/{c['Id']}/top", query) or {}
        titles = titles or list(body.get("Titles") or [])
        rows += [[_name(c), *map(str, r)] for r in body.get("Processes") or []]
    if not titles:
        raise CliError(f"pod {pod.name} is not running")
    table = ["\t".join(["CONTAINER", *titles])] + ["\t".join(r) for r in rows]
    cli.stdout.write(fmt.tabwrite("\n".join(table) + "\n"))
    return 0


def _logs(cli: Cli, pod: Pod, p: Any) -> int:
    from supervisor.cli.compose import _api, _run_async
    from supervisor.cli.compose_logs import stream_logs

    api = _api(cli)

    async def run() -> int:
        await stream_logs(api, [(str(c["Id"]), _name(c)) for c in pod.members], cli.bout,
                          follow=p["follow"], tail=p["tail"], timestamps=p["timestamps"],
                          color=cli.stdout.isatty())
        return 0

    return _run_async(cli, run)


def cmd_pod(cli: Cli, argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        cli.stdout.write(HELP)
        return 0
    sub = {"list": "ls", "ps": "ls", "remove": "rm"}.get(argv[0], argv[0])
    rest = argv[1:]
    if sub == "create":
        return create(cli, rest)
    if sub == "ls":
        p = parse(LS, rest)
        by_name = _pods(cli)
        if p["quiet"]:
            for name in by_name:
                cli.out(name)
            return 0
        rows = ["POD ID\tNAME\tSTATUS\tINFRA ID\t# OF CONTAINERS"]
        for pod in by_name.values():
            infra = str((pod.infra or {}).get("Id", ""))[:12]
            rows.append(f"{infra}\t{pod.name}\t{pod.phase}\t{infra}\t{len(pod.members)}")
        cli.stdout.write(fmt.tabwrite("\n".join(rows) + "\n"))
        return 0
    if sub == "inspect":
        found = _find(_pods(cli), parse(INSPECT, rest).args)
        cli.out(json.dumps([_inspect(pod) for pod in found], indent=4))
        return 0
    if sub == "start":
        for pod in _find(_pods(cli), parse(START, rest).args):
            _start(cli, pod)
            cli.out(pod.name)
        return 0
    if sub in ("stop", "restart"):
        p = parse(STOP if sub == "stop" else RESTART, rest)
        query = {"t": p["time"]} if p["time"] is not None else None
        for pod in _find(_pods(cli), p.args):
            _stop(cli, pod, query)
            if sub == "restart":
                _start(cli, _find(_pods(cli), [pod.name])[0])
            cli.out(pod.name)
        return 0
    if sub == "kill":
        p = parse(KILL, rest)
        _each(cli, _find(_pods(cli), p.args), "kill", ("running",), {"signal": p["signal"]})
        return 0
    if sub in ("pause", "unpause"):
        p = parse(PAUSE if sub == "pause" else UNPAUSE, rest)
        _each(cli, _find(_pods(cli), p.args), sub, ("running",) if sub == "pause" else ("paused",))
        return 0
    if sub == "top":
        p = parse(TOP, rest)
        return _top(cli, _find(_pods(cli), p.args[:1])[0], p.args[1:])
    if sub == "logs":
        p = parse(LOGS, rest)
        return _logs(cli, _find(_pods(cli), p.args)[0], p)
    if sub == "rm":
        p = parse(RM, rest)
        chosen = _find(_pods(cli), p.args)
        if not p["force"]:
            for pod in chosen:
                if any(c.get("State") in _ACTIVE for c in pod.members):
                    raise CliError(f"pod {pod.name} is running: stop it first or use -f")
        for pod in chosen:
            for c in pod.members + _infra(pod):
                cli.client.delete(f"/containers/{c['Id']}", {"force": True, "v": True})
            cli.out(pod.name)
        return 0
    raise CliError(f"'pod {argv[0]}' is not a corral command.\nSee 'corral pod --help'")
