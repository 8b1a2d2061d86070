"""Legacy links (`--link NAME[:ALIAS]`, `HostConfig.Links`) on the default bridge, as
Docker keeps them: a hosts entry `IP ALIAS HOSTNAME [NAME]` and the environment
variables of moby's `links.Link.ToEnv` (`DB_PORT=tcp://IP:5432`, `DB_NAME=/web/db`,
`DB_ENV_X=...`).  Pure: the engine hands in the linked containers' facts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from supervisor.errors import InvalidArgument


@dataclass(frozen=True)
class Link:
    """One link as stored: the linked container's name and the alias it has here."""

    name: str
    alias: str


def parse(spec: str) -> Link:
    """`name`, `name:alias`, or the stored `/name:/parent/alias` (docker's ParseLink)."""
    name, sep, alias = spec.partition(":")
    name = name.lstrip("/")
    alias = alias.rsplit("/", 1)[-1] if sep else name
    if not name or not alias or ":" in alias:
        raise InvalidArgument(f"invalid link: {spec}")
    return Link(name, alias)


def stored(links: Iterable[Link], parent: str) -> list[str]:
    """HostConfig.Links as dockerd stores and shows them: `/db:/web/db`."""
    return [f"/{link.name}:/{parent}/{link.alias}" for link in links]


def host_names(link: Link, hostname: str) -> tuple[str, ...]:
    """moby's aliasList: the alias, the container's hostname, its name unless the alias."""
    names = [link.alias, hostname]
    if link.alias != link.name:
        names.append(link.name)
    return tuple(dict.fromkeys(n for n in names if n))


def _port_key(port: str) -> tuple[int, bool, str]:
    """moby's order: by number, tcp first among ports of one number."""
    number, _, proto = port.partition("/")
    proto = proto or "tcp"
    return (int(number) if number.isdigit() else 0, proto != "tcp", proto)


def environment(
    link: Link, parent: str, ip: str, exposed: Iterable[str], child_env: Sequence[str]
) -> list[str]:
    """moby's ToEnv for one link (ports sorted; the first is `ALIAS_PORT`)."""
    alias = link.alias.upper().replace("-", "_")
    ports = sorted({_port_key(p) for p in exposed})
    env: list[str] = []
    if ports:
        number, _, proto = ports[0]
        env.append(f"{alias}_PORT={proto}://{ip}:{number}")
    for number, _, proto in ports:
        key = f"{alias}_PORT_{number}_{proto.upper()}"
        env += [
            f"{key}={proto}://{ip}:{number}",
            f"{key}_ADDR={ip}",
            f"{key}_PORT={number}",
            f"{key}_PROTO={proto}",
        ]
    env.append(f"{alias}_NAME=/{parent}/{link.alias}")
    for entry in child_env:
        key, sep, value = entry.partition("=")
        if sep and key not in ("HOME", "PATH"):
            env.append(f"{alias}_ENV_{key}={value}")
    return env
