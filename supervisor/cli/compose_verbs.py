"""compose v2's other verbs: run, rm, kill, pause, unpause, ls, port, top, events,
create, wait, version, scale (`corral compose VERB`; wired in `compose.py`).

Each works on the project's containers as compose finds them, by their labels; the
one-off containers of `run` (label `com.docker.compose.oneoff=True`) are left to `rm`,
`down` and `ls`, as compose does.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shlex
import sys
from typing import TYPE_CHECKING, Any

from supervisor.api.client import ApiError
from supervisor.cli.context import CliError
from supervisor.cli.parser import Command, Opt, UsageError, parse

if TYPE_CHECKING:
    from config.model import Project
    from config.reconcile import Observed
    from supervisor.cli.compose import Globals
    from supervisor.cli.context import Cli

# The compose v2 release whose behaviour corral's compose follows.
COMPOSE_VERSION = "2.29.0"


def _compose() -> Any:
    from supervisor.cli import compose

    return compose


def _containers(
    cli: Cli, project: Project, services: list[str], *, all_: bool = True, oneoff: bool = False
) -> list[Observed]:
    return list(_compose().containers(cli, project, services, all_=all_, oneoff=oneoff))


# -- run -------------------------------------------------------------------------------

RUN = Command(
    "compose run",
    "corral compose run [OPTIONS] SERVICE [COMMAND] [ARGS...]",
    "Run a one-off command on a service",
    (
        Opt("detach", "d", help="Run container in background and print container ID"),
        Opt("rm", help="Automatically remove the container when it exits"),
        Opt("env", "e", "list", help="Set environment variables"),
        Opt("label", "l", "list", help="Add or override a label"),
        Opt("name", kind="str", help="Assign a name to the container"),
        Opt("entrypoint", kind="str", help="Override the entrypoint of the image"),
        Opt("user", "u", "str", help="Run as specified username or uid"),
        Opt("workdir", "w", "str", help="Working directory inside the container"),
        Opt("volume", "v", "list", help="Bind mount a volume"),
        Opt("service-ports", help="Run command with the service's ports mapped to the host"),
        Opt("no-deps", help="Don't start linked services"),
        Opt("no-TTY", "T", help="Disable pseudo-TTY allocation (default: auto-detected)"),
        Opt("tty", "t", help="Allocate a pseudo-TTY"),
        Opt("interactive", "i", default=True, help="Keep STDIN open even if not attached"),
        Opt("publish", "p", "list", help="Publish a container's port(s) to the host"),
        Opt("build", help="Build image before starting container"),
        Opt("quiet-pull", help="Pull without printing progress information (corral never pulls)"),
        Opt("remove-orphans", help="Remove containers for services not defined in the file"),
        Opt("cap-add", kind="list", help="Add Linux capabilities"),
        Opt("cap-drop", kind="list", help="Drop Linux capabilities"),
    ),
    min_args=1,
    interspersed=False,
)


def compose_run(cli: Cli, g: Globals, argv: list[str]) -> int:

    from config.container import RunOptions, injected_files, run_body
    from config.graph import with_dependencies
    from config.reconcile import UpOptions
    from supervisor.cli.compose_build import build_for_up
    from supervisor.cli.containers import _start_or_fail, attach_and_run, create_container
    from supervisor.cli.flags import parse_env, parse_publish
    from supervisor.compose.applier import Applier

    p = parse(RUN, argv)
    if p["tty"] and p["no_TTY"]:
        raise UsageError("-t and -T cannot be combined", 1)
    publish: list[tuple[str, dict[str, str]]] = []
    for spec in p["publish"]:
        try:
            publish += parse_publish(spec)
        except ValueError as exc:
            raise UsageError(f'invalid argument "{spec}" for "-p, --publish" flag: {exc}', 1
                             ) from None
    c = _compose()
    project = c.load(cli, g)
    service, *command = p.args
    if service not in project.services:
        raise CliError(f"no such service: {service}")
    env: dict[str, str] = {}
    for item in p["env"]:
        value = parse_env(item, cli.environ)
        if value is not None:
            k, _, v = value.partition("=")
            env[k] = v
    try:
        entrypoint = shlex.split(p["entrypoint"]) if p["entrypoint"] is not None else None
    except ValueError as exc:
        raise UsageError(f"invalid --entrypoint: {exc}", 1) from None
    labels = {}
    for item in p["label"]:
        k, _, v = item.partition("=")
        labels[k] = v
    svc = project.services[service]
    if p["cap_add"] or p["cap_drop"]:
        add, drop = list(svc.get("cap_add") or []), list(svc.get("cap_drop") or [])
        add = [x for x in add if x not in p["cap_drop"]] + list(p["cap_add"])
        drop = [x for x in drop if x not in p["cap_add"]] + list(p["cap_drop"])
        project.services[service] = {**svc, "cap_add": add, "cap_drop": drop}
    deps = sorted(with_dependencies(project.graph(), [service]) - {service})
    if p["no_deps"]:
        deps = []
    api: Any = c._api(cli)
    if g.dry_run:  # compose's dry-run client: the deps' plan said, the one-off made up
        from supervisor.cli.compose_build import buildable, image_missing
        from supervisor.compose.engine import DryRunEngine

        api = DryRunEngine(api)
        for name in buildable(project, [*deps, service]):
            if p["build"] or image_missing(cli, project, name):
                c._say(cli, True)(f" Service {name}  Building")
    else:
        build_for_up(cli, project, [*deps, service], build=p["build"], no_build=False)
    applier = Applier(api, c._say(cli, g.dry_run))
    found: dict[str, Any] = {}

    async def prepare() -> int:
        await applier.ensure_networks(project)
        await applier.ensure_volumes(project)
        if deps:
            await applier.up(
                project, UpOptions(services=deps, remove_orphans=p["remove_orphans"])
            )
            for dep, spec in (svc.get("depends_on") or {}).items():
                ids = [o.id for o in await applier.observe(project.name)
                       if o.service == dep and not o.oneoff]
                await applier.wait_condition(dep, str(spec.get("condition")), ids)
        mode = str(svc.get("network_mode") or "")
        if mode.startswith("service:"):
            peers = [o for o in await applier.observe(project.name) if o.service == mode[8:]]
            if not peers:
                from supervisor.compose.applier import ComposeError

                raise ComposeError(
                    f'service "{service}" shares the network of "{mode[8:]}", '
                    "which has no container"
                )
            found["network_mode"] = f"container:{peers[0].id}"
        found["networks"] = await applier._networks_api()
        return 0

    if c._run_async(cli, prepare):
        return 1
    opts = RunOptions(
        command=command,
        entrypoint=entrypoint,
        environment=env,
        user=p["user"] or "",
        workdir=p["workdir"] or "",
        volumes=list(p["volume"]),
        labels=labels,
        name=p["name"] or "",
        service_ports=p["service_ports"],
        auto_remove=p["rm"],
        interactive=bool(p["interactive"]) and not p["detach"],
        # compose v2: a TTY unless -T, when its output is a terminal (or -t / `tty:`)
        tty=not p["no_TTY"] and bool(
            p["tty"] or svc.get("tty")
            or (sys.stdout.isatty() and (p["detach"] or sys.stdin.isatty()))
        ),
        publish=publish,
    )
    name, body = run_body(
        project,
        service,
        secrets.token_hex(32),
        opts,
        networks_supported=bool(found["networks"]),
        network_mode=found.get("network_mode"),
    )
    try:
        files = injected_files(project, service)
    except ValueError as exc:
        raise CliError(f'service "{service}": {exc}') from None
    if g.dry_run:  # created under its name as the id, started; nothing can attach
        if not p["detach"]:
            raise CliError("interactive run is not supported in dry-run mode")
        cli.out(name)
        return 0
    cid = create_container(cli, name, body)
    if files:
        from supervisor.compose.applier import secrets_tar

        try:
            cli.client.request(
                "PUT", f"/containers/{cid}/archive", {"path": "/"}, body=secrets_tar(files),
                headers={"Content-Type": "application/x-tar"},
            ).read()
        except (OSError, ApiError) as exc:
            cli.client.request("DELETE", f"/containers/{cid}", {"force": True}).read()
            raise CliError(f'service "{service}": cannot copy its secrets/configs in: '
                           f"{getattr(exc, 'message', None) or exc}") from None
    if p["detach"]:
        _start_or_fail(cli, cid, remove_on_failure=True)
        cli.out(name)
        return 0
    return attach_and_run(
        cli, cid, stdin=opts.interactive, auto_remove=opts.auto_remove, remove_on_failure=True,
        tty=opts.tty,
    )


# -- rm / kill / pause / unpause -------------------------------------------------------

RM = Command(
    "compose rm",
    "corral compose rm [OPTIONS] [SERVICE...]",
    "Removes stopped service containers",
    (
        Opt("force", "f", help="Don't ask to confirm removal"),
        Opt("stop", "s", help="Stop the containers, if required, before removing"),
        Opt("volumes", "v", help="Remove any anonymous volumes attached to containers"),
    ),
)


def compose_rm(cli: Cli, g: Globals, argv: list[str]) -> int:
    p = parse(RM, argv)
    project = _compose().load(cli, g)
    chosen = _containers(cli, project, list(p.args), oneoff=True)
    if g.dry_run:  # what rm would stop and remove (no prompt: nothing is removed)
        for o in [o for o in chosen if o.running and p["stop"]][::-1]:
            cli.err(f"DRY-RUN MODE -  Container {o.name}  Stopped")
        for o in [o for o in chosen if p["stop"] or not o.running]:
            cli.err(f"DRY-RUN MODE -  Container {o.name}  Removed")
        return 0
    if p["stop"]:
        for o in [o for o in chosen if o.running][::-1]:
            cli.err(f" Container {o.name}  Stopping")
            cli.client.request("POST", f"/containers/{o.id}/stop").read()
            cli.err(f" Container {o.name}  Stopped")
        chosen = _containers(cli, project, list(p.args), oneoff=True)
    stopped = [o for o in chosen if not o.running]
    if not stopped:
        cli.err("No stopped containers")
        return 0
    if not p["force"]:
        cli.stderr.write(f"? Going to remove {', '.join(o.name for o in stopped)} [y/N] ")
        cli.stderr.flush()
        answer = sys.stdin.readline().strip().lower()
        if answer not in ("y", "yes"):
            return 0
    failed = False
    for o in stopped:
        try:
            cli.client.request(
                "DELETE", f"/containers/{o.id}", {"v": True if p["volumes"] else None}
            ).read()
        except ApiError as exc:
            cli.err(f"corral: {o.name}: {exc.message}")
            failed = True
            continue
        cli.err(f" Container {o.name}  Removed")
    return 1 if failed else 0


KILL = Command(
    "compose kill",
    "corral compose kill [OPTIONS] [SERVICE...]",
    "Force stop service containers",
    (
        Opt("signal", "s", "str", default="SIGKILL", help="SIGNAL to send to the container"),
        Opt("remove-orphans", help="Remove containers for services not defined in the file"),
    ),
)


def compose_kill(cli: Cli, g: Globals, argv: list[str]) -> int:
    p = parse(KILL, argv)
    c = _compose()
    project = c.load(cli, g)
    chosen = [o for o in _containers(cli, project, list(p.args)) if o.running]
    failed = c.each_container(cli, chosen[::-1], "kill", "Killed", {"signal": p["signal"]},
                              dry_run=g.dry_run)
    if p["remove_orphans"]:
        for o in c._observe(cli, project.name):
            if o.service not in project.services and not o.oneoff and g.dry_run:
                cli.err(f"DRY-RUN MODE -  Container {o.name}  Removed")
            elif o.service not in project.services and not o.oneoff:
                cli.client.request("DELETE", f"/containers/{o.id}", {"force": True}).read()
                cli.err(f" Container {o.name}  Removed")
    return 1 if failed else 0


def _pause_like(verb: str, summary: str) -> Any:
    cmd = Command(f"compose {verb}", f"corral compose {verb} [SERVICE...]", summary)
    done = "Paused" if verb == "pause" else "Unpaused"

    def run(cli: Cli, g: Globals, argv: list[str]) -> int:
        p = parse(cmd, argv)
        project = _compose().load(cli, g)
        wanted = "running" if verb == "pause" else "paused"
        chosen = [o for o in _containers(cli, project, list(p.args)) if o.state == wanted]
        return int(_compose().each_container(cli, chosen, verb, done, dry_run=g.dry_run))

    return run


# -- ls --------------------------------------------------------------------------------

LS = Command(
    "compose ls",
    "corral compose ls [OPTIONS]",
    "List running compose projects",
    (
        Opt("all", "a", help="Show all stopped Compose projects"),
        Opt("quiet", "q", help="Only display project names"),
        Opt("format", kind="str", default="table", help="Format the output: table or json"),
        Opt("filter", kind="list", help="Filter output based on conditions provided (name=)"),
    ),
    max_args=0,
)


def projects(summaries: list[dict[str, Any]], all_: bool) -> list[dict[str, str]]:
    """compose ls's rows from container summaries (pure): each project's states counted
    (`running(2), exited(1)`, states sorted) and its config files; without `all_`, only
    projects with a running container."""
    from config.reconcile import CONFIG_FILES, PROJECT

    states: dict[str, dict[str, int]] = {}
    files: dict[str, list[str]] = {}
    for c in summaries:
        labels = c.get("Labels") or {}
        name = str(labels.get(PROJECT, ""))
        if not name:
            continue
        state = str(c.get("State", ""))
        counts = states.setdefault(name, {})
        counts[state] = counts.get(state, 0) + 1
        for f in str(labels.get(CONFIG_FILES, "")).split(","):
            if f and f not in files.setdefault(name, []):
                files[name].append(f)
    rows = []
    for name in sorted(states):
        counts = states[name]
        if not all_ and not counts.get("running"):
            continue
        status = ", ".join(f"{s}({n})" for s, n in sorted(counts.items()))
        rows.append({"Name": name, "Status": status, "ConfigFiles": ",".join(files.get(name, []))})
    return rows


def compose_ls(cli: Cli, g: Globals, argv: list[str]) -> int:
    from config.reconcile import PROJECT
    from supervisor.cli import format as fmt

    p = parse(LS, argv)
    names: list[str] = []
    for f in p["filter"]:
        key, eq, value = f.partition("=")
        if key != "name" or not eq:
            raise UsageError(f"invalid filter {f!r}: only name=NAME is supported", 1)
        names.append(value)
    if p["format"] not in ("table", "json"):
        raise UsageError(f"unsupported format {p['format']!r}: table or json", 1)
    found = cli.client.get(
        "/containers/json", {"all": True, "filters": json.dumps({"label": [PROJECT]})}
    )
    rows = [r for r in projects(found or [], p["all"]) if not names or r["Name"] in names]
    if p["quiet"]:
        for r in rows:
            cli.out(r["Name"])
    elif p["format"] == "json":
        cli.out(json.dumps(rows))
    else:
        table = [["NAME", "STATUS", "CONFIG FILES"]]
        table += [[r["Name"], r["Status"], r["ConfigFiles"]] for r in rows]
        cli.stdout.write(fmt.table(table))
    return 0


# -- port / top ------------------------------------------------------------------------

PORT = Command(
    "compose port",
    "corral compose port [OPTIONS] SERVICE PRIVATE_PORT",
    "Print the public port for a port binding",
    (
        Opt("index", kind="int", default=1, help="Index of the container if service has replicas"),
        Opt("protocol", kind="str", default="tcp", help="tcp or udp"),
    ),
    min_args=2,
    max_args=2,
)


def compose_port(cli: Cli, g: Globals, argv: list[str]) -> int:
    from supervisor.cli.containers import port_lines

    p = parse(PORT, argv)
    service, port = p.args
    if p["protocol"] not in ("tcp", "udp", "sctp"):
        raise UsageError(f"invalid protocol {p['protocol']!r}: tcp, udp or sctp", 1)
    project = _compose().load(cli, g)
    chosen = [o for o in _containers(cli, project, [service]) if o.number == p["index"]]
    if not chosen:
        raise CliError(f'service "{service}" has no container number {p["index"]}')
    info = cli.client.get(f"/containers/{chosen[0].id}/json")
    ports = (info.get("NetworkSettings") or {}).get("Ports") or {}
    want = f"{port}/{p['protocol']}"
    lines = list(port_lines(ports, want))
    if not lines:
        raise CliError(f"no port {want} for container {chosen[0].name}")
    cli.out(lines[0])
    return 0


def compose_top(cli: Cli, g: Globals, argv: list[str]) -> int:
    from supervisor.cli import format as fmt

    p = parse(Command("compose top", "corral compose top [SERVICES...]",
                      "Display the running processes"), argv)
    project = _compose().load(cli, g)
    first = True
    for o in [o for o in _containers(cli, project, list(p.args)) if o.running]:
        try:
            top = cli.client.get(f"/containers/{o.id}/top")
        except ApiError as exc:
            if exc.status == 404 and "no such container" not in exc.message.lower():
                raise CliError(
                    "compose top needs the daemon's GET /containers/{id}/top, "
                    "which this daemon does not have yet"
                ) from None
            raise
        if not first:
            cli.out()
        first = False
        cli.out(o.name)
        rows = [list(top.get("Titles") or [])]
        rows += [[str(x) for x in proc] for proc in top.get("Processes") or []]
        cli.stdout.write(fmt.table(rows))
    return 0


# -- events ----------------------------------------------------------------------------

EVENTS = Command(
    "compose events",
    "corral compose events [OPTIONS] [SERVICE...]",
    "Receive real time events from containers",
    (
        Opt("json", help="Output events as a stream of json objects"),
        Opt("since", kind="str", help="Show all events created since timestamp"),
        Opt("until", kind="str", help="Stream events until this timestamp"),
    ),
)


def event_line(event: dict[str, Any], as_json: bool) -> str | None:
    """One container event as compose prints it (pure); None if not a container's."""
    import datetime

    from config.reconcile import SERVICE

    if event.get("Type") != "container":
        return None
    actor = event.get("Actor") or {}
    attrs = {str(k): str(v) for k, v in (actor.get("Attributes") or {}).items()}
    nanos = int(event.get("timeNano") or int(event.get("time") or 0) * 10**9)
    when = datetime.datetime.fromtimestamp(nanos / 1e9, datetime.UTC)
    action = str(event.get("Action") or event.get("status") or "")
    cid = str(actor.get("ID") or event.get("id") or "")
    service = attrs.get(SERVICE, "")
    if as_json:
        return json.dumps({
            "time": when.isoformat(timespec="microseconds").replace("+00:00", "Z"),
            "type": "container", "action": action, "id": cid, "service": service,
            "attributes": {k: v for k, v in attrs.items()
                           if not k.startswith("com.docker.compose.")},
        })
    shown = ", ".join(f"{k}={v}" for k, v in sorted(attrs.items())
                      if not k.startswith("com.docker.compose."))
    stamp = when.strftime("%Y-%m-%d %H:%M:%S.%f")
    return f"{stamp} container {action} {cid} ({shown})"


