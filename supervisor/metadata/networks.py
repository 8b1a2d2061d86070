"""Network and endpoint records, in their own tables of the metadata store.

A network row holds what `docker network inspect` shows plus the Linux bridge's name
and the last address handed out.  An endpoint row joins a container to a network from
create (or connect) until remove (or disconnect); its `ip` is set only while the
container runs.  A partial unique index on (network, ip) is the final guard that no
address is held twice, whatever the daemon's memory says after a restart; another, on
the record's `ip6`, guards the IPv6 addresses of running endpoints the same way.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import Any

from supervisor.errors import Conflict, NotFound
from supervisor.metadata.database import Database

SCHEMA = """
CREATE TABLE IF NOT EXISTS networks (
    id       TEXT PRIMARY KEY,
    name     TEXT NOT NULL UNIQUE,
    record   TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS network_endpoints (
    container_id TEXT NOT NULL,
    network_id   TEXT NOT NULL REFERENCES networks(id),
    ip           TEXT NOT NULL DEFAULT '',
    record       TEXT NOT NULL,
    PRIMARY KEY (container_id, network_id)
);
CREATE UNIQUE INDEX IF NOT EXISTS network_endpoints_ip
    ON network_endpoints(network_id, ip) WHERE ip != '';
-- the same guard for IPv6: the record's ip6 of a running endpoint (ip set)
CREATE UNIQUE INDEX IF NOT EXISTS network_endpoints_ip6
    ON network_endpoints(network_id, json_extract(record, '$.ip6'))
    WHERE ip != '' AND json_extract(record, '$.ip6') != '';
"""

#: Names Docker reserves for its predefined networks.
PREDEFINED = ("bridge", "host", "none")


@dataclass
class Network:
    id: str
    name: str
    subnet: str
    gateway: str
    bridge: str
    created: str
    driver: str = "bridge"
    internal: bool = False
    attachable: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)
    last_ip: str = ""
    #: `--ipv6`: the IPv6 subnet and gateway ("" for an IPv4-only network)
    subnet6: str = ""
    gateway6: str = ""
    last_ip6: str = ""

    @property
    def network6(self) -> IPv6Network | None:
        return IPv6Network(self.subnet6) if self.subnet6 else None

    @property
    def gateway6_ip(self) -> IPv6Address | None:
        return IPv6Address(self.gateway6) if self.gateway6 else None

    @property
    def is_default(self) -> bool:
        return self.name == "bridge"

    @property
    def network(self) -> IPv4Network:
        return IPv4Network(self.subnet)

    @property
    def gateway_ip(self) -> IPv4Address:
        return IPv4Address(self.gateway)

    def to_json(self) -> str:
        return json.dumps(self.__dict__)

    @classmethod
    def from_json(cls, text: str) -> Network:
        return cls(**json.loads(text))


@dataclass
class Endpoint:
    container_id: str
    network_id: str
    id: str
    aliases: list[str] = field(default_factory=list)
    requested_ip: str = ""
    ip: str = ""
    mac: str = ""
    host_ifname: str = ""
    #: `--mac-address` (EndpointSettings.MacAddress): "" derives one from the address
    requested_mac: str = ""
    #: the IPv6 address while running (IPv6 networks), and `--ip6`'s
    ip6: str = ""
    requested_ip6: str = ""
    #: EndpointSettings.Links on a user network (`--link db:alias`): container-scoped
    #: aliases, as `name:alias`, resolved in this container's /etc/hosts alone
    links: list[str] = field(default_factory=list)

    def record(self) -> str:
        d = {
            k: v for k, v in self.__dict__.items() if k not in ("container_id", "network_id", "ip")
        }
        return json.dumps(d)

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Endpoint:
        d: dict[str, Any] = json.loads(row["record"])
        return cls(
            container_id=row["container_id"], network_id=row["network_id"], ip=row["ip"], **d
        )


class NetworkStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        db.ensure_schema(SCHEMA)
        #: write counters, for views cached by what they read (`revision_of`): the
        #: network records', and each container's endpoints'
        self._writes = 0
        self._network_revision = 0
        self._revisions: dict[str, int] = {}

    def _changed(self, container_id: str | None = None) -> None:
        """Count a write: one container's endpoints, or (None) what every view reads."""
        self._writes += 1
        if container_id is None:
            self._network_revision = self._writes
        else:
            self._revisions[container_id] = self._writes

    def revision_of(self, container_id: str) -> tuple[int, int, int]:
        """Changes whenever what a container's view reads here may have: its endpoints,
        any network record, or the database behind the writes' backs (a rolled-back
        transaction, a write held for want of space landing later)."""
        return (self._revisions.get(container_id, 0), self._network_revision,
                self.db.late_changes)  # fmt: skip

    # networks
    def all(self) -> list[Network]:
        rows = self.db.execute("SELECT record FROM networks ORDER BY name").fetchall()
        return [Network.from_json(r["record"]) for r in rows]

    def find(self, ref: str) -> Network | None:
        """By full name, full id, or unique id prefix (Docker's lookup order)."""
        row = self.db.execute(
            "SELECT record FROM networks WHERE name = ? OR id = ?", (ref, ref)
        ).fetchone()
        if row:
            return Network.from_json(row["record"])
        if not ref:
            return None
        rows = self.db.execute(
            "SELECT record FROM networks WHERE id LIKE ? ESCAPE '\\'",
            (ref.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%",),
        ).fetchall()
        if len(rows) > 1:
            raise Conflict(
                f"network {ref} is ambiguous ({len(rows)} matches found based on ID prefix)"
            )
        return Network.from_json(rows[0]["record"]) if rows else None

    def get(self, ref: str) -> Network:
        net = self.find(ref)
        if net is None:
            raise NotFound(f"network {ref} not found")
        return net

    def add(self, net: Network) -> None:
        self._changed()
        try:
            self.db.execute(
                "INSERT INTO networks (id, name, record) VALUES (?, ?, ?)",
                (net.id, net.name, net.to_json()),
            )
        except sqlite3.IntegrityError:
            raise Conflict(f"network with name {net.name} already exists") from None

    def save(self, net: Network) -> None:
        self._changed()
        self.db.execute("UPDATE networks SET record = ? WHERE id = ?", (net.to_json(), net.id))

    def delete(self, net: Network) -> None:
        self._changed()
        self.db.execute("DELETE FROM networks WHERE id = ?", (net.id,))

    # endpoints
    def endpoints_of(self, container_id: str) -> list[Endpoint]:
        rows = self.db.execute(
            "SELECT * FROM network_endpoints WHERE container_id = ? ORDER BY rowid", (container_id,)
        ).fetchall()
        return [Endpoint.from_row(r) for r in rows]

    def members(self, network_id: str) -> list[Endpoint]:
        rows = self.db.execute(
            "SELECT * FROM network_endpoints WHERE network_id = ? ORDER BY rowid", (network_id,)
        ).fetchall()
        return [Endpoint.from_row(r) for r in rows]

    def all_endpoints(self) -> list[Endpoint]:
        rows = self.db.execute("SELECT * FROM network_endpoints ORDER BY rowid").fetchall()
        return [Endpoint.from_row(r) for r in rows]

    def used_ips(self, network_id: str) -> set[IPv4Address]:
        rows = self.db.execute(
            "SELECT ip, record FROM network_endpoints WHERE network_id = ?", (network_id,)
        ).fetchall()
        used = {IPv4Address(r["ip"]) for r in rows if r["ip"]}
        # An address asked for with --ip stays reserved for its container while it exists.
        used |= {
            IPv4Address(req) for r in rows if (req := json.loads(r["record"]).get("requested_ip"))
        }
        return used

    def add_endpoint(self, ep: Endpoint) -> None:
        self._changed(ep.container_id)
        try:
            self.db.execute(
                "INSERT INTO network_endpoints (container_id, network_id, ip, record) "
                "VALUES (?, ?, ?, ?)",
                (ep.container_id, ep.network_id, ep.ip, ep.record()),
            )
        except sqlite3.IntegrityError:
            raise Conflict(
                f"endpoint with name {ep.container_id[:12]} already exists "
                f"in network {ep.network_id[:12]}"
            ) from None

    def save_endpoint(self, ep: Endpoint) -> None:
        self._changed(ep.container_id)
        sql = (
            "UPDATE network_endpoints SET ip = ?, record = ? "
            "WHERE container_id = ? AND network_id = ?"
        )
        params = (ep.ip, ep.record(), ep.container_id, ep.network_id)
        key = f"endpoint:{ep.container_id}:{ep.network_id}"
        if not ep.ip:
            # A release (the teardown at exit) must not fail on a full disk: held
            # back meanwhile, the stale row keeps its address taken, the safe side.
            self.db.persist(key, sql, params)
            return
        self.db.supersede(key)  # a release still held must not land after this
        try:
            self.db.execute(sql, params)
        except sqlite3.IntegrityError as exc:
            addr = ep.ip6 if "ip6" in str(exc) else ep.ip
            raise Conflict(f"Address already in use: {addr}") from None

    def delete_endpoint(self, ep: Endpoint) -> None:
        self._changed(ep.container_id)
        self.db.execute(
            "DELETE FROM network_endpoints WHERE container_id = ? AND network_id = ?",
            (ep.container_id, ep.network_id),
        )

    def delete_endpoints_of(self, container_id: str) -> None:
        """At a container's removal (its counter goes with it)."""
        self._revisions.pop(container_id, None)
        self.db.execute("DELETE FROM network_endpoints WHERE container_id = ?", (container_id,))

    def release_all(self) -> None:
        """After a crash nothing runs: no endpoint holds an address any more."""
        self._changed()
        self.db.execute("UPDATE network_endpoints SET ip = '' WHERE ip != ''")
