"""Pure cores: the daemon's config file (`config.daemonconf`) and the project handed to
the daemon by `up -d` (`config.handover`), without a daemon."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from config.daemonconf import (
    DEFAULT_CONFIG,
    Setting,
    config_path,
    parse_daemon_config,
    settle,
)
from config.errors import ConfigError
from config.handover import Handover, HandoverError, from_wire
from config.model import Project

SETTINGS = [
    Setting("root", "CORRAL_ROOT", "/var/lib/corral"),
    Setting("runtime", None, "runc"),
    Setting("log-opts", None, []),
    Setting("services", "CORRAL_SERVICES", None),
]


def problems(text: str, checks: Mapping[str, Any] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_daemon_config(text, "/etc/corral/daemon.yaml", checks)
    return [str(p) for p in info.value.problems]


def test_a_file_gives_settings_with_paths_taken_from_its_directory() -> None:
    f = parse_daemon_config(
        "root: state\nservices: /srv/compose\nlog-opts: {max-file: 3, max-size: 10m}\n",
        "/etc/corral/daemon.yaml",
    )
    assert f.values == {
        "root": "/etc/corral/state",
        "services": "/srv/compose",
        "log-opts": {"max-file": "3", "max-size": "10m"},
    }
    assert str(f.where("services")) == "/etc/corral/daemon.yaml:2:11"


def test_an_empty_file_sets_nothing() -> None:
    assert parse_daemon_config("# nothing yet\n", "d.yaml").values == {}


def test_every_problem_is_named_at_its_position() -> None:
    def no_crun(value: Any, doc: Mapping[str, Any]) -> None:
        if value == "crun":
            raise ValueError("crun is not installed")

    assert problems(
        "runtme: runc\nhost: tcp://0.0.0.0:2375\nlog-level: loud\n"
        "root: [a]\nlog-opts: [max-size=1m]\nruntime: crun\n",
        {"runtime": no_crun},
    ) == [
        "/etc/corral/daemon.yaml:1:1: unknown key 'runtme' (did you mean 'runtime'?)",
        "/etc/corral/daemon.yaml:2:7: unsupported host 'tcp://0.0.0.0:2375': "
        "only unix:///path sockets",
        "/etc/corral/daemon.yaml:3:12: unknown log-level 'loud': "
        "one of debug, info, warning, error, critical",
        "/etc/corral/daemon.yaml:4:7: root must be a string",
        "/etc/corral/daemon.yaml:5:11: log-opts must be a mapping of option names to strings",
        "/etc/corral/daemon.yaml:6:10: crun is not installed",
    ]


def test_init_is_a_boolean_and_init_path_a_path() -> None:
    f = parse_daemon_config("init: true\ninit-path: bin/tini\n", "/etc/corral/daemon.yaml")
    assert f.values == {"init": True, "init-path": "/etc/corral/bin/tini"}
    assert problems("init: 'yes'\n") == ["/etc/corral/daemon.yaml:1:7: init must be true or false"]


def test_not_a_mapping_and_bad_yaml_are_refused() -> None:
    assert problems("- root\n") == [
        "/etc/corral/daemon.yaml:1:1: a daemon config file must be a mapping"
    ]
    assert problems("root: /a\nroot: /b\n") == [
        "/etc/corral/daemon.yaml:2:1: duplicate key 'root' (first defined at line 1)"
    ]


def test_a_flag_beats_the_environment_which_beats_the_file_which_beats_the_default() -> None:
    f = parse_daemon_config(
        "root: /file\nruntime: crun\nservices: /file/s\nlog-opts: {max-size: 1m, max-file: 2}\n",
        "/d.yaml",
    )
    flags = {"root": "/flag", "runtime": None, "services": None, "log-opts": ["max-size=5m"]}
    env = {"CORRAL_ROOT": "/env", "CORRAL_SERVICES": "/env/s"}
    assert settle(SETTINGS, flags, env, f) == {
        "root": "/flag",
        "runtime": "crun",
        "services": "/env/s",
        # the file's options first, a flag's after: it wins option by option
        "log-opts": ["max-size=1m", "max-file=2", "max-size=5m"],
    }
    assert settle(SETTINGS, {}, {}, None) == {
        "root": "/var/lib/corral",
        "runtime": "runc",
        "services": None,
        "log-opts": [],
    }


def test_which_file_is_read() -> None:
    assert config_path("/x.yaml", {"CORRAL_CONFIG": "/y.yaml"}, lambda p: True) == "/x.yaml"
    assert config_path(None, {"CORRAL_CONFIG": "/y.yaml"}, lambda p: True) == "/y.yaml"
    assert config_path(None, {}, lambda p: p == DEFAULT_CONFIG) == DEFAULT_CONFIG
    assert config_path(None, {}, lambda p: False) == ""
    assert config_path("", {}, lambda p: True) == ""  # --config '' turns the default off


# -- handover --------------------------------------------------------------------------

MODEL: dict[str, Any] = {
    "name": "demo",
    "services": {
        "db": {"image": "busybox"},
        "web": {"image": "busybox", "depends_on": {"db": {"condition": "service_healthy"}}},
    },
}


def wire(**changes: Any) -> dict[str, Any]:
    project = Project("demo", MODEL, "/srv/demo", ["/srv/demo/compose.yaml"])
    doc = Handover(project, ["web"], {"web": 3}, force_recreate=True, parallel_limit=4).to_wire()
    doc.update(changes)
    return doc


def test_a_handover_round_trips_and_keeps_only_the_desired_state() -> None:
    h = from_wire(wire())
    assert (h.project.name, h.project.working_dir, h.project.config_files) == (
        "demo",
        "/srv/demo",
        ["/srv/demo/compose.yaml"],
    )
    assert h.project.order() == ["db", "web"]
    opts = h.options()
    assert (opts.services, opts.scale, opts.force_recreate) == (["web"], {"web": 3}, True)
    kept = from_wire(h.kept().to_wire())
    assert kept.options().force_recreate is False
    assert kept.parallel_limit is None
    assert (kept.services, kept.scale, kept.project.model) == (["web"], {"web": 3}, MODEL)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"Name": "Demo!"}, "invalid project name 'Demo!'"),
        ({"Model": {"services": []}}, "Model must be a normalized compose model"),
        (
            {"Model": {"services": {"a": {"depends_on": {"b": {}}}}}},
            'service "a" depends on undefined service "b"',
        ),
        (
            {"Model": {"services": {"a": {"depends_on": {"a": {}}}}}, "Services": []},
            "dependency cycle: a -> a",
        ),
        ({"WorkingDir": "relative"}, "WorkingDir must be an absolute path"),
        ({"Scale": {"nosuch": 1}}, "no such service: nosuch"),
        ({"Scale": {"web": -1}}, "Scale.web must be a number >= 0"),
        ({"NoRecreate": True}, "ForceRecreate and NoRecreate are incompatible"),
        ({"RemoveOrphans": "yes"}, "RemoveOrphans must be true or false"),
        ({"ParallelLimit": 0}, "ParallelLimit must be a number >= 1"),
    ],
)
def test_a_bad_handover_names_its_culprit(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(HandoverError) as info:
        from_wire(wire(**changes))
    assert str(info.value).startswith(message)


def test_a_body_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(HandoverError, match="JSON object"):
        from_wire(["demo"])


def test_the_example_daemon_file_is_valid() -> None:
    from pathlib import Path

    path = Path(__file__).parent.parent / "examples" / "daemon.yaml"
    values = parse_daemon_config(path.read_text(), str(path)).values
    assert values["log-opts"] == {"max-size": "10m", "max-file": "3"}
    assert values["host"] == "unix:///run/corral/corral.sock"


def test_api_bounds_take_durations_and_counts() -> None:
    f = parse_daemon_config(
        "api-header-timeout: 1m30s\napi-idle-timeout: 300\napi-body-timeout: 500ms\n"
        "api-max-client-connections: 64\n",
        "/etc/corral/daemon.yaml",
    )
    assert f.values == {
        "api-header-timeout": 90.0,
        "api-idle-timeout": 300.0,
        "api-body-timeout": 0.5,
        "api-max-client-connections": 64,
    }
    assert problems("api-header-timeout: soon\napi-max-connections: 0\n") == [
        "/etc/corral/daemon.yaml:1:21: invalid duration 'soon' (e.g. 30s, 5m, 1m30s)",
        "/etc/corral/daemon.yaml:2:22: api-max-connections must be a positive integer, not 0",
    ]


def test_userns_remap_takes_default_or_a_user_and_group() -> None:
    for value in ("", "default", "dockremap", "remap:remap", "1000:1000"):
        assert parse_daemon_config(f"userns-remap: '{value}'\n", "d.yaml").values == {
            "userns-remap": value}
    assert problems("root: /r\nuserns-remap: a:b:c\n") == [
        "/etc/corral/daemon.yaml:2:15: userns-remap 'a:b:c': want default, USER or USER:GROUP "
        "(names or ids)"
    ]


def test_live_restore_is_a_boolean() -> None:
    f = parse_daemon_config("live-restore: true\n", "/etc/corral/daemon.yaml")
    assert f.values == {"live-restore": True}
    assert problems("live-restore: 1\n") == [
        "/etc/corral/daemon.yaml:1:15: live-restore must be true or false"
    ]


def test_default_bridge_ipv6_settings() -> None:
    f = parse_daemon_config("ipv6: true\nfixed-cidr-v6: fd00:db8:1::/64\n", "/d.yaml")
    assert f.values == {"ipv6": True, "fixed-cidr-v6": "fd00:db8:1::/64"}
    assert problems("fixed-cidr-v6: 10.0.0.0/8\n") == [
        "/etc/corral/daemon.yaml:1:16: fixed-cidr-v6 '10.0.0.0/8': not an IPv6 subnet (CIDR)"
    ]
    assert "the prefix is longer than /120" in problems("fixed-cidr-v6: fd00::/124\n")[0]
    assert "ipv6" in problems("ipv6: maybe\n")[0]
