"""The service-file pipeline without containers: load, interpolate, validate, merge, normalize."""

from __future__ import annotations

import pytest

from config.dotenv import dotenv_mapping
from config.errors import ConfigError
from config.interpolate import InterpolationError, substitute
from config.model import Project, service_hash
from config.project import load_project
from config.yamlload import load_yaml


def project(
    files: dict[str, str], *names: str, env: dict[str, str] | None = None, **kw: object
) -> Project:
    """Load from an in-memory tree rooted at /p."""

    def read(path: str) -> str:
        if path not in files:
            raise FileNotFoundError(2, "no such file or directory", path)
        return files[path]

    chosen = list(names) or ["/p/compose.yaml"]
    return load_project(chosen, environ=env or {}, cwd="/p", read_file=read, **kw)  # type: ignore[arg-type]


def errors_of(files: dict[str, str], *names: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        project(files, *names, env=env)
    return [str(p) for p in info.value.problems]


# -- YAML ------------------------------------------------------------------------------


def test_positions_of_keys_and_values_are_one_based() -> None:
    doc, pos = load_yaml("services:\n  web:\n    image: busybox\n", "c.yaml")
    assert doc == {"services": {"web": {"image": "busybox"}}}
    assert str(pos.get(("services", "web", "image"))) == "c.yaml:3:12"
    assert str(pos.key(("services", "web", "image"))) == "c.yaml:3:5"


def test_anchors_and_merge_keys() -> None:
    text = (
        "x-base: &base\n  image: busybox\n  environment: {A: '1'}\n"
        "services:\n  a:\n    <<: *base\n    command: [echo, a]\n  b:\n    <<: *base\n"
        "    environment: {B: '2'}\n"
    )
    p = project({"/p/compose.yaml": text})
    assert p.services["a"]["image"] == "busybox"
    assert p.services["a"]["environment"] == {"A": "1"}
    assert p.services["b"]["environment"] == {"B": "2"}  # a merge key is shallow, as YAML's


def test_yaml_12_booleans_yes_stays_a_string() -> None:
    p = project(
        {
            "/p/compose.yaml": "services:\n  a:\n    image: x\n    environment:\n"
            "      DEBUG: yes\n      ON: true\n"
        }
    )
    assert p.services["a"]["environment"] == {"DEBUG": "yes", "ON": "true"}


def test_bad_yaml_and_duplicate_keys_name_file_line_col() -> None:
    assert errors_of({"/p/compose.yaml": "services:\n  a: [\n"})[0].startswith("compose.yaml:3:")
    errs = errors_of({"/p/compose.yaml": "services:\n  a:\n    image: x\n    image: y\n"})
    assert errs == ["compose.yaml:4:5: duplicate key 'image' (first defined at line 3)"]


# -- interpolation ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("${A}", "a"),
        ("$A-x", "a-x"),
        ("${UNSET}", ""),
        ("${UNSET:-def}", "def"),
        ("${EMPTY:-def}", "def"),
        ("${EMPTY-def}", ""),
        ("${UNSET-def}", "def"),
        ("${A:+alt}", "alt"),
        ("${EMPTY:+alt}", ""),
        ("${EMPTY+alt}", "alt"),
        ("${UNSET:-${A}b}", "ab"),
        ("$$A costs $${A}", "$A costs ${A}"),
        ("50$", "50$"),
    ],
)
def test_substitute(text: str, expected: str) -> None:
    assert substitute(text, {"A": "a", "EMPTY": ""}) == expected


def test_required_variable_error() -> None:
    with pytest.raises(
        InterpolationError, match="required variable DB is missing a value: set DB please"
    ):
        substitute("${DB:?set DB please}", {})
    with pytest.raises(InterpolationError, match="invalid interpolation format"):
        substitute("${A", {})


def test_interpolation_errors_point_at_the_value() -> None:
    errs = errors_of({"/p/compose.yaml": "services:\n  a:\n    image: ${IMG:?no image}\n"})
    assert errs == ["compose.yaml:3:12: required variable IMG is missing a value: no image"]


def test_dotenv_file_and_environment_precedence() -> None:
    files = {
        "/p/compose.yaml": "services:\n  a:\n    image: ${IMG}\n    environment: ['TAG=${TAG}']\n",
        "/p/.env": "# comment\nexport IMG=busybox\nTAG='v1'\n",
    }
    p = project(files)
    assert p.services["a"]["image"] == "busybox"
    assert project(files, env={"TAG": "v2"}).services["a"]["environment"] == {"TAG": "v2"}


