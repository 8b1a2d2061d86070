"""Short syntaxes → compose's long syntax, per file, before files are merged.

Merging works on one shape: `environment`/`labels` lists become mappings, `depends_on`
and service `networks` lists become mappings, `ports` and `volumes` strings become their
long form (so an override can replace a volume by its target). Doing it per file keeps
every error at the file:line:col where the short string was written. Pure.
"""

from __future__ import annotations

import re
from typing import Any

from config.errors import Path, Positions, Problem
from config.scalars import text_of


class Shaper:
    def __init__(self, positions: Positions, project_dir: str) -> None:
        self.positions = positions
        self.project_dir = project_dir
        self.errors: list[Problem] = []

    def fail(self, path: Path, message: str) -> None:
        self.errors.append(Problem(self.positions.get(path), message))

    # -- whole document ----------------------------------------------------------------
    def document(self, doc: dict[str, Any]) -> dict[str, Any]:
        out = dict(doc)
        services = doc.get("services")
        if isinstance(services, dict):
            out["services"] = {
                str(name): self.service(svc, ("services", str(name)))
                if isinstance(svc, dict)
                else svc
                for name, svc in services.items()
            }
        for key in ("volumes", "networks"):
            section = doc.get(key)
            if isinstance(section, dict):
                out[key] = {
                    str(k): (dict(v) if isinstance(v, dict) else {}) for k, v in section.items()
                }
                for v in out[key].values():
                    if "labels" in v:
                        v["labels"] = to_mapping(v["labels"])
        return out

    def service(self, svc: dict[str, Any], path: Path) -> dict[str, Any]:
        s = {str(k): v for k, v in svc.items()}
        for key in ("environment", "labels"):
            if key in s:
                s[key] = to_mapping(s[key], keep_none=key == "environment")
        if isinstance(s.get("extends"), str):
            s["extends"] = {"service": s["extends"]}
        if isinstance(s.get("build"), str):
            s["build"] = {"context": s["build"]}
        if isinstance(s.get("build"), dict) and "args" in s["build"]:
            s["build"] = {**s["build"], "args": to_mapping(s["build"]["args"], keep_none=True)}
        if isinstance(s.get("build"), dict) and "labels" in s["build"]:
            s["build"] = {**s["build"], "labels": to_mapping(s["build"]["labels"])}
        if isinstance(s.get("depends_on"), list):
            s["depends_on"] = {
                str(d): {"condition": "service_started", "required": True} for d in s["depends_on"]
            }
        elif isinstance(s.get("depends_on"), dict):
            s["depends_on"] = {
                str(d): {
                    "condition": (v or {}).get("condition", "service_started"),
                    "required": (v or {}).get("required", True),
                    **({"restart": v["restart"]} if v and "restart" in v else {}),
                }
                for d, v in s["depends_on"].items()
            }
        if isinstance(s.get("networks"), list):
            s["networks"] = {str(n): None for n in s["networks"]}
        if isinstance(s.get("ports"), list):
            ports: list[dict[str, Any]] = []
            for i, p in enumerate(s["ports"]):
                ports.extend(self.port(p, (*path, "ports", i)))
            s["ports"] = ports
        if isinstance(s.get("expose"), list):
            s["expose"] = [str(e) for e in s["expose"]]
        if isinstance(s.get("volumes"), list):
            s["volumes"] = [
                self.volume(v, (*path, "volumes", i)) for i, v in enumerate(s["volumes"])
            ]
        for key in ("tmpfs", "dns", "dns_search"):
            if isinstance(s.get(key), str):
                s[key] = [s[key]]
        if isinstance(s.get("env_file"), str):
            s["env_file"] = [s["env_file"]]
        if isinstance(s.get("env_file"), list):
            s["env_file"] = [
                e if isinstance(e, dict) else {"path": e, "required": True} for e in s["env_file"]
            ]
        if isinstance(s.get("extra_hosts"), dict):
            s["extra_hosts"] = [
                f"{h}={ip}"
                for h, ips in s["extra_hosts"].items()
                for ip in (ips if isinstance(ips, list) else [ips])
            ]
        if isinstance(s.get("healthcheck"), dict) and isinstance(s["healthcheck"].get("test"), str):
            hc = dict(s["healthcheck"])
            hc["test"] = ["CMD-SHELL", hc["test"]]
            s["healthcheck"] = hc
        if isinstance(s.get("devices"), list):
            s["devices"] = [
                self.device(d, (*path, "devices", i)) for i, d in enumerate(s["devices"])
            ]
        if isinstance(s.get("ulimits"), dict):
            s["ulimits"] = {
                str(k): (v if isinstance(v, dict) else {"soft": v, "hard": v})
                for k, v in s["ulimits"].items()
            }
        return s

    # -- devices -----------------------------------------------------------------------
    def device(self, spec: Any, path: Path) -> Any:
        """`HOST[:CONTAINER[:PERMS]]` → {source, target, permissions} (compose's
        short syntax; CONTAINER defaults to HOST, PERMS to rwm)."""
        if isinstance(spec, dict):
            out = dict(spec)
            out.setdefault("target", out.get("source"))
            out.setdefault("permissions", "rwm")
        elif isinstance(spec, str):
            parts = spec.split(":")
            if len(parts) > 3 or not parts[0]:
                self.fail(path, f"invalid device {spec!r}: want HOST[:CONTAINER[:PERMISSIONS]]")
                return spec
            if len(parts) == 2 and _device_mode(parts[1]):
                parts = [parts[0], parts[0], parts[1]]
            out = {"source": parts[0], "target": (parts[1:] or [parts[0]])[0],
                   "permissions": (parts[2:] or ["rwm"])[0]}
        else:
            return spec
        if not str(out["target"]).startswith("/"):
            self.fail(path, f"invalid device {spec!r}: {out['target']} is not an absolute path")
        elif not _device_mode(str(out["permissions"])):
            self.fail(path, f"invalid device {spec!r}: bad mode {out['permissions']!r} "
                      "(a combination of r, w and m)")
        return out

    # -- ports -------------------------------------------------------------------------
    def port(self, spec: Any, path: Path) -> list[dict[str, Any]]:
        if isinstance(spec, dict):
            out = {"mode": "ingress", "protocol": "tcp", **spec}
            try:
                out["target"] = int(out["target"])
            except (TypeError, ValueError):
                self.fail((*path, "target"), f"invalid container port {out['target']!r}")
                return []
            if "published" in out:
                out["published"] = str(out["published"])
            return [out]
        try:
            return parse_port(str(spec))
        except ValueError as exc:
            self.fail(path, f"invalid port {str(spec)!r}: {exc}")
            return []

    # -- volumes -----------------------------------------------------------------------
    def volume(self, spec: Any, path: Path) -> Any:
        if isinstance(spec, dict):
            v = dict(spec)
            if v.get("type") not in ("volume", "bind", "tmpfs"):
                self.fail(
                    (*path, "type"),
                    f"unsupported volume type {v.get('type')!r} (volume, bind or tmpfs)",
                )
            if not str(v.get("target", "")).startswith("/"):
                self.fail(path, "volume target must be an absolute path")
            if v.get("type") == "bind":
                if not v.get("source"):
                    self.fail(path, "a bind mount needs a source")
                else:
                    v["source"] = self.host_path(str(v["source"]))
            if isinstance(v.get("tmpfs"), dict) and "mode" in v["tmpfs"]:
                v["tmpfs"] = {**v["tmpfs"], "mode": self.tmpfs_mode(v["tmpfs"]["mode"], path)}
            return v
        try:
            return parse_volume(str(spec), self.host_path)
        except ValueError as exc:
            self.fail(path, f"invalid volume {str(spec)!r}: {exc}")
            return {"type": "volume", "target": "/"}

    def tmpfs_mode(self, mode: Any, path: Path) -> Any:
        """compose's reading: a number is the mode itself, so `01777` and `0o1777` are
        octal but `1777` is decimal (0o3361, as in compose); a string is octal digits."""
        where = (*path, "tmpfs", "mode")
        if isinstance(mode, str):
            if not re.fullmatch(r"(?:0o)?[0-7]+", mode):
                self.fail(where, f"invalid tmpfs mode {mode!r}: expected octal digits")
                return mode
            mode = int(mode.removeprefix("0o"), 8)
        if not 0 <= mode <= 0o7777:
            self.fail(where, f"invalid tmpfs mode {mode}: out of range (0 to 0o7777)")
        return mode

    def host_path(self, source: str) -> str:
        import os.path

        if source.startswith("~"):
            return os.path.expanduser(source)
        return os.path.normpath(os.path.join(self.project_dir, source))


