"""The engine's shape, checked on its source (ast), so a change that undoes it fails.

- The components the engine calls at each lifecycle step (network, health, probes,
  logs, volumes) reach it only through `engine/hooks.py`: none imports the engine
  module, which imports them (no cycle, no hub they call back into).
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
