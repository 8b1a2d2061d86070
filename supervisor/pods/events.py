"""Pod-level events, as podman's (`Type: "pod"`): a pod's infra is the pod, so its
container events are the pod's too.  Pure: an infra's labels and a container action
-> the pod event the engine publishes beside it (the infra's ID, the pod's ID, as its
actor), or None for every other container and action.

Derived in the daemon, so a pod made by `pod create`, `kube play` or any Docker client
reports alike.  The infra starts first and stops last, so `pod start` is said when the
pod's namespaces exist and `pod stop` once its members have stopped."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from supervisor.pods.labels import INFRA_LABEL, POD_LABEL, POD_LABELS_PREFIX

#: infra container action -> podman's pod event action.
ACTIONS = {"create": "create", "start": "start", "stop": "stop", "kill": "kill",
           "pause": "pause", "unpause": "unpause", "destroy": "remove"}


def pod_event(labels: Mapping[str, Any] | None, action: str) -> tuple[str, dict[str, str]] | None:
    """(action, attributes) of the pod event an infra's `action` is, else None."""
    labels = labels or {}
    pod = labels.get(POD_LABEL)
    if labels.get(INFRA_LABEL) != "true" or not pod or action not in ACTIONS:
        return None
    attrs = {k[len(POD_LABELS_PREFIX):]: str(v) for k, v in labels.items()
             if k.startswith(POD_LABELS_PREFIX)}
    return ACTIONS[action], {**attrs, "name": str(pod)}
