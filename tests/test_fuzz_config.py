"""Fuzz the service-file loader (config/) and the daemon's config file: any YAML text
gives a project (with a create body for every replica) or a ConfigError whose every
problem says file:line:col, never another exception."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

import yaml
from fuzzing import Refused, case, fuzz
from hypothesis import example, given
from hypothesis import strategies as st

from config.container import create_body
from config.errors import ConfigError
from config.project import load_project
from supervisor.daemon import apply_config, parse_args

COMPOSE_KEYS = [
    "image", "command", "entrypoint", "environment", "env_file", "ports", "volumes",
    "depends_on", "healthcheck", "restart", "networks", "build", "deploy", "labels",
    "user", "working_dir", "cap_add", "cap_drop", "security_opt", "scale", "profiles",
    "extends", "tmpfs", "read_only", "network_mode", "ulimits", "extra_hosts", "dns",
    "container_name", "stop_signal", "stop_grace_period", "init", "x-foo", "imag",
]  # fmt: skip
TOP_KEYS = ["services", "volumes", "networks", "name", "version", "x-common", "configs"]
SCALARS = [
    "busybox", "busybox:latest", "8080:80", "127.0.0.1:80:80/udp", "1-3:1-3", "./data:/data:ro",
    "/abs:/x", "${X}", "${X:-d}", "${X:?need X}", "$$", "${", "$", "${X:+y}", "web", "db",
    "always", "on-failure:3", "10s", "1h2m", "CMD-SHELL echo", "ALL", "-1", "1e400", "0o17",
    "~", "yes", "a\nb", "\t", "\x00", "service_healthy", "seccomp=unconfined", "🚀",
]  # fmt: skip
SAMPLE = """\
name: fuzz
services:
  web:
    image: busybox
    command: ["sleep", "1"]
    ports: ["8080:80"]
    environment: {A: "1", B: "${B:-x}"}
    depends_on: {db: {condition: service_healthy}}
    healthcheck: {test: ["CMD", "true"], interval: 1s}
    volumes: [data:/data, ./x:/x:ro]
  db:
    image: busybox
    deploy: {replicas: 2}
volumes:
  data: {}
