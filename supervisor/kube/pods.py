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
