"""Every operation that writes the state root, on a full disk (issue 17).

The daemon's root sits on a small tmpfs the test mounts (test_diskfull's `small_disk`).
Each test leaves a few MiB free, runs an operation that needs more (a pull, a build,
a commit, a load, an import, a volume's copy-up, a container logging), and asserts what
a user sees: one line naming "no space left on device", a docker-like exit code, the
daemon still answering, nothing half made (no image, blob, layer, scratch file or
row), and the same operation working once space is freed.  After each test the store
is checked whole: SQLite's integrity_check, every blob matching its digest, every
image's blobs and layers present.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import re
import select
import sqlite3
import subprocess
import tarfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from conftest import IMAGE, Daemon
from registry import Layer, Registry, make_image
from test_diskfull import (  # noqa: F401 - small_disk: the fixture
    SmallDisk,
    fill,
    mounted_small_disk,
    small_disk,
)

NOSPACE = re.compile(r"(?i)no space left on device")
MiB = 1 << 20


def leave_free(disk: SmallDisk, nbytes: int) -> None:
    """Fill the tmpfs, then give back `nbytes` (the ballast's tail)."""
    disk.ballast.unlink(missing_ok=True)
    fill(disk.ballast)
    size = disk.ballast.stat().st_size
    os.truncate(disk.ballast, max(0, size - nbytes))


def free_all(disk: SmallDisk) -> None:
    disk.ballast.unlink(missing_ok=True)


def one_line_error(r: Any) -> str:
    """The CLI failed the way docker does: exit 1, one line on stderr naming ENOSPC."""
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert NOSPACE.search(lines[0]), r.stderr
    assert "Traceback" not in r.stderr and "Errno" not in lines[0], r.stderr
    assert not lines[0].endswith(":"), r.stderr
    return str(lines[0])


def check_store(d: Daemon) -> None:
    """Nothing corrupt, nothing half made: the database is whole, every blob is what its
    name says, no ingest scratch is left, every image's blobs and layers exist."""
    root = d.root
    db = sqlite3.connect(f"file:{root / 'corral.db'}?mode=ro", uri=True)
    try:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []
        layers = {r[0] for r in db.execute("SELECT diffid FROM layer_layers")}
        images = db.execute("SELECT id, manifest_digest FROM image_images").fetchall()
        containers = {r[0] for r in db.execute("SELECT id FROM containers")}
        endpoints = db.execute("SELECT container_id, ip FROM network_endpoints").fetchall()
    finally:
        db.close()
    running = {c.id for c in d.client().containers.list()}
    for cid, ip in endpoints:
        assert cid in containers, f"an endpoint row of container {cid[:12]}, which is gone"
        assert not ip or cid in running, f"container {cid[:12]} is not running but holds {ip}"
    assert sorted(os.listdir(root / "containers")) == sorted(containers), (
        "container directories and rows differ"
    )
    blobs = root / "images/blobs/sha256"
    for p in blobs.iterdir():
        h = hashlib.sha256()
        with p.open("rb") as f:
            for chunk in iter(lambda f=f: f.read(MiB), b""):
                h.update(chunk)
        assert h.hexdigest() == p.name, f"blob {p.name} does not match its digest"
    scratch = root / "tmp/images"
    left = sorted(p.name for p in scratch.iterdir()) if scratch.exists() else []
    assert left == [], f"ingest scratch left behind: {left}"
    on_disk = {p.name for p in (root / "layers").iterdir()} if (root / "layers").exists() else set()
    for diffid in layers:
        assert diffid.removeprefix("sha256:") in on_disk, f"layer row {diffid} has no directory"
    for image_id, manifest in images:
        for digest in (image_id, manifest):
            assert (blobs / digest.removeprefix("sha256:")).is_file(), (
                f"image {image_id}: blob {digest} missing"
            )
        doc = json.loads((blobs / manifest.removeprefix("sha256:")).read_bytes())
        for layer in doc["layers"]:
            assert (blobs / layer["digest"].removeprefix("sha256:")).is_file(), (
                f"image {image_id}: layer blob {layer['digest']} missing"
            )


@pytest.fixture
def disk(small_disk: SmallDisk, rootfs_tar: Path  # noqa: F811 - the imported fixture
         ) -> Iterator[tuple[SmallDisk, Daemon, Any]]:
    """A daemon on the small disk with busybox imported; the store is checked at the end
    (space freed first, so the check itself can run)."""
    d = small_disk.start()
    client = d.client()
    client.api.import_image_from_data(rootfs_tar.read_bytes(), repository="busybox",
                                      tag="latest")
    yield small_disk, d, client
    client.close()
    free_all(small_disk)
    last = small_disk.procs[-1]  # a test may have killed and started it again
    assert last.poll() is None, "the daemon died"
    d = Daemon(root=d.root, sock=d.sock, proc=last, log=d.log)
    client = d.client()
    assert client.ping()
    check_store(d)
    client.close()


def random_layer(size: int, name: str = "big") -> bytes:
    """A layer no compression shrinks: `size` random bytes in one file."""
    return Layer({"data/": b"", f"data/{name}": os.urandom(size)}).tar()


def image_ids(client: Any) -> set[str]:
    return {i.id for i in client.images.list(all=True)}


def test_pull_on_a_full_disk(disk: tuple[SmallDisk, Daemon, Any], registry: Registry,
                             rootfs_tar: Path, tmp_path: Path) -> None:
    small, d, client = disk
    repo = f"nospace-{uuid.uuid4().hex[:8]}"
    registry.push(make_image(tmp_path / "img", [rootfs_tar.read_bytes(), random_layer(12 * MiB)]),
                  repo, fmt="v2s2")
    ref = f"{registry.host}/{repo}:latest"
    before = image_ids(client)
    leave_free(small, 4 * MiB)
    one_line_error(d.cli("pull", "-q", ref, timeout=120))
    assert client.ping()
    assert image_ids(client) == before, "a failed pull left an image"
    check_store(d)
    # while still full, a second try fails the same way (no half blob taken for whole)
    one_line_error(d.cli("pull", "-q", ref, timeout=120))
    free_all(small)
    r = d.cli("pull", "-q", ref, timeout=120)
    assert r.returncode == 0, r.stderr
    out = client.containers.run(ref, ["sh", "-c", "wc -c < /data/big"], remove=True)
    assert out.strip() == str(12 * MiB).encode()


def test_build_on_a_full_disk(disk: tuple[SmallDisk, Daemon, Any], tmp_path: Path) -> None:
    small, d, client = disk
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(
        f"FROM {IMAGE}\nRUN echo step1 > /one\nCOPY big /big\nRUN wc -c /big\n"
    )
    (ctx / "big").write_bytes(os.urandom(10 * MiB))
    before = image_ids(client)
    leave_free(small, 6 * MiB)
    r = d.cli("build", "-q", "-t", "nospace:build", str(ctx), timeout=180)
    one_line_error(r)
    assert client.ping()
    assert image_ids(client) == before, "a failed build left an image"
    assert client.containers.list(all=True) == [], "a failed build left a container"
    check_store(d)
    free_all(small)
    r = d.cli("build", "-q", "-t", "nospace:build", str(ctx), timeout=180)
    assert r.returncode == 0, r.stderr
    out = client.containers.run("nospace:build", ["sh", "-c", "wc -c < /big"], remove=True)
    assert out.strip() == str(10 * MiB).encode()


def test_build_layer_commit_on_a_full_disk(disk: tuple[SmallDisk, Daemon, Any],
                                           tmp_path: Path) -> None:
    """The RUN step itself fits; the layer made of what it wrote does not."""
    small, d, client = disk
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(
        f"FROM {IMAGE}\nRUN head -c 8388608 /dev/urandom > /big\n"
    )
    before = image_ids(client)
    leave_free(small, 12 * MiB)
    r = d.cli("build", "-q", "-t", "nospace:run", str(ctx), timeout=180)
    one_line_error(r)
    assert client.ping()
    assert image_ids(client) == before
    assert client.containers.list(all=True) == []
    check_store(d)
    free_all(small)
    r = d.cli("build", "-q", "-t", "nospace:run", str(ctx), timeout=180)
    assert r.returncode == 0, r.stderr


def test_commit_on_a_full_disk(disk: tuple[SmallDisk, Daemon, Any]) -> None:
    small, d, client = disk
    c = client.containers.run(IMAGE, ["sh", "-c", "head -c 8388608 /dev/urandom > /big"],
                              name="tocommit", detach=True)
    assert c.wait(timeout=60)["StatusCode"] == 0
    before = image_ids(client)
    leave_free(small, 4 * MiB)
    one_line_error(d.cli("commit", "tocommit", "nospace:commit"))
    assert client.ping()
    assert image_ids(client) == before, "a failed commit left an image"
    check_store(d)
    free_all(small)
    r = d.cli("commit", "tocommit", "nospace:commit")
    assert r.returncode == 0, r.stderr
    out = client.containers.run("nospace:commit", ["sh", "-c", "wc -c < /big"], remove=True)
    assert out.strip() == b"8388608"
    c.remove()


def _image_tar(tmp_path: Path, rootfs_tar: Path) -> Path:
    """A `docker save` archive of busybox plus 10 MiB of random data, written by hand."""
    layers = [rootfs_tar.read_bytes(), random_layer(10 * MiB)]
    diff_ids = ["sha256:" + hashlib.sha256(t).hexdigest() for t in layers]
    config = json.dumps({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }).encode()
    cfg_name = hashlib.sha256(config).hexdigest() + ".json"
    out = tmp_path / "image.tar"
    with tarfile.open(out, "w") as t:
        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))

        names = []
        for i, layer in enumerate(layers):
            names.append(f"l{i}/layer.tar")
            add(names[-1], layer)
        add(cfg_name, config)
        add("manifest.json", json.dumps(
            [{"Config": cfg_name, "RepoTags": ["nospace:load"], "Layers": names}]
        ).encode())
    return out


