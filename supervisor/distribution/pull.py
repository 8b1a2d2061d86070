"""One pull: manifest -> config -> layers (in parallel) -> one image in the store.

Integrity is checked while bytes stream: each blob is hashed chunk by chunk and its
length held to the manifest's size (a `Content-Length` lie is refused at the first
byte too many); a mismatch names the digest and nothing is stored.  Each layer is then
decompressed in a worker thread, its diff ID checked against the config, and unpacked by
`ImageStore.stage_layer` (the same path `docker load` takes, `tarsafe` inside); the
image is committed all or nothing by `ImageStore.add_images`.  A layer whose diff ID the
store already has is never downloaded ("Already exists").  Disk writes, decompression
and unpacking run off the trio thread; the trio thread only moves and hashes bytes.

Progress goes out as `Progress` records through `emit` (sync, never blocks); the API
edge turns them into Docker's JSON messages.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TypeVar

import structlog
import trio

from supervisor.distribution import manifests as mf
from supervisor.distribution.auth import Authorizer, Credentials
from supervisor.distribution.hosts import RegistryHosts
from supervisor.distribution.reference import Remote
from supervisor.distribution.registry import Repository
from supervisor.distribution.sources import LayerSources, Source
from supervisor.distribution.transport import HttpClient, Response, TransportError
from supervisor.errors import CorralError, InvalidArgument, NotFound
from supervisor.images import oci
from supervisor.images.store import ImageStore, NewImage, StagedLayer

_log = structlog.get_logger("corral.distribution")
_FLUSH = 1 << 20  # bytes buffered before a write in a worker thread (and a progress line)
_CHUNK = 1 << 20
MAX_CONCURRENT_DOWNLOADS = 3  # dockerd's default max-concurrent-downloads
# Decompress + unpack one layer at a time: unpacking is Python code under the GIL, so a
# second thread only contends with the first and with the trio thread (measured: /_ping
# p99 26 ms with 3, 10 ms with 1, and the pull no slower).
UNPACK_THREADS = 1


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


class DiffIDMismatch(InvalidArgument):
    pass


def _write_all(f: BinaryIO, data: bytes) -> None:
    f.write(data)


def _open_new(path: Path) -> BinaryIO:
    return open(path, "xb")  # noqa: SIM115 - closed by the caller


def _unzstd(src: Path, dst: Path, h: hashlib._Hash) -> None:
    """zstd, every frame (a layer may hold several, as `zstd:chunked` writes it)."""
    import zstandard

    try:
        with open(src, "rb") as f, open(dst, "xb") as out, \
                zstandard.ZstdDecompressor().stream_reader(f, read_across_frames=True) as r:
            while chunk := r.read(_CHUNK):
                h.update(chunk)
                out.write(chunk)
    except zstandard.ZstdError as e:
        raise InvalidArgument(f"invalid zstd layer: {e}") from None
    src.unlink()


def decompress_verified(src: Path, dst: Path, compression: str, diff_id: str) -> None:
    """Decompress `src` into `dst` (gzip, possibly multi-member; zstd, possibly several
    frames; or none), checking the result's sha256 is `diff_id`; `src` is removed.
    Runs in a worker thread."""
    h = hashlib.sha256()
    if compression == "zstd":
        _unzstd(src, dst, h)
    elif compression == "none":
        with open(src, "rb") as f:
            while chunk := f.read(_CHUNK):
                h.update(chunk)
        src.rename(dst)
    else:
        d = zlib.decompressobj(wbits=31)
        with open(src, "rb") as f, open(dst, "xb") as out:
            while chunk := f.read(_CHUNK):
                while chunk:
                    data = d.decompress(chunk)
                    h.update(data)
                    out.write(data)
                    if d.eof:  # another gzip member may follow
                        chunk = d.unused_data
                        d = zlib.decompressobj(wbits=31)
                    else:
                        chunk = b""
            try:
                tail = d.flush()
            except zlib.error as e:
                raise InvalidArgument(f"invalid gzip layer: {e}") from None
            h.update(tail)
            out.write(tail)
        src.unlink()
    got = "sha256:" + h.hexdigest()
    if got != diff_id:
        raise DiffIDMismatch(
            f"layer diff ID mismatch: the layer unpacks to {got}, its image config says "
            f"{diff_id}"
        )


def _decompress_and_stage(
    store: ImageStore, blob: Path, compression: str, diff_id: str, workdir: Path
) -> StagedLayer:
    tar = blob.with_suffix(".tar")
    try:
        decompress_verified(blob, tar, compression, diff_id)
    except zlib.error as e:
        raise InvalidArgument(f"invalid gzip layer: {e}") from None
    return store.stage_layer(tar, diff_id, workdir)


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
        self.unpack_limiter = trio.CapacityLimiter(UNPACK_THREADS)

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
        body, ctype, digest = await repo.manifest(remote.reference)
        parsed = mf.parse_manifest(body, ctype)
        if isinstance(parsed, mf.Index):
            chosen = mf.select(parsed, want)
            body, ctype, _ = await repo.manifest(chosen.digest)
            parsed = mf.parse_manifest(body, ctype or chosen.media_type)
            if isinstance(parsed, mf.Index):
                raise InvalidArgument(f"manifest {chosen.digest}: nested index")
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
            self.store.add_images([new])
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
        blob = workdir / f"{oci.hex_of(desc.digest)}.blob"
        if self.limiter.available_tokens == 0:
            emit(Progress("Waiting", desc.short))
        async with self.limiter:
            await self._download(repo, desc, blob, emit)
        emit(Progress("Extracting", desc.short, 0, desc.size))
        staged[diff_id] = await trio.to_thread.run_sync(
            _decompress_and_stage, self.store, blob, compression, diff_id, workdir,
            limiter=self.unpack_limiter,
        )
        emit(Progress("Pull complete", desc.short))

    async def _download(self, repo: Repository, desc: mf.Descriptor, blob: Path,
                        emit: Emit) -> None:
        """Stream the blob into `blob`, hashing as it comes.  A connection that breaks
        (or stalls) is resumed where it broke with a `Range` request, at once if the
        attempt moved bytes, after a pause if not; a registry that ignores the Range
        sends it all again (the file and hash start over).  dockerd's 5 attempts."""
        dl = _Download(hashlib.sha256())
        urls = list(desc.foreign_urls)  # a foreign layer: its URLs first, as dockerd
        f = await trio.to_thread.run_sync(_open_new, blob)
        try:
            failures = 0
            while True:
                before = dl.got
                try:
                    await self._fetch(repo, desc, f, dl, emit, urls[0] if urls else None)
                    break
                except CorralError as e:
                    if not urls:
                        if not isinstance(e, TransportError):
                            raise
                    else:  # that URL failed: the next one, the registry last
                        _log.info("pull.foreign_url_failed", url=urls.pop(0), error=e.message)
                        dl.restart()
                        await trio.to_thread.run_sync(_truncate, f)
                        continue
                    failures += 1
                    if failures >= MAX_DOWNLOAD_ATTEMPTS:
                        raise
                    _log.info("pull.blob_retry", digest=desc.digest, got=dl.got,
                              error=e.message)
                    if dl.got == before:  # no progress: give the registry a moment
                        emit(Progress(f"Retrying in {failures} second"
                                      f"{'s' if failures > 1 else ''}", desc.short))
                        await trio.sleep(failures)
        finally:
            await trio.to_thread.run_sync(f.close)
        if dl.got != desc.size:
            raise InvalidArgument(
                f"blob {desc.digest}: short read, {dl.got} of {desc.size} bytes"
            )
        emit(Progress("Verifying Checksum", desc.short))
        if "sha256:" + dl.hash.hexdigest() != desc.digest:
            raise InvalidArgument(f"filesystem layer verification failed for digest {desc.digest}")
        emit(Progress("Download complete", desc.short))

    async def _fetch(self, repo: Repository, desc: mf.Descriptor, f: BinaryIO,
                     dl: _Download, emit: Emit, url: str | None) -> None:
        """One attempt: the blob from `dl.got` on (from `url` if given), appended to
        `f`; what arrived before a failure is written and counted."""
        buf = bytearray()
        try:
            async with repo.blob(desc.digest, dl.got, url) as resp:
                if dl.got and not _resumes(resp, dl.got):
                    dl.restart()  # a 200: the whole blob again
                    await trio.to_thread.run_sync(_truncate, f)
                length = resp.header("content-length")
                want = desc.size - dl.got
                if length is not None and length.isdigit() and int(length) != want:
                    raise InvalidArgument(
                        f"blob {desc.digest}: the registry sends {int(length) + dl.got} "
                        f"bytes, the manifest says {desc.size}"
                    )
                async for chunk in resp.chunks():
                    if dl.got + len(buf) + len(chunk) > desc.size:
                        raise InvalidArgument(
                            f"blob {desc.digest}: more than the manifest's {desc.size} bytes"
                        )
                    dl.hash.update(chunk)
                    buf += chunk
                    if len(buf) >= _FLUSH:
                        await trio.to_thread.run_sync(_write_all, f, bytes(buf))
                        dl.got += len(buf)
                        buf.clear()
                        emit(Progress("Downloading", desc.short, dl.got, desc.size))
        finally:
            if buf:
                with trio.CancelScope(shield=True):
                    await trio.to_thread.run_sync(_write_all, f, bytes(buf))
                dl.got += len(buf)


MAX_DOWNLOAD_ATTEMPTS = 5  # dockerd's maxDownloadAttempts


@dataclass
class _Download:
    """A blob download's progress across attempts: bytes in the file, their hash."""

    hash: hashlib._Hash
    got: int = 0

    def restart(self) -> None:
        self.hash = hashlib.sha256()
        self.got = 0


def _resumes(resp: Response, offset: int) -> bool:
    """Is this the 206 that continues at `offset`?  (A 200 is the whole blob.)"""
    if resp.status != 206:
        return False
    got = resp.header("content-range") or ""
    start = got.removeprefix("bytes ").partition("-")[0].strip()
    if start != str(offset):
        raise InvalidArgument(f"blob: the registry resumed at {got!r}, not at byte {offset}")
    return True


def _truncate(f: BinaryIO) -> None:
    f.seek(0)
    f.truncate()


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
