"""Image archives: what `docker save` writes and `docker load` reads.

One tar holds two views of the same blobs, as Docker >= 25 writes it:

    blobs/sha256/<hex>   configs, manifests, and layers (uncompressed tars, so a
                         layer's blob digest is its diffid)
    oci-layout, index.json                OCI image layout (skopeo oci-archive:, umoci,
                                          containerd); tags as annotations
    manifest.json, repositories           docker-archive (`docker load`, skopeo
                                          docker-archive:, podman load)

Reading takes either view, and older layouts (Docker 1.10-24: `<id>/layer.tar`
directories, possibly symlinked to share a layer; skopeo and buildah: `<hex>.tar`), with
gzip, bzip2 or xz layers.  An archive is hostile input, so nothing in it is ever
extracted by name: members are looked up in the tar's table, names and links that climb
out of the archive are refused, every config and layer digest is checked, and a layer
reaches the disk only through `tarsafe.unpack_layer` (inside `ImageStore.stage_layer`).

Pure parts (tar headers, the metadata files, reading manifests and indexes, names) are
functions over data; `read_archive` does the file work (no rows: it may run in a worker
thread) and `ImageStore.add_images` commits the result all or nothing.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import json
import lzma
import os
import posixpath
import tarfile
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, BinaryIO, cast

from supervisor.errors import InvalidArgument, NotFound
from supervisor.images import oci
from supervisor.images.reference import is_full_id, is_hex_id, parse
from supervisor.images.store import ExportedImage, ImageStore, NewImage, StagedLayer, host_arch

MANIFEST_FILE = "manifest.json"
REPOSITORIES_FILE = "repositories"
INDEX_FILE = "index.json"
LAYOUT_FILE = "oci-layout"
LAYOUT_CONTENT = b'{"imageLayoutVersion":"1.0.0"}'
BLOBS_DIR = "blobs/sha256/"

MEDIA_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MEDIA_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MANIFEST_TYPES = (oci.MEDIA_MANIFEST, MEDIA_DOCKER_MANIFEST)
INDEX_TYPES = (oci.MEDIA_INDEX, MEDIA_DOCKER_LIST)

_JSON_LIMIT = 16 << 20  # no legitimate manifest, index or config comes near this
_MAX_LINKS = 16
_CHUNK = 1 << 20
_BLOCK = 512


def _bad(message: str) -> InvalidArgument:
    return InvalidArgument(f"invalid image archive: {message}")


# ==================================================================== save (pure)


@dataclass
class SaveItem:
    """One image to save and the tags it is saved under (none when named by ID)."""

    image: ExportedImage
    tags: list[str] = field(default_factory=list)


def blob_name(digest: str) -> str:
    return BLOBS_DIR + oci.hex_of(digest)


def _platform(config: dict[str, Any]) -> dict[str, str]:
    plat = {"architecture": str(config.get("architecture") or host_arch())}
    plat["os"] = str(config.get("os") or "linux")
    if config.get("variant"):
        plat["variant"] = str(config["variant"])
    return plat


def metadata_files(items: list[SaveItem], manifest_sizes: dict[str, int]) -> dict[str, bytes]:
    """index.json, manifest.json, repositories and oci-layout for `items`.

    `manifest_sizes` maps each image's manifest digest to its blob size.  Every tag gets
    its own index.json entry annotated the way containerd and Docker read it back
    (`io.containerd.image.name` = the full name, `org.opencontainers.image.ref.name` =
    the tag); an untagged image gets one entry without annotations.  `repositories`
    (the pre-1.10 map, still read by some tools) points each tag at the top layer.
    """
    descriptors: list[dict[str, Any]] = []
    manifest: list[dict[str, Any]] = []
    repositories: dict[str, dict[str, str]] = {}
    for item in items:
        img = item.image
        desc: dict[str, Any] = {
            "mediaType": oci.MEDIA_MANIFEST,
            "digest": img.manifest_digest,
            "size": manifest_sizes[img.manifest_digest],
            "platform": _platform(img.config),
        }
        if not item.tags:
            descriptors.append(desc)
        for tag in item.tags:
            ref = parse(tag)
            annotations = {
                oci.ANNOTATION_CONTAINERD_NAME: f"{ref.canonical}:{ref.tag or 'latest'}",
                oci.ANNOTATION_REF_NAME: ref.tag or "latest",
            }
            descriptors.append(desc | {"annotations": annotations})
            if img.layers:
                top = oci.hex_of(img.layers[-1])
                repositories.setdefault(ref.repository, {})[ref.tag or "latest"] = top
        manifest.append(
            {
                "Config": blob_name(img.id),
                "RepoTags": list(item.tags) or None,
                "Layers": [blob_name(d) for d in img.layers],
            }
        )
    index = {"schemaVersion": 2, "mediaType": oci.MEDIA_INDEX, "manifests": descriptors}
    files = {
        INDEX_FILE: json.dumps(index, separators=(",", ":")).encode(),
        MANIFEST_FILE: json.dumps(manifest, separators=(",", ":")).encode() + b"\n",
        LAYOUT_FILE: LAYOUT_CONTENT,
    }
    if repositories:
        files[REPOSITORIES_FILE] = json.dumps(repositories, separators=(",", ":")).encode() + b"\n"
    return files


def tar_header(name: str, size: int, *, directory: bool = False) -> bytes:
    """A ustar header as Go's archive/tar writes it for `docker save` (root, mtime 0)."""
    info = tarfile.TarInfo(name)
    info.size = 0 if directory else size
    info.type = tarfile.DIRTYPE if directory else tarfile.REGTYPE
    info.mode = 0o755 if directory else 0o644
    info.mtime = 0
    info.uname = info.gname = ""
    return info.tobuf(format=tarfile.USTAR_FORMAT)


