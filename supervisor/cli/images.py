"""Image verbs: import, images, rmi, tag, history, commit.

There is no registry yet, so images come from `import` (a rootfs tarball) or `commit`.
"""

from __future__ import annotations

import re
import time

from supervisor.api.client import ApiError, quote
from supervisor.cli import format as fmt
from supervisor.cli.context import CliError
from supervisor.cli.parser import Command, Opt, parse

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import IO, Any

    from supervisor.cli.context import Cli
    from supervisor.cli.output import Defaults

_REPO = re.compile(
    r"(?:[a-zA-Z0-9.-]+(?::\d+)?/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
    r"(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
)
_TAG = re.compile(r"[\w][\w.-]{0,127}")


def split_ref(ref: str) -> tuple[str, str]:
    """Validate `repo[:tag]` like docker's reference parser and split it."""
    repo, tag = fmt.repo_tag(ref)
    if not _REPO.fullmatch(repo) or (tag and not _TAG.fullmatch(tag)) or ref.endswith(":"):
        if repo != repo.lower() and _REPO.fullmatch(repo.lower()):
            raise CliError(
                f"invalid reference format: repository name ({repo}) must be lowercase"
            )
        raise CliError(f'invalid reference format: "{ref}"')
    return repo, tag


# -- import ----------------------------------------------------------------------------

IMPORT = Command("import", "corral import [OPTIONS] file|URL|- [REPOSITORY[:TAG]]",
                 "Import the contents from a tarball to create a filesystem image", (
    Opt("change", "c", "list", help="Apply Dockerfile instruction to the created image"),
    Opt("message", "m", "str", help="Set commit message for imported image"),
    Opt("platform", kind="str", help="Set platform if server is multi-platform capable"),
), min_args=1, max_args=2)


def import_query(p: Any, source: str) -> dict[str, Any]:
    repo, tag = split_ref(p.args[1]) if len(p.args) > 1 else ("", "")
    return {
        "fromSrc": source,
        "repo": repo or None,
        "tag": tag or None,
        "message": p["message"] or None,
        "changes": p["change"] or None,
        "platform": p["platform"] or None,
    }


def cmd_import(cli: Cli, argv: list[str]) -> int:
    import sys

    from supervisor.cli.stream import show_json_messages

    p = parse(IMPORT, argv)
    src = p.args[0]
    body: IO[bytes] | None = None
    opened: IO[bytes] | None = None
    if src == "-":
        body = sys.stdin.buffer
        source = "-"
    elif "://" in src:
        source = src
    else:
        try:
            opened = body = open(src, "rb")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise CliError(f"open {src}: {(exc.strerror or str(exc)).lower()}") from None
        source = "-"
    query = import_query(p, source)
    try:
        resp = cli.client.request(
            "POST", "/images/create", query, body=body,
            headers={"Content-Type": "application/x-tar"} if body is not None else None,
        )
        show_json_messages(resp.iter_lines(), cli.bout)
    finally:
        if opened is not None:
            opened.close()
    return 0


# -- images ----------------------------------------------------------------------------

IMAGES = Command("images", "corral images [OPTIONS] [REPOSITORY[:TAG]]", "List images", (
    Opt("all", "a", help="Show all images (default hides intermediate images)"),
    Opt("digests", help="Show digests"),
    Opt("filter", "f", "list", help="Filter output based on conditions provided"),
    Opt("format", kind="str", help="Format output using a custom template"),
    Opt("no-trunc", help="Don't truncate output"),
    Opt("quiet", "q", help="Only show image IDs"),
), max_args=1)

# docker's imageContext: the fields `--format` sees, and their table headers.
IMAGE_HEADERS = {
    "ID": "IMAGE ID",
    "Repository": "REPOSITORY",
    "Tag": "TAG",
    "Digest": "DIGEST",
    "CreatedSince": "CREATED",
    "CreatedAt": "CREATED AT",
    "Size": "SIZE",
    "Containers": "CONTAINERS",
    "VirtualSize": "SIZE",
    "SharedSize": "SHARED SIZE",
    "UniqueSize": "UNIQUE SIZE",
}

_IMAGE_RAW = ("repository: {{ .Repository }}\ntag: {{.Tag}}\n{digest}image_id: {{.ID}}\n"
              "created_at: {{.CreatedAt}}\nvirtual_size: {{.Size}}\n")


def _image_defaults(digests: bool) -> Defaults:
    from supervisor.cli.output import Defaults

    digest = "{{.Digest}}\t" if digests else ""
    table = ("table {{.Repository}}\t{{.Tag}}\t" + digest + "{{.ID}}\t"
             "{{if .CreatedSince }}{{.CreatedSince}}{{else}}N/A{{end}}\t{{.Size}}")
    raw = _IMAGE_RAW.replace("{digest}", "digest: {{.Digest}}\n" if digests else "")
    return Defaults(table, "{{.ID}}", raw, "image_id: {{.ID}}")


