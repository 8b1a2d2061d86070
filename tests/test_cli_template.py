"""The Go text/template core behind `--format` and `inspect -f`.

Expected strings are what docker 28's CLI prints for the same templates (checked with
`docker version --format ...` and `docker inspect -f ...`, whose Go engine is the
reference): values printed as Go's fmt does, errors worded as Go's.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from supervisor.cli.govalues import Record, go_float, go_json, sprintf
from supervisor.cli.template import HEADER_FUNCS, Template, TemplateError, render

DATA: dict[str, Any] = {
    "Id": "abc",
    "Name": "/web",
    "State": {"Running": True, "Pid": 42, "ExitCode": 0, "Status": "running"},
    "Config": {"Env": ["A=1", "B=2"], "Labels": {"z": "1", "a": "2"}, "Cmd": None},
    "Mounts": [{"Source": "/s", "Destination": "/d"}, {"Source": "/t", "Destination": "/e"}],
    "NetworkSettings": {"Networks": {"bridge": {"IPAddress": "172.17.0.2"},
                                     "back": {"IPAddress": "10.0.0.5"}}},
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
        ("{{.Config.Labels.nope}}", "<no value>"),
        ('{{index .Config.Labels "z"}}|{{index .Config.Labels "nope"}}|', "1||"),
        ("{{len .Mounts}}", "2"),
        ('{{join .Config.Env ","}}', "A=1,B=2"),
        ("{{range .Mounts}}{{.Source}}:{{.Destination}} {{end}}", "/s:/d /t:/e "),
        ("{{if .State.Running}}up{{else}}down{{end}}", "up"),
        ("{{if .State.Health}}h{{else}}none{{end}}", "none"),
        ("{{with .State}}{{.Pid}}{{end}}", "42"),
        ("{{upper .Name}}", "/WEB"),
        ('{{printf "%s-%d" .Id .State.Pid}}', "abc-42"),
        ("a {{- .Id -}} b", "aabcb"),
        ("{{.Ratio}}", "0.5"),
        ("{{range $.Config.Env}}{{.}};{{end}}", "A=1;B=2;"),
        # variables, in range and declared
        ("{{range $k, $v := .Config.Labels}}{{$k}}={{$v}};{{end}}", "a=2;z=1;"),
        ("{{range $i, $e := .Config.Env}}{{$i}}:{{$e}} {{end}}", "0:A=1 1:B=2 "),
        ("{{range $e := .Config.Env}}{{$e}},{{end}}", "A=1,B=2,"),
        ("{{range $n, $net := .NetworkSettings.Networks}}{{$n}}={{$net.IPAddress}} {{end}}",
         "back=10.0.0.5 bridge=172.17.0.2 "),
        ("{{$x := .Id}}{{$x}} {{$x = 2}}{{$x}} {{with $p := .State.Pid}}{{$p}}{{end}}",
         "abc 2 42"),
        ("{{with .State}}{{$.Id}}{{end}}", "abc"),
        # parentheses and chains
        ('{{(index .NetworkSettings.Networks "bridge").IPAddress}}', "172.17.0.2"),
        ('{{printf "%s" (print 1 2) | printf "[%s]"}}', "[1 2]"),
        ('{{len (slice .Name 1 3)}}', "2"),
        # comparisons and logic (Go's short-circuit and/or return an operand)
        ('{{eq .State.Status "running"}} {{ne .State.ExitCode 0}} {{gt .State.Pid 1}}',
         "true false true"),
        ("{{lt 1 2}} {{le 2 2}} {{gt \"b\" \"a\"}} {{ge 1.5 2.5}} {{eq 1 2 1}}",
         "true true true false true"),
        ('{{and 1 0 2}} {{or 0 "" 3}} {{and 1 2}} {{not 0}} {{not "x"}}', "0 3 2 true false"),
        ("{{if and .State.Running (or .Nope (eq .State.Pid 42))}}yes{{end}}", "yes"),
        ("{{if 0}}a{{else if .State.Running}}b{{else}}c{{end}}", "b"),
        ("{{with 0}}a{{else with .Id}}{{.}}{{end}}", "abc"),
        # range over an int, break and continue (Go 1.22, 1.18)
        ("{{range $i := 5}}{{if eq $i 1}}{{continue}}{{end}}{{if eq $i 3}}{{break}}{{end}}"
         "{{$i}}{{end}}", "02"),
        ("{{range 0}}x{{else}}none{{end}}", "none"),
        # printing as fmt does
        ("{{1000000.0}} {{123456.0}} {{1234567.0}} {{0.00001}} {{3.0}} {{0x1F}} {{017}}",
         "1e+06 123456 1.234567e+06 1e-05 3 31 15"),
        ('{{print 1 2 "a" "b" 3}}', "1 2ab3"),
        ('{{println 1 "a"}}', "1 a\n"),
        ('{{html "<a&b>"}} {{js "a\'b<"}} {{urlquery "a b&c"}}',
         "&lt;a&amp;b&gt; a\\'b\\u003C a+b%26c"),
        ('{{title "hello world"}} {{pad "x" 2 1}}| {{truncate "abcdef" 3}}',
         "Hello World   x | abc"),
        ('{{json "a<b>"}} {{json 1.0}} {{json 1e-7}}', '"a<b>" 1 1e-7'),
        # comments, trims, define/template/block
        ("a  {{- 1 -}}  b {{- /* c */ -}} c", "a1bc"),
        ('{{define "T"}}[{{.}}]{{end}}{{template "T" .Id}}{{block "B" 5}}<{{.}}>{{end}}',
         "[abc]<5>"),
    ],
)
def test_render(template: str, expected: str) -> None:
    assert render(template, DATA) == expected


def test_json_of_whole_object_roundtrips() -> None:
    assert json.loads(render("{{json .}}", DATA)) == DATA


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("{{.Id", "template: :1: unclosed action"),
        ("{{if .Id}}x", "template: :1: unexpected EOF"),
        ("{{end}}", "template: :1: unexpected {{end}}"),
        ("{{else}}", "template: :1: unexpected {{else}}"),
        ("{{nosuch .Id}}", 'template: :1: function "nosuch" not defined'),
        ("{{$x}}", 'template: :1: undefined variable "$x"'),
        ("{{.A}", "template: :1: bad character U+007D '}'"),
        ('{{"abc}}', "template: :1: unterminated quoted string"),
        ("{{(1}}", "template: :1: unclosed left paren"),
        ("{{1)}}", "template: :1: unexpected right paren"),
        ("{{}}", "template: :1: missing value for command"),
        ("{{if}}{{end}}", "template: :1: missing value for if"),
        ("{{1 | 2}}", "template: :1: non executable command in pipeline stage 2"),
        ("{{#}}", 'template: :1: unexpected "#" in command'),
        ("{{/* x */ 1}}", "template: :1: comment ends before closing delimiter"),
        ("{{break}}", "template: :1: {{break}} outside {{range}}"),
        ("{{range $a, $b, $c := 1}}{{end}}", "template: :1: too many declarations in range"),
        ("{{0x1G}}", 'template: :1: bad number syntax: "0x1G"'),
        ("a\n\n{{.Id", "template: :3: unclosed action"),
    ],
)
def test_parse_errors_are_gos(bad: str, message: str) -> None:
    with pytest.raises(TemplateError) as err:
        Template(bad)
    assert str(err.value) == message


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("{{.State.Pid.X}}",
         'template: :1:8: executing "" at <.State.Pid.X>: can\'t evaluate field X in type int'),
        ("{{.State.Health.Status}}",
         'template: :1:8: executing "" at <.State.Health.Status>: '
         'map has no entry for key "Health"'),
        ("{{.Config.Cmd.X}}",
         'template: :1:9: executing "" at <.Config.Cmd.X>: '
         "nil pointer evaluating interface {}.X"),
        ("a\nb {{.Nope.X}}",
         'template: :2:9: executing "" at <.Nope.X>: map has no entry for key "Nope"'),
        ("{{index .Config.Env 5}}",
         'template: :1:2: executing "" at <index .Config.Env 5>: '
         "error calling index: index out of range: 5"),
        ("{{len 3}}",
         'template: :1:2: executing "" at <len 3>: error calling len: len of type int'),
        ('{{eq 1 "a"}}',
         'template: :1:2: executing "" at <eq 1 "a">: '
         "error calling eq: incompatible types for comparison"),
        ("{{len}}",
         'template: :1:2: executing "" at <len>: wrong number of args for len: want 1 got 0'),
        ("{{range .Name}}x{{end}}",
         'template: :1:8: executing "" at <.Name>: range can\'t iterate over /web'),
        ("{{upper 3}}", 'template: :1:8: executing "" at <3>: expected string; found 3'),
        ("{{.Name 1}}",
         'template: :1:2: executing "" at <.Name>: Name is not a method but has arguments'),
        ('{{template "nope"}}',
         'template: :1:11: executing "" at <{{template "nope"}}>: '
         'template "nope" not defined'),
    ],
)
def test_execution_errors_are_gos(bad: str, message: str) -> None:
    with pytest.raises(TemplateError) as err:
        render(bad, DATA)
    assert str(err.value) == message


ROW = Record("*formatter.ContainerContext", {"ID": "abc", "Names": "web"},
             {"Label": (lambda key: {"com.x": "y"}.get(key, ""), ("string",))})


def test_records_are_typed_rows_with_methods() -> None:
    assert render('{{.ID}} {{.Label "com.x"}}|{{.Label "nope"}}|', ROW) == "abc y||"
    assert render('{{"com.x" | .Label}}', ROW) == "y"
    assert json.loads(render("{{json .}}", ROW)) == {"ID": "abc", "Names": "web"}
    cases = {
        "{{.Nope}}": 'template: :1:2: executing "" at <.Nope>: can\'t evaluate field Nope in '
                     "type *formatter.ContainerContext",
        "{{.Label}}": 'template: :1:2: executing "" at <.Label>: wrong number of args for '
                      "Label: want 1 got 0",
        "{{.Label 1}}": 'template: :1:2: executing "" at <.Label>: wrong type for value; '
                        "expected string; got int",
        '{{.ID "x"}}': 'template: :1:2: executing "" at <.ID>: wrong number of args for ID: '
                       "want 0 got 1",
    }
    for bad, message in cases.items():
        with pytest.raises(TemplateError) as err:
            render(bad, ROW)
        assert str(err.value) == message, bad


def test_header_functions_leave_titles_alone() -> None:
    """docker renders a table's header with HeaderFunctions: json, upper... are identity."""
    header = Record("formatter.SubHeaderContext", {"ID": "CONTAINER ID", "Labels": "LABELS"},
                    open=True)
    tmpl = Template("{{.ID}} {{json .Labels}} {{lower .ID}} {{truncate .ID 2}} {{.Nope}}")
    assert tmpl.execute(header, funcs=HEADER_FUNCS) == (
        "CONTAINER ID LABELS CONTAINER ID CONTAINER ID <no value>")


