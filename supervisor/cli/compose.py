"""`corral compose VERB` (and the `corral up` / `corral down` shortcuts).

Flags common to every verb (`-f FILE` repeatable, `-p NAME`, `--profile`,
`--project-directory`) may come before or after the verb, as docker compose accepts
them — except `-f` after `logs`, which there means follow, as in compose. The project
is loaded and checked entirely before anything is sent to the daemon: an invalid file
prints `file:line:col: message` lines and exits 1 with nothing changed.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from supervisor.api.client import ApiError, quote
from supervisor.cli import format as fmt
from supervisor.cli.context import CliError
from supervisor.cli.parser import Command, Opt, UsageError, parse

if TYPE_CHECKING:
    from config.model import Project
    from config.reconcile import Observed, UpOptions
    from supervisor.cli.context import Cli
    from supervisor.compose.client import AsyncApi
    from supervisor.compose.engine import ComposeEngine

VERBS = {
    "up": "Create and start containers",
    "down": "Stop and remove containers, networks",
    "ps": "List containers",
    "logs": "View output from containers",
    "start": "Start services",
    "stop": "Stop services",
    "restart": "Restart service containers",
    "exec": "Execute a command in a running container",
    "config": "Parse, resolve and render compose file in canonical format",
    "images": "List images used by the created containers",
    "pull": "Pull service images",
    "push": "Push service images",
    "build": "Build or rebuild services",
    "run": "Run a one-off command on a service",
    "rm": "Removes stopped service containers",
    "kill": "Force stop service containers",
    "pause": "Pause services",
    "unpause": "Unpause services",
    "ls": "List running compose projects",
    "port": "Print the public port for a port binding",
    "top": "Display the running processes",
    "events": "Receive real time events from containers",
    "create": "Creates containers for a service",
    "wait": "Block until containers of all (or specified) services stop",
    "version": "Show the Docker Compose version information",
    "scale": "Scale services",
    "rollout": "Roll out services again, replica by replica (deploy.update_config)",
    "watch": "Watch build context for service and rebuild/refresh containers when files "
    "are updated",
    "cp": "Copy files/folders between a service container and the local filesystem",
    "attach": "Attach local standard input, output, and error streams to a service's "
    "running container",
}

_GLOBAL_VALUE = {
    "-f": "file",
    "--file": "file",
    "-p": "project_name",
    "--project-name": "project_name",
    "--profile": "profile",
    "--project-directory": "project_directory",
    "--env-file": "env_file",
    "--parallel": "parallel",
    "--progress": "progress",
}
# Global flags corral does not have yet: refused by name, never dropped.
_GLOBAL_REFUSED = ("--compatibility", "--all-resources", "--ansi")
# The verbs `--dry-run` covers (through DryRunEngine); any other is refused by name.
DRY_RUN_VERBS = ("up", "down", "create", "start", "stop", "restart", "kill", "pause",
                 "unpause", "rm", "run", "exec", "build", "cp", "logs", "watch")
PROGRESS = ("auto", "tty", "plain", "json", "quiet")
# `up --abort-on-container-exit`: how long the first exited container's log may take
# to be printed before the rest are stopped (its stream ends as it does: bounded only
# against a daemon that never ends it)
LOG_DRAIN_S = 5.0


class Globals:
    def __init__(self) -> None:
        self.files: list[str] = []
        self.project_name: str | None = None
        self.profiles: list[str] = []
        self.project_directory: str | None = None
        self.env_files: list[str] = []
        self.parallel: int | None = None
        self.progress = "auto"
        self.dry_run = False

    def set(self, key: str, value: str) -> None:
        if key == "env_file":
            self.env_files.append(value)
        elif key == "parallel":
            if not value.lstrip("-").isdigit() or int(value) == 0 or int(value) < -1:
                raise UsageError(f"invalid --parallel {value!r}: a number >= 1, or -1", 1)
            self.parallel = int(value)
        elif key == "progress":
            if value not in PROGRESS:
                raise UsageError(f"unsupported --progress {value!r}: {', '.join(PROGRESS)}", 1)
            self.progress = value
        elif key == "file":
            self.files.append(value)
        elif key == "project_name":
            self.project_name = value
        elif key == "profile":
            self.profiles.append(value)
        else:
            self.project_directory = value


def split_globals(argv: list[str]) -> tuple[Globals, str | None, list[str]]:
    """(global flags, verb, the verb's own words), globals taken from anywhere."""
    g = Globals()
    verb: str | None = None
    rest: list[str] = []
    i = 0
    while i < len(argv):
        word = argv[i]
        i += 1
        if word == "--" or (
            verb in ("exec", "run") and any(not w.startswith("-") for w in rest)
        ):
            rest.append(word)
            rest.extend(argv[i:])
            break
        name, eq, value = word.partition("=")
        if name in _GLOBAL_REFUSED and verb is None:
            raise UsageError(f"{name} is not supported by corral yet", 1)
        if name == "--dry-run":  # a persistent flag: before or after the verb
            g.dry_run = value.lower() not in ("false", "0") if eq else True
            continue
        # after these verbs `-f` is their own (follow, force, format), as in compose
        own_f = verb in ("logs", "rm", "version") and name in ("-f",)
        own_f = own_f or (verb == "run" and name == "-p")  # run's -p is --publish
        if name in _GLOBAL_VALUE and not own_f:
            if not eq:
                if i >= len(argv):
                    raise UsageError(f"flag needs an argument: {name}")
                value = argv[i]
                i += 1
            g.set(_GLOBAL_VALUE[name], value)
            continue
        if (
            len(name) > 2
            and name[:2] in ("-f", "-p")
            and not name.startswith("--")
            and not own_f
            and verb not in ("logs", "rm", "version")
            and not (verb == "run" and name[:2] == "-p")
        ):
            g.set(_GLOBAL_VALUE[name[:2]], word[2:])
            continue
        if verb is None and not word.startswith("-"):
            verb = word
            continue
        if verb is None:
            if word in ("-h", "--help"):
                return g, "help", []
            raise UsageError(f"unknown flag: {word}")
        rest.append(word)
    return g, verb, rest


def usage() -> str:
    lines = [
        "",
        "Usage:  corral compose [OPTIONS] COMMAND",
        "",
        "Define and run multi-container applications (compose files)",
        "",
        "Options:",
        "  -f, --file stringArray          Compose configuration files",
        "  -p, --project-name string       Project name",
        "      --profile stringArray       Specify a profile to enable",
        "      --project-directory string  Alternate working directory",
        "      --env-file stringArray      Specify an alternate environment file",
        "      --parallel int              Control max parallelism, -1 for unlimited",
        "      --progress string           Set type of progress output (auto, tty, plain, quiet)",
        "",
        "Commands:",
    ]
    lines += [f"  {v.ljust(10)}{text}" for v, text in VERBS.items()]
    return "\n".join([*lines, ""]) + "\n"


def load(cli: Cli, g: Globals) -> Project:
    """The whole project, checked; problems become `file:line:col: message` + exit 1."""
    from config.errors import ConfigError
    from config.project import load_project

    try:
        project = load_project(
            g.files,
            project_name=g.project_name,
            environ=cli.environ,
            project_dir=g.project_directory,
            profiles=g.profiles,
            env_files=g.env_files,
        )
    except ConfigError as exc:
        for problem in exc.problems:
            cli.err(str(problem))
        raise CliError("invalid compose project: nothing was changed") from None
    for warning in project.warnings:
        cli.err(f"WARNING: {warning}")
    return project


def cmd_compose(cli: Cli, argv: list[str]) -> int:
    g, verb, rest = split_globals(argv)
    if verb in (None, "help"):
        cli.stdout.write(usage())
        return 0
    if g.parallel is not None:  # read by compose.applier.parallel_limit, as the variable
        os.environ["COMPOSE_PARALLEL_LIMIT"] = str(g.parallel if g.parallel > 0 else 1 << 20)
    if g.progress == "quiet":
        _quiet_progress(cli)
    elif g.progress == "json":
        _json_progress(cli)
    handler = _HANDLERS.get(verb)
    if handler is None:
        raise UsageError(f"unknown compose command: {verb!r}\nSee 'corral compose --help'.", 1)
    if g.dry_run and verb not in DRY_RUN_VERBS:
        raise UsageError(
            f"--dry-run is not supported by corral's compose {verb} yet "
            f"(only {', '.join(DRY_RUN_VERBS)})", 1
        )
    return int(handler(cli, g, rest))


def _quiet_progress(cli: Cli) -> None:
    """`--progress quiet`: progress lines (` Container x  Started`, which begin with a
    space, as compose's do) are not printed; warnings and errors still are."""
    say = cli.err

    def err(text: str) -> None:
        if not text.startswith(" "):
            say(text)

    cli.err = err  # type: ignore[method-assign]


def progress_json(text: str) -> str | None:
    """`--progress json`: one progress line as compose's JSON writer prints it (pure):
    ` Container x  Started` → {"id": "Container x", "text": "Started"}, a dry run's
    marked `"dry-run": true`; a warning is a `"tail"` message; errors (`corral: ...`)
    stay as they are (None)."""
    dry = text.startswith("DRY-RUN MODE - ")
    body = text.removeprefix("DRY-RUN MODE - ")
    if body.startswith("corral: "):
        return None
    msg: dict[str, Any] = {"dry-run": True} if dry else {}
    ident, sep, status = body.strip().rpartition("  ")
    if body.startswith(" ") and sep:
        msg.update(id=ident.strip(), text=status.strip())
    else:
        msg.update(tail=True, text=body.strip())
    return json.dumps(msg, separators=(",", ":"))


def _json_progress(cli: Cli) -> None:
    say = cli.err

    def err(text: str) -> None:
        line = progress_json(text)
        say(text if line is None else line)

    cli.err = err  # type: ignore[method-assign]


def cmd_up(cli: Cli, argv: list[str]) -> int:
    return cmd_compose(cli, ["up", *argv])


def cmd_down(cli: Cli, argv: list[str]) -> int:
    return cmd_compose(cli, ["down", *argv])


# -- helpers ---------------------------------------------------------------------------


def _api(cli: Cli) -> AsyncApi:
    from supervisor.compose.client import AsyncApi

    cli.client.request("GET", "/_ping").read()  # starts the daemon if none answers
    return AsyncApi(cli.client.path)


def _observe(cli: Cli, name: str, all_: bool = True) -> list[Observed]:
    from config.reconcile import PROJECT, Observed

    filters = json.dumps({"label": [f"{PROJECT}={name}"]})
    found = cli.client.get("/containers/json", {"all": all_ or None, "filters": filters})
    return [Observed.from_summary(c) for c in found or []]


def _select(project: Project, observed: list[Observed], services: list[str]) -> list[Observed]:
    unknown = [s for s in services if s not in project.services]
    if unknown:
        raise CliError(f"no such service: {unknown[0]}")
    order = {s: i for i, s in enumerate(project.order())}
    chosen = [c for c in observed if (not services or c.service in services) and not c.oneoff]
    return sorted(chosen, key=lambda c: (order.get(c.service, -1), c.number))


def containers(
    cli: Cli, project: Project, services: list[str], *, all_: bool = True, oneoff: bool = False
) -> list[Observed]:
    """The project's containers of `services` (all if empty), in start order; one-off
    ones too when `oneoff`: what every per-container verb acts on."""
    observed = _observe(cli, project.name, all_)
    chosen = _select(project, observed, services)
    if oneoff:
        chosen += [o for o in observed if o.oneoff and (not services or o.service in services)]
    return chosen


def each_container(
    cli: Cli,
    chosen: list[Observed],
    verb: str,
    done: str,
    query: dict[str, Any] | None = None,
    *,
    name_errors: bool = False,
    dry_run: bool = False,
) -> int:
    """`POST /containers/{id}/{verb}` to each of `chosen` in turn, compose's progress
    line for each; a failure is reported and the others still acted on (exit 1).
    `dry_run`: the lines only."""
    failed = False
    for o in chosen:
        if dry_run:
            cli.err(f"DRY-RUN MODE -  Container {o.name}  {done}")
            continue
        try:
            cli.client.request("POST", f"/containers/{o.id}/{verb}", query).read()
        except ApiError as exc:
            cli.err(
                f"corral: {o.name}: {exc.message}"
                if name_errors
                else f"corral: Error response from daemon: {exc.message}"
            )
            failed = True
            continue
        cli.err(f" Container {o.name}  {done}")
    return 1 if failed else 0


def _run_async(cli: Cli, fn: Callable[[], Awaitable[int]]) -> int:
    """trio.run with failures reported as one line each (not a traceback of groups)."""
    import trio

    from supervisor.compose.applier import ComposeError

    try:
        return int(trio.run(fn))
    except BaseException as exc:  # noqa: BLE001 - re-raised unless it is ours to report
        leaves = _leaves(exc)
        for leaf in leaves:
            if isinstance(leaf, ComposeError):
                cli.err(f"corral: {leaf}")
            elif isinstance(leaf, ApiError):
                cli.err(f"corral: Error response from daemon: {leaf.message}")
            else:
                raise
        return 1


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for e in exc.exceptions for leaf in _leaves(e)]
    return [exc]


