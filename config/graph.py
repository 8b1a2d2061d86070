"""Service dependencies: cycles refused naming the cycle, start order, a selection's needs. Pure."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def dependencies(services: Mapping[str, Mapping[str, Any]]) -> dict[str, list[str]]:
    """service → services it needs first (depends_on; as compose, the services named by
    network_mode/ipc/pid `service:X`, volumes_from and links)."""
    out: dict[str, list[str]] = {}
    for name, svc in services.items():
        deps = [d for d in (svc.get("depends_on") or {}) if d in services]
        implied = [
            str(svc.get(key) or "")[8:]
            for key in ("network_mode", "ipc", "pid")
            if str(svc.get(key) or "").startswith("service:")
        ]
        implied += [str(v).partition(":")[0] for v in svc.get("volumes_from") or []]
        implied += [str(v).partition(":")[0] for v in svc.get("links") or []]
        for dep in implied:
            if dep in services and dep not in deps and dep != name:
                deps.append(dep)
        out[name] = deps
    return out


def find_cycle(graph: Mapping[str, Iterable[str]]) -> list[str] | None:
    """A cycle as a path `[a, b, a]`, or None. Deterministic: services in name order."""
    state: dict[str, int] = {}  # 1 visiting, 2 done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                return [*stack[stack.index(dep) :], dep]
            if dep not in state:
                found = visit(dep)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def start_order(graph: Mapping[str, Iterable[str]]) -> list[str]:
    """Dependencies before dependants; ties in name order (stable output for `up`)."""
    done: list[str] = []
    seen: set[str] = set()

    def visit(node: str) -> None:
        if node in seen:
            return
        seen.add(node)
        for dep in sorted(graph.get(node, ())):
            visit(dep)
        done.append(node)

    for node in sorted(graph):
        visit(node)
    return done


def with_dependencies(graph: Mapping[str, Iterable[str]], selected: Iterable[str]) -> set[str]:
    """`up web` also brings up what web depends on, transitively (as compose)."""
    out: set[str] = set()
    todo = list(selected)
    while todo:
        node = todo.pop()
        if node in out:
            continue
        out.add(node)
        todo.extend(graph.get(node, ()))
    return out