def to_mapping(value: Any, keep_none: bool = False) -> dict[str, Any]:
    """`[K=V, K]` or `{K: V}` → `{K: "V"}`; a bare K maps to None (resolved later).

    A number's text is Go's, as compose makes it: `{V: 1.0}` gives "1"."""
    out: dict[str, Any] = {}
    if isinstance(value, list):
        for item in value:
            key, eq, val = str(item).partition("=")
            out[key] = val if eq else None
    elif isinstance(value, dict):
        for k, v in value.items():
            if v is None:
                out[str(k)] = None
            else:
                out[str(k)] = text_of(v)
    if not keep_none:
        out = {k: ("" if v is None else v) for k, v in out.items()}
    return out


_PORT = re.compile(
    r"^(?:(?P<ip>\[[0-9a-fA-F:.]+\]|\d+\.\d+\.\d+\.\d+|[0-9a-fA-F:]*::[0-9a-fA-F:]*):)?"
    r"(?:(?P<host>\d*(?:-\d+)?):)?"
    r"(?P<target>\d+(?:-\d+)?)"
    r"(?:/(?P<proto>[a-z]+))?$"
)


def _range(text: str) -> tuple[int, int]:
    lo_s, dash, hi_s = text.partition("-")
    lo = int(lo_s)
    hi = int(hi_s) if dash else lo
    if not (0 < lo <= hi <= 65535):
        raise ValueError(f"port out of range {text}")
    return lo, hi