def _count(value: Any) -> str:
    return "N/A" if value is None or value == -1 else str(value)


def image_rows(images: list[dict[str, Any]], now: float, trunc: bool,
               digests: bool = True) -> list[dict[str, str]]:
    """Image summaries → one row per tag (untagged: `<none>`), newest first.

    The digest is shown only when asked for (`--digests`, `{{.Digest}}`), as docker.
    """
    rows: list[dict[str, str]] = []
    for img in sorted(images, key=lambda i: -float(i.get("Created") or 0)):
        ident = str(img.get("Id", ""))
        created = float(img.get("Created") or 0)
        size = float(img.get("Size") or 0)
        shared = img.get("SharedSize")
        common = {
            "ID": fmt.short_id(ident) if trunc else ident,
            "CreatedSince": fmt.ago(created, now),
            "CreatedAt": time.strftime("%Y-%m-%d %H:%M:%S %z %Z", time.localtime(created)),
            "Size": fmt.human_size(size),
            "VirtualSize": fmt.human_size(size, 4),
            "Containers": _count(img.get("Containers", -1)),
            "SharedSize": "N/A" if shared in (None, -1) else fmt.human_size(float(shared), 4),
            "UniqueSize": "N/A" if shared in (None, -1) else fmt.human_size(size - shared, 4),
        }
        found = [d for d in img.get("RepoDigests") or [] if not d.startswith("<none>")]
        digest = found[0].split("@", 1)[1] if found and digests else "<none>"
        tags = [t for t in img.get("RepoTags") or [] if t != "<none>:<none>"]
        if not tags:
            repo = found[0].split("@", 1)[0] if found else "<none>"
            rows.append({"Repository": repo, "Tag": "<none>", "Digest": digest, **common})
        for ref in tags:
            repo, tag = fmt.repo_tag(ref)
            rows.append({"Repository": repo, "Tag": tag or "<none>", "Digest": digest, **common})
    return rows


def cmd_images(cli: Cli, argv: list[str]) -> int:
    from supervisor.cli.filters import filters_query
    from supervisor.cli.govalues import Record
    from supervisor.cli.output import RowFormat

    p = parse(IMAGES, argv)
    source = _image_defaults(p["digests"]).pick(p["format"], p["quiet"])
    if p["digests"] and source.startswith("table") and "{{.Digest}}" not in source:
        source += "\t{{.Digest}}"
    out = RowFormat(source, IMAGE_HEADERS)  # a bad template fails before any request
    filters = list(p["filter"])
    if p.args:
        filters.append(f"reference={p.args[0]}")
    query = {"all": True if p["all"] else None, "filters": filters_query(filters)}
    images = cli.client.get("/images/json", query) or []
    digests = p["digests"] or "{{.Digest}}" in source
    rows = image_rows(images, time.time(), not p["no_trunc"], digests)
    cli.stdout.write(out.render(Record("*formatter.imageContext", row) for row in rows))
    return 0


# -- rmi / tag / history ---------------------------------------------------------------

RMI = Command("rmi", "corral rmi [OPTIONS] IMAGE [IMAGE...]", "Remove one or more images", (
    Opt("force", "f", help="Force removal of the image"),
    Opt("no-prune", help="Do not delete untagged parents"),
), min_args=1)


def cmd_rmi(cli: Cli, argv: list[str]) -> int:
    p = parse(RMI, argv)
    query = {"force": True if p["force"] else None, "noprune": True if p["no_prune"] else None}
    failed = False
    for name in p.args:
        try:
            items = cli.client.delete(f"/images/{quote(name, safe='/:@')}", query) or []
        except ApiError as exc:
            cli.err(f"corral: Error response from daemon: {exc.message}")
            failed = True
            continue
        for item in items:
            if item.get("Untagged"):
                cli.out(f"Untagged: {item['Untagged']}")
            if item.get("Deleted"):
                cli.out(f"Deleted: {item['Deleted']}")
    return 1 if failed else 0


TAG = Command("tag", "corral tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]",
              "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE", min_args=2, max_args=2)


def cmd_tag(cli: Cli, argv: list[str]) -> int:
    p = parse(TAG, argv)
    repo, tag = split_ref(p.args[1])
    cli.client.request("POST", f"/images/{quote(p.args[0], safe='/:@')}/tag",
                       {"repo": repo, "tag": tag or "latest"}).close()
    return 0


