"""`build:` in service files, end to end through `corral compose`: images named as
compose v2 names them, `compose build`, `up --build`/`--no-build`, a missing image
built by `up`, a rebuild that changes the image recreating the service."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from conftest import Daemon

COMPOSE = """\
name: bld
services:
  app:
    build:
      context: ./app
      args: {GREETING: hello}
      labels: {org.example.built-by: compose}
    command: [sh, -c, 'cat /greeting; exec sleep 1000']
    stop_grace_period: 1s
"""

DOCKERFILE = """\
FROM busybox
ARG GREETING=unset
LABEL stage=final
COPY msg /msg
RUN echo "$GREETING $(cat /msg)" > /greeting
"""


def project(tmp: Path, compose: str = COMPOSE, msg: str = "world") -> str:
    (tmp / "app").mkdir(exist_ok=True)
    (tmp / "app" / "Dockerfile").write_text(DOCKERFILE)
    (tmp / "app" / "msg").write_text(msg)
    path = tmp / "compose.yaml"
    path.write_text(compose)
    return str(path)


def cat(dk: Any, name: str) -> str:
    result = dk.containers.get(name).exec_run(["cat", "/greeting"])
    return str(result.output.decode().strip())


def test_compose_build_names_the_image_project_service_with_args_and_labels(
    corral: Daemon, dk: Any, tmp_path: Path
) -> None:
    file = project(tmp_path)
    r = corral.cli("compose", "-f", file, "build")
    assert r.returncode == 0, r.stderr
    assert "Service app  Built" in r.stderr
    image = dk.images.get("bld-app")
    assert "bld-app:latest" in image.tags
    assert image.labels["org.example.built-by"] == "compose"
    assert image.labels["stage"] == "final"
    out = dk.containers.run("bld-app", ["cat", "/greeting"], remove=True)
    assert out.decode().strip() == "hello world"


def test_build_arg_flag_overrides_the_file(corral: Daemon, dk: Any, tmp_path: Path) -> None:
    file = project(tmp_path)
    r = corral.cli("compose", "-f", file, "build", "--build-arg", "GREETING=bonjour", "app")
    assert r.returncode == 0, r.stderr
    out = dk.containers.run("bld-app", ["cat", "/greeting"], remove=True)
    assert out.decode().strip() == "bonjour world"


def test_up_builds_a_missing_image_and_not_an_existing_one(
    corral: Daemon, dk: Any, tmp_path: Path
) -> None:
    file = project(tmp_path)
    r = corral.cli("compose", "-f", file, "up", "-d")
    assert r.returncode == 0, r.stderr
    assert "Service app  Built" in r.stderr
    assert cat(dk, "bld-app-1") == "hello world"
    assert dk.containers.get("bld-app-1").attrs["Config"]["Image"] == "bld-app"
    again = corral.cli("compose", "-f", file, "up", "-d")
    assert again.returncode == 0, again.stderr
    assert "Building" not in again.stderr
    corral.cli("compose", "-f", file, "down", check=True)


def test_up_build_rebuilds_and_a_new_image_recreates(
    corral: Daemon, dk: Any, tmp_path: Path
) -> None:
    file = project(tmp_path)
    corral.cli("compose", "-f", file, "up", "-d", check=True)
    first = dk.containers.get("bld-app-1").id
    project(tmp_path, msg="again")  # the context changed
    same = corral.cli("compose", "-f", file, "up", "-d")  # no --build: the image is kept
    assert same.returncode == 0, same.stderr
    assert dk.containers.get("bld-app-1").id == first
    r = corral.cli("compose", "-f", file, "up", "-d", "--build")
    assert r.returncode == 0, r.stderr
    assert "Recreated" in r.stderr
    assert dk.containers.get("bld-app-1").id != first
    assert cat(dk, "bld-app-1") == "hello again"
    # a rebuild giving the same image (all cached) leaves the container alone
    second = dk.containers.get("bld-app-1").id
    r = corral.cli("compose", "-f", file, "up", "-d", "--build")
    assert r.returncode == 0, r.stderr
    assert dk.containers.get("bld-app-1").id == second
    corral.cli("compose", "-f", file, "down", check=True)


def test_up_no_build_with_a_missing_image_fails_naming_it(
    corral: Daemon, dk: Any, tmp_path: Path
) -> None:
    file = project(tmp_path)
    r = corral.cli("compose", "-f", file, "up", "-d", "--no-build")
    assert r.returncode == 1
    assert "bld-app" in r.stderr and "not built" in r.stderr
    assert dk.containers.list(all=True) == []
    both = corral.cli("compose", "-f", file, "up", "--build", "--no-build")
    assert both.returncode == 1
    assert "incompatible" in both.stderr


def test_image_key_names_the_built_image(corral: Daemon, dk: Any, tmp_path: Path) -> None:
    text = COMPOSE.replace("    build:\n", "    image: example/app:1.0\n    build:\n").replace(
        "      labels: {org.example.built-by: compose}\n",
        "      labels: {org.example.built-by: compose}\n      tags: [example/app:extra]\n",
    )
    file = project(tmp_path, text)
    corral.cli("compose", "-f", file, "up", "-d", check=True)
    tags = dk.images.get("example/app:1.0").tags
    assert sorted(tags) == ["example/app:1.0", "example/app:extra"]
    assert dk.containers.get("bld-app-1").attrs["Config"]["Image"] == "example/app:1.0"
    corral.cli("compose", "-f", file, "down", check=True)


def test_dockerfile_inline_target_and_dockerfile_name(
    corral: Daemon, dk: Any, tmp_path: Path
) -> None:
    text = """\
