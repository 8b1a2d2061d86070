"""Kubernetes probes (liveness, readiness, startup; exec, httpGet, tcpSocket): the pure
core.  Records, the label they travel in, and the counting rules.

How they travel: a container's probes are JSON in the PROBES_LABEL label (`kube play`
writes it; any client may), read at each start by the prober (`prober.py`), which
the engine starts beside Docker's health checks.  A container has one or the other:
a Docker Healthcheck and Kubernetes probes together are refused at create.

The rules, as the kubelet applies them (k8s.io/kubernetes/pkg/kubelet/prober):
- every probe waits `initialDelaySeconds` from the start, then runs every
  `periodSeconds` with `timeoutSeconds`; a result flips only after
  `successThreshold` successes or `failureThreshold` failures in a row;
- a startup probe holds the other two until it succeeds once; if it fails
  `failureThreshold` times the container is killed (restarted by its policy);
- a failed liveness probe kills the container (restarted by its policy);
- readiness only says whether the container is ready; corral shows it as the
  container's health (`starting` until the first verdict, then healthy/unhealthy),
  which `ps`, `inspect` and `pod inspect` show.
- httpGet succeeds on a status of 200-399, tcpSocket when a connection opens, exec
  on exit code 0; they go to the pod's IP (as the kubelet, from the host side of
  the pod's network), or 127.0.0.1 for a host-network pod.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

PROBES_LABEL = "io.corral.pod.probes"
KINDS = ("startup", "liveness", "readiness")
SECOND = 1_000_000_000


class ProbeError(ValueError):
    """A probe record that cannot run, named by its path."""


@dataclass(frozen=True)
class Probe:
    kind: str  # startup, liveness, readiness
    action: str  # exec, httpGet, tcpSocket
    command: tuple[str, ...] = ()
    port: int = 0
    path: str = "/"
    host: str = ""  # "" for the pod's IP
    headers: tuple[tuple[str, str], ...] = ()
    initial_delay: float = 0.0  # seconds
    period: float = 10.0
    timeout: float = 1.0
    success_threshold: int = 1
    failure_threshold: int = 3


def _int(raw: dict[str, Any], key: str, default: int, where: str, minimum: int) -> int:
    value = raw.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ProbeError(f"{where}.{key} must be a whole number >= {minimum}")
    return value


def from_kube(kind: str, raw: Any, where: str,
              named_ports: dict[str, int] | None = None) -> Probe:
    """A Kubernetes probe object (`livenessProbe: {...}`) -> Probe, or ProbeError."""
    if not isinstance(raw, dict):
        raise ProbeError(f"{where} must be a mapping")
    actions = [a for a in ("exec", "httpGet", "tcpSocket", "grpc") if a in raw]
    if len(actions) != 1:
        raise ProbeError(f"{where} needs exactly one of exec, httpGet, tcpSocket")
    action = actions[0]
    if action == "grpc":
        raise ProbeError(f"field {where}.grpc is not supported by corral")
    known = {action, "initialDelaySeconds", "periodSeconds", "timeoutSeconds",
             "successThreshold", "failureThreshold"}
    for key in raw:
        if key not in known:
            raise ProbeError(f"field {where}.{key} is not supported by corral")
    success = _int(raw, "successThreshold", 1, where, 1)
    if kind != "readiness" and success != 1:
        raise ProbeError(f"{where}.successThreshold must be 1 for a {kind} probe")
    common = {
        "initial_delay": float(_int(raw, "initialDelaySeconds", 0, where, 0)),
        "period": float(_int(raw, "periodSeconds", 10, where, 1)),
        "timeout": float(_int(raw, "timeoutSeconds", 1, where, 1)),
        "success_threshold": success,
        "failure_threshold": _int(raw, "failureThreshold", 3, where, 1),
    }
    body = raw[action]
    if not isinstance(body, dict):
        raise ProbeError(f"{where}.{action} must be a mapping")
    at = f"{where}.{action}"
    if action == "exec":
        _only(body, {"command"}, at)
        command = tuple(str(a) for a in body.get("command") or [])
        if not command:
            raise ProbeError(f"{at}.command is required")
        return Probe(kind, action, command=command, **common)  # type: ignore[arg-type]
    allowed = {"port", "host"} | ({"path", "scheme", "httpHeaders"} if action == "httpGet"
                                  else set())
    _only(body, allowed, at)
    port = _port(body.get("port"), at, named_ports or {})
    if str(body.get("scheme") or "HTTP").upper() != "HTTP":
        raise ProbeError(f"{at}.scheme {body.get('scheme')} is not supported by corral")
    headers = []
    for i, h in enumerate(body.get("httpHeaders") or []):
        if not isinstance(h, dict) or set(h) != {"name", "value"}:
            raise ProbeError(f"{at}.httpHeaders[{i}] needs name and value")
        headers.append((str(h["name"]), str(h["value"])))
    return Probe(kind, action, port=port, path=str(body.get("path") or "/"),
                 host=str(body.get("host") or ""), headers=tuple(headers),
                 **common)  # type: ignore[arg-type]


def _only(body: dict[str, Any], allowed: set[str], where: str) -> None:
    for key in body:
        if key not in allowed:
            raise ProbeError(f"field {where}.{key} is not supported by corral")


def _port(value: Any, where: str, named: dict[str, int]) -> int:
    if isinstance(value, str) and not value.isdigit():
        if value not in named:
            raise ProbeError(f"{where}.port {value} names no port of the container")
        return named[value]
    try:
        port = int(value)
    except (TypeError, ValueError):
        raise ProbeError(f"{where}.port is required (a number or a port's name)") from None
    if not 0 < port < 65536:
        raise ProbeError(f"{where}.port {port} is out of range")
    return port


def to_kube(p: Probe) -> dict[str, Any]:
    """The Kubernetes form back (for `kube generate`)."""
    out: dict[str, Any] = {}
    if p.action == "exec":
        out["exec"] = {"command": list(p.command)}
    else:
        body: dict[str, Any] = {"port": p.port}
        if p.host:
            body["host"] = p.host
        if p.action == "httpGet":
            body["path"] = p.path
            if p.headers:
                body["httpHeaders"] = [{"name": k, "value": v} for k, v in p.headers]
        out[p.action] = body
    out.update({"initialDelaySeconds": int(p.initial_delay), "periodSeconds": int(p.period),
                "timeoutSeconds": int(p.timeout), "successThreshold": p.success_threshold,
                "failureThreshold": p.failure_threshold})
    return out


def encode(probes: list[Probe]) -> str:
    return json.dumps({p.kind: to_kube(p) for p in probes}, sort_keys=True)


def decode(labels: dict[str, Any] | None) -> list[Probe]:
    """The probes a container's labels carry ([] for none); ProbeError if malformed."""
    raw = (labels or {}).get(PROBES_LABEL)
    if not raw:
        return []
    try:
        doc = json.loads(str(raw))
    except ValueError:
        raise ProbeError(f"label {PROBES_LABEL} is not JSON") from None
    if not isinstance(doc, dict):
        raise ProbeError(f"label {PROBES_LABEL} must be a JSON object")
    out = []
    for kind, body in doc.items():
        if kind not in KINDS:
            raise ProbeError(f"label {PROBES_LABEL}: {kind} is not one of {', '.join(KINDS)}")
        out.append(from_kube(kind, body, f"{PROBES_LABEL}.{kind}"))
    return sorted(out, key=lambda p: KINDS.index(p.kind))


