"""`corral build` client side: progress rendering, context tarring, build args (pure)."""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from supervisor.cli.build import PlainProgress, TtyProgress, build_args, context_tar

STREAM: list[dict[str, object]] = [
    {"stream": "Step 1/3 : FROM busybox\n"},
    {"stream": " ---> abc\n"},
    {"stream": "Step 2/3 : ENV A=1\n"},
    {"stream": " ---> Using cache\n"},
    {"stream": " ---> def\n"},
    {"stream": "Step 3/3 : RUN echo hi\n"},
    {"stream": " ---> Running in 123\n"},
    {"stream": "hi\npart"},
    {"stream": "ial\n"},
    {"stream": " ---> 456\n"},
    {"aux": {"ID": "sha256:456"}},
    {"stream": "Successfully built 456\n"},
]


def lines(msgs: list[dict[str, object]]) -> list[bytes]:
    return [json.dumps(m).encode() + b"\r\n" for m in msgs]


def test_plain_progress_is_the_classic_text() -> None:
    out = io.StringIO()
    assert PlainProgress(out).run(lines(STREAM)) is None
    assert out.getvalue().startswith("Step 1/3 : FROM busybox\n ---> abc\n")
    assert "hi\npartial\n" in out.getvalue()


def test_tty_progress_shows_steps_cache_and_output() -> None:
    out = io.StringIO()
    err = TtyProgress(out).run(lines(STREAM))
    text = out.getvalue()
    assert err is None
    assert "[2/3] ENV A=1\x1b[0m \x1b[34mCACHED" in text
    assert "   | hi\x1b[0m\n" in text and "   | partial\x1b[0m\n" in text
    assert text.rstrip().endswith("Successfully built 456")


def test_progress_returns_the_error() -> None:
    msgs: list[dict[str, object]] = [
        *STREAM[:3],
        {"errorDetail": {"message": "Dockerfile:2: boom"}, "error": "x"},
    ]
    assert PlainProgress(io.StringIO()).run(lines(msgs)) == "x"
    assert TtyProgress(io.StringIO()).run(lines(msgs)) == "x"


def test_build_args_take_the_environment_for_bare_names() -> None:
    assert build_args(["A=1", "B", "C"], {"B": "from-env"}) == {
        "A": "1",
        "B": "from-env",
        "C": None,
    }


def test_context_tar_honours_dockerignore_and_keeps_the_dockerfile(tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    (ctx / "logs").mkdir(parents=True)
    (ctx / "Dockerfile").write_text("FROM x\n")
    (ctx / "app.py").write_text("a")
    (ctx / "logs" / "a.log").write_text("a")
    (ctx / "logs" / "keep.log").write_text("k")
    (ctx / ".dockerignore").write_text("logs\n!logs/keep.log\nDockerfile\n.dockerignore\n")
    os.chown(ctx / "app.py", 1234, 1234)
    buf = io.BytesIO()
    assert context_tar(str(ctx), None, buf) == "Dockerfile"
    buf.seek(0)
    with tarfile.open(fileobj=buf) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert set(members) == {"Dockerfile", ".dockerignore", "app.py", "logs/keep.log"}
    assert members["app.py"].uid == 0 and members["app.py"].gid == 0


def test_dockerfile_outside_the_context_is_sent_under_a_private_name(tmp_path: Path) -> None:
    (tmp_path / "ctx").mkdir()
    df = tmp_path / "Other.dockerfile"
    df.write_text("FROM y\n")
    buf = io.BytesIO()
    name = context_tar(str(tmp_path / "ctx"), str(df), buf)
    assert name.startswith(".dockerfile.")
    buf.seek(0)
    with tarfile.open(fileobj=buf) as tar:
        f = tar.extractfile(name)
        assert f is not None and f.read() == b"FROM y\n"


def test_missing_dockerfile_is_named(tmp_path: Path) -> None:
    from supervisor.cli.context import CliError

    with pytest.raises(CliError, match="Dockerfile"):
        context_tar(str(tmp_path), None, io.BytesIO())
