"""The reconcile core: desired project + observed containers → actions, without containers."""

from __future__ import annotations

from collections.abc import Sequence

from config.container import create_body
from config.model import Project
from config.project import load_project
from config.reconcile import Observed, UpOptions, plan_down, plan_up

BASE = (
    "name: demo\nservices:\n"
    "  db:\n    image: busybox\n    command: [sleep, '1000']\n"
    "  web:\n    image: busybox\n    scale: 2\n    depends_on:\n"
    "      db: {condition: service_started, restart: true}\n"
    "  side:\n    image: busybox\n    network_mode: 'service:db'\n"
)


def load(text: str = BASE) -> Project:
    return load_project(
        ["/p/compose.yaml"],
        environ={},
        cwd="/p",
        read_file=lambda path: text if path == "/p/compose.yaml" else _nf(path),
    )


def _nf(path: str) -> str:
    raise FileNotFoundError(2, "missing", path)


def running(
    p: Project, service: str, number: int, *, state: str = "running", hash: str | None = None
) -> Observed:
    return Observed(
        id=f"{service}{number}",
        name=f"{p.name}-{service}-{number}",
        service=service,
        number=number,
        config_hash=p.hash(service) if hash is None else hash,
        state=state,
    )


def kinds(plan_actions: Sequence[object]) -> list[str]:
    return [str(a) for a in plan_actions]


def everything(p: Project) -> list[Observed]:
    return [running(p, "db", 1), running(p, "web", 1), running(p, "web", 2), running(p, "side", 1)]


def test_first_up_creates_in_dependency_order() -> None:
    p = load()
    plan = plan_up(p, [], UpOptions())
    assert [sp.service for sp in plan.services] == ["db", "side", "web"]
    assert kinds(plan.actions) == ["create db-1", "create side-1", "create web-1", "create web-2"]


def test_second_up_with_nothing_changed_touches_nothing() -> None:
    p = load()
    plan = plan_up(p, everything(p), UpOptions())
    assert plan.actions == []


def test_stopped_containers_are_started_not_recreated() -> None:
    p = load()
    observed = everything(p)
    observed[1] = running(p, "web", 1, state="exited")
    assert kinds(plan_up(p, observed, UpOptions()).actions) == ["start demo-web-1"]


def test_changed_service_is_recreated_with_its_dependants_that_need_it() -> None:
    p = load()
    observed = everything(p)
    observed[0] = running(p, "db", 1, hash="old")
    # side shares db's network stack: recreated; web asked for restart: restarted
    assert kinds(plan_up(p, observed, UpOptions()).actions) == [
        "recreate demo-db-1",
        "recreate demo-side-1",
        "restart demo-web-1",
        "restart demo-web-2",
    ]


def test_changed_leaf_service_recreates_only_itself() -> None:
    p = load()
    observed = everything(p)
    observed[2] = running(p, "web", 2, hash="old")
    assert kinds(plan_up(p, observed, UpOptions()).actions) == ["recreate demo-web-2"]


def test_force_and_no_recreate() -> None:
    p = load()
    assert len(plan_up(p, everything(p), UpOptions(force_recreate=True)).actions) == 4
    observed = [running(p, s.service, s.number, hash="old") for s in everything(p)]
    assert plan_up(p, observed, UpOptions(no_recreate=True)).actions == []


def test_a_different_image_recreates() -> None:
    p = load()
    observed = [Observed("w1", "demo-web-1", "web", 1, p.hash("web"), "running", "sha256:old")]
    opts = UpOptions(services=["web"], image_ids={"web": "sha256:new", "db": "sha256:new"})
    assert "recreate demo-web-1" in kinds(plan_up(p, observed, opts).actions)


def test_scale_down_removes_highest_numbers_and_up_takes_next_numbers() -> None:
    p = load()
    web = [running(p, "web", n) for n in (1, 2, 3, 4)]
    down = plan_up(p, web, UpOptions(services=["web"], scale={"web": 2}))
    assert [str(a) for a in down.actions if a.service == "web"] == [
        "remove demo-web-4",
        "remove demo-web-3",
    ]
    # obsolete containers go first, even with low numbers
    web = [running(p, "web", 1, hash="old"), running(p, "web", 2), running(p, "web", 3)]
    down = plan_up(p, web, UpOptions(services=["web"], scale={"web": 2}))
    assert [str(a) for a in down.actions if a.service == "web"] == ["remove demo-web-1"]
    up = plan_up(
        p,
        [running(p, "web", 1), running(p, "web", 3)],
        UpOptions(services=["web"], scale={"web": 4}),
    )
    assert [str(a) for a in up.actions if a.service == "web"] == ["create web-4", "create web-5"]


