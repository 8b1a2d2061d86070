"""Go's text/template, as the docker CLI runs it for `--format` and `inspect -f`.

A pure core in three stages, each as Go's: `_lex` (text/template/parse/lex.go: text,
actions, `{{-`/`-}}` trims, comments), `_Parser` (parse.go: pipelines, variables,
`if`/`else if`/`range`/`with`/`define`/`template`/`block`/`break`/`continue`, the
parse-time checks for undefined functions and variables) and `_Exec` (exec.go: fields,
methods with arguments, `$x, $y :=` in `range`, parentheses, short-circuit `and`/`or`).
Functions are Go's builtins plus docker's (`json`, `join`, `split`, `upper`, `lower`,
`title`, `pad`, `truncate`).

Errors are `TemplateError`s worded as Go's, so `template parsing error: ...` reads as
docker's: `template: :1: unclosed action`, `template: :1:2: executing "" at <.Nope>:
can't evaluate field Nope in type *formatter.ContainerContext`. Values print as Go's
fmt prints them (`supervisor.cli.govalues`).
"""

from __future__ import annotations

from supervisor.cli.govalues import (
    MISSING,
    Record,
    go_json,
    go_quote,
    go_str,
    go_type,
    sprint,
    sprintf,
    sprintln,
    truth,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any


class TemplateError(Exception):
    """A template that does not parse or execute; `str()` is Go's error text.

    `partial` is what an execution wrote before it failed (docker keeps a table
    header's partial output).
    """

    def __init__(self, message: str, partial: str = "") -> None:
        super().__init__(message)
        self.partial = partial


_SPACE = " \t\r\n"
_KEYWORDS = {"block", "break", "continue", "define", "else", "end", "if", "range", "nil",
             "template", "with"}


class _Tok:
    __slots__ = ("typ", "val", "pos", "line")

    def __init__(self, typ: str, val: str, pos: int, line: int) -> None:
        self.typ = typ
        self.val = val
        self.pos = pos
        self.line = line

    def __str__(self) -> str:
        """How Go's parse errors name a token: `"#"`, `<if>`, `EOF`."""
        if self.typ == "eof":
            return "EOF"
        if self.typ in _KEYWORDS or self.typ == "dot":
            return f"<{self.val}>"
        if len(self.val) > 10:
            return go_quote(self.val[:10]) + "..."
        return go_quote(self.val)


def _alnum(ch: str) -> bool:
    return ch == "_" or ch.isalnum()


def _rune(ch: str) -> str:
    """Go's %#U: `U+007D '}'`."""
    return f"U+{ord(ch):04X} '{ch}'" if ch.isprintable() else f"U+{ord(ch):04X}"


# -- lexing ----------------------------------------------------------------------------


def _quoted_end(src: str, pos: int, quote: str) -> int:
    """Where a `"..."` or `'...'` starting at `pos` ends (just past the closing quote),
    backslash escapes skipped; -1 if the line or the text ends first, as Go's lexer."""
    n = len(src)
    pos += 1
    while True:
        if pos >= n or src[pos] == "\n":
            return -1
        if src[pos] == "\\":
            pos += 2
            continue
        pos += 1
        if src[pos - 1] == quote:
            return pos


def _lex(src: str, name: str) -> list[_Tok]:
    """The token stream of text/template's lexer; lexical errors raise at once."""
    toks: list[_Tok] = []
    pos, line, n = 0, 1, len(src)

    def fail(msg: str, at_line: int) -> TemplateError:
        return TemplateError(f"template: {name}:{at_line}: {msg}")

    while True:
        start = src.find("{{", pos)
        if start < 0:
            if pos < n:
                toks.append(_Tok("text", src[pos:], pos, line))
                line += src.count("\n", pos)
            toks.append(_Tok("eof", "", n, line))
            return toks
        after = start + 2
        trim_left = src[after : after + 1] == "-" and src[after + 1 : after + 2] in tuple(_SPACE)
        text = src[pos:start]
        if trim_left:
            text = text.rstrip(_SPACE)
        if text:
            toks.append(_Tok("text", text, pos, line))
        line += src.count("\n", pos, start)
        pos = after + (2 if trim_left else 0)
        if src.startswith("/*", pos):
            end = src.find("*/", pos + 2)
            if end < 0:
                raise fail("unclosed comment", line)
            line += src.count("\n", pos, end)
            pos = end + 2
            trim_right = _trim_right_at(src, pos)
            if not trim_right and not src.startswith("}}", pos):
                raise fail("comment ends before closing delimiter", line)
            pos += 4 if trim_right else 2
            if trim_right:
                while pos < n and src[pos] in _SPACE:
                    line += src[pos] == "\n"
                    pos += 1
            continue
        toks.append(_Tok("{{", "{{", start, line))
        depth = 0
        while True:  # inside the action
            trim_right = _trim_right_at(src, pos)
            if trim_right or src.startswith("}}", pos):
                if depth:
                    raise fail("unclosed left paren", line)
                pos += 4 if trim_right else 2
                toks.append(_Tok("}}", "}}", pos - 2, line))
                if trim_right:
                    while pos < n and src[pos] in _SPACE:
                        line += src[pos] == "\n"
                        pos += 1
                break
            if pos >= n:
                raise fail("unclosed action", line)
            ch = src[pos]
            begin = pos
            if ch in _SPACE:
                while pos < n and src[pos] in _SPACE:
                    if _trim_right_at(src, pos):
                        break
                    line += src[pos] == "\n"
                    pos += 1
                if pos > begin:
                    toks.append(_Tok("space", src[begin:pos], begin, line))
                continue
            if ch == "=":
                toks.append(_Tok("=", "=", pos, line))
                pos += 1
            elif ch == ":":
                if src[pos + 1 : pos + 2] != "=":
                    raise fail("expected :=", line)
                toks.append(_Tok(":=", ":=", pos, line))
                pos += 2
            elif ch == "|":
                toks.append(_Tok("|", "|", pos, line))
                pos += 1
            elif ch == "(":
                depth += 1
                toks.append(_Tok("(", "(", pos, line))
                pos += 1
            elif ch == ")":
                depth -= 1
                if depth < 0:
                    raise fail("unexpected right paren", line)
                toks.append(_Tok(")", ")", pos, line))
                pos += 1
            elif ch == '"':
                pos = _quoted_end(src, pos, '"')
                if pos < 0:
                    raise fail("unterminated quoted string", line)
                toks.append(_Tok("string", src[begin:pos], begin, line))
            elif ch == "`":
                end = src.find("`", pos + 1)
                if end < 0:
                    raise fail("unterminated raw quoted string", line)
                toks.append(_Tok("rawstring", src[begin : end + 1], begin, line))
                line += src.count("\n", begin, end)
                pos = end + 1
            elif ch == "'":
                pos = _quoted_end(src, pos, "'")
                if pos < 0:
                    raise fail("unterminated character constant", line)
                toks.append(_Tok("charconst", src[begin:pos], begin, line))
            elif ch in ".$" and not (ch == "." and src[pos + 1 : pos + 2].isdigit()):
                pos += 1
                while pos < n and _alnum(src[pos]):
                    pos += 1
                word = src[begin:pos]
                if not _at_terminator(src, pos):
                    raise fail(f"bad character {_rune(src[pos])}", line)
                kind = "variable" if ch == "$" else ("dot" if word == "." else "field")
                toks.append(_Tok(kind, word, begin, line))
            elif ch in "+-." or ch.isdigit():
                pos = _scan_number(src, pos)
                if pos < 0:
                    bad = -pos
                    raise fail(f"bad number syntax: {go_quote(src[begin:bad])}", line)
                toks.append(_Tok("number", src[begin:pos], begin, line))
            elif _alnum(ch):
                while pos < n and _alnum(src[pos]):
                    pos += 1
                word = src[begin:pos]
                if not _at_terminator(src, pos):
                    raise fail(f"bad character {_rune(src[pos])}", line)
                if word in _KEYWORDS:
                    kind = word
                elif word in ("true", "false"):
                    kind = "bool"
                else:
                    kind = "identifier"
                toks.append(_Tok(kind, word, begin, line))
            elif ch.isascii() and ch.isprintable():
                toks.append(_Tok("char", ch, pos, line))
                pos += 1
            else:
                raise fail(f"unrecognized character in action: {_rune(ch)}", line)


def _trim_right_at(src: str, pos: int) -> bool:
    """` -}}` at `pos`: a space, a minus, the right delimiter."""
    return src[pos : pos + 1] in tuple(_SPACE) and src.startswith("-}}", pos + 1)


def _at_terminator(src: str, pos: int) -> bool:
    if pos >= len(src):
        return True
    return src[pos] in _SPACE + ".,|:)(" or src.startswith("}}", pos)


def _scan_number(src: str, pos: int) -> int:
    """End of the number at `pos`, or -(end of the bad text) as Go's lexer judges it."""
    n = len(src)

    def run(chars: str, p: int) -> int:
        while p < n and src[p] in chars:
            p += 1
        return p

    if src[pos] in "+-":
        pos += 1
    digits = "0123456789_"
    if src[pos : pos + 1] == "0":
        pos += 1
        prefix = src[pos : pos + 1]
        if prefix in ("x", "X"):
            digits, pos = "0123456789abcdefABCDEF_", pos + 1
        elif prefix in ("o", "O"):
            digits, pos = "01234567_", pos + 1
        elif prefix in ("b", "B"):
            digits, pos = "01_", pos + 1
    pos = run(digits, pos)
    if src[pos : pos + 1] == ".":
        pos = run(digits, pos + 1)
    if len(digits) == 11 and src[pos : pos + 1] in ("e", "E"):
        pos += 1
        if src[pos : pos + 1] in ("+", "-"):
            pos += 1
        pos = run("0123456789_", pos)
    if len(digits) == 23 and src[pos : pos + 1] in ("p", "P"):
        pos += 1
        if src[pos : pos + 1] in ("+", "-"):
            pos += 1
        pos = run("0123456789_", pos)
    if src[pos : pos + 1] == "i":
        pos += 1
    if pos < n and _alnum(src[pos]):
        return -(pos + 1)
    return pos


# -- nodes -----------------------------------------------------------------------------
# Small classes with Go's String() forms: errors quote them (`at <.State.Health.Status>`).


class _Node:
    __slots__ = ("pos", "line")

    def __init__(self, pos: int, line: int) -> None:
        self.pos = pos
        self.line = line


class _Text(_Node):
    __slots__ = ("text",)

    def __init__(self, pos: int, line: int, text: str) -> None:
        super().__init__(pos, line)
        self.text = text


class _Field(_Node):
    """`.A.B` (idents ["A", "B"])."""

    __slots__ = ("idents",)

    def __init__(self, pos: int, line: int, idents: list[str]) -> None:
        super().__init__(pos, line)
        self.idents = idents

    def __str__(self) -> str:
        return "".join("." + i for i in self.idents)


class _Variable(_Node):
    """`$x.A` (idents ["$x", "A"])."""

    __slots__ = ("idents",)

    def __init__(self, pos: int, line: int, idents: list[str]) -> None:
        super().__init__(pos, line)
        self.idents = idents

    def __str__(self) -> str:
        return ".".join(self.idents)


class _Chain(_Node):
    """`(pipeline).A.B`."""

    __slots__ = ("node", "fields")

    def __init__(self, pos: int, line: int, node: _Node, fields: list[str]) -> None:
        super().__init__(pos, line)
        self.node = node
        self.fields = fields

    def __str__(self) -> str:
        inner = f"({self.node})" if isinstance(self.node, _Pipe) else str(self.node)
        return inner + "".join("." + f for f in self.fields)


class _Ident(_Node):
    __slots__ = ("name",)

    def __init__(self, pos: int, line: int, name: str) -> None:
        super().__init__(pos, line)
        self.name = name

    def __str__(self) -> str:
        return self.name


class _Const(_Node):
    """A literal: `.`, `nil`, `true`, a number, a string (`text` as written)."""

    __slots__ = ("value", "text", "kind")

    def __init__(self, pos: int, line: int, kind: str, value: Any, text: str) -> None:
        super().__init__(pos, line)
        self.kind = kind
        self.value = value
        self.text = text

    def __str__(self) -> str:
        return self.text


class _Command(_Node):
    __slots__ = ("args",)

    def __init__(self, pos: int, line: int) -> None:
        super().__init__(pos, line)
        self.args: list[_Node] = []

    def __str__(self) -> str:
        return " ".join(f"({a})" if isinstance(a, _Pipe) else str(a) for a in self.args)


class _Pipe(_Node):
    __slots__ = ("decl", "is_assign", "cmds")

    def __init__(self, pos: int, line: int) -> None:
        super().__init__(pos, line)
        self.decl: list[str] = []
        self.is_assign = False
        self.cmds: list[_Command] = []

    def __str__(self) -> str:
        head = ", ".join(self.decl) + (" = " if self.is_assign else " := ") if self.decl else ""
        return head + " | ".join(str(c) for c in self.cmds)


class _Action(_Node):
    __slots__ = ("pipe",)

    def __init__(self, pos: int, line: int, pipe: _Pipe) -> None:
        super().__init__(pos, line)
        self.pipe = pipe

    def __str__(self) -> str:
        return "{{" + str(self.pipe) + "}}"


class _Control(_Node):
    """`if`, `range` or `with`: a pipeline, a body, an optional else body."""

    __slots__ = ("kind", "pipe", "body", "else_body")

    def __init__(self, kind: str, pipe: _Pipe, body: list[_Node], else_body: list[_Node]) -> None:
        super().__init__(pipe.pos, pipe.line)
        self.kind = kind
        self.pipe = pipe
        self.body = body
        self.else_body = else_body

    def __str__(self) -> str:
        return "{{" + self.kind + " " + str(self.pipe) + "}}"


class _TemplateCall(_Node):
    __slots__ = ("name", "pipe")

    def __init__(self, pos: int, line: int, name: str, pipe: _Pipe | None) -> None:
        super().__init__(pos, line)
        self.name = name
        self.pipe = pipe

    def __str__(self) -> str:
        tail = f" {self.pipe}" if self.pipe is not None else ""
        return "{{template " + go_quote(self.name) + tail + "}}"


class _Marker(_Node):
    """`{{end}}`, `{{else}}`, `{{break}}`, `{{continue}}`."""

    __slots__ = ("kind",)

    def __init__(self, pos: int, line: int, kind: str) -> None:
        super().__init__(pos, line)
        self.kind = kind

    def __str__(self) -> str:
        return "{{" + self.kind + "}}"


# -- parsing ---------------------------------------------------------------------------


def _unquote(tok: _Tok) -> str:
    """strconv.Unquote of a "..." or `...` literal."""
    text = tok.val
    if text.startswith("`"):
        return text[1:-1]
    out: list[str] = []
    i, end = 1, len(text) - 1
    simple = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
              "\\": "\\", '"': '"', "'": "'"}
    while i < end:
        ch = text[i]
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        esc = text[i + 1]
        if esc in simple and not (esc == "'" and text[0] == '"'):
            out.append(simple[esc])
            i += 2
        elif esc in "xuU":
            size = {"x": 2, "u": 4, "U": 8}[esc]
            digits = text[i + 2 : i + 2 + size]
            try:
                code = int(digits, 16)
                if len(digits) != size:
                    raise ValueError(digits)
            except ValueError:
                raise TemplateError("invalid syntax") from None
            out.append(chr(code))
            i += 2 + size
        elif esc in "01234567":
            out.append(chr(int(text[i + 1 : i + 4], 8)))
            i += 4
        else:
            raise TemplateError("invalid syntax")
    return "".join(out)


