"""Several `-f` files → one document, by compose's override rules.

Applied to documents already in long syntax (config.shapes): mappings merge key by key,
the later file winning; `command`, `entrypoint` and `healthcheck.test` are replaced
whole; `volumes` merge by target and `ports` by their full spec (later wins, order kept);
other lists are appended without duplicates (`cap_add`, `expose`, `env_file`, ...).
"""

from __future__ import annotations

from typing import Any

_REPLACE = {"command", "entrypoint", "test"}


def merge_documents(docs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for doc in docs:
        out = _merge_map(out, doc, ())
    return out


def _merge_map(base: dict[str, Any], over: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if key not in out:
            out[key] = value
            continue
        out[key] = _merge_value(out[key], value, (*path, key))
    return out


def _in_service(path: tuple[str, ...]) -> bool:
    return len(path) == 3 and path[0] == "services"


def _merge_value(base: Any, over: Any, path: tuple[str, ...]) -> Any:
    key = path[-1]
    if key in _REPLACE:
        return over
    if isinstance(base, dict) and isinstance(over, dict):
        return _merge_map(base, over, path)
    if isinstance(base, list) and isinstance(over, list):
        if _in_service(path) and key == "volumes":
            return _merge_by(base, over, lambda v: v.get("target") if isinstance(v, dict) else v)
        if _in_service(path) and key == "ports":
            return _merge_by(base, over, _port_key)
        if _in_service(path) and key == "env_file":
            return _merge_by(base, over, lambda v: v.get("path") if isinstance(v, dict) else v)
        return _merge_by(base, over, repr)
    return over


def _port_key(p: Any) -> Any:
    if not isinstance(p, dict):
        return repr(p)
    return (p.get("host_ip"), p.get("published"), p.get("target"), p.get("protocol"))


def _merge_by(base: list[Any], over: list[Any], key: Any) -> list[Any]:
    index: dict[Any, int] = {}
    out: list[Any] = []
    for item in [*base, *over]:
        k = key(item)
        if k in index:
            out[index[k]] = item
        else:
            index[k] = len(out)
            out.append(item)
    return out


def merge_service(base: dict[str, Any], over: dict[str, Any], name: str) -> dict[str, Any]:
    """One service over another by the same rules (for `extends`)."""
    return _merge_map(base, over, ("services", name))
