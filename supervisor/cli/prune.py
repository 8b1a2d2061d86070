"""`container prune`, `image prune`, `system prune`, `system df` (and the `system`
group), with docker's prompts, sections and `Total reclaimed space: X`.

Each pruner returns (space, section text) as docker's do, so `system prune` prints the
same sections in the same order (containers, networks, volumes, images, build cache).
"""

from __future__ import annotations

import sys

from supervisor.cli import format as fmt
from supervisor.cli.filters import filters_query
from supervisor.cli.parser import Command, Opt, UsageError, parse

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from supervisor.cli.context import Cli

_FILTER = Opt("filter", kind="list", help="Provide filter values (e.g. \"until=<timestamp>\")")
_FORCE = Opt("force", "f", help="Do not prompt for confirmation")

CONTAINER_PRUNE = Command("container prune", "corral container prune [OPTIONS]",
                          "Remove all stopped containers", (_FILTER, _FORCE), max_args=0)
IMAGE_PRUNE = Command("image prune", "corral image prune [OPTIONS]", "Remove unused images", (
    Opt("all", "a", help="Remove all unused images, not just dangling ones"), _FILTER, _FORCE,
), max_args=0)
SYSTEM_PRUNE = Command("system prune", "corral system prune [OPTIONS]", "Remove unused data", (
    Opt("all", "a", help="Remove all unused images not just dangling ones"),
    _FILTER, _FORCE,
    Opt("volumes", help="Prune anonymous volumes"),
), max_args=0)
SYSTEM_DF = Command("system df", "corral system df [OPTIONS]", "Show corral disk usage", (
    Opt("format", "", "str", help="Format output using a custom template"),
    Opt("verbose", "v", help="Show detailed information on space usage"),
), max_args=0)

SYSTEM_HELP = """
Usage:  corral system COMMAND

Manage corral

Commands:
  df          Show corral disk usage
  events      Get real time events from the server
  info        Display system-wide information
  prune       Remove unused data

Run 'corral system COMMAND --help' for more information on a command.
"""


def human(size: float) -> str:
    """go-units HumanSize (4 significant digits), what the prune totals use."""
    return fmt.human_size(size, 4)


def confirm(cli: Cli, warning: str) -> bool:
    cli.stdout.write(f"{warning}\nAre you sure you want to continue? [y/N] ")
    cli.stdout.flush()
    return sys.stdin.readline().strip().lower() in ("y", "yes")


def prune_containers(cli: Cli, filters: list[str]) -> tuple[int, str]:
    report = cli.client.post("/containers/prune", {"filters": filters_query(filters)}) or {}
    ids = report.get("ContainersDeleted") or []
    if not ids:
        return 0, ""
    return int(report.get("SpaceReclaimed") or 0), "Deleted Containers:\n" + "".join(
        f"{i}\n" for i in ids)


def prune_networks(cli: Cli, filters: list[str]) -> tuple[int, str]:
    report = cli.client.post("/networks/prune", {"filters": filters_query(filters)}) or {}
    names = report.get("NetworksDeleted") or []
    return 0, ("Deleted Networks:\n" + "".join(f"{n}\n" for n in names)) if names else ""


def prune_volumes(cli: Cli, filters: list[str]) -> tuple[int, str]:
    report = cli.client.post("/volumes/prune", {"filters": filters_query(filters)}) or {}
    names = report.get("VolumesDeleted") or []
    if not names:
        return 0, ""
    return int(report.get("SpaceReclaimed") or 0), "Deleted Volumes:\n" + "".join(
        f"{n}\n" for n in names)


def prune_images(cli: Cli, filters: list[str], all_images: bool) -> tuple[int, str]:
    query = filters_query([*filters, f"dangling={'false' if all_images else 'true'}"])
    report = cli.client.post("/images/prune", {"filters": query}) or {}
    entries = report.get("ImagesDeleted") or []
    if not entries:
        return 0, ""
    lines = []
    for e in entries:
        if e.get("Untagged"):
            lines.append(f"untagged: {e['Untagged']}\n")
        if e.get("Deleted"):
            lines.append(f"deleted: {e['Deleted']}\n")
    return int(report.get("SpaceReclaimed") or 0), "Deleted Images:\n" + "".join(lines)


def prune_build_cache(cli: Cli, filters: list[str], all_cache: bool) -> tuple[int, str]:
    query = filters_query([*filters, *(["all=true"] if all_cache else [])])
    report = cli.client.post("/build/prune", {"filters": query}) or {}
    ids = report.get("CachesDeleted") or []
    if not ids:
        return 0, ""
    return int(report.get("SpaceReclaimed") or 0), "Deleted build cache objects:\n" + "".join(
        f"{i}\n" for i in ids)