def test_dotenv_syntax() -> None:
    text = "A=1\nB=\"x\\ny\"\nC='$lit'\nD=v # comment\n E = spaced \nF\n"
    assert dotenv_mapping(text, {"F": "from-env"}) == {
        "A": "1",
        "B": "x\ny",
        "C": "$lit",
        "D": "v",
        "E": "spaced",
        "F": "from-env",
    }


# -- validation ------------------------------------------------------------------------


def test_unknown_key_is_an_error_with_a_suggestion() -> None:
    errs = errors_of({"/p/compose.yaml": "services:\n  web:\n    imgae: busybox\n"})
    assert errs == ["compose.yaml:3:5: services.web: unknown key 'imgae' (did you mean 'image'?)"]


def test_wrong_types_are_errors() -> None:
    errs = errors_of({"/p/compose.yaml": "services:\n  web:\n    image: [a]\n    ports: 80\n"})
    assert errs == [
        "compose.yaml:3:12: services.web.image must be a string",
        "compose.yaml:4:12: services.web.ports must be a list",
    ]


def test_every_file_is_checked_and_all_problems_reported() -> None:
    files = {
        "/p/a.yaml": "services:\n  web:\n    imag: x\n",
        "/p/b.yaml": "services:\n  web:\n    ports: ['80:80:80:80']\n",
    }
    errs = errors_of(files, "/p/a.yaml", "/p/b.yaml")
    assert len(errs) == 2
    assert errs[0].startswith("a.yaml:3:5:")
    assert errs[1].startswith("b.yaml:3:13: invalid port '80:80:80:80'")


def test_missing_env_file_names_its_line() -> None:
    errs = errors_of({"/p/compose.yaml": "services:\n  a:\n    image: x\n    env_file: app.env\n"})
    assert errs[0].startswith("compose.yaml:4:15: env file /p/app.env not found")


def test_env_file_then_environment_wins() -> None:
    files = {
        "/p/compose.yaml": "services:\n  a:\n    image: x\n    env_file: [app.env]\n"
        "    environment: {B: over}\n",
        "/p/app.env": "A=1\nB=2\n",
    }
    assert project(files).services["a"]["environment"] == {"A": "1", "B": "over"}


def test_semantic_errors() -> None:
    errs = errors_of(
        {
            "/p/compose.yaml": (
                "services:\n"
                "  a:\n    image: x\n    depends_on: [nope]\n    restart: sometimes\n"
                "  b:\n    command: echo\n"
                "  c:\n    image: x\n    scale: 2\n    container_name: fixed\n"
                "  d:\n    image: x\n    volumes: [data:/data]\n"
                "    healthcheck: {interval: 5 sec}\n"
            )
        }
    )
    assert errs == [
        'compose.yaml:4:17: service "a" depends on undefined service "nope"',
        "compose.yaml:5:14: services.a.restart: invalid restart policy 'sometimes' "
        "(no, always, on-failure[:N], unless-stopped)",
        'compose.yaml:6:3: service "b" has neither an image nor a build context specified',
        'compose.yaml:11:21: services.c: container_name "fixed" is unique: the service '
        "cannot scale to 2",
        'compose.yaml:14:15: service "d" refers to undefined volume data: invalid compose project',
        "compose.yaml:15:29: services.d.healthcheck.interval: invalid duration '5 sec' "
        "(e.g. 10s, 1m30s, 500ms)",
    ]


def test_dependency_cycle_is_refused_naming_it() -> None:
    errs = errors_of(
        {
            "/p/compose.yaml": (
                "services:\n  a:\n    image: x\n    depends_on: [b]\n"
                "  b:\n    image: x\n    depends_on: [c]\n  c:\n    image: x\n    depends_on: [a]\n"
            )
        }
    )
    assert errs == ["compose.yaml:4:17: dependency cycle detected: a -> b -> c -> a"]


# -- merge -----------------------------------------------------------------------------


def test_override_files_merge_by_compose_rules() -> None:
    base = (
        "services:\n  web:\n    image: busybox\n    command: [httpd, -f]\n"
        "    environment: [A=1, B=2]\n    ports: ['8080:80']\n    cap_add: [NET_ADMIN]\n"
        "    volumes: ['data:/data', '/srv:/srv']\n    labels: {x: '1'}\n"
        "volumes:\n  data: {}\n"
    )
    over = (
        "services:\n  web:\n    command: [sleep, '1']\n    environment: {B: two, C: '3'}\n"
        "    ports: ['9090:90']\n    cap_add: [NET_ADMIN, SYS_TIME]\n"
        "    volumes: ['/other:/srv:ro']\n"
    )
    p = project({"/p/compose.yaml": base, "/p/over.yaml": over}, "/p/compose.yaml", "/p/over.yaml")
    web = p.services["web"]
    assert web["command"] == ["sleep", "1"]
    assert web["environment"] == {"A": "1", "B": "two", "C": "3"}
    assert [x["target"] for x in web["ports"]] == [80, 90]
    assert web["cap_add"] == ["NET_ADMIN", "SYS_TIME"]
    assert web["volumes"] == [
        {"type": "volume", "source": "data", "target": "/data"},
        {
            "type": "bind",
            "source": "/other",
            "target": "/srv",
            "read_only": True,
            "bind": {"create_host_path": True},
        },
    ]
    assert web["labels"] == {"x": "1"}


