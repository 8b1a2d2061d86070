"""Which keys a service file may hold, their types, and what corral does with each.

Every key of the compose spec (a pinned copy: tests/data/compose-spec.json) is one of:

- supported: validated, and applied;
- unsupported: refused with an error naming it ("is not supported by corral yet"),
  since a file that asks for something corral would not do must not seem to work;
- ignored: a warning naming it and why, for keys with no meaning on one Linux host
  (swarm placement, Windows isolation, Docker Desktop's mount consistency).

Anything else is unknown: an error with a "did you mean" from the known keys, as a typo
must not silently do nothing. `x-*` keys are extensions, always allowed.

Checking also converts, as compose-go does after interpolation: a string where a
boolean is wanted is read case-insensitively as true/false (YAML 1.1's yes/no/on/off/y/n
with a warning), a string where an integer is wanted as a decimal integer, so
`read_only: ${RO}` and `scale: ${N}` work.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from config.errors import Path, Positions, Problem, dotted


class Spec:
    """A node type: `check` returns the value (converted where compose converts it)
    and appends problems to the context; `shape` says whether an Either picks it."""

    what = "a value"

    def check(self, value: Any, path: Path, ctx: Ctx) -> Any:
        raise NotImplementedError

    def shape(self, value: Any) -> bool:
        return True


@dataclass
class Ctx:
    positions: Positions
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    def error(self, path: Path, message: str, *, key: bool = False) -> None:
        pos = self.positions.key(path) if key else self.positions.get(path)
        self.errors.append(Problem(pos, f"{dotted(path)} {message}"))

    def warn(self, path: Path, message: str, *, key: bool = True) -> None:
        pos = self.positions.key(path) if key else self.positions.get(path)
        self.warnings.append(Problem(pos, f"{dotted(path)} {message}"))


def _is(value: Any, types: tuple[type, ...]) -> bool:
    return isinstance(value, types) and not (isinstance(value, bool) and bool not in types)


class Scalar(Spec):
    def __init__(self, what: str, *types: type) -> None:
        self.what = what
        self.types = types

    def check(self, value: Any, path: Path, ctx: Ctx) -> Any:
        if not _is(value, self.types):
            ctx.error(path, f"must be {self.what}")
        return value

    def shape(self, value: Any) -> bool:
        return _is(value, self.types)


_YAML11_BOOLS = {"y": True, "yes": True, "on": True, "n": False, "no": False, "off": False}


class Bool(Spec):
    """A boolean; a string as compose-go's toBoolean reads it."""

    what = "a boolean"

    def check(self, value: Any, path: Path, ctx: Ctx) -> Any:
        if isinstance(value, bool):
            return value
        if isinstance(value, str):
            word = value.lower()
            if word in ("true", "false"):
                return word == "true"
            if word in _YAML11_BOOLS:
                meant = _YAML11_BOOLS[word]
                ctx.warn(
                    path,
                    f"{value!r} is not a YAML 1.2 boolean; read as {str(meant).lower()}, "
                    f"as compose does: write {str(meant).lower()}",
                    key=False,
                )
                return meant
        ctx.error(path, "must be a boolean (true or false)")
        return value

    def shape(self, value: Any) -> bool:
        return isinstance(value, bool | str)


_DECIMAL = re.compile(r"[-+]?[0-9]+")


class Int(Spec):
    """An integer; a whole float (`2.0`) and a decimal string (`"2"`, from `${N}`) too,
    as compose-go's decoding and its Atoi cast take them."""

    what = "an integer"

    def check(self, value: Any, path: Path, ctx: Ctx) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and _DECIMAL.fullmatch(value):
            return int(value)
        ctx.error(path, "must be an integer")
        return value

    def shape(self, value: Any) -> bool:
        return _is(value, (int, float, str))


STR = Scalar("a string", str)
INT = Int()
BOOL = Bool()
NUM = Scalar("a number", int, float)
STR_NUM = Scalar("a string or number", str, int, float)
SCALAR = Scalar("a string, number, boolean or null", str, int, float, bool, type(None))
NULL = Scalar("null", type(None))