def compose_events(cli: Cli, g: Globals, argv: list[str]) -> int:
    from config.reconcile import PROJECT, SERVICE

    p = parse(EVENTS, argv)
    c = _compose()
    project = c.load(cli, g)
    for s in p.args:
        if s not in project.services:
            raise CliError(f"no such service: {s}")
    filters = {"type": ["container"], "label": [f"{PROJECT}={project.name}"]}
    query = {"filters": json.dumps(filters), "since": p["since"], "until": p["until"]}
    from supervisor.cli.events import event_stream

    try:
        with contextlib.closing(event_stream(cli, query)) as events:
            for event in events:
                attrs = (event.get("Actor") or {}).get("Attributes") or {}
                if p.args and attrs.get(SERVICE) not in p.args:
                    continue
                line = event_line(event, p["json"])
                if line is not None:
                    cli.out(line)
                    cli.stdout.flush()
    except KeyboardInterrupt:
        return 130
    return 0


# -- wait / version / scale / create ---------------------------------------------------

WAIT = Command(
    "compose wait",
    "corral compose wait SERVICE [SERVICE...] [OPTIONS]",
    "Block until containers of all (or specified) services stop",
    (Opt("down-project", help="Drops project when the first container stops"),),
    min_args=1,
)


def compose_wait(cli: Cli, g: Globals, argv: list[str]) -> int:
    import trio

    p = parse(WAIT, argv)
    c = _compose()
    project = c.load(cli, g)
    chosen = _containers(cli, project, list(p.args))
    api = c._api(cli)
    codes: list[int] = []

    async def run() -> int:
        async with trio.open_nursery() as nursery:
            for o in chosen:

                async def wait(o: Observed = o) -> None:
                    result = await api.request(
                        "POST", f"/containers/{o.id}/wait", {"condition": "not-running"}
                    )
                    codes.append(int((result or {}).get("StatusCode", 0)))
                    if p["down_project"]:
                        nursery.cancel_scope.cancel()

                nursery.start_soon(wait)
        return 0

    if c._run_async(cli, run):
        return 1
    if p["down_project"]:
        c.compose_down(cli, g, [])
    return codes[0] if codes else 0