def padding(size: int) -> bytes:
    """Zeros completing the last 512-byte block of a member of `size` bytes."""
    return b"\0" * (-size % _BLOCK)


END_OF_ARCHIVE = b"\0" * (2 * _BLOCK)


# ================================================================= save (I/O)


def select_images(store: ImageStore, names: Iterable[str]) -> list[SaveItem]:
    """Docker's parseNames: which images `docker save NAME...` writes, under which tags.

    `repo:tag` saves that tag; a bare `repo` saves every tag of the repository; an ID,
    ID prefix or `name@digest` saves the image without tags.  Images named twice are
    saved once, with the union of their tags.
    """
    items: dict[str, SaveItem] = {}

    def add(target: str, tag: str | None) -> None:
        img = store.export_image(target)
        item = items.setdefault(img.id, SaveItem(img))
        if tag is not None and tag not in item.tags:
            item.tags.append(tag)

    for name in names:
        if is_full_id(name) or not _parses(name):
            add(name, None)
            continue
        ref = parse(name)
        if ref.digest is not None:
            add(name, None)
        elif ref.tag is not None:
            add(name, ref.name())
        else:
            tags = store.tags_in_repository(ref.repository)
            for tag in tags:
                add(tag, tag)
            if not tags:
                add(name, None)  # maybe an ID prefix; NotFound names it otherwise
    if not items:
        raise NotFound("no images to save")
    return list(items.values())


def _parses(name: str) -> bool:
    try:
        parse(name)
    except InvalidArgument:
        return False
    return True


@dataclass
class _Member:
    name: str
    size: int
    data: bytes | None = None
    file: BinaryIO | None = None
    directory: bool = False


