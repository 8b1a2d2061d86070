"""`GET /containers/json` from cached entries: each container's JSON is built once
and kept until what it shows changes.

dockerd answers a listing from its in-memory container views; corral's records are in
memory too, but building 200 entries (dicts, time parsing, JSON encoding) cost ~14 ms
of the one event-loop thread per listing.  Here each container's entry is kept as the
JSON bytes before and after its `Status` (the one field that moves with the clock:
"Up 5 minutes"), with the time its duration counts from; an entry is rebuilt when its
key changes: the record's fields a listing shows that can change (name, status, times,
exit code, health) and the networks' `view_key` (published ports, endpoint and network
revisions).  The rest of an entry (id, image, command, created, labels, mounts,
network mode) is fixed at create.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from json.encoder import encode_basestring
from typing import Any

from supervisor.api import views
from supervisor.metadata.containers import Container
from supervisor.network.manager import Networks

#: stale entries up to which each one's networks are read alone
FEW = 8

_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


@dataclass(slots=True)
class _Entry:
    key: tuple[object, ...]
    head: bytes  # `{"Id":...,"State":"running","Status":`
    tail: bytes  # `,"HostConfig":...}`
    status: tuple[str, float | None, str]  # views.status_parts


def _key(c: Container, networks: Networks) -> tuple[object, ...]:
    st = c.state
    health = st.health.status if st.health is not None else None
    return (c.name, st.status, st.started_at, st.finished_at, st.exit_code, health,
            networks.view_key(c.id))  # fmt: skip


class Listing:
    """The cached entries of one engine's containers (owned by the containers
    handler; nothing else writes them)."""

    def __init__(self, networks: Networks) -> None:
        self.networks = networks
        self._entries: dict[str, _Entry] = {}

    def _build(self, c: Container, key: tuple[object, ...], nets: dict[str, Any]) -> _Entry:
        head, tail = views.summary_halves(c, self.networks.ports_summary(c), nets)
        return _Entry(
            key,
            (_encode(head)[:-1] + ',"Status":').encode(),
            ("," + _encode(tail)[1:]).encode(),
            views.status_parts(c),
        )

    def render(self, shown: list[Container], everything: list[Container],
               now: float | None = None) -> bytes:  # fmt: skip
        """The JSON body (with its newline) listing `shown`, in that order; `everything`:
        the engine's containers (the entries of removed ones are dropped)."""
        now = time.time() if now is None else now
        entries = self._entries
        stale = []
        for c in shown:
            key = _key(c, self.networks)
            e = entries.get(c.id)
            if e is None or e.key != key:
                stale.append((c, key))
        if len(stale) > FEW:  # one read of every endpoint, for all of them
            nets = self.networks.summaries([c for c, _ in stale])
        else:  # a few restarting containers: their own endpoints alone
            nets = {c.id: self.networks.summary_networks(c) for c, _ in stale}
        if stale:
            for c, key in stale:
                entries[c.id] = self._build(c, key, nets[c.id])
        if len(entries) > len(everything):
            alive = {c.id for c in everything}
            for cid in [cid for cid in entries if cid not in alive]:
                del entries[cid]
        parts: list[bytes] = []
        for c in shown:
            e = entries[c.id]
            parts += (e.head, encode_basestring(views.format_status(e.status, now)).encode(),
                      e.tail, b",")  # fmt: skip
        if not parts:
            return b"[]\n"
        parts[-1] = b"]\n"
        return b"[" + b"".join(parts)
