"""Fuzz the Dockerfile parser and Docker's variable substitution
(supervisor/build/dockerfile.py, build/shell.py): any text gives stages with every
instruction expanded, or a DockerfileError naming a line, never another exception."""

from __future__ import annotations

from fuzzing import case, fuzz
from hypothesis import example, given
from hypothesis import strategies as st

from supervisor.build.dockerfile import (
    DockerfileError,
    auto_args,
    expand_instruction,
    find_stage,
    parse,
    stages,
)
from supervisor.build.shell import SubstitutionError, expand, split_words

INSTRUCTIONS = ["FROM", "RUN", "CMD", "ENTRYPOINT", "ENV", "ARG", "LABEL", "COPY", "ADD",
                "EXPOSE", "USER", "WORKDIR", "VOLUME", "STOPSIGNAL", "HEALTHCHECK", "SHELL",
                "ONBUILD", "MAINTAINER", "from", "BOGUS", ""]  # fmt: skip
WORDS = ["busybox", "busybox AS base", "scratch", "$X", "${X}", "${X:-d}", "${X:?nope}",
         "${X:+y}", "${X-}", "${", "${X", "$", "'a b'", '"a $X"', "\\", "`", "a=b", "A=1 B=2",
         "A", "=x", '["sh", "-c", "x"]', '["a",', "[]", "<<EOF\nhi\nEOF", "<<-'E'\n\tx\nE",
         "--from=0", "--from=\u00b2", "--from=base", "--chown=1:1", "--platform=$X", "--mount=x",
         "--interval=1s CMD true", "NONE", "CMD", "80/tcp", "a\\\nb", "\t", "é"]  # fmt: skip

DIRECTIVES = ["# escape=`", "# escape=x", "# syntax=a", "#escape=\\"]


@st.composite
def dockerfiles(draw: st.DrawFn) -> str:
    lines = []
    if draw(st.booleans()):
        lines.append(
            draw(st.sampled_from(["# escape=`", "# escape=x", "# syntax=a", "#escape=\\"]))
        )
    if draw(st.integers(0, 3)):
        lines.append("FROM busybox")
    for _ in range(draw(st.integers(0, 8))):
        ins = draw(st.sampled_from(INSTRUCTIONS))
        args = draw(st.lists(st.sampled_from(WORDS) | st.text(max_size=6), min_size=1, max_size=3))
        lines.append(" ".join([ins, *args]))
    eol = draw(st.sampled_from(["\n", "\r\n"]))
    text = eol.join(lines)
    edits = st.lists(st.tuples(st.integers(0, 1000), st.sampled_from("\\`$\"'{}[]\n #=:-<")))
    for pos, ch in draw(st.just([]) | edits):
        p = pos % (len(text) + 1)
        text = text[:p] + ch + text[p:]
    return text


def build_plan(text: str) -> int:
    """What a build does before running anything: parse, stages, every expansion, and
    each COPY --from looked up."""
    df = parse(text)
    found, scope = stages(df, {"X": "1"}, auto_args("amd64"))
    n = 0
    for st_ in found:
        env = dict(scope)
        for ins in st_.body:
            e = expand_instruction(ins, env, df.escape)
            if e.cmd in ("ENV", "ARG"):
                env.update((k, v or "") for k, v in e.pairs())
            ref = e.flag("from")
            if ref is not None:
                find_stage(found, ref, st_.index)
            n += 1
    return n


@fuzz(ci_cases=300)
@given(dockerfiles() | st.text(max_size=60))
@example("FROM busybox\nFROM busybox\nCOPY --from=\u00b2 a b\n")  # isdigit(), not int()
def test_dockerfile_any_text(text: str) -> None:
    with case("dockerfile", DockerfileError) as fig:
        try:
            build_plan(text)
        except DockerfileError as exc:
            assert str(exc).startswith("Dockerfile"), exc
            raise
    assert fig.cases


@fuzz(ci_cases=300)
@given(st.text(max_size=30) | st.sampled_from(WORDS), st.sampled_from(["\\", "`"]))
def test_substitution_any_word(word: str, escape: str) -> None:
    with case("dockerfile words", SubstitutionError):
        assert isinstance(expand(word, {"X": "1", "E": ""}, escape), str)
        assert all(isinstance(w, str) for w in split_words(word, escape))
