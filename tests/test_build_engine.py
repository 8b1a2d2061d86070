"""Building images for real: corral build, docker build (classic) and docker-py."""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path
from typing import Any

import pytest
from conftest import Daemon

REPO = Path(__file__).resolve().parent.parent


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return root


def image_ids(dk: Any) -> set[str]:
    return {i.id for i in dk.images.list(all=True)}


def build(corral: Daemon, *args: str) -> Any:
    return corral.cli("build", "--progress=plain", *args, timeout=120)


def test_dockerfile_example_builds_a_working_site(corral: Daemon, dk: Any) -> None:
    r = build(corral, "-t", "example-site", "-f", str(REPO / "Dockerfile.example"),
              str(REPO / "examples" / "site"))  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "Successfully tagged example-site:latest" in r.stdout
    cfg = dk.api.inspect_image("example-site")["Config"]
    assert cfg["ExposedPorts"] == {"3000/tcp": {}}
    assert cfg["Volumes"] == {"/var/www/data": {}}
    assert cfg["Healthcheck"]["Test"][0] == "CMD-SHELL"
    assert cfg["Healthcheck"]["Interval"] == 5_000_000_000
    assert "PORT=3000" in cfg["Env"]
    # httpd without -f forks once it listens, so the page is there for wget at once.
    out = corral.cli("run", "--rm", "example-site", "sh", "-c",
                     "httpd -p 3000 -h /var/www && wget -q -O- http://127.0.0.1:3000/ "
                     "&& wget -q -O- http://127.0.0.1:3000/data/notes.txt")  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "Served by busybox httpd" in out.stdout
    assert "first note" in out.stdout
    history = dk.api.history("example-site")
    # newest first: CMD, STOPSIGNAL, HEALTHCHECK, EXPOSE, VOLUME are config-only
    assert [h["Size"] for h in history[:5]] == [0, 0, 0, 0, 0]
    assert any("COPY index.html" in h["CreatedBy"] for h in history)


def test_unchanged_rebuild_is_all_cache_hits_and_a_change_rebuilds_from_its_copy(
    corral: Daemon, dk: Any, tmp_path: Path
) -> None:
    ctx = write(tmp_path, {
        "Dockerfile": "FROM busybox\nENV A=1\nCOPY one.txt /one.txt\nRUN echo ran-one\n"
                      "COPY two.txt /two.txt\nRUN cat /one.txt /two.txt\n",
        "one.txt": "1\n",
        "two.txt": "2\n",
    })  # fmt: skip
    first = build(corral, "-t", "cached:1", str(ctx))
    assert first.returncode == 0, first.stderr
    assert "Using cache" not in first.stdout
    id1 = dk.images.get("cached:1").id
    os.utime(ctx / "one.txt", (1, 1))  # mtimes do not matter, contents do
    again = build(corral, "-t", "cached:1", str(ctx))
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("Using cache") == 5  # every step after FROM
    assert "\nran-one\n" not in again.stdout  # the RUN did not run again
    assert dk.images.get("cached:1").id == id1
    (ctx / "two.txt").write_text("changed\n")
    third = build(corral, "-t", "cached:2", str(ctx))
    assert third.returncode == 0, third.stderr
    steps = third.stdout.split("Step ")[1:]
    cached = ["Using cache" in s for s in steps]
    assert cached == [False, True, True, True, False, False]
    assert "1\nchanged" in third.stdout
    nocache = build(corral, "--no-cache", "-t", "cached:3", str(ctx))
    assert "Using cache" not in nocache.stdout and "\nran-one\n" in nocache.stdout


