"""The event bus: every lifecycle event, produced once, in order, to every consumer.

The engine publishes (`container start`, `image tag`, `volume mount`...); consumers are
`GET /events` streams, the metrics exporter (a listener called synchronously, so its
counters never miss one) and anyone else who subscribes.  Each event is written to a
bounded history table first, so `--since`/`--until` replay survives a daemon restart
and a stream can join history and live events without a gap or a repeat: both happen
in one step of the single trio thread, and every event carries a sequence number.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import trio

from supervisor.metadata.database import Database

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    time_nano  INTEGER NOT NULL,
    type       TEXT NOT NULL,
    action     TEXT NOT NULL,
    actor_id   TEXT NOT NULL,
    attributes TEXT NOT NULL
);
"""

HISTORY_LIMIT = 10_000
_SUBSCRIBER_BUFFER = 10_000


@dataclass(frozen=True)
class Event:
    seq: int
    time_nano: int
    type: str  # container | image | volume | network | daemon | pod
    action: str
    actor_id: str
    attributes: dict[str, str] = field(default_factory=dict)

    def to_api(self) -> dict[str, Any]:
        """Docker's event message, including the legacy top-level fields docker-py reads."""
        out: dict[str, Any] = {
            "Type": self.type,
            "Action": self.action,
            "Actor": {"ID": self.actor_id, "Attributes": dict(self.attributes)},
            "scope": "local",
            "time": self.time_nano // 1_000_000_000,
            "timeNano": self.time_nano,
        }
        if self.type in ("container", "image"):
            out["status"] = self.action
            out["id"] = self.actor_id
            if "image" in self.attributes:
                out["from"] = self.attributes["image"]
        return out


Filters = dict[str, list[str]]


def matches(event: Event, filters: Filters) -> bool:
    """Docker's event filters: container, image, event, type, label, volume, network;
    and podman's `pod`."""
    attrs = event.attributes
    for key, wanted in filters.items():
        if not wanted:
            continue
        if key == "type":
            ok = event.type in wanted
        elif key == "event":
            # `health_status` matches `health_status: healthy` too, as in Docker.
            ok = any(event.action == w or event.action.startswith(w + ":") for w in wanted)
        elif key == "container":
            ok = event.type == "container" and any(
                event.actor_id.startswith(w) or attrs.get("name") == w for w in wanted
            )
        elif key == "image":
            ok = any(
                w in (attrs.get("image"), attrs.get("name"), event.actor_id)
                or (event.type == "image" and event.actor_id.startswith(w))
                for w in wanted
            )
        elif key == "label":
            ok = all(
                (attrs.get(k) == v) if sep else (k in attrs)
                for k, sep, v in (w.partition("=") for w in wanted)
            )
        elif key == "pod":  # podman's: pod events by the pod's ID or name
            ok = event.type == "pod" and any(
                event.actor_id.startswith(w) or attrs.get("name") == w for w in wanted
            )
        elif key in ("volume", "network"):
            ok = event.type == key and any(
                event.actor_id.startswith(w) or attrs.get("name") == w for w in wanted
            )
        else:
            continue
        if not ok:
            return False
    return True


Listener = Callable[[Event], None]


class EventBus:
    """One owner of publishing; history in SQLite, live delivery by memory channels."""

    def __init__(self, db: Database, history_limit: int = HISTORY_LIMIT) -> None:
        self.db = db
        self.history_limit = history_limit
        db.ensure_schema(SCHEMA)
        self._subscribers: set[trio.MemorySendChannel[Event]] = set()
        self._listeners: list[Listener] = []
        self._since_prune = 0
        last = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'").fetchone()
        top = db.execute("SELECT MAX(seq) FROM events").fetchone()[0]
        self._seq = max(int(last[0]) if last else 0, int(top or 0))

    def add_listener(self, listener: Listener) -> None:
        """A synchronous consumer (metrics): called for every event, in order."""
        self._listeners.append(listener)

    def publish(
        self, type: str, action: str, actor_id: str, attributes: dict[str, str] | None = None
    ) -> Event:
        now = time.time_ns()
        attrs = {k: str(v) for k, v in (attributes or {}).items()}
        self._seq += 1
        seq = self._seq
        # History is best effort: written without the WAL fsync, and held in memory
        # (then written) while the disk is full; live subscribers get it at once.
        self.db.persist(
            f"event:{seq}",
            "INSERT INTO events (seq, time_nano, type, action, actor_id, attributes) "
            "VALUES (?,?,?,?,?,?)",
            (seq, now, type, action, actor_id, json.dumps(attrs)),
            durable=False,
        )
        event = Event(seq, now, type, action, actor_id, attrs)
        self._prune()
        for listener in self._listeners:
            listener(event)
        for send in list(self._subscribers):
            try:
                send.send_nowait(event)
            except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
                # A consumer that fell this far behind is cut off rather than slowing
                # the daemon; its stream ends and the client can reconnect with --since.
                self._subscribers.discard(send)
                send.close()
        return event

    def _prune(self) -> None:
        self._since_prune += 1
        if self._since_prune < 1000:
            return
        self._since_prune = 0
        self.db.persist(
            "events:prune",
            "DELETE FROM events WHERE seq <= (SELECT MAX(seq) FROM events) - ?",
            (self.history_limit,),
            durable=False,
        )

    def history(self, since_nano: int = 0, until_nano: int = 0) -> list[Event]:
        sql = "SELECT * FROM events WHERE time_nano >= ?"
        params: list[int] = [since_nano]
        if until_nano:
            sql += " AND time_nano <= ?"
            params.append(until_nano)
        rows = self.db.execute(sql + " ORDER BY seq", tuple(params)).fetchall()
        return [
            Event(r["seq"], r["time_nano"], r["type"], r["action"], r["actor_id"],
                  json.loads(r["attributes"]))
            for r in rows
        ]

    @property
    def subscriber_count(self) -> int:
        """Live subscribers (`GET /events` streams): /info's NEventsListener."""
        return len(self._subscribers)

    def subscribe(self) -> trio.MemoryReceiveChannel[Event]:
        send, recv = trio.open_memory_channel[Event](_SUBSCRIBER_BUFFER)
        self._subscribers.add(send)
        return recv

    def open_stream(
        self, since_nano: int = 0, until_nano: int = 0, *, live: bool = True
    ) -> tuple[list[Event], trio.MemoryReceiveChannel[Event] | None]:
        """History from `since` plus, if `live`, a channel of everything after it.

        Both are taken in one synchronous step, so nothing falls between them.
        """
        channel = self.subscribe() if live else None
        past = self.history(since_nano, until_nano) if since_nano else []
        return past, channel
