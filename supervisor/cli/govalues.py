"""Go's view of decoded JSON: how `fmt` prints it, what `%T` names it, how `json` encodes it.

Templates print values the way Go's fmt does (`true`, `[a b]`, `map[k:v]`, `<nil>`,
`<no value>`, `1e+06`) because scripts compare against those strings. Listing rows are
`Record`s: docker's formatter contexts, typed values whose unknown fields are errors
and whose methods take arguments (`.Label "key"`). Pure functions, no I/O.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any


class _Missing:
    """Go's invalid reflect.Value: an absent map key. Prints `<no value>`, is false."""

    def __repr__(self) -> str:
        return "<no value>"


MISSING = _Missing()


class Record:
    """A typed template value, like docker's `*formatter.ContainerContext`.

    `fields` are what `{{.Name}}` reads (docker's no-argument methods); `methods` take
    arguments (`{{.Label "com.x"}}`), each with its parameters' Go types. An unknown
    field is an error naming `type_name`, as Go's is, unless `open` (a map such as the
    table header's, where it is `<no value>`). `marshal` is what `{{json .}}` prints;
    by default docker's formatter.MarshalJSON: the fields, keys sorted, HTML escaped.
    """

    __slots__ = ("type_name", "fields", "methods", "open", "marshal")

    def __init__(
        self,
        type_name: str,
        fields: Mapping[str, Any],
        methods: Mapping[str, tuple[Callable[..., Any], tuple[str, ...]]] | None = None,
        *,
        open: bool = False,
        marshal: Callable[[], str] | None = None,
    ) -> None:
        self.type_name = type_name
        self.fields = fields
        self.methods = methods or {}
        self.open = open
        self.marshal = marshal

    def to_json(self) -> str:
        if self.marshal is not None:
            return self.marshal()
        return go_json(dict(sorted(self.fields.items())), escape_html=True)


def go_type(value: Any) -> str:
    """The Go type name errors and `%T` show (decoded JSON: Go's interface types)."""
    if value is None or value is MISSING:
        return "<nil>"
    if isinstance(value, Record):
        return value.type_name
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "[]string" if value and all(isinstance(v, str) for v in value) else (
            "[]interface {}")
    if isinstance(value, dict):
        return "map[string]interface {}"
    return type(value).__name__


def go_float(value: float, verb: str = "g") -> str:
    """fmt's %v of a float64 (shortest digits, `1e+06`), or encoding/json's with "json"."""
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "-0" if str(value).startswith("-") else "0"
    sign = "-" if value < 0 else ""
    digits, exp = _shortest(abs(value))
    low, high = (-6, 21) if verb == "json" else (-4, 6)  # encoding/json: 1e-6 <= |v| < 1e21
    if exp < low or exp >= high:
        mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        if verb == "json":  # encoding/json trims the exponent: 1e-07 -> 1e-7
            return f"{sign}{mant}e{'-' if exp < 0 else '+'}{abs(exp)}"
        return f"{sign}{mant}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if exp < 0:
        return f"{sign}0.{'0' * (-exp - 1)}{digits}"
    if len(digits) <= exp + 1:
        return sign + digits + "0" * (exp + 1 - len(digits))
    return f"{sign}{digits[: exp + 1]}.{digits[exp + 1 :]}"


def _shortest(value: float) -> tuple[str, int]:
    """(significant digits, decimal exponent of the first) of repr's shortest round trip."""
    mant, _, e = repr(value).partition("e")
    whole, _, frac = mant.partition(".")
    digits = whole + frac
    point = len(whole) + (int(e) if e else 0)
    stripped = digits.lstrip("0")
    point -= len(digits) - len(stripped)
    return stripped.rstrip("0") or "0", point - 1


def go_str(value: Any) -> str:
    """fmt.Sprint of a value: what `{{.X}}` prints."""
    if value is MISSING:
        return "<no value>"
    if value is None:
        return "<nil>"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, float):
        return go_float(value)
    if isinstance(value, list):
        return "[" + " ".join(go_str(v) for v in value) + "]"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{go_str(value[k])}" for k in sorted(value)) + "]"
    if isinstance(value, Record):
        return "&{" + " ".join(go_str(value.fields[k]) for k in value.fields) + "}"
    return str(value)


def truth(value: Any) -> bool:
    """Go's template truth: false, 0, nil, empty string/slice/map and absent are false."""
    if value is MISSING or value is None:
        return False
    if isinstance(value, Record):
        return True
    return bool(value)


# -- JSON ------------------------------------------------------------------------------

_HTML = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"}


def _json_str(text: str, escape_html: bool) -> str:
    import json  # here: `ps` imports this module, and json costs the CLI ~5 ms at start

    out = json.dumps(text, ensure_ascii=False)
    out = out.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    if escape_html:
        for ch, esc in _HTML.items():
            out = out.replace(ch, esc)
    return out


def go_json(value: Any, *, escape_html: bool = False, indent: int | None = None) -> str:
    """encoding/json: compact (or `indent` spaces), Go's float format, Go's escapes.

    Docker's `json` template function turns HTML escaping off; json.Marshal (the
    formatter rows, `inspect`'s output) leaves it on: `<` is `\\u003c` there.
    """
    parts: list[str] = []
    _encode(value, escape_html, indent, 0, parts)
    return "".join(parts)


