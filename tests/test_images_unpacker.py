"""A pull's layer worker process (`images/unpacker.py`, `unpackd.py`): the layer's
bytes go down a pipe, it checks, decompresses and unpacks them, and its verdict comes
back as the daemon's own error classes; nothing is left when it fails or is cancelled."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
from pathlib import Path

import pytest
import trio

from supervisor.errors import DigestMismatch, InvalidArgument
from supervisor.images.unpacker import SMALL, Unpacker, open_unpacker


def tar_bytes(files: dict[str, bytes], *, link: tuple[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o640
            info.uid, info.gid = 12, 34
            info.mtime = 1_000_000
            tar.addfile(info, io.BytesIO(data))
        if link is not None:
            info = tarfile.TarInfo(link[0])
            info.type, info.linkname = tarfile.SYMTYPE, link[1]
            tar.addfile(info)
    return buf.getvalue()


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


async def unpack(workdir: Path, blob: bytes, *, digest: str, size: int, diffid: str,
                 compression: str = "gzip", piece: int = 7000, small: int = 0) -> Path:
    """`small`: 0, a worker process whatever the size; else `open_unpacker`'s bound."""
    async with open_unpacker(digest=digest, size=size, compression=compression,
                             diffid=diffid, workdir=workdir, small=small) as u:
        assert isinstance(u, Unpacker) == (size > small)
        for i in range(0, len(blob), piece):
            await u.feed(blob[i:i + piece])
        staged = await u.finish()
    assert staged.unpacked is not None and staged.diffid == diffid
    return staged.unpacked


async def test_a_layer_is_unpacked_by_its_worker_with_owner_mode_and_its_tar_kept(
        tmp_path: Path) -> None:
    plain = tar_bytes({"etc/motd": b"hello\n", "big": os.urandom(400_000)},
                      link=("etc/link", "/etc/motd"))
    blob = gzip.compress(plain)
    with trio.fail_after(60):
        tree = await unpack(tmp_path, blob, digest=sha(blob), size=len(blob),
                            diffid=sha(plain))
    st = (tree / "etc/motd").stat()
    assert (tree / "etc/motd").read_bytes() == b"hello\n"
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777, int(st.st_mtime)) == (12, 34, 0o640,
                                                                              1_000_000)
    assert os.readlink(tree / "etc/link") == "/etc/motd"
    assert (tree / "big").stat().st_size == 400_000
    assert (tmp_path / f"{sha(plain)[7:]}.tar").read_bytes() == plain


@pytest.mark.parametrize("small", [0, SMALL])
async def test_an_uncompressed_layer_in_one_piece(tmp_path: Path, small: int) -> None:
    plain = tar_bytes({"a": b"x" * 5000})
    with trio.fail_after(60):
        tree = await unpack(tmp_path, plain, digest=sha(plain), size=len(plain),
                            diffid=sha(plain), compression="none", piece=len(plain),
                            small=small)
    assert (tree / "a").read_bytes() == b"x" * 5000


@pytest.mark.parametrize(
    ("case", "error", "message"),
    [
        ("tampered", DigestMismatch, "filesystem layer verification failed for digest"),
        ("diffid", DigestMismatch, "layer diff ID mismatch"),
        ("short", DigestMismatch, "short read"),
        ("escape", InvalidArgument, "refusing tar entry '../evil': path escapes the layer"),
        ("escape-tampered", DigestMismatch, "filesystem layer verification failed"),
        ("not-gzip", InvalidArgument, "invalid compressed layer"),
    ],
)
@pytest.mark.parametrize("small", [0, SMALL])  # in a worker process, in a thread
async def test_a_bad_layer_is_refused_by_its_own_error_and_leaves_nothing(
        tmp_path: Path, case: str, error: type[Exception], message: str, small: int) -> None:
    """A tampered blob is named as such even when its tar is bad too (the worker reads
    the rest of the blob before it answers), a bad tar by its entry; a small layer,
    unpacked by a thread of the daemon, the same."""
    files = {"f": os.urandom(200_000)}
    if case.startswith("escape"):
        files = {"../evil": b"x", **files}
    plain = tar_bytes(files)
    blob = gzip.compress(plain)
    digest, size, diffid = sha(blob), len(blob), sha(plain)
    if case in ("tampered", "escape-tampered"):
        at = len(blob) - 100
        blob = blob[:at] + bytes([blob[at] ^ 1]) + blob[at + 1:]
    elif case == "diffid":
        diffid = sha(b"another")
    elif case == "short":
        size += 10
    elif case == "not-gzip":
        blob = plain
        digest, size = sha(blob), len(blob)
    with trio.fail_after(60), pytest.raises(error) as got:
        await unpack(tmp_path, blob, digest=digest, size=size, diffid=diffid, small=small)
    assert isinstance(got.value, InvalidArgument) and message in got.value.message
    assert type(got.value) is error
    assert list(tmp_path.iterdir()) == []


async def test_a_cancelled_layer_kills_its_worker_and_the_scratch_can_go(
        tmp_path: Path) -> None:
    plain = tar_bytes({f"d/f{i}": os.urandom(20_000) for i in range(50)})
    blob = gzip.compress(plain)
    pids: list[int] = []
    with trio.fail_after(60):
        with trio.CancelScope() as scope:
            async with open_unpacker(digest=sha(blob), size=len(blob), compression="gzip",
                                     diffid=sha(plain), workdir=tmp_path, small=0) as u:
                assert isinstance(u, Unpacker)
                pids.append(u.proc.pid)
                await u.feed(blob[: len(blob) // 2])
                scope.cancel()
                await trio.sleep_forever()
        assert scope.cancelled_caught
    assert _dead(pids[0])  # killed and ended (the fork server reaps it)


def _dead(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat[stat.rindex(")") + 2] == "Z"


def _parent(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat[stat.rindex(")") + 2:].split()[1])


def test_workers_are_forks_of_one_server_that_ends_with_the_run(tmp_path: Path) -> None:
    """No interpreter starts per layer: each worker is forked by the run's one fork
    server, which the run's end stops (nothing is left running)."""
    parents: list[int] = []

    async def two_layers() -> None:
        for i in range(2):
            plain = tar_bytes({f"f{i}": os.urandom(50_000)})
            blob = gzip.compress(plain)
            workdir = tmp_path / str(i)
            workdir.mkdir()
            with trio.fail_after(60):
                async with open_unpacker(digest=sha(blob), size=len(blob),
                                         compression="gzip", diffid=sha(plain),
                                         workdir=workdir, small=0) as u:
                    assert isinstance(u, Unpacker)
                    parents.append(_parent(u.proc.pid))
                    await u.feed(blob)
                    await u.finish()

    trio.run(two_layers)
    assert len(parents) == 2 and parents[0] == parents[1] != os.getpid()
    assert _dead(parents[0])
