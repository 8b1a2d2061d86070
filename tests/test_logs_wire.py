"""`logread.Wire`: what `GET /containers/{id}/logs` sends for stored json-file lines.

The fast path (no Python object per record) must send exactly what decoding every
record and framing it one by one sends, for every blob: the common shape, escapes,
non-UTF-8, partial lines, Docker's records with attrs, both streams, a TTY, times.
"""

from __future__ import annotations

import itertools
import json
import random
import struct
from pathlib import Path

import pytest
import trio
import trio.testing

from supervisor.api.stdcopy import Demuxer
from supervisor.supervise.framing import decode_records, encode_records
from supervisor.supervise.logread import Wire
from supervisor.supervise.logs import ContainerLog

T = "2026-12-01T12:00:00.123456789Z"
OPTIONS = [
    dict(stdout=o, stderr=e, timestamps=ts, tty=tty)
    for o, e, ts, tty in itertools.product([True, False], repeat=4)
    if o or e
]


def records(stream: str, pieces: list[bytes], time: str = T) -> bytes:
    return "".join(encode_records(stream, pieces, time)).encode()


def one_by_one(blob: bytes, stdout: bool, stderr: bool, timestamps: bool, tty: bool) -> bytes:
    """Docker's framing, written out: a frame per record of a wanted stream."""
    out = b""
    for e in decode_records(blob):
        if not {"stdout": stdout, "stderr": stderr}[e.stream]:
            continue
        data = (e.time.encode() + b" " + e.data) if timestamps else e.data
        if data:
            sid = {"stdout": 1, "stderr": 2}[e.stream]
            out += data if tty else struct.pack(">BxxxI", sid, len(data)) + data
    return out


BLOBS = {
    "plain stdout": records("stdout", [b"line %d\n" % i for i in range(50)]),
    "plain stderr": records("stderr", [b"oops %d\n" % i for i in range(5)]),
    "empty lines": records("stdout", [b"\n", b"\n", b"x\n"]),
    "interleaved": records("stdout", [b"a\n"])
    + records("stderr", [b"b\n"])
    + records("stdout", [b"c\n"]),
    "escapes": records("stdout", [b'say "hi"\n', b"tab\there\n", b"back\\slash\n"]),
    "non-utf8": records("stdout", [b"\xff\xfe bytes\n", b"caf\xc3\xa9\n"]),
    "partial": records("stdout", [b"no newline", b"then one\n"]),
    "docker attrs": (
        json.dumps({"log": "x\n", "stream": "stdout", "attrs": {"a": "b"}, "time": T}) + "\n"
    ).encode()
    + records("stdout", [b"y\n"]),
    "docker short time": records("stdout", [b"a\n"], "2026-12-01T12:00:00.1Z"),
    "not a record": b"garbage\n" + records("stdout", [b"ok\n"]),
    "quote in time": records("stdout", [b"a\n"], 'x"y'),
    "empty": b"",
}


@pytest.mark.parametrize("name", sorted(BLOBS))
@pytest.mark.parametrize("opts", OPTIONS, ids=lambda o: "-".join(k for k, v in o.items() if v))
def test_wire_is_the_record_by_record_framing(name: str, opts: dict[str, bool]) -> None:
    blob = BLOBS[name]
    assert Wire(**opts)(blob) == one_by_one(blob, **opts)


def test_random_mixes_match() -> None:
    rng = random.Random(18)
    alphabet = [b"a", b"b", b" ", b'"', b"\\", b"\t", b"\xff", b"\xc3\xa9", b"\x00"]
    for _ in range(300):
        blob = b""
        for _ in range(rng.randint(1, 12)):
            stream = rng.choice(["stdout", "stderr"])
            text = b"".join(rng.choices(alphabet, k=rng.randint(0, 6)))
            if rng.random() < 0.8:
                text += b"\n"
            blob += records(stream, [text] if text else [b"\n"])
        for opts in OPTIONS:
            assert Wire(**opts)(blob) == one_by_one(blob, **opts), (blob, opts)


def test_frames_stay_one_per_record() -> None:
    """docker-py's `logs(stream=True)` yields a frame at a time: a line each, as Docker."""
    blob = records("stdout", [b"one\n", b"two\n"]) + records("stderr", [b"three\n"])
    frames = Demuxer().feed(Wire(stdout=True, stderr=True, timestamps=False, tty=False)(blob))
    assert frames == [(1, b"one\n"), (1, b"two\n"), (2, b"three\n")]


