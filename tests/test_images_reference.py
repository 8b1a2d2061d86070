"""Reference parsing: the table Docker's distribution/reference tests would accept."""

from __future__ import annotations

import pytest

from supervisor.errors import InvalidArgument
from supervisor.images.reference import is_full_id, looks_like_id_prefix, parse

D = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("text", "repository", "canonical", "tag", "digest", "name"),
    [
        ("busybox", "busybox", "docker.io/library/busybox", None, None, "busybox:latest"),
        (
            "busybox:latest",
            "busybox",
            "docker.io/library/busybox",
            "latest",
            None,
            "busybox:latest",
        ),
        ("library/busybox", "busybox", "docker.io/library/busybox", None, None, "busybox:latest"),
        (
            "docker.io/library/busybox:1",
            "busybox",
            "docker.io/library/busybox",
            "1",
            None,
            "busybox:1",
        ),
        (
            "index.docker.io/library/busybox",
            "busybox",
            "docker.io/library/busybox",
            None,
            None,
            "busybox:latest",
        ),
        ("docker.io/foo/bar", "foo/bar", "docker.io/foo/bar", None, None, "foo/bar:latest"),
        (
            "foo/bar:v1.2-rc_3",
            "foo/bar",
            "docker.io/foo/bar",
            "v1.2-rc_3",
            None,
            "foo/bar:v1.2-rc_3",
        ),
        (
            "localhost:5000/a/b:1",
            "localhost:5000/a/b",
            "localhost:5000/a/b",
            "1",
            None,
            "localhost:5000/a/b:1",
        ),
        ("localhost/a", "localhost/a", "localhost/a", None, None, "localhost/a:latest"),
        ("quay.io/x/y", "quay.io/x/y", "quay.io/x/y", None, None, "quay.io/x/y:latest"),
        (
            "Registry.Example/x",
            "Registry.Example/x",
            "Registry.Example/x",
            None,
            None,
            "Registry.Example/x:latest",
        ),
        (f"busybox@{D}", "busybox", "docker.io/library/busybox", None, D, f"busybox@{D}"),
        (f"busybox:1@{D}", "busybox", "docker.io/library/busybox", "1", D, "busybox:1"),
        (
            "a__b/c-d---e.f",
            "a__b/c-d---e.f",
            "docker.io/a__b/c-d---e.f",
            None,
            None,
            "a__b/c-d---e.f:latest",
        ),
    ],
)
def test_parse_valid(
    text: str, repository: str, canonical: str, tag: str | None, digest: str | None, name: str
) -> None:
    ref = parse(text)
    assert ref.repository == repository
    assert ref.canonical == canonical
    assert ref.tag == tag
    assert ref.digest == digest
    assert ref.name() == name


def test_str_round_trips_familiar_form() -> None:
    assert str(parse("docker.io/library/busybox:1")) == "busybox:1"
    assert str(parse(f"docker.io/foo/bar:t@{D}")) == f"foo/bar:t@{D}"
    assert str(parse("localhost:5000/a/b")) == "localhost:5000/a/b"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "BusyBox",
        "library/BusyBox",
        "foo::bar",
        "foo:",
        ":tag",
        "a b",
        "foo/",
        "/foo",
        "foo//bar",
        "-foo",
        "foo_",
        "foo___bar",
        "foo:" + "t" * 129,
        "foo:-tag",
        "foo@sha256:abc",
        "foo@sha256:" + "a" * 63,
        "foo@md5:" + "a" * 32,
        "a" * 64,
        "x/" + "a" * 260,
    ],
)
def test_parse_invalid_names_the_input(text: str) -> None:
    with pytest.raises(InvalidArgument) as exc:
        parse(text)
    assert exc.value.message.startswith("invalid reference format")
    assert exc.value.status == 400


def test_uppercase_message_names_the_repository() -> None:
    with pytest.raises(
        InvalidArgument, match=r"repository name \(library/BusyBox\) must be lowercase"
    ):
        parse("BusyBox")


def test_tag_length_limit() -> None:
    assert parse("foo:" + "t" * 128).tag == "t" * 128


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("abc", True),
        ("0", True),
        ("sha256:abc123", True),
        ("a" * 64, True),
        ("sha256:" + "a" * 64, True),
        ("a" * 65, False),
        ("busybox", False),
        ("ABC", False),
        ("sha256:", False),
        ("md5:abc", False),
    ],
)
def test_looks_like_id_prefix(text: str, expected: bool) -> None:
    assert looks_like_id_prefix(text) is expected


def test_is_full_id() -> None:
    assert is_full_id("a" * 64)
    assert is_full_id("sha256:" + "a" * 64)
    assert not is_full_id("abc")
