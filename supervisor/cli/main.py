"""`corral` entry point: global flags, verb dispatch, and error → exit-code mapping.

Verb modules are imported only when their verb runs: a `corral ps` must not pay for
`run`'s flag tables, and `corral daemon` (the only path that imports trio and the
daemon) hands off before any client code loads.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import NoReturn

    from supervisor.cli.context import Cli

VERSION = "0.1.0"

# verb → (module under supervisor.cli, function, one-line summary)
VERBS: dict[str, tuple[str, str, str]] = {
    "run": ("containers", "cmd_run", "Create and run a new container from an image"),
    "create": ("containers", "cmd_create", "Create a new container"),
    "start": ("containers", "cmd_start", "Start one or more stopped containers"),
    "attach": ("containers", "cmd_attach", "Attach to a running container's streams"),
    "stop": ("containers", "cmd_stop", "Stop one or more running containers"),
    "restart": ("containers", "cmd_restart", "Restart one or more containers"),
    "kill": ("containers", "cmd_kill", "Kill one or more running containers"),
    "pause": ("containers", "cmd_pause", "Pause all processes within one or more containers"),
    "unpause": ("containers", "cmd_unpause", "Unpause all processes within one or more containers"),
    "wait": ("containers", "cmd_wait", "Block until containers stop, then print their exit codes"),
    "rm": ("containers", "cmd_rm", "Remove one or more containers"),
    "ps": ("containers", "cmd_ps", "List containers"),
    "logs": ("containers", "cmd_logs", "Fetch the logs of a container"),
    "exec": ("containers", "cmd_exec", "Execute a command in a running container"),
    "port": ("containers", "cmd_port", "List port mappings for the container"),
    "cp": ("cp", "cmd_cp", "Copy files/folders between a container and the local filesystem"),
    "top": ("containerfs", "cmd_top", "Display the running processes of a container"),
    "diff": ("containerfs", "cmd_diff",
             "Inspect changes to files or directories on a container's filesystem"),
    "export": ("containerfs", "cmd_export", "Export a container's filesystem as a tar archive"),
    "stats": ("stats", "cmd_stats",
              "Display a live stream of container(s) resource usage statistics"),
    "commit": ("images", "cmd_commit", "Create a new image from a container's changes"),
    "build": ("build", "cmd_build", "Build an image from a Dockerfile"),
    "import": ("images", "cmd_import", "Import the contents from a tarball to create an image"),
    "images": ("images", "cmd_images", "List images"),
    "pull": ("pull", "cmd_pull", "Download an image from a registry"),
    "push": ("push", "cmd_push", "Upload an image to a registry"),
    "login": ("login", "cmd_login", "Log in to a registry"),
    "logout": ("login", "cmd_logout", "Log out from a registry"),
    "search": ("search", "cmd_search", "Search Docker Hub for images"),
    "rmi": ("images", "cmd_rmi", "Remove one or more images"),
    "tag": ("images", "cmd_tag", "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE"),
    "history": ("images", "cmd_history", "Show the history of an image"),
    "save": ("archive", "cmd_save", "Save one or more images to a tar archive"),
    "load": ("archive", "cmd_load", "Load an image from a tar archive or STDIN"),
    "inspect": ("inspect", "cmd_inspect", "Return low-level information on corral objects"),
    "volume": ("volumes", "cmd_volume", "Manage volumes"),
    "network": ("networks", "cmd_network", "Manage networks"),
    "events": ("events", "cmd_events", "Get real time events from the server"),
    "update": ("events", "cmd_update", "Update configuration of one or more containers"),
    "rename": ("events", "cmd_rename", "Rename a container"),
    "auto-update": ("auto_update", "cmd_auto_update",
                    "Update labelled containers to their newest image, without downtime"),
    "version": ("system", "cmd_version", "Show the corral version information"),
    "info": ("system", "cmd_info", "Display system-wide information"),
    "system": ("prune", "cmd_system", "Manage corral (df, prune, info, events)"),
    "builder": ("prune", "cmd_builder", "Manage builds (prune)"),
    "compose": ("compose", "cmd_compose", "Define and run multi-container applications"),
    "up": ("compose", "cmd_up", "Create and start the services of a compose file"),
    "down": ("compose", "cmd_down", "Stop and remove the services of a compose file"),
    "kube": ("kube", "cmd_kube", "Generate Kubernetes YAML, or play it on corral"),
    "pod": ("pod", "cmd_pod", "Manage pods"),
}

# verbs reached only through a management group (`container prune`, `image prune`)
_GROUP_ONLY: dict[str, tuple[str, str, str]] = {
    "container-prune": ("prune", "cmd_container_prune", "Remove all stopped containers"),
    "image-prune": ("prune", "cmd_image_prune", "Remove unused images"),
}

# docker's management-command spellings: `container ls`, `image rm`, ...
_CONTAINER_SUB = {"ls": "ps", "list": "ps", "ps": "ps", "remove": "rm",
                  "prune": "container-prune"}
_IMAGE_SUB = {"ls": "images", "list": "images", "rm": "rmi", "remove": "rmi",
              "prune": "image-prune"}
_CONTAINER_VERBS = {"run", "create", "start", "attach", "stop", "restart", "kill", "pause",
                    "unpause", "wait", "rm", "logs", "exec", "port", "commit", "inspect", "stats",
                    "cp", "top", "diff", "export", "rename", "update"}
_IMAGE_VERBS = {"import", "tag", "history", "inspect", "build", "save", "load", "pull", "push"}


def usage() -> str:
    width = max(len(v) for v in [*VERBS, "container"]) + 2
    lines = [
        "",
        "Usage:  corral [OPTIONS] COMMAND",
        "",
        "A container engine with the Docker Engine API",
        "",
        "Commands:",
        *(f"  {verb.ljust(width)}{VERBS[verb][2]}" for verb in VERBS),
        f"  {'daemon'.ljust(width)}Run the corral daemon",
        f"  {'container'.ljust(width)}Manage containers (ls, rm, inspect, ...)",
        f"  {'image'.ljust(width)}Manage images (ls, rm, import, ...)",
        "",
        "Global Options:",
        "  -H, --host string   Daemon socket to connect to (unix:///path; env CORRAL_HOST)",
        "  -v, --version       Print version information and quit",
        "",
        "Run 'corral COMMAND --help' for more information on a command.",
        "",
    ]
    return "\n".join(lines)


#: `corral container --help` and `corral image --help`: docker 28's subcommands and words
_GROUP_HELP: dict[str, tuple[str, tuple[tuple[str, str], ...]]] = {
    "container": ("Manage containers", (
        ("attach", "Attach local standard input, output, and error streams to a running "
                   "container"),
        ("commit", "Create a new image from a container's changes"),
        ("cp", "Copy files/folders between a container and the local filesystem"),
        ("create", "Create a new container"),
        ("diff", "Inspect changes to files or directories on a container's filesystem"),
        ("exec", "Execute a command in a running container"),
        ("export", "Export a container's filesystem as a tar archive"),
        ("inspect", "Display detailed information on one or more containers"),
        ("kill", "Kill one or more running containers"),
        ("logs", "Fetch the logs of a container"),
        ("ls", "List containers"),
        ("pause", "Pause all processes within one or more containers"),
        ("port", "List port mappings or a specific mapping for the container"),
        ("prune", "Remove all stopped containers"),
        ("rename", "Rename a container"),
        ("restart", "Restart one or more containers"),
        ("rm", "Remove one or more containers"),
        ("run", "Create and run a new container from an image"),
        ("start", "Start one or more stopped containers"),
        ("stats", "Display a live stream of container(s) resource usage statistics"),
        ("stop", "Stop one or more running containers"),
        ("top", "Display the running processes of a container"),
        ("unpause", "Unpause all processes within one or more containers"),
        ("update", "Update configuration of one or more containers"),
        ("wait", "Block until one or more containers stop, then print their exit codes"),
    )),
    "image": ("Manage images", (
        ("build", "Build an image from a Dockerfile"),
        ("history", "Show the history of an image"),
        ("import", "Import the contents from a tarball to create a filesystem image"),
        ("inspect", "Display detailed information on one or more images"),
        ("load", "Load an image from a tar archive or STDIN"),
        ("ls", "List images"),
        ("prune", "Remove unused images"),
        ("pull", "Download an image from a registry"),
        ("push", "Upload an image to a registry"),
        ("rm", "Remove one or more images"),
        ("save", "Save one or more images to a tar archive (streamed to STDOUT by default)"),
        ("tag", "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE"),
    )),
}  # fmt: skip


def group_usage(group: str) -> str:
    """A management group's help, laid out as docker 28's."""
    title, subs = _GROUP_HELP[group]
    lines = [f"Usage:  corral {group} COMMAND", "", title, "", "Commands:",
             *(f"  {name.ljust(12)}{text}" for name, text in subs), "",
             f"Run 'corral {group} COMMAND --help' for more information on a command.", ""]
    return "\n".join(lines)


def _resolve_management(verb: str, rest: list[str]) -> tuple[str, list[str]]:
    """Map `container X`/`image X` onto the flat verbs; unknown subverbs stay unknown."""
    if not rest or rest[0] in ("-h", "--help"):
        return "help", []
    sub, args = rest[0], rest[1:]
    table, allowed, kind = (
        (_CONTAINER_SUB, _CONTAINER_VERBS, "container")
        if verb == "container"
        else (_IMAGE_SUB, _IMAGE_VERBS, "image")
    )
    if sub in table:
        return table[sub], args
    if sub in allowed:
        if sub == "inspect":
            return "inspect", [f"--type={kind}", *args]
        return sub, args
    return f"{verb} {sub}", args


def _run_daemon(argv: list[str]) -> int:
    """Hand off to the daemon (trio and friends load only here)."""
    from supervisor.daemon import main as daemon_main

    return daemon_main(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command line; returns the process exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    host: str | None = None
    while args and args[0].startswith("-") and args[0] != "-":
        flag = args.pop(0)
        if flag in ("-H", "--host"):
            if not args:
                sys.stderr.write(f"corral: flag needs an argument: {flag}\n")
                return 125
            host = args.pop(0)
        elif flag.startswith("--host="):
            host = flag[len("--host="):]
        elif flag.startswith("-H") and len(flag) > 2:
            host = flag[2:]
        elif flag in ("-h", "--help"):
            sys.stdout.write(usage())
            return 0
        elif flag in ("-v", "--version"):
            sys.stdout.write(f"corral version {VERSION}, API {_api_version()}\n")
            return 0
        else:
            sys.stderr.write(f"unknown flag: {flag}\n\nUsage:  corral [OPTIONS] COMMAND\n\n"
                             "Run 'corral --help' for more information\n")
            return 125
    if not args or args[0] == "help":
        sys.stdout.write(usage())
        return 0
    verb, rest = args[0], args[1:]
    if verb == "daemon":
        if host is not None:
            rest = ["--host", host, *rest]
        return _run_daemon(rest)
    if verb in ("container", "image"):
        group = verb
        verb, rest = _resolve_management(verb, rest)
        if verb == "help":
            sys.stdout.write(group_usage(group))
            return 0
    if verb not in VERBS and verb not in _GROUP_ONLY:
        sys.stderr.write(f"corral: '{verb}' is not a corral command.\nSee 'corral --help'\n")
        return 1
    if verb == "logs":  # its common forms before any other module loads (see logslean)
        from supervisor.cli import logslean

        code = logslean.run(host, rest)
        if code is not None:
            return code
    from supervisor.cli.context import Cli

    return run_verb(Cli(host), verb, rest)


def launch() -> NoReturn:
    """The `corral` command's entry: `main`, then the process ended at once when
    Python's own shutdown has nothing to do but tear its modules down (~3 ms of wall
    and CPU of every `run`): no thread left, no atexit callback, both streams flushed.
    Anything else (a flush that fails, a thread, a callback) takes the usual way."""
    code = main()
    import atexit

    threading = sys.modules.get("threading")
    if (threading is None or threading.active_count() == 1) and atexit._ncallbacks() == 0:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except Exception:  # noqa: BLE001 - Python reports it at its exit, as ever
            sys.exit(code)
        import os

        os._exit(code)
    sys.exit(code)


def _api_version() -> str:
    from supervisor.api.client import API_VERSION

    return API_VERSION


def run_verb(cli: Cli, verb: str, args: list[str]) -> int:
    """Run one verb and turn every expected failure into `corral: ...` + exit code."""
    from supervisor.api.client import ApiError, DaemonUnavailable, ProtocolError
    from supervisor.cli.context import CliError
    from supervisor.cli.parser import HelpRequested, UsageError
    from supervisor.cli.stream import StreamError

    module_name, func_name, _ = VERBS[verb] if verb in VERBS else _GROUP_ONLY[verb]
    # `__import__`, not importlib's import_module: the `importlib` package (and the
    # `warnings` it imports) is ~1 ms of every command
    module = __import__(f"supervisor.cli.{module_name}", fromlist=[func_name])
    func: Callable[[Cli, list[str]], int] = getattr(module, func_name)
    # run reports daemon trouble with 125, as docker does (the container's own exit
    # codes occupy the low numbers); docker create returns its error plainly: 1.
    daemon_code = 125 if verb == "run" else 1
    try:
        return func(cli, args)
    except HelpRequested as exc:
        cli.stdout.write(exc.text)
        return 0
    except UsageError as exc:
        cli.err(exc.display())
        return exc.exit_code
    except CliError as exc:
        cli.err(f"corral: {exc.message}")
        return exc.exit_code
    except ApiError as exc:
        cli.err(f"corral: Error response from daemon: {exc.message}")
        return daemon_code
    except DaemonUnavailable as exc:
        cli.err(
            f"corral: Cannot connect to the corral daemon at {exc.host}. "
            f"Is the corral daemon running? ({exc.reason})"
        )
        return daemon_code
    except (StreamError, ProtocolError) as exc:
        cli.err(f"corral: {exc}")
        return daemon_code
    except BrokenPipeError:
        # stdout went away (`corral ps | head`): quiet, like a Go program getting EPIPE.
        # Point fd 1 at /dev/null so the interpreter's final flush does not complain.
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except ConnectionError as exc:
        cli.err(f"corral: lost the connection to the daemon: {exc}")
        return daemon_code
    except KeyboardInterrupt:
        return 130
