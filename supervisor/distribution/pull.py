"""One pull: manifest -> config -> layers (in parallel) -> one image in the store.

One pass over a layer's bytes: while a layer downloads, each batch goes down a pipe to
the layer's worker process (`images/unpacker.py`, `unpackd.py`), which checks and
decompresses it (`BlobDecoder`) and unpacks the tar as it arrives (`tarsafe` inside,
the unpacker `docker load` uses), so a layer is unpacked when its last byte comes,
never read back from a file, and its CPU work is off the daemon's GIL.  Its length is
held to the manifest's size as bytes come (a `Content-Length` lie is refused at the
first byte too many), the digest and diff ID checked at the end; a mismatch names the
digest and nothing is stored.  A broken download resumes with a `Range` request.
Layers download in parallel (dockerd's three); the image is committed all or nothing by
`ImageStore.add_images`, in a worker.  A layer whose diff ID the store already has is
never downloaded ("Already exists").  The trio thread only moves bytes.

Progress goes out as `Progress` records through `emit` (sync, never blocks); the API
edge turns them into Docker's JSON messages.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import structlog
import trio

from supervisor.distribution import manifests as mf
from supervisor.distribution.auth import Authorizer, Credentials
from supervisor.distribution.hosts import RegistryHosts
from supervisor.distribution.reference import Remote
from supervisor.distribution.registry import Repository, Schema1Refused
from supervisor.distribution.sources import LayerSources, Source
from supervisor.distribution.transport import HttpClient, Response, TransportError
from supervisor.errors import CorralError, InvalidArgument, NotFound
from supervisor.images import oci
from supervisor.images.store import ImageStore, NewImage, StagedLayer
from supervisor.images.unpacker import LayerSink, open_unpacker

_log = structlog.get_logger("corral.distribution")
_FLUSH = 1 << 20  # bytes between two Downloading lines
_CHUNK = 1 << 20
_BATCH = 1 << 18  # bytes handed to a layer's worker at once (one pipe write)
MAX_CONCURRENT_DOWNLOADS = 3  # dockerd's default max-concurrent-downloads


@dataclass(frozen=True)
class Progress:
    """One progress message: `status` as Docker words it, `id` a tag or a layer's
    short digest, byte counts for Downloading/Extracting."""

    status: str
    id: str | None = None
    current: int | None = None
    total: int | None = None
    aux: dict[str, object] | None = None  # push's {"Tag", "Digest", "Size"}


@dataclass(frozen=True)
class PullResult:
    image_id: str
    manifest_digest: str
    name: str  # familiar repo:tag or repo@digest, as the Status line shows it
    tag: str | None  # what the pull tagged (none for a digest pull)
    new: bool  # False: "Image is up to date"


Emit = Callable[[Progress], None]
T = TypeVar("T")


async def _tags(repo: Repository) -> list[str]:
    return await repo.tags()


class Puller:
    """Pulls into one store; `limiter` bounds parallel downloads across pulls."""

    def __init__(
        self,
        store: ImageStore,
        http: HttpClient,
        *,
        hosts: RegistryHosts | None = None,
        limiter: trio.CapacityLimiter | None = None,
        sources: LayerSources | None = None,
    ) -> None:
        self.store = store
        self.http = http
        self.hosts = hosts or RegistryHosts()
        self.limiter = limiter or trio.CapacityLimiter(MAX_CONCURRENT_DOWNLOADS)
        self.sources = sources or LayerSources(store.db)
        # diff ID -> set when the pull downloading it has committed (or failed): another
        # pull needing the same layer waits for it instead of downloading it again
        self._inflight: dict[str, trio.Event] = {}
        self.unpack_limiter = trio.CapacityLimiter(MAX_CONCURRENT_DOWNLOADS)  # small layers

    async def pull(
        self,
        remote: Remote,
        emit: Emit,
        *,
        platform: mf.Platform | None = None,
        credentials: Credentials | None = None,
        status: bool = True,
    ) -> PullResult:
        """Pull one tag or digest; `status=False` leaves out the final Status line (an
        all-tags pull writes one for the repository).  A Docker Hub image is tried on
        each `registry-mirrors` entry first: any failure there falls back to the next,
        and Docker Hub itself comes last (as dockerd)."""
        return await self._on_endpoints(
            remote, credentials,
            lambda repo: self._pull_from(repo, remote, emit, platform, status))

    async def _on_endpoints(self, remote: Remote, credentials: Credentials | None,
                            fn: Callable[[Repository], Awaitable[T]]) -> T:
        """`fn` on the repository at each of `remote`'s pull endpoints until one
        succeeds: Docker Hub's mirrors, whose failures fall back to the next, then the
        registry itself, whose failure is the pull's."""
        *mirrors, registry = self.hosts.pull_endpoints(remote.domain)
        for ep in mirrors:
            repo = Repository(self.http, ep, remote, Authorizer(self.http, credentials))
            try:
                await repo.ping()
                return await fn(repo)
            except CorralError as e:
                _log.info("pull.mirror_failed", mirror=ep.origin, error=e.message)
        repo = Repository(self.http, registry, remote, Authorizer(self.http, credentials))
        await repo.ping()
        return await fn(repo)

    async def _pull_from(
        self,
        repo: Repository,
        remote: Remote,
        emit: Emit,
        platform: mf.Platform | None,
        status: bool,
    ) -> PullResult:
        want = platform or mf.host_platform()
        # a manifest pulled before (stored by its digest) is not fetched again
        try:
            body, ctype, digest = await repo.manifest(remote.reference, self.sources.manifest)
            parsed = mf.parse_manifest(body, ctype)
            if isinstance(parsed, mf.Index):
                chosen = mf.select(parsed, want)
                body, ctype, _ = await repo.manifest(chosen.digest, self.sources.manifest)
                parsed = mf.parse_manifest(body, ctype or chosen.media_type)
                if isinstance(parsed, mf.Index):
                    raise InvalidArgument(f"manifest {chosen.digest}: nested index")
        except Schema1Refused:
            # dockerd (graphdriver store) has said `Pulling from` when it finds out
            emit(Progress(f"Pulling from {remote.path}", remote.shown))
            raise
        manifest = parsed
        config_bytes = await self._small_blob(repo, manifest.config, mf.CONFIG_LIMIT)
        config = mf.parse_config(config_bytes)
        if platform is not None and not platform.matches(config.platform):
            raise NotFound(
                f"image with reference {remote.familiar()} was found but does not match "
                f"the specified platform: wanted {platform}, actual: {config.platform}"
            )
        if len(config.diff_ids) != len(manifest.layers):
            raise InvalidArgument(
                f"invalid image: {len(manifest.layers)} layers in the manifest but "
                f"{len(config.diff_ids)} diff IDs in the config"
            )
        compressions = [mf.layer_compression(d.media_type) for d in manifest.layers]
        image_id = manifest.config.digest
        tag = remote.tag_name()
        name = tag or remote.familiar()
        repo_digest = f"{remote.repository}@{digest}"
        emit(Progress(f"Pulling from {remote.path}", remote.shown))
        have = self.store.layer_ids()
        up_to_date = self.store.exists(image_id) and (
            tag is None or self.store.has_tag(tag, image_id)
        )
        workdir = Path(tempfile.mkdtemp(dir=self.store.tmp, prefix="pull-"))
        owned: list[str] = []
        try:
            staged: dict[str, StagedLayer] = {}
            todo: list[tuple[mf.Descriptor, str, str]] = []
            for desc, diff_id, comp in zip(manifest.layers, config.diff_ids, compressions,
                                           strict=True):
                if diff_id in have:
                    emit(Progress("Already exists", desc.short))
                    staged.setdefault(diff_id, StagedLayer(diff_id, self.store.blob_path(diff_id)))
                elif diff_id not in staged and all(d != diff_id for _, d, _ in todo):
                    emit(Progress("Pulling fs layer", desc.short))
                    todo.append((desc, diff_id, comp))
            try:
                async with trio.open_nursery() as nursery:
                    for desc, diff_id, comp in todo:
                        nursery.start_soon(
                            self._layer, repo, desc, diff_id, comp, workdir, staged, owned,
                            emit,
                        )
            except BaseExceptionGroup as eg:
                raise first_error(eg) from None
            layers = [staged[d] for d in config.diff_ids]
            new = NewImage(
                config=config_bytes,
                layers=layers,
                tags=[tag] if tag else [],
                created=_created(config.created),
                repo_digests=[repo_digest],
            )
            await self.store.run(self.store.add_images, [new])
            self.sources.add([
                Source(diff_id, d.digest, d.media_type, d.size, f"{remote.domain}/{remote.path}")
                for d, diff_id in zip(manifest.layers, config.diff_ids, strict=True)
            ])
            self.sources.add_manifest(
                "sha256:" + hashlib.sha256(body).hexdigest(), image_id, manifest.media_type, body
            )
        finally:
            for d in owned:
                self._inflight.pop(d).set()
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(shutil.rmtree, workdir, True)
        emit(Progress(f"Digest: {digest}"))
        if status:
            emit(Progress(_status(not up_to_date, name)))
        return PullResult(image_id, digest, name, tag, not up_to_date)

    async def pull_all(
        self,
        remote: Remote,
        emit: Emit,
        *,
        platform: mf.Platform | None = None,
        credentials: Credentials | None = None,
    ) -> PullResult:
        """`docker pull -a`: every tag of the repository, one after the other, then
        one Status line for the repository (as dockerd)."""
        tags = sorted(await self._on_endpoints(remote, credentials, _tags))
        if not tags:
            raise NotFound(f"repository {remote.repository} has no tags")
        new = False
        last: PullResult | None = None
        for tag in tags:
            one = Remote(remote.domain, remote.path, remote.repository, tag, None)
            last = await self.pull(one, emit, platform=platform, credentials=credentials,
                                   status=False)
            new = new or last.new
        assert last is not None
        emit(Progress(_status(new, remote.repository)))
        return PullResult(last.image_id, last.manifest_digest, remote.repository, None, new)

    async def describe(self, remote: Remote, credentials: Credentials | None = None
                       ) -> tuple[mf.Descriptor, list[mf.Platform]]:
        """`GET /distribution/{name}/json`: the manifest's descriptor as the registry
        serves it and the platforms it has (an index's entries, or the config's)."""
        return await self._on_endpoints(remote, credentials,
                                        lambda repo: self._describe(repo, remote))

    async def _describe(self, repo: Repository, remote: Remote
                        ) -> tuple[mf.Descriptor, list[mf.Platform]]:
        body, ctype, digest = await repo.manifest(remote.reference)
        parsed = mf.parse_manifest(body, ctype)
        desc = mf.Descriptor(parsed.media_type, digest, len(body))
        if isinstance(parsed, mf.Index):
            return desc, [m.platform for m in parsed.manifests if m.platform is not None]
        config = mf.parse_config(await self._small_blob(repo, parsed.config, mf.CONFIG_LIMIT))
        return desc, [config.platform]

    async def _small_blob(self, repo: Repository, desc: mf.Descriptor, limit: int) -> bytes:
        if desc.size > limit:
            raise InvalidArgument(f"blob {desc.digest}: {desc.size} bytes is too large")
        async with repo.blob(desc.digest) as resp:
            data = await resp.read(desc.size)
        got = oci.digest_of(data)
        if got != desc.digest or len(data) != desc.size:
            raise InvalidArgument(f"blob verification failed for digest {desc.digest}")
        return data

    async def _layer(
        self,
        repo: Repository,
        desc: mf.Descriptor,
        diff_id: str,
        compression: str,
        workdir: Path,
        staged: dict[str, StagedLayer],
        owned: list[str],
        emit: Emit,
    ) -> None:
        while (busy := self._inflight.get(diff_id)) is not None:
            emit(Progress("Waiting", desc.short))
            await busy.wait()
            if diff_id in self.store.layer_ids():  # the other pull brought it
                staged[diff_id] = StagedLayer(diff_id, self.store.blob_path(diff_id))
                emit(Progress("Already exists", desc.short))
                return
        self._inflight[diff_id] = trio.Event()
        owned.append(diff_id)
        if self.limiter.available_tokens == 0:
            emit(Progress("Waiting", desc.short))
        async with self.limiter:
            staged[diff_id] = await self._fetch_layer(
                repo, desc, diff_id, compression, workdir, emit
            )
        emit(Progress("Pull complete", desc.short))

    async def _fetch_layer(self, repo: Repository, desc: mf.Descriptor, diff_id: str,
                           compression: str, workdir: Path, emit: Emit) -> StagedLayer:
        """Download, decode and unpack at once: this task moves the bytes into the
        layer's worker process (`unpacker`), which checks, decompresses and unpacks
        them as they come, on its own CPU and GIL.  Any failure here (a download that
        gives up, a cancelled pull) kills the worker before the scratch is removed."""
        async with open_unpacker(digest=desc.digest, size=desc.size, compression=compression,
                                 diffid=diff_id, workdir=workdir,
                                 limiter=self.unpack_limiter) as unpacker:
            await self._download(repo, desc, unpacker, emit)
            emit(Progress("Extracting", desc.short, 0, desc.size))
            return await unpacker.finish()

    async def _download(self, repo: Repository, desc: mf.Descriptor, unpacker: LayerSink,
                        emit: Emit) -> None:
        """The blob's bytes into `unpacker`.  A connection that breaks (or stalls)
        is resumed where it broke with a `Range` request, at once if the attempt moved
        bytes, after a pause if not; from a registry that ignores the Range, the bytes
        already decoded are skipped (the digest at the end proves they were the same).
        dockerd's 5 attempts.  A foreign layer's URLs come first, the registry last."""
        urls = list(desc.foreign_urls)
        failures = 0
        while True:
            before = unpacker.got
            try:
                await self._fetch(repo, desc, unpacker, emit, urls[0] if urls else None)
                break
            except CorralError as e:
                if not urls:
                    if not isinstance(e, TransportError):
                        raise
                else:  # that URL failed: the next one (from where it broke), the registry last
                    _log.info("pull.foreign_url_failed", url=urls.pop(0), error=e.message)
                    continue
                failures += 1
                if failures >= MAX_DOWNLOAD_ATTEMPTS:
                    raise
                _log.info("pull.blob_retry", digest=desc.digest, got=unpacker.got,
                          error=e.message)
                if unpacker.got == before:  # no progress: give the registry a moment
                    emit(Progress(f"Retrying in {failures} second"
                                  f"{'s' if failures > 1 else ''}", desc.short))
                    await trio.sleep(failures)
        emit(Progress("Verifying Checksum", desc.short))  # the worker's, at its end
        emit(Progress("Download complete", desc.short))

    async def _fetch(self, repo: Repository, desc: mf.Descriptor, unpacker: LayerSink,
                     emit: Emit, url: str | None) -> None:
        """One attempt: the blob from `unpacker.got` on (from `url` if given).  Bytes
        count once decoded and sent; what arrived before a broken connection is
        decoded too, so the next attempt resumes exactly where this one broke."""
        buf = bytearray()
        shown = unpacker.got

        async def decode() -> None:
            await unpacker.feed(bytes(buf))
            buf.clear()

        async with repo.blob(desc.digest, unpacker.got, url) as resp:
            skip = 0
            if unpacker.got and not _resumes(resp, unpacker.got):
                skip = unpacker.got  # a 200: the whole blob again; skip what we have
            length = resp.header("content-length")
            want = desc.size - unpacker.got + skip
            if length is not None and length.isdigit() and int(length) != want:
                raise InvalidArgument(
                    f"blob {desc.digest}: the registry sends {int(length) + unpacker.got - skip}"
                    f" bytes, the manifest says {desc.size}"
                )
            try:
                async for chunk in resp.chunks():
                    if skip:
                        n = min(skip, len(chunk))
                        chunk, skip = chunk[n:], skip - n
                    if unpacker.got + len(buf) + len(chunk) > desc.size:
                        raise InvalidArgument(
                            f"blob {desc.digest}: more than the manifest's {desc.size} bytes"
                        )
                    buf += chunk
                    if len(buf) >= _BATCH:  # fewer, larger hand-offs to the workers
                        await decode()
                    if unpacker.got - shown >= _FLUSH:
                        shown = unpacker.got
                        emit(Progress("Downloading", desc.short, unpacker.got, desc.size))
            except TransportError:
                if buf:
                    await decode()  # kept: the resume starts after it
                raise
            if buf:
                await decode()