def test_load_on_a_full_disk(disk: tuple[SmallDisk, Daemon, Any], rootfs_tar: Path,
                             tmp_path: Path) -> None:
    small, d, client = disk
    archive = _image_tar(tmp_path, rootfs_tar)
    before = image_ids(client)
    leave_free(small, 6 * MiB)
    one_line_error(d.cli("load", "-q", "-i", str(archive), timeout=120))
    assert client.ping()
    assert image_ids(client) == before, "a failed load left an image"
    check_store(d)
    free_all(small)
    r = d.cli("load", "-q", "-i", str(archive), timeout=120)
    assert r.returncode == 0, r.stderr
    out = client.containers.run("nospace:load", ["sh", "-c", "wc -c < /data/big"], remove=True)
    assert out.strip() == str(10 * MiB).encode()


def test_import_on_a_full_disk(disk: tuple[SmallDisk, Daemon, Any], tmp_path: Path) -> None:
    small, d, client = disk
    archive = tmp_path / "rootfs.tar"
    archive.write_bytes(random_layer(10 * MiB))
    before = image_ids(client)
    leave_free(small, 6 * MiB)
    one_line_error(d.cli("import", str(archive), "nospace:import", timeout=120))
    assert client.ping()
    assert image_ids(client) == before, "a failed import left an image"
    check_store(d)
    free_all(small)
    r = d.cli("import", str(archive), "nospace:import", timeout=120)
    assert r.returncode == 0, r.stderr


