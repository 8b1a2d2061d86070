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
    Opt("share", kind="str", help="Namespaces to share: net, ipc, uts, pid (default "
        "net,ipc,uts; +pid adds to it)"),
    Opt("shm-size", kind="str", help="Size of the pod's /dev/shm (its ipc is shared)"),
), max_args=1)
LS = Command("pod ls", "corral pod ls [OPTIONS]", "List pods", (
    Opt("filter", "f", "list", help="Filter output based on conditions given "
        "(id, name, label, status)"),
    Opt("format", kind="str", help="Pretty-print pods to JSON or using a Go template"),
    Opt("no-trunc", help="Do not truncate pod and infra IDs"),
    Opt("quiet", "q", help="Print the numeric IDs of the pods only"),
), max_args=0)
INSPECT = Command("pod inspect", "corral pod inspect [OPTIONS] POD [POD...]",
                  "Display detailed information on one or more pods", (
    Opt("format", "f", "str", help="Format the output using a Go template"),
), min_args=1)
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
    raw = p["share"] if p["share"] is not None else ",".join(pl.DEFAULT_SHARE)
    share = [s.strip() for s in raw.lstrip("+").split(",") if s.strip()]
    if raw.startswith("+"):  # podman's: added to the default list
        share = [*pl.DEFAULT_SHARE, *(s for s in share if s not in pl.DEFAULT_SHARE)]
    for ns in share:
        if ns not in pl.SHAREABLE:
            raise CliError(f"--share {ns}: corral pods share only {', '.join(pl.SHAREABLE)}")
    if "net" not in share:
        raise CliError("--share must include net: a pod's ports and localhost are its network's")
    shm: dict[str, int] = {}
    if p["shm_size"] is not None:
        from supervisor.cli.flags import ram_in_bytes

        if "ipc" not in share:  # podman refuses it too: each member has its own /dev/shm
            raise CliError("--shm-size: the pod does not share ipc, so it has no /dev/shm "
                           "of its own: set --shm-size on its containers")
        try:
            shm["ShmSize"] = ram_in_bytes(p["shm_size"])
        except ValueError as exc:
            raise CliError(f"--shm-size {p['shm_size']}: {exc}") from None
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
                       "RestartPolicy": {"Name": "unless-stopped"}, **shm},
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
        "Created": _rfc3339(float(infra.get("Created") or 0)),
        "NumContainers": len(_infra(pod) + pod.members),
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


#: podman's `pod ps` table and the titles of its fields.
LS_TABLE = ("table {{.ID}}\t{{.Name}}\t{{.Status}}\t{{.Created}}\t{{.InfraID}}\t"
            "{{.NumberOfContainers}}")
LS_HEADERS = {"ID": "POD ID", "Name": "NAME", "Status": "STATUS", "Created": "CREATED",
              "InfraID": "INFRA ID", "NumberOfContainers": "# OF CONTAINERS",
              "Labels": "LABELS", "Networks": "NETWORKS", "ContainerNames": "NAMES",
              "ContainerIds": "IDS", "ContainerStatuses": "STATUS", "Namespace": "NAMESPACES"}


def _labels(pod: Pod) -> dict[str, str]:
    from supervisor.pods.labels import POD_LABELS_PREFIX

    labels = (pod.infra or {}).get("Labels") or {}
    return {k[len(POD_LABELS_PREFIX):]: str(v) for k, v in labels.items()
            if k.startswith(POD_LABELS_PREFIX)}


def _pod_record(pod: Pod, trunc: bool, now: float) -> Any:
    """A pod as podman's `pod ps` row (`ListPodReporter`): its fields for templates."""
    from supervisor.cli.govalues import Record
    from supervisor.pods.labels import SHARE_LABEL

    infra = pod.infra or {}
    ident = str(infra.get("Id") or "")
    short = fmt.short_id(ident) if trunc else ident
    every = _infra(pod) + pod.members
    labels = _labels(pod)
    nets = sorted((infra.get("NetworkSettings") or {}).get("Networks") or {})
    fields = {
        "ID": short, "Name": pod.name, "Status": pod.phase,
        "Created": fmt.ago(float(infra.get("Created") or now), now) if infra else "",
        "InfraID": short, "NumberOfContainers": len(every), "Labels": labels,
        "Networks": ",".join(nets),
        "ContainerNames": ",".join(_name(c) for c in every),
        "ContainerIds": ",".join(
            fmt.short_id(str(c.get("Id"))) if trunc else str(c.get("Id")) for c in every),
        "ContainerStatuses": ",".join(str(c.get("State") or "") for c in every),
        "Namespace": str((infra.get("Labels") or {}).get(SHARE_LABEL) or "net,ipc,uts"),
    }
    return Record("entities.ListPodReporter", fields,
                  {"Label": (lambda key: labels.get(key, ""), ("string",))})


def _ls(cli: Cli, argv: list[str]) -> int:
    """podman's `pod ps`: its table, fields, `-q` (IDs), `--no-trunc`, `--filter`."""
    import time

    from supervisor.cli.output import Defaults, RowFormat
    from supervisor.kube.pods import FilterError, check_filters, matches

    p = parse(LS, argv)
    filters: dict[str, list[str]] = {}
    for item in p["filter"]:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise UsageError(f"bad format of filter (expected name=value): {item}")
        filters.setdefault(key.strip().lower(), []).append(value)
    try:
        check_filters(filters)
    except FilterError as exc:
        raise CliError(str(exc), 125) from None
    source = Defaults(LS_TABLE, "{{.ID}}").pick(p["format"], p["quiet"], quiet_wins=True)
    out = RowFormat(source, LS_HEADERS)  # a bad template fails before any request
    now = time.time()
    chosen = [pod for pod in _pods(cli).values() if matches(pod, filters, _labels(pod))]
    cli.stdout.write(out.render(_pod_record(pod, not p["no_trunc"], now) for pod in chosen))
    return 0


def _inspect_cmd(cli: Cli, argv: list[str]) -> int:
    from supervisor.cli.output import ObjectFormat

    p = parse(INSPECT, argv)
    out = ObjectFormat(p["format"])  # parsed before anything is asked
    objects = [_inspect(pod) for pod in _find(_pods(cli), p.args)]
    if out.template is None:
        cli.stdout.write(out.render_all(objects))
        return 0
    for obj in objects:  # podman's Go struct: `{{.ID}}` beside the JSON's `Id`
        cli.stdout.write(out.render({**obj, "ID": obj["Id"]}))
    return 0


def _rfc3339(epoch: float) -> str:
    import datetime

    return datetime.datetime.fromtimestamp(epoch, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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
        return _ls(cli, rest)
    if sub == "inspect":
        return _inspect_cmd(cli, rest)
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