def _say(cli: Cli, dry_run: bool = False) -> Any:
    def say(text: str) -> None:
        cli.err(f"DRY-RUN MODE - {text}" if dry_run else text)

    return say


def _engine(cli: Cli, g: Globals) -> Any:
    """The engine a verb drives: the daemon's, or under `--dry-run` one that only reads."""
    from supervisor.compose.engine import DryRunEngine

    api = _api(cli)
    return DryRunEngine(api) if g.dry_run else api


# -- up / down -------------------------------------------------------------------------

UP = Command(
    "compose up",
    "corral compose up [OPTIONS] [SERVICE...]",
    "Create and start containers",
    (
        Opt("detach", "d", help="Detached mode: Run containers in the background"),
        Opt("scale", kind="list", help="Scale SERVICE to NUM instances (SERVICE=NUM)"),
        Opt("remove-orphans", help="Remove containers for services not defined in the file"),
        Opt("force-recreate", help="Recreate containers even if nothing changed"),
        Opt("no-recreate", help="If containers already exist, don't recreate them"),
        Opt("no-color", help="Produce monochrome output"),
        Opt("no-log-prefix", help="Don't print prefix in logs"),
        Opt("timeout", "t", "int", help="Shutdown timeout in seconds"),
        Opt("build", help="Build images before starting containers"),
        Opt("no-build", help="Don't build an image, even if it's missing"),
        Opt("no-deps", help="Don't start linked services"),
        Opt("no-start", help="Don't start the services after creating them"),
        Opt("wait", help="Wait for services to be running|healthy. Implies detached mode."),
        Opt("wait-timeout", kind="int", help="Maximum duration in seconds to wait"),
        Opt("abort-on-container-exit", help="Stops all containers if any container was stopped"),
        Opt("abort-on-container-failure", help="Stops all containers if any container exited "
            "with failure"),
        Opt("exit-code-from", kind="str", help="Return the exit code of the selected service "
            "container. Implies --abort-on-container-exit"),
        Opt("attach", kind="list", help="Restrict attaching to the specified services"),
        Opt("no-attach", kind="list", help="Do not attach (stream logs) to the specified services"),
        Opt("attach-dependencies", help="Automatically attach to log output of dependent services"),
        Opt("renew-anon-volumes", "V", help="Recreate anonymous volumes instead of retrieving "
            "data from the previous containers"),
        Opt("pull", kind="str", default="policy",
            help='Pull image before running ("always"|"missing"|"never"|"build"|"policy")'),
        Opt("quiet-pull", help="Pull without printing progress information (corral never pulls)"),
        Opt("timestamps", help="Show timestamps"),
        Opt("yes", "y", help="Assume \"yes\" as answer to all prompts"),
        Opt("watch", "w", help="Watch source code and rebuild/refresh containers when files "
            "are updated"),
    ),
)