def test_volume_copy_up_on_a_full_disk(disk: tuple[SmallDisk, Daemon, Any]) -> None:
    """A new volume takes the image directory's files; on a full disk the start fails,
    and once there is room the volume gets all of them (not what the first try left)."""
    small, d, client = disk
    c = client.containers.run(IMAGE, ["sh", "-c", "mkdir /vdata && "
                                      "head -c 6291456 /dev/urandom > /vdata/a && "
                                      "head -c 6291456 /dev/urandom > /vdata/b && "
                                      "md5sum /vdata/a /vdata/b > /sums"],
                              name="vsrc", detach=True)
    assert c.wait(timeout=60)["StatusCode"] == 0
    c.commit("nospace", "vol")
    c.remove()
    leave_free(small, 8 * MiB)
    r = d.cli("run", "--name", "vuser", "-v", "nsvol:/vdata", "nospace:vol",
              "md5sum", "-c", "/sums")
    assert r.returncode != 0
    assert NOSPACE.search(r.stderr), r.stderr
    assert client.ping()
    check_store(d)
    free_all(small)
    d.cli("rm", "-f", "vuser")
    r = d.cli("run", "--rm", "-v", "nsvol:/vdata", "nospace:vol", "md5sum", "-c", "/sums")
    assert r.returncode == 0, (r.stdout, r.stderr)
    client.volumes.get("nsvol").remove()


class Counts:
    """The writer's progress, read from a FIFO it writes a count to every 1000 lines:
    the test holds a write end too, so the read end never sees EOF between writes."""

    def __init__(self, fifo: Path) -> None:
        self.r = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        self.w = os.open(fifo, os.O_WRONLY)
        self.last = 0
        self._buf = b""

    def wait(self, n: int, why: str) -> None:
        deadline = time.monotonic() + 120
        while self.last < n:
            left = deadline - time.monotonic()
            assert left > 0, why
            if select.select([self.r], [], [], left)[0]:
                self._buf += os.read(self.r, 65536)
                *done, self._buf = self._buf.split(b"\n")
                if done:
                    self.last = int(done[-1])

    def close(self) -> None:
        os.close(self.r)
        os.close(self.w)