def compose_version(cli: Cli, g: Globals, argv: list[str]) -> int:
    p = parse(
        Command(
            "compose version",
            "corral compose version [OPTIONS]",
            "Show the Docker Compose version information",
            (
                Opt("short", help="Shows only Compose's version number"),
                Opt("format", "f", "str", default="pretty",
                    help="Format the output. Values: [pretty | json]"),
            ),
            max_args=0,
        ),
        argv,
    )
    if p["short"]:
        cli.out(COMPOSE_VERSION)
    elif p["format"] == "json":
        cli.out(json.dumps({"version": f"v{COMPOSE_VERSION}"}))
    elif p["format"] in ("pretty", None):
        cli.out(f"corral compose version v{COMPOSE_VERSION} (Docker Compose v2 behaviour)")
    else:
        raise UsageError(f"unsupported format {p['format']!r}: pretty or json", 1)
    return 0


SCALE = Command(
    "compose scale",
    "corral compose scale [SERVICE=REPLICAS...]",
    "Scale services",
    (Opt("no-deps", help="Don't start linked services"),),
    min_args=1,
)


def compose_scale(cli: Cli, g: Globals, argv: list[str]) -> int:
    p = parse(SCALE, argv)
    words = ["-d", "--no-recreate"]
    services = []
    for item in p.args:
        svc, eq, num = item.partition("=")
        if not eq or not num.isdigit():
            raise UsageError(f"invalid scale {item!r}: expected SERVICE=REPLICAS", 1)
        words += ["--scale", item]
        services.append(svc)
    if p["no_deps"]:
        words.append("--no-deps")
    return int(_compose().compose_up(cli, g, [*words, *services]))


