"""Registry authentication: anonymous, Bearer tokens from the challenge, Basic.

The flow is Docker's: a request without credentials; on 401 the `WWW-Authenticate`
challenge says how to authenticate.  `Bearer realm=...,service=...,scope=...` means
"get a token from realm" (anonymously when no credentials are known, with Basic
credentials otherwise); `Basic` means send the credentials on every request.  A token is
reused for its scope until it expires.  A login asks for a refresh token too
(`offline_token=true`); a client that keeps it (config.json's `identitytoken`) sends it
instead of the password, and tokens are then had by an OAuth2 POST
(`grant_type=refresh_token`).  `parse_challenge` is the pure core.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from urllib.parse import urlencode

import trio

from supervisor.distribution.reference import Endpoint
from supervisor.distribution.transport import HttpClient, TransportError
from supervisor.errors import CorralError, InvalidArgument

_TOKEN_LIMIT = 1 << 20
_PARAM = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?')


class Unauthorized(CorralError):
    """Credentials refused or a token could not be had (HTTP 401)."""

    status = 401


@dataclass(frozen=True)
class Challenge:
    scheme: str  # lower case: "bearer", "basic"
    params: dict[str, str]


def parse_challenge(header: str) -> list[Challenge]:
    """`Bearer realm="https://auth",service="reg",scope="repository:x:pull"` -> one
    Challenge; several comma-separated schemes are split as RFC 7235 allows."""
    out: list[Challenge] = []
    rest = header.strip()
    while rest:
        m = re.match(r"([A-Za-z][A-Za-z0-9!#$%&'*+.^_`|~-]*)\s*", rest)
        if m is None:
            break
        scheme = m.group(1).lower()
        rest = rest[m.end():]
        params: dict[str, str] = {}
        while True:
            p = _PARAM.match(rest)
            if p is None:
                break
            value = p.group(2) if p.group(2) is not None else (p.group(3) or "")
            params[p.group(1).lower()] = re.sub(r"\\(.)", r"\1", value)
            rest = rest[p.end():]
        out.append(Challenge(scheme, params))
        rest = rest.lstrip(", ")
    return out


@dataclass(frozen=True)
class Credentials:
    """What `X-Registry-Auth` (or a credential store) gives: user + password, or an
    identity (refresh) token."""

    username: str = ""
    password: str = ""
    identity_token: str = ""

    @property
    def empty(self) -> bool:
        return not (self.username or self.password or self.identity_token)


def parse_registry_auth(header: str | None) -> Credentials | None:
    """Docker's `X-Registry-Auth`: base64url JSON {username, password, identitytoken}.
    An empty or `{}` header means anonymous."""
    if not header:
        return None
    raw = header.strip()
    try:
        std = raw.replace("-", "+").replace("_", "/")
        data = base64.b64decode(std + "=" * (-len(std) % 4), validate=True)
        doc = json.loads(data or b"{}")
    except (binascii.Error, ValueError):
        raise InvalidArgument("invalid X-Registry-Auth header: not base64 JSON") from None
    if not isinstance(doc, dict):
        raise InvalidArgument("invalid X-Registry-Auth header: not a JSON object")
    creds = Credentials(
        username=str(doc.get("username") or ""),
        password=str(doc.get("password") or ""),
        identity_token=str(doc.get("identitytoken") or ""),
    )
    return None if creds.empty else creds


@dataclass
class _Token:
    value: str
    expires: float
    scope: str  # what was asked for (the challenge's scope, or ours)


@dataclass
class Authorizer:
    """The Authorization header for one registry, learnt from its challenges."""

    http: HttpClient
    credentials: Credentials | None = None
    offline: bool = False  # ask the token server for a refresh token (login does)
    refresh_token: str = ""  # what it gave (login answers it as IdentityToken)
    _basic: bool = False
    _bearer: Challenge | None = None
    _tokens: dict[str, _Token] = field(default_factory=dict)

    def _basic_value(self) -> str | None:
        c = self.credentials
        if c is None or c.empty or not c.username:
            return None
        raw = f"{c.username}:{c.password}".encode()
        return "Basic " + base64.b64encode(raw).decode()

    def header(self, scope: str) -> list[tuple[str, str]]:
        if self._basic:
            v = self._basic_value()
            return [("Authorization", v)] if v else []
        tok = self._tokens.get(scope)
        if tok is not None and tok.expires > trio.current_time():
            return [("Authorization", f"Bearer {tok.value}")]
        return []

    async def challenged(self, header: str | None, scope: str) -> bool:
        """React to a 401: True if a retry may now succeed."""
        for ch in parse_challenge(header or ""):
            if ch.scheme == "basic":
                if self._basic or self._basic_value() is None:
                    return False
                self._basic = True
                return True
            if ch.scheme == "bearer" and "realm" in ch.params:
                want = ch.params.get("scope") or scope
                held = self._tokens.get(scope)
                if held is not None and held.scope == want:
                    del self._tokens[scope]  # refused with what it asked for: give up
                    return False
                self._bearer = ch  # (a cross-repository mount asks for more scopes)
                await self._fetch_token(ch, scope)
                return True
        return False

    async def _fetch_token(self, ch: Challenge, scope: str) -> None:
        """A token for `scope` from the challenge's realm, as Docker asks for it: with an
        identity (refresh) token, an OAuth2 POST (`grant_type=refresh_token`); else a
        GET, with Basic credentials if there are any (and `offline_token=true` to be
        given a refresh token when logging in)."""
        realm = ch.params["realm"]
        service = ch.params.get("service", "")
        want = ch.params.get("scope") or scope
        creds = self.credentials
        if creds is not None and creds.identity_token:
            form = [("grant_type", "refresh_token"), ("refresh_token", creds.identity_token),
                    ("service", service), ("client_id", CLIENT_ID)]
            if want:
                form.append(("scope", want))
            if self.offline:
                form.append(("access_type", "offline"))
            body = urlencode(form).encode()
            async with self.http.request(
                    "POST", realm, [("Content-Type", "application/x-www-form-urlencoded")],
                    body) as resp:
                answer = await resp.read(_TOKEN_LIMIT)
                status, reason = resp.status, resp.reason
        else:
            query = [("service", service)]
            headers: list[tuple[str, str]] = []
            basic = self._basic_value()
            if basic:
                headers.append(("Authorization", basic))
                query.append(("account", creds.username if creds else ""))
                if self.offline:
                    query += [("offline_token", "true"), ("client_id", CLIENT_ID)]
            params = query + [("scope", x) for x in want.split()]  # one per scope
            url = realm + ("&" if "?" in realm else "?") + urlencode(params)
            async with self.http.request("GET", url, headers) as resp:
                answer = await resp.read(_TOKEN_LIMIT)
                status, reason = resp.status, resp.reason
        if status in (400, 401):
            raise Unauthorized("unauthorized: incorrect username or password")
        if status != 200:
            raise Unauthorized(f"token server {realm} answered {status} {reason}")
        try:
            doc = json.loads(answer)
            value = str(doc.get("token") or doc.get("access_token") or "")
            expires_in = float(doc.get("expires_in") or 60)
            refresh = str(doc.get("refresh_token") or "")
        except (ValueError, AttributeError):
            raise Unauthorized(f"token server {realm} sent no token") from None
        if not value:
            raise Unauthorized(f"token server {realm} sent no token")
        if refresh:
            self.refresh_token = refresh
        self._tokens[scope] = _Token(value, trio.current_time() + max(expires_in - 5, 1), want)


CLIENT_ID = "docker"  # the client_id dockerd gives token servers
HUB_SERVER = "https://index.docker.io/v1/"


def server_domain(server: str) -> str:
    """`POST /auth`'s serveraddress as a registry domain: Docker Hub's spellings
    (empty, `docker.io`, `https://index.docker.io/v1/`) are `docker.io`; a scheme and
    a path are dropped (`https://reg:5000/v2/` is `reg:5000`)."""
    s = server.strip()
    for prefix in ("https://", "http://"):
        s = s.removeprefix(prefix)
    s = s.split("/", 1)[0]
    if s in ("", "docker.io", "index.docker.io", "registry-1.docker.io"):
        return "docker.io"
    return s


async def login(http: HttpClient, ep: Endpoint, credentials: Credentials) -> str:
    """Check `credentials` against the registry at `ep` as `docker login` does: the
    /v2/ ping's challenge answered (Basic, or a token fetched with them).  An insecure
    registry without TLS is tried in plain HTTP next.  Returns the refresh token the
    token server gave for them, if any (dockerd's IdentityToken), else ""."""
    verify = not ep.insecure
    try:
        status, challenge = await _ping(http, f"{ep.origin}/v2/", verify)
    except TransportError:
        if not ep.insecure or ep.scheme != "https":
            raise
        ep = ep.plain()
        status, challenge = await _ping(http, f"{ep.origin}/v2/", verify)
    url = f"{ep.origin}/v2/"
    auth = Authorizer(http, credentials, offline=True)
    if status == 200:
        return ""  # a registry that wants no credentials accepts any
    if status != 401:
        raise CorralError(f"login attempt to {url} failed with status: {status}")
    try:
        answered = await auth.challenged(challenge, "")
    except Unauthorized as e:
        raise Unauthorized(f'Get "{url}": {e.message}') from None
    if not answered:
        raise Unauthorized(f"login attempt to {url} failed: the registry's challenge "
                           f"({challenge or 'none'}) cannot be answered")
    async with http.request("GET", url, auth.header(""), verify=verify) as resp:
        await resp.read(_TOKEN_LIMIT)
        if resp.status != 200:
            raise Unauthorized(
                f"login attempt to {url} failed with status: {resp.status} {resp.reason}")
    return auth.refresh_token


async def _ping(http: HttpClient, url: str, verify: bool) -> tuple[int, str | None]:
    async with http.request("GET", url, verify=verify) as resp:
        await resp.read(_TOKEN_LIMIT)
        return resp.status, resp.header("www-authenticate")