def compose_up(cli: Cli, g: Globals, argv: list[str]) -> int:

    from config.reconcile import UpOptions
    from supervisor.compose.applier import Applier

    p = parse(UP, argv)
    if p["force_recreate"] and p["no_recreate"]:
        raise UsageError("--force-recreate and --no-recreate are incompatible", 1)
    if p["pull"] not in ("policy", "always", "missing", "never", "build"):
        raise UsageError(
            f"invalid --pull {p['pull']!r}: always, missing, never, build or policy", 1
        )
    if p["exit_code_from"]:
        p.opts["abort_on_container_exit"] = True
    aborting = p["abort_on_container_exit"] or p["abort_on_container_failure"]
    if p["detach"] and aborting:
        raise UsageError("--abort-on-container-exit and -d cannot be combined.", 1)
    if p["wait"] and aborting:
        raise UsageError("--abort-on-container-exit and --wait cannot be combined.", 1)
    if p["wait_timeout"] is not None and not p["wait"]:
        raise UsageError("--wait-timeout needs --wait", 1)
    if p["watch"] and (p["detach"] or p["wait"] or p["no_start"]):
        raise UsageError("--watch cannot be combined with -d, --wait or --no-start", 1)
    project = load(cli, g)
    found = watch_rules(project, list(p.args)) if p["watch"] else []
    scale: dict[str, int] = {}
    for item in p["scale"]:
        svc, eq, num = item.partition("=")
        if not eq or not num.isdigit():
            raise UsageError(f"invalid --scale {item!r}: expected SERVICE=NUM", 1)
        if svc not in project.services:
            raise CliError(f"no such service: {svc}")
        scale[svc] = int(num)
    for svc in [*p.args, *p["attach"], *p["no_attach"]]:
        if svc not in project.services:
            raise CliError(f"no such service: {svc}")
    if p["exit_code_from"] and p["exit_code_from"] not in project.services:
        raise CliError(f"no such service: {p['exit_code_from']}")
    if p["build"] and p["no_build"]:
        raise UsageError("--build and --no-build are incompatible", 1)
    from config.graph import with_dependencies
    from supervisor.cli.compose_build import build_for_up

    wanted = with_dependencies(project.graph(), list(p.args)) if p.args else set(project.services)
    if p["no_deps"] and p.args:
        wanted = set(p.args)
    _api(cli)
    if g.dry_run:
        from supervisor.cli.compose_build import buildable, image_missing

        for svc in buildable(project, sorted(wanted)):
            if p["build"] or image_missing(cli, project, svc):
                _say(cli, True)(f" Service {svc}  Building")
    else:
        build_for_up(cli, project, sorted(wanted), build=p["build"] or p["pull"] == "build",
                     no_build=p["no_build"])
    # --pull: this `up`'s pull policy over the services' own (never/missing on the
    # model, which the daemon then follows; always pulled here, once)
    pull_now = []
    for svc in sorted(wanted):
        if project.services[svc].get("build"):
            continue
        if p["pull"] in ("never", "missing"):
            project.services[svc]["pull_policy"] = p["pull"]
        elif p["pull"] == "always":
            pull_now.append(svc)
            project.services[svc]["pull_policy"] = "missing"
    opts = UpOptions(
        services=list(p.args),
        scale=scale,
        force_recreate=p["force_recreate"],
        no_recreate=p["no_recreate"],
        remove_orphans=p["remove_orphans"],
        no_deps=p["no_deps"],
    )
    api = _engine(cli, g)
    applier = Applier(api, _say(cli, g.dry_run))
    applier.no_start = p["no_start"]
    applier.timeout = p["timeout"]
    applier.renew_anon_volumes = p["renew_anon_volumes"]
    since = f"{time.time():.9f}"

    async def run() -> int:
        for svc in pull_now:
            await applier.pull(svc, project.image(svc))
        if g.dry_run:  # no hand-over, no logs: the plan, said
            await applier.up(project, opts)
            return 0
        if p["no_start"]:
            await _release(api, project.name)  # else the daemon would start them
            await applier.up(project, opts)
            return 0
        if p["detach"] or p["wait"]:
            code = await _hand_over(
                cli, api, applier, project, opts, p["timeout"], p["renew_anon_volumes"]
            )
            if code or not p["wait"]:
                return code
            return await _wait_up(cli, applier, project, opts, p["wait_timeout"])
        await _release(api, project.name)  # in the foreground, the project is ours
        await applier.up(project, opts)
        attached = list(p["attach"]) or (
            sorted(with_dependencies(project.graph(), opts.services))
            if p["attach_dependencies"] and opts.services
            else opts.services
        )
        attached = [s for s in attached or project.services if s not in p["no_attach"]]
        watcher = _watcher(cli, api, project, found) if found else None
        return await _attach(cli, api, applier, project, p, since, attached, watcher)

    return _run_async(cli, run)