class ListOf(Spec):
    def __init__(self, item: Spec, what: str = "a list") -> None:
        self.item = item
        self.what = what

    def check(self, value: Any, path: Path, ctx: Ctx) -> Any:
        if not isinstance(value, list):
            ctx.error(path, f"must be {self.what}")
            return value
        return [self.item.check(v, (*path, i), ctx) for i, v in enumerate(value)]

    def shape(self, value: Any) -> bool:
        return isinstance(value, list)


class MapOf(Spec):
    what = "a mapping"

    def __init__(self, value: Spec) -> None:
        self.value = value

    def check(self, value: Any, path: Path, ctx: Ctx) -> Any:
        if not isinstance(value, dict):
            ctx.error(path, "must be a mapping")
            return value
        return {k: self.value.check(v, (*path, str(k)), ctx) for k, v in value.items()}

    def shape(self, value: Any) -> bool:
        return isinstance(value, dict)


class Either(Spec):
    """The first alternative whose shape (str/list/dict/number) matches decides."""

    def __init__(self, *alts: Spec, what: str) -> None:
        self.alts = alts
        self.what = what

    def check(self, value: Any, path: Path, ctx: Ctx) -> Any:
        for alt in self.alts:
            if alt.shape(value):
                return alt.check(value, path, ctx)
        ctx.error(path, f"must be {self.what}")
        return value

    def shape(self, value: Any) -> bool:
        return any(alt.shape(value) for alt in self.alts)


class Obj(Spec):
    """A mapping with named keys: `fields` supported, `unsupported` refused (key → a
    hint, or ""), `ignored` warned about (key → why it does nothing here)."""

    what = "a mapping"

    def __init__(
        self,
        fields: dict[str, Spec],
        unsupported: tuple[str, ...] | Mapping[str, str] = (),
        ignored: Mapping[str, str] | None = None,
        required: tuple[str, ...] = (),
    ) -> None:
        self.fields = fields
        self.unsupported: dict[str, str] = (
            dict(unsupported)
            if isinstance(unsupported, Mapping)
            else dict.fromkeys(unsupported, "")
        )
        self.ignored = dict(ignored or {})
        self.required = required
        overlap = (set(fields) & set(self.unsupported)) | (set(fields) & set(self.ignored))
        assert not overlap | (set(self.unsupported) & set(self.ignored)), overlap

    def known(self) -> set[str]:
        return {*self.fields, *self.unsupported, *self.ignored}

    def check(self, value: Any, path: Path, ctx: Ctx) -> Any:
        if not isinstance(value, dict):
            ctx.error(path, "must be a mapping")
            return value
        out: dict[str, Any] = {}
        for k, v in value.items():
            key = str(k)
            child = (*path, key)
            out[key] = v
            if key.startswith("x-"):
                continue
            spec = self.fields.get(key)
            if spec is not None:
                out[key] = spec.check(v, child, ctx)
            elif key in self.unsupported:
                hint = self.unsupported[key]
                ctx.error(
                    child,
                    "is not supported by corral yet" + (f": {hint}" if hint else ""),
                    key=True,
                )
            elif key in self.ignored:
                ctx.warn(child, f"is ignored: {self.ignored[key]}")
            else:
                close = difflib.get_close_matches(key, sorted(self.known()), n=1, cutoff=0.6)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                where = dotted(path) or "top level"
                ctx.errors.append(
                    Problem(ctx.positions.key(child), f"{where}: unknown key {key!r}{hint}")
                )
        for key in self.required:
            if key not in value:
                ctx.error(path, f"must have {key!r}")
        return out

    def shape(self, value: Any) -> bool:
        return isinstance(value, dict)


# Why an ignored key does nothing on one host.
SWARM = "it only means something to Docker Swarm (compose ignores it too)"
WINDOWS = "it only means something to Windows containers"
DESKTOP = "it only means something to Docker Desktop's file sharing on macOS"


DURATION = Scalar("a duration (e.g. 10s, 1m30s)", str, int, float)
STRINGS = Either(STR, ListOf(STR, "a list of strings"), what="a string or a list of strings")