HISTORY = Command("history", "corral history [OPTIONS] IMAGE", "Show the history of an image", (
    Opt("format", kind="str", help="Format output using a custom template"),
    Opt("human", "H", default=True, help="Print sizes and dates in human readable format"),
    Opt("no-trunc", help="Don't truncate output"),
    Opt("platform", kind="str", help="Show history for the given platform"),
    Opt("quiet", "q", help="Only show image IDs"),
), min_args=1, max_args=1)

HISTORY_HEADERS = {
    "ID": "IMAGE",
    "CreatedSince": "CREATED",
    "CreatedAt": "CREATED AT",
    "CreatedBy": "CREATED BY",
    "Size": "SIZE",
    "Comment": "COMMENT",
}


def rfc3339(seconds: float) -> str:
    """Go's time.RFC3339 in local time: `2024-05-01T10:00:00+02:00`, `...Z` at UTC."""
    local = time.localtime(seconds)
    offset = local.tm_gmtoff or 0
    sign = "+" if offset > 0 else "-"
    zone = "Z" if offset == 0 else f"{sign}{abs(offset) // 3600:02d}:{abs(offset) % 3600 // 60:02d}"
    return time.strftime("%Y-%m-%dT%H:%M:%S", local) + zone


def history_rows(layers: list[dict[str, Any]], now: float, human: bool,
                 trunc: bool) -> list[dict[str, str]]:
    """docker's historyContext for each entry of `GET /images/{name}/history`."""
    rows = []
    for layer in layers:
        ident = str(layer.get("Id", "<missing>"))
        created = float(layer.get("Created") or 0)
        created_by = str(layer.get("CreatedBy", "")).replace("\t", " ")
        size = int(layer.get("Size") or 0)
        at = rfc3339(created)
        rows.append({
            "ID": ident if ident == "<missing>" or not trunc else fmt.short_id(ident),
            "CreatedSince": fmt.ago(created, now) if human else at,
            "CreatedAt": at,
            "CreatedBy": fmt.ellipsis(created_by, 45) if trunc else created_by,
            "Size": fmt.human_size(size) if human else str(size),
            "Comment": str(layer.get("Comment", "")),
        })
    return rows


def cmd_history(cli: Cli, argv: list[str]) -> int:
    from supervisor.cli.govalues import Record
    from supervisor.cli.output import Defaults, RowFormat

    p = parse(HISTORY, argv)
    created = "{{.CreatedSince}}" if p["human"] else "{{.CreatedAt}}"  # NewHistoryFormat
    defaults = Defaults(f"table {{{{.ID}}}}\t{created}\t{{{{.CreatedBy}}}}\t{{{{.Size}}}}\t"
                        "{{.Comment}}", "{{.ID}}")  # fmt: skip
    out = RowFormat(defaults.pick(p["format"], p["quiet"]), HISTORY_HEADERS)
    query = {"platform": _platform_query(p["platform"])} if p["platform"] else None
    layers = cli.client.get(f"/images/{quote(p.args[0], safe='/:@')}/history", query) or []
    rows = history_rows(layers, time.time(), bool(p["human"]), not p["no_trunc"])
    cli.stdout.write(out.render(Record("*image.historyContext", row) for row in rows))
    return 0


def _platform_query(text: str) -> str:
    """docker's `--platform os[/arch[/variant]]` as the API's JSON platform query."""
    import json

    parts = text.lower().split("/")
    keys = ("os", "architecture", "variant")
    return json.dumps({k: v for k, v in zip(keys, parts, strict=False) if v})


# -- commit ----------------------------------------------------------------------------

COMMIT = Command("commit", "corral commit [OPTIONS] CONTAINER [REPOSITORY[:TAG]]",
                 "Create a new image from a container's changes", (
    Opt("author", "a", "str", help='Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")'),
    Opt("change", "c", "list", help="Apply Dockerfile instruction to the created image"),
    Opt("message", "m", "str", help="Commit message"),
    Opt("pause", "p", default=True, help="Pause container during commit"),
), min_args=1, max_args=2)


def commit_query(p: Any) -> dict[str, Any]:
    repo, tag = split_ref(p.args[1]) if len(p.args) > 1 else ("", "")
    return {
        "container": p.args[0],
        "repo": repo or None,
        "tag": tag or None,
        "comment": p["message"] or None,
        "author": p["author"] or None,
        "changes": p["change"] or None,
        "pause": None if p["pause"] else False,
    }


def cmd_commit(cli: Cli, argv: list[str]) -> int:
    p = parse(COMMIT, argv)
    result = cli.client.post("/commit", commit_query(p), {}) or {}
    cli.out(str(result.get("Id", "")))
    return 0
