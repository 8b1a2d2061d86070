"""Request bodies checked against the Engine API's types, at the edge. Pure.

dockerd decodes every body into Go structs with encoding/json, so a value of the
wrong type is a 400 before any handler runs, worded by Go:

    invalid JSON: json: cannot unmarshal string into Go struct field
    HostConfig.HostConfig.Memory of type int64

`check(body, struct)` does the same walk over the table in `types.py`: the first
mismatch in document order raises `InvalidArgument` with that wording (Go names the
innermost struct, then the path of field names from the top, then the Go type).
What passes comes back normalized as Go would read it: field names matched
case-insensitively are given their canonical spelling, a lone string where a
`StrSlice` is expected becomes a list of one (`CapAdd: "ALL"` is `["ALL"]`, as in
Docker).  Fields the types do not know are kept as sent (dockerd drops them; no
handler reads them).

`parse_json` reads the body as dockerd's decoder does where Python's differs: no
NaN/Infinity, UTF-8 only, lone surrogates replaced, nesting bounded (Python's
parser would raise RecursionError).  `check_create`, `check_exec` etc. add the
checks dockerd makes after decoding (environment names, `--add-host`, ports, working
directory, capabilities), plus refusals of what would be written into a container's
/etc files or argv verbatim: a newline in `Dns`, `ExtraHosts`, `Hostname` ends up
as a line of its own in /etc/hosts or resolv.conf.
"""

from __future__ import annotations

import ipaddress
import json
import re
from typing import Any, Final

from supervisor.engine import update as update_fields
from supervisor.errors import InvalidArgument

from .types import GoType, Map, Scalar, Slice, StrSlice, Struct, go_name

MAX_DEPTH: Final = 100  # Docker bodies nest 7 deep at most; Go's own bound is 10000
PREFIX: Final = "invalid JSON: "

_RANGES: Final = {
    ("int", 64): (-(1 << 63), (1 << 63) - 1),
    ("uint", 64): (0, (1 << 64) - 1),
    ("uint", 32): (0, (1 << 32) - 1),
    ("uint", 16): (0, (1 << 16) - 1),
}


class _Float(float):
    """A JSON number with a fraction or exponent, keeping its text for Go's message."""

    text: str

    def __new__(cls, text: str) -> _Float:
        self = super().__new__(cls, text)
        self.text = text
        return self


def _no_constant(name: str) -> Any:
    raise ValueError(f"invalid character {name[0]!r} looking for beginning of value")


_SURROGATE = re.compile("[\ud800-\udfff]")


def parse_json(data: bytes) -> Any:
    """The body as JSON, or InvalidArgument naming what is wrong with it."""
    text = data.decode("utf-8", errors="replace")
    try:
        value = json.loads(text, parse_float=_Float, parse_constant=_no_constant)
    except RecursionError:
        raise InvalidArgument(f"{PREFIX}nesting deeper than {MAX_DEPTH} levels") from None
    except ValueError as e:
        raise InvalidArgument(f"{PREFIX}{e}") from None
    _check_depth(value)
    return _clean(value)


def _check_depth(value: Any) -> None:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, dict | list):
            if depth > MAX_DEPTH:
                raise InvalidArgument(f"{PREFIX}nesting deeper than {MAX_DEPTH} levels")
            items = v.values() if isinstance(v, dict) else v
            stack.extend((x, depth + 1) for x in items if isinstance(x, dict | list))


def _clean(v: Any) -> Any:
    """Lone surrogates (`"\\ud800"`) become U+FFFD, as Go decodes them: such a
    string could not be stored or sent back as UTF-8."""
    if isinstance(v, str):
        return _SURROGATE.sub("\ufffd", v)
    if isinstance(v, list):
        return [_clean(x) for x in v]
    if isinstance(v, dict):
        return {_clean(k): _clean(x) for k, x in v.items()}
    return v


# -- the type walk ---------------------------------------------------------------------


def json_kind(v: Any) -> str:
    """How Go's errors name a JSON value's kind."""
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int | float):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"


def _zero(t: GoType) -> Any:
    """Go's zero value, which a null element of a slice or map becomes (`["a", null]`
    is `["a", ""]` in a []string): handlers then see the types they expect."""
    if isinstance(t, Scalar):
        return {"string": "", "bool": False, "int": 0, "uint": 0, "float": 0.0}.get(t.kind)
    if isinstance(t, Struct):
        return {}
    return None


