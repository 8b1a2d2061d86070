"""`develop.watch`: which host changes mean what for which service. Pure.

Each rule of a service's `develop.watch` names a host `path` (relative to the project
directory), an `action` and, for syncs, a `target` in the container. A batch of changed
host paths (one inotify burst, `supervisor.compose.watch`) becomes one `Step` per service,
as compose v2 groups them: a `rebuild` of the service wins over everything else of it;
otherwise the files to copy in (and those to delete, gone on the host) and then, per
action, a restart or an exec.

Ignored, as compose ignores them: the `ignore` patterns of the rule (relative to its
path; a pattern that names a directory covers what is under it), and editors' and VCS
noise (`.git`, `*~`, `*.swp`, `.#*`, vim's `4913` probe). `include`, when given, keeps
only what matches.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from config.model import Project

DEFAULT_IGNORES = (".git", "*~", "*.swp", "*.swx", ".#*", "4913", ".DS_Store")


@dataclass(frozen=True)
class Rule:
    service: str
    path: str  # absolute, on the host
    action: str  # sync, rebuild, restart, sync+restart, sync+exec
    target: str = ""  # in the container (sync actions)
    ignore: tuple[str, ...] = ()
    include: tuple[str, ...] = ()
    exec: dict[str, Any] | None = None
    initial_sync: bool = False


@dataclass
class Step:
    """What one service gets from one batch of changes."""

    service: str
    rebuild: bool = False
    copy: list[tuple[str, str]] = field(default_factory=list)  # (host path, container path)
    delete: list[str] = field(default_factory=list)  # container paths gone on the host
    restart: bool = False
    execs: list[dict[str, Any]] = field(default_factory=list)
    changes: int = 0


def _strings(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    return (str(value),) if isinstance(value, str) else tuple(str(v) for v in value)


def rules(project: Project, services: Iterable[str] | None = None) -> list[Rule]:
    """The watch rules of `services` (all if None), paths made absolute."""
    out: list[Rule] = []
    wanted = set(services) if services else set(project.services)
    for name, svc in project.services.items():
        if name not in wanted:
            continue
        for r in (svc.get("develop") or {}).get("watch") or []:
            path = os.path.normpath(os.path.join(project.working_dir, str(r["path"])))
            out.append(
                Rule(
                    service=name,
                    path=path,
                    action=str(r["action"]),
                    target=str(r.get("target") or ""),
                    ignore=_strings(r.get("ignore")),
                    include=_strings(r.get("include")),
                    exec=r.get("exec"),
                    initial_sync=bool(r.get("initial_sync", False)),
                )
            )
    return out


def problems(found: list[Rule]) -> list[str]:
    """A rule compose would refuse: a sync without a target, sync+exec without exec."""
    out = []
    for r in found:
        if r.action.startswith("sync") and not r.target:
            out.append(f'services.{r.service}.develop.watch: action {r.action} needs a "target"')
        if r.action == "sync+exec" and not r.exec:
            out.append(f'services.{r.service}.develop.watch: action sync+exec needs "exec"')
    return out


def _matches(patterns: Iterable[str], rel: str) -> bool:
    parts = rel.split("/")
    for pattern in patterns:
        pat = pattern.strip().rstrip("/")
        if not pat:
            continue
        if "/" in pat:
            # anchored at the rule's path: the path itself or a directory above it
            if any(fnmatch.fnmatchcase("/".join(parts[:n]), pat) for n in range(1, len(parts) + 1)):
                return True
        elif any(fnmatch.fnmatchcase(part, pat) for part in parts):
            return True
    return False


def relative(rule: Rule, host_path: str) -> str | None:
    """`host_path` relative to the rule's path ("" for the path itself), or None if the
    rule does not see it (outside it, ignored, or not included)."""
    path = os.path.normpath(host_path)
    if path == rule.path:
        rel = ""
    elif path.startswith(rule.path.rstrip("/") + "/"):
        rel = path[len(rule.path.rstrip("/")) + 1 :]
    else:
        return None
    name = rel or os.path.basename(path)
    if _matches(DEFAULT_IGNORES, name) or (rel and _matches(rule.ignore, rel)):
        return None
    if rule.include and not _matches(rule.include, name):
        return None
    return rel


def plan(
    found: list[Rule], changed: Iterable[str], exists: Callable[[str], bool]
) -> list[Step]:
    """One step per service touched by `changed` (host paths), in rule order."""
    steps: dict[str, Step] = {}
    seen: dict[str, set[str]] = {}
    for path in sorted(set(changed)):
        for rule in found:
            rel = relative(rule, path)
            if rel is None:
                continue
            step = steps.setdefault(rule.service, Step(rule.service))
            if path not in seen.setdefault(rule.service, set()):
                seen[rule.service].add(path)
                step.changes += 1
            if rule.action == "rebuild":
                step.rebuild = True
                continue
            if rule.action == "restart":
                step.restart = True
                continue
            target = f"{rule.target.rstrip('/')}/{rel}" if rel else rule.target
            if exists(path):
                if (path, target) not in step.copy:
                    step.copy.append((path, target))
            elif target not in step.delete:
                step.delete.append(target)
            if rule.action == "sync+restart":
                step.restart = True
            elif rule.action == "sync+exec" and rule.exec and rule.exec not in step.execs:
                step.execs.append(rule.exec)
    out = list(steps.values())
    for step in out:
        if step.rebuild:  # a new image and container: syncing into the old is moot
            step.copy, step.delete, step.restart, step.execs = [], [], False, []
    return out