CREATE = Command(
    "compose create",
    "corral compose create [OPTIONS] [SERVICE...]",
    "Creates containers for a service",
    (
        Opt("build", help="Build images before starting containers"),
        Opt("no-build", help="Don't build an image, even if it's missing"),
        Opt("force-recreate", help="Recreate containers even if nothing changed"),
        Opt("no-recreate", help="If containers already exist, don't recreate them"),
        Opt("remove-orphans", help="Remove containers for services not defined in the file"),
        Opt("scale", kind="list", help="Scale SERVICE to NUM instances"),
    ),
)


def compose_create(cli: Cli, g: Globals, argv: list[str]) -> int:
    p = parse(CREATE, argv)
    words = ["--no-start"]
    for flag in ("build", "no_build", "force_recreate", "no_recreate", "remove_orphans"):
        if p[flag]:
            words.append("--" + flag.replace("_", "-"))
    for item in p["scale"]:
        words += ["--scale", item]
    return int(_compose().compose_up(cli, g, [*words, *p.args]))


WATCH = Command(
    "compose watch",
    "corral compose watch [SERVICE...]",
    "Watch build context for service and rebuild/refresh containers when files are updated",
    (
        Opt("no-up", help="Do not build & start services before watching"),
        Opt("prune", default=True, help="Prune dangling images on rebuild"),
        Opt("quiet", help="hide build output"),
    ),
)


