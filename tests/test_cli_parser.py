"""docker 28's command-line habits: flag errors with the usage line, arg counts, -t/--timeout.

The expected texts are what docker 28 prints with `docker` replaced by `corral`
(checked with the real CLI: `docker ps --nope`, `docker rm`, `docker stop --time 1`).
"""

from __future__ import annotations

import io
from typing import Any

import pytest

from supervisor.api.client import Client
from supervisor.cli.context import Cli
from supervisor.cli.main import main, run_verb


class Recorder(Client):
    """Records requests; answers each with an empty success."""

    def __init__(self) -> None:
        super().__init__("unix:///nonexistent.sock")
        self.requests: list[tuple[str, str, Any]] = []

    def request(self, method: str, path: str, query: Any = None, **_: Any) -> Any:
        self.requests.append((method, path, query))

        class Empty:
            def json(self) -> Any:
                return None

            def close(self) -> None:
                pass

        return Empty()


def run(*argv: str, client: Client | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    cli = Cli(stdout=out, stderr=err, environ={}, client=client or Recorder())
    code = run_verb(cli, argv[0], list(argv[1:]))
    return code, out.getvalue(), err.getvalue()


def hint(verb: str, usage: str) -> str:
    return f"\n\nUsage:  corral {verb} {usage}\n\nRun 'corral {verb} --help' for more information\n"


@pytest.mark.parametrize(
    ("argv", "first", "usage"),
    [
        (["ps", "--nope"], "unknown flag: --nope", "[OPTIONS]"),
        (["ps", "-Z"], "unknown shorthand flag: 'Z' in -Z", "[OPTIONS]"),
        (["ps", "--filter"], "flag needs an argument: --filter", "[OPTIONS]"),
        (["ps", "-n"], "flag needs an argument: 'n' in -n", "[OPTIONS]"),
        (["ps", "-n", "x"], 'invalid argument "x" for "-n, --last" flag: strconv.ParseInt: '
         'parsing "x": invalid syntax', "[OPTIONS]"),
        (["ps", "-a=x"], 'invalid argument "x" for "-a, --all" flag: strconv.ParseBool: '
         'parsing "x": invalid syntax', "[OPTIONS]"),
        (["stop", "--nope", "web"], "unknown flag: --nope",
         "[OPTIONS] CONTAINER [CONTAINER...]"),
        (["stop", "-t", "x", "web"], 'invalid argument "x" for "-t, --timeout" flag: '
         'strconv.ParseInt: parsing "x": invalid syntax', "[OPTIONS] CONTAINER [CONTAINER...]"),
        (["run", "--bogus", "img"], "unknown flag: --bogus",
         "[OPTIONS] IMAGE [COMMAND] [ARG...]"),
        (["run", "-e"], "flag needs an argument: 'e' in -e", "[OPTIONS] IMAGE [COMMAND] [ARG...]"),
        (["run", "--rm=maybe", "img"], 'invalid argument "maybe" for "--rm" flag: '
         'strconv.ParseBool: parsing "maybe": invalid syntax',
         "[OPTIONS] IMAGE [COMMAND] [ARG...]"),
        (["run", "--stop-timeout", "soon", "img"], 'invalid argument "soon" for '
         '"--stop-timeout" flag: strconv.ParseInt: parsing "soon": invalid syntax',
         "[OPTIONS] IMAGE [COMMAND] [ARG...]"),
    ],
)
def test_flag_errors_read_as_docker_28(argv: list[str], first: str, usage: str) -> None:
    verb = argv[0]
    assert run(*argv) == (125, "", first + hint(verb, usage))


def test_subcommand_flag_errors_name_the_subcommand() -> None:
    assert run("volume", "ls", "--nope") == (
        125, "", "unknown flag: --nope" + hint("volume ls", "[OPTIONS]"))
    assert run("network", "ls", "-Z") == (
        125, "", "unknown shorthand flag: 'Z' in -Z" + hint("network ls", "[OPTIONS]"))


def test_global_unknown_flag(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--nope", "ps"]) == 125
    assert capsys.readouterr().err == (
        "unknown flag: --nope\n\nUsage:  corral [OPTIONS] COMMAND\n\n"
        "Run 'corral --help' for more information\n")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["rm"], "'corral rm' requires at least 1 argument\n\n"
                 "Usage:  corral rm [OPTIONS] CONTAINER [CONTAINER...]\n\n"
                 "See 'corral rm --help' for more information"),
        (["ps", "x"], "'corral ps' accepts no arguments\n\nUsage:  corral ps [OPTIONS]\n\n"
                      "Run 'corral ps --help' for more information"),
        (["rename", "a"], "'corral rename' requires 2 arguments\n\n"
                          "Usage:  corral rename CONTAINER NEW_NAME\n\n"
                          "Run 'corral rename --help' for more information"),
        (["volume", "create", "a", "b"], "'corral volume create' requires at most 1 argument\n\n"
                                         "Usage:  corral volume create [OPTIONS] [VOLUME]\n\n"
                                         "Run 'corral volume create --help' for more "
                                         "information"),
    ],
)
def test_argument_counts_read_as_docker_28(argv: list[str], message: str) -> None:
    assert run(*argv) == (1, "", f"corral: {message}\n")


def test_stop_and_restart_spell_timeout_as_docker_28() -> None:
    for verb in ("stop", "restart"):
        for flags in (["-t", "3"], ["--timeout", "3"], ["--timeout=3"]):
            rec = Recorder()
            code, out, err = run(verb, *flags, "web", client=rec)
            assert (code, out, err) == (0, "web\n", "")
            assert rec.requests == [("POST", f"/containers/web/{verb}", {"t": 3, "signal": None})]
        rec = Recorder()
        code, out, _ = run(verb, "--time", "3", "web", client=rec)
        assert (code, out) == (0, "Flag --time has been deprecated, use --timeout instead\nweb\n")
        assert rec.requests[0][2] == {"t": 3, "signal": None}
    help_text = run("stop", "--help")[1]
    assert "  -t, --timeout int" in help_text and "--time " not in help_text