class _Walk:
    def __init__(self, root: Struct) -> None:
        self.root = root
        self.struct = ""  # innermost struct (Go's errorContext.Struct)
        self.path: list[str] = []  # field names from the top (errorContext.FieldStack)

    def fail(self, value: str, t: GoType | str) -> InvalidArgument:
        type_name = t if isinstance(t, str) else go_name(t)
        where = f"Go struct field {self.struct}.{'.'.join(self.path)}" if self.path else "Go value"
        return InvalidArgument(
            f"{PREFIX}json: cannot unmarshal {value} into {where} of type {type_name}"
        )

    def value(self, v: Any, t: GoType) -> Any:
        if v is None:
            return None  # null leaves Go's zero value: accepted for every type
        if isinstance(t, Scalar):
            return self.scalar(v, t)
        if isinstance(t, StrSlice):
            if isinstance(v, str):
                return [v]
            if isinstance(v, list) and all(isinstance(x, str) or x is None for x in v):
                return ["" if x is None else x for x in v]
            raise self.fail(json_kind(v), "string")  # the error of its second try
        if isinstance(t, Slice):
            if not isinstance(v, list):
                raise self.fail(json_kind(v), t)
            return [_zero(t.elem) if x is None else self.value(x, t.elem) for x in v]
        if isinstance(t, Map):
            if not isinstance(v, dict):
                raise self.fail(json_kind(v), t)
            return {k: _zero(t.elem) if x is None else self.value(x, t.elem) for k, x in v.items()}
        return self.struct_value(v, t)

    def scalar(self, v: Any, t: Scalar) -> Any:
        kind = json_kind(v)
        if t.kind == "any":
            return v
        if t.kind == "string":
            if kind != "string":
                raise self.fail(kind, t)
        elif t.kind == "bool":
            if kind != "bool":
                raise self.fail(kind, t)
        elif kind != "number":
            raise self.fail(kind, t)
        elif t.kind != "float":
            if isinstance(v, float):
                raise self.fail(f"number {getattr(v, 'text', repr(v))}", t)
            lo, hi = _RANGES[(t.kind, t.bits)]
            if not lo <= v <= hi:
                raise self.fail(f"number {v}", t)
        return v

    def struct_value(self, v: Any, t: Struct) -> Any:
        if not isinstance(v, dict):
            raise self.fail(json_kind(v), t)
        folded = {name.lower(): name for name in t.fields}
        out: dict[str, Any] = {}
        outer_struct, depth = self.struct, len(self.path)
        for key, x in v.items():
            name = key if key in t.fields else folded.get(key.lower())
            if name is None:
                out[key] = x  # unknown to the API: kept as sent, read by nobody
                continue
            self.struct = t.name
            self.path.append(name)
            out[name] = self.value(x, t.fields[name])
            del self.path[depth:]
            self.struct = outer_struct
        return out


def check(body: Any, root: Struct) -> dict[str, Any]:
    """`body` decoded into `root` as dockerd would: normalized, or InvalidArgument."""
    if body is None:
        return {}
    out = _Walk(root).value(body, root)
    assert isinstance(out, dict)
    return out


# -- what dockerd checks once a body is decoded -----------------------------------------

#: Linux capabilities (capability.h, through CAP_CHECKPOINT_RESTORE of Linux 5.9)
CAPABILITIES: Final = frozenset(
    "CAP_" + n
    for n in [
        "CHOWN",
        "DAC_OVERRIDE",
        "DAC_READ_SEARCH",
        "FOWNER",
        "FSETID",
        "KILL",
        "SETGID",
        "SETUID",
        "SETPCAP",
        "LINUX_IMMUTABLE",
        "NET_BIND_SERVICE",
        "NET_BROADCAST",
        "NET_ADMIN",
        "NET_RAW",
        "IPC_LOCK",
        "IPC_OWNER",
        "SYS_MODULE",
        "SYS_RAWIO",
        "SYS_CHROOT",
        "SYS_PTRACE",
        "SYS_PACCT",
        "SYS_ADMIN",
        "SYS_BOOT",
        "SYS_NICE",
        "SYS_RESOURCE",
        "SYS_TIME",
        "SYS_TTY_CONFIG",
        "MKNOD",
        "LEASE",
        "AUDIT_WRITE",
        "AUDIT_CONTROL",
        "SETFCAP",
        "MAC_OVERRIDE",
        "MAC_ADMIN",
        "SYSLOG",
        "WAKE_ALARM",
        "BLOCK_SUSPEND",
        "AUDIT_READ",
        "PERFMON",
        "BPF",
        "CHECKPOINT_RESTORE",
    ]
)

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DOMAIN = re.compile(
    r"(?:[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9])"
    r"(?:\.(?:[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9]))*\.?"
)
_PORT = re.compile(r"(\d+)(?:-(\d+))?")


