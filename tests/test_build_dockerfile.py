"""The Dockerfile parser and Docker's variable substitution (pure, no daemon)."""

from __future__ import annotations

import pytest

from supervisor.build.dockerfile import (
    DockerfileError,
    expand_instruction,
    parse,
    print_plan,
    stages,
)
from supervisor.build.shell import SubstitutionError, expand, split_words

ENV = {"a": "A", "empty": "", "path": "/usr/bin", "sp": "x y"}


@pytest.mark.parametrize(
    ("word", "want"),
    [
        ("$a", "A"),
        ("${a}", "A"),
        ("pre${a}post", "preApost"),
        ("$a$a", "AA"),
        ("$nope", ""),
        ("${nope:-dflt}", "dflt"),
        ("${empty:-dflt}", "dflt"),
        ("${empty-dflt}", ""),
        ("${nope-dflt}", "dflt"),
        ("${a:-dflt}", "A"),
        ("${a:+alt}", "alt"),
        ("${empty:+alt}", ""),
        ("${empty+alt}", "alt"),
        ("${nope+alt}", ""),
        ("${a:?boom}", "A"),
        ("${nope:-$a}", "A"),
        ("${nope:-${a}x}", "Ax"),
        ("'$a'", "$a"),
        ('"$a"', "A"),
        ('"${sp}"', "x y"),
        ("\\$a", "$a"),
        ('"\\$a"', "$a"),
        ('"a\\b"', "a\\b"),
        ('"a\\"b"', 'a"b'),
        ("a\\ b", "a b"),
        ("$", "$"),
        ("a$", "a$"),
        ("$1", ""),
        ("'it''s'", "its"),
        ('"it\'s"', "it's"),
        ("foo\\", "foo"),
    ],
)
def test_expand(word: str, want: str) -> None:
    assert expand(word, ENV) == want


def test_expand_backtick_escape() -> None:
    assert expand("`$a", ENV, "`") == "$a"
    assert expand("a\\b", ENV, "`") == "a\\b"


@pytest.mark.parametrize(
    ("word", "msg"),
    [
        ("${nope:?boom}", "nope: boom"),
        ("${empty:?}", "empty: is not allowed to be empty"),
        ("${nope?}", "nope: is not allowed to be unset"),
        ("${a", "missing '}'"),
        ("${}", "bad substitution"),
        ("${a%b}", "unsupported modifier"),
        ("'open", "single-quote"),
        ('"open', "double-quote"),
    ],
)
def test_expand_errors(word: str, msg: str) -> None:
    with pytest.raises(SubstitutionError, match=msg):
        expand(word, ENV)


def test_split_words_keeps_quotes_for_later() -> None:
    assert split_words("a=1 b=\"two words\" c='x y' d=e\\ f") == [
        "a=1",
        'b="two words"',
        "c='x y'",
        "d=e\\ f",
    ]


def one(text: str) -> object:
    df = parse(text)
    assert len(df.instructions) == 1
    return df.instructions[0]


def test_basic_and_case_insensitive() -> None:
    df = parse('from busybox\nrun echo hi\nCmd ["sh"]\n')
    assert [i.cmd for i in df.instructions] == ["FROM", "RUN", "CMD"]
    assert df.instructions[1].args == ("echo hi",)
    assert df.instructions[2].json and df.instructions[2].args == ("sh",)
    assert [(i.start_line, i.end_line) for i in df.instructions] == [(1, 1), (2, 2), (3, 3)]


def test_comments_blank_lines_and_indentation() -> None:
    df = parse("# a comment\n\n   FROM x\n\t# indented comment\n  RUN a # not a comment\n")
    assert [i.cmd for i in df.instructions] == ["FROM", "RUN"]
    assert df.instructions[1].args == ("a # not a comment",)
    assert df.instructions[1].start_line == 5


def test_continuations_with_comments_and_blank_lines_inside() -> None:
    df = parse("FROM x\nRUN a && \\\n# comment inside\n\n    b \\  \n  && c\nUSER me\n")
    run = df.instructions[1]
    assert run.args == ("a &&     b   && c",)
    assert (run.start_line, run.end_line) == (2, 6)
    assert df.instructions[2].start_line == 7


def test_escape_directive_backtick() -> None:
    df = parse("# escape=`\nFROM x\nRUN dir c:\\ `\n  && echo hi\n")
    assert df.escape == "`"
    assert df.instructions[1].args == ("dir c:\\   && echo hi",)


def test_directives_only_at_top() -> None:
    df = parse("# syntax=docker/dockerfile:1\n# escape=\\\nFROM x\n")
    assert df.directives == {"syntax": "docker/dockerfile:1", "escape": "\\"}
    df = parse("# hello\n# escape=`\nFROM x\nRUN a `\n")
    assert df.escape == "\\"  # after a plain comment, no more directives
    assert df.instructions[1].args == ("a `",)


