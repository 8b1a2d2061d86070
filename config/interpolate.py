"""`${VAR}` substitution in service files, with compose's syntax and error wording.

Supported: `$VAR`, `${VAR}`, `${VAR:-default}` (unset or empty), `${VAR-default}`
(unset), `${VAR:?error}`, `${VAR?error}`, `${VAR:+alt}`, `${VAR+alt}`, defaults that
themselves hold `${...}`, and `$$` for a literal `$`. Only values are interpolated, never
keys, as compose does. Pure: the environment is a mapping passed in.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from config.errors import ConfigError, Path, Positions, Problem

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class InterpolationError(ValueError):
    """A bad `${...}` or a `${VAR:?err}` whose VAR is missing; the text is the message."""


def substitute(text: str, env: Mapping[str, str]) -> str:
    """Interpolate one string. Raises InterpolationError."""
    out: list[str] = []
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch != "$":
            j = text.find("$", i)
            j = n if j < 0 else j
            out.append(text[i:j])
            i = j
            continue
        if i + 1 >= n:
            out.append("$")
            i += 1
            continue
        nxt = text[i + 1]
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "{":
            end = _matching_brace(text, i + 2)
            if end < 0:
                raise InterpolationError(f"invalid interpolation format for {text!r}")
            out.append(_braced(text[i + 2 : end], text, env))
            i = end + 1
        else:
            m = _NAME.match(text, i + 1)
            if not m:
                raise InterpolationError(f"invalid interpolation format for {text!r}")
            out.append(env.get(m.group(0), ""))
            i = m.end()
    return "".join(out)


def _matching_brace(text: str, start: int) -> int:
    depth = 1
    i = start
    while i < len(text):
        if text.startswith("${", i):
            depth += 1
            i += 2
            continue
        if text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1


def _braced(inner: str, whole: str, env: Mapping[str, str]) -> str:
    m = _NAME.match(inner)
    if not m:
        raise InterpolationError(f"invalid interpolation format for {whole!r}")
    name = m.group(0)
    rest = inner[m.end() :]
    value = env.get(name)
    if not rest:
        return value if value is not None else ""
    for op in (":-", ":?", ":+", "-", "?", "+"):
        if rest.startswith(op):
            arg = rest[len(op) :]
            break
    else:
        raise InterpolationError(f"invalid interpolation format for {whole!r}")
    missing = value is None or (op.startswith(":") and value == "")
    if op in (":-", "-"):
        return substitute(arg, env) if missing else str(value)
    if op in (":+", "+"):
        return "" if missing else substitute(arg, env)
    if missing:  # :? and ?
        detail = substitute(arg, env) if arg else f"variable {name} is not set"
        raise InterpolationError(
            f"required variable {name} is missing a value: {detail}"
            if arg
            else f"required variable {name} is missing a value"
        )
    return str(value)


def interpolate(value: Any, env: Mapping[str, str], positions: Positions, path: Path = ()) -> Any:
    """Interpolate every string value under `value`; errors name file:line:col."""
    problems: list[Problem] = []
    result = _walk(value, env, positions, path, problems)
    if problems:
        raise ConfigError(problems)
    return result


def _walk(
    value: Any, env: Mapping[str, str], pos: Positions, path: Path, problems: list[Problem]
) -> Any:
    if isinstance(value, str):
        try:
            return substitute(value, env)
        except InterpolationError as exc:
            problems.append(Problem(pos.get(path), str(exc)))
            return value
    if isinstance(value, dict):
        return {k: _walk(v, env, pos, (*path, str(k)), problems) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk(v, env, pos, (*path, i), problems) for i, v in enumerate(value)]
    return value