def test_partial_output_survives_an_error() -> None:
    with pytest.raises(TemplateError) as err:
        render("ok {{.Nope.X}}", DATA)
    assert err.value.partial == "ok "


def test_fields_names_what_a_template_reads() -> None:
    assert {"Size", "Names"} <= Template("{{.Names}}{{if .Size}}{{.Size}}{{end}}").fields()
    assert "Size" not in Template("{{.Names}}").fields()


def test_go_values() -> None:
    assert sprintf("%v|%5.2f|%-5s|%5s|%q|%x|%X|%o|%b|%c|%e|%g|%t|%03d|%+d|%T|%T|%T",
                   1.5, 3.14159, "ab", "ab", 'a"b', 255, "hi", 8, 5, 65, 1234.5, 0.000012,
                   True, 7, 3, "s", 1.0, None) == (
        '1.5| 3.14|ab   |   ab|"a\\"b"|ff|6869|10|101|A|1.234500e+03|1.2e-05|true|007|+3|'
        "string|float64|<nil>")
    assert sprintf("%d %s", "x") == "%!d(string=x) %!s(MISSING)"
    assert sprintf("%s", "x", 1) == "x%!(EXTRA int=1)"
    assert [go_float(v) for v in (12345678.9, 100000.5, 0.0001, -2.5e-7, 1e100)] == [
        "1.23456789e+07", "100000.5", "0.0001", "-2.5e-07", "1e+100"]
    assert go_json({"a": "<&>", "b": [1.0, None]}, escape_html=True) == (
        '{"a":"\\u003c\\u0026\\u003e","b":[1,null]}')
    assert go_json({"a": [], "b": {}}, indent=4) == '{\n    "a": [],\n    "b": {}\n}'