class SavePlan:
    """Every member of the archive, with the blob files already open.

    Opening them up front means a concurrent `rmi` cannot break a save half-way: an
    open file outlives its unlink.  Close the plan (or iterate it fully) when done.
    """

    def __init__(self, store: ImageStore, items: list[SaveItem]) -> None:
        self.items = items
        self.members: list[_Member] = []
        try:
            self._plan(store)
        except BaseException:
            self.close()
            raise

    def _open(self, store: ImageStore, digest: str) -> tuple[BinaryIO, int]:
        f = open(store.blob_path(digest), "rb")  # noqa: SIM115 - closed by close()
        return f, os.fstat(f.fileno()).st_size

    def _plan(self, store: ImageStore) -> None:
        blobs: dict[str, _Member] = {}
        sizes: dict[str, int] = {}
        for item in self.items:
            img = item.image
            for digest in (*img.layers, img.id, img.manifest_digest):
                if digest in blobs:
                    continue
                f, size = self._open(store, digest)
                blobs[digest] = _Member(blob_name(digest), size, file=f)
                sizes[digest] = size
        self.members = [
            _Member("blobs/", 0, directory=True),
            _Member(BLOBS_DIR, 0, directory=True),
            *sorted(blobs.values(), key=lambda m: m.name),
        ]
        files = metadata_files(self.items, sizes)
        self.members += [_Member(n, len(d), data=d) for n, d in sorted(files.items())]

    def close(self) -> None:
        for m in self.members:
            if m.file is not None:
                m.file.close()

    def chunks(self) -> Iterable[bytes]:
        """The archive's bytes, in pieces of at most about 1 MiB (blocking reads)."""
        try:
            for m in self.members:
                yield tar_header(m.name, m.size, directory=m.directory)
                if m.data is not None:
                    yield m.data + padding(m.size)
                elif m.file is not None:
                    left = m.size
                    while left > 0:
                        chunk = m.file.read(min(_CHUNK, left))
                        if not chunk:
                            raise OSError(f"blob {m.name} shrank while being saved")
                        left -= len(chunk)
                        yield chunk
                    yield padding(m.size)
            yield END_OF_ARCHIVE
        finally:
            self.close()

    async def stream(self) -> AsyncIterator[bytes]:
        """`chunks()` for the trio thread: each blocking read runs in a worker thread."""
        import trio

        it = iter(self.chunks())
        sentinel = b""
        try:
            while True:
                chunk = await trio.to_thread.run_sync(next, it, sentinel)
                if chunk is sentinel:
                    return
                yield chunk
        finally:
            self.close()


def write_archive(store: ImageStore, names: Iterable[str], out: IO[bytes]) -> list[SaveItem]:
    """Save images to a file object (the blocking form, for tests and tools)."""
    plan = SavePlan(store, select_images(store, names))
    for chunk in plan.chunks():
        out.write(chunk)
    return plan.items


# ==================================================================== load (pure)


def member_name(name: str, *, what: str = "archive entry") -> str:
    """A path inside the archive, normalised (`./a//b` -> `a/b`); refuse escapes."""
    if not name or name.startswith("/") or "\\" in name or "\0" in name:
        raise InvalidArgument(f"refusing {what} {name!r}: path escapes the archive")
    norm = posixpath.normpath(name)
    if norm == ".." or norm.startswith("../"):
        raise InvalidArgument(f"refusing {what} {name!r}: path escapes the archive")
    return norm


@dataclass
class BlobRef:
    """A file the archive must hold, and what it must hash to when known."""

    path: str
    digest: str | None = None  # of the bytes as stored (maybe compressed)
    size: int | None = None


@dataclass
class ArchiveImage:
    """One image as an archive describes it, before any blob is read."""

    config: BlobRef
    layers: list[BlobRef]
    tags: list[str] = field(default_factory=list)


def _digest_in_path(path: str) -> str | None:
    """`blobs/sha256/<hex>`, `<hex>.json`, `<hex>.tar` name their own digest."""
    parts = path.split("/")
    base = parts[-1].removesuffix(".json").removesuffix(".tar")
    if is_hex_id(base) and (len(parts) == 1 or parts[-2] == "sha256"):
        return "sha256:" + base
    return None


def _tag(name: Any, where: str) -> str:
    if not isinstance(name, str):
        raise _bad(f"{where}: a tag must be a string")
    try:
        ref = parse(name)
    except InvalidArgument as e:
        raise _bad(f"{where}: {e.message}") from None
    if ref.digest is not None:
        raise _bad(f"{where}: {name!r} is not a tag")
    return ref.name()


def docker_manifest_images(doc: Any) -> list[ArchiveImage]:
    """Read manifest.json: `[{"Config", "RepoTags", "Layers"}]`."""
    if not isinstance(doc, list):
        raise _bad(f"{MANIFEST_FILE} is not a list")
    out: list[ArchiveImage] = []
    for i, entry in enumerate(doc):
        where = f"{MANIFEST_FILE}[{i}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("Config"), str):
            raise _bad(f"{where} has no Config")
        layers = entry.get("Layers") or []
        if not isinstance(layers, list) or not all(isinstance(x, str) for x in layers):
            raise _bad(f"{where}: Layers must be a list of paths")
        config = member_name(entry["Config"], what=f"path in {where}")
        out.append(
            ArchiveImage(
                config=BlobRef(config, _digest_in_path(config)),
                layers=[BlobRef(member_name(p, what=f"path in {where}")) for p in layers],
                tags=[_tag(t, where) for t in entry.get("RepoTags") or []],
            )
        )
    return out


