"""Container verbs: run/create/start/stop/..., ps, logs, exec, port.

Each mirrors the docker CLI's request sequence (same endpoints, query parameters and
bodies) so the daemon only has to implement Docker's API once for both clients.
"""

from __future__ import annotations

import os
import sys
import time

from supervisor.api.client import ApiError, quote
from supervisor.cli import format as fmt
from supervisor.cli.context import CliError
from supervisor.cli.filters import filters_query
from supervisor.cli.parser import Command, Opt, UsageError, flag_errors, parse

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import Any

    from supervisor.api.client import Hijacked, Response
    from supervisor.cli.context import Cli
    from supervisor.cli.govalues import Record
    from supervisor.cli.output import Defaults


def _cid(name: str) -> str:
    return quote(name)


def _on(flag: bool) -> bool | None:
    """Docker's client sends boolean query flags only when set."""
    return True if flag else None


def for_each(cli: Cli, names: list[str], action: Callable[[str], None]) -> int:
    """Apply to every target, printing each name on success and each error as it comes.

    docker's multi-target verbs go on after a failure and exit 1 at the end.
    """
    failed = False
    for name in names:
        try:
            action(name)
        except ApiError as exc:
            cli.err(f"corral: Error response from daemon: {exc.message}")
            failed = True
            continue
        cli.out(name)
    return 1 if failed else 0


# -- run / create ----------------------------------------------------------------------


def start_error_code(message: str) -> int:
    """docker's runStartContainerErr: 127 not found, 126 not executable, else 125."""
    if (
        "executable file not found" in message
        or "no such file or directory" in message
        or "system cannot find the file specified" in message
    ):
        return 127
    if "permission denied" in message or "is a directory" in message:
        return 126
    return 125


def create_container(
    cli: Cli, name: str | None, body: dict[str, Any], *, pull: str | None = None,
    quiet: bool = False, platform: str | None = None, cidfile: str | None = None,
) -> str:
    """`POST /containers/create?name=&platform=`; a missing image is pulled first
    (docker's `--pull missing`), or always, or never.  `--cidfile` must not exist
    (checked first, as docker's newCIDFile) and gets the ID once it is made."""
    from supervisor.cli.pull import pull_for_run

    if cidfile and os.path.exists(cidfile):
        raise CliError(
            f"container ID file found, make sure the other container isn't running or "
            f"delete {cidfile}"
        )  # exit 1 for create, 125 for run (which makes every create error a 125)
    image = body["Image"]
    query = {"name": name or None, "platform": platform or None}
    pull_for_run(cli, image, pull, quiet=quiet, missing=False)
    try:
        resp = cli.client.post("/containers/create", query, body)
    except ApiError as exc:
        if exc.status != 404 or "no such image" not in exc.message.lower():
            raise
        if not pull_for_run(cli, image, pull, quiet=quiet, missing=True):
            raise
        resp = cli.client.post("/containers/create", query, body)
    for warning in resp.get("Warnings") or []:
        cli.err(f"WARNING: {warning}")
    if cidfile:
        try:
            with open(cidfile, "x", encoding="ascii") as f:
                f.write(str(resp["Id"]))
        except OSError as exc:
            raise CliError(f"failed to write the container ID to the file: {exc}", 125) from None
    return str(resp["Id"])


def cmd_create(cli: Cli, argv: list[str]) -> int:
    from supervisor.cli.flags import CREATE, container_body

    parsed = parse(CREATE, argv)
    with flag_errors(CREATE):
        name, body = container_body(parsed, cli.environ)
    cli.out(create_container(cli, name, body, pull=parsed["pull"], quiet=parsed["quiet"],
                             platform=parsed["platform"], cidfile=parsed["cidfile"]))
    return 0


