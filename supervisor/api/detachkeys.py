"""Detach keys: the key sequence that ends an attach and leaves the container running.

Docker's format (moby/term `ToBytes`): comma-separated keys, each one character or
`ctrl-@`, `ctrl-a`...`ctrl-z`, `ctrl-[`, `ctrl-\\`, `ctrl-]`, `ctrl-^`, `ctrl-_`;
the default is `ctrl-p,ctrl-q`.  `DetachScanner` is moby's escape proxy as a pure
state machine: bytes that could begin the sequence are held back until they either
complete it (detach; they are never sent) or stop matching (sent on, in order).
Both the daemon (attach and exec input with a TTY) and the CLI use it.
"""

from __future__ import annotations

DEFAULT = "ctrl-p,ctrl-q"

_CTRL = "@abcdefghijklmnopqrstuvwxyz[\\]^_"


def parse(keys: str) -> bytes:
    """`ctrl-p,ctrl-q` -> b"\\x10\\x11"; ValueError naming what does not parse."""
    out = bytearray()
    for key in keys.split(","):
        if len(key) == 1:
            out.append(ord(key))
            continue
        if key.startswith("ctrl-") and len(key) == 6 and key[5] in _CTRL:
            out.append(_CTRL.index(key[5]))
            continue
        raise ValueError(f"Invalid detach keys ({keys}) provided")
    return bytes(out)


class DetachScanner:
    """Feed input as it comes; `feed` answers (bytes to pass on, detached?)."""

    def __init__(self, sequence: bytes) -> None:
        self.sequence = sequence
        self._held = 0  # how many bytes of `sequence` the input ends with, held back
        self.detached = False

    def feed(self, data: bytes | bytearray) -> tuple[bytes, bool]:
        if not self.sequence or self.detached:
            return bytes(data), self.detached
        out = bytearray()
        for b in data:
            if b == self.sequence[self._held]:
                self._held += 1
                if self._held == len(self.sequence):
                    self.detached = True
                    self._held = 0
                    return bytes(out), True
                continue
            out += self.sequence[: self._held]
            self._held = 0
            if b == self.sequence[0]:  # len(sequence) > 1 here: it starts again
                self._held = 1
            else:
                out.append(b)
        return bytes(out), False

    def flush(self) -> bytes:
        """At end of input: what was held back goes on after all."""
        held, self._held = self.sequence[: self._held], 0
        return held
