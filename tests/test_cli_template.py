"""The Go-template subset used by `inspect -f` and `--format`."""

from __future__ import annotations

from typing import Any

import pytest

from supervisor.cli.template import TemplateError, render, render_list

DATA: dict[str, Any] = {
    "Id": "abc",
    "Name": "/web",
    "State": {"Running": True, "Pid": 42, "ExitCode": 0, "Health": None},
    "Config": {"Env": ["A=1", "B=2"], "Labels": {"z": "1", "a": "2"}, "Cmd": None},
    "Mounts": [{"Source": "/s", "Destination": "/d"}, {"Source": "/t", "Destination": "/e"}],
    "Ratio": 0.5,
}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{.Id}}", "abc"),
        ("{{.State.Running}} {{.State.Pid}}", "true 42"),
        ("{{json .Config.Labels}}", '{"z":"1","a":"2"}'),
        ("{{.Config.Labels | json}}", '{"z":"1","a":"2"}'),
        ("{{.Config.Env}}", "[A=1 B=2]"),
        ("{{.Config.Labels}}", "map[a:2 z:1]"),
        ("{{.Config.Cmd}}", "<nil>"),
        ("{{.Nope}}", "<no value>"),
        ("{{index .Config.Labels \"z\"}}", "1"),
        ("{{len .Mounts}}", "2"),
        ("{{join .Config.Env \",\"}}", "A=1,B=2"),
        ("{{range .Mounts}}{{.Source}}:{{.Destination}} {{end}}", "/s:/d /t:/e "),
        ("{{if .State.Running}}up{{else}}down{{end}}", "up"),
        ("{{if .State.Health}}h{{else}}none{{end}}", "none"),
        ("{{with .State}}{{.Pid}}{{end}}", "42"),
        ("{{upper .Name}}", "/WEB"),
        ("{{printf \"%s-%d\" .Id .State.Pid}}", "abc-42"),
        ("a {{- .Id -}} b", "aabcb"),
        ("{{json .}}"[:0] + "{{.Ratio}}", "0.5"),
        ("{{range $.Config.Env}}{{.}};{{end}}", "A=1;B=2;"),
    ],
)
def test_render(template: str, expected: str) -> None:
    assert render(template, DATA) == expected


def test_json_of_whole_object_roundtrips() -> None:
    import json

    assert json.loads(render("{{json .}}", DATA)) == DATA


@pytest.mark.parametrize("bad", ["{{.Id", "{{if .Id}}x", "{{nosuchfunc .Id}}", "{{end}}",
                                 "{{.State.Pid.X}}"])
def test_errors(bad: str) -> None:
    with pytest.raises(TemplateError):
        render(bad, DATA)


def test_render_list_table_and_plain() -> None:
    rows = [{"ID": "a1", "Names": "web"}, {"ID": "b22", "Names": "db"}]
    headers = {"ID": "CONTAINER ID", "Names": "NAMES"}
    assert render_list("{{.ID}}", rows, headers) == "a1\nb22\n"
    assert render_list("table {{.ID}}\t{{.Names}}", rows, headers) == (
        "CONTAINER ID   NAMES\na1             web\nb22            db\n"
    )