def test_logging_to_a_full_disk(disk: tuple[SmallDisk, Daemon, Any], tmp_path: Path) -> None:
    """A container logs until the disk is full and on: it is never blocked or killed for
    it, the daemon serves, and once there is room its new lines are logged again, in
    order (what came while the disk was full is dropped, as json-file drops it)."""
    small, d, client = disk
    run = tmp_path / "run"  # off the small disk: the writer's count, and its stop file
    run.mkdir()
    os.mkfifo(run / "count")
    c = client.containers.run(
        IMAGE,
        ["sh", "-c", "i=0; while [ ! -e /run/stop ]; do i=$((i+1)); "
                     "echo line-$i-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx; "
                     "[ $((i % 1000)) = 0 ] && echo $i > /run/count; done; echo done-marker"],
        name="logger", detach=True, volumes=[f"{run}:/run"],
        log_config={"Type": "json-file", "Config": {"max-size": "512k", "max-file": "3"}},
    )

    counts = Counts(run / "count")
    try:
        _log_through_a_full_disk(small, d, client, c, counts, run)
    finally:
        counts.close()
    c.remove()


def _log_through_a_full_disk(small: SmallDisk, d: Daemon, client: Any, c: Any,
                             counts: Counts, run: Path) -> None:
    wait_count = counts.wait
    fill(small.ballast)
    # the writer goes on by more than any pipe holds: the pump read it all, and so met
    # the full disk, and did not stop reading
    wait_count(counts.last + 60_000, "the writer stopped: blocked by the full disk?")
    assert client.ping()
    assert d.proc.poll() is None
    c.reload()
    assert c.status == "running", "the container was stopped by the full disk"
    free_all(small)
    mark = counts.last
    wait_count(mark + 5_000, "the writer stopped after the disk had room")
    (run / "stop").touch()
    assert c.wait(timeout=60)["StatusCode"] == 0
    logged = client.api.logs(c.id).split(b"\n")
    assert logged[-2] == b"done-marker", "the log pump did not come back once there was room"
    nums = [int(x.split(b"-")[1]) for x in logged[:-2]]
    assert nums == sorted(set(nums)), "lines repeated or out of order"
    assert nums[-1] > mark, "no line written after the disk had room was logged"
    for f in (d.root / "containers" / c.id).glob("*-json.log*"):
        for n, line in enumerate(f.read_bytes().splitlines(), 1):
            try:
                json.loads(line)
            except ValueError:
                pytest.fail(f"{f.name}:{n}: a torn record: {line[:80]!r}...{line[-80:]!r}")


def leave_exactly(disk: SmallDisk, nbytes: int) -> None:
    """`leave_free`, cheaply again and again: top the ballast up to full, then cut it."""
    fill(disk.ballast)
    size = disk.ballast.stat().st_size
    os.truncate(disk.ballast, max(0, size - nbytes))


def _made(d: Daemon, client: Any) -> dict[str, Any]:
    """What a failed operation must not change: records and their directories."""
    return {
        "containers": sorted(c.id for c in client.containers.list(all=True)),
        "volumes": sorted(v.name for v in client.volumes.list()),
        "container dirs": sorted(os.listdir(d.root / "containers")),
        "volume dirs": sorted(os.listdir(d.root / "volumes")),
    }


STEPS = range(0, 384 * 1024, 8 * 1024)  # from no room to more than a create needs


def test_create_at_every_boundary_of_a_full_disk(disk: tuple[SmallDisk, Daemon, Any]) -> None:
    """The disk runs out at each step of a create in turn (its volumes, directory, files,
    rows): each failure names the full disk and leaves nothing, its undo included."""
    small, d, client = disk
    before = _made(d, client)
    failed = 0
    for free in STEPS:
        leave_exactly(small, free)
        try:
            c = client.api.create_container(
                IMAGE, ["true"], name=f"b{free}",
                volumes=["/anon"],
                host_config=client.api.create_host_config(binds=[f"named{free}:/named"]),
            )
        except docker.errors.APIError as exc:
            failed += 1
            assert NOSPACE.search(str(exc.explanation)), exc.explanation
            assert "Errno" not in str(exc.explanation), exc.explanation
            assert _made(d, client) == before, f"a create failed with {free} bytes free"
            continue
        free_all(small)
        client.api.remove_container(c["Id"], v=True)
        client.volumes.get(f"named{free}").remove()
        break
    else:
        pytest.fail("no create succeeded: the steps are too small")
    assert failed > 0, "the disk was never full enough to fail a create"
    assert client.ping()