async def _hand_over(
    cli: Cli, api: AsyncApi, applier: Any, project: Project, opts: UpOptions,
    timeout: int | None = None,
    renew: bool = False,
) -> int:
    """`up -d`: the daemon converges the project and keeps it so (across its restarts);
    its progress lines are printed as they come, its errors as `up` prints them."""
    from config.handover import Handover
    from supervisor.api.client import ProtocolError
    from supervisor.compose.applier import parallel_limit

    h = Handover(
        project,
        services=opts.services,
        scale=opts.scale,
        force_recreate=opts.force_recreate,
        no_recreate=opts.no_recreate,
        remove_orphans=opts.remove_orphans,
        parallel_limit=parallel_limit(),
        no_deps=opts.no_deps,
        timeout=timeout,
        renew_anon_volumes=renew,
    )
    errors: list[str] = []
    buf = b""
    try:
        async for chunk in api.stream("POST", "/corral/projects", json_body=h.to_wire()):
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for line in lines:
                item = json.loads(line) if line.strip() else {}
                if "status" in item:
                    cli.err(str(item["status"]))
                elif "error" in item:
                    errors.append(str(item["error"]))
    except ApiError as exc:
        if exc.status != 404:
            raise
        await applier.up(project, opts)  # a daemon without projects: converge from here
        return 0
    except ProtocolError:
        errors.append("the daemon went away while bringing the project up")
    for error in errors:
        cli.err(f"corral: {error}")
    return 1 if errors else 0


async def _release(api: ComposeEngine, name: str) -> None:
    """The daemon stops keeping the project (it may never have)."""
    try:
        await api.request("DELETE", f"/corral/projects/{quote(name)}")
    except ApiError as exc:
        if exc.status not in (404, 405):
            raise


async def _attach(
    cli: Cli, api: AsyncApi, applier: Any, project: Project, p: Any, since: str,
    services: list[str], watcher: Any = None,
) -> int:
    """Foreground `up`: merged logs until every container ends; Ctrl-C stops them.
    With `--watch`, the project's `develop.watch` rules are followed meanwhile."""
    import signal

    import trio

    from supervisor.cli.compose_logs import stream_logs

    everything = _select(project, await applier.observe(project.name), [])
    observed = [c for c in everything if c.service in services] if services else everything
    targets = [(c.id, c.name) for c in observed]
    interrupted = False
    aborting = p["abort_on_container_exit"] or p["abort_on_container_failure"]
    exited: list[tuple[Observed, int]] = []
    ended = {cid: trio.Event() for cid, _ in targets}
    async with trio.open_nursery() as nursery:
        if aborting:

            async def watch_exits() -> None:
                first = await _first_exit(api, everything, p["abort_on_container_failure"])
                exited.append(first)
                # its log out first, as compose's: the `die` can come before the log
                # stream printed (or even opened), and a short job's output was lost
                if (done := ended.get(first[0].id)) is not None:
                    with trio.move_on_after(LOG_DRAIN_S):
                        await done.wait()
                nursery.cancel_scope.cancel()

            nursery.start_soon(watch_exits)

        async def watch_signals() -> None:
            nonlocal interrupted
            with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for _ in signals:
                    interrupted = True
                    nursery.cancel_scope.cancel()
                    return

        nursery.start_soon(watch_signals)
        if watcher is not None:
            await nursery.start(watcher.run)
        await stream_logs(
            api,
            targets,
            cli.bout,
            follow=True,
            since=since,
            timestamps=p["timestamps"],
            color=cli.stdout.isatty() and not p["no_color"],
            prefix=not p["no_log_prefix"],
            ended=ended,
        )
        if not aborting:
            nursery.cancel_scope.cancel()
    if exited:
        first, code = exited[0]
        cli.err(f"{first.name} exited with code {code}")
        cli.err("Aborting on container exit...")
        with trio.CancelScope(shield=True):
            await _stop_in_order(api, applier, project, everything, p["timeout"])
        wanted = p["exit_code_from"]
        if wanted:
            return await _exit_code_of(api, [c for c in everything if c.service == wanted])
        return code
    if not interrupted:
        return 0
    cli.err("Gracefully stopping... (press Ctrl+C again to force)")
    with trio.CancelScope(shield=True):
        await _stop_in_order(api, applier, project, observed, p["timeout"])
    return 130


async def _first_exit(
    api: AsyncApi, containers: list[Observed], failure_only: bool
) -> tuple[Observed, int]:
    """The first of `containers` to exit (a non-zero exit with `failure_only`), and its
    code. Subscribed to `die` events before looking, so no exit falls in between."""
    by_id = {c.id: c for c in containers}
    filters = json.dumps({"type": ["container"], "event": ["die"]})
    events = await api.open("GET", "/events", {"filters": filters})
    async with events:
        for c in containers:
            state = (await api.request("GET", f"/containers/{c.id}/json")).get("State") or {}
            code = int(state.get("ExitCode") or 0)
            if not state.get("Running") and (code or not failure_only):
                return c, code
        buf = b""
        async for chunk in events.chunks():
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for line in lines:
                if not line.strip():
                    continue
                event = json.loads(line)
                actor = event.get("Actor") or {}
                died = by_id.get(str(actor.get("ID", "")))
                code = int((actor.get("Attributes") or {}).get("exitCode") or 0)
                if died is not None and (code or not failure_only):
                    return died, code
    raise CliError("lost the event stream while waiting for a container to exit")


async def _exit_code_of(api: AsyncApi, containers: list[Observed]) -> int:
    for c in containers:
        result = await api.request("POST", f"/containers/{c.id}/wait", {"condition": "not-running"})
        return int((result or {}).get("StatusCode", 0))
    return 0


