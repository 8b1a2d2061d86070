"""Every key of the current compose spec is known to corral's schema table.

tests/data/compose-spec.json is the compose spec's JSON schema as Docker Compose reads
it: compose-spec/compose-go v2.13.0 (commit 0670a1c375c19defea19147bd82eb126a7c33b29),
schema/compose-spec.json, unchanged. To follow a newer spec, replace the file: these
tests then name each key corral has not classified yet.

Known means one of three things (config/schema.py): applied, refused with "is not
supported by corral yet", or (no meaning on one host) warned about with the reason.
"""

from __future__ import annotations

import json
import pathlib
from collections.abc import Iterator
from typing import Any

import pytest

from config.container import create_body
from config.errors import ConfigError
from config.model import Project
from config.project import load_project
from config.schema import PROJECT, Either, ListOf, MapOf, Obj, Spec

SPEC = json.loads((pathlib.Path(__file__).parent / "data" / "compose-spec.json").read_text())


def _shapes(node: Any, defs: dict[str, Any], depth: int = 0) -> Iterator[dict[str, Any]]:
    """The JSON-schema objects a node stands for: $refs followed, oneOf/anyOf/allOf
    flattened."""
    assert depth < 20, "unexpected $ref cycle"
    if not isinstance(node, dict):
        return
    if "$ref" in node:
        yield from _shapes(defs[node["$ref"].rsplit("/", 1)[-1]], defs, depth + 1)
        return
    yield node
    for key in ("oneOf", "anyOf", "allOf"):
        for alt in node.get(key, []):
            yield from _shapes(alt, defs, depth + 1)


def _alternatives(spec: Spec) -> list[Spec]:
    if isinstance(spec, Either):
        return [a for alt in spec.alts for a in _alternatives(alt)]
    return [spec]


def _walk(
    node: Any,
    spec: Spec,
    path: str,
    defs: dict[str, Any],
    unknown: list[str],
    invented: list[str],
) -> None:
    """Compare one place of the JSON schema with corral's spec for the same place.

    Keys corral refuses or ignores are known as a whole: what is under them is not
    walked (corral reads none of it)."""
    alts = _alternatives(spec)
    objs = [a for a in alts if isinstance(a, Obj)]
    maps = [a for a in alts if isinstance(a, MapOf)]
    lists = [a for a in alts if isinstance(a, ListOf)]
    spec_keys: set[str] = set()
    for shape in _shapes(node, defs):
        props: dict[str, Any] = shape.get("properties") or {}
        spec_keys |= set(props)
        for name, sub in props.items():
            owners = [o for o in objs if name in o.known()]
            if not owners:
                unknown.append(f"{path}.{name}".lstrip("."))
            for o in owners:
                if name in o.fields:
                    _walk(sub, o.fields[name], f"{path}.{name}", defs, unknown, invented)
        pattern_values = [
            sub for pat, sub in (shape.get("patternProperties") or {}).items() if pat != "^x-"
        ]
        extra = shape.get("additionalProperties")
        if isinstance(extra, dict):
            pattern_values.append(extra)
        for sub in pattern_values:
            if not maps:
                unknown.append(f"{path}.* (a mapping of any keys, corral has no such mapping)")
            for m in maps:
                _walk(sub, m.value, f"{path}.*", defs, unknown, invented)
        if "items" in shape:
            for li in lists:
                _walk(shape["items"], li.item, f"{path}[]", defs, unknown, invented)
    if spec_keys:
        for o in objs:
            invented.extend(f"{path}.{k}".lstrip(".") for k in sorted(o.known() - spec_keys))