def _start_or_fail(cli: Cli, cid: str, remove_on_failure: bool) -> None:
    """Start; on failure exit like docker (125/126/127), removing the container if asked.

    `corral run` asks always: a container that it made and that never ran is removed,
    so a bad command leaves nothing half made (docker's CLI leaves it "Created"; this
    differs on purpose, see tests/test_cli_run_e2e.py).
    """
    try:
        cli.client.request("POST", f"/containers/{_cid(cid)}/start").read()
    except ApiError as exc:
        if remove_on_failure:
            import contextlib

            # the daemon may have removed it already
            with contextlib.suppress(ApiError):
                cli.client.request("DELETE", f"/containers/{_cid(cid)}", {"force": True}).read()
        raise CliError(
            f"Error response from daemon: {exc.message}", start_error_code(exc.message)
        ) from None


def _begin_wait(cli: Cli, cid: str, condition: str) -> Response:
    """Register a wait *before* start so a fast exit cannot be missed.

    Like docker's client, this returns once the response headers arrive: the daemon
    sends them as soon as the wait is registered and the body when the container exits.
    """
    return cli.client.request("POST", f"/containers/{_cid(cid)}/wait", {"condition": condition})


def _finish_wait(cli: Cli, wait: Response) -> int:
    result = wait.json() or {}
    error = result.get("Error")
    if isinstance(error, dict) and error.get("Message"):
        raise CliError(str(error["Message"]), 125)
    return int(result.get("StatusCode", 0))


class _SignalProxy:
    """Forward SIGINT/SIGTERM/SIGHUP/SIGQUIT to the container while attached (sig-proxy)."""

    SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT")

    def __init__(self, cli: Cli, cid: str) -> None:
        self.cli = cli
        self.cid = cid
        self.saved: dict[int, Any] = {}

    def __enter__(self) -> _SignalProxy:
        import signal

        for name in self.SIGNALS:
            signum = getattr(signal, name)
            self.saved[signum] = signal.signal(signum, self._forward)
        return self

    def _forward(self, signum: int, frame: object) -> None:
        import contextlib
        import signal

        with contextlib.suppress(ApiError, OSError):
            self.cli.client.request(
                "POST",
                f"/containers/{_cid(self.cid)}/kill",
                {"signal": signal.Signals(signum).name},
            ).read()

    def __exit__(self, *exc: object) -> None:
        import signal

        for signum, handler in self.saved.items():
            signal.signal(signum, handler)


def attach_and_run(
    cli: Cli,
    cid: str,
    *,
    stdin: bool,
    auto_remove: bool,
    remove_on_failure: bool = False,
    tty: bool = False,
    detach_keys: str | None = None,
    sig_proxy: bool = True,
    start: bool = True,
    stdout: bool = True,
    stderr: bool = True,
) -> int:
    """docker's attached flow: attach → wait(next-exit|removed) → start → stream → code.

    With a TTY the stream is raw and the user's terminal is in raw mode meanwhile
    (Ctrl-C goes to the container's terminal, so no signal proxy); the detach keys
    leave the container running and exit 0.  `start=False` is `attach`.
    """
    keys = b""
    query: dict[str, Any] = {"stream": True, "stdout": stdout, "stderr": stderr}
    if tty:
        from supervisor.cli.terminal import check_tty
        from supervisor.cli.terminal import detach_keys as parse_keys

        written, keys = parse_keys(detach_keys, cli.environ)
        check_tty(stdin, tty)
        if written:
            query["detachKeys"] = written  # the daemon watches for the same keys
        if not stdin:
            keys = b""
    if stdin:
        query["stdin"] = True
    conn = cli.client.hijack(f"/containers/{_cid(cid)}/attach", query)
    try:
        condition = "removed" if auto_remove else "next-exit" if start else "not-running"
        wait = _begin_wait(cli, cid, condition)
        try:
            if start:
                _start_or_fail(cli, cid, remove_on_failure or auto_remove)
            if tty:
                detached = _tty_session(cli, conn, f"/containers/{_cid(cid)}/resize", stdin, keys)
                if detached:
                    return 0
                return _finish_wait(cli, wait)
            import contextlib

            with _SignalProxy(cli, cid) if sig_proxy else contextlib.nullcontext():
                from supervisor.cli.stream import pump

                pump(conn, cli.bout, cli.berr, sys.stdin.fileno() if stdin else None)
                return _finish_wait(cli, wait)
        finally:
            wait.close()
    finally:
        conn.close()