def _number(tok: _Tok) -> int | float:
    """A number or character constant as Go's parser reads it (`0x1F`, `017`, `1e3`, 'a')."""
    text = tok.val
    try:
        if tok.typ == "charconst":
            inner = _unquote(_Tok("string", '"' + text[1:-1] + '"', 0, 0))
            if len(inner) != 1:
                raise ValueError(text)
            return ord(inner)
        if text.endswith("i"):
            raise ValueError(text)  # complex constants: Go has them, docker's data never
        sign, body = (text[0], text[1:]) if text[0] in "+-" else ("", text)
        base = body[:2].lower()
        if base in ("0x", "0o", "0b") and not (base == "0x" and ("." in body or "p" in body
                                                                  or "P" in body)):
            return int(text, 0)
        if body.startswith("0") and all(c in "01234567_" for c in body):
            return int(sign + (body.replace("_", "") or "0"), 8)
        if body.replace("_", "").isdigit():
            return int(text.replace("_", ""))
        if base == "0x":
            return float.fromhex(text.replace("_", ""))
        return float(text.replace("_", ""))
    except ValueError:
        if tok.typ == "charconst":
            raise TemplateError(f"malformed character constant: {text}") from None
        raise TemplateError(f"illegal number syntax: {go_quote(text)}") from None


