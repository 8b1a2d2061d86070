"""A subset of Go's text/template, enough for `inspect -f` and `--format` as people use them.

Supported: `{{.Field.Sub}}`, `{{.}}`, `{{json .X}}`, pipelines (`{{.X | json}}`),
`{{index .Map "key"}}`, `{{len .X}}`, `{{join .List ","}}`, `{{upper}}`/`{{lower}}`/
`{{title}}`, `{{println ...}}`, `{{printf "%s" .X}}`, `{{if}}…{{else}}…{{end}}`,
`{{range}}…{{else}}…{{end}}`, `{{with}}…{{end}}`, and `{{-`/`-}}` trimming. Values print
the way Go's fmt does (`true`, `[a b]`, `map[k:v]`, `<no value>`), since scripts match
those strings.
"""

from __future__ import annotations

import json

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class TemplateError(Exception):
    """The template cannot be parsed or executed (docker: `template parsing error: ...`)."""


class _Missing:
    """A map key that is absent: Go prints `<no value>` for it."""

    def __repr__(self) -> str:
        return "<no value>"


MISSING = _Missing()


def go_str(value: Any) -> str:
    """Format a value as Go's `fmt.Sprint` does for decoded JSON."""
    if value is MISSING:
        return "<no value>"
    if value is None:
        return "<nil>"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e21:
            return str(int(value))
        return repr(value)
    if isinstance(value, list):
        return "[" + " ".join(go_str(v) for v in value) + "]"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{go_str(value[k])}" for k in sorted(value)) + "]"
    return str(value)


def _truthy(value: Any) -> bool:
    return value is not MISSING and bool(value)


def _json(value: Any) -> str:
    plain = None if value is MISSING else value
    return json.dumps(plain, separators=(",", ":"), ensure_ascii=False)


def _index(value: Any, *keys: Any) -> Any:
    for key in keys:
        if isinstance(value, dict):
            value = value.get(key, MISSING)
        elif isinstance(value, list) and isinstance(key, int):
            try:
                value = value[key]
            except IndexError:
                raise TemplateError(f"index out of range: {key}") from None
        else:
            raise TemplateError(f"can't index item of type {type(value).__name__}")
    return value


def _printf(fmt: str, *args: Any) -> str:
    out: list[str] = []
    it = iter(args)
    i = 0
    while i < len(fmt):
        ch = fmt[i]
        if ch == "%" and i + 1 < len(fmt):
            verb = fmt[i + 1]
            i += 2
            if verb == "%":
                out.append("%")
            elif verb == "q":
                out.append(json.dumps(go_str(next(it, ""))))
            else:
                out.append(go_str(next(it, MISSING)))
            continue
        out.append(ch)
        i += 1
    return "".join(out)


FUNCS: dict[str, Any] = {
    "json": _json,
    "index": _index,
    "len": lambda v: len(v) if v is not MISSING and v is not None else 0,
    "join": lambda v, sep: sep.join(go_str(x) for x in (v or [])),
    "split": lambda s, sep: go_str(s).split(sep),
    "upper": lambda s: go_str(s).upper(),
    "lower": lambda s: go_str(s).lower(),
    "title": lambda s: go_str(s).title(),
    "print": lambda *a: "".join(go_str(x) for x in a),
    "println": lambda *a: " ".join(go_str(x) for x in a) + "\n",
    "printf": _printf,
    "not": lambda v: not _truthy(v),
    "eq": lambda a, *b: any(a == x for x in b),
    "ne": lambda a, b: a != b,
}

# -- parsing ---------------------------------------------------------------------------
# A node is ("text", str) | ("action", pipeline) | (kind, pipeline, body, else_body)
# for kind in if/range/with. A pipeline is a list of commands; a command is a list of
# argument tokens ("field", [names]) | ("lit", value) | ("func", name).


def _lex(src: str) -> list[tuple[str, str]]:
    """Split into ("text", s) and ("action", inner) pieces, applying `{{-`/`-}}` trims."""
    out: list[tuple[str, str]] = []
    pos = 0
    while True:
        start = src.find("{{", pos)
        if start < 0:
            out.append(("text", src[pos:]))
            return out
        text = src[pos:start]
        end = src.find("}}", start + 2)
        if end < 0:
            raise TemplateError("unclosed action")
        inner = src[start + 2 : end]
        if inner.startswith("- ") or inner == "-":
            text = text.rstrip()
            inner = inner[1:]
        pos = end + 2
        if inner.endswith(" -"):
            inner = inner[:-1]
            while pos < len(src) and src[pos] in " \t\r\n":
                pos += 1
        out.append(("text", text))
        out.append(("action", inner.strip()))


def _tokens(text: str) -> list[str]:
    toks: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch in "\"`":
            j = i + 1
            while j < len(text) and text[j] != ch:
                j += 2 if text[j] == "\\" and ch == '"' else 1
            if j >= len(text):
                raise TemplateError(f"unterminated quoted string in {text!r}")
            toks.append(text[i : j + 1])
            i = j + 1
        elif ch in "|()":
            toks.append(ch)
            i += 1
        else:
            j = i
            while j < len(text) and not text[j].isspace() and text[j] not in "|()\"`":
                j += 1
            toks.append(text[i:j])
            i = j
    return toks


