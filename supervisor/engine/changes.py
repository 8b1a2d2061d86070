"""`--change` / `-c` for import and commit: Dockerfile instructions applied to a config.

Pure.  The subset Docker accepts there: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER,
WORKDIR, VOLUME, STOPSIGNAL.  Returns Docker-cased `Config` keys to merge.
"""

from __future__ import annotations

import json
import shlex
from typing import Any

from supervisor.errors import InvalidArgument

ALLOWED = {"CMD", "ENTRYPOINT", "ENV", "EXPOSE", "LABEL", "USER", "WORKDIR", "VOLUME",
           "STOPSIGNAL"}


def _exec_or_shell(arg: str) -> list[str]:
    if arg.startswith("["):
        try:
            value = json.loads(arg)
        except ValueError:
            value = None
        if isinstance(value, list) and all(isinstance(x, str) for x in value):
            return value
    return ["/bin/sh", "-c", arg]


def _pairs(arg: str, what: str) -> dict[str, str]:
    words = shlex.split(arg)
    if len(words) >= 2 and "=" not in words[0]:
        return {words[0]: " ".join(words[1:])}
    out: dict[str, str] = {}
    for w in words:
        key, sep, value = w.partition("=")
        if not sep or not key:
            raise InvalidArgument(f"{what} requires key=value pairs: {w!r}")
        out[key] = value
    return out


def parse_changes(changes: list[str], base: dict[str, Any] | None = None) -> dict[str, Any]:
    cfg: dict[str, Any] = {}
    env = list((base or {}).get("Env") or [])
    for change in changes:
        for line in change.splitlines():
            line = line.strip()
            if not line:
                continue
            word, _, arg = line.partition(" ")
            inst = word.upper()
            arg = arg.strip()
            if inst not in ALLOWED:
                raise InvalidArgument(f"{word} is not a valid change command")
            if inst == "CMD":
                cfg["Cmd"] = _exec_or_shell(arg)
            elif inst == "ENTRYPOINT":
                cfg["Entrypoint"] = _exec_or_shell(arg)
            elif inst == "ENV":
                for k, v in _pairs(arg, "ENV").items():
                    env = [e for e in env if e.split("=", 1)[0] != k] + [f"{k}={v}"]
                cfg["Env"] = env
            elif inst == "LABEL":
                cfg.setdefault("Labels", {}).update(_pairs(arg, "LABEL"))
            elif inst == "EXPOSE":
                ports = cfg.setdefault("ExposedPorts", {})
                for p in arg.split():
                    ports[p if "/" in p else p + "/tcp"] = {}
            elif inst == "VOLUME":
                vols = cfg.setdefault("Volumes", {})
                paths = _exec_or_shell(arg)
                if paths[:2] == ["/bin/sh", "-c"]:
                    paths = arg.split()
                for p in paths:
                    vols[p] = {}
            elif inst == "USER":
                cfg["User"] = arg
            elif inst == "WORKDIR":
                cfg["WorkingDir"] = arg
            elif inst == "STOPSIGNAL":
                cfg["StopSignal"] = arg
    return cfg