class _Parser:
    """Recursive descent as Go's parse.Tree, with its checks and its error texts."""

    def __init__(self, toks: list[_Tok], name: str, funcs: Mapping[str, Any],
                 templates: dict[str, list[_Node]]) -> None:
        self.toks = toks
        self.i = 0
        self.name = name
        self.funcs = funcs
        self.templates = templates
        self.vars = ["$"]
        self.range_depth = 0

    def fail(self, msg: str, tok: _Tok | None = None) -> TemplateError:
        tok = tok or self.toks[max(self.i - 1, 0)]
        return TemplateError(f"template: {self.name}:{tok.line}: {msg}")

    def next(self) -> _Tok:
        tok = self.toks[self.i]
        if self.i < len(self.toks) - 1:
            self.i += 1
        return tok

    def peek(self) -> _Tok:
        return self.toks[self.i]

    def next_non_space(self) -> _Tok:
        tok = self.next()
        while tok.typ == "space":
            tok = self.next()
        return tok

    def peek_non_space(self) -> _Tok:
        save = self.i
        tok = self.next_non_space()
        self.i = save
        return tok

    def expect(self, typ: str, context: str) -> _Tok:
        tok = self.next_non_space()
        if tok.typ != typ:
            raise self.unexpected(tok, context)
        return tok

    def unexpected(self, tok: _Tok, context: str) -> TemplateError:
        if tok.typ == "error":
            return self.fail(tok.val, tok)
        return self.fail(f"unexpected {tok} in {context}", tok)

    # top level and lists

    def parse(self) -> list[_Node]:
        root: list[_Node] = []
        while self.peek().typ != "eof":
            if self.peek().typ == "{{":
                save = self.i
                self.next()
                if self.next_non_space().typ == "define":
                    self.definition()
                    continue
                self.i = save
            node = self.text_or_action()
            if isinstance(node, _Marker) and node.kind in ("end", "else"):
                raise self.fail(f"unexpected {node}")
            root.append(node)
        return root

    def definition(self) -> None:
        context = "define clause"
        tok = self.next_non_space()
        if tok.typ not in ("string", "rawstring"):
            raise self.unexpected(tok, context)
        name = self.unquote(tok)
        self.expect("}}", context)
        outer_vars, self.vars = self.vars, ["$"]
        body, end = self.item_list()
        self.vars = outer_vars
        if end.kind != "end":
            raise self.fail(f"unexpected {end} in {context}")
        self.templates[name] = body

    def item_list(self) -> tuple[list[_Node], _Marker]:
        nodes: list[_Node] = []
        while self.peek_non_space().typ != "eof":
            node = self.text_or_action()
            if isinstance(node, _Marker) and node.kind in ("end", "else"):
                return nodes, node
            nodes.append(node)
        raise self.fail("unexpected EOF", self.peek())

    def text_or_action(self) -> _Node:
        tok = self.next_non_space()
        if tok.typ == "text":
            return _Text(tok.pos, tok.line, tok.val)
        if tok.typ == "{{":
            return self.action()
        raise self.unexpected(tok, "input")

    def action(self) -> _Node:
        tok = self.next_non_space()
        kind = tok.typ
        if kind in ("if", "range", "with"):
            return self.control(kind)
        if kind in ("break", "continue"):
            after = self.next_non_space()
            if after.typ != "}}":
                raise self.unexpected(after, "{{" + kind + "}}")
            if self.range_depth == 0:
                raise self.fail("{{" + kind + "}} outside {{range}}", tok)
            return _Marker(tok.pos, tok.line, kind)
        if kind == "else":
            peek = self.peek_non_space()
            if peek.typ in ("if", "with"):
                return _Marker(peek.pos, peek.line, "else")
            end = self.expect("}}", "else")
            return _Marker(end.pos, end.line, "else")
        if kind == "end":
            end = self.expect("}}", "end")
            return _Marker(end.pos, end.line, "end")
        if kind in ("template", "block"):
            return self.template_call(kind)
        if kind == "define":
            raise self.fail("unexpected <define> in command", tok)
        self.i -= 1
        start = self.peek_non_space()
        return _Action(start.pos, start.line, self.pipeline("command", "}}"))

    def control(self, kind: str) -> _Control:
        mark = len(self.vars)
        pipe = self.pipeline(kind, "}}")
        if kind == "range":
            self.range_depth += 1
        body, nxt = self.item_list()
        if kind == "range":
            self.range_depth -= 1
        else_body: list[_Node] = []
        if nxt.kind == "else":
            follow = self.peek_non_space()
            if kind in ("if", "with") and follow.typ == kind:
                self.next_non_space()
                else_body = [self.control(kind)]
            else:
                else_body, nxt = self.item_list()
                if nxt.kind != "end":
                    raise self.fail(f"expected end; found {nxt}")
        del self.vars[mark:]
        return _Control(kind, pipe, body, else_body)

    def template_call(self, kind: str) -> _TemplateCall:
        context = f"{kind} clause"
        tok = self.next_non_space()
        if tok.typ not in ("string", "rawstring"):
            raise self.unexpected(tok, context)
        name = self.unquote(tok)
        pipe: _Pipe | None = None
        if kind == "block":
            pipe = self.pipeline(context, "}}")
            outer_vars, self.vars = self.vars, ["$"]
            body, end = self.item_list()
            self.vars = outer_vars
            if end.kind != "end":
                raise self.fail(f"unexpected {end} in {context}")
            self.templates[name] = body
        elif self.peek_non_space().typ != "}}":
            pipe = self.pipeline(context, "}}")
        else:
            self.next_non_space()
        return _TemplateCall(tok.pos, tok.line, name, pipe)

    def unquote(self, tok: _Tok) -> str:
        try:
            return _unquote(tok)
        except TemplateError as exc:
            raise self.fail(str(exc), tok) from None

    # pipelines

    def pipeline(self, context: str, end: str) -> _Pipe:
        start = self.peek_non_space()
        pipe = _Pipe(start.pos, start.line)
        while self.peek_non_space().typ == "variable":
            save = self.i
            var = self.next_non_space()
            nxt = self.peek_non_space()
            if nxt.typ in (":=", "="):
                self.next_non_space()
                pipe.is_assign = nxt.typ == "="
                pipe.decl.append(var.val)
                self.vars.append(var.val)
                break
            if nxt.typ == "char" and nxt.val == ",":
                self.next_non_space()
                pipe.decl.append(var.val)
                self.vars.append(var.val)
                if context == "range" and len(pipe.decl) < 2:
                    if self.peek_non_space().typ in ("variable", "}}", ")"):
                        continue
                    raise self.fail("range can only initialize variables")
                raise self.fail(f"too many declarations in {context}")
            self.i = save
            break
        while True:
            tok = self.next_non_space()
            if tok.typ == end:
                self.check_pipeline(pipe, context)
                return pipe
            if tok.typ in ("bool", "charconst", "dot", "field", "identifier", "number", "nil",
                           "rawstring", "string", "variable", "("):
                self.i -= 1
                pipe.cmds.append(self.command())
            else:
                raise self.unexpected(tok, context)

    def check_pipeline(self, pipe: _Pipe, context: str) -> None:
        if not pipe.cmds:
            raise self.fail(f"missing value for {context}")
        for n, cmd in enumerate(pipe.cmds[1:], start=2):
            first = cmd.args[0]
            if isinstance(first, _Const):
                raise self.fail(f"non executable command in pipeline stage {n}")

    def command(self) -> _Command:
        start = self.peek_non_space()
        cmd = _Command(start.pos, start.line)
        while True:
            self.peek_non_space()
            operand = self.operand()
            if operand is not None:
                cmd.args.append(operand)
            tok = self.next()
            if tok.typ == "space":
                continue
            if tok.typ in ("}}", ")"):
                self.i -= 1
            elif tok.typ != "|":
                raise self.unexpected(tok, "operand")
            break
        if not cmd.args:
            raise self.fail("empty command")
        return cmd

    def operand(self) -> _Node | None:
        node = self.term()
        if node is None:
            return None
        if self.peek().typ == "field":
            chain_pos = self.peek().pos
            fields: list[str] = []
            while self.peek().typ == "field":
                fields.append(self.next().val[1:])
            if isinstance(node, _Field):
                return _Field(chain_pos, node.line, node.idents + fields)
            if isinstance(node, _Variable):
                return _Variable(chain_pos, node.line, node.idents + fields)
            if isinstance(node, _Const):
                raise self.fail(f"unexpected . after term {go_quote(str(node))}")
            return _Chain(chain_pos, node.line, node, fields)
        return node

    def term(self) -> _Node | None:
        tok = self.next_non_space()
        typ = tok.typ
        if typ == "identifier":
            if tok.val not in self.funcs:
                raise self.fail(f"function {go_quote(tok.val)} not defined", tok)
            return _Ident(tok.pos, tok.line, tok.val)
        if typ == "dot":
            return _Const(tok.pos, tok.line, "dot", None, ".")
        if typ == "nil":
            return _Const(tok.pos, tok.line, "nil", None, "nil")
        if typ == "variable":
            self.use_var(tok)
            return _Variable(tok.pos, tok.line, [tok.val])
        if typ == "field":
            return _Field(tok.pos, tok.line, [tok.val[1:]])
        if typ == "bool":
            return _Const(tok.pos, tok.line, "bool", tok.val == "true", tok.val)
        if typ in ("number", "charconst"):
            try:
                return _Const(tok.pos, tok.line, "number", _number(tok), tok.val)
            except TemplateError as exc:
                raise self.fail(str(exc), tok) from None
        if typ == "(":
            return self.pipeline("parenthesized pipeline", ")")
        if typ in ("string", "rawstring"):
            return _Const(tok.pos, tok.line, "string", self.unquote(tok), tok.val)
        self.i -= 1
        return None

    def use_var(self, tok: _Tok) -> None:
        if tok.val not in self.vars:
            raise self.fail(f"undefined variable {go_quote(tok.val)}", tok)


