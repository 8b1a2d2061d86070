"""The Dockerfile grammar, as BuildKit's frontend reads it (`frontend/dockerfile/parser`).

`parse(text)` turns a Dockerfile into `Instruction`s without running anything:

- parser directives (`# syntax=...`, `# escape=\\` or `` ` ``) only at the very top,
  before any comment, blank line or instruction;
- comments are whole lines starting with `#` (after leading blanks); an escape
  character at the end of a line (trailing blanks allowed) continues the instruction,
  and comment or blank lines inside a continuation are skipped;
- `--flag[=value]` words right after the instruction name are its flags;
- RUN/CMD/ENTRYPOINT/SHELL take an exec form (a JSON array of strings) or, when the
  text is not a valid JSON array, a shell form; COPY/ADD/VOLUME take a JSON array or
  blank-separated words; ENV/LABEL/ARG take `key=value` pairs (ENV and LABEL also
  the legacy `KEY value`);
- RUN, COPY and ADD may carry heredocs (`<<EOF`, `<<-EOF` strips leading tabs,
  a quoted word means "do not expand").

`expand_instruction` then substitutes variables (see `shell.py`) in the instructions
Docker substitutes, and `print_plan` walks the stages with Docker's ARG/ENV scoping to
show a Dockerfile as corral reads it (`corral build --print`).  All pure.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from supervisor.build.shell import SubstitutionError, expand, split_words
from supervisor.errors import InvalidArgument

DEFAULT_SHELL = ["/bin/sh", "-c"]

#: Every instruction the builder knows; anything else is an "unknown instruction".
INSTRUCTIONS = (
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
)

#: Flags each instruction accepts (BuildKit's BFlags); `True` = may repeat.
FLAGS: dict[str, dict[str, bool]] = {
    "FROM": {"platform": False},
    "RUN": {"mount": True, "network": False, "security": False},
    "COPY": {
        "from": False,
        "chown": False,
        "chmod": False,
        "link": False,
        "parents": False,
        "exclude": True,
    },
    "ADD": {
        "chown": False,
        "chmod": False,
        "link": False,
        "checksum": False,
        "keep-git-dir": False,
        "exclude": True,
    },
    "HEALTHCHECK": {
        "interval": False,
        "timeout": False,
        "start-period": False,
        "start-interval": False,
        "retries": False,
    },
}

#: Instructions whose arguments Docker substitutes variables in.
SUBSTITUTED = frozenset(
    {
        "ADD",
        "ARG",
        "COPY",
        "ENV",
        "EXPOSE",
        "FROM",
        "LABEL",
        "STOPSIGNAL",
        "USER",
        "VOLUME",
        "WORKDIR",
    }
)

#: ARGs usable through --build-arg without being declared (Docker's predefined args).
PREDEFINED_ARGS = frozenset(
    {
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "FTP_PROXY",
        "ftp_proxy",
        "NO_PROXY",
        "no_proxy",
        "ALL_PROXY",
        "all_proxy",
    }
)

_HEREDOC_CAPABLE = frozenset({"RUN", "COPY", "ADD"})
_HEREDOC_WORD = re.compile(r"^(\d*)<<(-?)([^<]*)$")
_DIRECTIVE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")


class DockerfileError(InvalidArgument):
    """A Dockerfile problem, shown as `Dockerfile:LINE: message` (`line` 0 = no line)."""

    def __init__(self, message: str, line: int = 0, filename: str = "Dockerfile") -> None:
        self.bare = message
        self.line = line
        self.filename = filename
        super().__init__(f"{filename}:{line}: {message}" if line else f"{filename}: {message}")

    def named(self, filename: str) -> DockerfileError:
        return DockerfileError(self.bare, self.line, filename)


@dataclass(frozen=True)
class Heredoc:
    name: str
    content: str
    expand: bool  # an unquoted word: variables in the content are expanded (COPY/ADD)
    chomp: bool  # `<<-`: leading tabs were stripped


@dataclass(frozen=True)
class Instruction:
    """One instruction.  `args` depends on the kind:

    exec/shell forms (RUN, CMD, ENTRYPOINT, SHELL): the JSON array (`json=True`) or
    `[text]`; ENV/LABEL/ARG: `key=value` strings (an ARG without default is `key`);
    HEALTHCHECK: `["NONE"]` or `["CMD", ...the form...]`; ONBUILD: `[text]` and `sub`;
    everything else: words.
    """

    cmd: str
    args: tuple[str, ...]
    flags: tuple[tuple[str, str | None], ...] = ()
    json: bool = False
    start_line: int = 0
    end_line: int = 0
    original: str = ""
    heredocs: tuple[Heredoc, ...] = ()
    sub: Instruction | None = None

    def flag(self, name: str) -> str | None:
        """The last value of `--name` ("" for a bare `--name`), None if absent."""
        value: str | None = None
        for k, v in self.flags:
            if k == name:
                value = "" if v is None else v
        return value

    def flag_all(self, name: str) -> list[str]:
        return [v or "" for k, v in self.flags if k == name]

    @property
    def text(self) -> str:
        """The shell-form text (RUN/CMD/ENTRYPOINT) or the words joined."""
        return self.args[0] if (not self.json and len(self.args) == 1) else " ".join(self.args)

    def pairs(self) -> list[tuple[str, str | None]]:
        """ENV/LABEL/ARG arguments as (key, value); value None for a bare ARG name."""
        out: list[tuple[str, str | None]] = []
        for a in self.args:
            k, eq, v = a.partition("=")
            out.append((k, v if eq else None))
        return out

    def describe(self) -> str:
        """How the classic builder echoes a step: `RUN echo hi`."""
        return self.original or f"{self.cmd} {' '.join(self.args)}"


@dataclass
class Dockerfile:
    instructions: list[Instruction]
    directives: dict[str, str] = field(default_factory=dict)
    escape: str = "\\"


def _err(msg: str, line: int) -> DockerfileError:
    return DockerfileError(msg, line)


# ---------------------------------------------------------------------------- lines


def _read_directives(lines: list[str]) -> tuple[dict[str, str], int]:
    """Leading `# key=value` directives; returns them and the first line not read."""
    found: dict[str, str] = {}
    i = 0
    for i, line in enumerate(lines):  # noqa: B007 - i is used after the loop
        m = _DIRECTIVE.match(line.strip()) if line.strip().startswith("#") else None
        if m is None:
            return found, i
        key = m.group(1).lower()
        if key in found:
            raise _err(f"only one {key} parser directive can be used", i + 1)
        found[key] = m.group(2)
    return found, len(lines)


def _continues(line: str, escape: str) -> tuple[str, bool]:
    """(line without its continuation escape, whether it continues)."""
    stripped = line.rstrip(" \t")
    if stripped.endswith(escape):
        return stripped[: -len(escape)], True
    return line, False


def parse(text: str) -> Dockerfile:
    """Parse a whole Dockerfile (see the module doc); raises `DockerfileError`."""
    text = text.removeprefix("\ufeff")
    lines = text.replace("\r\n", "\n").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    directives, i = _read_directives(lines)
    escape = directives.get("escape", "\\")
    if escape not in ("\\", "`"):
        raise _err(f"invalid escape token '{escape}' does not match ` or \\", 1)
    out: list[Instruction] = []
    n = len(lines)
    while i < n:
        raw = lines[i].lstrip()
        i += 1
        start = i
        if not raw or raw.startswith("#"):
            continue
        line, more = _continues(raw, escape)
        while more and i < n:
            nxt = lines[i]
            i += 1
            if nxt.lstrip().startswith("#") or not nxt.strip():
                continue
            part, more = _continues(nxt, escape)
            line += part
        if not line.strip():
            continue
        ins = _instruction(line, start, i, escape)
        if ins.cmd in _HEREDOC_CAPABLE and "<<" in line:
            docs: list[Heredoc] = []
            for name, quoted, chomp in _heredoc_markers(ins):
                content: list[str] = []
                while True:
                    if i >= n:
                        raise _err(f"unterminated heredoc {name}", start)
                    body = lines[i]
                    i += 1
                    probe = body.lstrip("\t") if chomp else body
                    if probe == name:
                        break
                    content.append(probe + "\n")
                docs.append(Heredoc(name, "".join(content), not quoted, chomp))
            ins = replace(ins, heredocs=tuple(docs), end_line=i)
        out.append(ins)
    return Dockerfile(out, directives, escape)


def _heredoc_markers(ins: Instruction) -> list[tuple[str, bool, bool]]:
    """(name, quoted, chomp) for each `<<WORD` word of an instruction, in order."""
    words: list[str] = []
    if ins.cmd == "RUN" and not ins.json:
        words = split_words(ins.args[0])
    elif ins.cmd != "RUN":
        words = list(ins.args)
    found = []
    for w in words:
        m = _HEREDOC_WORD.match(w)
        if not m or not m.group(3):
            continue
        rest = m.group(3)
        try:
            name = expand(rest, {})
        except SubstitutionError:
            continue
        if not name or any(c.isspace() for c in name):
            continue
        found.append((name, any(q in rest for q in "'\""), m.group(2) == "-"))
    return found


# ---------------------------------------------------------------------- instructions


def _extract_flags(rest: str) -> tuple[str, list[str]]:
    """BuildKit's extractBuilderFlags: leading `--x` words (quotes removed), and the rest."""
    words: list[str] = []
    i, n = 0, len(rest)
    while True:
        while i < n and rest[i].isspace():
            i += 1
        if i >= n or not rest.startswith("--", i):
            return rest[i:], words
        word: list[str] = []
        quote = ""
        while i < n:
            ch = rest[i]
            if quote:
                if ch == quote:
                    quote = ""
                elif ch == "\\" and i + 1 < n:
                    i += 1
                    word.append(rest[i])
                else:
                    word.append(ch)
                i += 1
                continue
            if ch.isspace():
                break
            if ch in "'\"":
                quote = ch
            elif ch == "\\" and i + 1 < n:
                i += 1
                word.append(rest[i])
            else:
                word.append(ch)
            i += 1
        w = "".join(word)
        if w == "--":
            return rest[i:].lstrip(), words
        words.append(w)