class Choice(Scalar):
    """A string out of a fixed set (compose's enums)."""

    def __init__(self, *choices: str) -> None:
        super().__init__("a string", str)
        self.choices = choices

    def check(self, value: Any, path: Path, ctx: Ctx) -> Any:
        if _is(value, (str,)) and value not in self.choices:
            ctx.error(path, f"must be one of {', '.join(self.choices)}, not {value!r}")
            return value
        return super().check(value, path, ctx)


# compose's pull_policy values corral applies (daily/weekly/every_* are refused by name)
PULL_POLICY = Choice("always", "never", "missing", "if_not_present", "build")
ENV = Either(MapOf(SCALAR), ListOf(STR), what="a mapping or a list of KEY=VALUE strings")
SIZE = Scalar("a size (e.g. 512m) or a number of bytes", str, int)
EXTERNAL = Either(
    BOOL,
    Obj({"name": STR}),
    what="a boolean",
)

HEALTHCHECK = Obj(
    {
        "test": STRINGS,
        "interval": DURATION,
        "timeout": DURATION,
        "retries": INT,
        "start_period": DURATION,
        "start_interval": DURATION,
        "disable": BOOL,
    }
)
DEPENDS_ON = Either(
    ListOf(STR),
    MapOf(
        Obj(
            {
                "condition": STR,
                "restart": BOOL,
                "required": BOOL,
            }
        )
    ),
    what="a list of service names or a mapping",
)
PORT_LONG = Obj(
    {
        "target": Scalar("an integer", int, str),
        "published": STR_NUM,
        "host_ip": STR,
        "protocol": STR,
        "mode": STR,
        "name": STR,
        "app_protocol": STR,
    },
    required=("target",),
)
VOLUME_LONG = Obj(
    {
        "type": STR,
        "source": STR,
        "target": STR,
        "read_only": BOOL,
        "bind": Obj(
            {"propagation": STR, "create_host_path": BOOL, "selinux": STR},
            unsupported=("recursive",),
        ),
        "volume": Obj({"nocopy": BOOL, "subpath": STR}, unsupported=("labels",)),
        "tmpfs": Obj({"size": SIZE, "mode": Scalar("a number", int, str)}),
    },
    unsupported=("image",),
    ignored={"consistency": DESKTOP},
    required=("type",),
)
RESTART_POLICY = Obj(
    {"condition": STR, "max_attempts": INT},
    ignored=dict.fromkeys(
        ("delay", "window"),
        "Docker's restart policies have no delay or window; only swarm applies them "
        "(compose ignores them too)",
    ),
)
UPDATE_CONFIG = Obj(  # applied on this host: config/rollout.py
    {
        "parallelism": INT,
        "delay": DURATION,
        "failure_action": STR,
        "monitor": DURATION,
        "max_failure_ratio": NUM,
        "order": STR,
    }
)
DEPLOY = Obj(
    {
        "replicas": INT,
        "update_config": UPDATE_CONFIG,
        "rollback_config": UPDATE_CONFIG,
        "restart_policy": RESTART_POLICY,
        "resources": Obj(
            {"limits": Obj({"cpus": STR_NUM, "memory": SIZE, "pids": INT})},
            unsupported=("reservations",),
        ),
    },
    unsupported=(),
    ignored=dict.fromkeys(
        ("mode", "endpoint_mode", "labels", "placement"),
        SWARM,
    ),
)
ULIMITS = MapOf(Either(INT, Obj({"soft": INT, "hard": INT}), what="an integer or soft/hard"))
NETWORKS_OF_SERVICE = Either(
    ListOf(STR),
    MapOf(
        Either(
            Obj(
                {"aliases": ListOf(STR), "ipv4_address": STR, "ipv6_address": STR},
                unsupported=(
                    "link_local_ips",
                    "mac_address",
                    "priority",
                    "driver_opts",
                    "gw_priority",
                    "interface_name",
                ),
            ),
            NULL,
            what="a mapping or null",
        )
    ),
    what="a list of network names or a mapping",
)
LOGGING = Obj({"driver": STR, "options": MapOf(STR_NUM)})
BUILD = Obj(
    {
        "context": STR,
        "dockerfile": STR,
        "dockerfile_inline": STR,
        "args": ENV,
        "target": STR,
        "labels": ENV,
        "no_cache": BOOL,
        "network": STR,
        "tags": ListOf(STR),
        "pull": BOOL,
    },
    unsupported={
        "additional_contexts": "",
        "cache_to": "corral's builder keeps its cache locally, with no exporter",
        "entitlements": "",
        "extra_hosts": "",
        "no_cache_filter": "",
        "platforms": "",
        "privileged": "",
        "provenance": "",
        "sbom": "",
        "secrets": "",
        "shm_size": "",
        "ssh": "",
        "ulimits": "",
    },
    ignored={
        "isolation": WINDOWS,
        "cache_from": "corral's builder always uses its own local build cache (BuildKit's "
        "cache import is not needed on one host)",
    },
)
DEVICE_LONG = Obj({"source": STR, "target": STR, "permissions": STR}, required=("source",))
COMMAND = Either(STR, ListOf(STR), NULL, what="a string or a list of strings")
SERVICE_SECRETS = ListOf(
    Either(
        STR,
        Obj(
            {"source": STR, "target": STR, "uid": STR_NUM, "gid": STR_NUM,
             "mode": Scalar("an octal mode", int, str)},
            required=("source",),
        ),
        what="a name or a mapping",
    )
)


