"""`extends:` as compose resolves it: same-file and other-file bases, chains, the
override rules, cycles and missing bases named; and a service brought up from it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import Daemon

from config.errors import ConfigError
from config.model import Project
from config.project import load_project


def _load(files: dict[str, str]) -> Project:
    def read(path: str) -> str:
        if path not in files:
            raise FileNotFoundError(2, "no such file or directory", path)
        return files[path]

    return load_project(["/p/compose.yaml"], environ={}, cwd="/p", read_file=read)


def _errors(files: dict[str, str]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        _load(files)
    return [str(p) for p in info.value.problems]


def test_a_service_extends_one_of_the_same_file_by_the_override_rules() -> None:
    p = _load({"/p/compose.yaml": """\
services:
  base:
    image: busybox
    command: [sleep, '1']
    environment: {A: '1', B: '1'}
    cap_add: [NET_ADMIN]
  web:
    extends: base
    command: [sleep, '2']
    environment: {B: '2'}
    cap_add: [SYS_TIME]
  chained:
    extends: {service: web}
    environment: {C: '3'}
"""})
    web = p.services["web"]
    assert "extends" not in web
    assert web["image"] == "busybox"
    assert web["command"] == ["sleep", "2"]
    assert web["environment"] == {"A": "1", "B": "2"}
    assert web["cap_add"] == ["NET_ADMIN", "SYS_TIME"]
    assert p.services["chained"]["environment"] == {"A": "1", "B": "2", "C": "3"}
    assert p.services["chained"]["command"] == ["sleep", "2"]


def test_a_base_from_another_file_keeps_its_build_context_relative_to_it() -> None:
    p = _load({
        "/p/compose.yaml": "services:\n  app:\n    extends: {file: lib/common.yaml, service: svc}\n"
                           "    environment: {X: '1'}\n",
        "/p/lib/common.yaml": "services:\n  svc:\n    build: ./ctx\n    environment: {Y: '2'}\n",
    })
    app = p.services["app"]
    assert app["build"]["context"] == "/p/lib/ctx"
    assert app["environment"] == {"X": "1", "Y": "2"}


def test_cycles_and_missing_bases_are_named() -> None:
    errs = _errors({"/p/compose.yaml": "services:\n  a: {extends: b, image: x}\n"
                                        "  b: {extends: a, image: x}\n"})
    assert any("extends cycle detected: a -> b -> a" in e for e in errs), errs
    errs = _errors({"/p/compose.yaml": "services:\n  a: {extends: nope, image: x}\n"})
    assert errs == ['compose.yaml:2:16: services.a.extends: no service "nope"']
    errs = _errors({"/p/compose.yaml": "services:\n  a:\n    extends: {file: gone.yaml, "
                                        "service: s}\n"})
    assert any("cannot load /p/gone.yaml" in e for e in errs), errs


def test_up_brings_up_an_extended_service(corral: Daemon, dk: Any, tmp_path: Path) -> None:
    (tmp_path / "common.yaml").write_text(
        "services:\n  svc:\n    image: busybox\n    command: [sleep, '1000']\n"
        "    environment: {FROM: common}\n    stop_grace_period: 1s\n")
    path = tmp_path / "compose.yaml"
    path.write_text("name: ex\nservices:\n  app:\n"
                    "    extends: {file: common.yaml, service: svc}\n"
                    "    environment: {OWN: yes-own}\n")
    r = corral.cli("compose", "-f", str(path), "up", "-d")
    assert r.returncode == 0, r.stderr
    env = dk.containers.get("ex-app-1").attrs["Config"]["Env"]
    assert "FROM=common" in env and "OWN=yes-own" in env
    corral.cli("compose", "-f", str(path), "down", "-t", "0", check=True)


def test_include_adds_another_file_s_resources_relative_to_it() -> None:
    p = _load({
        "/p/compose.yaml": "include: [lib/db.yaml]\nservices:\n  web:\n    image: x\n"
                           "    depends_on: [db]\n",
        "/p/lib/db.yaml": "include: [more.yaml]\nservices:\n  db:\n    build: ./ctx\n"
                          "    volumes: ['./data:/data']\nvolumes:\n  cache:\n",
        "/p/lib/more.yaml": "services:\n  extra:\n    image: y\n",
    })
    assert sorted(p.services) == ["db", "extra", "web"]
    assert p.services["db"]["build"]["context"] == "/p/lib/ctx"
    assert p.services["db"]["volumes"][0]["source"] == "/p/lib/data"
    assert p.model["volumes"]["cache"]["name"] == "p_cache"


def test_an_included_resource_clashing_with_the_project_s_is_an_error() -> None:
    errs = _errors({
        "/p/compose.yaml": "include: [other.yaml]\nservices:\n  web: {image: x}\n",
        "/p/other.yaml": "services:\n  web: {image: y}\n",
    })
    assert errs == ["services.web conflicts with imported resource (from /p/other.yaml)"]
