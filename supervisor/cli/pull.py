"""`corral pull NAME[:TAG|@DIGEST]` and the pull `run`/`create` do for a missing image.

Output as the docker CLI prints it: on a terminal one line per layer, redrawn in place
with its bar; otherwise plain lines, byte-progress messages left out (as docker does
when stdout is not a TTY); `-q` only the full name.  The name is parsed here with the
daemon's own rules (`images.reference`) so a bad one fails before any request.
"""

from __future__ import annotations

from supervisor.cli.context import CliError
from supervisor.cli.parser import Command, Opt, parse
from supervisor.cli.stream import StreamError, json_messages, message_error

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any, BinaryIO

    from supervisor.cli.context import Cli

PULL = Command("pull", "corral pull [OPTIONS] NAME[:TAG|@DIGEST]",
               "Download an image from a registry", (
    Opt("all-tags", "a", help="Download all tagged images in the repository"),
    Opt("disable-content-trust", kind="str",
        help="Skip image verification (default true; content trust is not supported)"),
    Opt("platform", kind="str", help="Set platform if server is multi-platform capable"),
    Opt("quiet", "q", help="Suppress verbose output"),
), min_args=1, max_args=1)

PULL_POLICIES = ("missing", "always", "never")


def pull_query(name: str, platform: str | None) -> tuple[dict[str, Any], str, bool]:
    """(query, canonical name shown last, whether the tag was defaulted) for `name`."""
    from supervisor.errors import InvalidArgument
    from supervisor.images.reference import parse as parse_ref

    try:
        ref = parse_ref(name)
    except InvalidArgument as exc:
        raise CliError(exc.message) from None
    defaulted = ref.tag is None and ref.digest is None
    tag = ref.digest or ref.tag or "latest"
    shown = ref.canonical + (f"@{ref.digest}" if ref.digest else f":{ref.tag or 'latest'}")
    if ref.tag and ref.digest:
        shown = f"{ref.canonical}:{ref.tag}@{ref.digest}"
    query: dict[str, Any] = {"fromImage": ref.repository, "tag": tag,
                             "platform": platform or None}
    query["_domain"] = ref.canonical.split("/", 1)[0]
    if ref.tag and ref.digest:
        query["fromImage"] = f"{ref.repository}:{ref.tag}"
    return query, shown, defaulted


def auth_headers(cli: Cli, domain: str) -> dict[str, str]:
    """X-Registry-Auth from the saved login for `domain` (none: anonymous)."""
    from supervisor.cli.credentials import registry_auth_header

    value = registry_auth_header(domain, cli.environ)
    return {"X-Registry-Auth": value} if value else {}


class _Board:
    """Docker's terminal progress: a line per id, updated in place."""

    def __init__(self, out: BinaryIO, tty: bool) -> None:
        self.out = out
        self.tty = tty
        self.lines: dict[str, int] = {}
        self.count = 0

    def show(self, msg: dict[str, Any]) -> None:
        status = str(msg.get("status", ""))
        ident = str(msg.get("id") or "")
        detail = msg.get("progressDetail") or {}
        has_bytes = isinstance(detail, dict) and bool(detail.get("total"))
        if has_bytes and not self.tty:
            return  # docker skips byte progress when stdout is not a terminal
        text = f"{ident}: {status}" if ident else status
        if has_bytes and msg.get("progress"):
            text += f" {msg['progress']}"
        if self.tty and ident and ident in self.lines:
            up = self.count - self.lines[ident]
            self.out.write(f"\x1b[{up}A\r\x1b[2K{text}\x1b[{up}B\r".encode())
        else:
            if ident:
                self.lines[ident] = self.count
            self.out.write((text + "\n").encode())
            self.count += 1
        self.out.flush()


def show_pull(lines: Iterable[bytes], out: BinaryIO | None, tty: bool) -> None:
    """Show a pull's messages on `out` (None: quiet); raise StreamError on an error."""
    board = _Board(out, tty) if out is not None else None
    for msg in json_messages(lines):
        error = message_error(msg)
        if error is not None:
            if out is not None:
                out.flush()
            raise StreamError(error)
        if board is not None and msg.get("status") is not None:
            board.show(msg)


def pull_image(cli: Cli, name: str, *, platform: str | None, quiet: bool,
               out: BinaryIO, tty: bool) -> str:
    """Pull `name`, progress to `out` unless quiet; return the canonical name."""
    query, shown, defaulted = pull_query(name, platform)
    if defaulted and not quiet:
        out.write(b"Using default tag: latest\n")
    resp = cli.client.request("POST", "/images/create", query,
                              headers=auth_headers(cli, query.pop("_domain")))
    lines = resp.iter_lines()
    show_pull(lines, None if quiet else out, tty)
    return shown


def pull_for_run(cli: Cli, image: str, policy: str | None, *, quiet: bool,
                 missing: bool) -> bool:
    """The pull `run`/`create` do (`--pull missing|always|never`): True if it pulled.
    `missing` says the daemon did not find the image; output goes to stderr, as
    docker's does, after `Unable to find image 'x' locally`."""
    from supervisor.cli import format as fmt

    policy = policy or "missing"
    if policy not in PULL_POLICIES:
        raise CliError(
            f'invalid pull option: \'{policy}\': must be one of "always", "missing" or "never"',
            125,
        )
    if policy == "never" or (policy == "missing" and not missing):
        return False
    shown = fmt.normalize_ref(image)  # with its tag: no `Using default tag` line, as docker
    if missing:
        cli.err(f"Unable to find image '{shown}' locally")
    pull_image(cli, shown, platform=None, quiet=quiet, out=cli.berr, tty=_isatty(cli.berr))
    return True


def _pull_all_tags(cli: Cli, name: str, platform: str | None, quiet: bool) -> int:
    """`pull -a`: the API's name-only pull (no `tag`), the repository's name last."""
    from supervisor.errors import InvalidArgument
    from supervisor.images.reference import parse as parse_ref

    try:
        ref = parse_ref(name)
    except InvalidArgument as exc:
        raise CliError(exc.message) from None
    if ref.tag is not None or ref.digest is not None:
        raise CliError("tag can't be used with --all-tags/-a")
    query = {"fromImage": ref.repository, "platform": platform or None}
    resp = cli.client.request("POST", "/images/create", query,
                              headers=auth_headers(cli, ref.canonical.split("/", 1)[0]))
    show_pull(resp.iter_lines(), None if quiet else cli.bout, _isatty(cli.bout))
    cli.bout.write((ref.canonical + "\n").encode())
    cli.bout.flush()
    return 0


def _isatty(f: BinaryIO) -> bool:
    import os

    try:
        return os.isatty(f.fileno())
    except (AttributeError, OSError, ValueError):
        return False


def cmd_pull(cli: Cli, argv: list[str]) -> int:
    p = parse(PULL, argv)
    if p["all_tags"]:
        return _pull_all_tags(cli, p.args[0], p["platform"], p["quiet"])
    trust = p["disable_content_trust"]
    if trust is not None and trust.lower() not in ("true", "1"):
        raise CliError("content trust is not supported: --disable-content-trust must be true")
    tty = _isatty(cli.bout)
    shown = pull_image(cli, p.args[0], platform=p["platform"], quiet=p["quiet"],
                       out=cli.bout, tty=tty)
    cli.bout.write((shown + "\n").encode())
    cli.bout.flush()
    return 0