def tag_from_annotations(annotations: Any) -> str | None:
    """The name an OCI index entry gives its image, as containerd reads it back.

    `io.containerd.image.name` holds the full name.  `org.opencontainers.image.ref.name`
    is, by the spec, often just a tag (`latest`): that names nothing and is ignored;
    skopeo and buildah write a whole `name:tag` there, which is taken.
    """
    if not isinstance(annotations, dict):
        return None
    full = annotations.get(oci.ANNOTATION_CONTAINERD_NAME)
    if isinstance(full, str) and full:
        return _tag(full, INDEX_FILE)
    ref = annotations.get(oci.ANNOTATION_REF_NAME)
    if isinstance(ref, str) and (":" in ref or "/" in ref):
        try:
            return _tag(ref, INDEX_FILE)
        except InvalidArgument:
            return None
    return None


def _descriptor(d: Any, where: str) -> BlobRef:
    if not isinstance(d, dict):
        raise _bad(f"{where}: not a descriptor")
    digest, size = d.get("digest"), d.get("size")
    if not isinstance(digest, str) or not isinstance(size, int) or size < 0:
        raise _bad(f"{where}: a descriptor needs a digest and a size")
    try:
        path = BLOBS_DIR + oci.hex_of(digest)
    except ValueError:
        raise _bad(f"{where}: unsupported digest {digest!r}") from None
    return BlobRef(path, digest, size)


def _platform_matches(plat: Any, arch: str) -> bool:
    if not isinstance(plat, dict):
        return False
    return plat.get("os") == "linux" and plat.get("architecture") == arch


def oci_index_images(
    index: Any, read_json: Callable[[BlobRef], Any], arch: str
) -> list[ArchiveImage]:
    """Read index.json (and nested indexes): one image per manifest, tags merged.

    A nested index (a multi-platform image) contributes its `linux/<arch>` manifest;
    entries for other platforms, attestations and other artifacts are skipped.
    """
    if not isinstance(index, dict) or not isinstance(index.get("manifests"), list):
        raise _bad(f"{INDEX_FILE} has no manifests")
    images: dict[str, ArchiveImage] = {}
    for i, d in enumerate(index["manifests"]):
        where = f"{INDEX_FILE} manifests[{i}]"
        ref = _descriptor(d, where)
        tag = tag_from_annotations(d.get("annotations"))
        media = d.get("mediaType")
        if media in INDEX_TYPES:
            nested = read_json(ref)
            candidates = [
                m
                for m in (nested.get("manifests") if isinstance(nested, dict) else None) or []
                if isinstance(m, dict)
                and m.get("mediaType", oci.MEDIA_MANIFEST) in MANIFEST_TYPES
                and _platform_matches(m.get("platform"), arch)
            ]
            if not candidates:
                raise _bad(f"{where}: no linux/{arch} image in this multi-platform image")
            ref = _descriptor(candidates[0], where)
        elif media not in MANIFEST_TYPES:
            continue
        assert ref.digest is not None
        if ref.digest not in images:
            images[ref.digest] = _manifest_image(read_json(ref), where)
        if tag is not None and tag not in images[ref.digest].tags:
            images[ref.digest].tags.append(tag)
    return list(images.values())


def _manifest_image(manifest: Any, where: str) -> ArchiveImage:
    if not isinstance(manifest, dict) or not isinstance(manifest.get("layers", []), list):
        raise _bad(f"{where}: the manifest is malformed")
    return ArchiveImage(
        config=_descriptor(manifest.get("config"), f"{where} config"),
        layers=[_descriptor(x, f"{where} layer") for x in manifest.get("layers") or []],
    )


def diff_ids(config: Any) -> list[str]:
    """The config's `rootfs.diff_ids`, checked to be sha256 digests."""
    rootfs = config.get("rootfs") if isinstance(config, dict) else None
    ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if not isinstance(ids, list):
        raise _bad("an image config has no rootfs.diff_ids")
    for d in ids:
        if not isinstance(d, str) or not d.startswith("sha256:") or not is_full_id(d):
            raise _bad(f"an image config has a bad diff_id {d!r}")
    return list(ids)


