"""The layer store's one-pass ingest (a pull's download, hash, decompress and unpack at
once) and image verbs running in worker threads beside the trio thread."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from supervisor.errors import InvalidArgument
from supervisor.images.compression import Gzip
from supervisor.images.content import DigestMismatch
from supervisor.images.layers import BlobDecoder
from supervisor.images.store import ImageStore
from supervisor.metadata.database import Database


def tar_bytes(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def chunks(data: bytes, size: int = 1000) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i:i + size]


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    root = tmp_path / "state"
    return ImageStore(root, Database(root / "corral.db"))


def stream(store: ImageStore, blob: bytes, *, size: int | None = None, digest: str | None = None,
           diffid: str, gz: bool = True) -> Path:
    workdir = store.tmp / "pull-test"
    workdir.mkdir()
    it = chunks(blob)
    decoder = BlobDecoder(digest=digest or sha(blob), size=len(blob) if size is None else size,
                          decompressor=Gzip() if gz else None)
    staged = store.layers.stage_stream(
        lambda: next(it, b""), decoder=decoder, diffid=diffid, workdir=workdir
    )
    assert staged.unpacked is not None and staged.tar.read_bytes()
    return staged.unpacked


def test_a_multi_member_gzip_layer_is_unpacked_as_it_streams(store: ImageStore) -> None:
    plain = tar_bytes({"etc/motd": b"hello\n", "big": os.urandom(300_000)})
    blob = gzip.compress(plain[:7000]) + gzip.compress(plain[7000:])  # two members
    tree = stream(store, blob, diffid=sha(plain))
    assert (tree / "etc/motd").read_bytes() == b"hello\n"
    assert (tree / "big").stat().st_size == 300_000


def test_an_uncompressed_layer_streams_too(store: ImageStore) -> None:
    plain = tar_bytes({"a": b"x" * 5000})
    assert (stream(store, plain, diffid=sha(plain), gz=False) / "a").read_bytes() == b"x" * 5000


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("tampered", "filesystem layer verification failed for digest"),
        ("diffid", "layer diff ID mismatch"),
        ("short", "short read"),
        ("long", "more than the manifest's"),
        ("garbage", "filesystem layer verification failed for digest"),
    ],
)
def test_a_bad_layer_is_refused_and_leaves_nothing(
    store: ImageStore, case: str, message: str
) -> None:
    plain = tar_bytes({"f": os.urandom(50_000)})
    blob = gzip.compress(plain)
    digest, size, diffid = sha(blob), len(blob), sha(plain)
    if case == "tampered":
        blob = blob[:100] + bytes([blob[100] ^ 1]) + blob[101:]
    elif case == "diffid":
        diffid = sha(b"another")
    elif case == "short":
        size += 10
    elif case == "long":
        size -= 10
    elif case == "garbage":
        blob = os.urandom(len(blob))
    with pytest.raises(InvalidArgument, match=message):
        stream(store, blob, size=size, digest=digest, diffid=diffid)
    assert list((store.tmp / "pull-test").iterdir()) == []
    if case in ("tampered", "garbage"):
        with pytest.raises(DigestMismatch):
            stream_again = store.tmp / "pull-test"
            stream_again.rmdir()
            stream(store, blob, size=size, digest=digest, diffid=diffid)


async def test_an_import_runs_in_a_worker_without_holding_the_store(
    store: ImageStore, tmp_path: Path
) -> None:
    """The import reads its tarball from a FIFO the test feeds: while it is provably
    half-way (it has not had the rest), the trio thread tags and resolves another image
    through the store.  Were the import on the trio thread, or holding the store's lock
    over its file work, this would never get past the tag (fail_after ends it)."""
    small = tmp_path / "small.tar"
    small.write_bytes(tar_bytes({"x": b"1"}))
    await store.run(store.import_tar, small, "other:1")
    fifo = tmp_path / "in.tar"
    os.mkfifo(fifo)
    data = tar_bytes({f"f{i}": os.urandom(100_000) for i in range(40)})
    half = len(data) // 2
    done: list[str] = []

    async def importer() -> None:
        done.append((await store.run(store.import_tar, fifo, "big:1")).id)

    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(importer)
            # opening for writing returns once the import has opened the FIFO to read
            w = await trio.to_thread.run_sync(open, fifo, "wb")
            try:
                await trio.to_thread.run_sync(w.write, data[:half])
                await trio.to_thread.run_sync(w.flush)
                assert not done
                await store.run(store.tag, "other:1", "other:2")
                assert store.resolve("other:2").id == store.resolve("other:1").id
                assert not done  # the import still waits for its second half
                await trio.to_thread.run_sync(w.write, data[half:])
            finally:
                await trio.to_thread.run_sync(w.close)
    assert store.resolve("big:1").id == done[0]


def _flags(path: Path) -> int | None:
    """The inode flags of `path` (FS_IOC_GETFLAGS), None where the filesystem has none."""
    import fcntl

    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        buf = bytearray(8)
        fcntl.ioctl(fd, 0x80086601, buf)
    except OSError:
        return None
    finally:
        os.close(fd)
    return int.from_bytes(buf[:4], "little")


def test_a_layer_is_unpacked_in_a_spread_scratch_dir(tmp_path: Path) -> None:
    """ext4 without a journal scans past every inode freed in the last minute when it
    allocates one: a layer unpacked beside the last removed one cost seconds of
    kernel time.  The scratch dir a layer is made in is marked `chattr +T`, so each
    layer's tree lands in a block group of its own; the layer itself is unchanged
    and its own directories are not marked."""
    from supervisor.images import unpackd

    workdir = tmp_path / "scratch"
    workdir.mkdir()
    if _flags(workdir) is None:
        pytest.skip("no inode flags on this filesystem")
    data = tar_bytes({"a/b/f": b"hello"})
    parts = [data]
    tar, unpacked, size = unpackd.stage_stream(lambda: parts.pop() if parts else b"",
                                               decoder=None, diffid=sha(data),
                                               workdir=workdir)
    flags = _flags(workdir)
    assert flags is not None and flags & 0x00020000, "scratch dir not marked +T"
    assert not (_flags(unpacked) or 0) & 0x00020000
    assert not (_flags(unpacked / "a") or 0) & 0x00020000
    assert (unpacked / "a" / "b" / "f").read_bytes() == b"hello"
    assert size == 5 and tar.read_bytes() == data