def go_quote(s: str) -> str:
    """Go's %q: a double-quoted string with control characters escaped."""
    out = ['"']
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch in "\a\b\f\n\r\t\v":
            out.append("\\" + "abfnrtv"["\a\b\f\n\r\t\v".index(ch)])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _ip(text: str) -> str | None:
    """Go's net.ParseIP after TrimSpace: the trimmed text, or None if not an IP."""
    trimmed = text.strip(" \t\n\r\v\f")
    try:
        ipaddress.ip_address(trimmed)
    except ValueError:
        return None
    return trimmed


def _strings(value: Any) -> list[str]:
    return [x for x in (value or []) if isinstance(x, str)]


def _check_env(env: Any) -> None:
    for item in _strings(env):
        name = item.partition("=")[0]
        if not name:
            raise InvalidArgument(f"invalid environment variable: {item}")
        if "\x00" in item:
            raise InvalidArgument(
                f"invalid environment variable: {go_quote(item)} contains a NUL byte"
            )


def _check_argv(field: str, argv: Any) -> None:
    for arg in _strings(argv):
        if "\x00" in arg:
            raise InvalidArgument(f"invalid {field}: argument {go_quote(arg)} contains a NUL byte")


def _check_caps(field: str, caps: Any) -> None:
    for cap in _strings(caps):
        upper = cap.upper()
        if upper == "ALL":
            continue
        if (upper if upper.startswith("CAP_") else "CAP_" + upper) not in CAPABILITIES:
            raise InvalidArgument(f"invalid {field}: unknown capability: {go_quote(cap)}")


def _valid_port(text: str, allow_empty: bool) -> bool:
    if text == "":
        return allow_empty
    m = _PORT.fullmatch(text)
    if not m:
        return False
    lo = int(m.group(1))
    hi = int(m.group(2)) if m.group(2) else lo
    return lo <= hi <= 65535


#: go-units' ulimitNameMapping (what dockerd turns into rlimits; "as" is left out there)
ULIMITS: Final = frozenset(
    {
        *("core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice"),
        *("nofile", "nproc", "rss", "rtprio", "rttime", "sigpending", "stack"),
    }
)


def _check_ulimits(ulimits: Any) -> None:
    for u in ulimits or []:
        if not isinstance(u, dict):
            continue
        name = u.get("Name") or ""
        if name not in ULIMITS:
            raise InvalidArgument(f"invalid ulimit name {name}")
        soft, hard = u.get("Soft") or 0, u.get("Hard") or 0
        if soft > hard and hard >= 0:
            raise InvalidArgument(
                f"ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"
            )


def _check_host_config(hc: dict[str, Any]) -> None:
    _check_ulimits(hc.get("Ulimits"))
    extra = []
    for entry in _strings(hc.get("ExtraHosts")):
        name, sep, ip = entry.partition(":")
        if not sep or not name or _CONTROL.search(name) or " " in name:
            raise InvalidArgument(f"bad format for add-host: {go_quote(entry)}")
        if ip == "host-gateway":
            extra.append(entry)
            continue
        trimmed = _ip(ip.removeprefix("[").removesuffix("]"))
        if trimmed is None:
            raise InvalidArgument(f"invalid IP address in add-host: {go_quote(ip)}")
        extra.append(f"{name}:{trimmed}")
    if extra:
        hc["ExtraHosts"] = extra
    dns = []
    for server in _strings(hc.get("Dns")):
        trimmed = _ip(server)
        if trimmed is None:
            raise InvalidArgument(f"IP address is not correctly formatted: {go_quote(server)}")
        dns.append(trimmed)
    if dns:
        hc["Dns"] = dns
    for domain in _strings(hc.get("DnsSearch")):
        d = domain.strip(" ")
        if d != "." and not (_DOMAIN.fullmatch(d) and re.search("[A-Za-z]", d) and len(d) < 255):
            raise InvalidArgument(f"{go_quote(domain)} is not a valid domain")
    for option in _strings(hc.get("DnsOptions")):
        if not option or _CONTROL.search(option) or " " in option:
            raise InvalidArgument(f"invalid DNS option: {go_quote(option)}")
    _check_caps("CapAdd", hc.get("CapAdd"))
    _check_caps("CapDrop", hc.get("CapDrop"))
    for port, bindings in (hc.get("PortBindings") or {}).items():
        number = port.partition("/")[0]
        if not _valid_port(number, allow_empty=False):
            raise InvalidArgument(f"invalid port specification: {go_quote(number)}")
        for binding in bindings or []:
            host_port = (binding or {}).get("HostPort") or ""
            if not _valid_port(host_port.partition("/")[0], allow_empty=True):
                raise InvalidArgument(f"invalid port specification: {go_quote(host_port)}")
    for key in hc.get("Annotations") or {}:
        if key == "":
            raise InvalidArgument(
                "invalid Annotations: the empty string is not permitted as an annotation key"
            )


