"""`--change` lines -> config edits (pure)."""

from __future__ import annotations

import pytest

from supervisor.errors import InvalidArgument
from supervisor.images.changes import apply_changes, merge_env, parse_changes


def test_parse_changes() -> None:
    got = parse_changes(
        [
            'CMD ["sh", "-c", "echo hi"]',
            "entrypoint /bin/run --fast",
            "ENV A=1 B='two words'",
            "ENV LEGACY some value",
            'LABEL "com.x"=y z=1',
            "EXPOSE 80 53/udp",
            'VOLUME ["/data"]',
            "VOLUME /a /b",
            "WORKDIR /srv",
            "USER nobody",
            "STOPSIGNAL SIGINT",
            "",
        ]
    )
    assert got == {
        "Cmd": ["sh", "-c", "echo hi"],
        "Entrypoint": ["/bin/sh", "-c", "/bin/run --fast"],
        "Env": ["A=1", "B=two words", "LEGACY=some value"],
        "Labels": {"com.x": "y", "z": "1"},
        "ExposedPorts": {"80/tcp": {}, "53/udp": {}},
        "Volumes": {"/data": {}, "/a": {}, "/b": {}},
        "WorkingDir": "/srv",
        "User": "nobody",
        "StopSignal": "SIGINT",
    }


@pytest.mark.parametrize("line", ["RUN echo", "FROM x", "ENV", "USER", "ENV a=1 =b"])
def test_parse_changes_rejects(line: str) -> None:
    with pytest.raises(InvalidArgument):
        parse_changes([line])


def test_apply_changes_merges_like_a_dockerfile() -> None:
    base = {"Env": ["PATH=/bin", "A=0"], "Labels": {"a": "1"}, "Cmd": ["sh"]}
    out = apply_changes(base, {"Env": ["A=1", "B=2"], "Labels": {"b": "2"}, "Cmd": ["top"]})
    assert out == {
        "Env": ["PATH=/bin", "A=1", "B=2"],
        "Labels": {"a": "1", "b": "2"},
        "Cmd": ["top"],
    }
    assert base["Env"] == ["PATH=/bin", "A=0"]
    assert merge_env([], ["X=1", "X=2"]) == ["X=2"]
