"""Service dependencies: cycles refused naming the cycle, start order, a selection's needs. Pure."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def dependencies(services: Mapping[str, Mapping[str, Any]]) -> dict[str, list[str]]:
    """service → services it needs first (depends_on, network_mode: service:X)."""
    out: dict[str, list[str]] = {}
    for name, svc in services.items():
        deps = [d for d in (svc.get("depends_on") or {}) if d in services]
        mode = str(svc.get("network_mode") or "")
        if mode.startswith("service:") and mode[8:] in services and mode[8:] not in deps:
            deps.append(mode[8:])
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
