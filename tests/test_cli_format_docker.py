"""`corral X --format F` against `docker X --format F`, side by side, on one daemon.

The real docker 28 CLI is the reference: the same rows, the same keys and value
formats in `json`, the same headers in `table`, the same one-line errors (with
`docker` read as `corral`) and exit codes. Columns that tick with the clock between
the two runs (CREATED, STATUS's "Up 2 seconds") are left out of the comparison.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import Daemon

CLOCK = ("RunningFor", "Status", "CreatedSince")

LISTINGS = [
    ("ps", "-a"),
    ("images",),
    ("volume", "ls"),
    ("network", "ls"),
]
TEMPLATES = [
    "table {{.ID}}\t{{.Names}}",
    "table {{json .Labels}}\t{{upper .Labels}}",
    '{{.Label "com.example.tier"}}|{{.Label "nope"}}|',
    'table {{.Label "com.example.tier"}}\t{{.Label "my-key_x"}}',
    "{{range $i, $l := split .Labels \",\"}}{{$i}}={{$l}} {{end}}",
    '{{if or (eq .Labels "") (not .Labels)}}none{{else}}{{.Labels}}{{end}}',
    "{{.Nope",
    "{{.Nope}}",
]


@pytest.fixture
def scene(corral: Daemon) -> Daemon:
    for argv in (
        ["volume", "create", "--label", "com.example.tier=db", "data"],
        ["network", "create", "--label", "com.example.tier=front", "front"],
        ["run", "-d", "--name", "web", "--label", "com.example.tier=web", "--label", "a=1",
         "-p", "18080:80", "-v", "data:/data", "busybox", "sleep", "300"],
        ["create", "--name", "idle", "busybox", "true"],
    ):
        r = corral.cli(*argv)
        assert r.returncode == 0, r.stderr
    return corral


def both(d: Daemon, *argv: str) -> tuple[Any, Any]:
    """(exit code, stdout, stderr) of each; docker's name read as corral's, and the
    `corral: ` corral puts before every error (docker before some) set aside."""
    docker, corral = d.docker(*argv), d.cli(*argv)
    return (
        (docker.returncode, docker.stdout,
         docker.stderr.replace("docker", "corral").removeprefix("corral: ")),
        (corral.returncode, corral.stdout, corral.stderr.removeprefix("corral: ")),
    )


def rows(out: str) -> list[dict[str, Any]]:
    return [{k: v for k, v in json.loads(line).items() if k not in CLOCK}
            for line in out.splitlines()]


@pytest.mark.parametrize("verb", LISTINGS, ids=" ".join)
def test_json_rows_match_docker(scene: Daemon, verb: tuple[str, ...]) -> None:
    docker, corral = both(scene, *verb, "--format", "json")
    assert docker[0] == corral[0] == 0
    key = (lambda r: (r.get("Repository"), r.get("Tag"))) if verb == ("images",) else (
        lambda r: r.get("ID") or r.get("Name"))
    assert sorted(rows(corral[1]), key=key) == sorted(rows(docker[1]), key=key)


@pytest.mark.parametrize("template", TEMPLATES)
@pytest.mark.parametrize("verb", LISTINGS, ids=" ".join)
def test_templates_match_docker(scene: Daemon, verb: tuple[str, ...], template: str) -> None:
    if verb == ("images",) and ".Label" in template:
        template = template.replace(".Label", ".Repository |")  # images have no .Label
        template = template.replace('| "com.example.tier"', "|").replace('| "nope"', "|")
        template = template.replace('| "my-key_x"', "|")
    docker, corral = both(scene, *verb, "--format", template)
    assert corral == docker


@pytest.mark.parametrize("verb", LISTINGS, ids=" ".join)
def test_default_tables_match_docker(scene: Daemon, verb: tuple[str, ...]) -> None:
    """`--format table` and `raw` are the verb's own; ps's and images' tables tick
    (CREATED, STATUS, and so the columns' widths), so there the header's titles and the
    row count are compared."""
    docker, corral = both(scene, *verb, "--format", "table")
    assert corral[0] == docker[0] == 0
    assert corral[1].splitlines()[0].split() == docker[1].splitlines()[0].split()
    assert len(corral[1].splitlines()) == len(docker[1].splitlines())
    if verb[0] in ("volume", "network"):
        assert corral == docker
    if verb[0] != "ps":  # ps's raw shows the ticking status too
        docker, corral = both(scene, *verb, "--format", "raw")
        assert corral == docker


def test_inspect_family_matches_docker(scene: Daemon) -> None:
    for argv in (
        ["inspect", "--format", "json", "web"],
        ["inspect", "-f", "{{.ID}} {{.HostConfig.NanoCPUs}}", "web"],  # Go's field names
        ["inspect", "-f", "{{.Id}} {{.HostConfig.NanoCpus}}", "web"],  # JSON's
        ["inspect", "-f", "{{.Id}}", "web", "nope"],
        ["inspect", "-f", "{{.Name}} {{index .Config.Labels \"a\"}}", "web"],
        ["inspect", "-f", "{{range $k, $v := .Config.Labels}}{{$k}}={{$v}};{{end}}", "web"],
        ["inspect", "-f", "{{(index .NetworkSettings.Ports \"80/tcp\" 0).HostPort}}", "web"],
        ["inspect", "-f", "{{.State.Health.Status}}", "web"],
        ["inspect", "-f", "{{.Nope", "web"],
        ["container", "inspect", "--format", "json", "web"],
        ["network", "inspect", "-f", "{{.Name}} {{json .Labels}}", "front"],
        ["volume", "inspect", "-f", "{{.Name}} {{.Labels}}", "data"],
        ["image", "inspect", "-f", "{{index .RepoTags 0}}", "busybox"],
        ["version", "--format", "{{.Server.APIVersion}}"],
        ["version", "--format", "{{.Nope"],
    ):
        docker, corral = both(scene, *argv)
        assert corral == docker, argv


def test_stats_and_events_match_docker(scene: Daemon) -> None:
    for argv in (
        ["stats", "--no-stream", "--format", "table {{.Name}}\t{{.PIDs}}", "web"],
        ["stats", "--no-stream", "--format", "{{.Container}} {{.Name}}", "web"],
        ["stats", "--no-stream", "--format", "{{.Nope"],
        ["events", "--since", "10m", "--until", "0s", "--format", "json"],
        ["events", "--since", "10m", "--until", "0s", "--format",
         "{{.Type}} {{.Action}} {{.Actor.Attributes.name}} {{.Status}} {{.From}}"],
        ["events", "--since", "10m", "--until", "0s", "--format", "{{.Nope}}"],
    ):
        docker, corral = both(scene, *argv)
        assert corral == docker, argv


def test_flag_errors_match_docker(scene: Daemon) -> None:
    for argv in (
        ["ps", "--nope"],
        ["images", "-Z"],
        ["volume", "ls", "--nope"],
        ["stop", "--nope", "web"],
        ["restart", "-t", "x", "web"],
        ["ps", "x"],
        ["rm"],
    ):
        docker, corral = both(scene, *argv)
        assert corral == docker, argv
    docker, corral = both(scene, "stop", "--time", "0", "idle")
    assert corral == docker == (0, "Flag --time has been deprecated, use --timeout instead\n"
                                   "idle\n", "")
