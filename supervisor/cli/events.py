"""`events`, `update`, `rename`: the supervision verbs."""

from __future__ import annotations

import json
import time

from supervisor.api.client import quote
from supervisor.cli.containers import timestamp_param
from supervisor.cli.filters import filters_query
from supervisor.cli.parser import Command, Opt, UsageError, flag_errors, parse

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Generator
    from typing import Any

    from supervisor.cli.context import Cli
    from supervisor.cli.govalues import Record

EVENTS = Command(
    "events",
    "corral events [OPTIONS]",
    "Get real time events from the server",
    (
        Opt("filter", "f", "list", help="Filter output based on conditions provided"),
        Opt("format", kind="str", help="Format output using a custom template"),
        Opt("since", kind="str", help="Show all events created since timestamp"),
        Opt("until", kind="str", help="Stream events until this timestamp"),
    ),
    max_args=0,
)

UPDATE = Command(
    "update",
    "corral update [OPTIONS] CONTAINER [CONTAINER...]",
    "Update configuration of one or more containers",
    (
        Opt("restart", kind="str", help="Restart policy to apply when a container exits"),
        Opt("memory", "m", "str", help="Memory limit"),
        Opt("memory-swap", kind="str",
            help="Swap limit equal to memory plus swap: -1 to enable unlimited swap"),
        Opt("cpus", kind="str", help="Number of CPUs"),
        Opt("pids-limit", kind="str", help="Tune container pids limit (set -1 for unlimited)"),
    ),
    min_args=1,
)

RENAME = Command(
    "rename", "corral rename CONTAINER NEW_NAME", "Rename a container", (), min_args=2, max_args=2
)


def event_line(e: dict[str, Any]) -> str:
    """docker's default line: `TIME TYPE ACTION ID (k=v, ...)`."""
    ns = int(e.get("timeNano") or 0)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 1_000_000_000))
    actor = e.get("Actor") or {}
    attrs = actor.get("Attributes") or {}
    inner = ", ".join(f"{k}={v}" for k, v in sorted(attrs.items()))
    return (
        f"{stamp}.{ns % 1_000_000_000:09d}Z {e.get('Type')} {e.get('Action')} "
        f"{actor.get('ID', '')}" + (f" ({inner})" if inner else "")
    )


_MESSAGE_KEYS = ("status", "id", "from", "Type", "Action", "Actor", "scope", "time", "timeNano")


def event_record(e: dict[str, Any]) -> Record:
    """An event as docker's `*events.Message`: Go's field names (`.ID`, `.Status`,
    `.Actor.Attributes.name`), and its JSON in the struct's order."""
    from supervisor.cli.govalues import Record, go_json

    actor = e.get("Actor") or {}
    attrs = actor.get("Attributes") or {}
    actor_json = {"ID": str(actor.get("ID", "")), "Attributes": dict(sorted(attrs.items()))}
    message = {k: e[k] for k in _MESSAGE_KEYS if k in e}
    message.update({k: v for k, v in e.items() if k not in message})
    if "Actor" in message:
        message["Actor"] = actor_json
    fields = {
        "Status": str(e.get("status", "")), "ID": str(e.get("id", "")),
        "From": str(e.get("from", "")), "Type": str(e.get("Type", "")),
        "Action": str(e.get("Action", "")),
        "Actor": Record("events.Actor", actor_json, marshal=lambda: go_json(actor_json)),
        "Scope": str(e.get("scope", "")), "Time": int(e.get("time") or 0),
        "TimeNano": int(e.get("timeNano") or 0),
    }
    return Record("*events.Message", fields, marshal=lambda: go_json(message))


def cmd_events(cli: Cli, argv: list[str]) -> int:
    from supervisor.cli import output

    p = parse(EVENTS, argv)
    out = None
    if p["format"]:
        # docker checks the template against an empty message before streaming; it
        # knows `json` (one object a line) but no `table`.
        out = output.ObjectFormat(p["format"], json_all=False, wording=output.EVENTS)
        out.render(event_record({}))
    now = time.time()
    query = {
        "since": timestamp_param(p["since"], now) if p["since"] else None,
        "until": timestamp_param(p["until"], now) if p["until"] else None,
        "filters": filters_query(p["filter"]),
    }
    import contextlib  # here: the module serves update and rename too, whose start counts

    with contextlib.closing(event_stream(cli, query)) as events:
        for e in events:
            if out is not None:
                cli.stdout.write(out.render(event_record(e)))
            else:
                cli.out(event_line(e))
            cli.stdout.flush()
    return 0


def event_stream(cli: Cli, query: dict[str, Any]) -> Generator[dict[str, Any], None, None]:
    """The daemon's events for `query` (GET /events), one decoded message each, until
    the stream ends; closing the generator closes the stream (`corral events`, compose's
    `events`)."""
    resp = cli.client.request("GET", "/events", query)
    try:
        for raw in resp.iter_lines():
            if raw.strip():
                yield json.loads(raw)
    finally:
        resp.close()


def parse_restart(value: str) -> dict[str, Any]:
    """`no`, `always`, `unless-stopped`, `on-failure[:N]` → RestartPolicy."""
    name, _, count = value.partition(":")
    if count and (name != "on-failure" or not count.isdigit()):
        raise UsageError(f'invalid restart policy format: "{value}"')
    return {"Name": name, "MaximumRetryCount": int(count or 0)}


def cmd_update(cli: Cli, argv: list[str]) -> int:
    from supervisor.cli.flags import bad, parse_cpus, ram_in_bytes

    p = parse(UPDATE, argv)
    body: dict[str, Any] = {}
    if p["restart"]:
        body["RestartPolicy"] = parse_restart(p["restart"])
    with flag_errors(UPDATE):
        for long, key in (("memory", "Memory"), ("memory-swap", "MemorySwap")):
            text = p[long.replace("-", "_")]
            if not text:
                continue
            try:
                body[key] = -1 if long == "memory-swap" and text == "-1" else ram_in_bytes(text)
            except ValueError as exc:
                raise bad(long, text, str(exc)) from None
        if p["cpus"]:
            try:
                body["NanoCpus"] = parse_cpus(p["cpus"])
            except ValueError as exc:
                raise bad("cpus", p["cpus"], str(exc)) from None
        if p["pids_limit"]:
            value = p["pids_limit"]
            try:
                body["PidsLimit"] = int(value)
            except ValueError:
                reason = f'strconv.ParseInt: parsing "{value}": invalid syntax'
                raise bad("pids-limit", value, reason) from None
    for name in p.args:
        cli.client.post(f"/containers/{quote(name)}/update", None, body)
        cli.out(name)
    return 0


def cmd_rename(cli: Cli, argv: list[str]) -> int:
    p = parse(RENAME, argv)
    old, new = p.args
    cli.client.request("POST", f"/containers/{quote(old)}/rename", {"name": new}).close()
    return 0