def compose_watch(cli: Cli, g: Globals, argv: list[str]) -> int:
    p = parse(WATCH, argv)
    c = _compose()
    project = c.load(cli, g)
    return int(c.run_watch(cli, project, list(p.args), up=not p["no_up"], prune=p["prune"],
                           dry_run=g.dry_run))


# -- cp / attach -------------------------------------------------------------------------

CP = Command(
    "compose cp",
    "corral compose cp [OPTIONS] SERVICE:SRC_PATH DEST_PATH|-\n\t"
    "corral compose cp [OPTIONS] SRC_PATH|- SERVICE:DEST_PATH",
    "Copy files/folders between a service container and the local filesystem",
    (
        Opt("all", help="Include containers created by the run command"),
        Opt("archive", "a", help="Archive mode (copy all uid/gid information)"),
        Opt("follow-link", "L", help="Always follow symbol link in SRC_PATH"),
        Opt("index", kind="int", help="Index of the container if service has multiple replicas"),
    ),
    min_args=2,
    max_args=2,
)


def compose_cp(cli: Cli, g: Globals, argv: list[str]) -> int:
    """compose v2: SERVICE:PATH names the service's container `--index` (default 1); a
    copy *into* a service goes to each of its containers unless `--index` is given."""
    from supervisor.cli.cp import cmd_cp, split_cp_arg

    p = parse(CP, argv)
    src, dst = p.args
    (s_svc, s_path), (d_svc, d_path) = split_cp_arg(src), split_cp_arg(dst)
    if bool(s_svc) == bool(d_svc):
        raise CliError(
            "copying between services is not supported" if s_svc
            else "must specify at least one container source", 1
        )
    service = s_svc or d_svc
    project = _compose().load(cli, g)
    if service not in project.services:
        raise CliError(f"no such service: {service}")
    found = _containers(cli, project, [service], oneoff=p["all"])
    if p["index"] is not None:
        found = [o for o in found if o.number == p["index"] and not o.oneoff]
    elif s_svc:
        found = [o for o in found if o.number == 1 and not o.oneoff] or found[:1]
    if not found:
        suffix = f" with index {p['index']}" if p["index"] is not None else ""
        raise CliError(f'no container found for service "{service}"{suffix}')
    if g.dry_run:
        return _dry_cp(cli, found, src, s_svc and s_path, d_path)
    flags = [f for f, on in (("-a", p["archive"]), ("-L", p["follow_link"])) if on]
    code = 0
    for o in found:
        words = [f"{o.id}:{s_path}", dst] if s_svc else [src, f"{o.id}:{d_path}"]
        code = max(code, int(cmd_cp(cli, [*flags, *words])))
    return code


