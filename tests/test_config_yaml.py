"""Service-file scalars mean what they mean to Docker Compose (go-yaml v3, then compose-go).

One test per rule. Each expectation was checked against go-yaml v3.0.1 itself (a Go
program decoding the same text into an interface{} and printing it with fmt.Sprint),
except where a test says corral departs from it.
"""

from __future__ import annotations

import pytest

from config.container import create_body
from config.errors import ConfigError
from config.model import Project
from config.project import load_project
from config.yamlload import dump_yaml, load_yaml


def project(text: str, env: dict[str, str] | None = None) -> Project:
    def read(path: str) -> str:
        if path != "/p/compose.yaml":
            raise FileNotFoundError(2, "no such file or directory", path)
        return text

    return load_project(["/p/compose.yaml"], environ=env or {}, cwd="/p", read_file=read)


def errors_of(text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        project(text, env)
    return [str(p) for p in info.value.problems]


def environment(values: str) -> dict[str, str]:
    """The environment compose gives a container for `environment: {values}`."""
    text = "services:\n  a:\n    image: x\n    environment:\n" + "".join(
        f"      {line}\n" for line in values.strip().splitlines()
    )
    return dict(project(text).services["a"]["environment"])


def test_no_base_60_numbers_a_port_22_22_stays_22_22() -> None:
    p = project(
        "services:\n  web:\n    image: x\n    user: 1000:1000\n    ports:\n      - 22:22\n"
        "      - 1:30\n    environment:\n      AT: 12:30:00\n"
    )
    web = p.services["web"]
    assert web["ports"] == [
        {"mode": "ingress", "target": 22, "protocol": "tcp", "published": "22"},
        {"mode": "ingress", "target": 30, "protocol": "tcp", "published": "1"},
    ]
    assert web["user"] == "1000:1000"
    assert web["environment"] == {"AT": "12:30:00"}


def test_octal_0o_and_yaml_11_leading_zero_but_08_is_a_float() -> None:
    assert environment("A: 0755\nB: 0o755\nC: 0O17\nD: 0789\nE: 08\nF: '0755'") == {
        "A": "493",
        "B": "493",
        "C": "15",
        "D": "789",  # not octal digits: go-yaml's float rule takes it
        "E": "8",
        "F": "0755",
    }


def test_integers_hex_binary_underscores_and_past_64_bits() -> None:
    env = environment(
        "A: 0x1F\nB: -0b101\nC: 1_000\nD: +12\nE: 18446744073709551615\n"
        "F: 18446744073709551616\nG: 0x\nH: 1,000"
    )
    assert env == {
        "A": "31",
        "B": "-5",
        "C": "1000",
        "D": "12",
        "E": "18446744073709551615",  # still an integer (unsigned 64 bits)
        "F": "1.8446744073709552e+19",  # past 64 bits go-yaml makes it a float
        "G": "0x",
        "H": "1,000",
    }


def test_floats_read_and_printed_as_compose_does() -> None:
    env = environment(
        "A: 1.0\nB: 1e3\nC: .5\nD: .inf\nE: -.Inf\nF: .NaN\nG: 1234567.0\nH: 0.00001\n"
        "I: 1e400\nJ: inf\nK: 1.10"
    )
    assert env == {
        "A": "1",
        "B": "1000",
        "C": "0.5",
        "D": "+Inf",
        "E": "-Inf",
        "F": "NaN",
        "G": "1.234567e+06",
        "H": "1e-05",
        "I": "1e400",  # out of a float's range: go-yaml keeps the string
        "J": "inf",  # only .inf is infinity
        "K": "1.1",
    }


def test_dates_stay_as_written() -> None:
    """corral departs from go-yaml here: go-yaml makes a Go time of an unquoted date and
    compose prints it as "2001-12-15 02:59:43.1 +0000 UTC"; the text as written is what
    anyone means. (PyYAML's YAML 1.1 rules used to rewrite it.)"""
    env = environment("A: 2001-12-14t21:59:43.10-05:00\nB: 2024-01-01\nC: 2024-1-1 10:00:00")
    assert env == {"A": "2001-12-14t21:59:43.10-05:00", "B": "2024-01-01", "C": "2024-1-1 10:00:00"}


def test_boolean_fields_read_strings_as_compose_does() -> None:
    p = project(
        "services:\n  web:\n    image: x\n    read_only: yes\n    init: 'TRUE'\n"
        "    privileged: ${PRIV}\n    stdin_open: Off\n",
        env={"PRIV": "false"},
    )
    web = p.services["web"]
    assert (web["read_only"], web["init"], web["privileged"], web["stdin_open"]) == (
        True,
        True,
        False,
        False,
    )
    assert [str(w) for w in p.warnings] == [
        "compose.yaml:4:16: services.web.read_only 'yes' is not a YAML 1.2 boolean; read as "
        "true, as compose does: write true",
        "compose.yaml:7:17: services.web.stdin_open 'Off' is not a YAML 1.2 boolean; read as "
        "false, as compose does: write false",
    ]


def test_a_boolean_field_refuses_other_words_at_their_position() -> None:
    errs = errors_of("services:\n  web:\n    image: x\n    read_only: maybe\n    init: 1\n")
    assert errs == [
        "compose.yaml:4:16: services.web.read_only must be a boolean (true or false)",
        "compose.yaml:5:11: services.web.init must be a boolean (true or false)",
    ]


def test_integer_fields_read_decimal_strings_as_compose_does() -> None:
    p = project(
        "services:\n  web:\n    image: x\n    scale: ${N}\n    pids_limit: '100'\n"
        "    healthcheck: {retries: 2.0}\n    ulimits: {nofile: '1024'}\n",
        env={"N": "3"},
    )
    web = p.services["web"]
    assert (web["scale"], web["pids_limit"], web["healthcheck"]["retries"]) == (3, 100, 2)
    assert web["ulimits"] == {"nofile": {"soft": 1024, "hard": 1024}}
    errs = errors_of("services:\n  web:\n    image: x\n    scale: '0x2'\n")
    assert errs == ["compose.yaml:4:12: services.web.scale must be an integer"]


def test_keys_must_be_strings() -> None:
    errs = errors_of("services:\n  web:\n    image: x\n    environment:\n      1: one\n")
    assert errs == [
        "compose.yaml:5:7: services.web.environment: key 1 is an integer, not a string: quote it"
    ]
    errs = errors_of("services:\n  web:\n    image: x\n    labels: {true: x}\n")
    assert errs == [
        "compose.yaml:4:14: services.web.labels: key true is a boolean, not a string: quote it"
    ]
    # yes/on are strings, so fine as keys; a quoted number too
    assert environment("yes: 1\n'2': two") == {"yes": "1", "2": "two"}


def test_explicit_tags_hold_the_value_to_their_type() -> None:
    assert environment("A: !!int '12'\nB: !!str 0755\nC: !!float 2\nD: !!binary aGk=") == {
        "A": "12",
        "B": "0755",
        "C": "2",
        "D": "hi",
    }
    errs = errors_of("services:\n  a:\n    image: x\n    environment:\n      A: !!int abc\n")
    assert errs == ["compose.yaml:5:10: invalid YAML: cannot decode !!str `abc` as a !!int"]
    errs = errors_of("services:\n  a:\n    image: x\n    read_only: !!bool yes\n")
    assert errs == ["compose.yaml:4:16: invalid YAML: cannot decode !!str `yes` as a !!bool"]


def test_compose_merge_tags_are_refused_by_name() -> None:
    errs = errors_of("services:\n  a:\n    image: x\n    ports: !reset []\n")
    assert errs == [
        "compose.yaml:4:12: invalid YAML: the !reset tag is not supported by corral yet"
    ]


def test_tmpfs_mode_is_a_number_as_compose_reads_it() -> None:
    """A number is the mode: `01777` (YAML 1.1 octal) and `0o1777` mean 0o1777, but a
    bare `1777` is decimal, 0o3361, as in compose. A string is octal digits."""

    def mode(value: str) -> int:
        p = project(
            "services:\n  a:\n    image: x\n    volumes:\n"
            f"      - {{type: tmpfs, target: /t, tmpfs: {{mode: {value}}}}}\n"
        )
        _, body = create_body(p, "a", 1)
        return int(body["HostConfig"]["Mounts"][0]["TmpfsOptions"]["Mode"])

    assert mode("01777") == 0o1777
    assert mode("0o1777") == 0o1777
    assert mode("'1777'") == 0o1777
    assert mode("1777") == 1777
    errs = errors_of(
        "services:\n  a:\n    image: x\n    volumes:\n"
        "      - {type: tmpfs, target: /t, tmpfs: {mode: '0999'}}\n"
    )
    assert errs == ["compose.yaml:5:49: invalid tmpfs mode '0999': expected octal digits"]


def test_config_output_quotes_strings_compose_would_read_as_numbers() -> None:
    """`compose config` prints the model; read again (by compose or corral) it must mean
    the same: `'0o17'` and `'1e3'` stay quoted although YAML 1.1 has no such numbers."""
    p = project(
        "services:\n  a:\n    image: x\n    environment:\n"
        "      A: '0o17'\n      B: '08'\n      C: '1e3'\n      D: '22:22'\n      E: 0o17\n"
    )
    text = dump_yaml(p.model)
    assert "A: '0o17'" in text and "E: '15'" in text
    again, _ = load_yaml(text, "config.yaml")
    assert again == p.model