def test_bad_escape_directive() -> None:
    with pytest.raises(DockerfileError, match="invalid escape token"):
        parse("# escape=x\nFROM a\n")


def test_exec_and_shell_forms_and_invalid_json_fallback() -> None:
    assert one('CMD ["a", "b c"]').json  # type: ignore[attr-defined]
    ins = one("CMD [a, b]")  # not JSON: shell form, as Docker does
    assert not ins.json and ins.args == ("[a, b]",)  # type: ignore[attr-defined]
    ins = one("ENTRYPOINT ['single', 'quotes']")
    assert not ins.json  # type: ignore[attr-defined]
    with pytest.raises(DockerfileError, match="strings only"):
        parse("CMD [1, 2]")
    with pytest.raises(DockerfileError, match="JSON form"):
        parse("FROM x\nSHELL /bin/bash -c")


def test_flags() -> None:
    ins = parse("FROM x\nCOPY --from=build --chown=1:2 --link a b\n").instructions[1]
    assert ins.flag("from") == "build"
    assert ins.flag("chown") == "1:2"
    assert ins.flag("link") == ""
    assert ins.flag("chmod") is None
    assert ins.args == ("a", "b")
    ins = parse('FROM x\nRUN --mount=type=cache,target=/c --network="none" echo\n').instructions[1]
    assert ins.flag_all("mount") == ["type=cache,target=/c"]
    assert ins.flag("network") == "none"
    assert ins.args == ("echo",)


@pytest.mark.parametrize(
    ("text", "msg"),
    [
        ("FROM x\nCOPY --bogus a b", "Dockerfile:2: unknown flag: --bogus"),
        ("FROM x\nCOPY --from=a --from=b a b", "duplicate flag"),
        ("FROM x\nFOO bar", "Dockerfile:2: unknown instruction: FOO"),
        ("FROM x\nCOPY a", "COPY requires at least two arguments"),
        ("FROM x\nENV", "ENV requires at least one argument"),
        ("FROM x\nENV a=1 b", "can't find = in 'b'"),
        ("FROM x\nENV onlykey", "ENV must have two arguments"),
        ("FROM x\nRUN", "RUN requires at least one argument"),
        ("FROM a b", "FROM requires either one or three arguments"),
        ("FROM x\nONBUILD ONBUILD RUN x", "Chaining ONBUILD"),
        ("FROM x\nONBUILD FROM y", "isn't allowed as an ONBUILD trigger"),
        ("FROM x\nHEALTHCHECK WHAT", "Unknown type"),
        ("FROM x\nRUN <<EOF\nhello\n", "Dockerfile:2: unterminated heredoc EOF"),
        ("FROM x\nSTOPSIGNAL a b", "exactly one argument"),
        ('FROM x\nVOLUME [""]', "can not be an empty string"),
    ],
)
def test_parse_errors_name_the_line(text: str, msg: str) -> None:
    with pytest.raises(DockerfileError) as exc:
        parse(text)
    assert msg in exc.value.message


def test_env_and_label_forms() -> None:
    ins = one('ENV a=1 b="two words" c=x\\ y')
    assert ins.args == ("a=1", 'b="two words"', "c=x\\ y")  # type: ignore[attr-defined]
    e = expand_instruction(ins, {}, "\\")  # type: ignore[arg-type]
    assert e.pairs() == [("a", "1"), ("b", "two words"), ("c", "x y")]
    legacy = expand_instruction(one("ENV key some  value"), {}, "\\")  # type: ignore[arg-type]
    assert legacy.pairs() == [("key", "some  value")]
    lab = expand_instruction(one('LABEL "com.x.y"="v w" a=b'), {}, "\\")  # type: ignore[arg-type]
    assert lab.pairs() == [("com.x.y", "v w"), ("a", "b")]


def test_env_pairs_use_values_from_before_the_instruction() -> None:
    ins = one("ENV abc=hello def=$abc")
    e = expand_instruction(ins, {"abc": "bye"}, "\\")  # type: ignore[arg-type]
    assert e.pairs() == [("abc", "hello"), ("def", "bye")]  # Docker's documented example


def test_arg_forms() -> None:
    ins = one('ARG a b=2 c="x y"')
    e = expand_instruction(ins, {}, "\\")  # type: ignore[arg-type]
    assert e.pairs() == [("a", None), ("b", "2"), ("c", "x y")]


