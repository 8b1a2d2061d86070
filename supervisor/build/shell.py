"""Docker's variable substitution in Dockerfile words (BuildKit's `shell/lex.go`).

Docker substitutes variables itself, before anything runs, in the instructions whose
arguments never reach a shell (FROM, ENV, ARG, LABEL, COPY, ADD, EXPOSE, USER, WORKDIR,
VOLUME, STOPSIGNAL); RUN, CMD and ENTRYPOINT are left to the container's shell.  The
rules are a small subset of POSIX sh, reimplemented here because they differ from it
in ways Dockerfiles rely on:

- `'...'` is literal; `"..."` expands `$` and lets the escape character escape only
  `"`, `$` and itself (any other `\\x` stays as written); outside quotes the escape
  character makes the next character literal and disappears.
- `$name`, `${name}`, `${name:-word}`, `${name-word}`, `${name:+word}`, `${name+word}`,
  `${name:?word}`, `${name?word}`; `word` is itself expanded.  An unset variable is "".
- There is no word splitting here: one Dockerfile word in, one string out.

Pure functions over strings and a mapping: tested without a build.
"""

from __future__ import annotations

from collections.abc import Mapping

_SPECIAL = "@*#?-$!0"


class SubstitutionError(ValueError):
    """A word that cannot be expanded; the message is BuildKit's wording."""


class _Lexer:
    def __init__(self, text: str, env: Mapping[str, str], escape: str) -> None:
        self.s = text
        self.i = 0
        self.env = env
        self.escape = escape

    def peek(self) -> str:
        return self.s[self.i] if self.i < len(self.s) else ""

    def next(self) -> str:
        ch = self.peek()
        self.i += 1 if ch else 0
        return ch

    def stop_on(self, stop: str) -> str:
        """Read up to (and past) `stop`, or to the end when `stop` is ""."""
        out: list[str] = []
        while True:
            ch = self.peek()
            if ch == "":
                if stop:
                    raise SubstitutionError("syntax error: missing '}'")
                return "".join(out)
            if stop and ch == stop:
                self.next()
                return "".join(out)
            if ch == "'":
                out.append(self.single_quote())
            elif ch == '"':
                out.append(self.double_quote())
            elif ch == "$":
                out.append(self.dollar())
            else:
                self.next()
                if ch == self.escape:
                    if self.peek() == "":
                        continue  # an escape at the very end is dropped
                    ch = self.next()
                out.append(ch)

    def single_quote(self) -> str:
        self.next()
        out: list[str] = []
        while True:
            ch = self.next()
            if ch == "":
                raise SubstitutionError(
                    "unexpected end of statement while looking for matching single-quote"
                )
            if ch == "'":
                return "".join(out)
            out.append(ch)

    def double_quote(self) -> str:
        self.next()
        out: list[str] = []
        while True:
            ch = self.peek()
            if ch == "":
                raise SubstitutionError(
                    "unexpected end of statement while looking for matching double-quote"
                )
            if ch == '"':
                self.next()
                return "".join(out)
            if ch == "$":
                out.append(self.dollar())
                continue
            self.next()
            if ch == self.escape:
                nxt = self.peek()
                if nxt == "":
                    continue
                if nxt in ('"', "$", self.escape):
                    ch = self.next()
            out.append(ch)

    def name(self) -> str:
        ch = self.peek()
        if ch.isdigit():
            start = self.i
            while self.peek().isdigit():
                self.next()
            return self.s[start : self.i]
        if ch and ch in _SPECIAL:
            return self.next()
        start = self.i
        while (c := self.peek()) and (c.isalnum() or c == "_"):
            self.next()
        return self.s[start : self.i]

    def dollar(self) -> str:
        self.next()
        if self.peek() != "{":
            name = self.name()
            return self.env.get(name, "") if name else "$"
        self.next()
        first = self.peek()
        if first == "":
            raise SubstitutionError("syntax error: missing '}'")
        if first in "{}:":
            raise SubstitutionError("syntax error: bad substitution")
        name = self.name()
        ch = self.next()
        if ch == "}":
            return self.env.get(name, "")
        colon = ch == ":"
        modifier = self.next() if colon else ch
        if modifier not in ("-", "+", "?"):
            if modifier == "":
                raise SubstitutionError("syntax error: missing '}'")
            raise SubstitutionError(f"unsupported modifier ({modifier}) in substitution")
        word = self.stop_on("}")
        is_set = name in self.env
        value = self.env.get(name, "")
        usable = is_set and (value != "" or not colon)
        if modifier == "-":
            return value if usable else word
        if modifier == "+":
            return word if usable else ""
        if not usable:
            if not word:
                word = "is not allowed to be unset" if not is_set else "is not allowed to be empty"
            raise SubstitutionError(f"{name}: {word}")
        return value


def expand(word: str, env: Mapping[str, str], escape: str = "\\") -> str:
    """One Dockerfile word with variables substituted and quotes removed."""
    return _Lexer(word, env, escape).stop_on("")


def split_words(rest: str, escape: str = "\\") -> list[str]:
    """BuildKit's `parseWords`: split on blanks outside quotes, keeping quotes and
    escapes in the words (they are removed later, by `expand`)."""
    words: list[str] = []
    word: list[str] = []
    quote = ""
    blank_ok = False
    in_word = False
    i, n = 0, len(rest)
    while i < n:
        ch = rest[i]
        if not in_word and not quote:
            if ch.isspace():
                i += 1
                continue
            in_word = True
        if quote:
            if ch == quote:
                quote = ""
            if ch == escape and quote != "'":
                if i + 1 == n:
                    i += 1
                    continue
                word.append(ch)
                i += 1
                ch = rest[i]
            word.append(ch)
            i += 1
            continue
        if ch.isspace():
            if blank_ok or word:
                words.append("".join(word))
            word, blank_ok, in_word = [], False, False
            i += 1
            continue
        if ch in ("'", '"'):
            quote = ch
            blank_ok = True
        if ch == escape:
            if i + 1 == n:
                i += 1
                continue
            word.append(ch)
            i += 1
            ch = rest[i]
        word.append(ch)
        i += 1
    if in_word and (blank_ok or word):
        words.append("".join(word))
    return words