def test_start_at_every_boundary_of_a_full_disk(disk: tuple[SmallDisk, Daemon, Any]) -> None:
    """The disk runs out at each step of a start in turn: each failure names it, the
    container stays created with nothing mounted or running, and starts once there is
    room."""
    small, d, client = disk
    c = client.containers.create(IMAGE, ["sh", "-c", "echo started; sleep 1d"], name="st",
                                 ports={"80/tcp": None})
    failed = 0
    for free in STEPS:
        leave_exactly(small, free)
        try:
            c.start()
        except docker.errors.APIError as exc:
            failed += 1
            assert NOSPACE.search(str(exc.explanation)), exc.explanation
            assert "Errno" not in str(exc.explanation), exc.explanation
            c.reload()
            assert c.status in ("created", "exited"), c.status
            assert str(d.root) not in Path("/proc/self/mountinfo").read_text(), (
                f"a start failed with {free} bytes free and left a mount"
            )
            assert os.listdir(d.root / "runc") == [], "a failed start left runc state"
            continue
        break
    else:
        pytest.fail("no start succeeded: the steps are too small")
    assert failed > 0, "the disk was never full enough to fail a start"
    free_all(small)
    c.reload()
    assert c.status == "running"
    c.remove(force=True)
    c = client.containers.run(IMAGE, ["echo", "again"], name="again", detach=True)
    assert c.wait(timeout=60)["StatusCode"] == 0
    assert c.logs() == b"again\n"
    c.remove()
    bridge = client.networks.get("bridge").attrs["Options"]["com.docker.network.bridge.name"]
    assert not Path("/sys/class/net", bridge).exists(), (
        "the default bridge outlived its last container"
    )