async def test_read_and_follow_raw_give_whole_lines(tmp_path: Path) -> None:
    log = ContainerLog(tmp_path / "c-json.log")
    log.open_writer()
    log.append("stdout", [b"%d\n" % i for i in range(1000)])
    wire = Wire(stdout=True, stderr=True, timestamps=False, tty=True)
    assert b"".join(map(wire, log.read_raw(tail=3))) == b"997\n998\n999\n"
    assert b"".join(map(wire, log.read_raw())) == b"".join(b"%d\n" % i for i in range(1000))
    got: list[bytes] = []
    async with trio.open_nursery() as nursery:

        async def follow() -> None:
            async for blob in log.follow_raw(tail=1):
                got.append(wire(blob))

        nursery.start_soon(follow)
        await trio.testing.wait_all_tasks_blocked()
        log.append("stdout", [b"late\n"])
        log.close_writer()
    assert b"".join(got) == b"999\nlate\n"


def _per_stream(frames: list[tuple[int, bytes]]) -> list[tuple[int, bytes]]:
    """Consecutive frames of one stream as one payload: what a demultiplexer writes."""
    out: list[tuple[int, bytes]] = []
    for sid, data in frames:
        if out and out[-1][0] == sid:
            out[-1] = (sid, out[-1][1] + data)
        else:
            out.append((sid, data))
    return out


def _run_blobs(rng: random.Random) -> list[bytes]:
    """Blobs as corral writes them: runs of records sharing a stream and a time (one
    append each), with what can break a run: a record of the other stream with the same
    time, escapes, partial lines, a line that is no record, long runs past the gallop's
    stride."""
    times = [T, "2026-12-01T12:00:01.000000001Z", "2026-12-01T12:00:01.5Z"]
    alphabet = [b"a", b"b", b" ", b'"', b"\\", b"\t", b"\xff", b"\x00"]
    blobs = []
    for _ in range(150):
        blob = b""
        for _ in range(rng.randint(1, 8)):
            kind = rng.random()
            stream = rng.choice(["stdout", "stderr"])
            time = rng.choice(times)
            if kind < 0.05:
                blob += b"garbage line\n"
                continue
            count = rng.choice([1, 2, 5, 40, 700])
            pieces = []
            for i in range(count):
                text = b"%d-%d" % (i, rng.randint(0, 9))
                if rng.random() < 0.03:
                    text += b"".join(rng.choices(alphabet, k=3))
                pieces.append(text + b"\n" if rng.random() < 0.98 else text)
            blob += records(stream, pieces, time)
        blobs.append(blob)
    return blobs


def test_merged_frames_and_runs_demultiplex_to_the_same_bytes() -> None:
    """corral's CLI asks for a frame per run of records (`X-Corral-Frames: merged`):
    demultiplexed, every option gives what Docker's frame per record gives; and a frame
    per record stays exact for runs broken in every way."""
    rng = random.Random(1818)
    for blob in [*BLOBS.values(), *_run_blobs(rng)]:
        for opts in OPTIONS:
            expected = one_by_one(blob, **opts)
            assert Wire(**opts)(blob) == expected, (blob, opts)
            merged = Wire(**opts, merged=True)(blob)
            if opts["tty"]:
                assert merged == expected
            else:
                got = _per_stream(Demuxer().feed(merged))
                assert got == _per_stream(Demuxer().feed(expected)), (blob, opts)


def test_a_record_of_the_other_stream_inside_a_run_keeps_its_stream() -> None:
    """Between two records of a run, one of the other stream with the same time and
    length: sliced by position it would read as the run's own."""
    blob = records("stdout", [b"%04d\n" % i for i in range(300)])
    blob += records("stderr", [b"EEEE\n"]) + records("stdout", [b"%04d\n" % i for i in range(300)])
    frames = Demuxer().feed(Wire(stdout=True, stderr=True, timestamps=False, tty=False)(blob))
    assert (2, b"EEEE\n") in frames and len(frames) == 601
    merged = Wire(stdout=True, stderr=True, timestamps=False, tty=False, merged=True)(blob)
    assert [sid for sid, _ in Demuxer().feed(merged)] == [1, 2, 1]