def loaded_lines(added: Iterable[Any]) -> list[str]:
    """What `docker load` prints: renamed tags first, then one line per tag or ID."""
    lines: list[str] = []
    for a in added:
        for tag, old in a.moved:
            lines.append(
                f"The image {tag} already exists, renaming the old one with ID {old} "
                "to empty string"
            )
        lines += [f"Loaded image: {t}" for t in a.tags] or [f"Loaded image ID: {a.id}"]
    return lines


# ==================================================================== load (I/O)


class _HashingReader(io.RawIOBase):
    """Reads through to `raw`, hashing and counting what passes (the stored bytes)."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.hash = hashlib.sha256()
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        data = self.raw.read(len(b))
        n = len(data)
        b[:n] = data
        self.hash.update(data)
        self.count += n
        return n


class _Archive:
    """An archive file's members by name; reads follow links only inside it."""

    def __init__(self, path: Path) -> None:
        try:
            self.tar = tarfile.open(path, "r:")  # noqa: SIM115 - closed by close()
            members = self.tar.getmembers()
        except (tarfile.TarError, EOFError) as e:
            raise _bad(str(e) or "not a tar archive") from None
        if not members:
            raise _bad("the archive is empty")
        self.members: dict[str, tarfile.TarInfo] = {}
        for m in members:
            self.members[member_name(m.name)] = m

    def close(self) -> None:
        self.tar.close()

    def has(self, name: str) -> bool:
        return name in self.members

    def _resolve(self, name: str) -> tarfile.TarInfo:
        seen = 0
        while True:
            info = self.members.get(name)
            if info is None:
                raise _bad(f"{name} is missing")
            if info.isreg():
                return info
            if seen >= _MAX_LINKS or not (info.issym() or info.islnk()):
                raise _bad(f"{name} is not a regular file")
            seen += 1
            if info.issym():
                if info.linkname.startswith("/"):
                    raise InvalidArgument(
                        f"refusing archive entry {info.name!r}: link escapes the archive"
                    )
                target = posixpath.join(posixpath.dirname(name), info.linkname)
            else:
                target = info.linkname
            name = member_name(target, what="link target of archive entry")

    def open(self, name: str) -> tuple[IO[bytes], int]:
        info = self._resolve(name)
        f = self.tar.extractfile(info)
        assert f is not None
        return f, info.size

    def read_json(self, ref: BlobRef) -> Any:
        f, size = self.open(ref.path)
        if size > _JSON_LIMIT:
            raise _bad(f"{ref.path} is too large")
        data = f.read()
        self.check(ref, data)
        try:
            return json.loads(data)
        except ValueError as e:
            raise _bad(f"{ref.path} is not valid JSON: {e}") from None

    @staticmethod
    def check(ref: BlobRef, data: bytes) -> None:
        if ref.size is not None and len(data) != ref.size:
            raise _bad(f"{ref.path}: size {len(data)} does not match {ref.size}")
        if ref.digest is not None and oci.digest_of(data) != ref.digest:
            raise _bad(f"{ref.path}: digest does not match {ref.digest}")


def _decompressor(head: bytes, stream: IO[bytes]) -> IO[bytes]:
    if head.startswith(b"\x1f\x8b"):
        return cast("IO[bytes]", gzip.GzipFile(fileobj=stream, mode="rb"))
    if head.startswith(b"BZh"):
        return bz2.BZ2File(stream, "rb")
    if head.startswith(b"\xfd7zXZ\x00"):
        return lzma.LZMAFile(stream, "rb")
    if head.startswith(b"\x28\xb5\x2f\xfd"):
        raise InvalidArgument("zstd-compressed layers and archives are not supported")
    return stream


def uncompressed_archive(path: Path, workdir: Path) -> Path:
    """The archive itself, or a decompressed copy in `workdir` (docker load takes
    gzip, bzip2 and xz archives)."""
    with open(path, "rb") as f:
        head = f.read(6)
        f.seek(0)
        stream = _decompressor(head, f)
        if stream is f:
            return path
        out = workdir / "archive.tar"
        try:
            with stream, open(out, "wb") as dst:
                while chunk := stream.read(_CHUNK):
                    dst.write(chunk)
        except (OSError, EOFError, lzma.LZMAError) as e:
            raise _bad(f"cannot decompress: {e}") from None
    return out