MAX_DOWNLOAD_ATTEMPTS = 5  # dockerd's maxDownloadAttempts


def _resumes(resp: Response, offset: int) -> bool:
    """Is this the 206 that continues at `offset`?  (A 200 is the whole blob.)"""
    if resp.status != 206:
        return False
    got = resp.header("content-range") or ""
    start = got.removeprefix("bytes ").partition("-")[0].strip()
    if start != str(offset):
        raise InvalidArgument(f"blob: the registry resumed at {got!r}, not at byte {offset}")
    return True


def _created(stamp: str) -> float:
    """The config's `created` as unix seconds; 0 (Docker's zero time) if unreadable."""
    try:
        return oci.parse_rfc3339(stamp) if stamp else 0.0
    except ValueError:
        return 0.0


def _status(new: bool, name: str) -> str:
    if new:
        return f"Status: Downloaded newer image for {name}"
    return f"Status: Image is up to date for {name}"


def first_error(eg: BaseExceptionGroup[BaseException]) -> BaseException:
    """The exception a user should see from a nursery's group: the first that is not a
    cancellation (siblings are cancelled because of it); the group if all are."""
    for e in eg.exceptions:
        if isinstance(e, BaseExceptionGroup):
            inner = first_error(e)
            if inner is not e:
                return inner
        elif not isinstance(e, trio.Cancelled):
            return e
    return eg