def _tty_session(cli: Cli, conn: Hijacked, resize_path: str, stdin: bool, keys: bytes) -> bool:
    """Raw mode, the first size and every SIGWINCH sent, the raw copy; True if detached.

    The terminal is restored however this ends; a SIGTERM/SIGHUP to the client ends
    the session (the container runs on) with 128+signal, as a killed docker CLI would.
    """
    from supervisor.cli.terminal import Interrupted, RawTerminal, pump_raw

    def resize(height: int, width: int) -> None:
        cli.client.request("POST", resize_path, {"h": height, "w": width}).read()

    raw = RawTerminal(0 if stdin else -1, resize)
    try:
        with raw:
            raw.resize()
            return pump_raw(conn, cli.bout, 0 if stdin else None, keys)
    except Interrupted as exc:
        import signal

        name = signal.Signals(exc.signum).name
        raise CliError(
            f"{name} received: the session ends, the process runs on", 128 + exc.signum
        ) from None


def cmd_run(cli: Cli, argv: list[str]) -> int:
    from supervisor.cli.flags import RUN, container_body

    parsed = parse(RUN, argv)
    with flag_errors(RUN):
        name, body = container_body(parsed, cli.environ)
    auto_remove = bool(body["HostConfig"]["AutoRemove"])
    if body["Tty"] and not parsed["detach"]:
        from supervisor.cli.terminal import check_tty, detach_keys

        check_tty(bool(parsed["interactive"]), True)  # before anything is made
        detach_keys(parsed["detach_keys"], cli.environ)
    try:
        cid = create_container(cli, name, body, pull=parsed["pull"], quiet=parsed["quiet"],
                               platform=parsed["platform"], cidfile=parsed["cidfile"])
    except ApiError as exc:
        # docker run's toStatusError covers the create too: a missing device is 127
        raise CliError(
            f"Error response from daemon: {exc.message}", start_error_code(exc.message)
        ) from None
    except CliError as exc:
        raise CliError(exc.message, 125) from None
    if parsed["detach"]:
        _start_or_fail(cli, cid, remove_on_failure=True)
        cli.out(cid)
        return 0
    return attach_and_run(
        cli,
        cid,
        stdin=bool(body["AttachStdin"]),
        stdout=bool(body["AttachStdout"]),
        stderr=bool(body["AttachStderr"]),
        auto_remove=auto_remove,
        remove_on_failure=True,
        tty=bool(body["Tty"]),
        detach_keys=parsed["detach_keys"],
        sig_proxy=bool(parsed["sig_proxy"]),
    )


ATTACH = Command(
    "attach",
    "corral attach [OPTIONS] CONTAINER",
    "Attach local standard input, output, and error streams to a running container",
    (
        Opt("detach-keys", kind="str", help="Override the key sequence for detaching a container"),
        Opt("no-stdin", help="Do not attach STDIN"),
        Opt("sig-proxy", default=True, help="Proxy all received signals to the process"),
    ),
    min_args=1,
    max_args=1,
)


def cmd_attach(cli: Cli, argv: list[str]) -> int:
    """docker attach: the running container's streams; its exit code at the end."""
    p = parse(ATTACH, argv)
    info = cli.client.get(f"/containers/{_cid(p.args[0])}/json")
    state = info.get("State") or {}
    if not state.get("Running"):
        raise CliError("You cannot attach to a stopped container, start it first")
    if state.get("Paused"):
        raise CliError("You cannot attach to a paused container, unpause it first")
    config = info.get("Config") or {}
    return attach_and_run(
        cli,
        str(info["Id"]),
        stdin=bool(config.get("OpenStdin")) and not p["no_stdin"],
        auto_remove=False,
        tty=bool(config.get("Tty")),
        detach_keys=p["detach_keys"],
        sig_proxy=bool(p["sig_proxy"]),
        start=False,
    )


