"""`corral auto-update [--dry-run]`: Podman's verb, once, from the CLI (the daemon runs
the same pass every `auto-update-interval`; `supervisor/rollout/autoupdate.py`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from supervisor.cli import format as fmt
from supervisor.cli.parser import Command, Opt, parse

if TYPE_CHECKING:
    from supervisor.cli.context import Cli

AUTO_UPDATE = Command(
    "auto-update",
    "corral auto-update [OPTIONS]",
    "Update containers labelled corral.auto-update (or io.containers.autoupdate) to their "
    "image's newest, rolled out without downtime",
    (Opt("dry-run", help="Check for pending updates: nothing is pulled or changed"),),
)


def cmd_auto_update(cli: Cli, argv: list[str]) -> int:
    from supervisor.cli.compose import _api, _run_async
    from supervisor.rollout.autoupdate import AutoUpdate

    p = parse(AUTO_UPDATE, argv)
    api = _api(cli)
    updater = AutoUpdate(api, cli.err)
    found = []

    async def run() -> int:
        found.extend(await updater.run(dry_run=p["dry_run"]))
        return 0

    code = _run_async(cli, run)
    if code:
        return code
    rows = [["CONTAINER", "IMAGE", "POLICY", "UPDATED"]]
    for c in found:
        updated = c.updated.replace("_", " ")
        rows.append([f"{c.container.id[:12]} ({c.container.name})", c.image, c.policy, updated])
    cli.stdout.write(fmt.table(rows))
    failed = [c for c in found if c.updated in ("failed", "rolled_back")]
    for c in failed:
        cli.err(f"corral: {c.container.name}: {c.reason}")
    return 1 if failed else 0