def test_selected_services_bring_their_dependencies() -> None:
    p = load()
    plan = plan_up(p, [], UpOptions(services=["web"]))
    assert [sp.service for sp in plan.services] == ["db", "web"]


def test_orphans_are_reported_or_removed() -> None:
    p = load()
    old = Observed("o1", "demo-gone-1", "gone", 1, "h", "running")
    plan = plan_up(p, [*everything(p), old], UpOptions())
    assert (plan.actions, plan.orphans, plan.remove_orphans) == ([], [old], False)
    plan = plan_up(p, [*everything(p), old], UpOptions(remove_orphans=True))
    assert (plan.actions, plan.orphans, plan.remove_orphans) == ([], [old], True)


def test_down_goes_in_reverse_dependency_order() -> None:
    p = load()
    old = Observed("o1", "demo-gone-1", "gone", 1, "h", "running")
    groups, orphans = plan_down(p, [*everything(p), old], remove_orphans=False)
    assert [[c.name for c in g] for g in groups] == [
        ["demo-web-1", "demo-web-2"],
        ["demo-side-1"],
        ["demo-db-1"],
    ]
    assert orphans == [old]
    groups, orphans = plan_down(p, [*everything(p), old], remove_orphans=True)
    assert groups[0] == [old] and orphans == []


def test_observed_from_a_container_summary() -> None:
    c = Observed.from_summary(
        {
            "Id": "abc",
            "Names": ["/demo-web-3"],
            "State": "exited",
            "ImageID": "sha256:1",
            "Labels": {
                "com.docker.compose.service": "web",
                "com.docker.compose.container-number": "3",
                "com.docker.compose.config-hash": "h",
                "com.docker.compose.oneoff": "False",
            },
        }
    )
    assert (c.name, c.service, c.number, c.config_hash, c.running) == (
        "demo-web-3",
        "web",
        3,
        "h",
        False,
    )


def test_create_body_carries_compose_labels_and_settings() -> None:
    p = load(
        "name: demo\nservices:\n  web:\n    image: busybox\n    entrypoint: /bin/sh -c\n"
        "    command: ['echo hi']\n    environment: {A: '1'}\n    ports: ['8080:80']\n"
        "    volumes: [data:/data, /srv:/srv:ro, {type: tmpfs, target: /run, "
        "tmpfs: {size: 1m}}]\n"
        "    restart: on-failure:3\n    mem_limit: 64m\n    cpus: 0.5\n    pids_limit: 50\n"
        "    stop_grace_period: 3s\n    stop_signal: SIGINT\n"
        "    healthcheck: {test: [CMD, 'true'], interval: 2s, retries: 5}\n"
        "    networks: {default: {aliases: [www]}}\n    labels: [tier=front]\n"
        "volumes:\n  data: {}\n"
    )
    name, body = create_body(p, "web", 2)
    assert name == "demo-web-2"
    labels = body["Labels"]
    assert labels["com.docker.compose.project"] == "demo"
    assert labels["com.docker.compose.service"] == "web"
    assert labels["com.docker.compose.container-number"] == "2"
    assert labels["com.docker.compose.config-hash"] == p.hash("web")
    assert labels["com.docker.compose.oneoff"] == "False"
    assert labels["com.docker.compose.project.working_dir"] == "/p"
    assert labels["com.docker.compose.project.config_files"] == "/p/compose.yaml"
    assert labels["tier"] == "front"
    assert body["Entrypoint"] == ["/bin/sh", "-c"] and body["Cmd"] == ["echo hi"]
    assert body["Env"] == ["A=1"]
    assert body["StopTimeout"] == 3 and body["StopSignal"] == "SIGINT"
    assert body["Healthcheck"] == {"Test": ["CMD", "true"], "Interval": 2 * 10**9, "Retries": 5}
    host = body["HostConfig"]
    assert host["PortBindings"] == {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}
    assert host["Mounts"][0] == {
        "Type": "volume",
        "Source": "demo_data",
        "Target": "/data",
        "ReadOnly": False,
    }
    assert host["Binds"] == ["/srv:/srv:ro"]
    assert host["Mounts"][1]["TmpfsOptions"] == {"SizeBytes": 1 << 20}
    assert host["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert (host["Memory"], host["NanoCpus"], host["PidsLimit"]) == (64 << 20, 5 * 10**8, 50)
    assert host["NetworkMode"] == "demo_default"
    assert body["NetworkingConfig"]["EndpointsConfig"] == {
        "demo_default": {"Aliases": ["web", "www"]}
    }
    _, fallback = create_body(p, "web", 1, networks_supported=False)
    assert fallback["HostConfig"]["NetworkMode"] == "default"
    assert fallback["NetworkingConfig"]["EndpointsConfig"] == {}