# -- lifecycle -------------------------------------------------------------------------

START = Command(
    "start",
    "corral start [OPTIONS] CONTAINER [CONTAINER...]",
    "Start one or more stopped containers",
    (
        Opt("attach", "a", help="Attach STDOUT/STDERR and forward signals"),
        Opt("interactive", "i", help="Attach container's STDIN"),
        Opt("detach-keys", kind="str", help="Override the key sequence for detaching a container"),
    ),
    min_args=1,
)


def cmd_start(cli: Cli, argv: list[str]) -> int:
    p = parse(START, argv)
    if p["attach"] or p["interactive"]:
        if len(p.args) > 1:
            raise CliError("you cannot start and attach multiple containers at once")
        info = cli.client.get(f"/containers/{_cid(p.args[0])}/json")
        cid = str(info["Id"])
        config = info.get("Config") or {}
        host = info.get("HostConfig") or {}
        stdin = bool(p["interactive"] and config.get("OpenStdin"))
        return attach_and_run(
            cli,
            cid,
            stdin=stdin,
            auto_remove=bool(host.get("AutoRemove")),
            tty=bool(config.get("Tty")),
            detach_keys=p["detach_keys"],
        )
    return for_each(
        cli, p.args, lambda n: cli.client.request("POST", f"/containers/{_cid(n)}/start").close()
    )


_STOP_OPTS = (
    Opt("signal", "s", "str", help="Signal to send to the container"),
    Opt("timeout", "t", "int", help="Seconds to wait before killing the container"),
)
# docker 28 renamed --time to -t, --timeout; the old spelling still works, with a note.
_STOP_ALIASES = (Opt("time", kind="int", deprecated="use --timeout instead"),)
STOP = Command(
    "stop",
    "corral stop [OPTIONS] CONTAINER [CONTAINER...]",
    "Stop one or more running containers",
    _STOP_OPTS,
    min_args=1,
    aliases=_STOP_ALIASES,
)
RESTART = Command(
    "restart",
    "corral restart [OPTIONS] CONTAINER [CONTAINER...]",
    "Restart one or more containers",
    _STOP_OPTS,
    min_args=1,
    aliases=_STOP_ALIASES,
)


def _stop_like(cli: Cli, cmd: Command, action: str, argv: list[str]) -> int:
    p = parse(cmd, argv)
    for warning in p.warnings:  # pflag prints these on stdout
        cli.out(warning)
    timeout = p["timeout"] if "timeout" in p.given else p.opts.get("time")
    query = {"t": timeout, "signal": p["signal"]}
    return for_each(
        cli,
        p.args,
        lambda n: cli.client.request("POST", f"/containers/{_cid(n)}/{action}", query).close(),
    )


def cmd_stop(cli: Cli, argv: list[str]) -> int:
    return _stop_like(cli, STOP, "stop", argv)


def cmd_restart(cli: Cli, argv: list[str]) -> int:
    return _stop_like(cli, RESTART, "restart", argv)


KILL = Command(
    "kill",
    "corral kill [OPTIONS] CONTAINER [CONTAINER...]",
    "Kill one or more running containers",
    (Opt("signal", "s", "str", help="Signal to send to the container"),),
    min_args=1,
)


def cmd_kill(cli: Cli, argv: list[str]) -> int:
    p = parse(KILL, argv)
    return for_each(
        cli,
        p.args,
        lambda n: cli.client.request(
            "POST", f"/containers/{_cid(n)}/kill", {"signal": p["signal"] or None}
        ).close(),
    )


