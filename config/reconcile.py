"""Desired project + observed containers → the actions that make them agree. Pure.

The same function serves `corral compose up` (through the API) and a daemon that owns
a directory of service files: both observe containers by compose's labels, ask for a
plan, and carry it out. Rules, as compose v2's convergence:

- a container is up to date when its `com.docker.compose.config-hash` label equals the
  service's hash and it runs the service's image; else it is recreated (unless
  `no_recreate`), always with `force_recreate`;
- up-to-date containers that are not running are started; running ones are left alone,
  so `up` twice touches nothing;
- scaling down removes the obsolete containers first, then the highest numbers, so low
  numbers survive; scaling up takes numbers after the highest in use;
- a recreated service restarts dependants that asked for it (`depends_on.X.restart`)
  and recreates those sharing its network stack (`network_mode: service:X`);
- containers of services no longer in the files are orphans: reported, or removed with
  `remove_orphans`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from config.graph import with_dependencies
from config.model import Project

PROJECT = "com.docker.compose.project"
SERVICE = "com.docker.compose.service"
NUMBER = "com.docker.compose.container-number"
HASH = "com.docker.compose.config-hash"
ONEOFF = "com.docker.compose.oneoff"
SLUG = "com.docker.compose.slug"
WORKING_DIR = "com.docker.compose.project.working_dir"
CONFIG_FILES = "com.docker.compose.project.config_files"
DEPENDS_ON = "com.docker.compose.depends_on"
IMAGE = "com.docker.compose.image"
VERSION = "com.docker.compose.version"


@dataclass(frozen=True)
class Observed:
    """A container of the project as the daemon lists it."""

    id: str
    name: str
    service: str
    number: int
    config_hash: str
    state: str  # created, running, paused, restarting, exited, dead
    image_id: str = ""
    oneoff: bool = False

    @property
    def running(self) -> bool:
        return self.state in ("running", "paused", "restarting")

    @classmethod
    def from_summary(cls, c: Mapping[str, Any]) -> Observed:
        """From one `GET /containers/json?all=1` entry."""
        labels = c.get("Labels") or {}
        names = c.get("Names") or [""]
        try:
            number = int(labels.get(NUMBER, "0"))
        except ValueError:
            number = 0
        return cls(
            id=str(c.get("Id", "")),
            name=str(names[0]).lstrip("/"),
            service=str(labels.get(SERVICE, "")),
            number=number,
            config_hash=str(labels.get(HASH, "")),
            state=str(c.get("State", "")),
            image_id=str(c.get("ImageID", "")),
            oneoff=labels.get(ONEOFF, "False") == "True",
        )


@dataclass(frozen=True)
class Action:
    """One step: kind is create, recreate, start, restart or remove."""

    kind: str
    service: str
    number: int
    container: Observed | None = None

    def __str__(self) -> str:
        who = self.container.name if self.container else f"{self.service}-{self.number}"
        return f"{self.kind} {who}"


@dataclass
class ServicePlan:
    service: str
    actions: list[Action] = field(default_factory=list)


@dataclass
class Plan:
    services: list[ServicePlan]  # in dependency order
    orphans: list[Observed]
    remove_orphans: bool

    @property
    def actions(self) -> list[Action]:
        return [a for sp in self.services for a in sp.actions]


@dataclass
class UpOptions:
    services: list[str] = field(default_factory=list)  # empty: all
    scale: dict[str, int] = field(default_factory=dict)
    force_recreate: bool = False
    no_recreate: bool = False
    remove_orphans: bool = False
    no_deps: bool = False  # the services named, without what they depend on
    image_ids: dict[str, str] = field(default_factory=dict)  # service → resolved image id


def container_name(project: Project, service: str, number: int) -> str:
    """compose v2: `PROJECT-SERVICE-N`, or the service's container_name."""
    fixed = project.services[service].get("container_name")
    return str(fixed) if fixed else f"{project.name}-{service}-{number}"


def _outdated(project: Project, c: Observed, opts: UpOptions) -> bool:
    if opts.force_recreate:
        return True
    if opts.no_recreate:
        return False
    if c.config_hash != project.hash(c.service):
        return True
    want = opts.image_ids.get(c.service)
    return bool(want and c.image_id and want != c.image_id)


def plan_up(project: Project, observed: Iterable[Observed], opts: UpOptions) -> Plan:
    graph = project.graph()
    if opts.services and opts.no_deps:
        selected = set(opts.services)
    elif opts.services:
        selected = with_dependencies(graph, opts.services)
    else:
        selected = set(project.services)
    by_service: dict[str, list[Observed]] = {}
    orphans: list[Observed] = []
    for c in observed:
        if c.oneoff:
            continue
        if c.service in project.services:
            by_service.setdefault(c.service, []).append(c)
        else:
            orphans.append(c)
    recreated: set[str] = set()
    plans: list[ServicePlan] = []
    for service in project.order():
        if service not in selected:
            continue
        sp = ServicePlan(service)
        want = opts.scale.get(service, project.scale(service))
        mode = str(project.services[service].get("network_mode") or "")
        shared_with_recreated = mode.startswith("service:") and mode[8:] in recreated
        current = by_service.get(service, [])
        # obsolete first, then by number: keep the lowest-numbered up-to-date ones
        keep = sorted(current, key=lambda c: (_outdated(project, c, opts), c.number))[:want]
        keep_ids = {c.id for c in keep}
        for c in sorted(current, key=lambda c: -c.number):
            if c.id not in keep_ids:
                sp.actions.append(Action("remove", service, c.number, c))
        deps_spec = project.services[service].get("depends_on") or {}
        restart_for_deps = any(
            d in recreated and (deps_spec.get(d) or {}).get("restart") for d in graph[service]
        )
        for c in sorted(keep, key=lambda c: c.number):
            if _outdated(project, c, opts) or (shared_with_recreated and not opts.no_recreate):
                sp.actions.append(Action("recreate", service, c.number, c))
                recreated.add(service)
            elif not c.running:
                sp.actions.append(Action("start", service, c.number, c))
            elif restart_for_deps:
                sp.actions.append(Action("restart", service, c.number, c))
        used = [c.number for c in by_service.get(service, [])]
        next_number = max(used, default=0) + 1
        for i in range(want - len(keep)):
            sp.actions.append(Action("create", service, next_number + i))
        plans.append(sp)
    return Plan(plans, sorted(orphans, key=lambda c: c.name), opts.remove_orphans)


def plan_down(
    project: Project, observed: Iterable[Observed], remove_orphans: bool
) -> tuple[list[list[Observed]], list[Observed]]:
    """(containers to stop and remove, grouped in reverse dependency order; orphans left)."""
    order = project.order()
    groups: dict[str, list[Observed]] = {s: [] for s in order}
    orphans: list[Observed] = []
    for c in observed:
        if c.service in groups:
            groups[c.service].append(c)
        elif remove_orphans or c.oneoff:
            groups.setdefault(c.service, []).append(c)
        else:
            orphans.append(c)
    extra = [s for s in groups if s not in order]
    ordered = [*extra, *reversed(order)]
    return [sorted(groups[s], key=lambda c: c.number) for s in ordered if groups[s]], orphans
