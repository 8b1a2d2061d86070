"""The numbered lines the logs scenario writes, and the check that each arrived once.

Each line is 60 bytes: a 7-digit sequence number, a space, 51 zeros, a newline.  The
checker is fed the bytes as they arrive (chunks split anywhere) and counts what is
missing, duplicated, out of order or malformed.  Pure: tested without a container.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

LINE_BYTES = 60
DIGITS = 7


def expected_line(i: int) -> bytes:
    return b"%0*d %0*d\n" % (DIGITS, i, LINE_BYTES - DIGITS - 2, 0)


def write_lines(path: Path, count: int) -> Path:
    """The file a container `cat`s: the producer then costs next to nothing (no awk
    printf per line), so the timings are the engine's, and the floor shows the rest."""
    if not 0 < count < 10**DIGITS:
        raise ValueError(f"line count {count} outside 1..{10**DIGITS - 1}")
    with path.open("wb") as f:
        for start in range(0, count, 100_000):
            f.write(b"".join(expected_line(i) for i in range(start, min(start + 100_000, count))))
    return path


@dataclass
class Verdict:
    expected: int
    received: int
    missing: int
    duplicates: int
    out_of_order: int
    malformed: int
    hung: bool = False  # the follower had not ended when its time was up

    @property
    def ok(self) -> bool:
        return self.received == self.expected and not (
            self.missing or self.duplicates or self.out_of_order or self.malformed or self.hung
        )

    def text(self) -> str:
        if self.ok:
            return "every line once"
        parts = [
            f"{v} {k}"
            for k, v in (
                ("missing", self.missing),
                ("duplicated", self.duplicates),
                ("out of order", self.out_of_order),
                ("malformed", self.malformed),
            )
            if v
        ]
        if self.hung:
            parts.append("did not end")
        return "FAIL: " + ", ".join(parts or [f"{self.received} of {self.expected} lines"])


class LineChecker:
    def __init__(self, expected: int) -> None:
        self.expected = expected
        self._seen = bytearray(expected)
        self._pending = b""
        self._last = -1
        self.received = 0
        self.duplicates = 0
        self.out_of_order = 0
        self.malformed = 0

    def feed(self, chunk: bytes | bytearray) -> None:
        data = self._pending + bytes(chunk)
        *lines, self._pending = data.split(b"\n")
        for line in lines:
            self._line(line)

    def _line(self, line: bytes) -> None:
        self.received += 1
        head = line[:DIGITS]
        if len(line) != LINE_BYTES - 1 or not head.isdigit():
            self.malformed += 1
            return
        n = int(head)
        if n >= self.expected:
            self.malformed += 1
            return
        if self._seen[n]:
            self.duplicates += 1
            return
        self._seen[n] = 1
        if n != self._last + 1:
            self.out_of_order += 1
        self._last = n

    def verdict(self) -> Verdict:
        malformed = self.malformed + (1 if self._pending else 0)  # a last line without \n
        received = self.received + (1 if self._pending else 0)
        return Verdict(
            expected=self.expected,
            received=received,
            missing=self.expected - self._seen.count(1),
            duplicates=self.duplicates,
            out_of_order=self.out_of_order,
            malformed=malformed,
        )