def _simple(verb: str, summary: str) -> Callable[[Cli, list[str]], int]:
    cmd = Command(verb, f"corral {verb} CONTAINER [CONTAINER...]", summary, min_args=1)

    def run(cli: Cli, argv: list[str]) -> int:
        p = parse(cmd, argv)
        return for_each(
            cli,
            p.args,
            lambda n: cli.client.request("POST", f"/containers/{_cid(n)}/{verb}").close(),
        )

    return run


cmd_pause = _simple("pause", "Pause all processes within one or more containers")
cmd_unpause = _simple("unpause", "Unpause all processes within one or more containers")

WAIT = Command(
    "wait",
    "corral wait CONTAINER [CONTAINER...]",
    "Block until one or more containers stop, then print their exit codes",
    (Opt("condition", "", "str", default="not-running",
         help="Wait until the container meets the condition: "
              "\"not-running\", \"next-exit\" or \"removed\""),),
    min_args=1,
)


def cmd_wait(cli: Cli, argv: list[str]) -> int:
    p = parse(WAIT, argv)
    failed = False
    for name in p.args:
        try:
            result = cli.client.post(f"/containers/{_cid(name)}/wait",
                                     {"condition": p["condition"]}) or {}
        except ApiError as exc:
            cli.err(f"corral: Error response from daemon: {exc.message}")
            failed = True
            continue
        cli.out(str(result.get("StatusCode", 0)))
    return 1 if failed else 0


RM = Command(
    "rm",
    "corral rm [OPTIONS] CONTAINER [CONTAINER...]",
    "Remove one or more containers",
    (
        Opt("force", "f", help="Force the removal of a running container (uses SIGKILL)"),
        Opt("volumes", "v", help="Remove anonymous volumes associated with the container"),
    ),
    min_args=1,
)


def cmd_rm(cli: Cli, argv: list[str]) -> int:
    p = parse(RM, argv)
    query = {"force": _on(p["force"]), "v": _on(p["volumes"])}
    return for_each(
        cli, p.args, lambda n: cli.client.request("DELETE", f"/containers/{_cid(n)}", query).close()
    )


# -- ps --------------------------------------------------------------------------------

PS = Command(
    "ps",
    "corral ps [OPTIONS]",
    "List containers",
    (
        Opt("all", "a", help="Show all containers (default shows just running)"),
        Opt("filter", "f", "list", help="Filter output based on conditions provided"),
        Opt("format", kind="str", help="Format output using a custom template"),
        Opt("last", "n", "int", default=-1, help="Show n last created containers"),
        Opt("latest", "l", help="Show the latest created container"),
        Opt("no-trunc", help="Don't truncate output"),
        Opt("quiet", "q", help="Only display container IDs"),
        Opt("size", "s", help="Display total file sizes"),
    ),
    max_args=0,
)

# docker's ContainerContext: the fields `--format` sees, and their table headers.
PS_HEADERS = {
    "ID": "CONTAINER ID",
    "Names": "NAMES",
    "Image": "IMAGE",
    "Command": "COMMAND",
    "CreatedAt": "CREATED AT",
    "RunningFor": "CREATED",
    "Ports": "PORTS",
    "State": "STATE",
    "Status": "STATUS",
    "Size": "SIZE",
    "Labels": "LABELS",
    "Mounts": "MOUNTS",
    "LocalVolumes": "LOCAL VOLUMES",
    "Networks": "NETWORKS",
    "Platform": "PLATFORM",
}


def _ps_defaults(size: bool) -> Defaults:
    from supervisor.cli.output import Defaults

    table = ("table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t"
             "{{.Ports}}\t{{.Names}}" + ("\t{{.Size}}" if size else ""))
    raw = ("container_id: {{.ID}}\nimage: {{.Image}}\ncommand: {{.Command}}\n"
           "created_at: {{.CreatedAt}}\nstate: {{- pad .State 1 0}}\n"
           "status: {{- pad .Status 1 0}}\nnames: {{.Names}}\nlabels: {{- pad .Labels 1 0}}\n"
           "ports: {{- pad .Ports 1 0}}\n" + ("size: {{.Size}}\\n" if size else ""))
    return Defaults(table, "{{.ID}}", raw, "container_id: {{.ID}}")


