"""The shared `--format` path: docker's `json`/`table` keywords, headers, errors, per verb.

Verbs run against a recorded fake client (no daemon): the API answers are fixed, so
the printed text is compared whole with what docker 28 prints for the same answers.
"""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from supervisor.api.client import Client
from supervisor.cli.context import Cli, CliError
from supervisor.cli.format import tabwrite
from supervisor.cli.main import run_verb


class Answer:
    def __init__(self, body: Any) -> None:
        self.body = body

    def json(self) -> Any:
        return self.body

    def iter_lines(self) -> Any:
        for item in self.body:
            yield json.dumps(item).encode()

    def close(self) -> None:
        pass


class FakeApi(Client):
    """Answers GETs from a table of paths; records every request."""

    def __init__(self, answers: dict[str, Any]) -> None:
        super().__init__("unix:///nonexistent.sock")
        self.answers = answers
        self.requests: list[tuple[str, str, Any]] = []

    def request(self, method: str, path: str, query: Any = None, **_: Any) -> Any:
        self.requests.append((method, path, query))
        for prefix, body in self.answers.items():
            if path.startswith(prefix):
                return Answer(body)
        return Answer({})


def run(api: FakeApi, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    cli = Cli(stdout=out, stderr=err, environ={}, client=api)
    code = run_verb(cli, argv[0], list(argv[1:]))
    return code, out.getvalue(), err.getvalue()


CONTAINERS = [
    {"Id": "0930ae02ff14" + "a" * 52, "Names": ["/web"], "Image": "busybox",
     "ImageID": "sha256:" + "f" * 64, "Command": "sleep 1000", "Created": 1_700_000_000,
     "Ports": [{"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"}],
     "Labels": {"a": "1", "com.x": "y"}, "State": "running", "Status": "Up 4 minutes",
     "NetworkSettings": {"Networks": {"bridge": {}}}, "Mounts": []},
    {"Id": "56a25b9752bf" + "b" * 52, "Names": ["/two"], "Image": "busybox",
     "ImageID": "sha256:" + "f" * 64, "Command": "sleep 1000", "Created": 1_700_000_000,
     "Ports": [], "Labels": {}, "State": "exited", "Status": "Exited (0) 1 second ago",
     "NetworkSettings": {"Networks": {"bridge": {}}},
     "Mounts": [{"Type": "volume", "Name": "vol1", "Source": "/v", "Driver": "local"},
                {"Type": "bind", "Source": "/tmp", "Destination": "/host"}]},
]
VOLUMES = {"Volumes": [{"Name": "vol1", "Driver": "local", "Scope": "local",
                        "Mountpoint": "/var/lib/corral/volumes/vol1/_data",
                        "Labels": {"v": "1"}}], "Warnings": None}
NETWORKS = [{"Name": "net1", "Id": "b271cbc0d52b" + "c" * 52, "Driver": "bridge",
             "Scope": "local", "Created": "2026-12-01T08:37:04.131942128Z",
             "Labels": {"n": "2"}, "Internal": False, "EnableIPv6": False}]
IMAGES = [{"Id": "sha256:f28ba8e9e80e" + "d" * 52, "RepoTags": ["busybox:latest"],
           "RepoDigests": [], "Created": 1_700_000_000, "Size": 1_982_000,
           "SharedSize": -1, "Containers": -1}]


def api() -> FakeApi:
    return FakeApi({"/containers/json": CONTAINERS, "/volumes": VOLUMES,
                    "/networks": NETWORKS, "/images/json": IMAGES})


def test_json_is_one_object_per_line_with_dockers_keys() -> None:
    code, out, _ = run(api(), "ps", "-a", "--format", "json")
    assert code == 0
    first, second = (json.loads(line) for line in out.splitlines())
    assert sorted(first) == ["Command", "CreatedAt", "ID", "Image", "Labels", "LocalVolumes",
                             "Mounts", "Names", "Networks", "Platform", "Ports", "RunningFor",
                             "Size", "State", "Status"]
    assert out.splitlines()[0].startswith('{"Command":"\\"sleep 1000\\"","CreatedAt":')
    assert '"Ports":"0.0.0.0:8080-\\u003e80/tcp"' in out  # json.Marshal escapes HTML
    assert (first["ID"], first["Labels"], first["Size"], first["Platform"]) == (
        "0930ae02ff14", "a=1,com.x=y", "0B", None)
    assert (second["Mounts"], second["LocalVolumes"]) == ("vol1,/tmp", "1")


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["volume", "ls", "--format", "json"],
         '{"Availability":"N/A","Driver":"local","Group":"N/A","Labels":"v=1","Links":"N/A",'
         '"Mountpoint":"/var/lib/corral/volumes/vol1/_data","Name":"vol1","Scope":"local",'
         '"Size":"N/A","Status":"N/A"}\n'),
        (["network", "ls", "--format", "json"],
         '{"CreatedAt":"2026-12-01 08:37:04.131942128 +0000 UTC","Driver":"bridge",'
         '"ID":"b271cbc0d52b","IPv4":"false","IPv6":"false","Internal":"false",'
         '"Labels":"n=2","Name":"net1","Scope":"local"}\n'),
        (["images", "--format", "{{json .}}"],
         None),
        (["ps", "-a", "--format", "table {{.ID}}\t{{.Names}}"],
         "CONTAINER ID   NAMES\n0930ae02ff14   web\n56a25b9752bf   two\n"),
        (["ps", "-a", "--format", "table {{.ID}}\\t{{.Label \"com.x\"}}\\t{{.Names}}"],
         "CONTAINER ID   x         NAMES\n0930ae02ff14   y         web\n"
         "56a25b9752bf             two\n"),
        (["ps", "-a", "--format", "table {{.ID}}\t{{json .Labels}}\t{{upper .Names}}"],
         'CONTAINER ID   LABELS          NAMES\n0930ae02ff14   "a=1,com.x=y"   WEB\n'
         '56a25b9752bf   ""              TWO\n'),
        (["ps", "-a", "--format", "table {{.Names}}\n{{.ID}}\t{{.State}}"],
         "NAMES\nCONTAINER ID   STATE\nweb\n0930ae02ff14   running\ntwo\n"
         "56a25b9752bf   exited\n"),
        (["ps", "-a", "--format", "{{.Names}}\t{{.State}}"], "web\trunning\ntwo\texited\n"),
        (["ps", "-a", "--format", "tablex {{.Names}}"], "x NAMES\nx web\nx two\n"),
        (["ps", "-a", "--format", "table   "], "\n\n\n"),
        (["ps", "-a", "--format", " json"], "json\njson\n"),
        (["ps", "-a", "--format", '{{.Label "com.x"}}|{{.Label "zz"}}|'], "y||\n||\n"),
        (["volume", "ls", "--format", 'table {{.Name}}\t{{.Label "v"}}\t{{.Label "my-key_x"}}'],
         "VOLUME NAME   v         my key x\nvol1          1         \n"),
        (["network", "ls", "--format", '{{.Name}}={{.Label "n"}}'], "net1=2\n"),
        (["volume", "ls", "--format", "raw"], "name: vol1\ndriver: local\n\n"),
        (["network", "ls", "-q", "--format", "{{.Driver}}"], "bridge\n"),
        (["volume", "ls", "-q", "--format", "table"], "vol1\n"),
        (["images", "-q", "--format", "{{.Repository}}"], "busybox\n"),
        (["images", "--format", "table {{.Containers}}\t{{.SharedSize}}\t{{.UniqueSize}}\t"
          "{{.VirtualSize}}\t{{.Digest}}"],
         "CONTAINERS   SHARED SIZE   UNIQUE SIZE   SIZE      DIGEST\n"
         "N/A          N/A           N/A           1.982MB   <none>\n"),
    ],
)
def test_listings_as_docker_prints_them(argv: list[str], expected: str | None) -> None:
    code, out, err = run(api(), *argv)
    assert (code, err) == (0, "")
    if expected is None:  # images rows: every key of docker's imageContext
        assert sorted(json.loads(out)) == ["Containers", "CreatedAt", "CreatedSince", "Digest",
                                           "ID", "Repository", "SharedSize", "Size", "Tag",
                                           "UniqueSize", "VirtualSize"]
    else:
        assert out == expected


