"""`corral push NAME[:TAG]`: an image to its registry, with docker's output."""

from __future__ import annotations

from supervisor.cli.context import CliError
from supervisor.cli.parser import Command, Opt, parse
from supervisor.cli.pull import _isatty, auth_headers, show_pull

TYPE_CHECKING = False
if TYPE_CHECKING:
    from supervisor.cli.context import Cli

PUSH = Command("push", "corral push [OPTIONS] NAME[:TAG]",
               "Upload an image to a registry", (
    Opt("all-tags", "a", help="Push all tags of an image to the repository"),
    Opt("disable-content-trust", kind="str",
        help="Skip image signing (default true; content trust is not supported)"),
    Opt("platform", kind="str", help="Push a platform-specific manifest (not supported)"),
    Opt("quiet", "q", help="Suppress verbose output"),
), min_args=1, max_args=1)


def cmd_push(cli: Cli, argv: list[str]) -> int:
    p = parse(PUSH, argv)
    trust = p["disable_content_trust"]
    if trust is not None and trust.lower() not in ("true", "1"):
        raise CliError("content trust is not supported: --disable-content-trust must be true")
    if p["platform"]:
        raise CliError("push --platform is not supported: corral keeps one platform per tag")
    shown = push_image(cli, p.args[0], all_tags=p["all_tags"], quiet=p["quiet"])
    if p["quiet"]:
        cli.bout.write(f"{shown}\n".encode())
    cli.bout.flush()
    return 0


def push_image(cli: Cli, name: str, *, all_tags: bool = False, quiet: bool = False) -> str:
    """Push `name` (every tag of its repository with `all_tags`), progress on stdout
    unless quiet; return the canonical name pushed."""
    from supervisor.api.client import quote
    from supervisor.errors import InvalidArgument
    from supervisor.images.reference import parse as parse_ref

    try:
        ref = parse_ref(name)
    except InvalidArgument as exc:
        raise CliError(exc.message) from None
    if ref.digest is not None:
        raise CliError(f"cannot push a digest reference: {name}")
    if all_tags and ref.tag is not None:
        raise CliError("tag can't be used with --all-tags/-a")
    tag = ref.tag
    if tag is None and not all_tags:
        tag = "latest"
        if not quiet:
            cli.bout.write(b"Using default tag: latest\n")
    resp = cli.client.request(
        "POST", f"/images/{quote(ref.repository, '/:')}/push", {"tag": tag or None},
        headers=auth_headers(cli, ref.canonical.split("/", 1)[0]),
    )
    show_pull(resp.iter_lines(), None if quiet else cli.bout, _isatty(cli.bout))
    return f"{ref.canonical}:{tag}" if tag else ref.canonical