def _ps_names(raw: list[str], trunc: bool) -> str:
    """NAMES: slashes dropped; truncated, only the first name that is not a link alias."""
    names = [n[1:] if n.startswith("/") else n for n in raw]
    if trunc:
        for name in names:
            if "/" not in name:
                return name
    return ",".join(names)


def ps_row(c: dict[str, Any], now: float, trunc: bool) -> dict[str, Any]:
    """One container summary → the values of docker's ContainerContext fields."""
    ident = str(c.get("Id", ""))
    image = str(c.get("Image", "")) or "<no image>"
    if trunc and image != "<no image>":
        if fmt.short_id(str(c.get("ImageID", ""))) == fmt.short_id(image) or image.startswith(
                "sha256:"):
            image = fmt.short_id(image)
        image = image.split("@", 1)[0] if "@sha256:" in image else image
    command = str(c.get("Command", ""))
    if trunc:
        command = fmt.ellipsis(command, 20)
    created = float(c.get("Created") or 0)
    size = fmt.human_size(float(c.get("SizeRw") or 0))
    if c.get("SizeRootFs"):
        size += f" (virtual {fmt.human_size(float(c['SizeRootFs']))})"
    labels = c.get("Labels") or {}
    mounts = [str(m.get("Name") or m.get("Source") or "") for m in c.get("Mounts") or []]
    descriptor = c.get("ImageManifestDescriptor") or {}
    platform = descriptor.get("platform") if isinstance(descriptor, dict) else None
    return {
        "ID": ident[:12] if trunc else ident,
        "Image": image,
        "Command": fmt.go_quote(command),
        "RunningFor": fmt.ago(created, now),
        "CreatedAt": time.strftime("%Y-%m-%d %H:%M:%S %z %Z", time.localtime(created)),
        "Status": str(c.get("Status", "")),
        "State": str(c.get("State", "")),
        "Ports": fmt.ports(c.get("Ports")),
        "Names": _ps_names(list(c.get("Names") or []), trunc),
        "Size": size,
        "Labels": ",".join(f"{k}={v}" for k, v in sorted(labels.items())),
        "Mounts": ",".join(fmt.ellipsis(m, 15) if trunc else m for m in mounts),
        "LocalVolumes": str(sum(1 for m in c.get("Mounts") or [] if m.get("Driver") == "local")),
        "Networks": ",".join(sorted((c.get("NetworkSettings") or {}).get("Networks") or {})),
        "Platform": _platform(platform) if platform else None,
    }


def _platform(p: dict[str, Any]) -> str:
    """containerd's platforms.FormatAll: `linux/arm64/v8`."""
    parts = [str(p.get("os") or "unknown"), str(p.get("architecture") or "unknown")]
    if p.get("variant"):
        parts.append(str(p["variant"]))
    return "/".join(parts)


def ps_record(c: dict[str, Any], now: float, trunc: bool) -> Record:
    """A container as docker's `*formatter.ContainerContext`, `.Label "key"` included."""
    from supervisor.cli.govalues import Record

    labels = c.get("Labels") or {}
    return Record("*formatter.ContainerContext", ps_row(c, now, trunc),
                  {"Label": (lambda key: str(labels.get(key, "")), ("string",))})