def _parse_json_array(rest: str, line: int) -> list[str] | None:
    """The exec form, or None when `rest` is not a JSON array (then: shell form)."""
    s = rest.strip()
    if not s.startswith("["):
        return None
    try:
        value = json.loads(s)
    except ValueError:
        return None
    if not isinstance(value, list):
        return None
    if not all(isinstance(v, str) for v in value):
        raise _err("when using JSON array syntax, arrays must be comprised of strings only", line)
    return value


def _instruction(line: str, start: int, end: int, escape: str) -> Instruction:
    parts = line.strip().split(None, 1)
    cmd = parts[0].upper()
    rest = parts[1] if len(parts) > 1 else ""
    if cmd not in INSTRUCTIONS:
        raise _err(f"unknown instruction: {parts[0]}", start)
    original = line.strip()
    rest, raw_flags = _extract_flags(rest)
    flags: list[tuple[str, str | None]] = []
    allowed = FLAGS.get(cmd, {})
    for f in raw_flags:
        name, eq, value = f[2:].partition("=")
        if name not in allowed:
            raise _err(f"unknown flag: --{name}", start)
        if not allowed[name] and any(k == name for k, _ in flags):
            raise _err(f"duplicate flag specified: --{name}", start)
        flags.append((name, value if eq else None))
    args, is_json, sub = _arguments(cmd, rest, start, end, escape)
    return Instruction(
        cmd=cmd,
        args=tuple(args),
        flags=tuple(flags),
        json=is_json,
        start_line=start,
        end_line=end,
        original=original,
        sub=sub,
    )


