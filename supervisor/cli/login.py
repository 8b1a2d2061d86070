"""`corral login [-u USER] [-p PASS | --password-stdin] [SERVER]` and `corral logout`.

The daemon checks the credentials (`POST /auth`, as dockerd does); the CLI keeps them in
the docker CLI's config file (see `credentials`), and sends them with pull and push.
"""

from __future__ import annotations

from supervisor.cli import credentials
from supervisor.cli.context import CliError
from supervisor.cli.parser import Command, Opt, parse

TYPE_CHECKING = False
if TYPE_CHECKING:
    from supervisor.cli.context import Cli

LOGIN = Command("login", "corral login [OPTIONS] [SERVER]", "Log in to a registry", (
    Opt("password", "p", "str", help="Password"),
    Opt("password-stdin", help="Take the password from stdin"),
    Opt("username", "u", "str", help="Username"),
), max_args=1)
LOGOUT = Command("logout", "corral logout [SERVER]", "Log out from a registry", (),
                 max_args=1)


def _domain(args: list[str]) -> str:
    from supervisor.distribution.auth import server_domain

    return server_domain(args[0] if args else "")


def cmd_login(cli: Cli, argv: list[str]) -> int:
    import sys

    p = parse(LOGIN, argv)
    domain = _domain(p.args)
    user, password = p["username"] or "", p["password"] or ""
    if p["password_stdin"]:
        if password:
            raise CliError("--password and --password-stdin are mutually exclusive")
        if not user:
            raise CliError("Must provide --username with --password-stdin")
        password = sys.stdin.read().rstrip("\r\n")
    if password and not p["password_stdin"]:
        cli.err("WARNING! Using --password via the CLI is insecure. Use --password-stdin.")
    if not user or not password:
        if not sys.stdin.isatty():
            raise CliError("Cannot perform an interactive login from a non TTY device")
        import getpass

        if not user:
            cli.stdout.write("Username: ")
            cli.stdout.flush()
            user = sys.stdin.readline().strip()
        if not password:
            password = getpass.getpass("Password: ")
    if not user or not password:
        raise CliError("Error: Non-null Username and Password Required")
    key = credentials.server_key(domain)
    resp = cli.client.post("/auth", None, {"username": user, "password": password,
                                           "serveraddress": key})
    path = credentials.config_path(cli.environ)
    doc = credentials.load(path)
    credentials.put(doc, domain, user, password, str(resp.get("IdentityToken") or ""))
    credentials.save(path, doc)
    cli.out(str(resp.get("Status") or "Login Succeeded"))
    return 0


def cmd_logout(cli: Cli, argv: list[str]) -> int:
    p = parse(LOGOUT, argv)
    domain = _domain(p.args)
    key = credentials.server_key(domain)
    path = credentials.config_path(cli.environ)
    doc = credentials.load(path)
    if not credentials.erase(doc, domain):
        cli.out(f"Not logged in to {key}")
        return 0
    cli.out(f"Removing login credentials for {key}")
    credentials.save(path, doc)
    return 0
