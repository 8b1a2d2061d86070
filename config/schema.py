"""Which keys a service file may hold, their types, and what corral honours.

Three kinds of key: supported (validated and used), known to the compose spec but not
honoured by corral yet (a warning naming file:line; the value is kept and shown by
`config`), and unknown (an error with a "did you mean" from the known keys, as a typo
must not silently do nothing). `x-*` keys are extensions, always allowed.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

from config.errors import Path, Positions, Problem, dotted


class Spec:
    """A node type; `check` appends problems and returns nothing."""

    what = "a value"

    def check(self, value: Any, path: Path, ctx: Ctx) -> None:
        raise NotImplementedError


@dataclass
class Ctx:
    positions: Positions
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    def error(self, path: Path, message: str, *, key: bool = False) -> None:
        pos = self.positions.key(path) if key else self.positions.get(path)
        self.errors.append(Problem(pos, f"{dotted(path)} {message}"))

    def warn(self, path: Path, message: str) -> None:
        self.warnings.append(Problem(self.positions.key(path), f"{dotted(path)} {message}"))


class Scalar(Spec):
    def __init__(self, what: str, *types: type) -> None:
        self.what = what
        self.types = types

    def check(self, value: Any, path: Path, ctx: Ctx) -> None:
        ok = isinstance(value, self.types) and not (
            isinstance(value, bool) and bool not in self.types
        )
        if not ok:
            ctx.error(path, f"must be {self.what}")


STR = Scalar("a string", str)
INT = Scalar("an integer", int)
BOOL = Scalar("a boolean", bool)
NUM = Scalar("a number", int, float)
STR_NUM = Scalar("a string or number", str, int, float)
SCALAR = Scalar("a string, number, boolean or null", str, int, float, bool, type(None))


class ListOf(Spec):
    def __init__(self, item: Spec, what: str = "a list") -> None:
        self.item = item
        self.what = what

    def check(self, value: Any, path: Path, ctx: Ctx) -> None:
        if not isinstance(value, list):
            ctx.error(path, f"must be {self.what}")
            return
        for i, v in enumerate(value):
            self.item.check(v, (*path, i), ctx)


class MapOf(Spec):
    what = "a mapping"

    def __init__(self, value: Spec) -> None:
        self.value = value

    def check(self, value: Any, path: Path, ctx: Ctx) -> None:
        if not isinstance(value, dict):
            ctx.error(path, "must be a mapping")
            return
        for k, v in value.items():
            self.value.check(v, (*path, str(k)), ctx)


class Either(Spec):
    """The first alternative whose shape (str/list/dict/number) matches decides."""

    def __init__(self, *alts: Spec, what: str) -> None:
        self.alts = alts
        self.what = what

    def check(self, value: Any, path: Path, ctx: Ctx) -> None:
        for alt in self.alts:
            if _shape_matches(alt, value):
                alt.check(value, path, ctx)
                return
        ctx.error(path, f"must be {self.what}")


def _shape_matches(spec: Spec, value: Any) -> bool:
    if isinstance(spec, Scalar):
        return isinstance(value, spec.types) and not (
            isinstance(value, bool) and bool not in spec.types
        )
    if isinstance(spec, ListOf):
        return isinstance(value, list)
    if isinstance(spec, MapOf | Obj):
        return isinstance(value, dict)
    if isinstance(spec, Either):
        return any(_shape_matches(a, value) for a in spec.alts)
    return True


class Obj(Spec):
    what = "a mapping"

    def __init__(
        self,
        fields: dict[str, Spec],
        unsupported: tuple[str, ...] = (),
        required: tuple[str, ...] = (),
    ) -> None:
        self.fields = fields
        self.unsupported = frozenset(unsupported)
        self.required = required

    def check(self, value: Any, path: Path, ctx: Ctx) -> None:
        if not isinstance(value, dict):
            ctx.error(path, "must be a mapping")
            return
        for k, v in value.items():
            key = str(k)
            child = (*path, key)
            if key.startswith("x-"):
                continue
            spec = self.fields.get(key)
            if spec is not None:
                spec.check(v, child, ctx)
            elif key in self.unsupported:
                ctx.warn(child, "is not supported by corral yet: kept in the model, ignored")
            else:
                known = [*self.fields, *self.unsupported]
                close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                where = dotted(path) or "top level"
                ctx.errors.append(
                    Problem(
                        ctx.positions.key(child),
                        f"{where}: unknown key {key!r}{hint}",
                    )
                )
        for key in self.required:
            if key not in value:
                ctx.error(path, f"must have {key!r}")


DURATION = Scalar("a duration (e.g. 10s, 1m30s)", str, int, float)
STRINGS = Either(STR, ListOf(STR, "a list of strings"), what="a string or a list of strings")
ENV = Either(MapOf(SCALAR), ListOf(STR), what="a mapping or a list of KEY=VALUE strings")
SIZE = Scalar("a size (e.g. 512m) or a number of bytes", str, int)

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
        "bind": Obj({"propagation": STR, "create_host_path": BOOL, "selinux": STR}),
        "volume": Obj({"nocopy": BOOL, "subpath": STR}),
        "tmpfs": Obj({"size": SIZE, "mode": Scalar("a number", int, str)}),
    },
    unsupported=("consistency", "image"),
    required=("type",),
)
RESOURCES = Obj(
    {"cpus": STR_NUM, "memory": SIZE, "pids": INT},
    unsupported=("devices", "generic_resources"),
)
DEPLOY = Obj(
    {
        "replicas": INT,
        "resources": Obj({"limits": RESOURCES}, unsupported=("reservations",)),
    },
    unsupported=(
        "mode",
        "endpoint_mode",
        "labels",
        "placement",
        "restart_policy",
        "rollback_config",
        "update_config",
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
            Scalar("null", type(None)),
            what="a mapping or null",
        )
    ),
    what="a list of network names or a mapping",
)
LOGGING = Obj({"driver": STR, "options": MapOf(STR_NUM)})

SERVICE = Obj(
    {
        "image": STR,
        "build": Either(
            STR,
            Obj(
                {"context": STR, "dockerfile": STR, "args": ENV, "target": STR},
                unsupported=(
                    "cache_from",
                    "cache_to",
                    "labels",
                    "network",
                    "platforms",
                    "secrets",
                    "shm_size",
                    "ssh",
                    "tags",
                    "ulimits",
                    "pull",
                    "no_cache",
                    "additional_contexts",
                    "dockerfile_inline",
                    "extra_hosts",
                    "isolation",
                    "privileged",
                    "entitlements",
                ),
            ),
            what="a string or a mapping",
        ),
        "command": Either(
            STR, ListOf(STR), Scalar("null", type(None)), what="a string or a list of strings"
        ),
        "entrypoint": Either(
            STR, ListOf(STR), Scalar("null", type(None)), what="a string or a list of strings"
        ),
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
        "healthcheck": HEALTHCHECK,
        "depends_on": DEPENDS_ON,
        "deploy": DEPLOY,
        "scale": INT,
        "mem_limit": SIZE,
        "cpus": STR_NUM,
        "pids_limit": INT,
        "stop_signal": STR,
        "stop_grace_period": DURATION,
        "labels": ENV,
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
    },
    unsupported=(
        "annotations",
        "attach",
        "blkio_config",
        "cgroup",
        "cgroup_parent",
        "configs",
        "cpu_count",
        "cpu_percent",
        "cpu_period",
        "cpu_quota",
        "cpu_rt_period",
        "cpu_rt_runtime",
        "cpu_shares",
        "cpuset",
        "credential_spec",
        "develop",
        "device_cgroup_rules",
        "devices",
        "dns",
        "dns_opt",
        "dns_search",
        "driver_opts",
        "extends",
        "external_links",
        "gpus",
        "group_add",
        "ipc",
        "isolation",
        "label_file",
        "links",
        "mac_address",
        "mem_reservation",
        "mem_swappiness",
        "memswap_limit",
        "oom_kill_disable",
        "oom_score_adj",
        "pid",
        "platform",
        "post_start",
        "pre_stop",
        "provider",
        "pull_policy",
        "runtime",
        "secrets",
        "security_opt",
        "shm_size",
        "storage_opt",
        "sysctls",
        "tty",
        "use_api_socket",
        "userns_mode",
        "uts",
        "volumes_from",
    ),
)

VOLUME_TOP = Either(
    Scalar("null", type(None)),
    Obj(
        {
            "name": STR,
            "external": BOOL,
            "labels": ENV,
            "driver": STR,
            "driver_opts": MapOf(STR_NUM),
        },
    ),
    what="a mapping or null",
)
NETWORK_TOP = Either(
    Scalar("null", type(None)),
    Obj(
        {"name": STR, "external": BOOL, "labels": ENV, "driver": STR, "internal": BOOL},
        unsupported=("attachable", "driver_opts", "enable_ipv4", "enable_ipv6", "ipam"),
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
    },
    unsupported=("secrets", "configs", "include", "models"),
)


def validate(doc: Any, positions: Positions) -> tuple[list[Problem], list[Problem]]:
    """(errors, warnings) for one (merged, interpolated) document."""
    ctx = Ctx(positions)
    if not isinstance(doc, dict):
        ctx.errors.append(Problem(positions.get(()), "top level must be a mapping"))
        return ctx.errors, ctx.warnings
    PROJECT.check(doc, (), ctx)
    if "version" in doc:
        ctx.warnings.append(
            Problem(
                positions.key(("version",)),
                "the attribute `version` is obsolete, it will be ignored",
            )
        )
    return ctx.errors, ctx.warnings
