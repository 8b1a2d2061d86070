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


# Docker's grammar as distribution/reference's regexp.go writes it (Go's \w is ASCII):
# the oracle for `match`, which parses by hand so the CLI need not import `re`.
_ALNUM = r"[a-z0-9]+"
_SEP = r"(?:[._]|__|[-]+)"
_PATH = rf"{_ALNUM}(?:{_SEP}{_ALNUM})*"
_DCOMP = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DCOMP}(?:\.{_DCOMP})*|\[(?:[a-fA-F0-9:]+)\])(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_REFERENCE = rf"((?:{_DOMAIN}/)?{_PATH}(?:/{_PATH})*)(?::({_TAG}))?(?:@({_DIGEST}))?"


def _corpus() -> list[str]:
    import random

    rng = random.Random(13)
    pieces = ["a", "b0", "Z", "9", "-", "--", "_", "__", "___", ".", ":", "/", "@", "[", "]",
              "::1", "5000", "localhost", "docker.io", "sha256", "+", "é", "x" * 130,
              "f" * 32, "A" * 31, "a-", "-a", "ab.cd", "[fe80::1]"]
    out = ["", "a", "a/b", "a/b:c", "a/b:c:d", "a:5000/b", "[::1]:5000/a", "[::1]/a",
           "[]/a", "[::1]:/a", "a:/b", "a.-b/c", "a-b.c/d", "a/b@sha256:" + "f" * 64,
           "a/b:t@x+y.z_w-v:" + "A" * 32, "a/b@1a:" + "f" * 32, "a/b:é", "a/b:_t",
           "a/b:t" + "x" * 127, "a/b:t" + "x" * 128, "localhost:5000"]
    for _ in range(10000):
        out.append("".join(rng.choice(pieces) for _ in range(rng.randint(1, 7))))
    domains = ["localhost", "a.b", "[::1]", "Reg.io", "x-y.z", "a-", "1.2.3.4", ""]
    paths = ["a", "a_b", "a__b", "a-b", "a---b", "a.b", "a..b", "a_", "A", "0", "é"]
    tags = ["", "t", "1.0", "_x", ".x", "-x", "a" * 128, "a" * 129, "t:t", "é"]
    algos = ["sha256", "a+b", "a.b_c-d", "1a", "a+", "", "sha256+x"]
    hexes = ["f" * 64, "F" * 32, "f" * 31, "g" * 32, ""]
    for _ in range(20000):  # names built part by part, then one character changed
        s = ""
        if rng.random() < 0.6:
            s += rng.choice(domains) + (f":{rng.randint(0, 99999)}" if rng.random() < .4
                                        else ":" if rng.random() < .05 else "") + "/"
        s += "/".join(rng.choice(paths) for _ in range(rng.randint(1, 3)))
        if rng.random() < 0.5:
            s += ":" + rng.choice(tags)
        if rng.random() < 0.4:
            s += "@" + rng.choice(algos) + ":" + rng.choice(hexes)
        if s and rng.random() < 0.3:
            i = rng.randrange(len(s))
            s = s[:i] + rng.choice("a-_.:/@[]Z9") + s[i + 1:]
        out.append(s)
    return out


def test_match_is_dockers_grammar() -> None:
    """The hand matcher accepts exactly what the grammar's regular expression does,
    with the same name, tag and digest, on a corpus of edge cases and random names."""
    import re

    from supervisor.images.reference import match

    grammar = re.compile(_REFERENCE, re.ASCII)
    for s in _corpus():
        m = grammar.fullmatch(s)
        assert match(s) == (m.groups() if m else None), s


def test_a_tag_is_ascii_as_in_docker() -> None:
    with pytest.raises(InvalidArgument):
        parse("busybox:é")
