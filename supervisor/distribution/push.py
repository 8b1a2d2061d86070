"""One push: layers (skipped when the registry has them), config, manifest by tag.

The store keeps layers uncompressed, so a layer is sent as the blob it was pulled as
when `sources` knows one the registry already has (HEAD in the target repository, or a
cross-repository mount from the repository it came from on the same registry): a pulled
image pushed back is byte-identical, same manifest digest.  Otherwise the layer is
gzip-compressed (deterministically: no name, mtime 0; in parallel blocks on worker
threads, `compress`) while it is uploaded: each `UPLOAD_CHUNK` goes up in a PATCH as
soon as it is compressed, its digest computed on the way (one pass over the bytes); a
layer that ends within one chunk goes up in one PUT (monolithic).  The config blob is
sent verbatim, so the image ID survives the round trip.  A foreign (non-distributable)
layer is not uploaded: the manifest names it with its URLs, as dockerd pushes it.
The manifest is Docker schema2, indented as dockerd writes it.

A push's latency is round trips: the config goes up beside the layers (only the
manifest must come last), a mount is tried without a HEAD first, and the rows a push
learns (where its layers now are, its repo digest) are written in one transaction in
a worker thread at the end (one fsync, none on the trio thread).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path

import trio

from supervisor.distribution import compress as compress_mod
from supervisor.distribution import manifests as mf
from supervisor.distribution.auth import Authorizer, Credentials
from supervisor.distribution.compress import Spool
from supervisor.distribution.hosts import RegistryHosts
from supervisor.distribution.pull import Emit, Progress, first_error
from supervisor.distribution.reference import Remote
from supervisor.distribution.registry import Repository
from supervisor.distribution.sources import LayerSources, Source
from supervisor.distribution.sources import insert as insert_sources
from supervisor.distribution.transport import HttpClient
from supervisor.errors import CorralError, NotFound
from supervisor.images.store import ExportedImage, ImageStore

MAX_CONCURRENT_UPLOADS = 5  # dockerd's default max-concurrent-uploads
# Larger blobs go up in chunks of this size (PATCH with Content-Range): a request per
# chunk stays under the body limits of proxies in front of registries, and a failure
# costs one chunk's request, not the blob's.  (dockerd streams one PATCH.)
UPLOAD_CHUNK = 8 << 20
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"


@dataclass(frozen=True)
class PushResult:
    tag: str
    digest: str
    size: int


@dataclass(frozen=True)
class _Blob:
    media_type: str
    digest: str
    size: int
    urls: tuple[str, ...] = ()  # a foreign layer's


# A layer's media type in the other format (the blob is the same bytes).
_OCI_TO_DOCKER = {
    "application/vnd.oci.image.layer.v1.tar+gzip": DOCKER_LAYER_GZIP,
    "application/vnd.oci.image.layer.v1.tar": "application/vnd.docker.image.rootfs.diff.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip":
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar":
        "application/vnd.docker.image.rootfs.foreign.diff.tar",
}
_DOCKER_TO_OCI = {v: k for k, v in _OCI_TO_DOCKER.items()}
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"


def new_manifest(config: _Blob, layers: list[_Blob]) -> tuple[str, bytes]:
    """The manifest for blobs that came from different places (pulled as OCI or as
    Docker, compressed here): Docker schema2 with Docker media types when every layer
    has one, as dockerd pushes; else (a zstd layer) an OCI manifest with OCI types.
    One manifest never mixes the two families (other clients refuse that)."""
    if all(b.media_type in _OCI_TO_DOCKER.values() or b.media_type in _OCI_TO_DOCKER
           for b in layers):
        docker = [replace(b, media_type=_OCI_TO_DOCKER.get(b.media_type, b.media_type))
                  for b in layers]
        return mf.DOCKER_MANIFEST, schema2(config, docker)
    oci = [replace(b, media_type=_DOCKER_TO_OCI.get(b.media_type, b.media_type))
           for b in layers]
    return mf.OCI_MANIFEST, schema2(replace(config, media_type=OCI_CONFIG), oci,
                                    mf.OCI_MANIFEST)


def schema2(config: _Blob, layers: list[_Blob], media_type: str = mf.DOCKER_MANIFEST
            ) -> bytes:
    """The manifest as dockerd marshals it (3-space indent, field order of the Go type)."""
    doc = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": {"mediaType": config.media_type, "size": config.size,
                   "digest": config.digest},
        "layers": [{"mediaType": b.media_type, "size": b.size, "digest": b.digest,
                    **({"urls": list(b.urls)} if b.urls else {})} for b in layers],
    }
    return json.dumps(doc, indent=3).encode()


class Pusher:
    def __init__(self, store: ImageStore, http: HttpClient, *,
                 hosts: RegistryHosts | None = None,
                 limiter: trio.CapacityLimiter | None = None,
                 sources: LayerSources | None = None) -> None:
        self.store = store
        self.http = http
        self.hosts = hosts or RegistryHosts()
        self.limiter = limiter or trio.CapacityLimiter(MAX_CONCURRENT_UPLOADS)
        self.sources = sources or LayerSources(store.db)
        # the CPUs compressing layers, shared by every layer of every push
        self.compressors = trio.CapacityLimiter(compress_mod.workers())

    def tags_to_push(self, remote: Remote) -> list[str]:
        """The tags `remote` names: its tag, or every tag of the repository when none
        was given (the API's empty `tag`); Docker's error when there is none."""
        if remote.tag is not None:
            if not self.store.exists(f"{remote.repository}:{remote.tag}"):
                raise NotFound(f"tag does not exist: {remote.repository}:{remote.tag}")
            return [remote.tag]
        tags = [t.rpartition(":")[2] for t in self.store.tags_in_repository(remote.repository)]
        if not tags:
            raise NotFound(f"An image does not exist locally with the tag: {remote.repository}")
        return tags

    async def push(self, remote: Remote, tags: list[str], emit: Emit, *,
                   credentials: Credentials | None = None) -> list[PushResult]:
        repo = Repository(self.http, self.hosts.endpoint(remote.domain), remote,
                          Authorizer(self.http, credentials), push=True)
        emit(Progress(f"The push refers to repository [{remote.domain}/{remote.path}]"))
        results = []
        images: list[tuple[ExportedImage, bytes]] = []  # each tag's image and config
        workdir: Path | None = None

        def prepare() -> None:  # a worker thread
            nonlocal workdir
            workdir = Path(tempfile.mkdtemp(dir=self.store.tmp, prefix="push-"))
            for tag in tags:
                image = self.store.export_image(f"{remote.repository}:{tag}")
                images.append((image, self.store.blob_path(image.id).read_bytes()))

        try:
            try:
                async with trio.open_nursery() as nursery:  # read while the ping goes
                    nursery.start_soon(repo.ping)
                    nursery.start_soon(trio.to_thread.run_sync, prepare)
            except BaseExceptionGroup as eg:
                raise first_error(eg) from None
            assert workdir is not None
            for tag, (image, config_bytes) in zip(tags, images, strict=True):
                results.append(await self._push_tag(repo, remote, tag, image, config_bytes,
                                                    workdir, emit))
        finally:
            if workdir is not None:
                with trio.CancelScope(shield=True):
                    await trio.to_thread.run_sync(shutil.rmtree, workdir, True)
        return results

    async def _push_tag(self, repo: Repository, remote: Remote, tag: str,
                        image: ExportedImage, config_bytes: bytes, workdir: Path,
                        emit: Emit) -> PushResult:
        layers: dict[str, _Blob] = {}
        seen: list[Source] = []  # where layers now are, written with the repo digest
        unique = list(dict.fromkeys(image.layers))
        for diffid in reversed(unique):  # docker lists the top layer first
            emit(Progress("Preparing", _short(diffid)))
        preferred = self._pulled_digests(image.id, image.layers)
        try:
            # the config goes up beside the layers (only the manifest must come last)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._config, repo, f"{remote.domain}/{remote.path}",
                                   image.id, config_bytes, seen)
                for diffid in reversed(unique):
                    nursery.start_soon(self._layer, repo, remote, diffid,
                                       preferred.get(diffid), workdir, layers, seen, emit)
        except BaseExceptionGroup as eg:
            raise first_error(eg) from None
        config = _Blob(DOCKER_CONFIG, image.id, len(config_bytes))
        chosen = [layers[d] for d in image.layers]
        media_type, body = self._as_pulled(image.id, chosen) or new_manifest(config, chosen)
        await repo.put_manifest(tag, media_type, body)
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        # one commit (one fsync) for the push's rows, off the trio thread
        await trio.to_thread.run_sync(functools.partial(
            self.store.add_repo_digest, image.id, f"{remote.repository}@{digest}",
            also=functools.partial(insert_sources, sources=seen)))
        emit(Progress(f"{tag}: digest: {digest} size: {len(body)}"))
        emit(Progress("", aux={"Tag": tag, "Digest": digest, "Size": len(body)}))
        return PushResult(tag, digest, len(body))

    async def _config(self, repo: Repository, target: str, digest: str, data: bytes,
                      seen: list[Source]) -> None:
        """The config blob: HEAD first only where a push put it before (a row for
        this repository, its diffid its own digest); else sent at once: a config is a
        few KB, so the upload (two requests) costs what a HEAD that misses does, and a
        registry that has it already takes it again as the same blob."""
        if any(s.repository == target for s in self.sources.of(digest)) and \
                await repo.has_blob(digest):
            return

        async def part(start: int, end: int) -> AsyncIterator[bytes]:
            yield data[start:end]

        await repo.upload(digest, len(data), part, chunk=UPLOAD_CHUNK)
        seen.append(Source(digest, digest, DOCKER_CONFIG, len(data), target))

    def _pulled_digests(self, image_id: str, diffids: list[str]) -> dict[str, mf.Descriptor]:
        """diffid -> the blob this image's pulled manifest names for it."""
        for media_type, body in self.sources.manifests(image_id):
            try:
                m = mf.parse_manifest(body, media_type)
            except CorralError:
                continue
            if isinstance(m, mf.ImageManifest) and len(m.layers) == len(diffids):
                return dict(zip(diffids, m.layers, strict=True))
        return {}

    def _as_pulled(self, image_id: str, chosen: list[_Blob]) -> tuple[str, bytes] | None:
        """The manifest this image was pulled by, if it names exactly these blobs:
        pushing it verbatim keeps the digest (whoever serialised it first)."""
        want = [b.digest for b in chosen]
        for media_type, body in self.sources.manifests(image_id):
            try:
                m = mf.parse_manifest(body, media_type)
            except CorralError:
                continue
            if isinstance(m, mf.ImageManifest) and [x.digest for x in m.layers] == want:
                return media_type, body
        return None

    async def _layer(self, repo: Repository, remote: Remote, diffid: str,
                     pulled: mf.Descriptor | None, workdir: Path, layers: dict[str, _Blob],
                     seen: list[Source], emit: Emit) -> None:
        """One layer, as dockerd's pushLayer looks for it before uploading: a blob it
        was seen as in this repository (HEAD); else mounted from another repository
        of the same registry (POST `?mount=&from=`: no HEAD first, the mount answers
        201 for a blob the target already has too); else those blobs by HEAD here (a
        mount refused); else compressed and uploaded."""
        short = _short(diffid)
        target = f"{remote.domain}/{remote.path}"
        if pulled is not None and pulled.foreign_urls:
            # as dockerd (without allow-nondistributable-artifacts): not uploaded, the
            # manifest names it with its URLs as it was pulled
            layers[diffid] = _Blob(pulled.media_type, pulled.digest, pulled.size,
                                   pulled.urls)
            emit(Progress("Skipped foreign layer", short))
            return
        preferred = pulled.digest if pulled is not None else None
        async with self.limiter:
            known = [src for src in sorted(self.sources.of(diffid),
                                           key=lambda x: x.digest != preferred)
                     if src.domain == remote.domain]
            here = [src for src in known if src.repository == target]
            elsewhere = [src for src in known if src.repository != target]
            for src in here:
                if await repo.has_blob(src.digest):
                    layers[diffid] = _Blob(src.media_type, src.digest, src.size)
                    emit(Progress("Layer already exists", short))
                    return
            for src in elsewhere:
                if await repo.mount(src.digest, src.path):
                    layers[diffid] = _Blob(src.media_type, src.digest, src.size)
                    seen.append(Source(diffid, src.digest, src.media_type, src.size, target))
                    emit(Progress(f"Mounted from {src.path}", short))
                    return
            tried = {src.digest for src in here}
            for src in elsewhere:
                if src.digest not in tried and await repo.has_blob(src.digest):
                    layers[diffid] = _Blob(src.media_type, src.digest, src.size)
                    seen.append(Source(diffid, src.digest, src.media_type, src.size, target))
                    emit(Progress("Layer already exists", short))
                    return
                tried.add(src.digest)
            digest, size = await self._compress_upload(repo, diffid, workdir, emit)
            emit(Progress("Pushed", short))
            layers[diffid] = _Blob(DOCKER_LAYER_GZIP, digest, size)
            seen.append(Source(diffid, digest, DOCKER_LAYER_GZIP, size, target))

    async def _compress_upload(self, repo: Repository, diffid: str, workdir: Path,
                               emit: Emit) -> tuple[str, int]:
        """Compress the layer and upload it at once: each chunk goes up as soon as it
        is compressed (one pass over the bytes, the upload overlapping the CPU work),
        kept in a spool file for a retried chunk.  (digest, size) of the blob."""
        short = _short(diffid)
        src = self.store.blob_path(diffid)
        # a layer that goes up in one request anyway: compressed in memory, one hop
        small = await trio.to_thread.run_sync(compress_mod.gzip_small, src, UPLOAD_CHUNK,
                                              limiter=self.compressors)
        if small is not None:
            digest, blob, n = small
            emit(Progress("Pushing", short, n, n))

            async def whole(start: int, end: int) -> AsyncIterator[bytes]:
                yield blob[start:end]

            await repo.upload(digest, len(blob), whole, chunk=UPLOAD_CHUNK)
            return digest, len(blob)
        total = (await trio.to_thread.run_sync(src.stat)).st_size
        path = workdir / f"{short}-{trio.current_time()}.tar.gz"
        fd = await trio.to_thread.run_sync(
            lambda: os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
        try:
            # the chunk being sent and what is compressed ahead of it stay in memory
            spool = Spool(fd, keep=UPLOAD_CHUNK + 4 * compress_mod.BLOCK)

            def progress(done: int) -> None:
                emit(Progress("Pushing", short, done, total))

            async def compress() -> None:
                digest, _ = await compress_mod.gzip_stream(
                    src, spool.grew, limiter=self.compressors, progress=progress,
                    store=spool.store)
                spool.finish(digest)

            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(compress)
                    await repo.upload_growing(spool, chunk=UPLOAD_CHUNK)
            except BaseExceptionGroup as eg:
                raise first_error(eg) from None
            return spool.digest, spool.size
        finally:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(os.close, fd)
                await trio.to_thread.run_sync(path.unlink, True)


def _short(diffid: str) -> str:
    return diffid.partition(":")[2][:12]