def _need(cmd: str, ok: bool, line: int, what: str = "at least one argument") -> None:
    if not ok:
        raise _err(f"{cmd} requires {what}", line)


def _arguments(
    cmd: str, rest: str, start: int, end: int, escape: str
) -> tuple[list[str], bool, Instruction | None]:
    rest = rest.strip()
    if cmd in ("RUN", "CMD", "ENTRYPOINT", "SHELL"):
        if cmd == "RUN":
            _need(cmd, bool(rest), start)
        arr = _parse_json_array(rest, start)
        if arr is not None:
            if cmd == "SHELL" and not arr:
                raise _err("SHELL requires at least one argument", start)
            return arr, True, None
        if cmd == "SHELL":
            raise _err("SHELL requires the arguments to be in JSON form", start)
        return ([rest] if rest else []), False, None
    if cmd in ("COPY", "ADD", "VOLUME"):
        arr = _parse_json_array(rest, start)
        words = arr if arr is not None else rest.split()
        if cmd == "VOLUME":
            _need(cmd, bool(words), start)
            if any(not w.strip() for w in words):
                raise _err("VOLUME specified can not be an empty string", start)
        else:
            _need(cmd, len(words) >= 2, start, "at least two arguments, but got " + str(len(words)))
        return words, arr is not None, None
    if cmd in ("ENV", "LABEL"):
        return _name_values(cmd, rest, start, escape), False, None
    if cmd == "ARG":
        words = split_words(rest, escape)
        _need(cmd, bool(words), start, "at least one argument")
        return words, False, None
    if cmd == "FROM":
        words = rest.split()
        if len(words) not in (1, 3) or (len(words) == 3 and words[1].lower() != "as"):
            raise _err("FROM requires either one or three arguments", start)
        return words, False, None
    if cmd in ("WORKDIR", "USER", "STOPSIGNAL", "MAINTAINER"):
        _need(cmd, bool(rest), start, "exactly one argument")
        if cmd == "STOPSIGNAL" and len(rest.split()) != 1:
            raise _err("STOPSIGNAL requires exactly one argument", start)
        return [rest], False, None
    if cmd == "EXPOSE":
        words = rest.split()
        _need(cmd, bool(words), start)
        return words, False, None
    if cmd == "HEALTHCHECK":
        return _healthcheck(rest, start)
    if cmd == "ONBUILD":
        _need(cmd, bool(rest), start)
        inner = rest.split(None, 1)[0].upper()
        if inner == "ONBUILD":
            raise _err("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed", start)
        if inner in ("FROM", "MAINTAINER"):
            raise _err(f"{inner} isn't allowed as an ONBUILD trigger", start)
        sub = _instruction(rest, start, end, escape)
        return [rest], False, sub
    raise _err(f"unknown instruction: {cmd}", start)  # pragma: no cover - guarded above