def _top_secret(kind: str) -> Spec:
    """A top-level secret or config: from a file, an environment variable, or (configs)
    inline content; external ones (swarm's) and drivers refused by name."""
    fields: dict[str, Spec] = {"file": STR, "environment": STR, "name": STR}
    refused = {"external": f"external {kind} are swarm's", "template_driver": ""}
    if kind == "secrets":
        refused.update(driver="", driver_opts="")
    else:
        fields["content"] = STR
    return Obj(fields, unsupported=refused, ignored={"labels": SWARM})


HOOK = Obj(
    {
        "command": COMMAND,
        "user": Scalar("a string", str, int),
        "privileged": BOOL,
        "working_dir": STR,
        "environment": ENV,
    },
    required=("command",),
)
WATCH_ACTIONS = ("sync", "rebuild", "restart", "sync+restart", "sync+exec")
WATCH_RULE = Obj(
    {
        "path": STR,
        "action": Choice(*WATCH_ACTIONS),
        "target": STR,
        "ignore": STRINGS,
        "include": STRINGS,
        "initial_sync": BOOL,
        "exec": HOOK,
    },
    required=("path", "action"),
)
DEVELOP = Either(Obj({"watch": ListOf(WATCH_RULE)}), NULL, what="a mapping")


SERVICE = Obj(
    {
        "image": STR,
        "extends": Either(
            STR, Obj({"service": STR, "file": STR}, required=("service",)),
            what="a service name or a mapping",
        ),
        "build": Either(STR, BUILD, what="a string or a mapping"),
        "command": COMMAND,
        "entrypoint": COMMAND,
        "environment": ENV,
        "env_file": Either(
            STR,
            ListOf(
                Either(
                    STR,
                    Obj({"path": STR, "required": BOOL}, unsupported=("format",)),
                    what="a path or a mapping",
                )
            ),
            what="a path or a list of paths",
        ),
        "ports": ListOf(Either(STR_NUM, PORT_LONG, what="a port string or a mapping")),
        "expose": ListOf(STR_NUM),
        "volumes": ListOf(Either(STR, VOLUME_LONG, what="a volume string or a mapping")),
        "restart": STR,
        "pull_policy": PULL_POLICY,
        "healthcheck": HEALTHCHECK,
        "depends_on": DEPENDS_ON,
        "deploy": Either(DEPLOY, NULL, what="a mapping"),
        "scale": INT,
        "mem_limit": SIZE,
        "cpus": STR_NUM,
        "pids_limit": INT,
        "stop_signal": STR,
        "stop_grace_period": DURATION,
        "labels": ENV,
        "secrets": SERVICE_SECRETS,
        "configs": SERVICE_SECRETS,
        "label_file": Either(STR, ListOf(STR), what="a path or a list of paths"),
        "memswap_limit": Either(SIZE, INT, what="a size, a number of bytes or -1"),
        "container_name": STR,
        "hostname": STR,
        "domainname": STR,
        "user": Scalar("a string", str, int),
        "working_dir": STR,
        "networks": NETWORKS_OF_SERVICE,
        "network_mode": STR,
        "logging": LOGGING,
        "read_only": BOOL,
        "tmpfs": STRINGS,
        "cap_add": ListOf(STR),
        "cap_drop": ListOf(STR),
        "ulimits": ULIMITS,
        "init": BOOL,
        "profiles": ListOf(STR),
        "privileged": BOOL,
        "extra_hosts": Either(ListOf(STR), MapOf(STRINGS), what="a list or a mapping"),
        "stdin_open": BOOL,
        "tty": BOOL,
        "cpu_shares": INT,
        "cpu_period": INT,
        "cpu_quota": INT,
        "cpuset": STR,
        "dns": STRINGS,
        "dns_search": STRINGS,
        "dns_opt": ListOf(STR),
        "security_opt": ListOf(STR),
        "devices": ListOf(Either(STR, DEVICE_LONG, what="a device string or a mapping")),
        "device_cgroup_rules": ListOf(STR),
        "userns_mode": STR,
        "annotations": ENV,
        "group_add": ListOf(STR_NUM),
        "ipc": STR,
        "pid": Either(STR, NULL, what="a string"),
        "uts": STR,
        "links": ListOf(STR),
        "volumes_from": ListOf(STR),
        "mem_reservation": SIZE,
        "oom_kill_disable": BOOL,
        "oom_score_adj": INT,
        "platform": STR,
        "shm_size": SIZE,
        "sysctls": ENV,
        "post_start": ListOf(HOOK),
        "pre_stop": ListOf(HOOK),
        "develop": DEVELOP,
    },
    unsupported=(
        "attach",
        "blkio_config",
        "cgroup",
        "cgroup_parent",
        "cpu_rt_period",
        "cpu_rt_runtime",
        "external_links",
        "gpus",
        "mac_address",
        "mem_swappiness",
        "models",
        "pre_start",
        "provider",
        "pull_refresh_after",
        "runtime",
        "storage_opt",
        "use_api_socket",
    ),
    ignored={
        "cpu_count": WINDOWS,
        "cpu_percent": WINDOWS,
        "credential_spec": WINDOWS,
        "isolation": WINDOWS,
    },
)