def fill_inodes(d: Path) -> None:
    """Empty files in `d` until the file system has no inode left."""
    d.mkdir()
    n = 0
    while True:
        try:
            os.close(os.open(d / str(n), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
            return
        n += 1


def test_log_rotation_when_no_file_can_be_made(tmp_path: Path, rootfs_tar: Path) -> None:
    """A rotation whose new file the disk refuses (no inode left): the log is made again
    at a later append once there is room, and the pump goes on; before, every line
    after that rotation was dropped for the rest of the run."""
    with mounted_small_disk(tmp_path, "nr_inodes=16384") as small:
        d = small.start()
        client = d.client()
        client.api.import_image_from_data(rootfs_tar.read_bytes(), repository="busybox",
                                          tag="latest")
        run = tmp_path / "run"
        run.mkdir()
        os.mkfifo(run / "count")
        c = client.containers.run(
            IMAGE,
            ["sh", "-c", "i=0; while [ ! -e /run/stop ]; do i=$((i+1)); "
                         "echo line-$i-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx; "
                         "[ $((i % 1000)) = 0 ] && echo $i > /run/count; done; "
                         "echo done-marker"],
            name="rotator", detach=True, volumes=[f"{run}:/run"],
            log_config={"Type": "json-file", "Config": {"max-size": "16k", "max-file": "1000"}},
        )
        counts = Counts(run / "count")
        try:
            fill_inodes(small.fs / "inodes")
            counts.wait(counts.last + 30_000, "the writer stopped while no inode was left")
            assert client.ping()
            subprocess.run(["rm", "-rf", str(small.fs / "inodes")], check=True)
            mark = counts.last
            counts.wait(mark + 5_000, "the writer stopped after the disk had room")
            (run / "stop").touch()
            assert c.wait(timeout=60)["StatusCode"] == 0
        finally:
            counts.close()
        logged = client.api.logs(c.id).split(b"\n")
        assert logged[-2] == b"done-marker", "the log never came back after a failed rotation"
        nums = [int(x.split(b"-")[1]) for x in logged[:-2]]
        assert nums == sorted(set(nums))
        assert nums[-1] > mark
        c.remove()
        check_store(d)
        client.close()


def test_live_restore_on_a_full_disk(disk: tuple[SmallDisk, Daemon, Any], tmp_path: Path
                                     ) -> None:
    """The daemon is killed -9 while a rotating log fills the disk, and starts again on
    the full disk: the container is adopted with its pid, the undo of the last append
    (the spool's `cut_back`, a rotation too) runs without room, the pump goes on, and
    once there is room the log is whole: in order, no line twice, no torn record."""
    small, d, client = disk
    run = tmp_path / "run"
    run.mkdir()
    os.mkfifo(run / "count")
    c = client.containers.run(
        IMAGE,
        ["sh", "-c", "i=0; while [ ! -e /run/stop ]; do i=$((i+1)); "
                     "echo line-$i-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx; "
                     "[ $((i % 1000)) = 0 ] && echo $i > /run/count; done; echo done-marker"],
        name="survivor", detach=True, volumes=[f"{run}:/run"],
        log_config={"Type": "json-file", "Config": {"max-size": "256k", "max-file": "3"}},
    )
    pid = client.api.inspect_container(c.id)["State"]["Pid"]
    counts = Counts(run / "count")
    try:
        counts.wait(5_000, "the writer did not start")
        fill(small.ballast)
        counts.wait(counts.last + 20_000, "the writer stopped on the full disk")
        d.proc.kill()
        d.proc.wait(timeout=60)
        d = small.start()  # on the full disk
        client = d.client()
        assert client.ping()
        st = client.api.inspect_container(c.id)["State"]
        assert (st["Status"], st["Pid"]) == ("running", pid), "not adopted with its pid"
        counts.wait(counts.last + 20_000, "the writer stopped after the restart")
        free_all(small)
        mark = counts.last
        counts.wait(mark + 5_000, "the writer stopped once there was room")
        (run / "stop").touch()
        assert client.api.wait(c.id, timeout=60)["StatusCode"] == 0
    finally:
        counts.close()
    logged = client.api.logs(c.id).split(b"\n")
    assert logged[-2] == b"done-marker"
    nums = [int(x.split(b"-")[1]) for x in logged[:-2]]
    assert nums == sorted(set(nums)), "lines repeated or out of order"
    assert nums[-1] > mark
    for f in (d.root / "containers" / c.id).glob("*-json.log*"):
        for n, line in enumerate(f.read_bytes().splitlines(), 1):
            try:
                json.loads(line)
            except ValueError:
                pytest.fail(f"{f.name}:{n}: a torn record: {line[:80]!r}")
    client.api.remove_container(c.id)
    check_store(d)


def test_exec_and_cp_on_a_full_disk(disk: tuple[SmallDisk, Daemon, Any], tmp_path: Path
                                    ) -> None:
    """An exec and a `cp` into a container need room under the root: each that fails
    names the full disk, the container runs on, and both work once there is room."""
    small, d, client = disk
    c = client.containers.run(IMAGE, ["sleep", "1d"], name="busy", detach=True)
    src = tmp_path / "big"
    src.write_bytes(os.urandom(8 * MiB))
    leave_free(small, 0)
    r = d.cli("exec", "busy", "true")  # runc's pid file may still find a page, or not
    assert r.returncode == 0 or NOSPACE.search(r.stderr), r.stderr
    leave_free(small, 2 * MiB)
    one_line_error(d.cli("cp", str(src), "busy:/big"))
    c.reload()
    assert c.status == "running"
    free_all(small)
    assert d.cli("exec", "busy", "true").returncode == 0
    r = d.cli("cp", str(src), "busy:/big")
    assert r.returncode == 0, r.stderr
    out = client.api.exec_start(client.api.exec_create(c.id, ["sh", "-c", "wc -c < /big"]))
    assert out.strip() == str(8 * MiB).encode()
    c.remove(force=True)


def test_a_volume_filled_by_its_container(disk: tuple[SmallDisk, Daemon, Any]) -> None:
    """A container fills the disk through a volume: its own write fails (its business),
    the daemon serves, and removing the volume gives the space back."""
    small, d, client = disk
    free_before = os.statvfs(small.fs).f_bavail
    c = client.containers.run(IMAGE, ["sh", "-c", "dd if=/dev/zero of=/v/fill bs=1M"],
                              name="volfill", detach=True, volumes=["filler:/v"])
    assert c.wait(timeout=120)["StatusCode"] != 0
    # (what is free now is the reserve the exit's record gave back: metadata.py)
    assert os.statvfs(small.fs).f_bavail < free_before // 4
    assert client.ping()
    c.remove()
    client.volumes.get("filler").remove()
    assert os.statvfs(small.fs).f_bavail >= free_before - 256, "the volume's space came back"
    ran = client.containers.run(IMAGE, ["echo", "fine"], remove=True)
    assert ran == b"fine\n"