def _name_values(cmd: str, rest: str, line: int, escape: str) -> list[str]:
    words = split_words(rest, escape)
    if not words:
        raise _err(f"{cmd} requires at least one argument", line)
    if "=" not in words[0]:
        legacy = rest.split(None, 1)
        if len(legacy) < 2:
            raise _err(f"{cmd} must have two arguments", line)
        return [f"{legacy[0]}={legacy[1]}"]
    for w in words:
        key, eq, _ = w.partition("=")
        if not eq:
            raise _err(
                f"Syntax error - can't find = in {w!r}. Must be of the form: name=value", line
            )
        if not key:
            raise _err(f"{cmd} names can not be blank", line)
    return words


def _healthcheck(rest: str, line: int) -> tuple[list[str], bool, None]:
    parts = rest.split(None, 1)
    _need("HEALTHCHECK", bool(parts), line)
    kind = parts[0].upper()
    if kind == "NONE":
        if len(parts) > 1:
            raise _err("HEALTHCHECK NONE takes no arguments", line)
        return ["NONE"], False, None
    if kind != "CMD":
        raise _err(f"Unknown type {parts[0]!r} in HEALTHCHECK (try CMD)", line)
    body = parts[1] if len(parts) > 1 else ""
    _need("HEALTHCHECK CMD", bool(body.strip()), line)
    arr = _parse_json_array(body, line)
    if arr is not None:
        return ["CMD", *arr], True, None
    return ["CMD", body.strip()], False, None