name: bld
services:
  inline:
    build:
      context: .
      dockerfile_inline: |
        FROM busybox
        RUN echo inline > /greeting
  staged:
    build:
      context: app
      dockerfile: Other.Dockerfile
      target: first
"""
    file = project(tmp_path, text)
    (tmp_path / "app" / "Other.Dockerfile").write_text(
        "FROM busybox AS first\nRUN echo first > /greeting\n"
        "FROM busybox\nRUN echo second > /greeting\n"
    )
    r = corral.cli("compose", "-f", file, "build")
    assert r.returncode == 0, r.stderr
    for image, want in (("bld-inline", "inline"), ("bld-staged", "first")):
        out = dk.containers.run(image, ["cat", "/greeting"], remove=True)
        assert out.decode().strip() == want


def test_a_failing_build_names_the_service_and_the_step(
    corral: Daemon, dk: Any, tmp_path: Path
) -> None:
    file = project(tmp_path)
    (tmp_path / "app" / "Dockerfile").write_text("FROM busybox\nRUN exit 3\n")
    r = corral.cli("compose", "-f", file, "up", "-d")
    assert r.returncode == 1
    assert 'service "app" failed to build' in r.stderr
    assert dk.containers.list(all=True) == []


def test_missing_context_and_refused_build_keys(
    corral: Daemon, dk: Any, tmp_path: Path
) -> None:
    path = tmp_path / "compose.yaml"
    path.write_text("services:\n  app:\n    build: ./nowhere\n")
    r = corral.cli("compose", "-f", str(path), "build")
    assert r.returncode == 1
    assert "nowhere" in r.stderr and "not found" in r.stderr
    path.write_text("services:\n  app:\n    build:\n      context: .\n      ssh: [default]\n")
    r = corral.cli("compose", "-f", str(path), "config", "-q")
    assert r.returncode == 1
    assert "services.app.build.ssh is not supported by corral yet" in r.stderr
    path.write_text(
        "services:\n  app:\n    build:\n      context: .\n      dockerfile: D\n"
        "      dockerfile_inline: FROM busybox\n"
    )
    r = corral.cli("compose", "-f", str(path), "config", "-q")
    assert r.returncode == 1
    assert "mutually exclusive" in r.stderr
    path.write_text("services:\n  app:\n    image: busybox\n    pull_policy: build\n")
    r = corral.cli("compose", "-f", str(path), "config", "-q")
    assert r.returncode == 1
    assert "pull_policy is build but the service has no build section" in r.stderr
    r = corral.cli("compose", "-f", str(path), "build", "--push")
    assert r.returncode == 1
    assert "--push is not supported" in r.stderr


def test_config_shows_the_context_as_an_absolute_path(
    corral: Daemon, tmp_path: Path
) -> None:
    file = project(tmp_path)
    r = corral.cli("compose", "-f", file, "config", "--format", "json")
    assert r.returncode == 0, r.stderr
    import json

    build = json.loads(r.stdout)["services"]["app"]["build"]
    assert build["context"] == str(tmp_path / "app")
    assert build["dockerfile"] == "Dockerfile"