def test_docker_cli_classic_build(corral: Daemon, tmp_path: Path) -> None:
    ctx = write(tmp_path, {
        "Dockerfile": "FROM busybox\nARG WHO=world\nRUN echo \"hello $WHO\" > /greeting\n"
                      "CMD [\"cat\", \"/greeting\"]\n",
    })  # fmt: skip
    env_build = corral.env(DOCKER_BUILDKIT="0")
    import subprocess

    r = subprocess.run(
        ["docker", "build", "-t", "classic:1", "--build-arg", "WHO=docker", str(ctx)],
        env=env_build, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    if r.returncode != 0 and "not found" in r.stderr and "docker" in r.stderr:
        pytest.skip("docker CLI not installed")
    assert r.returncode == 0, r.stderr
    assert "Successfully built" in r.stdout and "Successfully tagged classic:1" in r.stdout
    out = corral.docker("run", "--rm", "classic:1")
    assert out.stdout == "hello docker\n"


def test_docker_py_build_and_failures(dk: Any, tmp_path: Path) -> None:
    import docker  # type: ignore[import-untyped]

    ctx = write(tmp_path, {"Dockerfile": "FROM busybox\nLABEL a=b\nARG X\nRUN echo py-$X\n",
                           "f.txt": "x"})  # fmt: skip
    image, logs = dk.images.build(path=str(ctx), tag="py:1", buildargs={"X": "y", "Z": "1"})
    assert image.tags == ["py:1"]
    assert image.labels == {"a": "b"}
    text = "".join(m.get("stream", "") for m in logs)
    assert "py-y" in text
    assert "[Warning] One or more build-args [Z] were not consumed" in text  # as Docker
    before = image_ids(dk)
    bad = io.BytesIO(b"FROM busybox\nRUN echo last-words; exit 3\nRUN echo never\n")
    with pytest.raises(docker.errors.BuildError) as exc:
        dk.images.build(fileobj=bad, tag="bad:1")
    assert "Dockerfile:2:" in exc.value.msg
    assert "returned a non-zero code: 3" in exc.value.msg
    shown = "".join(m.get("stream", "") for m in exc.value.build_log)
    assert "last-words" in shown and "never" not in shown
    assert image_ids(dk) == before  # no partial image, no tag
    assert dk.containers.list(all=True) == []  # the build container is gone


def test_multi_stage_target_and_copy_from(corral: Daemon, dk: Any, tmp_path: Path) -> None:
    ctx = write(tmp_path, {
        "Dockerfile": (
            "ARG BASE=busybox\n"
            "FROM $BASE AS builder\nRUN mkdir /out && echo artifact > /out/app.txt\n"
            "FROM builder AS test\nRUN echo testing > /out/tested\n"
            "FROM busybox\nCOPY --from=builder /out/app.txt /app/\n"
            "COPY --from=0 /out /copied\nCMD [\"cat\", \"/app/app.txt\"]\n"
        ),
    })  # fmt: skip
    r = build(corral, "-t", "multi:1", str(ctx))
    assert r.returncode == 0, r.stderr
    assert "testing" not in r.stdout  # the unused stage is not built
    out = corral.cli("run", "--rm", "multi:1", "sh", "-c", "cat /app/app.txt; ls /copied")
    assert out.stdout == "artifact\napp.txt\n"
    t = build(corral, "--target", "test", "-t", "multi:test", str(ctx))
    assert t.returncode == 0, t.stderr
    out = corral.cli("run", "--rm", "multi:test", "cat", "/out/tested")
    assert out.stdout == "testing\n"
    missing = build(corral, "--target", "nope", str(ctx))
    assert missing.returncode != 0
    assert "failed to reach build target nope" in missing.stderr


def test_copy_add_rules(corral: Daemon, tmp_path: Path) -> None:
    arch = tmp_path / "ctx" / "bundle.tar.gz"
    arch.parent.mkdir()
    with tarfile.open(arch, "w:gz") as tar:
        data = b"from-tar\n"
        info = tarfile.TarInfo("pkg/inside.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    ctx = write(tmp_path / "ctx", {
        "Dockerfile": (
            "FROM busybox\nWORKDIR /w\n"
            "COPY --chown=nobody:nogroup --chmod=0640 conf/*.conf ./conf/\n"
            "COPY conf /whole\nADD bundle.tar.gz /opt/\nCOPY . /all/\n"
            "COPY <<EOF /etc/generated\nhome=$HOME w=${W:-unset}\nEOF\n"
            "ONBUILD RUN echo triggered-onbuild\n"
        ),
        "conf/a.conf": "a", "conf/b.conf": "b", "conf/skip.txt": "s",
        "logs/x.log": "x", "logs/keep.log": "k",
        ".dockerignore": "logs\n!logs/keep.log\n",
    })  # fmt: skip
    r = build(corral, "-t", "rules:1", str(ctx))
    assert r.returncode == 0, r.stderr
    out = corral.cli("run", "--rm", "rules:1", "sh", "-c",
                     "stat -c '%U:%G %a %n' conf/*; ls /whole; cat /opt/pkg/inside.txt; "
                     "ls /all /all/logs; cat /etc/generated")  # fmt: skip
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[:2] == ["nobody:nogroup 640 conf/a.conf", "nobody:nogroup 640 conf/b.conf"]
    assert "skip.txt" in lines  # in /whole
    assert "from-tar" in lines
    assert "keep.log" in lines and "x.log" not in lines  # .dockerignore with an exclusion
    assert "home= w=unset" in lines  # unquoted heredoc: expanded by the builder
    child = write(tmp_path / "child", {"Dockerfile": "FROM rules:1\nRUN echo child\n"})
    c = build(corral, "-t", "rules:child", str(child))
    assert c.returncode == 0, c.stderr
    assert "triggered-onbuild" in c.stdout