# ---------------------------------------------------------------------- substitution


def expand_instruction(ins: Instruction, env: Mapping[str, str], escape: str) -> Instruction:
    """`ins` with variables substituted where Docker substitutes them."""
    if ins.cmd not in SUBSTITUTED:
        return ins

    def x(word: str) -> str:
        try:
            return expand(word, env, escape)
        except SubstitutionError as e:
            raise _err(f'failed to process "{word}": {e}', ins.start_line) from None

    flags = ins.flags
    if ins.cmd in ("COPY", "ADD", "FROM"):
        flags = tuple((k, x(v) if v is not None else None) for k, v in ins.flags)
    if ins.cmd == "FROM":
        args = (x(ins.args[0]), *ins.args[1:])
    elif ins.cmd in ("ENV", "LABEL"):
        args = tuple(f"{x(k)}={x(v or '')}" for k, v in ins.pairs())
    elif ins.cmd == "ARG":
        args = tuple(k if v is None else f"{k}={x(v)}" for k, v in ins.pairs())
    elif ins.cmd in ("COPY", "ADD"):
        args = tuple(a if _HEREDOC_WORD.match(a) and ins.heredocs else x(a) for a in ins.args)
    else:
        args = tuple(x(a) for a in ins.args)
    heredocs = ins.heredocs
    if ins.cmd in ("COPY", "ADD"):
        heredocs = tuple(replace(h, content=x(h.content)) if h.expand else h for h in heredocs)
    return replace(ins, args=args, flags=flags, heredocs=heredocs)


# -------------------------------------------------------------------------- stages


@dataclass
class Stage:
    """One FROM and the instructions after it."""

    index: int
    base: str  # after substitution of global ARGs
    name: str  # "" if unnamed (lower-cased, as Docker compares them)
    from_ins: Instruction
    body: list[Instruction]
    platform: str | None = None


def global_args(
    df: Dockerfile, build_args: Mapping[str, str | None], auto: Mapping[str, str]
) -> dict[str, str]:
    """The ARGs declared before the first FROM, with build-arg overrides (for FROM)."""
    scope: dict[str, str] = dict(auto)
    for ins in df.instructions:
        if ins.cmd == "FROM":
            break
        if ins.cmd != "ARG":
            raise _err(f"{ins.cmd} cannot be used before FROM (only ARG can)", ins.start_line)
        ins = expand_instruction(ins, scope, df.escape)
        for k, v in ins.pairs():
            given = build_args.get(k)
            if given is not None:
                scope[k] = given
            elif v is not None:
                scope[k] = v
            elif k not in auto:
                scope.pop(k, None)
    return scope


def stages(
    df: Dockerfile,
    build_args: Mapping[str, str | None] | None = None,
    auto: Mapping[str, str] | None = None,
) -> tuple[list[Stage], dict[str, str]]:
    """Split into stages; FROM's image name is substituted with the global ARGs.

    Returns the stages and the global ARG scope (stages may re-declare them).
    """
    scope = global_args(df, build_args or {}, auto or {})
    out: list[Stage] = []
    for ins in df.instructions:
        if ins.cmd == "FROM":
            e = expand_instruction(ins, scope, df.escape)
            name = e.args[2].lower() if len(e.args) == 3 else ""
            if name and not re.fullmatch(r"[a-z][a-z0-9._-]*", name):
                raise _err(f"invalid name for build stage: {e.args[2]!r}", ins.start_line)
            if name and any(s.name == name for s in out):
                raise _err(f"duplicate name {name}", ins.start_line)
            if not e.args[0]:
                raise _err("base name (" + ins.args[0] + ") should not be blank", ins.start_line)
            out.append(Stage(len(out), e.args[0], name, ins, [], e.flag("platform")))
        elif out:
            out[-1].body.append(ins)
    if not out:
        raise DockerfileError("no build stage in current context (a FROM is missing)")
    return out, scope