def _finish(cli: Cli, sections: list[tuple[int, str]]) -> int:
    total = 0
    for space, text in sections:
        total += max(space, 0)
        if text:
            cli.out(text)
    cli.out(f"Total reclaimed space: {human(total)}")
    return 0


def cmd_container_prune(cli: Cli, argv: list[str]) -> int:
    p = parse(CONTAINER_PRUNE, argv)
    if not p["force"] and not confirm(cli, "WARNING! This will remove all stopped containers."):
        return 0
    return _finish(cli, [prune_containers(cli, list(p["filter"]))])


def cmd_image_prune(cli: Cli, argv: list[str]) -> int:
    p = parse(IMAGE_PRUNE, argv)
    warning = ("WARNING! This will remove all images without at least one container "
               "associated to them." if p["all"] else
               "WARNING! This will remove all dangling images.")
    if not p["force"] and not confirm(cli, warning):
        return 0
    return _finish(cli, [prune_images(cli, list(p["filter"]), bool(p["all"]))])


def system_prune_warning(all_: bool, volumes: bool, filters: list[str]) -> str:
    items = ["all stopped containers", "all networks not used by at least one container"]
    if volumes:
        items.append("all anonymous volumes not used by at least one container")
    items.append("all images without at least one container associated to them" if all_
                 else "all dangling images")
    items.append("all build cache" if all_ else "unused build cache")
    text = "WARNING! This will remove:\n" + "".join(f"  - {i}\n" for i in items)
    if filters:
        text += "\n  Items to be pruned will be filtered with:\n" + "".join(
            f"  - {f}\n" for f in filters)
    return text


def cmd_system_prune(cli: Cli, argv: list[str]) -> int:
    p = parse(SYSTEM_PRUNE, argv)
    filters = list(p["filter"])
    if not p["force"] and not confirm(cli, system_prune_warning(bool(p["all"]),
                                                                bool(p["volumes"]), filters)):
        return 0
    sections = [prune_containers(cli, filters), prune_networks(cli, filters)]
    if p["volumes"]:
        sections.append(prune_volumes(cli, filters))
    sections.append(prune_images(cli, filters, bool(p["all"])))
    sections.append(prune_build_cache(cli, filters, bool(p["all"])))
    return _finish(cli, sections)


# ------------------------------------------------------------------ df


def _pct(part: int, whole: int) -> str:
    return f"{human(part)} ({part * 100 // whole}%)" if whole > 0 else human(part)


def df_rows(body: dict[str, Any]) -> list[list[str]]:
    """docker's `system df` summary rows (formatter/disk_usage.go's arithmetic)."""
    images = body.get("Images") or []
    containers = body.get("Containers") or []
    volumes = body.get("Volumes") or []
    cache = body.get("BuildCache") or []
    layers = int(body.get("LayersSize") or 0)
    used = sum(int(i["Size"]) - int(i["SharedSize"]) for i in images
               if i.get("Containers") and i.get("Size", -1) != -1
               and i.get("SharedSize", -1) != -1)
    active_states = ("running", "paused", "restarting")
    active_c = [c for c in containers if any(s in (c.get("State") or "") for s in active_states)]
    c_size = sum(int(c.get("SizeRw") or 0) for c in containers)
    c_reclaim = sum(int(c.get("SizeRw") or 0) for c in containers if c not in active_c)
    v_sizes = [(int((v.get("UsageData") or {}).get("Size", -1)),
                int((v.get("UsageData") or {}).get("RefCount", 0))) for v in volumes]
    v_size = sum(s for s, _ in v_sizes if s != -1)
    v_reclaim = sum(s for s, refs in v_sizes if s != -1 and refs == 0)
    b_size = sum(int(b.get("Size") or 0) for b in cache if not b.get("Shared"))
    b_reclaim = sum(int(b.get("Size") or 0) for b in cache
                    if not b.get("InUse") and not b.get("Shared"))
    return [
        ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"],
        ["Images", str(len(images)), str(sum(1 for i in images if i.get("Containers"))),
         human(layers), _pct(layers - used, layers)],
        ["Containers", str(len(containers)), str(len(active_c)), human(c_size),
         _pct(c_reclaim, c_size)],
        ["Local Volumes", str(len(volumes)), str(sum(1 for _, r in v_sizes if r > 0)),
         human(v_size), _pct(v_reclaim, v_size)],
        ["Build Cache", str(len(cache)), str(sum(1 for b in cache if b.get("InUse"))),
         human(b_size), human(b_reclaim)],
    ]