def parse_port(spec: str) -> list[dict[str, Any]]:
    """`[ip:][host[-range]:]container[-range][/proto]` → long syntax entries."""
    m = _PORT.match(spec)
    if not m:
        raise ValueError("expected [HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTOCOL]")
    proto = m.group("proto") or "tcp"
    if proto not in ("tcp", "udp", "sctp"):
        raise ValueError(f"unknown protocol {proto!r}")
    ip = (m.group("ip") or "").strip("[]")
    clo, chi = _range(m.group("target"))
    host = m.group("host") or ""
    hosts: list[str] = [""] * (chi - clo + 1)
    if host:
        hlo, hhi = _range(host)
        if hhi - hlo == chi - clo:
            hosts = [str(hlo + i) for i in range(chi - clo + 1)]
        elif chi == clo:
            hosts = [host]  # a host range for one container port: any free one of them
        else:
            raise ValueError("host and container port ranges differ in size")
    out = []
    for i, port in enumerate(range(clo, chi + 1)):
        entry: dict[str, Any] = {"mode": "ingress", "target": port, "protocol": proto}
        if ip:
            entry["host_ip"] = ip
        if hosts[i]:
            entry["published"] = hosts[i]
        out.append(entry)
    return out


_MODES = {
    "ro",
    "rw",
    "z",
    "Z",
    "nocopy",
    "shared",
    "rshared",
    "slave",
    "rslave",
    "private",
    "rprivate",
    "delegated",
    "cached",
    "consistent",
}


def parse_volume(spec: str, host_path: Any) -> dict[str, Any]:
    """`[SOURCE:]TARGET[:MODE]` → long syntax; sources starting `.`, `/` or `~` bind."""
    parts = spec.split(":")
    if len(parts) > 3:
        raise ValueError("too many colons")
    if any(p == "" for p in parts):
        raise ValueError("empty section between colons")
    if len(parts) == 1:
        target = parts[0]
        if not target.startswith("/"):
            raise ValueError("the target must be an absolute path")
        return {"type": "volume", "target": target}
    source, target = parts[0], parts[1]
    modes = parts[2].split(",") if len(parts) == 3 else []
    if not target.startswith("/"):
        raise ValueError("the target must be an absolute path")
    bad = [m for m in modes if m not in _MODES]
    if bad:
        raise ValueError(f"unknown mode {bad[0]!r}")
    out: dict[str, Any]
    if source.startswith((".", "/", "~")):
        out = {
            "type": "bind",
            "source": host_path(source),
            "target": target,
            "bind": {"create_host_path": True},
        }
    else:
        out = {"type": "volume", "source": source, "target": target}
        if "nocopy" in modes:
            out["volume"] = {"nocopy": True}
    if "ro" in modes:
        out["read_only"] = True
    return out


def _device_mode(mode: str) -> bool:
    """r, w and m, each at most once (docker's validDeviceMode)."""
    return bool(mode) and len(set(mode)) == len(mode) and set(mode) <= set("rwm")
