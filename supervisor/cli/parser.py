"""A small pflag-like command-line parser (docker's flag syntax and error messages).

Why not argparse: docker's grammar differs in ways users notice — `run` stops parsing
flags at the image name (so `corral run img ls -l` passes `-l` to `ls`), short flags
combine (`-dit`), values attach (`-eFOO=1`, `--name=x`), bools take `=false`, and errors
read `unknown flag: --foo` / `flag needs an argument: 'e' in -e`. Also argparse costs an
import of `gettext`. Values stay strings here; `flags.py` validates and converts them.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing/dataclasses cost ~15 ms of imports; the CLI must start lean
if TYPE_CHECKING:
    from collections.abc import Sequence  # the `collections` package: ~2 ms a command
    from typing import Any

FLAG_ERROR = 125  # docker's exit code for a flag it cannot parse


class UsageError(Exception):
    """Bad command line: printed as `corral: <message>`; nothing was sent to the daemon.

    `plain` messages print as they are: docker 28 prints flag errors without its name.
    `flag`: a value error of a typed flag (`--memory 1x`), which docker's flag parser
    finds and prints as it prints an unknown flag (`flag_errors`).
    """

    def __init__(
        self, message: str, exit_code: int = FLAG_ERROR, *, plain: bool = False,
        flag: bool = False,
    ) -> None:  # fmt: skip
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
        self.plain = plain
        #: a typed flag's value docker's flag parser refuses (`flag_errors` prints it)
        self.flag = flag

    def display(self) -> str:
        return self.message if self.plain else f"corral: {self.message}"


class HelpRequested(Exception):
    """`--help` was given: the text to print on stdout, exit 0."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


class Opt:
    """One flag. kind: "bool", "str", "list" (repeatable), or "int".

    `deprecated` (on an alias) is pflag's note, `Flag --time has been deprecated, use
    --timeout instead`, which `Parsed.warnings` collects.
    """

    __slots__ = ("long", "short", "kind", "default", "help", "deprecated")

    def __init__(
        self, long: str, short: str = "", kind: str = "bool", default: Any = None, help: str = "",
        deprecated: str = "",
    ) -> None:
        self.long = long
        self.short = short
        self.kind = kind
        self.default = default
        self.help = help
        self.deprecated = deprecated

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
        self.warnings: list[str] = []

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


def flag_error(cmd: Command, exc: UsageError) -> UsageError:
    """docker 28's flag error: the message, blank, `Usage:  corral ps [OPTIONS]`, blank,
    `Run 'corral ps --help' for more information` (exit 125)."""
    return UsageError(
        f"{exc.message}\n\nUsage:  {cmd.usage}\n\n"
        f"Run 'corral {cmd.name} --help' for more information",
        exc.exit_code,
        plain=True,
    )


class flag_errors:  # noqa: N801 - used as `with flag_errors(cmd):`, a function's name
    """Turn typed flags' value errors raised after `parse` (flags.bad) into
    `flag_error`s: docker finds them while parsing and prints them alike.

    A class, not `contextlib.contextmanager`: contextlib is ~3 M instructions of every
    command's start, and nothing else on the CLI's path needs it."""

    def __init__(self, cmd: Command) -> None:
        self.cmd = cmd

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, exc: BaseException | None, tb: object) -> None:
        if isinstance(exc, UsageError) and exc.flag:
            raise flag_error(self.cmd, exc) from None


def parse(cmd: Command, argv: Sequence[str]) -> Parsed:
    """Parse `argv` (the words after the verb) against `cmd`'s grammar.

    A flag error reads as docker 28's: the error, the usage line, where help is
    (`unknown flag: --nope`, blank, `Usage:  corral ps [OPTIONS]`, blank, `Run 'corral
    ps --help' for more information`), exit 125.
    """
    try:
        parsed = _parse_flags(cmd, argv)
    except UsageError as exc:
        raise flag_error(cmd, exc) from None
    check_arg_count(cmd, parsed.args)
    return parsed


def _parse_flags(cmd: Command, argv: Sequence[str]) -> Parsed:
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
            if opt.deprecated:
                parsed.warnings.append(f"Flag --{name} has been deprecated, {opt.deprecated}")
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
    return parsed


def check_arg_count(cmd: Command, args: Sequence[str]) -> None:
    """docker 28's cobra validators: `'corral rm' requires at least 1 argument` (exit 1)."""

    def plural(k: int) -> str:
        return f"{k} argument" + ("" if k == 1 else "s")

    n, low, high = len(args), cmd.min_args, cmd.max_args
    if low <= n and (high is None or n <= high):
        return
    see = "Run"
    if high == 0:
        problem = "accepts no arguments"
    elif high is not None and low == high:
        problem = f"requires {plural(low)}"
    elif high is not None and low > 0:
        problem = f"requires at least {low} and at most {plural(high)}"
    elif high is not None:
        problem = f"requires at most {plural(high)}"
    else:
        problem, see = f"requires at least {plural(low)}", "See"
    raise UsageError(
        f"'corral {cmd.name}' {problem}\n\nUsage:  {cmd.usage}\n\n"
        f"{see} 'corral {cmd.name} --help' for more information",
        1,
    )