def test_table_alone_is_the_default_table() -> None:
    for verb in (["volume", "ls"], ["network", "ls"]):
        assert run(api(), *verb)[1] == run(api(), *verb, "--format", "table")[1]
    assert run(api(), "volume", "ls", "--format", "table")[1] == (
        "DRIVER    VOLUME NAME\nlocal     vol1\n")
    assert run(api(), "network", "ls", "--format", "")[1] == (
        "NETWORK ID     NAME      DRIVER    SCOPE\nb271cbc0d52b   net1      bridge    local\n")


def test_ps_quiet_wins_over_a_format_with_dockers_warning() -> None:
    code, out, err = run(api(), "ps", "-a", "-q", "--format", "{{.Names}}")
    assert (code, out) == (0, "0930ae02ff14\n56a25b9752bf\n")
    assert err == "WARNING: Ignoring custom format, because both --format and --quiet are set.\n"


def test_ps_asks_for_sizes_when_the_template_reads_them() -> None:
    fake = api()
    run(fake, "ps", "--format", "{{.Names}} {{.Size}}")
    assert fake.requests[-1][2]["size"] is True
    fake = api()
    run(fake, "ps", "--size=false", "--format", "{{.Size}}")
    assert fake.requests[-1][2]["size"] is None
    fake = api()
    run(fake, "ps", "--format", "json")
    assert fake.requests[-1][2]["size"] is None


