"""The API's body schema (`supervisor/api/schema.py`), without a daemon.

The expected messages are dockerd 28's: Go's encoding/json wording, which names the
innermost struct, the field path from the top and the Go type.
"""

from __future__ import annotations

from typing import Any

import pytest

from supervisor.api import schema, types
from supervisor.errors import InvalidArgument


def refused(text: str, check: Any = schema.check_create) -> str:
    with pytest.raises(InvalidArgument) as e:
        check(schema.parse_json(text.encode()))
    return e.value.message


GO = "invalid JSON: json: cannot unmarshal "


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('{"Cmd": [1, 2]}', "array into Go struct field CreateRequest.Cmd of type string"),
        ('{"Cmd": 5}', "number into Go struct field CreateRequest.Cmd of type string"),
        ('{"Env": "A=1"}', "string into Go struct field CreateRequest.Env of type []string"),
        ('{"Env": [1]}', "number into Go struct field CreateRequest.Env of type string"),
        (
            '{"HostConfig": {"CapAdd": {}}}',
            "object into Go struct field HostConfig.HostConfig.CapAdd of type string",
        ),
        (
            '{"HostConfig": {"Memory": "1g"}}',
            "string into Go struct field HostConfig.HostConfig.Memory of type int64",
        ),
        (
            '{"HostConfig": {"Memory": 1e3}}',
            "number 1e3 into Go struct field HostConfig.HostConfig.Memory of type int64",
        ),
        (
            '{"HostConfig": {"BlkioWeight": -1}}',
            "number -1 into Go struct field HostConfig.HostConfig.BlkioWeight of type uint16",
        ),
        (
            '{"HostConfig": {"Mounts": [{"Type": 5}]}}',
            "number into Go struct field Mount.HostConfig.Mounts.Type of type mount.Type",
        ),
        (
            '{"HostConfig": {"NetworkMode": true}}',
            "bool into Go struct field HostConfig.HostConfig.NetworkMode"
            " of type container.NetworkMode",
        ),
        (
            '{"HostConfig": {"Ulimits": [{"Soft": "1"}]}}',
            "string into Go struct field Ulimit.HostConfig.Ulimits.Soft of type int64",
        ),
        ('{"HostConfig": 1}', "number into Go struct field CreateRequest.HostConfig"),
        ("[]", "array into Go value of type container.CreateRequest"),
    ],
)
def test_type_mismatch_messages_are_gos(body: str, message: str) -> None:
    assert refused(body).startswith(GO + message)


def test_other_bodies_name_their_go_struct() -> None:
    update = lambda b: schema.check(b, types.UPDATE_CONFIG)  # noqa: E731
    assert refused('{"Memory": "x"}', update) == (
        GO + "string into Go struct field UpdateConfig.Memory of type int64"
    )
    assert refused('{"Cmd": "ls"}', schema.check_exec) == (
        GO + "string into Go struct field ExecOptions.Cmd of type []string"
    )
    volume = lambda b: schema.check(b, types.VOLUME_CREATE)  # noqa: E731
    assert refused('{"Labels": []}', volume) == (
        GO + "array into Go struct field CreateOptions.Labels of type map[string]string"
    )


def test_normalized_as_go_reads_it() -> None:
    body = schema.parse_json(
        b'{"image": "b", "cmd": "x", "HostConfig": {"capadd": "ALL", "Dns": [" 1.1.1.1 "]},'
        b' "Unknown": {"kept": 1}, "Labels": null, "OnBuild": ["a", null],'
        b' "Entrypoint": [null], "Volumes": {"/v": null}}'
    )
    assert schema.check_create(body) == {
        "Image": "b",
        "Cmd": ["x"],
        "HostConfig": {"CapAdd": ["ALL"], "Dns": ["1.1.1.1"]},
        "Unknown": {"kept": 1},
        "Labels": None,
        "OnBuild": ["a", ""],  # null elements are Go's zero values
        "Entrypoint": [""],
        "Volumes": {"/v": {}},
    }


@pytest.mark.parametrize(
    ("host_config", "message"),
    [
        ({"ExtraHosts": ["a:1.2.3.4\nb"]}, 'invalid IP address in add-host: "1.2.3.4\\nb"'),
        ({"ExtraHosts": ["a\nb:1.2.3.4"]}, 'bad format for add-host: "a\\nb:1.2.3.4"'),
        ({"ExtraHosts": ["x"]}, 'bad format for add-host: "x"'),
        (
            {"Dns": ["1.1.1.1\nnameserver 6.6.6.6"]},
            'IP address is not correctly formatted: "1.1.1.1\\nnameserver 6.6.6.6"',
        ),
        ({"DnsSearch": ["a\nb"]}, '"a\\nb" is not a valid domain'),
        ({"DnsOptions": ["a b"]}, 'invalid DNS option: "a b"'),
        ({"CapAdd": ["BOGUS"]}, 'invalid CapAdd: unknown capability: "BOGUS"'),
        ({"PortBindings": {"99999/tcp": None}}, 'invalid port specification: "99999"'),
    ],
)
def test_what_dockerd_checks_after_decoding(host_config: dict[str, Any], message: str) -> None:
    import json

    assert refused(json.dumps({"HostConfig": host_config})) == message


def test_accepted_values_pass() -> None:
    hc = {
        "ExtraHosts": ["db:10.0.0.1", "v6:::1", "gw:host-gateway"],
        "Dns": ["8.8.8.8", "2001:db8::1"],
        "DnsSearch": ["example.com", "."],
        "DnsOptions": ["ndots:2"],
        "CapAdd": ["net_admin", "CAP_SYS_TIME", "ALL"],
        "PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": "8000-8010"}]},
    }
    assert schema.check_create({"Image": "b", "HostConfig": hc})["HostConfig"] == hc


def test_json_is_read_as_dockerd_reads_it() -> None:
    for text in (b'{"a": NaN}', b'{"a": Infinity}', b"{", b"{} []", b'{"a":1,}'):
        with pytest.raises(InvalidArgument, match="^invalid JSON: "):
            schema.parse_json(text)
    for depth in (101, 5000, 200_000):
        with pytest.raises(InvalidArgument, match="nesting deeper than 100"):
            schema.parse_json(b"[" * depth + b"]" * depth)
    assert schema.parse_json(b"[" * 100 + b"]" * 100) is not None
    assert schema.parse_json(b'{"\\ud800": "\\udfff"}') == {"\ufffd": "\ufffd"}
