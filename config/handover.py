"""A project as `corral up -d` hands it to the daemon, and as the daemon keeps it. Pure.

The CLI loads and checks the files (it has the user's environment, `.env` and working
directory); the daemon gets the normalized model, already interpolated and resolved,
so it can bring the project back after a restart without the files or the shell that
named them. What the daemon keeps is the desired state: the model, the services asked
for and their scale. `--force-recreate`, `--no-recreate` and `--remove-orphans` are
about one `up` and are not kept.

    {"Name": "demo", "Model": {...}, "WorkingDir": "/srv/demo",
     "ConfigFiles": ["/srv/demo/compose.yaml"], "Services": [], "Scale": {"web": 3},
     "ForceRecreate": false, "NoRecreate": false, "RemoveOrphans": false,
     "ParallelLimit": null, "NoDeps": false, "Timeout": null,
     "RenewAnonVolumes": false}
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

from config.graph import dependencies, find_cycle
from config.model import Project
from config.reconcile import UpOptions

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


class HandoverError(ValueError):
    """The body does not describe a project: one line naming the culprit."""


@dataclass
class Handover:
    project: Project
    services: list[str] = field(default_factory=list)
    scale: dict[str, int] = field(default_factory=dict)
    force_recreate: bool = False
    no_recreate: bool = False
    remove_orphans: bool = False
    parallel_limit: int | None = None
    no_deps: bool = False
    timeout: int | None = None  # `up -t`: for the stops this `up` makes (not kept)
    renew_anon_volumes: bool = False  # `up -V` (not kept)

    def options(self) -> UpOptions:
        """The options of this `up` (one-shot flags included)."""
        return UpOptions(
            services=list(self.services),
            scale=dict(self.scale),
            force_recreate=self.force_recreate,
            no_recreate=self.no_recreate,
            remove_orphans=self.remove_orphans,
            no_deps=self.no_deps,
        )

    def kept(self) -> Handover:
        """What the daemon stores and reconciles at boot: the desired state only."""
        return Handover(
            self.project, list(self.services), dict(self.scale), no_deps=self.no_deps
        )

    def to_wire(self) -> dict[str, Any]:
        return {
            "Name": self.project.name,
            "Model": self.project.model,
            "WorkingDir": self.project.working_dir,
            "ConfigFiles": list(self.project.config_files),
            "Services": list(self.services),
            "Scale": dict(self.scale),
            "ForceRecreate": self.force_recreate,
            "NoRecreate": self.no_recreate,
            "RemoveOrphans": self.remove_orphans,
            "ParallelLimit": self.parallel_limit,
            "NoDeps": self.no_deps,
            "Timeout": self.timeout,
            "RenewAnonVolumes": self.renew_anon_volumes,
        }


def from_wire(doc: Any) -> Handover:
    """Check a handed-over project; raises HandoverError naming the first culprit."""
    if not isinstance(doc, dict):
        raise HandoverError("the body must be a JSON object describing a project")
    name = doc.get("Name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise HandoverError(
            f"invalid project name {name!r}: lowercase letters, digits, '-' and '_', "
            "starting with a letter or digit"
        )
    model = doc.get("Model")
    if not isinstance(model, dict) or not isinstance(model.get("services"), dict):
        raise HandoverError('Model must be a normalized compose model with "services"')
    services = model["services"]
    for svc, spec in services.items():
        if not isinstance(spec, dict):
            raise HandoverError(f"Model.services.{svc} must be a mapping")
        deps = spec.get("depends_on") or {}
        if not isinstance(deps, dict):
            raise HandoverError(f"Model.services.{svc}.depends_on must be a mapping")
        for dep in deps:
            if dep not in services:
                raise HandoverError(f'service "{svc}" depends on undefined service "{dep}"')
    cycle = find_cycle(dependencies(services))
    if cycle:
        raise HandoverError(f"dependency cycle: {' -> '.join(cycle)}")
    workdir = doc.get("WorkingDir")
    if not isinstance(workdir, str) or not os.path.isabs(workdir):
        raise HandoverError("WorkingDir must be an absolute path")
    files = doc.get("ConfigFiles", [])
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        raise HandoverError("ConfigFiles must be a list of paths")
    chosen = doc.get("Services") or []
    if not isinstance(chosen, list) or not all(isinstance(s, str) for s in chosen):
        raise HandoverError("Services must be a list of service names")
    scale = doc.get("Scale") or {}
    if not isinstance(scale, dict):
        raise HandoverError("Scale must map service names to numbers")
    for svc in [*chosen, *scale]:
        if svc not in services:
            raise HandoverError(f"no such service: {svc}")
    for svc, n in scale.items():
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise HandoverError(f"Scale.{svc} must be a number >= 0")
    flags = {}
    for key in ("ForceRecreate", "NoRecreate", "RemoveOrphans", "NoDeps", "RenewAnonVolumes"):
        value = doc.get(key, False)
        if not isinstance(value, bool):
            raise HandoverError(f"{key} must be true or false")
        flags[key] = value
    if flags["ForceRecreate"] and flags["NoRecreate"]:
        raise HandoverError("ForceRecreate and NoRecreate are incompatible")
    limit = doc.get("ParallelLimit")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        raise HandoverError("ParallelLimit must be a number >= 1")
    timeout = doc.get("Timeout")
    if timeout is not None and (not isinstance(timeout, int) or isinstance(timeout, bool)):
        raise HandoverError("Timeout must be a number of seconds")
    project = Project(name=name, model=model, working_dir=workdir, config_files=list(files))
    return Handover(
        project,
        services=list(chosen),
        scale=dict(scale),
        force_recreate=flags["ForceRecreate"],
        no_recreate=flags["NoRecreate"],
        remove_orphans=flags["RemoveOrphans"],
        parallel_limit=limit,
        no_deps=flags["NoDeps"],
        timeout=timeout,
        renew_anon_volumes=flags["RenewAnonVolumes"],
    )