async def _wait_up(
    cli: Cli, applier: Any, project: Project, opts: UpOptions, timeout: int | None
) -> int:
    """`up --wait`: each container of the services asked for healthy (if it has a
    healthcheck) or running; one that exits or turns unhealthy fails `up` (exit 1), as
    does the timeout. A container of a one-shot service that exited 0 as a dependency
    of others (service_completed_successfully) is left alone, as compose does."""
    import trio

    from config.graph import with_dependencies
    from supervisor.compose.applier import ComposeError

    wanted = with_dependencies(project.graph(), opts.services) if opts.services and not \
        opts.no_deps else set(opts.services or project.services)
    completed = {
        d for s in project.services.values()
        for d, spec in (s.get("depends_on") or {}).items()
        if spec.get("condition") == "service_completed_successfully"
    }
    chosen = [c for c in await applier.observe(project.name)
              if c.service in wanted and not c.oneoff]
    errors: list[str] = []

    async def one(c: Observed) -> None:
        info = await applier.api.request("GET", f"/containers/{c.id}/json")
        try:
            if (info.get("Config") or {}).get("Healthcheck") and \
                    (info["Config"]["Healthcheck"].get("Test") or ["NONE"])[0] != "NONE":
                await applier._wait_healthy(c.service, c.id, c.name, info)
                applier.say(f" Container {c.name}  Healthy")
                return
            state = info.get("State") or {}
            if state.get("Running"):
                applier.say(f" Container {c.name}  Running")
                return
            if c.service in completed and int(state.get("ExitCode") or 0) == 0:
                applier.say(f" Container {c.name}  Exited")
                return
            raise ComposeError(f"container {c.name} exited ({state.get('ExitCode')})")
        except ComposeError as exc:
            errors.append(str(exc).removeprefix("dependency failed to start: "))

    with trio.move_on_after(timeout if timeout is not None else float("inf")) as scope:
        async with trio.open_nursery() as nursery:
            for c in chosen:
                nursery.start_soon(one, c)
    if scope.cancelled_caught:
        errors.append(f"timeout waiting for the project {project.name} to be up "
                      f"({timeout}s)")
    for error in errors:
        cli.err(f"corral: {error}")
    return 1 if errors else 0


async def _stop_in_order(
    api: AsyncApi, applier: Any, project: Project, observed: list[Observed], timeout: int | None
) -> None:
    import trio

    from config.reconcile import plan_down
    from supervisor.compose.applier import _stop_timeout

    groups, _ = plan_down(project, observed, remove_orphans=False)
    for group in groups:
        async with trio.open_nursery() as nursery:
            for c in group:
                t = timeout if timeout is not None else _stop_timeout(project, c.service)

                async def stop(c: Observed = c, t: int = t) -> None:
                    async with applier.limiter:
                        if c.running:
                            await applier.pre_stop(c.service, c.id, c.name)
                        applier.say(f" Container {c.name}  Stopping")
                        await api.request("POST", f"/containers/{c.id}/stop", {"t": t})
                        applier.say(f" Container {c.name}  Stopped")

                nursery.start_soon(stop)


# -- watch -----------------------------------------------------------------------------


def watch_rules(project: Project, services: list[str]) -> list[Any]:
    """The `develop.watch` rules of `services`; none, or a bad one, is an error."""
    from config.watch import problems, rules

    found = rules(project, services or None)
    bad = problems(found)
    if bad:
        raise CliError(bad[0])
    if not found:
        raise CliError(
            "none of the selected services is configured for watch, consider setting a "
            "'develop' section"
        )
    return found


def _watcher(
    cli: Cli, api: Any, project: Project, found: list[Any], prune: bool = True,
    dry_run: bool = False,
) -> Any:
    """A `Watcher` whose rebuild builds the service's image here and converges it; the
    image it replaced is removed once dangling (`--prune`, compose's default).
    `dry_run`: `api` is a DryRunEngine; a rebuild is said, never built."""
    import trio

    from config.reconcile import UpOptions
    from supervisor.cli.compose_build import build_service
    from supervisor.compose.applier import Applier
    from supervisor.compose.watch import Watcher

    async def rebuild(service: str) -> None:
        if dry_run:
            _say(cli, True)(f" Service {service}  Building")
            await Applier(api, _say(cli, True)).up(
                project, UpOptions(services=[service], no_deps=True)
            )
            return
        image = quote(project.image(service), "/:")
        try:
            old = str((await api.request("GET", f"/images/{image}/json") or {}).get("Id", ""))
        except ApiError:
            old = ""
        from supervisor.compose.applier import ComposeError

        try:
            new = await trio.to_thread.run_sync(
                lambda: build_service(cli, project, service, quiet=True)
            )
        except CliError as exc:  # reported, and the watch goes on
            raise ComposeError(exc.message) from None
        await Applier(api, _say(cli)).up(project, UpOptions(services=[service], no_deps=True))
        if prune and old and old != new:
            import contextlib

            with contextlib.suppress(ApiError):  # still tagged or used: not dangling
                await api.request("DELETE", f"/images/{old}")

    return Watcher(api, project, found, _say(cli, dry_run), rebuild)


def run_watch(
    cli: Cli, project: Project, services: list[str], *, up: bool, prune: bool = True,
    dry_run: bool = False,
) -> int:
    """`compose watch`: bring the services up (unless --no-up), then follow the rules
    until Ctrl-C; the containers keep running afterwards.  `dry_run`: the up and every
    sync said, nothing built, copied, run or restarted (the containers are read)."""
    import signal

    import trio

    from config.graph import with_dependencies
    from config.reconcile import UpOptions
    from supervisor.cli.compose_build import build_for_up
    from supervisor.compose.applier import Applier
    from supervisor.compose.engine import DryRunEngine

    found = watch_rules(project, services)
    api: Any = DryRunEngine(_api(cli)) if dry_run else _api(cli)
    if up:
        wanted = with_dependencies(project.graph(), services) if services else set(project.services)
        if dry_run:
            from supervisor.cli.compose_build import buildable, image_missing

            for svc in buildable(project, sorted(wanted)):
                if image_missing(cli, project, svc):
                    _say(cli, True)(f" Service {svc}  Building")
        else:
            build_for_up(cli, project, sorted(wanted), build=False, no_build=False)

    async def run() -> int:
        if up:
            if not dry_run:
                await _release(api, project.name)  # in the foreground, the project is ours
            await Applier(api, _say(cli, dry_run)).up(project, UpOptions(services=services))
        async with trio.open_nursery() as nursery:
            await nursery.start(_watcher(cli, api, project, found, prune, dry_run).run)
            with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for _ in signals:
                    break
            nursery.cancel_scope.cancel()
        return 0

    return _run_async(cli, run)


DOWN = Command(
    "compose down",
    "corral compose down [OPTIONS]",
    "Stop and remove containers, networks",
    (
        Opt("volumes", "v", help="Remove named volumes declared in the volumes section"),
        Opt("remove-orphans", help="Remove containers for services not defined in the file"),
        Opt("timeout", "t", "int", help="Shutdown timeout in seconds"),
    ),
    max_args=0,
)