def cmd_ps(cli: Cli, argv: list[str]) -> int:
    from supervisor.cli.output import PS_CHECK, RowFormat, check_template

    p = parse(PS, argv)
    size = p["size"]
    if p["format"]:
        # docker checks the template, as typed, against an empty row before asking the
        # daemon, and asks for sizes if it reads `.Size` (unless --size=false or -q).
        given = check_template(p["format"], ps_record({}, 0, True), PS_CHECK)
        if "size" not in p.given and not p["quiet"] and "Size" in given.fields():
            size = True
    if p["quiet"] and p["format"]:
        cli.err("WARNING: Ignoring custom format, because both --format and --quiet are set.")
    out = RowFormat(_ps_defaults(p["size"]).pick(p["format"], p["quiet"], quiet_wins=True),
                    PS_HEADERS)
    limit = 1 if p["latest"] else p["last"]
    query = {
        "all": _on(p["all"]),
        "limit": limit if limit > 0 else None,
        "size": _on(size),
        "filters": filters_query(p["filter"]),
    }
    containers = cli.client.get("/containers/json", query) or []
    now = time.time()
    cli.stdout.write(out.render(ps_record(c, now, not p["no_trunc"]) for c in containers))
    return 0


# -- logs ------------------------------------------------------------------------------

LOGS = Command(
    "logs",
    "corral logs [OPTIONS] CONTAINER",
    "Fetch the logs of a container",
    (
        Opt("follow", "f", help="Follow log output"),
        Opt("since", kind="str", help="Show logs since timestamp or relative (e.g. 42m)"),
        Opt("until", kind="str", help="Show logs before a timestamp or relative (e.g. 42m)"),
        Opt("tail", "n", "str", default="all", help="Number of lines to show from the end"),
        Opt("timestamps", "t", help="Show timestamps"),
        Opt("details", help="Show extra details provided to logs"),
    ),
    min_args=1,
    max_args=1,
)


def timestamp_param(value: str, now: float) -> str:
    """docker's timetypes.GetTimestamp: `42m` (relative), RFC 3339, or unix seconds."""
    from supervisor.units import go_duration_ns

    if value != "0":
        try:
            ns = go_duration_ns(value)
        except ValueError:
            pass
        else:
            stamp = now - ns / 1e9
            return f"{int(stamp)}.{int(round((stamp % 1) * 1e9)):09d}"
    if not any(ch in value for ch in "-:T") or value.startswith("-"):
        try:
            float(value)
        except ValueError:
            raise UsageError(f'invalid value for "since"/"until": {value!r}') from None
        return value
    from datetime import datetime

    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f'failed to parse value as time or duration: "{value}"') from None
    stamp = parsed.timestamp()  # naive → local time, as docker
    return f"{int(stamp)}.{int(round((stamp % 1) * 1e9)):09d}"


def cmd_logs(cli: Cli, argv: list[str]) -> int:
    from supervisor.cli.stream import copy_chunks

    p = parse(LOGS, argv)
    now = time.time()
    query = {
        "stdout": True,
        "stderr": True,
        "follow": _on(p["follow"]),
        "timestamps": _on(p["timestamps"]),
        "details": _on(p["details"]),
        "tail": p["tail"],
        "since": timestamp_param(p["since"], now) if p["since"] else None,
        "until": timestamp_param(p["until"], now) if p["until"] else None,
    }
    # one frame per run of records, not per line (see supervise/logread.py)
    resp = cli.client.request(
        "GET", f"/containers/{_cid(p.args[0])}/logs", query, headers={"X-Corral-Frames": "merged"}
    )
    copy_chunks(resp.iter_chunks(), cli.bout, cli.berr)
    return 0


# -- exec ------------------------------------------------------------------------------

EXEC = Command(
    "exec",
    "corral exec [OPTIONS] CONTAINER COMMAND [ARG...]",
    "Execute a command in a running container",
    (
        Opt("detach", "d", help="Detached mode: run command in the background"),
        Opt("env", "e", "list", help="Set environment variables"),
        Opt("env-file", kind="list", help="Read in a file of environment variables"),
        Opt("interactive", "i", help="Keep STDIN open even if not attached"),
        Opt("privileged", help="Give extended privileges to the command"),
        Opt("tty", "t", help="Allocate a pseudo-TTY"),
        Opt("detach-keys", kind="str", help="Override the key sequence for detaching a container"),
        Opt("user", "u", "str", help="Username or UID (format: <name|uid>[:<group|gid>])"),
        Opt("workdir", "w", "str", help="Working directory inside the container"),
    ),
    min_args=2,
    interspersed=False,
)


