"""The one `--format` path every verb takes, with docker's keywords and error wording.

Listings (`ps`, `images`, `volume ls`, `network ls`, `stats`) render `Record` rows
through `RowFormat`: no format or `table` is the verb's default table, `table TEMPLATE`
a custom table whose header is the same template run over the column titles (docker's
HeaderFunctions: `json`, `upper`... leave titles alone), `json` one JSON object per
line, anything else a template per row. `inspect`, `volume inspect`, `network inspect`,
`version` and `info` render whole objects through `ObjectFormat`: no format is the
indented JSON array, `json` the same on one line, a template a line per object.

A template that does not parse or execute is an error of one line, Go's text behind
docker's prefix: `template parsing error: template: :1: unclosed action`, exit 1.
docker words a few verbs otherwise; `Wording` holds those differences in one place.
"""

from __future__ import annotations

from supervisor.cli.context import CliError
from supervisor.cli.format import tabwrite
from supervisor.cli.govalues import MISSING, Record, go_json, go_str

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence
    from typing import Any

    from supervisor.cli.template import Template, TemplateError


def _escapes(text: str) -> str:
    """docker replaces the two-character `\\t` and `\\n` before parsing."""
    return text.replace("\\t", "\t").replace("\\n", "\n")


class Wording:
    """How a verb family reports a bad template: prefix and exit code, parse and run."""

    def __init__(self, parse: str, parse_code: int, execute: str, execute_code: int) -> None:
        self.parse = parse
        self.parse_code = parse_code
        self.execute = execute
        self.execute_code = execute_code

    def parse_error(self, exc: TemplateError) -> CliError:
        return CliError(f"{self.parse}{exc}", self.parse_code)

    def execute_error(self, exc: TemplateError) -> CliError:
        return CliError(f"{self.execute}{exc}", self.execute_code)


_WRAP = "template parsing error: "
LISTING = Wording(_WRAP, 1, _WRAP, 1)  # images, volume ls, network ls, stats
INSPECT = Wording(_WRAP, 64, _WRAP, 1)  # inspect, volume/network/image inspect
SYSTEM = Wording(_WRAP, 64, "", 1)  # version, info: Go's execution error alone
EVENTS = Wording("Error parsing format: ", 64, "Error parsing format: ", 64)
# `ps` first checks a given template against an empty row, on its raw text
PS_CHECK = Wording("failed to parse template: ", 1, "failed to execute template: ", 1)


def _compile(source: str, wording: Wording, name: str = "") -> Template:
    from supervisor.cli.template import Template, TemplateError

    try:
        return Template(source, name)
    except TemplateError as exc:
        raise wording.parse_error(exc) from None


def _plain(body: str) -> list[str] | None:
    """Text and `{{.Field}}` alone (docker's default tables): the pieces, text and field
    names alternating. Such a template needs no engine, so `corral ps` need not load
    (nor, without bytecode caches, compile) it; anything else returns None."""
    parts: list[str] = []
    pos = 0
    while True:
        start = body.find("{{", pos)
        if start < 0:
            parts.append(body[pos:])
            return parts
        end = body.find("}}", start)
        name = body[start + 3 : end] if end > 0 and body[start + 2] == "." else ""
        if not name or not all(c == "_" or c.isalnum() for c in name):
            return None
        parts += [body[pos:start], name]
        pos = end + 2


def header_label(name: str) -> str:
    """SubHeaderContext.Label: `{{.Label "com.x.my-key"}}` heads its column `my key`."""
    return name.rsplit(".", 1)[-1].replace("-", " ").replace("_", " ")


