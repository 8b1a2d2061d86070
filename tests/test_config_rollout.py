"""`deploy.update_config`/`rollback_config` read as the rollout planner reads them:
swarm's defaults, checks with file:line:col, the exclusive-volume rule, batches."""

from __future__ import annotations

import pytest

from config.errors import ConfigError
from config.model import Project
from config.project import load_project
from config.rollout import (
    START_FIRST,
    STOP_FIRST,
    UpdateConfig,
    batches,
    rollout_of,
    temporary_name,
    verdict,
)


def load(text: str) -> Project:
    return load_project(
        ["/p/compose.yaml"],
        environ={},
        cwd="/p",
        read_file=lambda path: text if path == "/p/compose.yaml" else _nf(path),
    )


def _nf(path: str) -> str:
    raise FileNotFoundError(path)


def service(deploy: str, volumes: str = "", top: str = "") -> str:
    return (
        "name: demo\nservices:\n  web:\n    image: busybox\n"
        f"{volumes}    deploy:\n{deploy}{top}"
    )


def test_without_update_config_it_is_composes_recreate() -> None:
    p = load("name: demo\nservices:\n  web:\n    image: busybox\n")
    assert rollout_of(p.services["web"], {}) is None


def test_values_and_swarms_defaults() -> None:
    p = load(service(
        "      update_config:\n        order: start-first\n        parallelism: 2\n"
        "        delay: 1m30s\n        failure_action: rollback\n        monitor: 250ms\n"
        "        max_failure_ratio: 0.5\n"
    ))
    plan = rollout_of(p.services["web"], p.model.get("volumes") or {})
    assert plan is not None
    assert plan.update == UpdateConfig("start-first", 2, 90.0, "rollback", 0.25, 0.5)
    assert plan.update.steps == START_FIRST
    assert plan.rollback == UpdateConfig()  # swarm's: stop-first, 1, 0s, pause, 5s, 0
    assert plan.rollback.steps == STOP_FIRST
    assert plan.forced == ""


def test_an_exclusive_volume_forces_stop_first() -> None:
    p = load(service(
        "      update_config: {order: start-first}\n",
        volumes="    volumes: [db:/var/lib/db, scratch:/tmp/s]\n",
        top="volumes:\n  db:\n    labels: {corral.volume.exclusive: 'true'}\n  scratch:\n",
    ))
    plan = rollout_of(p.services["web"], p.model.get("volumes") or {})
    assert plan is not None
    assert plan.update.order == "stop-first" and plan.rollback.order == "stop-first"
    assert plan.forced == "volume demo_db is corral.volume.exclusive: stop-first"


@pytest.mark.parametrize(
    ("deploy", "where", "message"),
    [
        ("      update_config: {order: sideways}\n", "6:30",
         "services.web.deploy.update_config.order: must be one of start-first, stop-first"),
        ("      update_config: {failure_action: explode}\n", "6:39",
         "services.web.deploy.update_config.failure_action: must be one of pause, continue, "
         "rollback"),
        ("      rollback_config: {failure_action: rollback}\n", "6:41",
         "services.web.deploy.rollback_config.failure_action: must be one of pause, continue"),
        ("      update_config: {max_failure_ratio: 2}\n", "6:42",
         "services.web.deploy.update_config.max_failure_ratio: must be between 0 and 1"),
        ("      update_config: {parallelism: -1}\n", "6:36",
         "services.web.deploy.update_config.parallelism: must be 0 or more"),
        ("      update_config: {delay: soon}\n", "6:30", "delay"),
        ("      update_config: {odrer: start-first}\n", "6:23", "unknown key 'odrer'"),
    ],
)
def test_bad_values_are_refused_naming_the_key(deploy: str, where: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(service(deploy))
    text = str(info.value)
    assert f"compose.yaml:{where}" in text and message in text, text


def test_how_a_change_rolls_out_does_not_change_the_config_hash() -> None:
    one = load(service("      update_config: {order: start-first}\n"))
    other = load(service(
        "      update_config: {order: stop-first, parallelism: 3}\n"
        "      rollback_config: {order: start-first}\n"
    ))
    assert one.hash("web") == other.hash("web")


def test_batches_and_the_failure_verdict() -> None:
    assert batches([3, 1, 2], 1) == [[1], [2], [3]]
    assert batches([3, 1, 2, 4, 5], 2) == [[1, 2], [3, 4], [5]]
    assert batches([2, 1], 0) == [[1, 2]]  # 0: all at once
    pause = UpdateConfig(failure_action="pause", max_failure_ratio=0.34)
    assert verdict(pause, 0, 3) == "go"
    assert verdict(pause, 1, 3) == "go"  # 1/3 within the ratio
    assert verdict(pause, 2, 3) == "pause"
    assert verdict(UpdateConfig(failure_action="rollback"), 1, 3) == "rollback"
    assert verdict(UpdateConfig(failure_action="continue"), 3, 3) == "go"


def test_the_temporary_name_is_composes() -> None:
    """compose v2's recreate: `<replaced id[:12]>_<name>`, renamed once the old is gone."""
    assert temporary_name("0123456789abcdef" * 4, "demo-web-1") == "0123456789ab_demo-web-1"