# -- execution -------------------------------------------------------------------------


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


class _ExecError(Exception):
    def __init__(self, node: _Node, message: str) -> None:
        super().__init__(message)
        self.node = node
        self.message = message


def _param(value: Any, kind: str) -> Any:
    """Check one argument against a Go parameter type; raise Go's complaint."""
    if kind == "any":
        return None if value is MISSING else value
    if kind == "value":
        return value
    if value is MISSING:
        raise ValueError(f"invalid value; expected {kind}")
    ok = (
        (kind == "string" and isinstance(value, str))
        or (kind == "int" and isinstance(value, int) and not isinstance(value, bool))
        or (kind == "[]string" and isinstance(value, list)
            and all(isinstance(v, str) for v in value))
    )
    if not ok:
        raise ValueError(f"wrong type for value; expected {kind}; got {go_type(value)}")
    return value


def _go_name(mapping: dict[str, Any], name: str) -> Any:
    """A JSON key under its Go field name: docker runs templates on typed structs first,
    where `.ID`, `.APIVersion`, `.NanoCPUs` name what the JSON calls Id, ApiVersion,
    NanoCpus (then on the raw JSON, where those work too)."""
    folded = name.lower()
    found = [k for k in mapping if k.lower() == folded]
    return mapping[found[0]] if len(found) == 1 else MISSING


