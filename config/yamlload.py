"""YAML → plain Python values plus the position of every key and value.

PyYAML builds the node tree (anchors, aliases and `<<` merge keys resolved by its
SafeLoader) and we walk the same nodes for their marks. Scalars follow YAML 1.2's core
schema as compose's go-yaml does: `yes`/`no`/`on`/`off` stay strings, so
`DEBUG: yes` means the string "yes", not True. Duplicate keys are an error, as in
compose, instead of PyYAML's silent last-wins.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from config.errors import ConfigError, Path, Position, Positions


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


def _pos(file: str, node: Node) -> Position:
    return Position(file, node.start_mark.line + 1, node.start_mark.column + 1)


def load_yaml(text: str, file: str) -> tuple[Any, Positions]:
    """Parse one document. Raises ConfigError with `file:line:col` for bad YAML."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, Positions()
        _check_duplicates(node, file, ())
        value = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        pos = Position(file, mark.line + 1, mark.column + 1) if mark else None
        raise ConfigError.at(pos, f"invalid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise ConfigError.at(Position(file, 1, 1), f"invalid YAML: {exc}") from None
    finally:
        loader.dispose()
    positions = Positions()
    _walk(node, file, (), positions)
    return value, positions


def _check_duplicates(node: Node, file: str, path: Path, seen: set[int] | None = None) -> None:
    seen = set() if seen is None else seen
    if id(node) in seen:  # aliases share nodes
        return
    seen.add(id(node))
    if isinstance(node, MappingNode):
        keys: dict[str, Node] = {}
        for k, v in node.value:
            if isinstance(k, ScalarNode) and k.value != "<<":
                if k.value in keys:
                    first = _pos(file, keys[k.value])
                    raise ConfigError.at(
                        _pos(file, k),
                        f"duplicate key {k.value!r} (first defined at line {first.line})",
                    )
                keys[k.value] = k
            _check_duplicates(v, file, path, seen)
    elif isinstance(node, SequenceNode):
        for item in node.value:
            _check_duplicates(item, file, path, seen)


def _walk(node: Node, file: str, path: Path, out: Positions, depth: int = 0) -> None:
    """Record positions; after construction merge keys are already flattened in place."""
    if depth > 64:  # recursive aliases
        return
    out.set(path, _pos(file, node))
    if isinstance(node, MappingNode):
        for k, v in node.value:
            if not isinstance(k, ScalarNode) or k.tag == "tag:yaml.org,2002:merge":
                continue
            child = (*path, k.value)
            out.set_key(child, _pos(file, k))
            _walk(v, file, child, out, depth + 1)
    elif isinstance(node, SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, file, (*path, i), out, depth + 1)
