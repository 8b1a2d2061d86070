"""Build context rules: .dockerignore matching (moby patternmatcher), sources, checksums."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from supervisor.build.cache import cache_key
from supervisor.build.context import BuildContext, IgnoreMatcher
from supervisor.errors import InvalidArgument


@pytest.mark.parametrize(
    ("patterns", "path", "ignored"),
    [
        (["*.md"], "README.md", True),
        (["*.md"], "docs/README.md", False),  # * stays in one component
        (["**/*.md"], "docs/deep/README.md", True),
        (["**/*.md"], "README.md", True),
        (["docs"], "docs/a/b.txt", True),  # a matching parent excludes its content
        (["/docs/"], "docs/x", True),  # cleaned: leading and trailing / do not matter
        (["temp?"], "temp1", True),
        (["temp?"], "temp12", False),
        (["*.log", "!keep.log"], "keep.log", False),
        (["*.log", "!keep.log"], "other.log", True),
        (["!keep.log", "*.log"], "keep.log", True),  # the last matching pattern decides
        (["docs", "!docs/important.txt"], "docs/important.txt", False),
        (["docs", "!docs/important.txt"], "docs/other.txt", True),
        (["# comment", "", "  spaced.txt  "], "spaced.txt", True),
        (["a/**"], "a/b/c", True),
        (["a/**/z"], "a/z", True),
        (["a/**/z"], "a/b/c/z", True),
        (["[ab].txt"], "b.txt", True),
        (["[ab].txt"], "c.txt", False),
        (["x\\*y"], "x*y", True),
        (["x\\*y"], "xay", False),
        (["dir.d"], "dirxd", False),  # a dot is literal
    ],
)
def test_dockerignore_matching(patterns: list[str], path: str, ignored: bool) -> None:
    assert IgnoreMatcher(patterns).matches(path) is ignored


def test_bare_exclamation_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="illegal exclusion"):
        IgnoreMatcher(["!"])


@pytest.fixture
def ctx(tmp_path: Path) -> BuildContext:
    root = tmp_path / "ctx"
    (root / "src" / "deep").mkdir(parents=True)
    (root / "src" / "a.py").write_text("a")
    (root / "src" / "b.py").write_text("b")
    (root / "src" / "deep" / "c.py").write_text("c")
    (root / "secret.env").write_text("x")
    (root / "notes.md").write_text("n")
    (tmp_path / "outside.txt").write_text("o")
    os.symlink("../outside.txt", root / "escape")
    os.symlink("/etc", root / "abs")
    os.symlink("src", root / "inner")
    (root / ".dockerignore").write_text("*.env\n")
    return BuildContext.open(root)


def test_sources(ctx: BuildContext) -> None:
    assert ctx.sources("src") == ["src"]
    assert ctx.sources("./src/../notes.md") == ["notes.md"]
    assert ctx.sources("src/*.py") == ["src/a.py", "src/b.py"]
    assert ctx.sources("*.md") == ["notes.md"]
    assert ctx.sources("inner/a.py") == ["inner/a.py"]  # a symlink inside the context is fine


@pytest.mark.parametrize(
    ("src", "msg"),
    [
        ("../x", "outside the build context: ../x"),
        ("src/../../x", "outside the build context"),
        ("escape", "outside the build context: escape (symlink escape -> ../outside.txt)"),
        ("missing.txt", "file not found in build context"),
        ("secret.env", "excluded by .dockerignore"),
        ("*.nothing", "no source files"),
    ],
)
def test_bad_sources_are_named(ctx: BuildContext, src: str, msg: str) -> None:
    with pytest.raises(InvalidArgument) as exc:
        ctx.sources(src)
    assert msg in exc.value.message


def test_absolute_symlink_is_refused(ctx: BuildContext) -> None:
    # Docker would look /etc up inside the context and say "not found"; an absolute
    # link names a host path to whoever made it, so corral says what is wrong instead.
    with pytest.raises(InvalidArgument, match="outside the build context: abs/passwd"):
        ctx.sources("abs/passwd")


def test_walk_skips_ignored(ctx: BuildContext) -> None:
    names = [r for r, _ in ctx.walk(".")]
    assert "secret.env" not in names
    assert "src/deep/c.py" in names


def test_checksum_is_content_not_mtime(ctx: BuildContext) -> None:
    before = ctx.checksum(["src"])
    os.utime(ctx.root / "src" / "a.py", (1, 1))
    assert ctx.checksum(["src"]) == before
    (ctx.root / "src" / "a.py").write_text("changed")
    assert ctx.checksum(["src"]) != before
    os.chmod(ctx.root / "src" / "b.py", 0o600)
    assert ctx.checksum(["src/b.py"]) != ctx.checksum(["src/a.py"])


def test_cache_key_depends_on_parent_and_step() -> None:
    a = cache_key("sha256:1", {"cmd": "RUN", "argv": ["x"]})
    assert a == cache_key("sha256:1", {"argv": ["x"], "cmd": "RUN"})
    assert a != cache_key("sha256:2", {"cmd": "RUN", "argv": ["x"]})
    assert a != cache_key("sha256:1", {"cmd": "RUN", "argv": ["y"]})
    assert cache_key(None, {}) != cache_key("sha256:1", {})