@pytest.mark.parametrize(
    ("dockerfile", "extra", "message"),
    [
        ("FROM busybox\nFROBNICATE x\n", {}, "Dockerfile:2: unknown instruction: FROBNICATE"),
        ("FROM busybox\nCOPY missing.txt /\n", {}, "Dockerfile:2: file not found in build context"),
        ("FROM busybox\nCOPY ../x /\n", {},
         "Dockerfile:2: forbidden path outside the build context: ../x"),
        ("FROM busybox\nCOPY link /\n", {"symlink": "/etc/passwd"},
         "Dockerfile:2: forbidden path outside the build context: link"),
        ("FROM busybox\nRUN true\nCOPY --from=ghost /a /b\n", {},
         "Dockerfile:3: COPY --from=ghost"),
        # not here, and its registry (on loopback, nothing listens on port 1) is down
        ("FROM 127.0.0.1:1/nosuchimage:1\n", {},
         "Dockerfile:1: FROM 127.0.0.1:1/nosuchimage:1: Get \"http://127.0.0.1:1/v2/\": "
         "dial tcp 127.0.0.1:1: connect: connection refused"),
        ("FROM busybox\nADD http://example.com/x.tgz /x\n", {}, "Dockerfile:2: ADD http://"),
        ("FROM busybox\nENV a=1\nRUN echo out-line; exit 7\n", {},
         "Dockerfile:3: The command '/bin/sh -c echo out-line; exit 7' "
         "returned a non-zero code: 7"),
        ("FROM busybox\nWORKDIR ${NEEDED:?must be given}\n", {}, "Dockerfile:2: failed to process"),
    ],
)  # fmt: skip
def test_bad_input_names_line_and_leaves_nothing(
    corral: Daemon, dk: Any, tmp_path: Path, dockerfile: str, extra: dict[str, str], message: str
) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(dockerfile)
    if "symlink" in extra:
        os.symlink(extra["symlink"], ctx / "link")
    before = image_ids(dk)
    r = build(corral, "-t", "broken:1", str(ctx))
    assert r.returncode != 0
    assert message in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1  # one clear line
    assert image_ids(dk) == before
    assert dk.containers.list(all=True) == []
    assert not any(p.name != "." for p in (corral.root / "tmp" / "build").iterdir())


def test_print_shows_how_the_dockerfile_is_read(corral: Daemon, tmp_path: Path) -> None:
    ctx = write(tmp_path, {"Dockerfile": "ARG V=1\nFROM busybox\nARG V\nCOPY --chown=1 a /b/$V\n"
                                         "RUN echo $V \\\n  && true\n"})  # fmt: skip
    r = corral.cli("build", "--print", "--build-arg", "V=2", str(ctx))
    assert r.returncode == 0, r.stderr
    objs = [json.loads(line) for line in r.stdout.splitlines()]
    assert [o["instruction"] for o in objs] == ["ARG", "FROM", "ARG", "COPY", "RUN"]
    assert objs[3]["args"] == ["a", "/b/2"] and objs[3]["flags"] == {"chown": "1"}
    assert objs[4]["args"] == ["echo $V   && true"] and objs[4]["lines"] == [5, 6]
    bad = corral.cli("build", "--print", "-f", str(ctx / "nope"), str(ctx))
    assert bad.returncode != 0


def test_context_from_stdin(corral: Daemon, dk: Any) -> None:
    r = corral.cli("build", "-t", "stdin:1", "-", input=b"FROM busybox\nLABEL from=stdin\n")
    assert r.returncode == 0, r.stderr
    assert dk.images.get("stdin:1").labels == {"from": "stdin"}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in (("Dockerfile", b"FROM busybox\nCOPY f /f\n"), ("f", b"tarred\n")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    r = corral.cli("build", "-q", "-t", "stdin:2", "-", input=buf.getvalue())
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == dk.images.get("stdin:2").id
    assert corral.cli("run", "--rm", "stdin:2", "cat", "/f").stdout == "tarred\n"
