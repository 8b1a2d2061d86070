"""What a YAML scalar means to compose: go-yaml v3's resolution, and Go's text of it.

Docker Compose reads service files with go-yaml v3 (YAML 1.2's core schema plus a few
quirks of its own), not YAML 1.1 as PyYAML does, and the difference is visible: under
1.1 an unquoted `- 22:22` in `ports:` is the base-60 number 1342. go-yaml's rules for a
plain (unquoted, untagged) scalar, from its `resolve.go`:

- null: ``, `~`, `null`, `Null`, `NULL`; booleans: only `true`/`True`/`TRUE` and
  `false`/`False`/`FALSE` (`yes`, `no`, `on`, `off`, `y`, `n` stay strings);
- a scalar starting with a digit or a sign is an integer if Go's `ParseInt(s, 0, 64)`
  (then `ParseUint`) takes it once every `_` is removed: decimal, `0x1F`, `0o755`,
  `0b101`, and YAML 1.1's `0755` (octal, kept by go-yaml v3 "for compatibility");
  otherwise a float if it matches `[-+]?(\\.[0-9]+|[0-9]+(\\.[0-9]*)?)([eE][-+]?[0-9]+)?`
  (so `08` is the float 8.0, and a too large integer becomes a float);
- a scalar starting with `.` is a float if Go's `ParseFloat` takes it (`.5`), with
  `.inf`, `-.inf`, `.nan` in their three spellings;
- there are no base-60 numbers: `22:22` and `1:30` are strings;
- anything else is a string. go-yaml would make a Go time value of a date such as
  `2024-01-01` (which compose later prints as `2024-01-01 00:00:00 +0000 UTC`); corral
  keeps the text as written instead, the only place it departs from go-yaml here.

`text_of` is the other half: compose turns a resolved number back into a string with
Go's `fmt.Sprint` wherever a string is wanted (environment, labels, options), so
`VERSION: 1.0` is "1", not Python's "1.0". Pure.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from decimal import Decimal
from typing import Any

NULLS = frozenset({"", "~", "null", "Null", "NULL"})
TRUES = frozenset({"true", "True", "TRUE"})
FALSES = frozenset({"false", "False", "FALSE"})
_SPECIAL_FLOATS = {
    **{s: math.nan for s in (".nan", ".NaN", ".NAN")},
    **{p + s: math.inf for p in ("", "+") for s in (".inf", ".Inf", ".INF")},
    **{"-" + s: -math.inf for s in (".inf", ".Inf", ".INF")},
}
# go-yaml's yamlStyleFloat, tried on the text with its `_` removed.
_YAML_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
# What Go's ParseFloat takes of a scalar that starts with `.`: decimal digits with `_`
# only between digits, and an optional exponent.
_DOT_FLOAT = re.compile(r"\.[0-9](_?[0-9])*([eE][-+]?[0-9](_?[0-9])*)?")
# Go's ParseInt with base 0 (after the `_` are gone): a sign, then a base prefix or a
# leading 0 for octal.
_GO_INT = re.compile(
    r"(?P<sign>[-+]?)(?:0[bB](?P<bin>[01]+)|0[oO](?P<oct>[0-7]+)|0[xX](?P<hex>[0-9a-fA-F]+)"
    r"|0(?P<old_oct>[0-7]*)|(?P<dec>[1-9][0-9]*))"
)
_TIMESTAMP = re.compile(
    r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}"
    r"(?:[Tt ][0-9]{1,2}:[0-9]{1,2}:[0-9]{1,2}(?:\.[0-9]*)?(?:Z|[-+][0-9]{2}:[0-9]{2})?)?"
)
_INT64_MIN, _INT64_MAX, _UINT64_MAX = -(2**63), 2**63 - 1, 2**64 - 1


def _go_int(plain: str) -> int | None:
    """Go's ParseInt(plain, 0, 64), else ParseUint (no sign), else None."""
    m = _GO_INT.fullmatch(plain)
    if m is None:
        return None
    for group, base in (("bin", 2), ("oct", 8), ("hex", 16), ("old_oct", 8), ("dec", 10)):
        digits = m.group(group)
        if digits is not None:
            value = int(digits or "0", base)
            break
    if m.group("sign") == "-":
        value = -value
    if _INT64_MIN <= value <= _INT64_MAX or (not m.group("sign") and value <= _UINT64_MAX):
        return value
    return None


def _float(text: str) -> float | None:
    value = float(text)
    return None if math.isinf(value) else value  # Go's ParseFloat: out of range


def resolve_plain(text: str) -> Any:
    """A plain scalar's value, as go-yaml v3 resolves it for an `interface{}`."""
    if text in NULLS:
        return None
    if text in TRUES:
        return True
    if text in FALSES:
        return False
    if text in _SPECIAL_FLOATS:
        return _SPECIAL_FLOATS[text]
    first = text[0]
    if first == ".":
        if _DOT_FLOAT.fullmatch(text):
            value = _float(text.replace("_", ""))
            if value is not None:
                return value
        return text
    if first.isdigit() and first.isascii() or first in "+-":
        plain = text.replace("_", "")
        number = _go_int(plain)
        if number is not None:
            return number
        if _YAML_FLOAT.fullmatch(plain):
            value = _float(plain)
            if value is not None:
                return value
    return text


class TagError(ValueError):
    """An explicitly tagged scalar that is not of its tag: go-yaml's wording."""


_KIND = {type(None): "!!null", bool: "!!bool", int: "!!int", float: "!!float", str: "!!str"}


def resolve_tagged(tag: str, text: str) -> Any:
    """A scalar written with `!!int`, `!!float`, `!!bool`, `!!null`, `!!timestamp` or
    `!!binary`: resolved as a plain one, then held to its tag (an int is a float's)."""
    if tag == "!!binary":
        try:
            return base64.b64decode("".join(text.split()), validate=True).decode("utf-8", "replace")
        except binascii.Error:
            raise TagError("!!binary value contains invalid base64 data") from None
    if tag == "!!timestamp":
        if _TIMESTAMP.fullmatch(text):
            return text
        raise TagError(f"cannot decode !!str `{text}` as a !!timestamp")
    value = resolve_plain(text)
    kind = _KIND[type(value)]
    if kind == tag:
        return value
    if tag == "!!float" and kind == "!!int":
        return float(value)
    raise TagError(f"cannot decode {kind} `{text}` as a {tag}")


def _go_float(value: float) -> str:
    """Go's `fmt.Sprint` of a float64: the shortest digits; %e from 1e6 or below 1e-4."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    sign, digit_tuple, exp = Decimal(repr(value)).as_tuple()
    assert isinstance(exp, int)
    digits = "".join(map(str, digit_tuple)).rstrip("0")
    exp += len("".join(map(str, digit_tuple))) - len(digits)
    point = len(digits) + exp  # digits[:point] . digits[point:]
    x = point - 1
    neg = "-" if sign else ""
    if x < -4 or x >= 6:  # strconv's %g with the shortest digits
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{neg}{mantissa}e{'-' if x < 0 else '+'}{abs(x):02d}"
    if point <= 0:
        return f"{neg}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return f"{neg}{digits}{'0' * (point - len(digits))}"
    return f"{neg}{digits[:point]}.{digits[point:]}"


def text_of(value: Any) -> str:
    """A resolved scalar as the string compose makes of it (Go's `fmt.Sprint`)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _go_float(value)
    return str(value)
