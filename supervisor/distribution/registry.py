"""One repository in one registry, over the Registry HTTP API v2.

Requests carry what the `Authorizer` learnt (a 401 is answered once with a token or
Basic credentials, then retried); blob redirects to storage are followed without the
Authorization header when they leave the registry's host; error bodies
(`{"errors":[{"code":"MANIFEST_UNKNOWN",...}]}`) become Docker's messages
(`errors_to_error` is the pure part, moby's translatePullError).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote, urljoin, urlsplit

import structlog

from supervisor.distribution.auth import Authorizer, Unauthorized
from supervisor.distribution.manifests import (
    ACCEPT,
    DOCKER_SCHEMA1,
    DOCKER_SCHEMA1_SIGNED,
    MANIFEST_LIMIT,
)
from supervisor.distribution.reference import Endpoint, Remote
from supervisor.distribution.transport import HttpClient, Response, TransportError
from supervisor.errors import CorralError, InvalidArgument, NotFound

_log = structlog.get_logger("corral.distribution")

_ERROR_BODY_LIMIT = 1 << 16
Part = Callable[[int, int], AsyncIterator[bytes]]  # a blob's bytes [start, end)
_MAX_REDIRECTS = 5
MAX_UPLOAD_ATTEMPTS = 5  # dockerd's maxUploadAttempts


class GrowingBlob(Protocol):
    """A blob to upload, whole or still being written: its bytes so far can be read
    again (a retried part); its digest is known once it is complete."""

    @property
    def complete(self) -> bool: ...
    @property
    def digest(self) -> str: ...
    async def ready(self, start: int, n: int) -> int:
        """The end of the next part from `start`: `start + n`, or the blob's end when
        it is complete before that (`start` when nothing is left); waits for bytes
        not yet made."""
        ...
    def part(self, start: int, end: int) -> AsyncIterator[bytes]: ...


@dataclass(frozen=True)
class _Whole:
    digest: str
    size: int
    part: Part
    complete: bool = True

    async def ready(self, start: int, n: int) -> int:
        return min(start + n, self.size)


async def _nothing() -> AsyncIterator[bytes]:
    return
    yield b""  # an async generator that yields nothing


class Schema1Refused(InvalidArgument):
    """A Docker schema 1 image: dockerd 28 no longer pulls them (moby#50036, 28.2)."""


def schema1_refused(name: str) -> str:
    """dockerd's (28.2+) refusal of a schema 1 image, word for word."""
    return (
        "Docker Image Format v1 and Docker Image manifest version 2, schema 1 support has "
        f"been removed. Suggest the author of {name} to upgrade the image to the OCI Format "
        "or Docker Image manifest v2, schema 2. More information at "
        "https://docs.docker.com/go/deprecated-image-specs/")


def _is_schema1(body: bytes, ctype: str) -> bool:
    if ctype.partition(";")[0].strip() in (DOCKER_SCHEMA1, DOCKER_SCHEMA1_SIGNED):
        return True
    try:
        doc = json.loads(body)
    except ValueError:
        return False
    return isinstance(doc, dict) and doc.get("schemaVersion") == 1


class RegistryError(CorralError):
    """The registry said no, in a way that is not a missing image (HTTP 500)."""

    status = 500


def parse_errors(body: bytes) -> list[tuple[str, str]]:
    """The (code, message) pairs of a registry error body; [] if it has none."""
    try:
        doc: Any = json.loads(body)
    except ValueError:
        return []
    errs = doc.get("errors") if isinstance(doc, dict) else None
    if not isinstance(errs, list):
        return []
    return [(str(e.get("code", "")), str(e.get("message", ""))) for e in errs
            if isinstance(e, dict)]


def _errcode_text(code: str, message: str) -> str:
    """errcode.Error.Error(): `manifest unknown: manifest unknown`."""
    return f"{code.lower().replace('_', ' ')}: {message}"


def errors_to_error(status: int, errors: list[tuple[str, str]], remote: Remote,
                    what: str) -> CorralError:
    """Docker's wording for a failed pull request (moby distribution/errors.go)."""
    if errors:
        code, message = errors[0]
        text = _errcode_text(code, message)
        if code == "DENIED" or (code == "UNAUTHORIZED" and status == 401):
            return NotFound(
                f"pull access denied for {remote.repository}, repository does not exist "
                f"or may require 'docker login': {text}"
            )
        if code == "MANIFEST_UNKNOWN":
            return NotFound(f"manifest for {remote.familiar()} not found: {text}")
        if code == "NAME_UNKNOWN":
            return NotFound(f"repository {remote.repository} not found: {text}")
        if code == "BLOB_UNKNOWN":
            return NotFound(f"{what}: {text}")
        return RegistryError(f"{what}: {text}")
    if status == 401:
        return NotFound(
            f"pull access denied for {remote.repository}, repository does not exist "
            "or may require 'docker login'"
        )
    if status == 404:
        return NotFound(f"manifest for {remote.familiar()} not found: manifest unknown")
    return RegistryError(f"{what}: unexpected status {status}")


class Repository:
    """Reads from `remote`'s repository at `ep` (pull scope)."""

    def __init__(self, http: HttpClient, ep: Endpoint, remote: Remote, auth: Authorizer,
                 *, push: bool = False) -> None:
        self.http = http
        self.ep = ep
        self.remote = remote
        self.auth = auth
        self.push = push
        self.scope = f"repository:{remote.path}:{'pull,push' if push else 'pull'}"

    def _url(self, tail: str) -> str:
        return f"{self.ep.origin}/v2/{tail}"

    async def ping(self) -> None:
        """GET /v2/: reachability, and the auth challenge (remembered by the
        Authorizer); a registry not speaking v2 is refused here.  An insecure registry
        that does not speak TLS is spoken to in plain HTTP from then on."""
        if self.ep.insecure and self.ep.scheme == "https":
            netloc = f"{self.ep.host}:{self.ep.port}"
            if netloc in self.http.plain_http:
                https, self.ep = self.ep, self.ep.plain()
                try:
                    await self._ping()
                    return
                except TransportError:  # it changed: TLS first again
                    self.http.plain_http.discard(netloc)
                    self.ep = https
            try:
                await self._ping()
                return
            except TransportError:
                self.ep = self.ep.plain()
            await self._ping()
            self.http.plain_http.add(netloc)
            return
        await self._ping()

    async def _ping(self) -> None:
        url = f"{self.ep.origin}/v2/"
        async with self.http.request("GET", url, self.auth.header(self.scope),
                                     verify=not self.ep.insecure) as resp:
            await resp.read(_ERROR_BODY_LIMIT)
            if resp.status == 401:
                try:
                    await self.auth.challenged(resp.header("www-authenticate"), self.scope)
                except Unauthorized as e:
                    raise Unauthorized(f'Get "{url}": {e.message}') from None
                return
            if resp.status != 200:
                raise RegistryError(f'Get "{url}": registry answered {resp.status} '
                                    f"{resp.reason} (not a v2 registry?)")

    @asynccontextmanager
    async def get(self, tail: str, what: str, accept: str | None = None,
                  method: str = "GET", *, url: str | None = None,
                  content_type: str | None = None, body: bytes = b"",
                  stream: Callable[[], AsyncIterator[bytes]] | None = None,
                  length: int | None = None,
                  extra: list[tuple[str, str]] | None = None) -> AsyncIterator[Response]:
        """A successful response for `/v2/<tail>` (or `url`, an upload location), or
        the registry's error as Docker words it; redirects followed (`extra` headers,
        a `Range`, go along; credentials only to the registry's own host)."""
        url = url or self._url(tail)
        origin_host = urlsplit(self.ep.origin).netloc
        retried = False
        redirects = 0
        while True:
            headers = [("Accept", accept)] if accept else []
            headers += extra or []
            if content_type:
                headers.append(("Content-Type", content_type))
            if urlsplit(url).netloc == origin_host:
                headers += self.auth.header(self.scope)
            async with self.http.request(method, url, headers, body, stream=stream,
                                         length=length, verify=not self.ep.insecure) as resp:
                if resp.status == 401 and not retried:
                    refused = await resp.read(_ERROR_BODY_LIMIT)
                    retried = True
                    challenge = resp.header("www-authenticate") or ""
                    if await self.auth.challenged(challenge, self.scope):
                        continue
                    if challenge.lower().startswith("basic") and (
                        self.auth.credentials is None or self.auth.credentials.empty
                    ):
                        raise RegistryError(f'{method.title()} "{url}": no basic auth credentials')
                    if self.push:
                        raise RegistryError("denied: requested access to the resource is denied")
                    raise errors_to_error(401, parse_errors(refused), self.remote, what)
                if resp.status in (301, 302, 303, 307, 308) and method in ("GET", "HEAD"):
                    await resp.read(_ERROR_BODY_LIMIT)
                    location = resp.header("location")
                    redirects += 1
                    if not location or redirects > _MAX_REDIRECTS:
                        raise RegistryError(f"{what}: too many redirects or no Location")
                    url = urljoin(url, location)
                    continue
                if resp.status >= 300 or (resp.status not in (200, 204, 206)
                                          and method == "GET"):
                    body = b"" if method == "HEAD" else await resp.read(_ERROR_BODY_LIMIT)
                    errors = parse_errors(body)
                    if self.push and resp.status in (401, 403) and method != "HEAD":
                        # docker push's wording: the registry's own error text
                        text = (_errcode_text(*errors[0]) if errors else
                                "denied: requested access to the resource is denied")
                        raise RegistryError(text)
                    raise errors_to_error(resp.status, errors, self.remote, what)
                yield resp
                return

    async def manifest(self, reference: str,
                       known: Callable[[str], tuple[str, bytes] | None] | None = None
                       ) -> tuple[bytes, str, str]:
        """(body, content type, digest) of a manifest by tag or digest; a digest
        reference is verified against the body.  A tag is resolved first with a HEAD
        (its `Docker-Content-Digest`), then the manifest fetched by that digest and
        verified, as containerd resolves one; a registry whose HEAD fails or names no
        digest is asked by tag (and its error is the GET's, in the registry's words).
        A digest `known` has the body of (a manifest pulled before, stored) is not
        fetched again: the body is content-addressed, checked against the digest."""
        what = f"manifest {self.remote.repository}:{reference}"
        fetch = reference
        if not reference.startswith("sha256:"):
            fetch = await self._head_digest(reference, what) or reference
        if known is not None and fetch.startswith("sha256:") and (got := known(fetch)):
            ctype, body = got
            if "sha256:" + hashlib.sha256(body).hexdigest() == fetch:
                return body, ctype, fetch
        body, ctype, digest = await self._manifest(fetch, what, reference)
        if fetch != reference and digest != fetch:
            raise InvalidArgument(
                f"manifest verification failed for digest {fetch} (got {digest})")
        return body, ctype, digest

    async def _head_digest(self, reference: str, what: str) -> str | None:
        try:
            async with self.get(f"{self.remote.path}/manifests/{reference}", what, ACCEPT,
                                method="HEAD") as resp:
                digest = resp.header("docker-content-digest") or ""
        except CorralError:
            return None
        if not re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
            return None
        return digest

    async def _manifest(self, reference: str, what: str, shown: str
                        ) -> tuple[bytes, str, str]:
        async with self.get(f"{self.remote.path}/manifests/{reference}", what, ACCEPT) as resp:
            length = resp.header("content-length")
            if length is not None and length.isdigit() and int(length) > MANIFEST_LIMIT:
                raise InvalidArgument(f"{what}: manifest larger than {MANIFEST_LIMIT} bytes")
            try:
                body = await resp.read(MANIFEST_LIMIT)
            except TransportError as e:
                raise InvalidArgument(e.message) from None
            ctype = resp.header("content-type") or ""
        if _is_schema1(body, ctype):
            sep = "@" if shown.startswith("sha256:") else ":"
            raise Schema1Refused(schema1_refused(
                f"{self.remote.domain}/{self.remote.path}{sep}{shown}"))
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        if reference.startswith("sha256:") and digest != reference:
            raise InvalidArgument(
                f"manifest verification failed for digest {reference} (got {digest})")
        return body, ctype, digest

    async def tags(self) -> list[str]:
        """Every tag of the repository (`/tags/list`, its `Link: <...>; rel="next"`
        pages followed)."""
        out: list[str] = []
        tail = f"{self.remote.path}/tags/list"
        url: str | None = None
        for _ in range(1000):
            async with self.get(tail, f"tags of {self.remote.repository}", url=url) as resp:
                body = await resp.read(MANIFEST_LIMIT)
                link = resp.header("link") or ""
            try:
                doc = json.loads(body)
                out += [str(t) for t in doc.get("tags") or []]
            except (ValueError, AttributeError):
                raise RegistryError(f"tags of {self.remote.repository}: not JSON") from None
            if 'rel="next"' not in link or "<" not in link:
                return out
            url = urljoin(self.ep.origin + "/", link[link.index("<") + 1 : link.index(">")])
        raise RegistryError(f"tags of {self.remote.repository}: too many pages")

    @asynccontextmanager
    async def blob(self, digest: str, offset: int = 0, url: str | None = None
                   ) -> AsyncIterator[Response]:
        """The blob's bytes, from `offset` on (a `Range` request: the response is a 206
        if the registry honoured it, a 200 with the whole blob if not); from `url`
        instead of the registry for a foreign layer (no credentials go there unless
        it is the registry's own host)."""
        extra = [("Range", f"bytes={offset}-")] if offset else None
        async with self.get(f"{self.remote.path}/blobs/{digest}", f"blob {digest}",
                            extra=extra, url=url) as resp:
            yield resp

    # ------------------------------------------------------------------ push

    async def has_blob(self, digest: str) -> bool:
        try:
            async with self.get(f"{self.remote.path}/blobs/{digest}", f"blob {digest}",
                                method="HEAD"):
                return True
        except NotFound:
            return False

    async def mount(self, digest: str, from_path: str) -> bool:
        """Cross-repository mount (same registry): True if the registry linked it."""
        tail = (f"{self.remote.path}/blobs/uploads/?mount={quote(digest)}"
                f"&from={quote(from_path)}")
        try:
            async with self.get(tail, f"mount {digest}", method="POST") as resp:
                await resp.read(_ERROR_BODY_LIMIT)
                if resp.status == 201:
                    return True
                location = resp.header("location")
        except (RegistryError, NotFound, Unauthorized):
            return False  # not allowed to read the source: upload it instead
        if location:  # 202: an upload was started instead; give it back
            with contextlib.suppress(CorralError):
                async with self.get("", "cancel upload", method="DELETE",
                                    url=urljoin(self.ep.origin, location)) as r:
                    await r.read(_ERROR_BODY_LIMIT)
        return False

    async def upload(self, digest: str, size: int, part: Part, *, chunk: int) -> None:
        """Upload a blob whose bytes are all there, `part(start, end)` streaming its
        bytes [start, end).  See `upload_growing`."""
        await self.upload_growing(_Whole(digest, size, part), chunk=chunk)

    async def upload_growing(self, blob: GrowingBlob, *, chunk: int) -> None:
        """Upload a blob, possibly while it is still being made (a layer being
        compressed).  When it ends within `chunk` bytes: monolithic (POST for a
        location, one PUT with the bytes).  More: chunked, as the OCI distribution
        spec has it: a PATCH per `chunk` bytes with its `Content-Range` as soon as they
        exist, each to the Location the last answer gave, then a PUT with the digest
        (known once the blob is complete) and no body.  A connection that breaks is
        retried (dockerd's 5 attempts): a chunked upload asks the registry how much it
        has (GET of the upload's location: its `Range`) and goes on from there, or
        starts again if the registry cannot say; a monolithic one starts again."""
        what = f"blob upload {blob.digest}" if blob.complete else "blob upload"
        failures = 0
        while True:
            try:
                # the upload is opened while the first bytes are still being made
                url = await self._start_upload(what)
                end = await blob.ready(0, chunk + 1)
                if blob.complete and end <= chunk:
                    what = f"blob upload {blob.digest}"
                    url += ("&" if "?" in url else "?") + "digest=" + quote(blob.digest)
                    async with self.get("", what, method="PUT", url=url,
                                        stream=functools.partial(blob.part, 0, end), length=end,
                                        content_type="application/octet-stream") as resp:
                        await resp.read(_ERROR_BODY_LIMIT)
                    return
                break
            except TransportError:
                failures += 1
                if failures >= MAX_UPLOAD_ATTEMPTS:
                    raise
        start = 0
        while (end := await blob.ready(start, chunk)) > start:
            try:
                async with self.get("", what, method="PATCH", url=url, length=end - start,
                                    stream=functools.partial(blob.part, start, end),
                                    content_type="application/octet-stream",
                                    extra=[("Content-Range", f"{start}-{end - 1}")]) as resp:
                    await resp.read(_ERROR_BODY_LIMIT)
                    location = resp.header("location")
            except (TransportError, RegistryError) as e:
                failures += 1
                if failures >= MAX_UPLOAD_ATTEMPTS:
                    raise
                try:
                    start, url = await self._upload_offset(url, what)
                except CorralError:
                    # the registry lost track of it (distribution cancels an upload
                    # whose state is stale, as after a chunk whose answer was lost)
                    _log.info("push.upload_restart", error=e.message)
                    start, url = 0, await self._start_upload(what)
                continue
            if resp.status != 202 or not location:
                raise RegistryError(f"{what}: the registry answered {resp.status} to a "
                                    "chunk, without the upload's next location")
            url = urljoin(url, location)
            start = end
        what = f"blob upload {blob.digest}"
        url += ("&" if "?" in url else "?") + "digest=" + quote(blob.digest)
        async with self.get("", what, method="PUT", url=url, length=0,
                            stream=_nothing) as resp:
            await resp.read(_ERROR_BODY_LIMIT)

    async def _start_upload(self, what: str) -> str:
        async with self.get(f"{self.remote.path}/blobs/uploads/", what, method="POST") as resp:
            await resp.read(_ERROR_BODY_LIMIT)
            location = resp.header("location")
        if resp.status != 202 or not location:
            raise RegistryError(f"{what}: the registry gave no upload location")
        return urljoin(self.ep.origin + "/", location)

    async def _upload_offset(self, url: str, what: str) -> tuple[int, str]:
        """How much of an upload the registry holds (`Range: 0-N` of a GET of its
        location, 204) and where to go on: (N + 1, location)."""
        async with self.get("", what, url=url) as resp:
            await resp.read(_ERROR_BODY_LIMIT)
            got = resp.header("range") or ""
            location = resp.header("location") or url
        lo, _, hi = got.partition("-")
        if resp.status != 204 or lo.strip() != "0" or not hi.strip().isdigit():
            raise RegistryError(f"{what}: the registry does not say how much of the "
                                f"upload it holds (Range {got!r})")
        return int(hi) + 1, urljoin(url, location)

    async def put_manifest(self, reference: str, media_type: str, body: bytes) -> None:
        what = f"manifest {self.remote.repository}:{reference}"
        async with self.get(f"{self.remote.path}/manifests/{reference}", what, method="PUT",
                            content_type=media_type, body=body) as resp:
            await resp.read(_ERROR_BODY_LIMIT)
