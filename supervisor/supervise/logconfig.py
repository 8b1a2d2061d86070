"""Log driver configuration: `HostConfig.LogConfig`, `--log-opt`, daemon-wide defaults.

Pure: parse and check a container's `{"Type": "json-file", "Config": {"max-size": "10m",
"max-file": "3"}}` with Docker's rules, merge the daemon's defaults the way Docker does
(per key, only when the container's driver is the daemon's), and name rotated files.
Checking happens at create, so a bad option is one clear error before anything is made
(Docker only notices some of these at start).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from supervisor.errors import InvalidArgument

DRIVER = "json-file"
# Drivers Docker knows that corral does not implement: named as unsupported rather
# than as unknown, so the user knows it is corral that lacks them.
_DOCKER_DRIVERS = frozenset(
    {"local", "none", "syslog", "journald", "gelf", "fluentd", "awslogs", "splunk",
     "etwlogs", "gcplogs", "logentries"}
)  # fmt: skip
_OPTS = frozenset({"max-size", "max-file"})
# json-file options Docker has and corral does not (they add record attrs or compress).
_DOCKER_OPTS = frozenset({"compress", "labels", "labels-regex", "env", "env-regex", "tag"})

_SIZE = re.compile(r"^(\d+(?:\.\d+)*) ?([kmgtp])?i?b?$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def parse_size(text: str) -> int:
    """Bytes for `10m`, `1k`, `512`, `1.5g`, `10MiB` (binary units, as Docker's RAMInBytes)."""
    m = _SIZE.match(text.strip())
    if not m:
        raise InvalidArgument(f"invalid size: '{text}'")
    return int(float(m.group(1)) * _UNITS[(m.group(2) or "").lower()])


@dataclass(frozen=True)
class LogOptions:
    """What the json-file writer needs: rotate at `max_size` bytes (-1: never), keep
    `max_file` files in all (the live one and `max_file - 1` rotated ones)."""

    max_size: int = -1
    max_file: int = 1

    @classmethod
    def from_log_config(cls, log_config: Mapping[str, Any] | None) -> LogOptions:
        """Options of a container's `HostConfig.LogConfig`; InvalidArgument if unusable."""
        cfg = log_config or {}
        driver = cfg.get("Type") or DRIVER
        if driver != DRIVER:
            if driver in _DOCKER_DRIVERS:
                raise InvalidArgument(
                    f"log driver '{driver}' is not supported by corral (only {DRIVER})"
                )
            raise InvalidArgument(f"logger: no log driver named '{driver}' is registered")
        opts = cfg.get("Config") or {}
        if not isinstance(opts, Mapping):
            raise InvalidArgument("LogConfig.Config must be an object of strings")
        for key in opts:
            if key in _DOCKER_OPTS:
                raise InvalidArgument(f"log opt '{key}' is not supported by corral's {DRIVER}")
            if key not in _OPTS:
                raise InvalidArgument(f"unknown log opt '{key}' for {DRIVER} log driver")
        max_size = -1
        if (raw_size := opts.get("max-size")) not in (None, ""):
            try:
                max_size = parse_size(str(raw_size))
            except InvalidArgument as exc:
                raise InvalidArgument(f"invalid log opt max-size: {exc.message}") from None
            if max_size <= 0:
                raise InvalidArgument("max-size must be a positive number")
        max_file = 1
        if (raw_file := opts.get("max-file")) not in (None, ""):
            try:
                max_file = int(str(raw_file))
            except ValueError:
                raise InvalidArgument(f"invalid log opt max-file: '{raw_file}'") from None
            if max_file < 1:
                raise InvalidArgument("max-file cannot be less than 1")
        return cls(max_size, max_file)


def validate_log_config(log_config: Mapping[str, Any] | None) -> None:
    """Raise InvalidArgument (one line naming the culprit) if corral cannot honour it."""
    LogOptions.from_log_config(log_config)


@dataclass(frozen=True)
class LogDefaults:
    """The daemon's `--log-driver`/`--log-opt` (Docker's daemon.json `log-driver`,
    `log-opts`), applied to containers that do not say otherwise."""

    type: str = DRIVER
    config: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_flags(cls, driver: str = DRIVER, opts: list[str] | None = None) -> LogDefaults:
        """From `--log-opt key=value` flags; checked like a container's would be."""
        config: dict[str, str] = {}
        for opt in opts or []:
            key, sep, value = opt.partition("=")
            if not sep or not key:
                raise InvalidArgument(f"invalid log opt '{opt}': expected key=value")
            config[key] = value
        defaults = cls(driver or DRIVER, config)
        validate_log_config({"Type": defaults.type, "Config": config})
        return defaults


def resolve_log_config(
    log_config: Mapping[str, Any] | None, defaults: LogDefaults | None = None
) -> dict[str, Any]:
    """The LogConfig to store at create: the daemon's driver if none is named, its
    options filled in per key when the drivers match (Docker's mergeAndVerifyLogConfig),
    then checked. Raises InvalidArgument."""
    defaults = defaults or LogDefaults()
    cfg = dict(log_config or {})
    driver = cfg.get("Type") or defaults.type
    opts = dict(cfg.get("Config") or {})
    if driver == defaults.type:
        for key, value in defaults.config.items():
            opts.setdefault(key, value)
    merged = {"Type": driver, "Config": opts}
    validate_log_config(merged)
    return merged


def rotated_path(path: Path, index: int) -> Path:
    """`<id>-json.log` for 0, `<id>-json.log.1` for 1... (Docker's names)."""
    return path if index == 0 else path.with_name(f"{path.name}.{index}")


def rotation_moves(path: Path, max_file: int, rotated: int) -> list[tuple[Path, Path]]:
    """The renames of one rotation, in order: `.N-2`→`.N-1` ... `.1`→`.2`, live→`.1`,
    given `rotated` files `.1`..`.rotated` exist (so a large max-file costs nothing).

    With `max_file` 1 there are none: the live file is replaced by an empty one.
    """
    top = min(max_file - 1, rotated + 1)
    return [(rotated_path(path, i - 1), rotated_path(path, i)) for i in range(top, 0, -1)]
