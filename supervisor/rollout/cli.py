"""`corral compose rollout SERVICE...`: roll the services out again, replica by replica,
as their `deploy.update_config` says (e.g. after a `compose pull` of a tag that moved,
or to replace replicas on demand); the old replicas serve until the new are healthy.

It runs in the foreground (the project the daemon keeps, if it keeps one, is not
changed): `up --force-recreate --no-deps SERVICE...` through the rollout path."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from config.rollout import rollout_of
from supervisor.cli.context import CliError
from supervisor.cli.parser import Command, Opt, UsageError, parse

if TYPE_CHECKING:
    from supervisor.cli.compose import Globals
    from supervisor.cli.context import Cli

ROLLOUT = Command(
    "compose rollout",
    "corral compose rollout [OPTIONS] SERVICE...",
    "Roll out services again, replica by replica (deploy.update_config)",
    (Opt("timeout", "t", "int", help="Drain and shutdown timeout in seconds"),),
)


def compose_rollout(cli: Cli, g: Globals, argv: list[str]) -> int:
    from config.reconcile import UpOptions
    from supervisor.cli import compose
    from supervisor.compose.applier import Applier

    p = parse(ROLLOUT, argv)
    if not p.args:
        raise UsageError('"compose rollout" requires at least 1 service', 1)
    project = compose.load(cli, g)
    for svc in p.args:
        if svc not in project.services:
            raise CliError(f"no such service: {svc}")
        if rollout_of(project.services[svc], project.model.get("volumes") or {}) is None:
            raise CliError(
                f'service "{svc}" has no deploy.update_config: a rollout follows it '
                "(use 'compose up --force-recreate' to recreate it instead)"
            )
    opts = UpOptions(services=list(p.args), force_recreate=True, no_deps=True)
    api = compose._api(cli)
    applier = Applier(api, compose._say(cli))
    applier.timeout = p["timeout"]

    async def run() -> int:
        plan = await applier.up(project, opts)
        for sp in plan.services:
            if not any(a.kind == "recreate" for a in sp.actions):
                cli.err(f" Service {sp.service}  no running replica to roll out")
        return 0

    return compose._run_async(cli, run)


def annotate_ps(containers: list[dict[str, Any]], rollouts: list[dict[str, Any]]) -> None:
    """`compose ps`: a rollout in progress shown in both containers' STATUS, e.g.
    `Up 2 minutes (healthy), rolling out to 0123456789ab_demo-web-1 (draining)` and
    `Up 1 second (health: starting), rollout of demo-web-1 (starting)`."""
    names = {str(c.get("Id")): str((c.get("Names") or ["?"])[0]).lstrip("/") for c in containers}
    notes: dict[str, str] = {}
    for r in rollouts:
        old, new, phase = str(r.get("From")), str(r.get("To")), str(r.get("Phase"))
        notes[old] = f"rolling out to {names.get(new, new[:12])} ({phase})"
        notes[new] = f"rollout of {names.get(old, old[:12])} ({phase})"
    for c in containers:
        note = notes.get(str(c.get("Id")))
        if note:
            c["Status"] = f"{c.get('Status', '')}, {note}"
