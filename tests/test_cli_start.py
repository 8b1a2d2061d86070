"""The CLI's start path: what a verb imports before its first request, and the JSON
it speaks without the `json` module (`supervisor.leanjson`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from supervisor import leanjson

REPO = Path(__file__).resolve().parent.parent
DOCS = [
    {"a": [1, 2.5, None, True, False, 'é\u2028"\\\n\x00'], "b": {"x": -1e300, "y": 1e-7}},
    [],
    {},
    "text",
    0,
    {"nested": [[{"k": [1]}]], "big": 10**30, "nan": float("nan"), "inf": float("-inf")},
]


@pytest.mark.parametrize("doc", DOCS, ids=range(len(DOCS)))
def test_leanjson_writes_and_reads_what_json_does(doc: object) -> None:
    text = json.dumps(doc)
    assert leanjson.dumps(doc) == text
    assert leanjson.dumps(doc, compact=True) == json.dumps(doc, separators=(",", ":"))
    assert json.dumps(leanjson.loads(text)) == text
    assert json.dumps(leanjson.loads(text.encode())) == text  # bytes, as responses are
    assert json.dumps(leanjson.loads(f" \n{text}\t ")) == text


@pytest.mark.parametrize("bad", ["", " ", "{", "[1] x", "nope", '{"a" 1}', "\ufeff{}", b"\xff"])
def test_leanjson_refuses_what_json_refuses(bad: str | bytes) -> None:
    with pytest.raises(ValueError):
        json.loads(bad)
    with pytest.raises(ValueError):
        leanjson.loads(bad)


def test_leanjson_refuses_what_json_cannot_write() -> None:
    with pytest.raises(TypeError, match="set is not JSON serializable"):
        leanjson.dumps({"a": {1}})


@pytest.mark.parametrize("verb", [["ps"], ["logs", "x"], ["run", "-d", "busybox", "true"]])
def test_verbs_reach_their_request_without_json_or_re(verb: list[str], tmp_path: Path) -> None:
    """`re` (with enum) and `json` cost about as much as Python's own start: the
    everyday verbs get to their first request without them, nor the `collections`
    package, contextlib, functools or importlib (~4 ms together; no daemon here: the
    verb fails to connect, after everything it needs is imported)."""
    code = (
        "import sys\nfrom supervisor.cli.main import main\n"
        f"sys.argv = ['corral', *{verb!r}]\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('re', 'json', 'enum', 'typing', 'collections', "
        "'contextlib', 'functools', 'importlib') if m in sys.modules))"
    )
    env = dict(
        os.environ,
        CORRAL_HOST=f"unix://{tmp_path}/none.sock",
        CORRAL_NO_AUTOSTART="1",
        PYTHONPATH=str(REPO),
    )
    out = subprocess.run(
        [sys.executable, "-S", "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert "Cannot connect" in out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize("verb", [["push", "127.0.0.1:5000/x"], ["pull", "127.0.0.1:5000/x"]])
def test_pull_and_push_reach_their_request_without_typing_or_dataclasses(
        verb: list[str], tmp_path: Path) -> None:
    """A warm push is about as long as the CLI's own start: the name is parsed without
    `dataclasses` (which imports `inspect`, `ast`, `tokenize`) or `typing`, and no
    saved login means no `json`, `base64`, `subprocess` or `pathlib`."""
    heavy = ("typing", "dataclasses", "inspect", "json", "base64", "subprocess", "pathlib")
    code = (
        "import sys\nfrom supervisor.cli.main import main\n"
        f"sys.argv = ['corral', *{verb!r}]\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        f"print(sorted(m for m in {heavy!r} if m in sys.modules))"
    )
    env = dict(os.environ, CORRAL_HOST=f"unix://{tmp_path}/none.sock", CORRAL_NO_AUTOSTART="1",
               PYTHONPATH=str(REPO), DOCKER_CONFIG=str(tmp_path / "docker"))
    out = subprocess.run(
        [sys.executable, "-S", "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert "Cannot connect" in out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"
