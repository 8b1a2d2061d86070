"""The engine's shape, checked on its source (ast), so a change that undoes it fails.

- The components the engine calls at each lifecycle step (network, health, probes,
  logs, volumes) reach it only through `engine/hooks.py`: none imports the engine
  module, which imports them (no cycle, no hub they call back into).
- Metadata (`supervisor/metadata/`: the database and its migrations) is the bottom
  layer: engine, images, network and supervise import it, it imports none of them,
  and no other module opens a database of its own.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "supervisor"


def _imports(path: Path) -> set[str]:
    """Every module `path` imports, at any depth (lazy imports in functions too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return found


def _modules(*dirs: str) -> list[Path]:
    return [p for d in dirs for p in sorted((SRC / d).rglob("*.py"))]


def test_hooked_components_never_import_the_engine() -> None:
    hooked = [*_modules("network", "supervise", "pods"), SRC / "engine" / "hooks.py",
              SRC / "engine" / "live.py", SRC / "engine" / "volumehooks.py",
              SRC / "engine" / "caps.py"]
    offenders = {
        str(p.relative_to(SRC.parent)): sorted(m for m in _imports(p)
                                               if m == "supervisor.engine.engine")
        for p in hooked
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_engine_calls_no_component_lifecycle_step_by_name() -> None:
    """Attach, detach, commit_plan, forget (networking), volume mounts and probe
    starts go through the hooks: the engine module names none of them."""
    tree = ast.parse((SRC / "engine" / "engine.py").read_text())
    called = {
        f"{ast.unparse(n.func.value)}.{n.func.attr}"
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
    }
    by_name = {
        "self.networks.attach", "self.networks.detach", "self.networks.commit_plan",
        "self.networks.forget", "self.networks.check_links", "self.networks.plan",
        "health.start", "pod_prober.start", "self.volume_mounts.acquire",
        "self.volume_mounts.release",
    }
    assert called & by_name == set()


def test_metadata_is_the_bottom_layer() -> None:
    """Its modules import the standard library, trio, structlog, `supervisor.errors`
    and each other: no layer above it."""
    allowed = ("supervisor.errors", "supervisor.metadata")
    offenders = {
        str(p.relative_to(SRC.parent)): sorted(
            m for m in _imports(p)
            if m.startswith("supervisor") and not m.startswith(allowed)
        )
        for p in _modules("metadata")
    }
    assert {k: v for k, v in offenders.items() if v} == {}
    assert (SRC / "metadata" / "database.py").is_file()  # the scan saw the layer


def test_the_layers_above_reach_the_database_through_metadata() -> None:
    """engine, images, network and supervise use `supervisor.metadata`'s Database;
    nothing outside it calls `sqlite3.connect` (one database, one owner)."""
    users = {
        d for d in ("engine", "images", "network", "supervise")
        if any("supervisor.metadata.database" in _imports(p) for p in _modules(d))
    }
    assert users == {"engine", "images", "network", "supervise"}
    connects = [
        str(p.relative_to(SRC.parent)) for p in SRC.rglob("*.py")
        if p.parent.name != "metadata" and "sqlite3.connect(" in p.read_text()
    ]
    assert connects == []