def exec_body(p: Any, environ: Any) -> dict[str, Any]:
    """Parsed exec flags → `POST /containers/{id}/exec` body (docker's ExecOptions)."""
    from supervisor.cli.flags import collect_env

    env = collect_env(p["env_file"], p["env"], environ)
    detach = bool(p["detach"])
    body: dict[str, Any] = {
        "User": p["user"] or "",
        "Privileged": bool(p["privileged"]),
        "Tty": bool(p["tty"]),
        "AttachStdin": bool(p["interactive"]) and not detach,
        "AttachStdout": not detach,
        "AttachStderr": not detach,
        "Detach": detach,
        "DetachKeys": p["detach_keys"] or "",
        "Env": env,
        "WorkingDir": p["workdir"] or "",
        "Cmd": p.args[1:],
    }
    if p["tty"]:
        from supervisor.cli.terminal import size

        body["ConsoleSize"] = list(size() or (0, 0))
    return body


def cmd_exec(cli: Cli, argv: list[str]) -> int:
    from supervisor.cli.stream import pump

    p = parse(EXEC, argv)
    body = exec_body(p, cli.environ)
    tty = bool(body["Tty"])
    keys = b""
    if tty:
        from supervisor.cli.terminal import check_tty, detach_keys

        written, keys = detach_keys(p["detach_keys"], cli.environ)
        check_tty(body["AttachStdin"], tty)
        body["DetachKeys"] = written
        if not body["AttachStdin"]:
            keys = b""
    created = cli.client.post(f"/containers/{_cid(p.args[0])}/exec", None, body)
    exec_id = quote(str(created["Id"]))
    if body["Detach"]:
        cli.client.request(
            "POST", f"/exec/{exec_id}/start", json_body={"Detach": True, "Tty": tty}
        ).close()
        return 0
    conn: Hijacked = cli.client.hijack(
        f"/exec/{exec_id}/start", None, {"Detach": False, "Tty": tty}
    )
    try:
        if tty:
            if _tty_session(cli, conn, f"/exec/{exec_id}/resize", body["AttachStdin"], keys):
                return 0
        else:
            pump(conn, cli.bout, cli.berr, sys.stdin.fileno() if body["AttachStdin"] else None)
    finally:
        conn.close()
    info = cli.client.get(f"/exec/{exec_id}/json") or {}
    code = info.get("ExitCode")
    return int(code) if code is not None else 0


# -- port ------------------------------------------------------------------------------

PORT = Command(
    "port",
    "corral port CONTAINER [PRIVATE_PORT[/PROTO]]",
    "List port mappings or a specific mapping for the container",
    min_args=1,
    max_args=2,
)


def port_lines(ports: dict[str, Any], only: str | None) -> Iterator[str]:
    want = None
    if only:
        want = only if "/" in only else only + "/tcp"
    for key in sorted(
        ports, key=lambda k: (int(k.split("/")[0]) if k.split("/")[0].isdigit() else 0, k)
    ):
        if want and key != want:
            continue
        for b in ports[key] or []:
            ip = b.get("HostIp") or "0.0.0.0"
            host = f"[{ip}]" if ":" in ip else ip
            line = f"{host}:{b.get('HostPort', '')}"
            yield line if want else f"{key} -> {line}"


def cmd_port(cli: Cli, argv: list[str]) -> int:
    p = parse(PORT, argv)
    info = cli.client.get(f"/containers/{_cid(p.args[0])}/json")
    ports = (info.get("NetworkSettings") or {}).get("Ports") or {}
    only = p.args[1] if len(p.args) > 1 else None
    lines = list(port_lines(ports, only))
    if only and not lines:
        raise CliError(f"No public port '{only}' published for {p.args[0]}")
    for line in lines:
        cli.out(line)
    return 0