def compose_down(cli: Cli, g: Globals, argv: list[str]) -> int:

    from config.errors import ConfigError
    from config.project import resolve_files
    from supervisor.compose.applier import Applier

    p = parse(DOWN, argv)
    project: Project | None = None
    name = g.project_name
    try:
        resolve_files(g.files, os.getcwd(), cli.environ, g.project_directory)
    except ConfigError:
        if name is None:  # neither a file nor -p: nothing names the project
            raise
    else:
        project = load(cli, g)
        name = project.name
    assert name is not None
    applier = Applier(_engine(cli, g), _say(cli, g.dry_run))

    async def run() -> int:
        await _release(applier.api, name)  # first, or the daemon would bring it back
        await applier.down(
            name,
            project,
            remove_orphans=p["remove_orphans"] or project is None,
            volumes=p["volumes"],
            timeout=p["timeout"],
        )
        return 0

    return _run_async(cli, run)


# -- ps / logs / images ----------------------------------------------------------------

PS = Command(
    "compose ps",
    "corral compose ps [OPTIONS] [SERVICE...]",
    "List containers",
    (
        Opt("all", "a", help="Show all stopped containers"),
        Opt("quiet", "q", help="Only display IDs"),
        Opt("services", help="Display services"),
        Opt("format", kind="str",
            help="Format the output: table (default), json, or a Go template"),
        Opt("no-trunc", help="Don't truncate output"),
    ),
)

# compose's own ContainerContext (cmd/formatter/container.go): its fields' headers
COMPOSE_PS_HEADERS = {
    "ID": "CONTAINER ID", "Name": "NAME", "Project": "PROJECT", "Service": "SERVICE",
    "Image": "IMAGE", "Command": "COMMAND", "CreatedAt": "CREATED AT", "RunningFor": "CREATED",
    "Ports": "PORTS", "State": "STATE", "Status": "STATUS", "Size": "SIZE", "Labels": "LABELS",
}
COMPOSE_PS_TABLE = ("table {{.Name}}\t{{.Image}}\t{{.Command}}\t{{.Service}}\t"
                    "{{.RunningFor}}\t{{.Status}}\t{{.Ports}}")


def _health(status: str) -> str:
    """compose's Health from the status text: `Up 1 minute (healthy)` -> healthy."""
    _, _, tail = status.partition("(")
    word = tail.rstrip(")").removeprefix("health: ")
    return word if tail.endswith(")") and word in ("healthy", "unhealthy", "starting") else ""


def compose_ps_record(c: dict[str, Any], now: float, trunc: bool) -> Any:
    """A container as compose's `*formatter.ContainerContext` (Name, Service, Project,
    Publishers...), one line of `compose ps --format json` as compose prints it."""
    from supervisor.cli.containers import ps_row
    from supervisor.cli.govalues import Record

    row = ps_row(c, now, trunc)
    labels = c.get("Labels") or {}
    status = str(c.get("Status", ""))
    exit_code = 0
    if status.startswith("Exited ("):
        code = status[len("Exited ("):].partition(")")[0]
        exit_code = int(code) if code.lstrip("-").isdigit() else 0
    publishers = [{"URL": str(p.get("IP") or ""), "TargetPort": int(p.get("PrivatePort") or 0),
                   "PublishedPort": int(p.get("PublicPort") or 0),
                   "Protocol": str(p.get("Type") or "tcp")}
                  for p in c.get("Ports") or []]
    names = [n.lstrip("/") for n in c.get("Names") or []]
    fields = {
        "ID": row["ID"], "Name": names[0] if names else "", "Names": row["Names"],
        "Service": str(labels.get("com.docker.compose.service", "")),
        "Project": str(labels.get("com.docker.compose.project", "")),
        "Image": str(c.get("Image", "")), "Command": row["Command"],
        "CreatedAt": row["CreatedAt"], "RunningFor": row["RunningFor"],
        "ExitCode": exit_code, "State": row["State"], "Status": status,
        "Health": _health(status), "Publishers": publishers, "Ports": row["Ports"],
        "Labels": row["Labels"], "Mounts": row["Mounts"], "LocalVolumes": row["LocalVolumes"],
        "Networks": row["Networks"], "Size": row["Size"],
    }
    return Record("*formatter.ContainerContext", fields,
                  {"Label": (lambda key: str(labels.get(key, "")), ("string",))})


def compose_ps(cli: Cli, g: Globals, argv: list[str]) -> int:
    from supervisor.cli.output import Defaults, RowFormat

    p = parse(PS, argv)
    out = None
    if not p["services"] and not p["quiet"]:  # a bad template fails before anything
        source = Defaults(COMPOSE_PS_TABLE, "{{.ID}}").pick(p["format"], False)
        out = RowFormat(source, COMPOSE_PS_HEADERS)
    project = load(cli, g)
    observed = {c.id for c in containers(cli, project, p.args, all_=p["all"])}
    from config.reconcile import PROJECT

    filters = json.dumps({"label": [f"{PROJECT}={project.name}"]})
    found = [
        c
        for c in cli.client.get("/containers/json", {"all": p["all"] or None, "filters": filters})
        or []
        if c.get("Id") in observed
    ]
    try:
        rollouts = cli.client.get("/corral/rollouts") or []
    except ApiError:
        rollouts = []  # a daemon without rollouts
    _rollout_cli().annotate_ps(found, rollouts)
    order = {s: i for i, s in enumerate(project.order())}
    found.sort(
        key=lambda c: (
            order.get((c.get("Labels") or {}).get("com.docker.compose.service", ""), -1),
            fmt.names(c.get("Names")),
        )
    )
    if p["services"]:
        seen: list[str] = []
        for c in found:
            svc = (c.get("Labels") or {}).get("com.docker.compose.service", "")
            if svc not in seen:
                seen.append(svc)
        for svc in seen:
            cli.out(svc)
        return 0
    if p["quiet"]:
        for c in found:
            cli.out(str(c["Id"]))
        return 0
    assert out is not None
    now = time.time()
    cli.stdout.write(out.render(compose_ps_record(c, now, not p["no_trunc"]) for c in found))
    return 0


LOGS = Command(
    "compose logs",
    "corral compose logs [OPTIONS] [SERVICE...]",
    "View output from containers",
    (
        Opt("follow", "f", help="Follow log output"),
        Opt("tail", "n", "str", default="all", help="Number of lines to show from the end"),
        Opt("timestamps", "t", help="Show timestamps"),
        Opt("no-color", help="Produce monochrome output"),
        Opt("no-log-prefix", help="Don't print prefix in logs"),
    ),
)


def compose_logs(cli: Cli, g: Globals, argv: list[str]) -> int:

    from supervisor.cli.compose_logs import stream_logs

    p = parse(LOGS, argv)
    project = load(cli, g)
    chosen = containers(cli, project, p.args)
    api = _api(cli)

    async def run() -> int:
        await stream_logs(
            api,
            [(c.id, c.name) for c in chosen],
            cli.bout,
            follow=p["follow"],
            tail=p["tail"],
            timestamps=p["timestamps"],
            color=cli.stdout.isatty() and not p["no_color"],
            prefix=not p["no_log_prefix"],
        )
        return 0

    return _run_async(cli, run)


