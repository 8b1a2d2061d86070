"""Merged logs of a project's containers, prefixed as compose prints them.

`web-1  | line`: the container name left-aligned to the longest name + 1, then `| `;
one color per container on a TTY (compose's rotation). The prefixer is pure: it turns
each container's byte chunks into whole prefixed lines, holding a partial last line
until its newline comes (or the stream ends).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import BinaryIO

import trio

from supervisor.api.client import ApiError
from supervisor.cli.stream import Demuxer
from supervisor.compose.client import AsyncApi

# compose's color rotation: cyan, yellow, green, magenta, blue, then the bright ones
COLORS = ("36", "33", "32", "35", "34", "96", "93", "92", "95", "94")


class Prefixer:
    def __init__(self, name: str, width: int, *, color: str | None, prefix: bool) -> None:
        if not prefix:
            self.head = b""
        elif color:
            self.head = f"\033[{color}m{name.ljust(width)}| \033[0m".encode()
        else:
            self.head = f"{name.ljust(width)}| ".encode()
        self.pending = b""

    def feed(self, data: bytes) -> bytes:
        *lines, self.pending = (self.pending + data).split(b"\n")
        return b"".join(self.head + line + b"\n" for line in lines)

    def flush(self) -> bytes:
        rest, self.pending = self.pending, b""
        return self.head + rest + b"\n" if rest else b""


def prefixers(names: Sequence[str], *, color: bool, prefix: bool) -> dict[str, Prefixer]:
    width = max((len(n) for n in names), default=0) + 1
    return {
        n: Prefixer(n, width, color=COLORS[i % len(COLORS)] if color else None, prefix=prefix)
        for i, n in enumerate(names)
    }


async def stream_logs(
    api: AsyncApi,
    containers: Sequence[tuple[str, str]],  # (id, name)
    out: BinaryIO,
    *,
    follow: bool,
    tail: str = "all",
    timestamps: bool = False,
    since: str | None = None,
    color: bool = False,
    prefix: bool = True,
    ended: dict[str, trio.Event] | None = None,
) -> None:
    """Each container's log in its own task; whole lines interleave on `out`.
    `ended`: an event per container id, set once its whole log is out (a followed
    log ends when its container does)."""
    fixes = prefixers([n for _, n in containers], color=color, prefix=prefix)

    async def one(cid: str, name: str) -> None:
        query = {
            "stdout": True,
            "stderr": True,
            "follow": follow or None,
            "timestamps": timestamps or None,
            "tail": tail,
            "since": since,
        }
        demux = Demuxer()
        fix = fixes[name]
        try:
            async for chunk in api.stream("GET", f"/containers/{cid}/logs", query):
                for _, payload in demux.feed(chunk):
                    text = fix.feed(payload)
                    if text:
                        out.write(text)
                        out.flush()
        except ApiError as exc:
            if exc.status != 404:  # removed meanwhile: its stream simply ends
                raise
        rest = fix.flush()
        if rest:
            out.write(rest)
            out.flush()
        if ended is not None and cid in ended:
            ended[cid].set()

    async with trio.open_nursery() as nursery:
        for cid, name in containers:
            nursery.start_soon(one, cid, name)
