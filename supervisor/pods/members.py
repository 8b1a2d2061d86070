"""Joining a pod: a create body with POD_LABEL becomes a member of that pod's infra.

Done by the daemon (called from the engine's create and start), so every client
joins pods one way: corral's `run --pod NAME`, `kube play`, or any Docker client
setting the label.  At create the body is checked and pointed at the infra's
network (`container:<infra id>`; ports belong to the pod, as in Kubernetes), its IPC
(`--ipc container:<infra id>`, /dev/shm with it; the infra is `shareable`) and, when
the pod shares pid, its PID namespace (`--pid container:`, catatonit as PID 1); a pod
that does not share ipc gives each member an IPC namespace and /dev/shm of its own,
as podman's does; at start
the member joins the infra's uts namespace by `/proc/<pid>/ns/uts` (the infra must
be running, as `--network container:` needs)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol, TypeVar

from supervisor.errors import Conflict, InvalidArgument, NotFound
from supervisor.pods import probes
from supervisor.pods.labels import DEFAULT_SHARE, INFRA_LABEL, POD_LABEL, SHARE_LABEL


class _Record(Protocol):
    """What is read of a container record (engine/containers.Container)."""

    id: str
    name: str
    config: dict[str, Any]


R = TypeVar("R", bound=_Record)


def pod_of(labels: Mapping[str, Any] | None) -> str:
    """The pod a member's labels name ("" for none, and for an infra)."""
    labels = labels or {}
    if labels.get(INFRA_LABEL) == "true":
        return ""
    return str(labels.get(POD_LABEL) or "")


def share_of(infra_labels: Mapping[str, Any] | None) -> tuple[str, ...]:
    raw = (infra_labels or {}).get(SHARE_LABEL)
    if raw is None:
        return DEFAULT_SHARE
    return tuple(s for s in str(raw).split(",") if s)


def find_infra(pod: str, containers: Iterable[_Record]) -> _Record:
    for c in containers:
        labels = c.config.get("Labels") or {}
        if labels.get(INFRA_LABEL) == "true" and labels.get(POD_LABEL) == pod:
            return c
    raise NotFound(f"no such pod: {pod}")


def join(body: dict[str, Any], containers: Iterable[_Record]) -> None:
    """Point a member's create body at its pod's infra (in place), or refuse it; and
    check the Kubernetes probes a body's labels carry (any container may have them)."""
    try:
        if probes.decode(body.get("Labels")) and (body.get("Healthcheck") or {}).get("Test"):
            raise InvalidArgument(f"label {probes.PROBES_LABEL}: Kubernetes probes and a "
                                  "health check cannot be set together")
    except probes.ProbeError as exc:
        raise InvalidArgument(str(exc)) from None
    labels = body.get("Labels") or {}
    if labels.get(INFRA_LABEL) == "true" and labels.get(POD_LABEL):
        hc = body.get("HostConfig") or {}
        body["HostConfig"] = hc
        if "ipc" in share_of(labels) and not hc.get("IpcMode"):
            hc["IpcMode"] = "shareable"  # its members join it (and its /dev/shm)
        return
    _join_member(body, containers)


def _join_member(body: dict[str, Any], containers: Iterable[_Record]) -> None:
    labels = body.get("Labels") or {}
    pod = pod_of(labels)
    if not pod:
        return
    infra = find_infra(pod, containers)
    hc = body.setdefault("HostConfig", {}) or {}
    body["HostConfig"] = hc
    share = share_of(infra.config.get("Labels"))
    mine = ("", f"container:{infra.name}", f"container:{infra.id}")
    if "ipc" in share:
        ipc = str(hc.get("IpcMode") or "")
        if ipc not in mine:
            raise InvalidArgument(f"container of pod {pod}: its IPC namespace is the pod's, "
                                  f"--ipc {ipc} cannot be set")
        if hc.get("ShmSize"):
            raise InvalidArgument(f"container of pod {pod}: its /dev/shm is the pod's (it "
                                  "shares ipc), --shm-size cannot be set: set it on the pod "
                                  "(`corral pod create --shm-size`)")
        hc["IpcMode"] = f"container:{infra.id}"
    if "pid" in share:
        pid = str(hc.get("PidMode") or "")
        if pid not in mine:
            raise InvalidArgument(f"container of pod {pod}: its PID namespace is the pod's "
                                  f"(it shares pid), --pid {pid} cannot be set")
        hc["PidMode"] = f"container:{infra.id}"  # the infra's catatonit is its PID 1
    mode = str(hc.get("NetworkMode") or "default")
    if mode not in ("default", f"container:{infra.name}", f"container:{infra.id}"):
        raise InvalidArgument(f"container of pod {pod}: its network is the pod's, "
                              f"--network {mode} cannot be set")
    if hc.get("PortBindings") or hc.get("PublishAllPorts"):
        raise InvalidArgument(f"container of pod {pod}: ports are published on the pod "
                              "(`corral pod create -p`), not on its containers")
    if body.get("Hostname"):
        raise InvalidArgument(f"container of pod {pod}: the hostname is the pod's "
                              "(`corral pod create --hostname`)")
    hc["NetworkMode"] = f"container:{infra.id}"


def namespaces(c: _Record, containers: Iterable[_Record],
               pid_of: Callable[[Any], int | None]) -> dict[str, str]:
    """The uts namespace a member joins at start (type -> path); {} for others (its
    ipc is its IpcMode, `container:<infra>`, which the engine joins with /dev/shm).
    `pid_of` gives a running container's init pid (None when it does not run)."""
    pod = pod_of(c.config.get("Labels"))
    if not pod:
        return {}
    infra = find_infra(pod, containers)
    shared = [ns for ns in share_of(infra.config.get("Labels")) if ns == "uts"]
    if not shared:
        return {}
    infra_pid = pid_of(infra)
    if not infra_pid:
        raise Conflict(f"pod {pod} is not running: start it first (`corral pod start {pod}`)")
    return {ns: f"/proc/{infra_pid}/ns/{ns}" for ns in shared}


def members_of(infra: _Record, containers: Iterable[R]) -> list[R]:
    """The containers joined to `infra` (none when it is not a pod's infra)."""
    labels = infra.config.get("Labels") or {}
    if labels.get(INFRA_LABEL) != "true":
        return []
    pod = str(labels.get(POD_LABEL) or "")
    return [c for c in containers if c.id != infra.id
            and pod_of(c.config.get("Labels")) == pod]


def check_remove(infra: _Record, containers: Iterable[R], *, force: bool) -> list[R]:
    """What removing `infra` removes first (its members, when forced, as `pod rm -f`);
    unforced, a pod's infra with members is refused (their namespaces are its)."""
    members = members_of(infra, containers)
    if members and not force:
        pod = (infra.config.get("Labels") or {}).get(POD_LABEL)
        raise Conflict(f'cannot remove container "/{infra.name}": it is the infra of pod '
                       f"{pod}, which has {len(members)} container(s): remove the pod "
                       f"(`corral pod rm {pod}`) or force remove")
    return members



def pod_ready(members: Iterable[tuple[bool, str | None]]) -> bool:
    """Kubernetes' pod Ready condition, what its Services' endpoints follow: every
    container (running, its readiness health) is running and not unhealthy nor still
    starting.  A pod of no member yet gates nothing (its infra alone serves no port)."""
    return all(running and health not in ("unhealthy", "starting")
               for running, health in members)