@pytest.mark.parametrize(
    ("argv", "code", "message", "asks"),
    [
        (["images", "--format", "{{.Nope"], 1,
         "template parsing error: template: :1: unclosed action", False),
        (["volume", "ls", "--format", "{{.Nope}}"], 1,
         'template parsing error: template: :1:2: executing "" at <.Nope>: can\'t evaluate '
         "field Nope in type *formatter.volumeContext", True),
        (["images", "--format", '{{.Label "x"}}'], 1,  # docker's images have no .Label
         'template parsing error: template: :1:2: executing "" at <.Label>: can\'t evaluate '
         "field Label in type *formatter.imageContext", True),
        (["network", "ls", "--format", "table {{.ID}}\t{{.Nope}}"], 1,
         'template parsing error: template: :1:10: executing "" at <.Nope>: can\'t evaluate '
         "field Nope in type *network.networkContext", True),
        # ps checks the template as typed, before asking the daemon, in its own words
        (["ps", "--format", "{{.Nope"], 1,
         "failed to parse template: template: :1: unclosed action", False),
        (["ps", "--format", "table {{.ID}}\\t{{.Nope}}"], 1,
         'failed to execute template: template: :1:17: executing "" at <.Nope>: can\'t '
         "evaluate field Nope in type *formatter.ContainerContext", False),
        (["inspect", "--format", "{{.Nope", "web"], 64,
         "template parsing error: template: :1: unclosed action", False),
        (["version", "--format", "{{.Nope"], 64,
         "template parsing error: template: version:1: unclosed action", False),
        (["events", "--format", "{{.Nope}}"], 64,
         'Error parsing format: template: :1:2: executing "" at <.Nope>: can\'t evaluate '
         "field Nope in type *events.Message", False),
        (["stats", "--no-stream", "--format", "{{.Nope"], 1,
         "template parsing error: template: :1: unclosed action", False),
    ],
)
def test_bad_templates_are_one_line_errors(argv: list[str], code: int, message: str,
                                           asks: bool) -> None:
    """docker's wording and exit code per verb; a template that cannot parse (or, for
    ps and events, fails on an empty row) is refused before the daemon is asked."""
    fake = api()
    assert run(fake, *argv) == (code, "", f"corral: {message}\n")
    assert bool(fake.requests) == asks


def test_an_execution_error_prints_nothing_of_the_listing() -> None:
    fake = FakeApi({"/volumes": VOLUMES})
    code, out, err = run(fake, "volume", "ls", "--format", "{{.Name}}{{.Nope}}")
    assert (code, out) == (1, "")
    assert "can't evaluate field Nope" in err


INSPECTED = {"Id": "abc", "Name": "/web", "Config": {"Labels": {"h": "<a&b>"}}}


def test_inspect_json_keyword_is_the_array_on_one_line() -> None:
    fake = FakeApi({"/containers/": INSPECTED})
    code, out, _ = run(fake, "inspect", "--format", "json", "web", "web")
    one = '{"Id":"abc","Name":"/web","Config":{"Labels":{"h":"\\u003ca\\u0026b\\u003e"}}}'
    assert (code, out) == (0, f"[{one},{one}]\n")
    code, out, _ = run(fake, "inspect", "web")
    assert out.startswith('[\n    {\n        "Id": "abc",')
    assert '"h": "\\u003ca\\u0026b\\u003e"' in out
    assert run(fake, "inspect", "-f", "{{json .Config.Labels}}", "web")[1] == (
        '{"h":"<a&b>"}\n')
    assert run(fake, "inspect", "-f", "table", "web")[1] == "table\n"