def compose_images(cli: Cli, g: Globals, argv: list[str]) -> int:
    p = parse(
        Command(
            "compose images",
            "corral compose images [SERVICE...]",
            "List images used by the created containers",
        ),
        argv,
    )
    project = load(cli, g)
    rows = [["CONTAINER", "REPOSITORY", "TAG", "IMAGE ID", "SIZE"]]
    for c in containers(cli, project, p.args):
        image = project.image(c.service)
        try:
            info = cli.client.get(f"/images/{quote(image, '/:')}/json")
        except ApiError:
            info = {}
        repo, tag = fmt.repo_tag(fmt.normalize_ref(image))
        rows.append(
            [
                c.name,
                repo,
                tag,
                fmt.short_id(str(info.get("Id", ""))),
                fmt.human_size(float(info.get("Size") or 0)),
            ]
        )
    cli.stdout.write(fmt.table(rows))
    return 0


# -- pull / push -----------------------------------------------------------------------

COMPOSE_PULL = Command("compose pull", "corral compose pull [OPTIONS] [SERVICE...]",
                       "Pull service images", (
    Opt("ignore-pull-failures", help="Pull what it can and ignore images with pull failures"),
    Opt("quiet", "q", help="Pull without printing progress information"),
))
COMPOSE_PUSH = Command("compose push", "corral compose push [OPTIONS] [SERVICE...]",
                       "Push service images", (
    Opt("ignore-push-failures", help="Push what it can and ignore images with push failures"),
    Opt("quiet", "q", help="Push without printing progress information"),
))


def _service_images(project: Project, services: list[str]) -> list[tuple[str, str]]:
    unknown = [s for s in services if s not in project.services]
    if unknown:
        raise CliError(f"no such service: {unknown[0]}")
    return [(name, str(svc["image"])) for name, svc in project.services.items()
            if (not services or name in services) and svc.get("image")]


def _each_image(cli: Cli, g: Globals, argv: list[str], push: bool) -> int:
    """compose pull / push: one image per service, its outcome on stderr as compose."""
    from supervisor.api.client import ApiError
    from supervisor.cli.stream import StreamError

    p = parse(COMPOSE_PUSH if push else COMPOSE_PULL, argv)
    ignore = p["ignore_push_failures"] if push else p["ignore_pull_failures"]
    project = load(cli, g)
    for name, image in _service_images(project, p.args):
        if not p["quiet"]:
            cli.err(f" {name} {'Pushing' if push else 'Pulling'}")
        try:
            if push:
                from supervisor.cli.push import push_image

                push_image(cli, image, quiet=True)
            else:
                from supervisor.cli.pull import pull_image

                pull_image(cli, image, platform=None, quiet=True, out=cli.berr, tty=False)
        except (ApiError, StreamError, CliError) as exc:
            message = exc.message if isinstance(exc, (ApiError, CliError)) else str(exc)
            if not ignore:
                raise CliError(f'service "{name}": {message}') from None
            cli.err(f" {name} Error {message}")
            continue
        if not p["quiet"]:
            cli.err(f" {name} {'Pushed' if push else 'Pulled'}")
    return 0


def compose_pull(cli: Cli, g: Globals, argv: list[str]) -> int:
    return _each_image(cli, g, argv, push=False)


def compose_push(cli: Cli, g: Globals, argv: list[str]) -> int:
    return _each_image(cli, g, argv, push=True)


# -- start / stop / restart / exec -----------------------------------------------------


def _lifecycle(verb: str, summary: str) -> Any:
    opts = () if verb == "start" else (Opt("timeout", "t", "int", help="Shutdown timeout"),)
    cmd = Command(f"compose {verb}", f"corral compose {verb} [SERVICE...]", summary, opts)

    def run(cli: Cli, g: Globals, argv: list[str]) -> int:
        p = parse(cmd, argv)
        project = load(cli, g)
        chosen = containers(cli, project, p.args)
        if verb == "stop":
            chosen.reverse()
        query = {"t": p["timeout"]} if verb != "start" else None
        done = f"{verb.capitalize()}{'ed' if verb != 'stop' else 'ped'}"
        hooks = {"start": ("post_start",), "stop": ("pre_stop",)}.get(
            verb, ("pre_stop", "post_start")
        )
        if not any(project.services[o.service].get(h) for o in chosen for h in hooks):
            return each_container(cli, chosen, verb, done, query, name_errors=True,
                                  dry_run=g.dry_run)
        if g.dry_run:
            for o in chosen:
                for h in hooks:
                    if project.services[o.service].get(h):
                        cli.err(f"DRY-RUN MODE -  Service {o.service}  would run its {h} hook")
            return each_container(cli, chosen, verb, done, query, dry_run=True)
        return _lifecycle_with_hooks(cli, project, chosen, verb, done, query)

    return run


def _lifecycle_with_hooks(
    cli: Cli,
    project: Project,
    chosen: list[Observed],
    verb: str,
    done: str,
    query: dict[str, Any] | None,
) -> int:
    """start/stop/restart of services with `post_start`/`pre_stop` hooks: the same
    calls, the applier's hooks around them (as compose runs them)."""
    from supervisor.compose.applier import Applier

    api = _api(cli)
    applier = Applier(api, _say(cli))
    applier.project = project

    async def run() -> int:
        failed = 0
        for o in chosen:
            try:
                if verb != "start" and o.running:
                    await applier.pre_stop(o.service, o.id, o.name)
                await api.request("POST", f"/containers/{o.id}/{verb}", query)
                cli.err(f" Container {o.name}  {done}")
                if verb != "stop":
                    await applier.post_start(o.service, o.id, o.name)
            except ApiError as exc:
                cli.err(f"corral: {o.name}: {exc.message}")
                failed = 1
        return failed

    return _run_async(cli, run)


EXEC_OPTS = Command(
    "compose exec",
    "corral compose exec [OPTIONS] SERVICE COMMAND [ARGS...]",
    "Execute a command in a running container",
    (
        Opt("detach", "d", help="Detached mode: Run command in the background"),
        Opt("env", "e", "list", help="Set environment variables"),
        Opt("index", kind="int", default=1, help="Index of the container if scaled"),
        Opt("no-TTY", "T", help="Disable pseudo-TTY allocation (a TTY is the default on one)"),
        Opt("user", "u", "str", help="Run the command as this user"),
        Opt("workdir", "w", "str", help="Path to workdir directory for this command"),
        Opt("privileged", help="Give extended privileges to the process"),
    ),
    min_args=2,
    interspersed=False,
)