def _constant(node: _Const, kind: str) -> Any:
    """A literal for a typed parameter, checked as Go's evalArg checks it."""
    value = node.value
    if node.kind == "nil":
        raise _ExecError(node, f"cannot assign nil to {kind}")
    if kind == "string" and node.kind == "string":
        return value
    if kind == "int" and node.kind == "number" and isinstance(value, int):
        return value
    if kind in ("string", "int"):
        expected = "integer" if kind == "int" else kind
        raise _ExecError(node, f"expected {expected}; found {node}")
    raise _ExecError(node, f"can't handle {node} for arg of type {kind}")


class _Exec:
    """Walks the parsed nodes against data as Go's exec.go does."""

    def __init__(self, tmpl: Template, funcs: Mapping[str, _Func]) -> None:
        self.tmpl = tmpl
        self.funcs = funcs
        self.out: list[str] = []
        self.vars: list[tuple[str, Any]] = []
        self.node: _Node | None = None
        self.depth = 0

    def fail(self, message: str, node: _Node | None = None) -> _ExecError:
        return _ExecError(node or self.node or _Text(0, 1, ""), message)

    def walk(self, dot: Any, nodes: list[_Node]) -> None:
        for node in nodes:
            if isinstance(node, _Text):
                self.out.append(node.text)
            elif isinstance(node, _Action):
                value = self.pipeline(dot, node.pipe)
                if not node.pipe.decl:
                    self.node = node
                    self.out.append(go_str(value))
            elif isinstance(node, _Control):
                mark = len(self.vars)
                if node.kind == "range":
                    self.walk_range(dot, node)
                else:
                    value = self.pipeline(dot, node.pipe)
                    if truth(value):
                        self.walk(value if node.kind == "with" else dot, node.body)
                    else:
                        self.walk(dot, node.else_body)
                del self.vars[mark:]
            elif isinstance(node, _TemplateCall):
                self.node = node
                body = self.tmpl.templates.get(node.name)
                if body is None:
                    raise self.fail(f"template {go_quote(node.name)} not defined", node)
                value = MISSING if node.pipe is None else self.pipeline(dot, node.pipe)
                self.depth += 1
                if self.depth > 1000:
                    raise self.fail("exceeded maximum template depth (100000)", node)
                outer = self.vars
                self.vars = [("$", value)]
                self.walk(value, body)
                self.vars = outer
                self.depth -= 1
            elif isinstance(node, _Marker):
                raise _Break() if node.kind == "break" else _Continue()

    def walk_range(self, dot: Any, node: _Control) -> None:
        value = self.pipeline(dot, node.pipe)
        decl = node.pipe.decl
        items: list[tuple[Any, Any]]
        if isinstance(value, list):
            items = list(enumerate(value))
        elif isinstance(value, dict):
            items = [(k, value[k]) for k in sorted(value)]
        elif isinstance(value, int) and not isinstance(value, bool):
            if len(decl) > 1:
                raise self.fail(f"can't use {value} to iterate over more than one variable")
            items = [(i, i) for i in range(value)]
        elif value is None or value is MISSING:
            items = []
        else:
            raise self.fail(f"range can't iterate over {go_str(value)}")
        if not items:
            self.walk(dot, node.else_body)
            return
        mark = len(self.vars)
        for index, elem in items:
            if decl:
                if node.pipe.is_assign:
                    self.set_var(decl[0], index if len(decl) > 1 else elem)
                    if len(decl) > 1:
                        self.set_var(decl[1], elem)
                else:
                    self.vars[-1] = (self.vars[-1][0], elem)
                    if len(decl) > 1:
                        self.vars[-2] = (self.vars[-2][0], index)
            try:
                self.walk(elem, node.body)
            except _Continue:
                pass
            except _Break:
                break
            finally:
                del self.vars[mark:]

    def set_var(self, name: str, value: Any) -> None:
        for i in range(len(self.vars) - 1, -1, -1):
            if self.vars[i][0] == name:
                self.vars[i] = (name, value)
                return
        raise self.fail(f"undefined variable: {name}")

    def var(self, name: str) -> Any:
        for vname, value in reversed(self.vars):
            if vname == name:
                return value
        raise self.fail(f"undefined variable: {name}")

    def pipeline(self, dot: Any, pipe: _Pipe) -> Any:
        value: Any = MISSING
        final = False
        for cmd in pipe.cmds:
            value = self.command(dot, cmd, value, final)
            final = True
        for name in pipe.decl:
            if pipe.is_assign:
                self.set_var(name, value)
            else:
                self.vars.append((name, value))
        return value

    def command(self, dot: Any, cmd: _Command, final: Any, has_final: bool) -> Any:
        first = cmd.args[0]
        if isinstance(first, _Field):
            self.node = first
            return self.chain(dot, dot, first, first.idents, cmd.args, final, has_final)
        if isinstance(first, _Chain):
            self.node = first
            base = self.arg(dot, first.node)
            return self.chain(dot, base, None, first.fields, cmd.args, final, has_final)
        if isinstance(first, _Ident):
            return self.call_func(dot, first, cmd, final, has_final)
        if isinstance(first, _Variable):
            self.node = first
            value = self.var(first.idents[0])
            if len(first.idents) == 1:
                self.not_a_function(cmd.args, has_final)
                return value
            return self.chain(dot, value, first, first.idents[1:], cmd.args, final, has_final)
        self.node = first
        self.not_a_function(cmd.args, has_final)
        if isinstance(first, _Pipe):
            return self.pipeline(dot, first)
        assert isinstance(first, _Const)
        if first.kind == "nil":
            raise self.fail("nil is not a command")
        return dot if first.kind == "dot" else first.value

    def not_a_function(self, args: list[_Node], has_final: bool) -> None:
        if len(args) > 1 or has_final:
            raise self.fail(f"can't give argument to non-function {args[0]}")

    def chain(self, dot: Any, receiver: Any, node: _Node | None, idents: list[str],
              args: list[_Node], final: Any, has_final: bool) -> Any:
        for i, name in enumerate(idents):
            last = i == len(idents) - 1
            receiver = self.field(dot, name, node, args if last else [], final if last else None,
                                  has_final and last, receiver, more=not last)
        return receiver

    def field(self, dot: Any, name: str, node: _Node | None, args: list[_Node], final: Any,
              has_final: bool, receiver: Any, more: bool) -> Any:
        has_args = len(args) > 1 or has_final
        if isinstance(receiver, Record):
            method = receiver.methods.get(name)
            if method is not None:
                fn, params = method
                values = [self.arg(dot, a) for a in args[1:]] + ([final] if has_final else [])
                if len(values) != len(params):
                    raise self.fail(f"wrong number of args for {name}: want {len(params)} "
                                    f"got {len(values)}", node)
                try:
                    return fn(*(_param(v, k) for v, k in zip(values, params, strict=True)))
                except ValueError as exc:
                    raise self.fail(str(exc), node) from None
            if name in receiver.fields:
                if has_args and not receiver.open:
                    count = len(args) - 1 + has_final
                    raise self.fail(f"wrong number of args for {name}: want 0 got {count}", node)
                if has_args:
                    raise self.fail(f"{name} is not a method but has arguments", node)
                return receiver.fields[name]
            if receiver.open:
                if has_args:
                    raise self.fail(f"{name} is not a method but has arguments", node)
                return MISSING
            raise self.fail(f"can't evaluate field {name} in type {receiver.type_name}", node)
        if isinstance(receiver, dict):
            if has_args:
                raise self.fail(f"{name} is not a method but has arguments", node)
            value = receiver.get(name, MISSING)
            if value is MISSING:
                value = _go_name(receiver, name)
            if value is MISSING and more:
                # Going on through an absent key: docker's raw-map retry reports it so.
                raise self.fail(f"map has no entry for key {go_quote(name)}", node)
            return value
        if receiver is MISSING:
            return MISSING
        if receiver is None:
            raise self.fail(f"nil pointer evaluating interface {{}}.{name}", node)
        raise self.fail(f"can't evaluate field {name} in type {go_type(receiver)}", node)

    def arg(self, dot: Any, node: _Node) -> Any:
        self.node = node
        if isinstance(node, _Field):
            return self.chain(dot, dot, node, node.idents, [node], None, False)
        if isinstance(node, _Variable):
            value = self.var(node.idents[0])
            if len(node.idents) == 1:
                return value
            return self.chain(dot, value, node, node.idents[1:], [node], None, False)
        if isinstance(node, _Pipe):
            return self.pipeline(dot, node)
        if isinstance(node, _Ident):
            cmd = _Command(node.pos, node.line)
            cmd.args.append(node)
            return self.call_func(dot, node, cmd, None, False)
        if isinstance(node, _Chain):
            base = self.arg(dot, node.node)
            return self.chain(dot, base, None, node.fields, [node], None, False)
        assert isinstance(node, _Const)
        if node.kind == "dot":
            return dot
        return node.value

    def call_func(self, dot: Any, ident: _Ident, cmd: _Command, final: Any,
                  has_final: bool) -> Any:
        self.node = ident
        name = ident.name
        func = self.funcs[name]
        arg_nodes = cmd.args[1:]
        count = len(arg_nodes) + has_final
        fixed = len(func.params)
        if func.variadic is not None and count < fixed:
            raise self.fail(f"wrong number of args for {name}: want at least {fixed} "
                            f"got {count}")
        if func.variadic is None and count != fixed:
            raise self.fail(f"wrong number of args for {name}: want {fixed} got {count}")
        if name in ("and", "or"):
            value: Any = MISSING
            for node in arg_nodes:
                value = self.arg(dot, node)
                if truth(value) == (name == "or"):
                    return value
            return final if has_final else value
        values: list[Any] = []
        for n, node in enumerate(arg_nodes):
            kind = func.params[n] if n < fixed else func.variadic
            assert kind is not None
            if isinstance(node, _Const) and node.kind != "dot" and kind not in ("any", "value"):
                self.node = node
                values.append(_constant(node, kind))
                continue
            value = self.arg(dot, node)
            try:
                values.append(_param(value, kind))
            except ValueError as exc:
                raise self.fail(str(exc), node) from None
        if has_final:
            kind = func.params[count - 1] if count <= fixed else func.variadic
            assert kind is not None
            try:
                values.append(_param(final, kind))
            except ValueError as exc:
                raise self.fail(str(exc), ident) from None
        try:
            return func.fn(*values)
        except _CallError as exc:
            raise self.fail(f"error calling {name}: {exc}", cmd) from None


