"""Pure tests: line framing, json-file records, log options and rotation names."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from supervisor.errors import InvalidArgument
from supervisor.supervise.framing import (
    MAX_LINE,
    LineFramer,
    LogEntry,
    decode_record,
    decode_records,
    encode_block,
    encode_records,
    is_plain,
)
from supervisor.supervise.logconfig import (
    LogDefaults,
    LogOptions,
    parse_size,
    resolve_log_config,
    rotated_path,
    rotation_moves,
    validate_log_config,
)

TS = "2024-05-01T10:11:12.123456789Z"


def frame_all(data: bytes, chunk: int) -> list[bytes]:
    framer = LineFramer()
    pieces: list[bytes] = []
    for i in range(0, len(data), chunk):
        pieces += framer.feed(data[i : i + chunk])
    return pieces + framer.flush()


def random_stream(seed: int) -> bytes:
    """Random bytes (not all UTF-8) in lines of random length, one of 40 KiB, no final newline."""
    rnd = random.Random(seed)
    parts = []
    for _ in range(200):
        n = rnd.choice([0, 1, 5, 80, 300, MAX_LINE - 1, MAX_LINE, MAX_LINE + 1])
        parts.append(rnd.randbytes(n).replace(b"\n", b"x") + b"\n")
    parts.insert(100, b"L" * (40 * 1024) + b"\n")
    parts.append(rnd.randbytes(777).replace(b"\n", b"y"))  # no trailing newline
    return b"".join(parts)


def test_lines_keep_their_newline_and_the_tail_is_a_partial_piece() -> None:
    framer = LineFramer()
    assert framer.feed(b"a\nb") == [b"a\n"]
    assert framer.feed(b"c\n\nd") == [b"bc\n", b"\n"]
    assert framer.flush() == [b"d"]
    assert framer.flush() == []


def test_a_40k_line_is_cut_into_16k_pieces_only_the_last_with_newline() -> None:
    line = b"z" * (40 * 1024) + b"\n"
    for chunk in (len(line), 4096, 65536, 1):
        pieces = frame_all(line, chunk) if chunk != 1 else frame_all(line, 997)
        assert b"".join(pieces) == line
        assert all(len(p) <= MAX_LINE + 1 for p in pieces)
        assert [p.endswith(b"\n") for p in pieces] == [False] * (len(pieces) - 1) + [True]
        assert len(pieces) == 3


@pytest.mark.parametrize("chunk", [1, 7, 4096, 65536, 1 << 20])
def test_framing_then_records_give_back_the_exact_bytes(chunk: int) -> None:
    data = random_stream(chunk)
    pieces = frame_all(data, chunk)
    assert b"".join(pieces) == data
    assert all(len(p) <= MAX_LINE + 1 for p in pieces)
    stored = "".join(encode_records("stdout", pieces, TS)).encode("ascii")
    back = decode_records(stored)
    assert [e.stream for e in back] == ["stdout"] * len(pieces)
    assert b"".join(e.data for e in back) == data


def test_records_are_docker_json_file_lines() -> None:
    (rec,) = encode_records("stderr", [b'h\xc3\xa9llo "q"\t\n'], TS)
    assert rec.endswith("\n") and rec.count("\n") == 1
    assert list(json.loads(rec)) == ["log", "stream", "time"]
    assert json.loads(rec) == {"log": 'héllo "q"\t\n', "stream": "stderr", "time": TS}


def test_bytes_that_are_not_utf8_survive_and_read_as_replacement_elsewhere() -> None:
    (rec,) = encode_records("stdout", [b"a\xff\xfeb\n"], TS)
    assert rec.isascii()
    assert json.loads(rec)["log"].encode("utf-8", "replace") == b"a??b\n"
    assert decode_record(rec.rstrip("\n")) == LogEntry("stdout", b"a\xff\xfeb\n", TS)


def test_records_written_by_docker_are_read() -> None:
    docker = (
        '{"log":"caf\u00e9 \\u003cb\\u003e\\n","stream":"stdout","time":"2024-05-01T10:11:12.5Z"}\n'
        '{"log":"x\\n","stream":"stderr","attrs":{"a":"b"},"time":"2024-05-01T10:11:13Z"}\n'
        "not json\n"
        '{"log":"y","stream":"stdout","time":"2024-05-01T10:11:14Z"}\n'
    ).encode()
    assert decode_records(docker) == [
        LogEntry("stdout", "café <b>\n".encode(), "2024-05-01T10:11:12.5Z"),
        LogEntry("stderr", b"x\n", "2024-05-01T10:11:13Z"),
        LogEntry("stdout", b"y", "2024-05-01T10:11:14Z"),
    ]


@pytest.mark.parametrize(
    ("text", "size"),
    [("10m", 10 << 20), ("1k", 1024), ("512", 512), ("1.5g", 3 << 29), ("10MiB", 10 << 20),
     ("2 kb", 2048), ("3K", 3072)],
)  # fmt: skip
def test_sizes_parse_like_docker(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "m", "10x", "-1k", "1kk", "ten"])
def test_bad_sizes_are_named(text: str) -> None:
    with pytest.raises(InvalidArgument, match="invalid size"):
        parse_size(text)


def test_options_from_log_config() -> None:
    assert LogOptions.from_log_config(None) == LogOptions(-1, 1)
    assert LogOptions.from_log_config({"Type": "", "Config": {}}) == LogOptions(-1, 1)
    cfg = {"Type": "json-file", "Config": {"max-size": "10m", "max-file": "3"}}
    assert LogOptions.from_log_config(cfg) == LogOptions(10 << 20, 3)
    assert LogOptions.from_log_config({"Config": {"max-size": "1k"}}) == LogOptions(1024, 1)


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        ({"Type": "syslog"}, "log driver 'syslog' is not supported by corral"),
        ({"Type": "bogus"}, "no log driver named 'bogus' is registered"),
        ({"Config": {"max-sise": "1k"}}, "unknown log opt 'max-sise' for json-file"),
        ({"Config": {"compress": "true"}}, "log opt 'compress' is not supported"),
        ({"Config": {"max-size": "1q"}}, "invalid log opt max-size: invalid size: '1q'"),
        ({"Config": {"max-size": "0"}}, "max-size must be a positive number"),
        ({"Config": {"max-file": "0"}}, "max-file cannot be less than 1"),
        ({"Config": {"max-file": "three"}}, "invalid log opt max-file: 'three'"),
    ],
)
def test_unusable_log_configs_are_one_clear_error(cfg: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        validate_log_config(cfg)


def test_daemon_defaults_fill_in_per_key_for_the_same_driver() -> None:
    defaults = LogDefaults.from_flags("json-file", ["max-size=10m", "max-file=5"])
    assert resolve_log_config(None, defaults) == {
        "Type": "json-file",
        "Config": {"max-size": "10m", "max-file": "5"},
    }
    own = resolve_log_config({"Type": "", "Config": {"max-size": "1k"}}, defaults)
    assert own == {"Type": "json-file", "Config": {"max-size": "1k", "max-file": "5"}}
    assert resolve_log_config(None) == {"Type": "json-file", "Config": {}}
    with pytest.raises(InvalidArgument, match="expected key=value"):
        LogDefaults.from_flags("json-file", ["max-size"])
    with pytest.raises(InvalidArgument, match="unknown log opt 'size'"):
        LogDefaults.from_flags("json-file", ["size=1k"])


def test_rotation_renames_like_docker() -> None:
    p = Path("/c/abc-json.log")
    assert rotated_path(p, 0) == p
    assert rotated_path(p, 2) == Path("/c/abc-json.log.2")
    assert rotation_moves(p, 1, 0) == []
    assert rotation_moves(p, 2, 0) == [(p, Path("/c/abc-json.log.1"))]
    assert rotation_moves(p, 2, 1) == [(p, Path("/c/abc-json.log.1"))]
    three = [
        (Path("/c/abc-json.log.2"), Path("/c/abc-json.log.3")),
        (Path("/c/abc-json.log.1"), Path("/c/abc-json.log.2")),
        (p, Path("/c/abc-json.log.1")),
    ]
    assert rotation_moves(p, 4, 2) == three
    assert rotation_moves(p, 4, 3) == three  # .3, the oldest, is replaced
    assert rotation_moves(p, 1000, 2) == three  # only files that exist move


@pytest.mark.parametrize("chunk", [1, 7, 100, 4096, 65536])
def test_feed_block_gives_the_pieces_feed_gives(chunk: int) -> None:
    """The pump's `feed_block`: the same pieces as `feed` (a block of whole lines where
    it can, pieces where a line is long), and records alike either way."""
    rng = random.Random(chunk)
    kinds = [b"short\n", b"\n", b'q"uote\n', b"x" * 20000 + b"\n", b"y" * 16385]
    data = b"".join(rng.choices(kinds, weights=[400, 50, 20, 1, 1], k=3000))
    data += b"".join(rng.choices(kinds[:3], k=30000))  # where 64 KiB hold no long line
    fast, slow = LineFramer(), LineFramer()
    got: list[bytes] = []
    want: list[bytes] = []
    blocks = 0
    for i in range(0, len(data), chunk):
        out = fast.feed_block(data[i : i + chunk])
        if isinstance(out, bytes):
            blocks += 1
            recs = encode_block("stdout", out, "T")
            out = [line + b"\n" for line in out[:-1].split(b"\n")]
            assert (recs is None) == any(b'"' in p for p in out)
            if recs is not None:
                assert recs.decode() == "".join(encode_records("stdout", out, "T"))
        got += out
        want += slow.feed(data[i : i + chunk])
        assert fast.held == slow.held
    assert got + fast.flush() == want + slow.flush()
    assert blocks or chunk == 1


@pytest.mark.parametrize("size", [8, 511, 512, 5000])
def test_a_block_is_plain_exactly_when_its_records_need_no_escape(size: int) -> None:
    """`is_plain` (strspn over the block's own buffer from 512 bytes on) agrees with
    the JSON encoder for every byte value, wherever it is, a NUL too: a block it calls
    plain is stored by `encode_block` as `encode_records` stores it line by line."""
    line = b"0123456 abcdef\n"
    base = (line * (size // len(line) + 1))[:size - 1] + b"\n"
    assert is_plain(base)
    for value in range(256):
        for pos in (0, size // 2, size - 2):
            block = base[:pos] + bytes([value]) + base[pos + 1 :]
            pieces = [p + b"\n" for p in block[:-1].split(b"\n")]
            records = "".join(encode_records("stdout", pieces, "T"))
            escaped = len(records) != sum(len(p) + len(',"stream":"stdout","time":"T"}\n')
                                          + len('{"log":""') + 1 for p in pieces)
            assert is_plain(block) == (not escaped), (value, pos)
            if not escaped:
                assert encode_block("stdout", block, "T") == records.encode()
