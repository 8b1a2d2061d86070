"""The daemon's own settings file (`corral daemon --config FILE`, default
`/etc/corral/daemon.yaml`): the same settings as the daemon's flags, in YAML. Pure.

    root: /var/lib/corral
    host: unix:///run/corral/corral.sock
    runtime: runc
    cgroup-parent: corral
    log-level: info
    log-driver: json-file
    log-opts: {max-size: 10m, max-file: 3}
    metrics-addr: 127.0.0.1:9323     # "" disables
    services: /etc/corral/services   # a directory of compose files kept running
    init: true                       # run an init as PID 1 unless a container says no
    init-path: /usr/bin/tini-static  # default: tini-static or docker-init on PATH
    live-restore: true               # containers keep running across a daemon stop
    userns-remap: default            # containers' root mapped to dockremap's range
    insecure-registries: [reg.lan:5000, 10.0.0.0/8]   # TLS unverified, then plain HTTP
    registry-mirrors: [https://mirror.example]        # Docker Hub pulls try these first
    certs-dir: /etc/docker/certs.d   # <host:port>/ca.crt, client.cert, client.key
    auto-update-interval: 1h         # roll out newer images of labelled containers
    ipv6: true                       # IPv6 on the default bridge, as dockerd's
    seccomp-helper: false            # runc compiles each container's seccomp filter
    fixed-cidr-v6: fd00:db8:1::/64   # its subnet (default: a ULA /64 picked once)

Keys are the flags' names, so a setting moves between the command line and the file
unchanged. Precedence, as for most daemons: a flag, then its environment variable, then
the file, then the built-in default. Why positions: a host's daemon that refuses to
start must say exactly where its file is wrong (`file:line:col: message`), like a
service file does, and start nothing.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from config.errors import ConfigError, Position, Positions, Problem
from config.yamlload import load_yaml

# key → True when the value is a filesystem path (relative ones are taken from the
# file's directory, as compose resolves paths from the compose file's).
STRING_KEYS: dict[str, bool] = {
    "root": True,
    "host": False,
    "runtime": False,
    "cgroup-parent": False,
    "log-level": False,
    "log-driver": False,
    "metrics-addr": False,
    "services": True,
    "init-path": True,
    "userns-remap": False,
    "certs-dir": True,
    "fixed-cidr-v6": False,
}
MAP_KEYS = ("log-opts",)
# lists of strings; the flags are singular and repeatable, as dockerd's
# (`--insecure-registry`, `--registry-mirror`)
LIST_KEYS = ("insecure-registries", "registry-mirrors")
BOOL_KEYS = ("init", "live-restore", "ipv6", "seccomp-helper")
# the API socket's bounds (`supervisor/api/server.py` Limits): key → "duration" (seconds,
# or a Go duration such as 30s, 5m, 1m30s) or "count" (a positive integer)
NUMBER_KEYS: dict[str, str] = {
    "api-header-timeout": "duration",
    "api-idle-timeout": "duration",
    "api-body-timeout": "duration",
    "api-max-client-connections": "count",
    "api-max-connections": "count",
    "auto-update-interval": "duration",  # supervisor/rollout/autoupdate.py's timer
}
KEYS = (*STRING_KEYS, *MAP_KEYS, *LIST_KEYS, *BOOL_KEYS, *NUMBER_KEYS)
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")

# A check of one setting, given its value and the file's other values: raises
# ValueError whose text names the culprit.
Check = Callable[[Any, Mapping[str, Any]], None]


@dataclass
class DaemonFile:
    """The settings written in a file, and where each was written."""

    path: str
    values: dict[str, Any] = field(default_factory=dict)
    positions: Positions = field(default_factory=Positions)

    def where(self, key: str) -> Position | None:
        return self.positions.get((key,))


def _check_host(value: str, _: Mapping[str, Any]) -> None:
    if not (value.startswith("unix://") or value.startswith("/")):
        raise ValueError(f"unsupported host {value!r}: only unix:///path sockets")


def _check_level(value: str, _: Mapping[str, Any]) -> None:
    if value.lower() not in LOG_LEVELS:
        raise ValueError(f"unknown log-level {value!r}: one of {', '.join(LOG_LEVELS)}")


_REMAP_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*\$?$|^[0-9]+$")


def check_userns_remap(value: str, _: Mapping[str, Any] | None = None) -> None:
    """`userns-remap`: "" (off, the default), `default` (Docker's `dockremap` user)
    or `USER[:GROUP]` (names or ids) whose ranges /etc/subuid and /etc/subgid hold."""
    if not value or value == "default":
        return
    parts = value.split(":")
    if len(parts) > 2 or not all(_REMAP_NAME.match(p) for p in parts):
        raise ValueError(
            f"userns-remap {value!r}: want default, USER or USER:GROUP (names or ids)"
        )


def check_fixed_cidr_v6(value: str, _: Mapping[str, Any] | None = None) -> None:
    """`fixed-cidr-v6`: an IPv6 subnet of at most /120 (room for containers)."""
    import ipaddress

    if not value:
        return
    try:
        net = ipaddress.IPv6Network(value, strict=False)
    except ValueError:
        raise ValueError(f"fixed-cidr-v6 {value!r}: not an IPv6 subnet (CIDR)") from None
    if net.prefixlen > 120:
        raise ValueError(f"fixed-cidr-v6 {value!r}: the prefix is longer than /120")


BUILTIN_CHECKS: dict[str, Check] = {
    "fixed-cidr-v6": check_fixed_cidr_v6,
    "host": _check_host,
    "log-level": _check_level,
    "userns-remap": check_userns_remap,
}


def parse_daemon_config(
    text: str, file: str, checks: Mapping[str, Check] | None = None
) -> DaemonFile:
    """Read and check a daemon file; every problem at once, as ConfigError.

    `checks` adds per-key checks owned elsewhere (the metrics address, log options),
    whose ValueError is reported at the value's position.
    """
    doc, positions = load_yaml(text, file)
    out = DaemonFile(file, positions=positions)
    if doc is None:
        return out
    if not isinstance(doc, dict):
        raise ConfigError.at(positions.get(()), "a daemon config file must be a mapping")
    all_checks = {**BUILTIN_CHECKS, **(checks or {})}
    problems: list[Problem] = []

    def bad(key: str, message: str, at_key: bool = False) -> None:
        pos = positions.key((key,)) if at_key else positions.get((key,))
        problems.append(Problem(pos, message))

    base = os.path.dirname(file)
    for k, value in doc.items():
        key = str(k)
        if key in STRING_KEYS:
            if not isinstance(value, str):
                bad(key, f"{key} must be a string")
                continue
            if STRING_KEYS[key] and value and not os.path.isabs(value):
                value = os.path.normpath(os.path.join(base, value))
        elif key in BOOL_KEYS:
            if not isinstance(value, bool):
                bad(key, f"{key} must be true or false")
                continue
        elif key in NUMBER_KEYS:
            try:
                value = parse_number(key, value)
            except ValueError as exc:
                bad(key, str(exc))
                continue
        elif key in LIST_KEYS:
            if value is None:
                value = []
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                bad(key, f"{key} must be a list of strings")
                continue
        elif key in MAP_KEYS:
            if value is None:
                value = {}
            if not isinstance(value, dict) or not all(
                isinstance(v, str | int | float) and not isinstance(v, bool) for v in value.values()
            ):
                bad(key, f"{key} must be a mapping of option names to strings")
                continue
            value = {str(name): str(v) for name, v in value.items()}
        else:
            close = difflib.get_close_matches(key, KEYS, n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            bad(key, f"unknown key {key!r}{hint}", at_key=True)
            continue
        check = all_checks.get(key)
        if check is not None and key in LIST_KEYS:  # each entry, at its own line
            wrong = False
            for i, item in enumerate(value):
                try:
                    check([item], doc)
                except ValueError as exc:
                    problems.append(Problem(positions.get((key, i)) or positions.get((key,)),
                                            str(exc)))
                    wrong = True
            if wrong:
                continue
        elif check is not None:
            try:
                check(value, doc)
            except ValueError as exc:
                bad(key, str(exc))
                continue
        out.values[key] = value
    if problems:
        raise ConfigError(problems)
    return out


_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """Seconds in a Go duration ("30s", "5m", "1m30s", "500ms"); ValueError if none."""
    pos, total = 0, 0.0
    text = text.strip()
    while pos < len(text):
        m = _DURATION_PART.match(text, pos)
        if not m:
            raise ValueError(f"invalid duration {text!r} (e.g. 30s, 5m, 1m30s)")
        total += float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
        pos = m.end()
    if not text:
        raise ValueError("invalid duration ''")
    return total


def parse_number(key: str, value: Any) -> float | int:
    """A NUMBER_KEYS value from a file or a flag: durations in seconds, counts as int."""
    kind = NUMBER_KEYS[key]
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{key} must be a {'duration' if kind == 'duration' else 'number'}")
    if kind == "count":
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{key} must be a positive integer, not {value!r}")
        return value
    seconds = parse_duration(value) if isinstance(value, str) else float(value)
    if not seconds > 0:
        raise ValueError(f"{key} must be longer than 0, not {value!r}")
    return seconds


@dataclass(frozen=True)
class Setting:
    """One daemon setting as flags, environment and file may give it."""

    key: str  # the file's key, the flag's name without dashes
    env: str | None  # the environment variable that sets it, if any
    default: Any


def settle(
    settings: list[Setting],
    flags: Mapping[str, Any],
    environ: Mapping[str, str],
    file: DaemonFile | None,
) -> dict[str, Any]:
    """key → value: the flag if given (not None), else the environment, else the
    file, else the default. `log-opts` become `key=value` words, the file's first and
    the flags' after them, so a flag overrides the file option by option."""
    out: dict[str, Any] = {}
    for s in settings:
        flag = flags.get(s.key)
        in_file = file.values.get(s.key) if file is not None else None
        if s.key in MAP_KEYS:
            words = [f"{k}={v}" for k, v in (in_file or {}).items()]
            out[s.key] = [*words, *(flag or [])]
        elif flag is not None:
            out[s.key] = flag
        elif s.env and s.env in environ:
            out[s.key] = environ[s.env]
        elif in_file is not None:
            out[s.key] = in_file
        else:
            out[s.key] = s.default
    return out


def config_path(flag: str | None, environ: Mapping[str, str], exists: Callable[[str], bool]) -> str:
    """Which file to read: `--config`, else CORRAL_CONFIG, else the default if present;
    "" means none (an explicit `--config ''` turns the default off)."""
    if flag is not None:
        return flag
    if "CORRAL_CONFIG" in environ:
        return environ["CORRAL_CONFIG"]
    return DEFAULT_CONFIG if exists(DEFAULT_CONFIG) else ""


DEFAULT_CONFIG = "/etc/corral/daemon.yaml"