# -- functions -------------------------------------------------------------------------


class _CallError(Exception):
    """A function's own error: `error calling index: index out of range: 5`."""


class _Func:
    """A template function with its Go parameter types (`value` keeps `<no value>`)."""

    __slots__ = ("fn", "params", "variadic")

    def __init__(self, fn: Callable[..., Any], params: tuple[str, ...],
                 variadic: str | None = None) -> None:
        self.fn = fn
        self.params = params
        self.variadic = variadic


def _basic(value: Any) -> str:
    if value is None or value is MISSING:
        return "nil"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return "other"


def _eq(first: Any, *others: Any) -> bool:
    if not others:
        raise _CallError("missing argument for comparison")
    k1 = _basic(first)
    for other in others:
        k2 = _basic(other)
        if k1 == "other" or k2 == "other":
            bad = first if k1 == "other" else other
            raise _CallError(f"non-comparable type {go_str(bad)}: {go_type(bad)}")
        if k1 != k2:
            if "nil" in (k1, k2):
                continue
            raise _CallError("incompatible types for comparison")
        if k1 == "nil" or first == other:
            return True
    return False


def _ordered(name: str, test: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    def compare(a: Any, b: Any) -> bool:
        ka, kb = _basic(a), _basic(b)
        if ka not in ("number", "string") or kb not in ("number", "string"):
            raise _CallError("invalid type for comparison")
        if ka != kb:
            raise _CallError("incompatible types for comparison")
        return test(a, b)

    compare.__name__ = name
    return compare


def _len(value: Any) -> int:
    if value is None or value is MISSING:
        return 0
    if isinstance(value, str):
        return len(value.encode())
    if isinstance(value, (list, dict)):
        return len(value)
    raise _CallError(f"len of type {go_type(value)}")


def _zero_of(mapping: dict[str, Any]) -> Any:
    """The zero value a typed Go map would give for an absent key: docker's `index`
    runs on typed structs, so a string map (labels) gives "", a struct map `<nil>`."""
    values = list(mapping.values())
    if all(isinstance(v, str) for v in values):
        return ""
    if all(isinstance(v, dict) for v in values):
        return None
    return MISSING


def _index(item: Any, *keys: Any) -> Any:
    for key in keys:
        if isinstance(item, dict) or item is None or item is MISSING:
            if key is MISSING or not isinstance(key, str):
                if item is None or item is MISSING:
                    raise _CallError("index of untyped nil")
                raise _CallError(f"value has type {go_type(key)}; should be string")
            mapping = item if isinstance(item, dict) else {}
            item = mapping[key] if key in mapping else _zero_of(mapping)
        elif isinstance(item, (list, str)):
            if not isinstance(key, int) or isinstance(key, bool):
                raise _CallError(f"cannot index slice/array with type {go_type(key)}")
            seq: Any = item.encode() if isinstance(item, str) else item
            if not 0 <= key < len(seq):
                raise _CallError(f"index out of range: {key}")
            item = seq[key]
        else:
            raise _CallError(f"can't index item of type {go_type(item)}")
    return item


def _slice(item: Any, *indexes: Any) -> Any:
    if not isinstance(item, (list, str)):
        if item is None or item is MISSING:
            raise _CallError("slice of untyped nil")
        raise _CallError(f"can't slice item of type {go_type(item)}")
    if len(indexes) > 3:
        raise _CallError(f"too many slice indexes: {len(indexes)}")
    if isinstance(item, str) and len(indexes) == 3:
        raise _CallError("cannot 3-index slice a string")
    seq: Any = item.encode() if isinstance(item, str) else item
    bounds = [0, len(seq)]
    for n, index in enumerate(indexes[:2]):
        if not isinstance(index, int) or isinstance(index, bool):
            raise _CallError(f"cannot index slice/array with type {go_type(index)}")
        if not 0 <= index <= len(seq):
            raise _CallError(f"index out of range: {index}")
        bounds[n] = index
    if bounds[1] < bounds[0]:
        raise _CallError(f"invalid slice index: {bounds[0]} > {bounds[1]}")
    part = seq[bounds[0] : bounds[1]]
    return part.decode(errors="replace") if isinstance(item, str) else part


def _text_of(args: tuple[Any, ...]) -> str:
    """Go's evalArgs for html/js/urlquery: one string as is, else fmt.Sprint."""
    if len(args) == 1 and isinstance(args[0], str):
        return args[0]
    return sprint(*args)


def _html(*args: Any) -> str:
    text = _text_of(args)
    for ch, esc in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ('"', "&#34;"),
                    ("'", "&#39;"), ("\0", "\ufffd")):
        text = text.replace(ch, esc)
    return text


