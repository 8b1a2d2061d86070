"""A small pflag-like command-line parser (docker's flag syntax and error messages).

Why not argparse: docker's grammar differs in ways users notice — `run` stops parsing
flags at the image name (so `corral run img ls -l` passes `-l` to `ls`), short flags
combine (`-dit`), values attach (`-eFOO=1`, `--name=x`), bools take `=false`, and errors
read `unknown flag: --foo` / `flag needs an argument: 'e' in -e`. Also argparse costs an
import of `gettext`. Values stay strings here; `flags.py` validates and converts them.
"""

from __future__ import annotations

from collections.abc import Sequence

TYPE_CHECKING = False  # typing/dataclasses cost ~15 ms of imports; the CLI must start lean
if TYPE_CHECKING:
    from typing import Any

FLAG_ERROR = 125  # docker's exit code for a flag it cannot parse


class UsageError(Exception):
    """Bad command line: printed as `corral: <message>`; nothing was sent to the daemon."""

    def __init__(self, message: str, exit_code: int = FLAG_ERROR) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


class HelpRequested(Exception):
    """`--help` was given: the text to print on stdout, exit 0."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


class Opt:
    """One flag. kind: "bool", "str", "list" (repeatable), or "int"."""

    __slots__ = ("long", "short", "kind", "default", "help")

    def __init__(
        self, long: str, short: str = "", kind: str = "bool", default: Any = None, help: str = ""
    ) -> None:
        self.long = long
        self.short = short
        self.kind = kind
        self.default = default
        self.help = help

    @property
    def dest(self) -> str:
        return self.long.replace("-", "_")

    @property
    def display(self) -> str:
        """`-m, --memory` or `--cpus`: how docker names a flag in its errors."""
        return f"-{self.short}, --{self.long}" if self.short else f"--{self.long}"

    def initial(self) -> Any:
        if self.kind == "list":
            return list(self.default or [])
        if self.kind == "bool":
            return bool(self.default)
        return self.default


class Command:
    """A verb's grammar: its flags, usage line, and how many positionals it accepts.

    `interspersed=False` ends flags at the first positional (run, exec); `aliases` are
    hidden alternative spellings (e.g. `--net` for `--network`).
    """

    def __init__(
        self,
        name: str,
        usage: str,
        summary: str,
        opts: Sequence[Opt] = (),
        *,
        min_args: int = 0,
        max_args: int | None = None,
        interspersed: bool = True,
        aliases: Sequence[Opt] = (),
    ) -> None:
        self.name = name
        self.usage = usage
        self.summary = summary
        self.opts = opts
        self.min_args = min_args
        self.max_args = max_args
        self.interspersed = interspersed
        self.aliases = aliases

    def find_long(self, name: str) -> Opt | None:
        for opt in (*self.opts, *self.aliases):
            if opt.long == name:
                return opt
        return None

    def find_short(self, letter: str) -> Opt | None:
        for opt in self.opts:
            if opt.short == letter:
                return opt
        return None

    def help_text(self) -> str:
        lines = [f"\nUsage:  {self.usage}\n", self.summary, ""]
        if self.opts:
            lines.append("Options:")
            rows = []
            for opt in self.opts:
                left = f"-{opt.short}, --{opt.long}" if opt.short else f"    --{opt.long}"
                if opt.kind == "list":
                    left += " list"
                elif opt.kind in ("str", "int"):
                    left += " " + ("int" if opt.kind == "int" else "string")
                rows.append((left, opt.help))
            width = max(len(r[0]) for r in rows) + 3
            lines.extend(f"  {left.ljust(width)}{text}".rstrip() for left, text in rows)
        return "\n".join(lines) + "\n"


class Parsed:
    """Parse result: option values by dest, positionals, and which dests were given."""

    def __init__(self, opts: dict[str, Any], args: list[str]) -> None:
        self.opts = opts
        self.args = args
        self.given: set[str] = set()

    def __getitem__(self, key: str) -> Any:
        return self.opts[key]


_TRUE = {"1", "t", "T", "true", "TRUE", "True"}
_FALSE = {"0", "f", "F", "false", "FALSE", "False"}


def _assign(parsed: Parsed, opt: Opt, value: str | None) -> None:
    """Store one occurrence; `value` is None only for a bool given without `=`."""
    parsed.given.add(opt.dest)
    if opt.kind == "bool":
        if value is None or value in _TRUE:
            parsed.opts[opt.dest] = True
        elif value in _FALSE:
            parsed.opts[opt.dest] = False
        else:
            raise UsageError(
                f'invalid argument "{value}" for "{opt.display}" flag: '
                f'strconv.ParseBool: parsing "{value}": invalid syntax'
            )
    elif opt.kind == "int":
        assert value is not None
        try:
            parsed.opts[opt.dest] = int(value, 10)
        except ValueError:
            raise UsageError(
                f'invalid argument "{value}" for "{opt.display}" flag: '
                f'strconv.ParseInt: parsing "{value}": invalid syntax'
            ) from None
    elif opt.kind == "list":
        assert value is not None
        parsed.opts[opt.dest].append(value)
    else:
        parsed.opts[opt.dest] = value


def parse(cmd: Command, argv: Sequence[str]) -> Parsed:
    """Parse `argv` (the words after the verb) against `cmd`'s grammar."""
    parsed = Parsed({o.dest: o.initial() for o in cmd.opts}, [])
    i = 0
    n = len(argv)
    while i < n:
        word = argv[i]
        i += 1
        if word == "--":
            parsed.args.extend(argv[i:])
            break
        if word.startswith("--"):
            name, eq, value = word[2:].partition("=")
            if name == "help":
                raise HelpRequested(cmd.help_text())
            opt = cmd.find_long(name)
            if opt is None:
                raise UsageError(f"unknown flag: --{name}")
            if eq:
                _assign(parsed, opt, value)
            elif opt.kind == "bool":
                _assign(parsed, opt, None)
            elif i < n:
                _assign(parsed, opt, argv[i])
                i += 1
            else:
                raise UsageError(f"flag needs an argument: --{name}")
        elif word.startswith("-") and word != "-":
            letters = word[1:]
            j = 0
            while j < len(letters):
                letter = letters[j]
                j += 1
                opt = cmd.find_short(letter)
                if opt is None:
                    if letter == "h":
                        raise HelpRequested(cmd.help_text())
                    raise UsageError(f"unknown shorthand flag: '{letter}' in -{letters}")
                rest = letters[j:]
                if opt.kind == "bool":
                    if rest.startswith("="):
                        _assign(parsed, opt, rest[1:])
                        break
                    _assign(parsed, opt, None)
                    continue
                if rest:
                    _assign(parsed, opt, rest[1:] if rest.startswith("=") else rest)
                elif i < n:
                    _assign(parsed, opt, argv[i])
                    i += 1
                else:
                    raise UsageError(f"flag needs an argument: '{letter}' in -{letters}")
                break
        else:
            parsed.args.append(word)
            if not cmd.interspersed:
                parsed.args.extend(argv[i:])
                break
    check_arg_count(cmd, parsed.args)
    return parsed


def check_arg_count(cmd: Command, args: Sequence[str]) -> None:
    """docker's `"docker rm" requires at least 1 argument.` (exit 1, as docker's cobra)."""

    def plural(k: int) -> str:
        return f"{k} argument" + ("" if k == 1 else "s")

    hint = f"\nSee 'corral {cmd.name} --help'.\n\nUsage:  {cmd.usage}\n\n{cmd.summary}"
    if cmd.max_args is not None and cmd.min_args == cmd.max_args and len(args) != cmd.min_args:
        raise UsageError(
            f'"corral {cmd.name}" requires exactly {plural(cmd.min_args)}.{hint}', 1
        )
    if len(args) < cmd.min_args:
        raise UsageError(f'"corral {cmd.name}" requires at least {plural(cmd.min_args)}.{hint}', 1)
    if cmd.max_args is not None and len(args) > cmd.max_args:
        raise UsageError(f'"corral {cmd.name}" accepts at most {plural(cmd.max_args)}.{hint}', 1)
