"""Registry credentials where the docker CLI keeps them: `~/.docker/config.json`.

The same file and format (`$DOCKER_CONFIG/config.json`): `auths` maps a server
(`https://index.docker.io/v1/` for Docker Hub, `host[:port]` otherwise) to a base64
`user:password` (and an `identitytoken`, a registry's refresh token, when login was
given one: then no password is kept); `credsStore` / `credHelpers` name
`docker-credential-*` programs that keep them instead (`get`/`store`/`erase` over
stdin/stdout).  So `corral login` and `docker login` share logins.  The file is
written 0600, atomically, keys it does not know kept as they were.  (json, base64 and
subprocess are imported where used: every `corral pull` and `push` reads this module,
most with no login saved.)
"""

from __future__ import annotations

import os

from supervisor.cli.context import CliError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path
    from typing import Any

HUB_SERVER = "https://index.docker.io/v1/"


def _config_file(environ: Mapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    base = env.get("DOCKER_CONFIG") or os.path.join(
        os.path.expanduser(env.get("HOME") or "~"), ".docker")
    return os.path.join(base, "config.json")


def config_path(environ: Mapping[str, str] | None = None) -> Path:
    from pathlib import Path

    return Path(_config_file(environ))


def server_key(domain: str) -> str:
    """The `auths` key for a registry domain (Docker Hub's legacy URL for docker.io)."""
    return HUB_SERVER if domain in ("docker.io", "index.docker.io", "") else domain


def load(path: Path | str) -> dict[str, Any]:
    try:
        with open(path) as f:
            text = f.read()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise CliError(f"open {path}: {(exc.strerror or str(exc)).lower()}") from None
    import json

    try:
        doc = json.loads(text) if text.strip() else {}
    except ValueError as exc:
        raise CliError(f"{path}: invalid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise CliError(f"{path}: not a JSON object")
    return doc


def save(path: Path, doc: dict[str, Any]) -> None:
    import json

    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f, indent="\t")
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _helper(doc: dict[str, Any], key: str) -> str | None:
    helpers = doc.get("credHelpers") or {}
    if isinstance(helpers, dict) and helpers.get(key):
        return str(helpers[key])
    store = doc.get("credsStore")
    return str(store) if store else None


def _run_helper(helper: str, action: str, data: str) -> str:
    import subprocess

    prog = f"docker-credential-{helper}"
    try:
        r = subprocess.run([prog, action], input=data, capture_output=True, text=True,
                           timeout=60)
    except FileNotFoundError:
        raise CliError(f'error getting credentials - err: exec: "{prog}": executable file '
                       "not found in $PATH") from None
    if r.returncode != 0:
        out = (r.stdout.strip() or r.stderr.strip())
        if action == "get" and "credentials not found" in out.lower():
            return ""
        raise CliError(f"{prog} {action}: {out or f'exit status {r.returncode}'}")
    return r.stdout


TOKEN_USER = "<token>"  # the helper Username docker stores an identity token under


def lookup(doc: dict[str, Any], domain: str) -> tuple[str, str, str] | None:
    """(username, password, identity token) for `domain`, from a helper or `auths`;
    None if unknown.  With an identity token (a registry's refresh token, kept by
    login in place of the password) the password is empty."""
    key = server_key(domain)
    helper = _helper(doc, key)
    if helper:
        import json

        out = _run_helper(helper, "get", key)
        if not out.strip():
            return None
        try:
            got = json.loads(out)
        except ValueError:
            raise CliError(f"docker-credential-{helper} get: invalid JSON") from None
        user, secret = str(got.get("Username") or ""), str(got.get("Secret") or "")
        if user == TOKEN_USER:
            return "", "", secret
        return user, secret, ""
    entry = (doc.get("auths") or {}).get(key)
    if not isinstance(entry, dict) or not (entry.get("auth") or entry.get("identitytoken")):
        return None
    import base64

    try:
        raw = base64.b64decode(str(entry.get("auth") or "")).decode()
    except ValueError:
        raise CliError(f"invalid auth configuration for {key} in config.json") from None
    user, _, password = raw.partition(":")
    return user, password, str(entry.get("identitytoken") or "")


def get(doc: dict[str, Any], domain: str) -> tuple[str, str] | None:
    """(username, password) for `domain`; None if unknown."""
    got = lookup(doc, domain)
    return None if got is None else (got[0], got[1])


def put(doc: dict[str, Any], domain: str, user: str, password: str,
        identity_token: str = "") -> None:
    """Keep a login; with `identity_token` that instead of the password, as the docker
    CLI keeps what dockerd's login answered as IdentityToken."""
    import base64
    import json

    key = server_key(domain)
    helper = _helper(doc, key)
    auths = doc.setdefault("auths", {})
    if identity_token:
        password = ""
    if helper:
        secret = {"Username": TOKEN_USER, "Secret": identity_token} if identity_token else {
            "Username": user, "Secret": password}
        _run_helper(helper, "store", json.dumps({"ServerURL": key, **secret}))
        auths[key] = {}
        return
    auths[key] = {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}
    if identity_token:
        auths[key]["identitytoken"] = identity_token


def erase(doc: dict[str, Any], domain: str) -> bool:
    """Forget `domain`'s login; False if there was none."""
    key = server_key(domain)
    helper = _helper(doc, key)
    auths = doc.get("auths") or {}
    had = key in auths
    if helper:
        _run_helper(helper, "erase", key)
        had = True
    auths.pop(key, None)
    return had


def registry_auth_header(domain: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The X-Registry-Auth value for `domain`, from the saved login (None: anonymous)."""
    creds = lookup(load(_config_file(environ)), domain)
    if creds is None:
        return None
    import base64
    import json

    doc = {"username": creds[0], "password": creds[1], "serveraddress": server_key(domain)}
    if creds[2]:
        doc["identitytoken"] = creds[2]
    return base64.urlsafe_b64encode(json.dumps(doc).encode()).decode()