"""


def scalars() -> st.SearchStrategy[Any]:
    return (
        st.sampled_from(SCALARS)
        | st.integers(-(2**70), 2**70)
        | st.booleans()
        | st.none()
        | st.floats()
        | st.text(max_size=12)
    )


def trees(keys: list[str]) -> st.SearchStrategy[Any]:
    return st.recursive(
        scalars(),
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.dictionaries(st.sampled_from(keys) | st.text(max_size=6), inner, max_size=4)
        ),
        max_leaves=12,
    )


@st.composite
def compose_docs(draw: st.DrawFn) -> dict[str, Any]:
    services = draw(
        st.dictionaries(
            st.sampled_from(["web", "db", "a b", "", "x" * 70]) | st.text(max_size=5),
            st.dictionaries(st.sampled_from(COMPOSE_KEYS), trees(COMPOSE_KEYS), max_size=5)
            | trees(COMPOSE_KEYS),
            max_size=3,
        )
    )
    doc: dict[str, Any] = {"services": services}
    for k in draw(st.lists(st.sampled_from(TOP_KEYS), max_size=2)):
        doc[k] = draw(trees(COMPOSE_KEYS))
    return doc


HOSTILE_TEXT = [
    "services: &a [*a]\n",
    "a: &x {b: *x}\nservices: {}\n",
    "services:\n  web: !!python/object:os.system {}\n",
    "services:\n  web: !reset {}\n",
    "services:\n  web:\n    image: a\n    image: b\n",
    "services:\n  <<: {web: {image: a}}\n",
    "services:\n\tweb: {}\n",
    "services: {web: {image: a}}\n---\nservices: {}\n",
    "[" * 200,
    "services:\n  web:\n    image: " + "a" * 5000 + "\n",
    "? [a]\n: b\n",
    "services: {web: {image: busybox, ports: ['99999:1']}}",
    "%YAML 1.1\n--- !!map\n",
    "\ufeffservices: {}\n",
]


PUNCT = ":-[]{}&*!|>'\"\n #$\t"


def mutate(draw: st.DrawFn, text: str) -> str:
    if draw(st.booleans()):  # half the texts as generated, so that more of them load
        return text
    for pos, op, ch in draw(
        st.lists(
            st.tuples(
                st.integers(0, 10_000), st.integers(0, 2), st.sampled_from(":-[]{}&*!|>'\"\n #$\t")
            ),
            max_size=4,
        )
    ):
        p = pos % (len(text) + 1)
        text = text[:p] + ch + text[p + (op == 0) :] if op < 2 else text[:p] + text[p + 1 :]
    return text


@st.composite
def compose_texts(draw: st.DrawFn) -> str:
    choice = draw(st.integers(0, 3))
    if choice == 0:
        text = yaml.safe_dump(draw(compose_docs()), allow_unicode=True)
    elif choice == 1:
        text = SAMPLE
    elif choice == 2:
        text = draw(st.sampled_from(HOSTILE_TEXT))
    else:
        text = draw(st.text(max_size=80))
    return mutate(draw, text)


POSITIONED = re.compile(r"^compose\.yaml:\d+:\d+: ")  # shown relative to the cwd


@fuzz(ci_cases=300)
@given(compose_texts())
@example(SAMPLE)
@example("services: &a [*a]\n")  # an anchor inside itself: RecursionError
@example('services: {web: {image: "\x00"}}')  # ReaderError before the loader's try
@example("[" * 2000)  # PyYAML's composer recursion
def test_compose_loader_any_text(text: str) -> None:
    files = {"/fuzz/compose.yaml": text}

    def read(path: str) -> str:
        if path in files:
            return files[path]
        raise FileNotFoundError(2, "No such file or directory", path)

    with case("compose loader") as fig:
        try:
            project = load_project(
                ["/fuzz/compose.yaml"], environ={"X": "1"}, cwd="/fuzz", read_file=read
            )
        except ConfigError as exc:
            for p in exc.problems:
                # a file that cannot be read is the one problem with no position
                assert p.position is not None or p.message.startswith("open "), p
                assert POSITIONED.match(str(p)) or p.position is None, p
            raise Refused(_problem_kind(exc)) from None
        for name in project.services:
            for n in range(1, project.scale(name) + 1):
                cname, body = create_body(project, name, n)
                assert isinstance(cname, str) and isinstance(body, dict)
    assert fig.cases


def _problem_kind(exc: ConfigError) -> str:
    msg = exc.problems[0].message if exc.problems else ""
    return re.sub(r"\d+", "N", re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", msg))[:60]


DAEMON_KEYS = ["root", "host", "runtime", "cgroup-parent", "log-level", "log-driver",
               "log-opts", "metrics-addr", "services", "hots", "debug"]  # fmt: skip
DAEMON_VALUES = ["/var/lib/x", "unix:///run/x.sock", "tcp://0.0.0.0:2375", "runc", "debug",
                 "INFO", "loud", "json-file", "local", "none", "syslog", "127.0.0.1:9323",
                 ":0", "[::1]:70000", "", "rel/dir", {"max-size": "10m", "max-file": "3"},
                 {"max-size": "ten"}, {"max-file": -1}, {"mode": "non-blocking"}]  # fmt: skip


@st.composite
def daemon_texts(draw: st.DrawFn) -> str:
    if draw(st.booleans()):
        doc = draw(
            st.dictionaries(
                st.sampled_from(DAEMON_KEYS),
                st.sampled_from(DAEMON_VALUES) | trees(["max-size", "max-file"]),
                max_size=5,
            )
        )
        text = yaml.safe_dump(doc, allow_unicode=True)
    else:
        text = draw(st.sampled_from([*HOSTILE_TEXT, "root: /x\nlog-opts: [a]\n"]))
    return mutate(draw, text)


@fuzz(ci_cases=300)
@given(daemon_texts())
@example("log-opts: {max-size: 10m}\nlog-driver: none\n")
def test_daemon_config_any_text(tmp_path_factory: Any, text: str) -> None:
    path = Path(tmp_path_factory.getbasetemp()) / "daemon.yaml"
    path.write_text(text, encoding="utf-8")
    args: argparse.Namespace = parse_args(["--config", str(path)])
    with case("daemon config") as fig:
        lines = apply_config(args, {})
        if lines:
            for line in lines:
                assert line.startswith(f"{path}:") or line.startswith("corral daemon:"), line
            raise Refused(re.sub(r"\d+", "N", re.sub(r"'[^']*'", "'…'", lines[0]))[-60:])
    assert fig.cases
