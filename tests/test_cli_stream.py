"""Docker's multiplexed-stream demuxer and progress-message display."""

from __future__ import annotations

import io

import pytest

from supervisor.cli.stream import Demuxer, StreamError, copy_chunks, show_json_messages


def frame(stream: int, data: bytes) -> bytes:
    return bytes([stream, 0, 0, 0]) + len(data).to_bytes(4, "big") + data


def test_frames_split_at_every_byte_boundary() -> None:
    wire = frame(1, b"hello\n") + frame(2, b"oops\n") + frame(1, b"") + frame(1, b"x" * 300)
    for cut in range(1, len(wire)):
        d = Demuxer()
        got = d.feed(wire[:cut]) + d.feed(wire[cut:])
        assert [(s, p) for s, p in got if p] == [(1, b"hello\n"), (2, b"oops\n"), (1, b"x" * 300)]
        assert d.leftover() == b""


def test_one_byte_at_a_time() -> None:
    wire = frame(2, b"err") + frame(1, b"out")
    d = Demuxer()
    got = [f for i in range(len(wire)) for f in d.feed(wire[i : i + 1])]
    assert got == [(2, b"err"), (1, b"out")]


def test_unframed_stream_passes_through_raw() -> None:
    d = Demuxer()
    assert d.feed(b"plain text\n") == [(1, b"plain text\n")]
    assert d.feed(b"\x01\x00more") == [(1, b"\x01\x00more")]


def test_copy_chunks_routes_streams_and_reports_errors() -> None:
    out, err = io.BytesIO(), io.BytesIO()
    copy_chunks([frame(1, b"a"), frame(2, b"b"), frame(0, b"c")], out, err)
    assert (out.getvalue(), err.getvalue()) == (b"ac", b"b")
    with pytest.raises(StreamError, match="boom"):
        copy_chunks([frame(1, b"a"), frame(3, b"boom")], io.BytesIO(), io.BytesIO())


def test_json_messages() -> None:
    out = io.BytesIO()
    show_json_messages([b'{"status":"sha256:abc"}', b"", b'{"id":"l1","status":"Done"}',
                        b'{"stream":"Step 1\\n"}'], out)
    assert out.getvalue() == b"sha256:abc\nl1: Done\nStep 1\n"
    with pytest.raises(StreamError, match="bad tar"):
        show_json_messages([b'{"errorDetail":{"message":"bad tar"},"error":"bad tar"}'], out)


def test_logs_into_a_pipe_grow_it_to_a_mib() -> None:
    """`corral logs | ...` of a big log: a pipe of 1 MiB, a wake-up per MiB for both
    ends (64 KiB made ~1,000 of each for a million lines); a file is left alone."""
    import fcntl
    import os
    import tempfile

    r, w = os.pipe()
    with os.fdopen(w, "wb") as out, os.fdopen(r, "rb"):
        assert fcntl.fcntl(w, fcntl.F_GETPIPE_SZ) == 65536
        copy_chunks([frame(1, b"a\n")], out, io.BytesIO())
        assert fcntl.fcntl(w, fcntl.F_GETPIPE_SZ) == 1 << 20
    with tempfile.TemporaryFile() as f:
        copy_chunks([frame(1, b"a\n")], f, io.BytesIO())
        f.seek(0)
        assert f.read() == b"a\n"