@dataclass
class Counter:
    """One probe's consecutive results, and the verdict they give (None: none yet)."""

    probe: Probe
    successes: int = 0
    failures: int = 0
    verdict: bool | None = None
    history: list[bool] = field(default_factory=list)

    def observe(self, ok: bool) -> bool | None:
        """Count a result; the new verdict when it flips (or is first given), else None."""
        if ok:
            self.successes, self.failures = self.successes + 1, 0
            flips = self.successes >= self.probe.success_threshold and self.verdict is not True
        else:
            self.successes, self.failures = 0, self.failures + 1
            flips = self.failures >= self.probe.failure_threshold and self.verdict is not False
        if not flips:
            return None
        self.verdict = ok
        return ok


def http_status_ok(status: int) -> bool:
    """The kubelet's rule: 200 <= status < 400."""
    return 200 <= status < 400


def http_request(p: Probe, host: str) -> bytes:
    """The probe's GET, as the kubelet sends it (its User-Agent, `Connection: close`)."""
    names = {k.lower() for k, _ in p.headers}
    lines = [f"GET {p.path or '/'} HTTP/1.1"]
    if "host" not in names:
        lines.append(f"Host: {host}:{p.port}")
    if "user-agent" not in names:
        lines.append("User-Agent: kube-probe/corral")
    if "accept" not in names:
        lines.append("Accept: */*")
    lines += [f"{k}: {v}" for k, v in p.headers]
    lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def http_status(head: bytes) -> int | None:
    """The status code of a response's first line (None until a whole line came)."""
    line, sep, _ = head.partition(b"\r\n")
    if not sep:
        return None
    parts = line.split()
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        return 0
    return int(parts[1])