def test_default_override_file_is_merged() -> None:
    files = {
        "/p/compose.yaml": "services:\n  a:\n    image: x\n",
        "/p/compose.override.yaml": "services:\n  a:\n    image: y\n",
    }

    def read(path: str) -> str:
        if path not in files:
            raise FileNotFoundError(2, "no such file", path)
        return files[path]

    import os

    real_isfile = os.path.isfile
    try:
        os.path.isfile = lambda path: path in files
        p = load_project([], environ={}, cwd="/p", read_file=read)
    finally:
        os.path.isfile = real_isfile
    assert p.services["a"]["image"] == "y"
    assert p.config_files == ["/p/compose.yaml", "/p/compose.override.yaml"]


# -- normalize -------------------------------------------------------------------------


def test_normalized_model() -> None:
    p = project(
        {
            "/p/compose.yaml": (
                "name: demo\nservices:\n  web:\n    image: busybox\n"
                "    command: httpd -f -p '8080'\n"
                "    ports: ['127.0.0.1:8080:80/tcp', '9000-9001:9000-9001']\n"
                "    volumes: [data:/data, ./site:/site:ro, /tmp]\n    deploy: {replicas: 3}\n"
                "    depends_on:\n      db: {condition: service_healthy, restart: true}\n"
                "    healthcheck: {test: wget -q localhost, interval: 1m30s}\n"
                "  db:\n    image: busybox\n    profiles: [never]\n"
                "  cache:\n    image: busybox\n    network_mode: host\n"
                "volumes:\n  data:\n"
            )
        },
        profiles=["never"],
    )
    assert p.name == "demo"
    web = p.services["web"]
    assert web["command"] == ["httpd", "-f", "-p", "8080"]
    assert web["ports"] == [
        {
            "mode": "ingress",
            "target": 80,
            "protocol": "tcp",
            "host_ip": "127.0.0.1",
            "published": "8080",
        },
        {"mode": "ingress", "target": 9000, "protocol": "tcp", "published": "9000"},
        {"mode": "ingress", "target": 9001, "protocol": "tcp", "published": "9001"},
    ]
    assert web["volumes"][1]["source"] == "/p/site"
    assert web["volumes"][2] == {"type": "volume", "target": "/tmp"}
    assert web["scale"] == 3
    assert web["networks"] == {"default": None}
    assert web["depends_on"] == {
        "db": {"condition": "service_healthy", "required": True, "restart": True}
    }
    assert web["healthcheck"]["test"] == ["CMD-SHELL", "wget -q localhost"]
    assert "networks" not in p.services["cache"]
    assert p.model["networks"] == {"default": {"name": "demo_default"}}
    assert p.model["volumes"] == {"data": {"name": "demo_data"}}
    assert p.order() == ["cache", "db", "web"]


def test_profiles_hide_services_unless_active() -> None:
    files = {
        "/p/compose.yaml": "services:\n  a:\n    image: x\n  dbg:\n    image: x\n"
        "    profiles: [debug]\n"
    }
    assert list(project(files).services) == ["a"]
    assert list(project(files, env={"COMPOSE_PROFILES": "debug"}).services) == ["a", "dbg"]


def test_project_name_from_flag_then_env_then_file_then_directory() -> None:
    files = {"/p/compose.yaml": "name: fromfile\nservices:\n  a:\n    image: x\n"}
    assert project(files).name == "fromfile"
    assert project(files, env={"COMPOSE_PROJECT_NAME": "fromenv"}).name == "fromenv"
    assert project(files, project_name="flag").name == "flag"
    assert project({"/p/compose.yaml": "services:\n  a:\n    image: x\n"}).name == "p"
    errs = errors_of({"/p/compose.yaml": "name: Bad Name\nservices: {}\n"})
    assert errs[0].startswith("compose.yaml:1:7: invalid project name 'Bad Name'")