def _dry_cp(cli: Cli, found: list[Observed], src: str, s_path: str, d_path: str) -> int:
    """`--dry-run cp`, as compose's dry-run client: a copy into a service checks the
    local source, one out of it that the path exists in the container (read, nothing
    written); compose's progress line for each container."""
    from supervisor.cli.cp import _stat

    say = _compose()._say(cli, True)
    for o in found:
        if s_path:
            if _stat(cli, o.id, s_path) is None:
                raise CliError(f"could not find the file {s_path} in container {o.name}")
            msg = f"copy {o.name}:{s_path} to {d_path}"
        else:
            if src != "-" and not os.path.lexists(src):
                raise CliError(f'lstat {os.path.abspath(src)}: no such file or directory')
            msg = f"copy {src} to {o.name}:{d_path}"
        say(f" {o.name} {msg} Copied")
    return 0


ATTACH = Command(
    "compose attach",
    "corral compose attach [OPTIONS] SERVICE",
    "Attach local standard input, output, and error streams to a service's running container",
    (
        Opt("detach-keys", kind="str", help="Override the key sequence for detaching from a "
            "container"),
        Opt("index", kind="int", default=1, help="index of the container if service has "
            "multiple replicas"),
        Opt("no-stdin", help="Do not attach STDIN"),
        Opt("sig-proxy", default=True, help="Proxy all received signals to the process"),
    ),
    min_args=1,
    max_args=1,
)


def compose_attach(cli: Cli, g: Globals, argv: list[str]) -> int:
    from supervisor.cli.containers import cmd_attach

    p = parse(ATTACH, argv)
    service = p.args[0]
    project = _compose().load(cli, g)
    if service not in project.services:
        raise CliError(f"no such service: {service}")
    found = [o for o in _containers(cli, project, [service], all_=False)
             if o.number == p["index"]]
    if not found:
        raise CliError(f'service "{service}" is not running container #{p["index"]}')
    words = [] if p["sig_proxy"] else ["--sig-proxy=false"]
    if p["detach_keys"]:
        words += ["--detach-keys", p["detach_keys"]]
    if p["no_stdin"]:
        words.append("--no-stdin")
    return int(cmd_attach(cli, [*words, found[0].id]))