def _copy_layer(archive: _Archive, ref: BlobRef, dest: Path) -> str:
    """Write the layer `ref` to `dest` uncompressed; check its stored digest and size;
    return the diffid (sha256 of the uncompressed tar)."""
    raw, _ = archive.open(ref.path)
    hashing = _HashingReader(raw)
    buffered = io.BufferedReader(hashing, _CHUNK)
    diff = hashlib.sha256()
    try:
        stream = _decompressor(buffered.peek(6)[:6], buffered)
        with open(dest, "wb") as out:
            while chunk := stream.read(_CHUNK):
                diff.update(chunk)
                out.write(chunk)
        while buffered.read(_CHUNK):  # the rest of the stored blob, for its digest
            pass
    except (OSError, EOFError, lzma.LZMAError) as e:
        raise _bad(f"{ref.path}: cannot decompress: {e}") from None
    if ref.size is not None and hashing.count != ref.size:
        raise _bad(f"{ref.path}: size {hashing.count} does not match {ref.size}")
    if ref.digest is not None and "sha256:" + hashing.hash.hexdigest() != ref.digest:
        raise _bad(f"{ref.path}: digest does not match {ref.digest}")
    return "sha256:" + diff.hexdigest()


def describe(archive: _Archive) -> list[ArchiveImage]:
    """The images an archive holds, from manifest.json if it has one, else index.json."""
    if archive.has(MANIFEST_FILE):
        return docker_manifest_images(archive.read_json(BlobRef(MANIFEST_FILE)))
    if archive.has(INDEX_FILE):
        index = archive.read_json(BlobRef(INDEX_FILE))
        return oci_index_images(index, archive.read_json, host_arch())
    raise _bad(
        f"no {MANIFEST_FILE} or {INDEX_FILE} (archives from Docker before 1.10 are not supported)"
    )


def read_archive(store: ImageStore, path: Path, workdir: Path, known: set[str]) -> list[NewImage]:
    """Read and verify every image in the archive at `path`; stage new layers.

    Everything written goes under `workdir` (the caller removes it); no rows are
    touched, so this may run in a worker thread.  Layers in `known` (the caller reads
    `store.layer_ids()` on the trio thread) are checked but not unpacked again.  Pass
    the result to `store.add_images`.
    """
    archive = _Archive(uncompressed_archive(path, workdir))
    try:
        described = describe(archive)
        if not described:
            raise _bad("it holds no image")
        staged: dict[str, StagedLayer] = {}
        out: list[NewImage] = []
        for n, img in enumerate(described):
            f, size = archive.open(img.config.path)
            if size > _JSON_LIMIT:
                raise _bad(f"{img.config.path} is too large")
            config_bytes = f.read()
            archive.check(img.config, config_bytes)
            try:
                config = json.loads(config_bytes)
            except ValueError as e:
                raise _bad(f"{img.config.path} is not valid JSON: {e}") from None
            ids = diff_ids(config)
            if len(ids) != len(img.layers):
                raise _bad(
                    f"image {n + 1} lists {len(img.layers)} layers but its config "
                    f"has {len(ids)} diff_ids"
                )
            layers: list[StagedLayer] = []
            for i, (ref, want) in enumerate(zip(img.layers, ids, strict=True)):
                if want in staged:
                    layers.append(staged[want])
                    continue
                tar = workdir / f"layer-{n}-{i}.tar"
                got = _copy_layer(archive, ref, tar)
                if got != want:
                    raise _bad(f"{ref.path}: content digest {got} does not match diff_id {want}")
                layer = (
                    StagedLayer(want, tar)
                    if want in known
                    else store.stage_layer(tar, want, workdir)
                )
                staged[want] = layer
                layers.append(layer)
            created = config.get("created")
            try:
                when = oci.parse_rfc3339(created) if isinstance(created, str) else 0.0
            except ValueError:
                when = 0.0
            out.append(NewImage(config_bytes, layers, img.tags, when or oci.now_ns() / 1e9))
        return out
    finally:
        archive.close()
