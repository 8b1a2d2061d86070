"""The `.env` file compose reads next to the service file, and `env_file:` contents.

Format as compose's dotenv: `KEY=VALUE`, optional `export `, `#` comments, single quotes
literal, double quotes with `\\n`-style escapes, unquoted values lose trailing ` # comment`,
and a bare `KEY` takes its value from the environment (dropped if unset).
"""

from __future__ import annotations

from collections.abc import Mapping

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "$": "$"}


def parse_dotenv(
    text: str, environ: Mapping[str, str] | None = None
) -> list[tuple[int, str, str | None]]:
    """(line number, key, value or None for a bare KEY not in environ). Raises ValueError."""
    environ = environ or {}
    out: list[tuple[int, str, str | None]] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        number = i + 1
        line = lines[i].strip()
        i += 1
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        key, eq, value = line.partition("=")
        key = key.strip()
        if not key or any(c.isspace() for c in key):
            raise ValueError(f"line {number}: unexpected character in variable name {key!r}")
        if not eq:
            out.append((number, key, environ.get(key)))
            continue
        value = value.strip()
        if value[:1] in ("'", '"'):
            quote = value[0]
            body = value[1:]
            # a quoted value may span lines
            while _closing(body, quote) < 0 and i < len(lines):
                body += "\n" + lines[i]
                i += 1
            end = _closing(body, quote)
            if end < 0:
                raise ValueError(f"line {number}: unterminated quoted value for {key}")
            raw = body[:end]
            value = raw if quote == "'" else _unescape(raw)
        else:
            hash_at = value.find(" #")
            if hash_at >= 0:
                value = value[:hash_at].rstrip()
        out.append((number, key, value))
    return out


def _closing(body: str, quote: str) -> int:
    i = 0
    while i < len(body):
        if body[i] == "\\" and quote == '"':
            i += 2
            continue
        if body[i] == quote:
            return i
        i += 1
    return -1


def _unescape(raw: str) -> str:
    out = []
    i = 0
    while i < len(raw):
        ch = raw[i]
        if ch == "\\" and i + 1 < len(raw):
            out.append(_ESCAPES.get(raw[i + 1], "\\" + raw[i + 1]))
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def dotenv_mapping(text: str, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    return {k: v for _, k, v in parse_dotenv(text, environ) if v is not None}
