"""Pods as corral keeps them: containers labelled `io.corral.kube.pod`, one of them the
infra.  Pure: list records (`GET /containers/json`) -> pods, and a pod's phase derived
from its members as Kubernetes derives it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from supervisor.pods.labels import INFRA_LABEL, POD_LABEL


@dataclass
class Pod:
    name: str
    infra: Mapping[str, Any] | None = None
    members: list[Mapping[str, Any]] = field(default_factory=list)

    @property
    def phase(self) -> str:
        return phase(self.members)


def group(listed: Sequence[Mapping[str, Any]]) -> list[Pod]:
    pods: dict[str, Pod] = {}
    for c in listed:
        labels = c.get("Labels") or {}
        name = labels.get(POD_LABEL)
        if not name:
            continue
        pod = pods.setdefault(str(name), Pod(str(name)))
        if labels.get(INFRA_LABEL) == "true":
            pod.infra = c
        else:
            pod.members.append(c)
    for pod in pods.values():
        pod.members.sort(key=lambda c: str((c.get("Names") or [""])[0]))
    return [pods[n] for n in sorted(pods)]


def _exit_code(c: Mapping[str, Any]) -> int | None:
    """`Exited (N) ...` in a list record's Status."""
    status = str(c.get("Status") or "")
    if status.startswith("Exited (") and ")" in status:
        try:
            return int(status[len("Exited ("):status.index(")")])
        except ValueError:
            return None
    return None


def phase(members: Sequence[Mapping[str, Any]]) -> str:
    """Kubernetes' pod phases: Pending (a member not started yet), Running (one runs or
    is restarting), Succeeded (all ended with 0), Failed (all ended, one did not)."""
    states = [str(c.get("State") or "") for c in members]
    if not states or any(s == "created" for s in states):
        return "Pending"
    if any(s in ("running", "restarting", "paused") for s in states):
        return "Running"
    codes = [_exit_code(c) for c in members]
    return "Succeeded" if all(code == 0 for code in codes) else "Failed"


def podman_status(pod: Pod) -> str:
    """Podman's pod status, from all its containers (the infra too): Created, Running,
    Paused, Exited (every one of them in that state), Degraded (a mix with some
    running), Stopped (a mix, none running).  `pod ls --filter status=` takes these
    beside the Kubernetes phase corral shows."""
    states = [str(c.get("State") or "") for c in ([pod.infra] if pod.infra else [])
              + list(pod.members)]
    if not states:
        return "Created"
    for state, word in (("created", "Created"), ("running", "Running"),
                        ("paused", "Paused"), ("exited", "Exited"), ("dead", "Dead")):
        if all(s == state for s in states):
            return word
    return "Degraded" if any(s in ("running", "restarting") for s in states) else "Stopped"


#: podman's `pod ps --filter status=` values, and the Kubernetes phases corral shows.
STATUSES = ("created", "running", "stopped", "paused", "exited", "dead", "degraded",
            "pending", "succeeded", "failed")
FILTERS = ("id", "name", "label", "status")


class FilterError(ValueError):
    pass


def check_filters(filters: Mapping[str, Sequence[str]]) -> None:
    """Refuse what `pod ls --filter` cannot apply, naming it (podman's keys)."""
    import re

    for key, values in filters.items():
        if key not in FILTERS:
            raise FilterError(f"invalid filter {key!r}: corral's pod ls filters by "
                              f"{', '.join(FILTERS)}")
        for value in values:
            if key == "status" and value.lower() not in STATUSES:
                raise FilterError(f"invalid pod status {value!r}: one of {', '.join(STATUSES)}")
            if key == "name":
                try:
                    re.compile(value)
                except re.error as exc:
                    raise FilterError(f"invalid name filter {value!r}: {exc}") from None


def matches(pod: Pod, filters: Mapping[str, Sequence[str]],
            labels: Mapping[str, str]) -> bool:
    """Podman's rules: values of one key are alternatives, keys must all hold; `name` is
    a regular expression searched in the name, `id` a prefix of the pod's (its infra's)
    ID, `label` `KEY` or `KEY=VALUE` of the pod's labels, `status` its podman status or
    its Kubernetes phase."""
    import re

    ident = str((pod.infra or {}).get("Id") or "")
    for key, values in filters.items():
        if not values:
            continue
        if key == "name":
            ok = any(re.search(v, pod.name) for v in values)
        elif key == "id":
            ok = any(v and ident.startswith(v) for v in values)
        elif key == "label":
            ok = any(k in labels and (not eq or labels[k] == v)
                     for k, eq, v in (x.partition("=") for x in values))
        else:
            ok = any(v.lower() in (podman_status(pod).lower(), pod.phase.lower())
                     for v in values)
        if not ok:
            return False
    return True