def test_network_and_volume_inspect_share_the_path() -> None:
    fake = FakeApi({"/networks/": {"Name": "net1", "Id": "x"}, "/volumes/": {"Name": "v"}})
    assert run(fake, "network", "inspect", "--format", "json", "net1")[1] == (
        '[{"Name":"net1","Id":"x"}]\n')
    assert run(fake, "volume", "inspect", "-f", "{{.Name}}", "v")[1] == "v\n"
    code, _, err = run(fake, "network", "inspect", "-f", "{{.Nope", "net1")
    assert (code, err) == (64, "corral: template parsing error: template: :1: unclosed action\n")


def test_version_and_info_json_keyword() -> None:
    fake = FakeApi({"/version": {"Version": "0.1.0"}, "/info": {"ID": "corral"}})
    code, out, _ = run(fake, "version", "--format", "json")
    assert code == 0 and json.loads(out)["Server"] == {"Version": "0.1.0"}
    assert run(fake, "info", "--format", "json")[1] == '{"ID":"corral"}\n'


EVENT = {"status": "create", "id": "c1", "from": "busybox", "Type": "container",
         "Action": "create", "Actor": {"ID": "c1", "Attributes": {"name": "web", "image": "bb"}},
         "scope": "local", "time": 1, "timeNano": 1000000000}


def test_events_are_docker_messages() -> None:
    wire = {k: EVENT[k] for k in ("Type", "Action", "Actor", "scope", "time", "timeNano",
                                  "status", "id", "from")}
    fake = FakeApi({"/events": [wire]})
    code, out, _ = run(fake, "events", "--format", "json")
    assert (code, out) == (0, '{"status":"create","id":"c1","from":"busybox","Type":'
                              '"container","Action":"create","Actor":{"ID":"c1","Attributes":'
                              '{"image":"bb","name":"web"}},"scope":"local","time":1,'
                              '"timeNano":1000000000}\n')
    fmt = "{{.ID}} {{.Status}} {{.From}} {{.Actor.Attributes.name}} {{.TimeNano}}"
    assert run(fake, "events", "--format", fmt)[1] == "c1 create busybox web 1000000000\n"


def test_stats_headers_and_container_as_given() -> None:
    from supervisor.cli.stats import render, row

    stats = {"id": "f" * 64, "name": "/web", "read": "2024-01-01T00:00:00Z",
             "memory_stats": {"usage": 1024, "limit": 2048}, "pids_stats": {"current": 2}}
    line = [row(stats, None, False, "web")]
    assert render(line, "table {{.Container}}\t{{.ID}}\t{{.PIDs}}") == (
        "CONTAINER   CONTAINER ID   PIDS\nweb         ffffffffffff   2\n")
    assert json.loads(render(line, "json"))["Container"] == "web"
    assert render(line, "table") == render(line, None)


def test_tabwrite_is_gos_tabwriter() -> None:
    assert tabwrite("a\tb\tc\nlonger cell\tx\nno tabs\nq\tw\n") == (
        "a             b         c\nlonger cell   x\nno tabs\nq         w\n")
    assert tabwrite("") == ""


def test_plain_templates_render_as_the_engine_does() -> None:
    """Default tables (text and `{{.Field}}` only) skip the engine; same output."""
    from supervisor.cli.containers import PS_HEADERS, _ps_defaults, ps_record
    from supervisor.cli.output import RowFormat

    rows = [ps_record(c, 1_700_000_100, True) for c in CONTAINERS]
    for source in (_ps_defaults(True).table, "{{.Names}}\\t{{.Platform}}|{{.Size}}",
                   "table {{.ID}} {{.Nope}}"):
        fast = RowFormat(source, PS_HEADERS)
        assert fast.plain is not None
        slow = RowFormat(source, PS_HEADERS)
        slow.plain = None
        if "Nope" in source:
            with pytest.raises(CliError):
                fast.render(rows)
            assert fast.render([]) == slow.render([]) == "CONTAINER ID <no value>\n"
            continue
        assert fast.render(rows) == slow.render(rows)
    assert RowFormat("{{ .ID }}", PS_HEADERS).plain is None


def test_a_default_listing_does_not_load_the_engine() -> None:
    """`corral ps` starts lean: its default table needs no template engine."""
    import subprocess
    import sys

    code = ("import sys\nfrom supervisor.cli.containers import PS_HEADERS, _ps_defaults\n"
            "from supervisor.cli.output import RowFormat\n"
            "RowFormat(_ps_defaults(False).table, PS_HEADERS).render([])\n"
            "print('supervisor.cli.template' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out == "False\n"