def compose_exec(cli: Cli, g: Globals, argv: list[str]) -> int:
    from supervisor.cli.containers import cmd_exec

    p = parse(EXEC_OPTS, argv)
    project = load(cli, g)
    service, *command = p.args
    chosen = [
        c
        for c in containers(cli, project, [service], all_=False)
        if c.number == p["index"]
    ]
    if not chosen:
        raise CliError(f'service "{service}" is not running')
    if g.dry_run:  # compose's dry-run client: a detached exec is made up, none attaches
        if not p["detach"]:
            raise CliError("interactive exec is not supported in dry-run mode")
        return 0
    words: list[str] = []
    if p["detach"]:
        words.append("-d")
    if not p["detach"]:
        words.append("-i")  # compose's exec is interactive
        # docker compose allocates a TTY unless -T or its output is not a terminal.
        if not p["no_TTY"] and sys.stdout.isatty():
            words.append("-t")
    for e in p["env"]:
        words += ["-e", e]
    if p["user"]:
        words += ["-u", p["user"]]
    if p["workdir"]:
        words += ["-w", p["workdir"]]
    if p["privileged"]:
        words.append("--privileged")
    return cmd_exec(cli, [*words, chosen[0].id, *command])


# -- build -----------------------------------------------------------------------------

BUILD = Command(
    "compose build",
    "corral compose build [OPTIONS] [SERVICE...]",
    "Build or rebuild services",
    (
        Opt("build-arg", kind="list", help="Set build-time variables for services"),
        Opt("no-cache", help="Do not use cache when building the image"),
        Opt("pull", help="Always attempt to pull a newer version of the image"),
        Opt("push", help="Push service images"),
        Opt("quiet", "q", help="Don't print anything to STDOUT"),
        Opt("with-dependencies", help="Also build dependencies (transitively)"),
    ),
)


def compose_build(cli: Cli, g: Globals, argv: list[str]) -> int:
    from config.graph import with_dependencies
    from supervisor.cli.build import build_args
    from supervisor.cli.compose_build import build_service, buildable

    p = parse(BUILD, argv)
    if p["push"]:
        raise CliError("--push is not supported by corral yet: run 'corral compose push'", 1)
    args = build_args(p["build_arg"], cli.environ)
    project = load(cli, g)
    for svc in p.args:
        if svc not in project.services:
            raise CliError(f"no such service: {svc}")
    wanted = set(p.args) if p.args else set(project.services)
    if p["with_dependencies"]:
        wanted = with_dependencies(project.graph(), sorted(wanted))
    for svc in buildable(project, sorted(wanted)):
        if g.dry_run:  # what would be built, its context checked; nothing sent
            ctx = str(project.services[svc]["build"]["context"])
            if not os.path.isdir(ctx):
                raise CliError(
                    f'service "{svc}": unable to prepare context: path "{ctx}" not found'
                )
            _say(cli, True)(f" Service {svc}  Building")
            _say(cli, True)(f" Service {svc}  Built")
            continue
        build_service(cli, project, svc, build_args=args, no_cache=p["no_cache"],
                      quiet=p["quiet"], pull=p["pull"])
    return 0


# -- config ----------------------------------------------------------------------------

CONFIG = Command(
    "compose config",
    "corral compose config [OPTIONS] [SERVICE...]",
    "Parse, resolve and render compose file in canonical format",
    (
        Opt("format", kind="str", default="yaml", help="Format the output: yaml or json"),
        Opt("quiet", "q", help="Only validate the configuration, don't print anything"),
        Opt("services", help="Print the service names, one per line"),
        Opt("volumes", help="Print the volume names, one per line"),
        Opt("hash", kind="str", help='Print the service config hash, one per line ("*": all)'),
        Opt("images", help="Print the image names, one per line"),
        Opt("networks", help="Print the network names, one per line"),
    ),
)


def compose_config(cli: Cli, g: Globals, argv: list[str]) -> int:
    p = parse(CONFIG, argv)
    project = load(cli, g)
    if p["quiet"]:
        return 0
    if p["services"]:
        for name in project.services:
            cli.out(name)
        return 0
    if p["volumes"]:
        for name in project.model.get("volumes") or {}:
            cli.out(name)
        return 0
    if p["images"]:
        for name in project.services:
            cli.out(project.image(name))
        return 0
    if p["networks"]:
        for name in sorted(project.model.get("networks") or {}):
            cli.out(name)
        return 0

    if p["hash"]:
        wanted = list(project.services) if p["hash"] == "*" else p["hash"].split(",")
        for name in wanted:
            if name not in project.services:
                raise CliError(f"no such service: {name}")
            cli.out(f"{name} {project.hash(name)}")
        return 0
    model = project.model
    if p.args:
        model = {**model, "services": {k: v for k, v in project.services.items() if k in p.args}}
    if p["format"] == "json":
        cli.out(json.dumps(model, indent=2))
    elif p["format"] in ("yaml", None):
        from config.yamlload import dump_yaml

        cli.stdout.write(dump_yaml(model))
    else:
        raise UsageError(f"unsupported format {p['format']!r}: yaml or json", 1)
    return 0


def _verb(name: str) -> Any:
    """A verb of `compose_verbs`, imported when it runs."""

    def run(cli: Cli, g: Globals, argv: list[str]) -> int:
        from supervisor.cli import compose_verbs as v

        if name in ("pause", "unpause"):
            summary = "Pause services" if name == "pause" else "Unpause services"
            return int(v._pause_like(name, summary)(cli, g, argv))
        return int(getattr(v, name)(cli, g, argv))

    return run


_HANDLERS: dict[str, Any] = {
    "up": compose_up,
    "down": compose_down,
    "ps": compose_ps,
    "logs": compose_logs,
    "images": compose_images,
    "pull": compose_pull,
    "push": compose_push,
    "start": _lifecycle("start", "Start services"),
    "stop": _lifecycle("stop", "Stop services"),
    "restart": _lifecycle("restart", "Restart service containers"),
    "exec": compose_exec,
    "config": compose_config,
    "build": compose_build,
    "run": _verb("compose_run"),
    "rm": _verb("compose_rm"),
    "kill": _verb("compose_kill"),
    "pause": _verb("pause"),
    "unpause": _verb("unpause"),
    "ls": _verb("compose_ls"),
    "port": _verb("compose_port"),
    "top": _verb("compose_top"),
    "events": _verb("compose_events"),
    "create": _verb("compose_create"),
    "wait": _verb("compose_wait"),
    "version": _verb("compose_version"),
    "scale": _verb("compose_scale"),
    "rollout": lambda cli, g, argv: _rollout_cli().compose_rollout(cli, g, argv),
    "watch": _verb("compose_watch"),
    "cp": _verb("compose_cp"),
    "attach": _verb("compose_attach"),
}


def _rollout_cli() -> Any:
    from supervisor.rollout import cli

    return cli