def _encode(value: Any, esc: bool, indent: int | None, depth: int, out: list[str]) -> None:
    if value is None or value is MISSING:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        out.append(str(value))
    elif isinstance(value, float):
        out.append(go_float(value, "json"))
    elif isinstance(value, str):
        out.append(_json_str(value, esc))
    elif isinstance(value, Record):
        out.append(value.to_json())
    elif isinstance(value, (list, tuple, dict)):
        is_dict = isinstance(value, dict)
        items: list[Any] = list(value.items()) if isinstance(value, dict) else list(value)
        open_, close = ("{", "}") if is_dict else ("[", "]")
        if not items:
            out.append(open_ + close)
            return
        out.append(open_)
        pad = "" if indent is None else "\n" + " " * (indent * (depth + 1))
        for n, item in enumerate(items):
            if n:
                out.append(",")
            out.append(pad)
            if is_dict:
                key, val = item
                out.append(_json_str(str(key), esc))
                out.append(":" if indent is None else ": ")
            else:
                val = item
            _encode(val, esc, indent, depth + 1, out)
        out.append("" if indent is None else "\n" + " " * (indent * depth))
        out.append(close)
    else:
        out.append(_json_str(str(value), esc))


# -- fmt.Sprintf -----------------------------------------------------------------------


def go_quote(text: str) -> str:
    """strconv.Quote: double quotes, Go escapes, non-printable runes as \\x/\\u."""
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[ch])
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif not ch.isprintable() and ch != " ":
            out.append(f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


_SHORT_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r",
                  "\t": "\\t", "\v": "\\v"}


def _bad_verb(verb: str, arg: Any) -> str:
    if arg is None or arg is MISSING:
        return f"%!{verb}(<nil>)"
    return f"%!{verb}({go_type(arg)}={go_str(arg)})"


def _pad(text: str, flags: str, width: int | None, zero_ok: bool = False) -> str:
    if width is None or len(text) >= width:
        return text
    if "-" in flags:
        return text.ljust(width)
    if "0" in flags and zero_ok:
        sign = text[0] if text[:1] in ("-", "+", " ") else ""
        return sign + text[len(sign):].rjust(width - len(sign), "0")
    return text.rjust(width)


def _format_one(verb: str, flags: str, width: int | None, prec: int | None, arg: Any) -> str:
    if verb == "T":
        return _pad(go_type(arg), flags, width)
    if verb == "v":
        if isinstance(arg, float) and prec is not None:
            return _pad(f"{arg:.{prec}g}", flags, width, True)
        return _pad(go_str(arg), flags, width, isinstance(arg, (int, float)))
    if isinstance(arg, list) and verb != "q":
        return "[" + " ".join(_format_one(verb, flags, width, prec, a) for a in arg) + "]"
    if isinstance(arg, bool):
        return _pad(go_str(arg), flags, width) if verb == "t" else _bad_verb(verb, arg)
    if isinstance(arg, str):
        if verb == "s":
            return _pad(arg if prec is None else arg[:prec], flags, width)
        if verb == "q":
            return _pad(go_quote(arg if prec is None else arg[:prec]), flags, width)
        if verb in "xX":
            hexed = arg.encode().hex()
            return _pad(hexed.upper() if verb == "X" else hexed, flags, width)
        return _bad_verb(verb, arg)
    if isinstance(arg, int):
        spec = "".join(f for f in flags if f in "+ #")
        if verb == "d":
            return _pad(f"{arg:{spec}d}", flags, width, True)
        if verb in "xXob":
            return _pad(f"{arg:{spec}{verb}}", flags, width, True)
        if verb == "c":
            return _pad(chr(arg), flags, width)
        if verb == "q":
            return _pad("'" + go_quote(chr(arg))[1:-1].replace("'", "\\'") + "'", flags, width)
        if verb == "U":
            return _pad(f"U+{arg:04X}", flags, width)
        return _bad_verb(verb, arg)
    if isinstance(arg, float):
        spec = "".join(f for f in flags if f in "+ #")
        if verb in "eEfF":
            return _pad(f"{arg:{spec}.{6 if prec is None else prec}{verb}}", flags, width, True)
        if verb in "gG":
            text = go_float(arg) if prec is None else f"{arg:{spec}.{prec}g}"
            return _pad(text.upper() if verb == "G" else text, flags, width, True)
        return _bad_verb(verb, arg)
    return _bad_verb(verb, arg)


def sprintf(fmt: str, *args: Any) -> str:
    """fmt.Sprintf for the verbs templates use: %s %v %d %q %x %f %e %g %t %T %c, widths."""
    out: list[str] = []
    i, n, used = 0, len(fmt), 0
    while i < n:
        j = fmt.find("%", i)
        if j < 0:
            out.append(fmt[i:])
            break
        out.append(fmt[i:j])
        i = j + 1
        flags = ""
        while i < n and fmt[i] in "+-# 0":
            flags += fmt[i]
            i += 1
        width = prec = None
        start = i
        while i < n and fmt[i].isdigit():
            i += 1
        if i > start:
            width = int(fmt[start:i])
        if i < n and fmt[i] == ".":
            i += 1
            start = i
            while i < n and fmt[i].isdigit():
                i += 1
            prec = int(fmt[start:i] or 0)
        if i >= n:
            out.append("%!(NOVERB)")
            break
        verb = fmt[i]
        i += 1
        if verb == "%":
            out.append("%")
            continue
        if used >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        out.append(_format_one(verb, flags, width, prec, args[used]))
        used += 1
    if used < len(args):
        extra = ", ".join(
            "<nil>" if a is None or a is MISSING else f"{go_type(a)}={go_str(a)}"
            for a in args[used:]
        )
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)


def sprint(*args: Any) -> str:
    """fmt.Sprint: a space between operands when neither is a string."""
    out: list[str] = []
    for n, arg in enumerate(args):
        if n and not isinstance(arg, str) and not isinstance(args[n - 1], str):
            out.append(" ")
        out.append(go_str(arg))
    return "".join(out)


def sprintln(*args: Any) -> str:
    """fmt.Sprintln: spaces between all operands, then a newline."""
    return " ".join(go_str(a) for a in args) + "\n"
