"""YAML → plain Python values plus the position of every key and value.

PyYAML builds the node tree (anchors, aliases and `<<` merge keys resolved by its
SafeLoader) and we walk the same nodes for their marks. Scalars are resolved as compose's
go-yaml v3 resolves them (`config.scalars`), not by PyYAML's YAML 1.1 rules: `22:22` and
`yes` stay strings, `0755` is octal 493, `1_000` is 1000. Every plain scalar gets one
private tag that `config.scalars.resolve_plain` turns into its value; explicit `!!int`,
`!!bool`... are held to their tag as go-yaml does. Mapping keys must be strings and
unique, as in compose, instead of PyYAML's silent last-wins.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from config.errors import ConfigError, Path, Position, Positions, dotted
from config.scalars import TagError, resolve_plain, resolve_tagged

_PLAIN = "tag:corral,2025:plain"  # every untagged plain scalar, resolved by go-yaml's rules
_MERGE = "tag:yaml.org,2002:merge"
_STR = "tag:yaml.org,2002:str"
MAX_DEPTH = 100  # levels of nesting a file may have; no real one comes near
_CORE = "tag:yaml.org,2002:"
_COMPOSE_TAGS = ("!reset", "!override")  # compose's merge tags


class _Loader(yaml.SafeLoader):
    """SafeLoader whose only implicit resolutions are `<<` and "plain scalar"."""

    yaml_implicit_resolvers = {
        "<": [(_MERGE, re.compile(r"^<<$"))],
        None: [(_PLAIN, re.compile(r"(?s).*"))],
    }


def _plain(loader: _Loader, node: Node) -> Any:
    return resolve_plain(str(node.value))


def _tagged(loader: _Loader, node: Node) -> Any:
    if not isinstance(node, ScalarNode):
        raise ConstructorError(None, None, f"{_short(node.tag)} must be a scalar", node.start_mark)
    try:
        return resolve_tagged(_short(node.tag), str(node.value))
    except TagError as exc:
        raise ConstructorError(None, None, str(exc), node.start_mark) from None


def _other(loader: _Loader, node: Node) -> Any:
    """A tag go-yaml does not interpret: the node as if it had none (a scalar's text)."""
    if node.tag in _COMPOSE_TAGS:
        raise ConstructorError(
            None, None, f"the {node.tag} tag is not supported by corral yet", node.start_mark
        )
    if isinstance(node, MappingNode):
        return loader.construct_yaml_map(node)
    if isinstance(node, SequenceNode):
        return loader.construct_yaml_seq(node)
    return str(node.value)


def _short(tag: str) -> str:
    return "!!" + tag[len(_CORE) :] if tag.startswith(_CORE) else tag


_Loader.add_constructor(_PLAIN, _plain)
for _kind in ("int", "float", "bool", "null", "timestamp", "binary"):
    _Loader.add_constructor(_CORE + _kind, _tagged)
_Loader.add_constructor(_MERGE, lambda loader, node: "<<")  # `<<` as a value is a string
# go-yaml reads `!!set` as a plain mapping and `!!omap`/`!!pairs` as a plain sequence.
_Loader.add_constructor(_CORE + "set", _other)
_Loader.add_constructor(_CORE + "omap", _other)
_Loader.add_constructor(_CORE + "pairs", _other)
_Loader.add_constructor(None, _other)


def _pos(file: str, node: Node) -> Position:
    return Position(file, node.start_mark.line + 1, node.start_mark.column + 1)


def load_yaml(text: str, file: str) -> tuple[Any, Positions]:
    """Parse one document. Raises ConfigError with `file:line:col` for bad YAML."""
    try:
        loader = _Loader(text)  # refuses non-printable characters (a ReaderError)
    except yaml.YAMLError as exc:
        raise ConfigError.at(Position(file, 1, 1), f"invalid YAML: {exc}") from None
    try:
        node = loader.get_single_node()
        if node is None:
            return None, Positions()
        _check_keys(node, file, ())
        value = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        pos = Position(file, mark.line + 1, mark.column + 1) if mark else None
        raise ConfigError.at(pos, f"invalid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise ConfigError.at(Position(file, 1, 1), f"invalid YAML: {exc}") from None
    except RecursionError:  # PyYAML composes recursively: "[[[[..." a thousand deep
        raise ConfigError.at(
            Position(file, 1, 1), f"invalid YAML: nested more than {MAX_DEPTH} levels deep"
        ) from None
    finally:
        loader.dispose()
    positions = Positions()
    _walk(node, file, (), positions)
    return value, positions


_KINDS = {type(None): "null", bool: "a boolean", int: "an integer", float: "a float"}


def _key_problem(k: Node) -> str | None:
    """Why this mapping key is not a string, as compose (go-yaml, then compose-go) sees
    it: only plain scalars that resolve to a string and `!!str` ones are."""
    if isinstance(k, MappingNode | SequenceNode):
        return "a mapping" if isinstance(k, MappingNode) else "a sequence"
    if k.tag == _PLAIN:
        return _KINDS.get(type(resolve_plain(str(k.value))))
    return None if k.tag == _STR else f"tagged {_short(k.tag)}"


def _check_keys(
    node: Node, file: str, path: Path, seen: set[int] | None = None, inside: tuple[int, ...] = ()
) -> None:
    """Duplicate and non-string keys are errors, as in compose (raised at the first).

    So are an anchor that contains itself (`a: &x [*x]`, refused by go-yaml too: every
    walk over the document would recurse forever) and nesting deeper than MAX_DEPTH
    (the walks after this one recurse too, and Python's stack is finite)."""
    seen = set() if seen is None else seen
    if id(node) in inside:
        raise ConfigError.at(
            _pos(file, node), f"{dotted(path) or 'top level'}: an anchor that contains itself"
        )
    if len(inside) >= MAX_DEPTH:
        raise ConfigError.at(_pos(file, node), f"nested more than {MAX_DEPTH} levels deep")
    if id(node) in seen:  # aliases share nodes
        return
    seen.add(id(node))
    inside = (*inside, id(node))
    if isinstance(node, MappingNode):
        keys: dict[str, Node] = {}
        for k, v in node.value:
            if k.tag == _MERGE:
                _check_keys(v, file, path, seen, inside)
                continue
            problem = _key_problem(k)
            if problem is not None:
                where = dotted(path) or "top level"
                message = (
                    f"key {k.value} is {problem}, not a string: quote it"
                    if isinstance(k, ScalarNode)
                    else f"{problem} as a key: keys must be strings"
                )
                raise ConfigError.at(_pos(file, k), f"{where}: {message}")
            if k.value in keys:
                first = _pos(file, keys[k.value])
                raise ConfigError.at(
                    _pos(file, k),
                    f"duplicate key {k.value!r} (first defined at line {first.line})",
                )
            keys[k.value] = k
            _check_keys(v, file, (*path, str(k.value)), seen, inside)
    elif isinstance(node, SequenceNode):
        for i, item in enumerate(node.value):
            _check_keys(item, file, (*path, i), seen, inside)


def _walk(node: Node, file: str, path: Path, out: Positions, depth: int = 0) -> None:
    """Record positions; after construction merge keys are already flattened in place."""
    if depth > 64:  # recursive aliases
        return
    out.set(path, _pos(file, node))
    if isinstance(node, MappingNode):
        for k, v in node.value:
            if not isinstance(k, ScalarNode) or k.tag == _MERGE:
                continue
            child = (*path, k.value)
            out.set_key(child, _pos(file, k))
            _walk(v, file, child, out, depth + 1)
    elif isinstance(node, SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, file, (*path, i), out, depth + 1)


_TAG_OF = {
    type(None): "tag:yaml.org,2002:null",
    bool: "tag:yaml.org,2002:bool",
    int: "tag:yaml.org,2002:int",
    float: "tag:yaml.org,2002:float",
}


class _Dumper(yaml.SafeDumper):
    """SafeDumper that quotes every string go-yaml would read as something else (`0o17`,
    `08`, `1e3`), besides those PyYAML's YAML 1.1 rules would (`yes`, `22:22`), so what
    `compose config` prints reads back the same in compose, corral and older readers."""

    def resolve(self, kind: type[Node], value: Any, implicit: tuple[bool, bool]) -> str:
        if kind is ScalarNode and implicit[0] and isinstance(value, str):
            resolved = resolve_plain(value) if value else None
            if not isinstance(resolved, str):
                return _TAG_OF[type(resolved)]
        return str(super().resolve(kind, value, implicit))  # type: ignore[no-untyped-call]


def dump_yaml(value: Any) -> str:
    """A model as YAML: keys in their order, block style, strings quoted when needed."""
    return str(
        yaml.dump(
            value, Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True
        )
    )