VOLUME_TOP = Either(
    NULL,
    Obj(
        {
            "name": STR,
            "external": EXTERNAL,
            "labels": ENV,
            "driver": STR,
            "driver_opts": MapOf(STR_NUM),
        },
    ),
    what="a mapping or null",
)
NETWORK_TOP = Either(
    NULL,
    Obj(
        {"name": STR, "external": EXTERNAL, "labels": ENV, "driver": STR, "internal": BOOL},
        unsupported=("driver_opts", "enable_ipv4", "enable_ipv6", "ipam"),
        ignored={"attachable": "only swarm-scoped (overlay) networks are attachable"},
    ),
    what="a mapping or null",
)

PROJECT = Obj(
    {
        "name": STR,
        "services": MapOf(SERVICE),
        "volumes": MapOf(VOLUME_TOP),
        "networks": MapOf(NETWORK_TOP),
        "version": Scalar("a string", str, int, float),
        "secrets": MapOf(_top_secret("secrets")),
        "configs": MapOf(_top_secret("configs")),
        "include": ListOf(
            Either(
                STR,
                Obj(
                    {"path": Either(STR, ListOf(STR), what="a path or a list of paths"),
                     "project_directory": STR},
                    unsupported=("env_file",),
                    required=("path",),
                ),
                what="a path or a mapping",
            )
        ),
    },
    unsupported=("models",),
)


def validate(doc: Any, positions: Positions) -> tuple[Any, list[Problem], list[Problem]]:
    """(the document with compose's conversions, errors, warnings) for one interpolated
    file."""
    ctx = Ctx(positions)
    if not isinstance(doc, dict):
        ctx.errors.append(Problem(positions.get(()), "top level must be a mapping"))
        return doc, ctx.errors, ctx.warnings
    out = PROJECT.check(doc, (), ctx)
    if "version" in doc:
        ctx.warnings.append(
            Problem(
                positions.key(("version",)),
                "the attribute `version` is obsolete, it will be ignored",
            )
        )
    return out, ctx.errors, ctx.warnings