class Defaults:
    """A listing's own formats: its default table, its `-q` template, its `raw` pair."""

    def __init__(self, table: str, quiet: str, raw: str = "", raw_quiet: str = "") -> None:
        self.table = table
        self.quiet = quiet
        self.raw = raw or table
        self.raw_quiet = raw_quiet or quiet

    def pick(self, source: str | None, quiet: bool, quiet_wins: bool = False) -> str:
        """docker's NewXFormat: `table`/none give the default, `raw` the raw one; `-q`
        turns those into the quiet template, and a custom one too if `quiet_wins`."""
        if not source or source == "table":
            return self.quiet if quiet else self.table
        if source == "raw":
            return self.raw_quiet if quiet else self.raw
        return self.quiet if quiet and quiet_wins else source


class RowFormat:
    """A listing's `--format`, parsed once (so `stats` fails before streaming)."""

    def __init__(self, source: str, header: Mapping[str, str],
                 wording: Wording = LISTING) -> None:
        self.wording = wording
        self.is_table = source.startswith("table")
        body = source[len("table"):] if self.is_table else source
        if source == "json":
            body = "{{json .}}"
        self.body = _escapes(body.strip(" "))
        self.plain = _plain(self.body)
        self._template = None if self.plain is not None else _compile(self.body, wording)
        self.header = Record("formatter.SubHeaderContext", header,
                             {"Label": (header_label, ("string",))}, open=True)

    @property
    def template(self) -> Template:
        if self._template is None:
            self._template = _compile(self.body, self.wording)
        return self._template

    def fields(self) -> set[str]:
        return set(self.plain[1::2]) if self.plain is not None else self.template.fields()

    def _line(self, row: Any, header: bool = False) -> str:
        """One row through the template (or the plain pieces, where they can serve)."""
        plain = self.plain
        if plain is not None and isinstance(row, Record) and (
                row.open or all(name in row.fields for name in plain[1::2])):
            return "".join(part if n % 2 == 0 else go_str(row.fields.get(part, MISSING))
                           for n, part in enumerate(plain))
        from supervisor.cli.template import FUNCS, HEADER_FUNCS, TemplateError

        try:
            return self.template.execute(row, funcs=HEADER_FUNCS if header else FUNCS)
        except TemplateError as exc:
            if header:  # docker ignores a header's error and keeps its start
                return exc.partial
            raise self.wording.execute_error(exc) from None

    def render(self, rows: Iterable[Any]) -> str:
        """Every row (a line each), under the header if a table; nothing if one fails."""
        lines = [self._line(row) + "\n" for row in rows]
        if not self.is_table:
            return "".join(lines)
        return tabwrite(self._line(self.header, header=True) + "\n" + "".join(lines))


def check_template(source: str, probe: Any, wording: Wording) -> Template:
    """Parse `source` as given and run it once on `probe` (an empty row or message),
    as docker does before asking the daemon: a bad field fails with no data at all."""
    from supervisor.cli.template import TemplateError

    template = _compile(source, wording)
    try:
        template.execute(probe)
    except TemplateError as exc:
        raise wording.execute_error(exc) from None
    return template


class ObjectFormat:
    """The inspect family's `--format`: whole objects as JSON, or a template each.

    `json_all` (inspect) makes `json` the whole array on one line; `version`, `info`
    and `events` treat it as `{{json .}}`.
    """

    def __init__(self, source: str | None, *, name: str = "", json_all: bool = True,
                 wording: Wording = INSPECT) -> None:
        self.source = source or ""
        self.wording = wording
        self.json_all = json_all and self.source == "json"
        self.template: Template | None = None
        if self.source and not self.json_all:
            body = "{{json .}}" if self.source == "json" else _escapes(self.source)
            self.template = _compile(body, wording, name)

    def render_all(self, objects: Sequence[Any]) -> str:
        """No format: the 4-space indented array; `json`: the array on one line."""
        if self.json_all:
            return go_json(list(objects), escape_html=True) + "\n"
        return go_json(list(objects), escape_html=True, indent=4) + "\n"

    def render(self, obj: Any) -> str:
        """One object through the template, as one output line."""
        from supervisor.cli.template import TemplateError

        assert self.template is not None
        try:
            return self.template.execute(obj) + "\n"
        except TemplateError as exc:
            raise self.wording.execute_error(exc) from None