def _arg(tok: str) -> tuple[str, Any]:
    if tok.startswith('"'):
        return ("lit", json.loads(tok))
    if tok.startswith("`"):
        return ("lit", tok[1:-1])
    if tok in ("true", "false"):
        return ("lit", tok == "true")
    if tok == "nil":
        return ("lit", None)
    if tok == "." or tok == "$":
        return ("field", [])
    if tok.startswith(".") or tok.startswith("$."):
        names = tok.lstrip("$").split(".")[1:]
        if any(not n for n in names):
            raise TemplateError(f"bad field {tok!r}")
        return ("root" if tok.startswith("$") else "field", names)
    try:
        return ("lit", int(tok))
    except ValueError:
        pass
    try:
        return ("lit", float(tok))
    except ValueError:
        pass
    if tok in FUNCS:
        return ("func", tok)
    raise TemplateError(f'function "{tok}" not defined')


def _pipeline(text: str) -> list[list[tuple[str, Any]]]:
    cmds: list[list[tuple[str, Any]]] = [[]]
    for tok in _tokens(text):
        if tok == "|":
            cmds.append([])
        elif tok in "()":
            raise TemplateError("parenthesized pipelines are not supported")
        else:
            cmds[-1].append(_arg(tok))
    if any(not c for c in cmds):
        raise TemplateError(f"missing value for command in {text!r}")
    return cmds


def _parse(
    pieces: list[tuple[str, str]], i: int, stop: tuple[str, ...]
) -> tuple[list[Any], int, str]:
    nodes: list[Any] = []
    while i < len(pieces):
        kind, text = pieces[i]
        i += 1
        if kind == "text":
            if text:
                nodes.append(("text", text))
            continue
        word, _, rest = text.partition(" ")
        if word in stop:
            return nodes, i, word
        if word in ("if", "range", "with"):
            body, i, ended = _parse(pieces, i, ("else", "end"))
            else_body: list[Any] = []
            if ended == "else":
                else_body, i, _ = _parse(pieces, i, ("end",))
            nodes.append((word, _pipeline(rest), body, else_body))
        elif word in ("end", "else"):
            raise TemplateError(f"unexpected {{{{{word}}}}}")
        elif text.startswith("/*"):
            continue
        else:
            nodes.append(("action", _pipeline(text)))
    if stop:
        raise TemplateError("unexpected EOF: missing {{end}}")
    return nodes, i, ""


class Template:
    """A parsed template; `render(data)` executes it against decoded JSON."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.nodes, _, _ = _parse(_lex(source), 0, ())

    def render(self, data: Any) -> str:
        out: list[str] = []
        self._exec(self.nodes, data, data, out)
        return "".join(out)

    def _exec(self, nodes: list[Any], dot: Any, root: Any, out: list[str]) -> None:
        for node in nodes:
            kind = node[0]
            if kind == "text":
                out.append(node[1])
            elif kind == "action":
                out.append(go_str(self._pipe(node[1], dot, root)))
            else:
                value = self._pipe(node[1], dot, root)
                if kind == "if":
                    self._exec(node[2] if _truthy(value) else node[3], dot, root, out)
                elif kind == "with":
                    if _truthy(value):
                        self._exec(node[2], value, root, out)
                    else:
                        self._exec(node[3], dot, root, out)
                else:  # range
                    items: list[Any]
                    if isinstance(value, dict):
                        items = [value[k] for k in sorted(value)]
                    elif isinstance(value, list):
                        items = value
                    elif not _truthy(value):
                        items = []
                    else:
                        raise TemplateError(f"range can't iterate over {go_str(value)}")
                    if not items:
                        self._exec(node[3], dot, root, out)
                    for item in items:
                        self._exec(node[2], item, root, out)

    def _pipe(self, cmds: list[list[tuple[str, Any]]], dot: Any, root: Any) -> Any:
        value: Any = MISSING
        for n, cmd in enumerate(cmds):
            extra = [value] if n > 0 else []
            value = self._command(cmd, extra, dot, root)
        return value

    def _command(self, cmd: list[tuple[str, Any]], extra: list[Any], dot: Any, root: Any) -> Any:
        head_kind, head = cmd[0]
        if head_kind == "func":
            args = [self._value(a, dot, root) for a in cmd[1:]] + extra
            try:
                return FUNCS[head](*args)
            except TypeError as exc:
                raise TemplateError(f"error calling {head}: {exc}") from None
        if len(cmd) > 1 or extra:
            raise TemplateError(f"can't give arguments to non-function {go_str(head)}")
        return self._value(cmd[0], dot, root)

    @staticmethod
    def _value(arg: tuple[str, Any], dot: Any, root: Any) -> Any:
        kind, payload = arg
        if kind == "lit":
            return payload
        if kind == "func":
            return FUNCS[payload]()
        value = root if kind == "root" else dot
        for name in payload:
            if isinstance(value, dict):
                value = value.get(name, MISSING)
            elif value is None or value is MISSING:
                raise TemplateError(f"nil pointer evaluating .{name}")
            else:
                raise TemplateError(f"can't evaluate field {name} in type {type(value).__name__}")
        return value


def render(source: str, data: Any) -> str:
    """Parse and execute in one go (what `inspect -f` does per object)."""
    return Template(source).render(data)


def render_list(source: str, rows: list[dict[str, str]], headers: dict[str, str]) -> str:
    """`--format` for listings: one rendered line per row; `table ...` adds aligned headers.

    The header line is the same template rendered against the column titles, and cells
    separated by `\\t` are aligned the way docker's tabwriter does.
    """
    from supervisor.cli.format import table

    is_table = source.startswith("table")
    body = source[len("table"):].lstrip() if is_table else source
    body = body.replace("\\t", "\t").replace("\\n", "\n")
    tmpl = Template(body)
    lines = [tmpl.render(row) for row in rows]
    if not is_table:
        return "".join(line + "\n" for line in lines)
    head = tmpl.render(headers)
    return table([line.split("\t") for line in [head, *lines]])