def test_substitution_only_where_docker_substitutes() -> None:
    df = parse(
        "FROM x\nRUN echo $a\nCMD echo $a\nWORKDIR /$a\nCOPY $a /d/$a\nEXPOSE $port\n"
        "USER ${a:-root}\nVOLUME /v/$a\nSTOPSIGNAL $sig\nLABEL l=$a\n"
    )
    env = {"a": "A", "port": "80", "sig": "SIGINT"}
    got = [expand_instruction(i, env, "\\").args for i in df.instructions[1:]]
    assert got == [
        ("echo $a",),
        ("echo $a",),
        ("/A",),
        ("A", "/d/A"),
        ("80",),
        ("A",),
        ("/v/A",),
        ("SIGINT",),
        ("l=A",),
    ]


def test_substitution_error_names_line() -> None:
    df = parse("FROM x\nWORKDIR ${missing:?must be set}\n")
    with pytest.raises(DockerfileError, match="Dockerfile:2: .*missing: must be set"):
        expand_instruction(df.instructions[1], {}, "\\")


def test_heredocs() -> None:
    df = parse(
        "FROM x\nRUN <<EOF\necho one\necho two\nEOF\n"
        "COPY <<-'END' /etc/motd\n\thello $x\n\tEND\nRUN cat <<A <<B\na\nA\nb\nB\nUSER me\n"
    )
    run, copy, two, user = df.instructions[1:]
    assert run.heredocs[0].name == "EOF"
    assert run.heredocs[0].content == "echo one\necho two\n"
    assert (run.start_line, run.end_line) == (2, 5)
    assert copy.heredocs[0].content == "hello $x\n"
    assert copy.heredocs[0].expand is False and copy.heredocs[0].chomp is True
    assert [h.name for h in two.heredocs] == ["A", "B"]
    assert user.start_line == 14
    e = expand_instruction(
        parse("FROM x\nCOPY <<EOF /f\n$v\nEOF\n").instructions[1], {"v": "V"}, "\\"
    )
    assert e.heredocs[0].content == "V\n"
    assert e.args == ("<<EOF", "/f")


def test_heredoc_not_in_other_instructions() -> None:
    df = parse("FROM x\nLABEL a=<<EOF\nUSER me\n")
    assert [i.cmd for i in df.instructions] == ["FROM", "LABEL", "USER"]


def test_healthcheck_and_onbuild() -> None:
    hc = one('HEALTHCHECK --interval=5s --retries=2 CMD ["wget", "-q", "x"]')
    assert hc.args == ("CMD", "wget", "-q", "x") and hc.json  # type: ignore[attr-defined]
    assert hc.flag("interval") == "5s"  # type: ignore[attr-defined]
    assert one("HEALTHCHECK NONE").args == ("NONE",)  # type: ignore[attr-defined]
    ob = one("ONBUILD RUN echo triggered")
    assert ob.sub.cmd == "RUN" and ob.sub.args == ("echo triggered",)  # type: ignore[attr-defined]


def test_stages_and_global_args() -> None:
    df = parse(
        "ARG BASE=busybox\nARG TAG\nFROM $BASE:${TAG:-latest} AS Build\nRUN x\n"
        "FROM build\nCOPY --from=Build /a /b\n"
    )
    st, scope = stages(df, {"TAG": "1"})
    assert [(s.base, s.name) for s in st] == [("busybox:1", "build"), ("build", "")]
    assert scope == {"BASE": "busybox", "TAG": "1"}
    assert len(st[0].body) == 1 and len(st[1].body) == 1


def test_stage_errors() -> None:
    with pytest.raises(DockerfileError, match="cannot be used before FROM"):
        stages(parse("RUN x\nFROM y\n"))
    with pytest.raises(DockerfileError, match="duplicate name"):
        stages(parse("FROM a AS x\nFROM b AS x\n"))
    with pytest.raises(DockerfileError, match="FROM is missing"):
        stages(parse("ARG a\n"))


def test_print_plan_scoping() -> None:
    df = parse(
        "ARG V=1\nFROM busybox AS one\nARG V\nENV E=$V\nWORKDIR /w/$E\n"
        "FROM one\nWORKDIR /$V/$E\nRUN echo $V\n"
    )
    plan = print_plan(df, {})
    assert [p["instruction"] for p in plan] == [
        "ARG", "FROM", "ARG", "ENV", "WORKDIR", "FROM", "WORKDIR", "RUN",
    ]  # fmt: skip
    assert plan[4]["args"] == ["/w/1"]
    # a global ARG is not in scope until re-declared; a base image env is unknown here
    assert plan[6]["args"] == ["//"]
    assert plan[7]["args"] == ["echo $V"]
    assert plan[4]["lines"] == [5, 5] and plan[4]["stage"] == 0
    assert print_plan(df, {"V": "9"})[4]["args"] == ["/w/9"]