def find_stage(all_stages: list[Stage], ref: str, before: int) -> Stage | None:
    """A stage by name or index among the first `before` stages."""
    ref_l = ref.lower()
    for s in all_stages[:before]:
        if s.name and s.name == ref_l:
            return s
    if ref.isascii() and ref.isdigit() and int(ref) < before:  # not "\u00b2"
        return all_stages[int(ref)]
    return None


def print_plan(
    df: Dockerfile,
    build_args: Mapping[str, str | None] | None = None,
    auto: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """One JSON-able object per instruction, as corral reads it (`build --print`).

    ARG and ENV scoping follow Docker's, but a base image's own ENV is not known
    without the image, so variables coming only from a base image stay empty here.
    """
    build_args = build_args or {}
    all_stages, scope = stages(df, build_args, auto)
    out: list[dict[str, Any]] = []
    for ins in df.instructions:
        if ins.cmd == "FROM":
            break
        out.append(_printed(expand_instruction(ins, dict(auto or {}), df.escape), None))
    for st in all_stages:
        out.append(_printed(expand_instruction(st.from_ins, scope, df.escape), st.index))
        env: dict[str, str] = {}
        args: dict[str, str] = {}
        for ins in st.body:
            e = expand_instruction(ins, {**args, **env}, df.escape)
            out.append(_printed(e, st.index))
            if e.cmd == "ENV":
                env.update((k, v or "") for k, v in e.pairs())
            elif e.cmd == "ARG":
                args.update(stage_arg_values(e, build_args, scope))
    return out


def auto_args(arch: str) -> dict[str, str]:
    """BuildKit's automatic platform ARGs (global scope; a stage re-declares them)."""
    out = {}
    for prefix in ("TARGET", "BUILD"):
        out[f"{prefix}PLATFORM"] = f"linux/{arch}"
        out[f"{prefix}OS"] = "linux"
        out[f"{prefix}ARCH"] = arch
        out[f"{prefix}VARIANT"] = ""
    return out


def stage_arg_values(
    ins: Instruction, build_args: Mapping[str, str | None], global_scope: Mapping[str, str]
) -> dict[str, str]:
    """Values an (expanded) ARG in a stage gives: the build-arg, else its default, else
    the global ARG of that name (Docker's rule for re-declared global ARGs)."""
    out: dict[str, str] = {}
    for k, v in ins.pairs():
        value = build_args.get(k)
        if value is None:
            value = v if v is not None else global_scope.get(k)
        if value is not None:
            out[k] = value
    return out


def _printed(ins: Instruction, stage: int | None) -> dict[str, Any]:
    flags: dict[str, Any] = {}
    for k, v in ins.flags:
        value: Any = True if v is None else v
        if FLAGS.get(ins.cmd, {}).get(k):
            flags.setdefault(k, []).append(value)
        else:
            flags[k] = value
    obj: dict[str, Any] = {
        "instruction": ins.cmd,
        "flags": flags,
        "args": list(ins.args),
        "json": ins.json,
        "lines": [ins.start_line, ins.end_line],
        "stage": stage,
    }
    if ins.heredocs:
        obj["heredocs"] = [
            {"name": h.name, "content": h.content, "expand": h.expand} for h in ins.heredocs
        ]
    if ins.sub is not None:
        obj["trigger"] = _printed(ins.sub, stage)
    return obj