def _js(*args: Any) -> str:
    out: list[str] = []
    for ch in _text_of(args):
        if ch in "\\'\"":
            out.append("\\" + ch)
        elif ch in "<>&=" or ord(ch) < 0x20 or not ch.isprintable():
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return "".join(out)


def _urlquery(*args: Any) -> str:
    from urllib.parse import quote_plus

    return quote_plus(_text_of(args), safe="")


def _json(value: Any) -> str:
    return go_json(value)


def _pad(text: str, prefix: int, suffix: int) -> str:
    return " " * prefix + text + " " * suffix if text else text


def _truncate(text: str, length: int) -> str:
    return text if len(text) < length else text[:length]


def _title(text: str) -> str:
    """strings.Title: upper-case the first letter of each word."""
    out: list[str] = []
    prev = " "
    for ch in text:
        out.append(ch.upper() if not (prev.isalnum() or prev == "_" or prev == "'") else ch)
        prev = ch
    return "".join(out)


def _call(fn: Any, *args: Any) -> Any:
    raise _CallError(f"non-function {go_str(fn)} of type {go_type(fn)}")


FUNCS: dict[str, _Func] = {
    # Go's builtins
    "and": _Func(lambda *a: a[-1], ("value",), "value"),
    "or": _Func(lambda *a: a[-1], ("value",), "value"),
    "not": _Func(lambda v: not truth(v), ("value",)),
    "len": _Func(_len, ("value",)),
    "index": _Func(_index, ("value",), "value"),
    "slice": _Func(_slice, ("value",), "value"),
    "eq": _Func(_eq, ("value",), "value"),
    "ne": _Func(lambda a, b: not _eq(a, b), ("value", "value")),
    "lt": _Func(_ordered("lt", lambda a, b: a < b), ("value", "value")),
    "le": _Func(_ordered("le", lambda a, b: a <= b), ("value", "value")),
    "gt": _Func(_ordered("gt", lambda a, b: a > b), ("value", "value")),
    "ge": _Func(_ordered("ge", lambda a, b: a >= b), ("value", "value")),
    "print": _Func(sprint, (), "any"),
    "printf": _Func(sprintf, ("string",), "any"),
    "println": _Func(sprintln, (), "any"),
    "html": _Func(_html, (), "any"),
    "js": _Func(_js, (), "any"),
    "urlquery": _Func(_urlquery, (), "any"),
    "call": _Func(_call, ("value",), "value"),
    # docker's (cli/templates)
    "json": _Func(_json, ("any",)),
    "split": _Func(lambda s, sep: s.split(sep) if sep else list(s), ("string", "string")),
    "join": _Func(lambda items, sep: sep.join(items), ("[]string", "string")),
    "title": _Func(_title, ("string",)),
    "lower": _Func(lambda s: s.lower(), ("string",)),
    "upper": _Func(lambda s: s.upper(), ("string",)),
    "pad": _Func(_pad, ("string", "int", "int")),
    "truncate": _Func(_truncate, ("string", "int")),
}

