"""The soak's streaming log check (bench/soaklog.py) on hand-made streams: it must see
every way a log can be wrong, whatever pieces the response comes in."""

from __future__ import annotations

import struct

import pytest

from bench.soaklog import BLOCK, Checker, LogFigures


def _frame(text: bytes, stream: int = 1) -> bytes:
    return struct.pack(">BxxxI", stream, len(text)) + text


def _check(frames: list[bytes], piece: int) -> LogFigures:
    data = b"".join(frames)
    c = Checker()
    for i in range(0, len(data), piece):
        c.feed(data[i:i + piece])
    return c.close()


def _lines(numbers: list[int], end: int | None) -> list[bytes]:
    out = [_frame(b"line %d\n" % n) for n in numbers]
    return out + ([_frame(b"end %d\n" % end)] if end is not None else [])


N = 2 * BLOCK + 1234  # past blocks, widths 1 to 5 digits, and a partial last block


@pytest.mark.parametrize("piece", [7, 65_536, 1 << 22])
def test_whole_log(piece: int) -> None:
    f = _check(_lines(list(range(1, N + 1)), N), piece)
    assert (f.lines, f.last, f.end, f.whole) == (N, N, N, True)


@pytest.mark.parametrize(("numbers", "end", "what"), [
    ([n for n in range(1, N + 1) if n != BLOCK + 5], N, {"missing": 1}),
    ([*range(1, BLOCK + 10), *range(BLOCK + 3, N + 1)], N, {"backwards": 7}),
    ([*range(1, 50), 51, 50, *range(52, N + 1)], N, {"missing": 1, "backwards": 1}),
    (list(range(1, N)), N, {}),  # the writer counted a line the log lacks
    (list(range(1, N + 1)), None, {}),  # no count from the writer
])
def test_wrong_logs_are_seen(numbers: list[int], end: int | None, what: dict[str, int]) -> None:
    f = _check(_lines(numbers, end), 65_536)
    assert not f.whole
    for k, v in what.items():
        assert getattr(f, k) == v


def test_foreign_frames_are_seen() -> None:
    frames = _lines(list(range(1, 1000)), 999)
    frames.insert(500, _frame(b"oops\n", stream=2))
    frames.insert(700, _frame(b"line 7"))  # a partial line
    f = _check(frames, 4096)
    assert (f.foreign, f.whole) == (2, False)
    torn = b"".join(_lines(list(range(1, 10)), 9))[:-3]
    c = Checker()
    c.feed(torn)
    assert not c.close().whole
