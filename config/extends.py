"""`extends:` (and `include:`'s resources) resolved as compose does: a service starts
from another one (of the same files, or of another `file:`), its own keys merged over
it by the `-f` override rules (`config.merge`). Pure: another file is read through
the `load` function given.

Chains are followed (a base may extend another), a cycle is an error naming it, and
`extends` itself is gone from the result. A base taken from another file keeps its
relative build context relative to that file, as compose resolves it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from config.errors import Path, Positions, Problem
from config.merge import merge_service

# (path of a file) → its services, shaped (long syntax), or raises OSError / ValueError
Loader = Callable[[str], dict[str, Any]]


def resolve_extends(
    services: dict[str, Any],
    positions: Positions,
    project_dir: str,
    load: Loader,
) -> tuple[dict[str, Any], list[Problem]]:
    """(services with every `extends` applied, problems)."""
    problems: list[Problem] = []
    out: dict[str, Any] = {}

    def fail(path: Path, message: str) -> None:
        problems.append(Problem(positions.get(path), message))

    def resolved(
        pool: dict[str, Any], name: str, file: str | None, seen: tuple[str, ...]
    ) -> dict[str, Any] | None:
        key = f"{file or ''}:{name}"
        if key in seen:
            chain = " -> ".join(k.lstrip(":") for k in (*seen, key))
            fail(("services", seen[0].split(":")[-1], "extends"),
                 f"extends cycle detected: {chain}")
            return None
        svc = pool.get(name)
        if not isinstance(svc, dict):
            return None
        ext = svc.get("extends")
        if not isinstance(ext, dict):
            return dict(svc)
        base_name = str(ext.get("service", ""))
        base_pool, base_file = pool, file
        where: Path = ("services", name, "extends")
        if ext.get("file"):
            base_dir = os.path.dirname(file) if file else project_dir
            base_file = os.path.normpath(os.path.join(base_dir, str(ext["file"])))
            try:
                base_pool = load(base_file)
            except (OSError, ValueError) as exc:
                fail(where, f"services.{name}.extends: cannot load {base_file}: {exc}")
                return None
        if base_name not in base_pool:
            what = f" in {base_file}" if base_file != file else ""
            fail(where, f'services.{name}.extends: no service "{base_name}"{what}')
            return None
        base = resolved(base_pool, base_name, base_file, (*seen, key))
        if base is None:
            return None
        if base_file != file and base_file is not None:
            base = _rebase(base, os.path.dirname(base_file))
        own = {k: v for k, v in svc.items() if k != "extends"}
        return merge_service(base, own, name)

    for name in services:
        svc = resolved(services, name, None, ())
        if svc is not None:
            out[name] = svc
    return out, problems


def _rebase(svc: dict[str, Any], base_dir: str) -> dict[str, Any]:
    """A service from another file with the paths the project's directory would resolve
    (its build context, its env files) made absolute from that file's own directory."""
    build = svc.get("build")
    if isinstance(build, dict) and not os.path.isabs(str(build.get("context") or ".")):
        ctx = str(build.get("context") or ".")
        if "://" not in ctx:
            svc = {**svc, "build": {**build, "context": os.path.join(base_dir, ctx)}}
    if isinstance(svc.get("env_file"), list):
        svc = {**svc, "env_file": [
            {**e, "path": os.path.join(base_dir, str(e.get("path", "")))}
            if isinstance(e, dict) else e
            for e in svc["env_file"]
        ]}
    return svc


# Top-level sections an included file adds to the project.
SECTIONS = ("services", "networks", "volumes", "secrets", "configs")


def add_included(
    main: dict[str, Any], included: dict[str, Any], base_dir: str, where: str
) -> list[str]:
    """Add an included file's resources to `main` (in place); the names that clash
    with the project's own, as compose refuses them."""
    clashes = []
    for section in SECTIONS:
        for key, value in (included.get(section) or {}).items():
            mine = main.setdefault(section, {})
            if key in mine:
                clashes.append(f"{section}.{key} conflicts with imported resource (from {where})")
                continue
            if section == "services" and isinstance(value, dict):
                value = _rebase(value, base_dir)
            elif section in ("secrets", "configs") and isinstance(value, dict) and \
                    value.get("file"):
                value = {**value, "file": os.path.join(base_dir, str(value["file"]))}
            mine[key] = value
    return clashes