def _check_endpoints(endpoints: Any) -> None:
    for settings in (endpoints or {}).values():
        ipam = (settings or {}).get("IPAMConfig") or {}
        v4, v6 = ipam.get("IPv4Address") or "", ipam.get("IPv6Address") or ""
        if v4 and (_ip(v4) is None or ":" in v4 or v4 != v4.strip()):
            raise InvalidArgument(f"invalid IPv4 address: {v4}")
        if v6 and (_ip(v6) is None or ":" not in v6 or v6 != v6.strip()):
            raise InvalidArgument(f"invalid IPv6 address: {v6}")
        for addr in _strings(ipam.get("LinkLocalIPs")):
            if _ip(addr) is None or addr != addr.strip():
                raise InvalidArgument(f"invalid link-local IP address: {addr}")


def _check_config(body: dict[str, Any]) -> None:
    _check_env(body.get("Env"))
    for field in ("Cmd", "Entrypoint"):
        _check_argv(field, body.get(field))
    wd = body.get("WorkingDir") or ""
    if wd and not wd.startswith("/"):
        raise InvalidArgument(
            f"the working directory '{wd}' is invalid, it needs to be an absolute path"
        )
    for field in ("Hostname", "Domainname"):
        value = body.get(field) or ""
        if _CONTROL.search(value) or " " in value:
            raise InvalidArgument(f"invalid {field} {go_quote(value)}: not a valid host name")


def check_create(body: Any) -> dict[str, Any]:
    """POST /containers/create: typed as `container.CreateRequest`, then dockerd's checks."""
    from .types import CREATE_REQUEST

    out = check(body, CREATE_REQUEST)
    _check_config(out)
    if isinstance(out.get("HostConfig"), dict):
        _check_host_config(out["HostConfig"])
    if isinstance(out.get("NetworkingConfig"), dict):
        _check_endpoints(out["NetworkingConfig"].get("EndpointsConfig"))
    return out


def check_exec(body: Any) -> dict[str, Any]:
    """POST /containers/{id}/exec: `container.ExecOptions`."""
    from .types import EXEC_OPTIONS

    out = check(body, EXEC_OPTIONS)
    _check_env(out.get("Env"))
    _check_argv("Cmd", out.get("Cmd"))
    wd = out.get("WorkingDir") or ""
    if wd and not wd.startswith("/"):
        raise InvalidArgument(
            f"the working directory '{wd}' is invalid, it needs to be an absolute path"
        )
    return out


def check_network_connect(body: Any) -> dict[str, Any]:
    from .types import NETWORK_CONNECT

    out = check(body, NETWORK_CONNECT)
    if isinstance(out.get("EndpointConfig"), dict):
        _check_endpoints({"": out["EndpointConfig"]})
    return out


#: what `docker update` changes in corral (engine/update.py owns the table); the other
#: Resources are refused by name when set, rather than stored and never applied
UPDATE_APPLIED: Final = update_fields.APPLIED


def check_update(body: Any) -> dict[str, Any]:
    """POST /containers/{id}/update: `container.UpdateConfig`.

    The docker CLI sends every field, zero when not given: only set ones count."""
    from .types import UPDATE_CONFIG

    out = check(body, UPDATE_CONFIG)
    for key, value in out.items():
        if (
            key in UPDATE_CONFIG.fields
            and key not in UPDATE_APPLIED
            and value not in (None, 0, "", [], {}, False)
        ):
            raise InvalidArgument(f"docker update: {key} is not supported by corral")
    return out
