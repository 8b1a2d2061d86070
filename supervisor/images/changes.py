"""`--change` instructions (`docker import/commit -c 'CMD ["sh"]'`) as config edits.

The API receives them as Dockerfile lines; `parse_changes` turns them into a dict of
Docker-cased config keys (pure), `apply_changes` merges that into an image config the
way a Dockerfile would: Env, Labels, ExposedPorts and Volumes accumulate, the rest
replace.  Kept apart from the store so the engine's commit path uses the same rules.
"""

from __future__ import annotations

import json
import shlex
from typing import Any

from supervisor.errors import InvalidArgument

SUPPORTED = (
    "CMD",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "LABEL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
)


def _exec_form(rest: str) -> list[str]:
    """JSON array form as is; shell form wrapped in /bin/sh -c, as the builder does."""
    try:
        value = json.loads(rest)
    except ValueError:
        value = None
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    return ["/bin/sh", "-c", rest]


def _pairs(instr: str, rest: str) -> list[tuple[str, str]]:
    try:
        words = shlex.split(rest)
    except ValueError as e:
        raise InvalidArgument(f"{instr}: {e}") from None
    if not words:
        raise InvalidArgument(f"{instr} requires at least one argument")
    if "=" not in words[0]:  # legacy `ENV key value with spaces`
        key, _, value = rest.strip().partition(" ")
        return [(key, value.strip())]
    out = []
    for w in words:
        key, eq, value = w.partition("=")
        if not eq or not key:
            raise InvalidArgument(f"{instr}: expected key=value, got {w!r}")
        out.append((key, value))
    return out


def parse_changes(lines: list[str]) -> dict[str, Any]:
    """Parse Dockerfile-style change lines into Docker-cased config keys."""
    out: dict[str, Any] = {}
    for line in lines:
        line = line.strip()
        if not line:
            continue
        word, _, rest = line.partition(" ")
        instr, rest = word.upper(), rest.strip()
        if instr not in SUPPORTED:
            raise InvalidArgument(f"{word} is not a valid change command")
        if instr in ("CMD", "ENTRYPOINT"):
            out["Cmd" if instr == "CMD" else "Entrypoint"] = _exec_form(rest)
        elif instr == "ENV":
            out.setdefault("Env", []).extend(f"{k}={v}" for k, v in _pairs(instr, rest))
        elif instr == "LABEL":
            out.setdefault("Labels", {}).update(dict(_pairs(instr, rest)))
        elif instr == "EXPOSE":
            ports = out.setdefault("ExposedPorts", {})
            for p in rest.split():
                ports[p if "/" in p else f"{p}/tcp"] = {}
        elif instr == "VOLUME":
            try:
                vols = json.loads(rest)
            except ValueError:
                vols = rest.split()
            if isinstance(vols, str):
                vols = [vols]
            out.setdefault("Volumes", {}).update({str(v): {} for v in vols})
        else:
            if not rest:
                raise InvalidArgument(f"{instr} requires an argument")
            key = {"STOPSIGNAL": "StopSignal", "USER": "User", "WORKDIR": "WorkingDir"}[instr]
            out[key] = rest
    return out


def merge_env(base: list[str], extra: list[str]) -> list[str]:
    """A later KEY=... replaces an earlier one in place; new keys append."""
    out = list(base)
    index = {e.split("=", 1)[0]: i for i, e in enumerate(out)}
    for e in extra:
        key = e.split("=", 1)[0]
        if key in index:
            out[index[key]] = e
        else:
            index[key] = len(out)
            out.append(e)
    return out


def apply_changes(config: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """A new config: `config` with `changes` applied (neither argument is modified)."""
    out = dict(config)
    for key, value in changes.items():
        if value is None:
            continue
        if key == "Env":
            out["Env"] = merge_env(list(out.get("Env") or []), list(value))
        elif key in ("Labels", "ExposedPorts", "Volumes"):
            out[key] = {**(out.get(key) or {}), **value}
        else:
            out[key] = value
    return out