def _compare(schema: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(spec keys corral does not know, keys corral knows that the spec lacks)."""
    unknown: list[str] = []
    invented: list[str] = []
    defs = schema.get("$defs") or schema["definitions"]
    _walk(schema, PROJECT, "", defs, unknown, invented)
    return unknown, invented


def test_every_key_of_the_pinned_compose_spec_is_known() -> None:
    unknown, _ = _compare(SPEC)
    assert unknown == []


def test_corral_knows_no_key_the_spec_lacks() -> None:
    _, invented = _compare(SPEC)
    assert invented == []


def test_the_comparison_reaches_nested_keys() -> None:
    """It can fail: a key added deep in the spec, or one removed, is reported."""
    schema = json.loads(json.dumps(SPEC))
    defs = schema["$defs"]
    defs["service"]["properties"]["colour"] = {"type": "string"}
    del defs["healthcheck"]["properties"]["start_interval"]
    props = defs["service"]["properties"]["volumes"]["items"]["oneOf"][1]["properties"]
    props["bind"]["properties"]["depth"] = {"type": "integer"}
    unknown, invented = _compare(schema)
    assert unknown == ["services.*.volumes[].bind.depth", "services.*.colour"]
    assert invented == ["services.*.healthcheck.start_interval"]


# -- what a user sees for each kind of key -----------------------------------------------


def _load(text: str) -> Project:
    def read(path: str) -> str:
        if path != "/p/compose.yaml":
            raise FileNotFoundError(2, "no such file or directory", path)
        return text

    return load_project(["/p/compose.yaml"], environ={}, cwd="/p", read_file=read)


def _errors(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        _load(text)
    return [str(p) for p in info.value.problems]


def test_keys_of_the_current_spec_corral_lacks_are_refused_by_name() -> None:
    errs = _errors(
        "services:\n  web:\n    image: x\n    pull_refresh_after: 1h\n"
        "    use_api_socket: true\n    models: [llm]\n    runtime: runc\n"
        "    volumes:\n      - {type: bind, source: ., target: /s, bind: {recursive: enabled}}\n"
        "models:\n  llm: {model: ai/smollm2}\n"
    )
    assert errs == [
        "compose.yaml:4:5: services.web.pull_refresh_after is not supported by corral yet",
        "compose.yaml:5:5: services.web.use_api_socket is not supported by corral yet",
        "compose.yaml:6:5: services.web.models is not supported by corral yet",
        "compose.yaml:7:5: services.web.runtime is not supported by corral yet",
        "compose.yaml:9:52: services.web.volumes[0].bind.recursive is not supported by corral yet",
        "compose.yaml:10:1: models is not supported by corral yet",
    ]


def test_keys_without_meaning_on_one_host_warn_with_the_reason() -> None:
    p = _load(
        "services:\n  web:\n    image: x\n    cpu_count: 2\n"
        "    isolation: default\n"
        "    deploy: {replicas: 2, placement: {constraints: [node.role==manager]}}\n"
    )
    assert [str(w) for w in p.warnings] == [
        "compose.yaml:4:5: services.web.cpu_count is ignored: it only means something to "
        "Windows containers",
        "compose.yaml:5:5: services.web.isolation is ignored: it only means something to "
        "Windows containers",
        "compose.yaml:6:27: services.web.deploy.placement is ignored: it only means "
        "something to Docker Swarm (compose ignores it too)",
    ]
    assert p.scale("web") == 2  # the rest of the file is applied


def test_deprecated_external_name_reads_as_name_and_external_as_compose_does() -> None:
    p = _load(
        "services:\n  web: {image: x, volumes: [data:/d]}\n"
        "volumes:\n  data:\n    external: {name: shared}\n"
    )
    assert p.model["volumes"]["data"] == {"external": True, "name": "shared"}


def test_keys_the_engine_already_honours_are_applied() -> None:
    """cpu_shares and the dns keys were warned about and dropped; `docker run` has had
    their flags all along, so compose's create body carries them as compose's does."""
    p = _load(
        "services:\n  web:\n    image: x\n    cpu_shares: 512\n    dns: 10.0.0.2\n"
        "    dns_search: [example.org]\n    dns_opt: [ndots:2]\n"
        "    cpu_period: 100000\n    cpu_quota: 25000\n    cpuset: '0'\n"
    )
    assert p.warnings == []
    host = create_body(p, "web", 1)[1]["HostConfig"]
    assert (host["CpuPeriod"], host["CpuQuota"], host["CpusetCpus"]) == (100000, 25000, "0")
    assert (host["CpuShares"], host["Dns"], host["DnsSearch"], host["DnsOptions"]) == (
        512,
        ["10.0.0.2"],
        ["example.org"],
        ["ndots:2"],
    )


def test_tty_and_stdin_open_are_applied() -> None:
    """`tty:` was refused while corral had no terminals; compose sends both to create."""
    p = _load("services:\n  web:\n    image: x\n    tty: true\n    stdin_open: true\n")
    assert p.warnings == []
    config = create_body(p, "web", 1)[1]
    assert (config["Tty"], config["OpenStdin"]) == (True, True)
    plain = create_body(_load("services:\n  web: {image: x}\n"), "web", 1)[1]
    assert (plain["Tty"], plain["OpenStdin"]) == (False, False)