def test_scale_and_replicas_must_agree() -> None:
    errs = errors_of(
        {
            "/p/compose.yaml": "services:\n  a:\n    image: x\n    scale: 2\n"
            "    deploy: {replicas: 3}\n"
        }
    )
    assert errs == [
        'compose.yaml:4:12: services.a: can\'t set distinct values on "scale" (2) '
        'and "deploy.replicas" (3)'
    ]


# -- hash ------------------------------------------------------------------------------


def test_hash_is_stable_and_ignores_scale_order_and_dependencies() -> None:
    a = project(
        {
            "/p/compose.yaml": "services:\n  s:\n    image: x\n    environment: {A: '1', "
            "B: '2'}\n    scale: 1\n"
        }
    )
    b = project(
        {
            "/p/compose.yaml": "services:\n  s:\n    scale: 4\n    environment: [B=2, A=1]\n"
            "    image: x\n    depends_on: [t]\n  t:\n    image: x\n"
        }
    )
    assert a.hash("s") == b.hash("s")
    assert len(a.hash("s")) == 64
    c = project(
        {"/p/compose.yaml": "services:\n  s:\n    image: x\n    environment: {A: '2', B: '2'}\n"}
    )
    assert c.hash("s") != a.hash("s")
    assert service_hash({"image": "x"}) == service_hash({"image": "x", "scale": 9})


def test_devices_and_device_cgroup_rules_are_applied() -> None:
    from config.container import create_body

    p = project({"/p/compose.yaml": (
        "services:\n  a:\n    image: busybox\n"
        "    devices: [/dev/fuse, '/dev/null:/dev/n', '/dev/zero:r', '/dev/a:/dev/b:rw',\n"
        "              {source: /dev/c, permissions: m}]\n"
        "    device_cgroup_rules: ['c 1:3 rwm']\n")})
    host = create_body(p, "a", 1)[1]["HostConfig"]
    assert host["Devices"] == [
        {"PathOnHost": "/dev/fuse", "PathInContainer": "/dev/fuse", "CgroupPermissions": "rwm"},
        {"PathOnHost": "/dev/null", "PathInContainer": "/dev/n", "CgroupPermissions": "rwm"},
        {"PathOnHost": "/dev/zero", "PathInContainer": "/dev/zero", "CgroupPermissions": "r"},
        {"PathOnHost": "/dev/a", "PathInContainer": "/dev/b", "CgroupPermissions": "rw"},
        {"PathOnHost": "/dev/c", "PathInContainer": "/dev/c", "CgroupPermissions": "m"},
    ]
    assert host["DeviceCgroupRules"] == ["c 1:3 rwm"]
    errs = errors_of({"/p/compose.yaml": (
        "services:\n  a:\n    image: busybox\n"
        "    devices: ['/dev/a:b', '/dev/a:/b:rwx', 'a:b:c:d']\n")})
    assert errs == [
        "compose.yaml:4:15: invalid device '/dev/a:b': b is not an absolute path",
        "compose.yaml:4:27: invalid device '/dev/a:/b:rwx': bad mode 'rwx' (a combination of "
        "r, w and m)",
        "compose.yaml:4:44: invalid device 'a:b:c:d': want HOST[:CONTAINER[:PERMISSIONS]]",
    ]
    errs = errors_of({"/p/compose.yaml": (
        "services:\n  a:\n    image: busybox\n    device_cgroup_rules: ['c 1:3']\n")})
    assert errs == ["compose.yaml:4:27: services.a.device_cgroup_rules: invalid device cgroup "
                    "format 'c 1:3' (TYPE MAJOR:MINOR ACCESS, e.g. 'c 1:3 rwm')"]
    errs = errors_of({"/p/compose.yaml": (
        "services:\n  a:\n    image: busybox\n    devices: [{target: /x}, 3]\n")})
    assert errs == ["compose.yaml:4:15: services.a.devices[0] must have 'source'",
                    "compose.yaml:4:29: services.a.devices[1] must be a device string or a "
                    "mapping"]


def test_userns_mode_host_is_applied_and_the_rest_refused() -> None:
    from config.container import create_body

    p = project({"/p/compose.yaml": "services:\n  a:\n    image: b\n    userns_mode: host\n"})
    assert create_body(p, "a", 1)[1]["HostConfig"]["UsernsMode"] == "host"
    errs = errors_of({"/p/compose.yaml": "services:\n  a:\n    image: b\n    userns_mode: x\n"})
    assert errs == ["compose.yaml:4:18: services.a.userns_mode: 'x' is not supported by corral: "
                    "containers share the host's user namespace ('host')"]