# docker's HeaderFunctions: a table header renders column names, untransformed.
HEADER_FUNCS: dict[str, _Func] = {
    **FUNCS,
    "json": _Func(lambda v: v, ("string",)),
    "split": _Func(lambda v, _sep: v, ("string", "string")),
    "join": _Func(lambda v, _sep: v, ("string", "string")),
    "title": _Func(lambda v: v, ("string",)),
    "lower": _Func(lambda v: v, ("string",)),
    "upper": _Func(lambda v: v, ("string",)),
    "truncate": _Func(lambda v, _n: v, ("string", "int")),
}


# -- the API ---------------------------------------------------------------------------


class Template:
    """A parsed template. `name` is what Go's errors call it (docker: "", or "version")."""

    def __init__(self, source: str, name: str = "") -> None:
        self.source = source
        self.name = name
        self.templates: dict[str, list[_Node]] = {}
        self.nodes = _Parser(_lex(source, name), name, FUNCS, self.templates).parse()

    def execute(self, data: Any, *, funcs: Mapping[str, _Func] = FUNCS) -> str:
        """Run against `data` (decoded JSON or `Record`s); raises TemplateError."""
        run = _Exec(self, funcs)
        run.vars.append(("$", data))
        try:
            run.walk(data, self.nodes)
        except _ExecError as exc:
            raise TemplateError(self._where(exc.node, exc.message), "".join(run.out)) from None
        return "".join(run.out)

    def _where(self, node: _Node, message: str) -> str:
        """Go's ErrorContext: `template: :LINE:COL: executing "" at <node>: message`."""
        before = self.source[: node.pos]
        col = len(before[before.rfind("\n") + 1 :].encode())
        return (f"template: {self.name}:{node.line}:{col}: executing {go_quote(self.name)} "
                f"at <{node}>: {message}")

    def fields(self) -> set[str]:
        """Every field name the template reads (docker asks for sizes if `.Size` is one)."""
        found: set[str] = set()

        def visit(node: Any) -> None:
            if isinstance(node, (_Field, _Variable)):
                found.update(node.idents)
            elif isinstance(node, _Chain):
                found.update(node.fields)
                visit(node.node)
            elif isinstance(node, _Pipe):
                for cmd in node.cmds:
                    visit(cmd)
            elif isinstance(node, _Command):
                for arg in node.args:
                    visit(arg)
            elif isinstance(node, _Action):
                visit(node.pipe)
            elif isinstance(node, _Control):
                visit(node.pipe)
                for child in node.body + node.else_body:
                    visit(child)
            elif isinstance(node, _TemplateCall) and node.pipe is not None:
                visit(node.pipe)

        for node in self.nodes + [n for body in self.templates.values() for n in body]:
            visit(node)
        return found


def render(source: str, data: Any) -> str:
    """Parse and execute in one go."""
    return Template(source).execute(data)