def df_verbose(body: dict[str, Any], now: float) -> str:
    """`system df -v`: images, containers, volumes and build cache, one table each."""
    out = ["Images space usage:\n"]
    rows = [["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE", "SHARED SIZE",
             "UNIQUE SIZE", "CONTAINERS"]]
    for i in body.get("Images") or []:
        tags = i.get("RepoTags") or ["<none>:<none>"]
        for t in tags:
            repo, _, tag = t.rpartition(":")
            rows.append([repo, tag, i["Id"].removeprefix("sha256:")[:12],
                         fmt.ago(float(i["Created"]), now), fmt.human_size(i["Size"]),
                         human(i["SharedSize"]), human(i["Size"] - i["SharedSize"]),
                         str(i.get("Containers", 0))])
    out.append(fmt.table(rows))
    out.append("Containers space usage:\n")
    rows = [["CONTAINER ID", "IMAGE", "COMMAND", "LOCAL VOLUMES", "SIZE", "CREATED", "STATUS",
             "NAMES"]]
    for c in body.get("Containers") or []:
        mounts = sum(1 for m in c.get("Mounts") or [] if m.get("Type") == "volume")
        command = c.get("Command") or ""
        rows.append([c["Id"][:12], c.get("Image") or "",
                     f'"{command[:19]}…"' if len(command) > 20 else f'"{command}"',
                     str(mounts), fmt.human_size(c.get("SizeRw") or 0),
                     fmt.ago(float(c.get("Created") or 0), now), c.get("Status") or "",
                     ",".join(n.lstrip("/") for n in c.get("Names") or [])])
    out.append(fmt.table(rows))
    out.append("Local Volumes space usage:\n")
    rows = [["VOLUME NAME", "LINKS", "SIZE"]]
    for v in body.get("Volumes") or []:
        usage = v.get("UsageData") or {}
        rows.append([v["Name"], str(usage.get("RefCount", 0)), human(usage.get("Size", 0))])
    out.append(fmt.table(rows))
    out.append("Build cache usage: " + human(sum(int(b.get("Size") or 0)
                                               for b in body.get("BuildCache") or [])) + "\n")
    rows = [["CACHE ID", "CACHE TYPE", "SIZE", "CREATED", "LAST USED", "USAGE", "SHARED"]]
    out.append(fmt.table(rows))
    return "\n".join(out)


def cmd_system_df(cli: Cli, argv: list[str]) -> int:
    import time

    p = parse(SYSTEM_DF, argv)
    if p["format"]:
        raise UsageError("system df --format is not supported by corral yet")
    body = cli.client.get("/system/df") or {}
    if p["verbose"]:
        cli.stdout.write(df_verbose(body, time.time()))
        return 0
    cli.stdout.write(fmt.table(df_rows(body)))
    return 0


def cmd_system(cli: Cli, argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        cli.stdout.write(SYSTEM_HELP)
        return 0
    sub, rest = argv[0], argv[1:]
    if sub == "df":
        return cmd_system_df(cli, rest)
    if sub == "prune":
        return cmd_system_prune(cli, rest)
    if sub in ("info", "events"):
        import importlib

        name = "system" if sub == "info" else "events"
        module = importlib.import_module(f"supervisor.cli.{name}")
        func: Any = getattr(module, f"cmd_{sub}")
        return int(func(cli, rest))
    raise UsageError(f"unknown command \"{sub}\" for \"corral system\"\n"
                     "Run 'corral system --help' for more information")


BUILDER_PRUNE = Command("builder prune", "corral builder prune", "Remove build cache", (
    Opt("all", "a", help="Remove all unused build cache, not just dangling ones"),
    _FILTER, _FORCE,
), max_args=0)

BUILDER_HELP = """
Usage:  corral builder COMMAND

Manage builds

Commands:
  prune       Remove build cache

Run 'corral builder COMMAND --help' for more information on a command.
"""


def cmd_builder(cli: Cli, argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        cli.stdout.write(BUILDER_HELP)
        return 0
    if argv[0] != "prune":
        raise UsageError(f"unknown command \"{argv[0]}\" for \"corral builder\"\n"
                         "Run 'corral builder --help' for more information")
    p = parse(BUILDER_PRUNE, argv[1:])
    warning = ("WARNING! This will remove all build cache." if p["all"] else
               "WARNING! This will remove all dangling build cache.")
    if not p["force"] and not confirm(cli, warning):
        return 0
    return _finish(cli, [prune_build_cache(cli, list(p["filter"]), bool(p["all"]))])
