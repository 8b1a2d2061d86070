"""`loads`/`dumps` for the CLI's start path, on the C accelerator `_json` alone.

`import json` costs the CLI about as much as starting Python does (measured with
callgrind: `python -S -c pass` 27.8 M instructions, `import json` 35.6 M more), nearly
all of it `re` and `enum`, which json.decoder imports to compile three patterns that
the C scanner never uses.  These two functions build the same C scanner and encoder
the `json` module would (same output: ASCII escapes, `float.__repr__`, NaN allowed)
without importing it; where `_json` is missing they fall back to `json`.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: importing typing imports re
if TYPE_CHECKING:
    from typing import Any

try:
    import _json
except ImportError:  # pragma: no cover - every CPython has it
    _json = None  # type: ignore[assignment]

__all__ = ["dumps", "loads"]

_CONSTANTS = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}
_SPACE = " \t\n\r"


class _Context:
    """The attributes `_json.make_scanner` reads (those of a default JSONDecoder)."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = _CONSTANTS.__getitem__
    memo: dict[str, str] = {}


_scan = _json.make_scanner(_Context()) if _json is not None else None  # type: ignore[arg-type]


def loads(text: str | bytes | bytearray) -> Any:
    """`json.loads` for UTF-8 text; ValueError (as json's) on anything else."""
    if _scan is None:  # pragma: no cover
        import json

        return json.loads(text)
    s = text.decode("utf-8") if isinstance(text, bytes | bytearray) else text
    if s.startswith("\ufeff"):
        raise ValueError("Unexpected UTF-8 BOM (decode using utf-8-sig)")
    start = len(s) - len(s.lstrip(_SPACE))
    try:
        obj, end = _scan(s, start)
    except StopIteration as exc:
        raise ValueError(f"Expecting value: char {exc.value}") from None
    finally:
        _Context.memo.clear()
    if s[end:].strip(_SPACE):
        raise ValueError(f"Extra data: char {end}")
    return obj


def dumps(obj: Any, *, compact: bool = False) -> str:
    """`json.dumps(obj)` (or with `separators=(",", ":")` when `compact`)."""
    if _json is None:  # pragma: no cover
        import json

        return json.dumps(obj, separators=(",", ":") if compact else None)
    item, key = (",", ":") if compact else (", ", ": ")
    encode = _json.make_encoder(
        {}, _default, _json.encode_basestring_ascii, None, key, item, False, False, True
    )
    return "".join(encode(obj, 0))


def _default(o: Any) -> Any:
    raise TypeError(f"Object of type {o.__class__.__name__} is not JSON serializable")
