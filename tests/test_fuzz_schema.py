"""Fuzz the API's body validator at the edge (supervisor/api/schema.py): any bytes as
a create, exec, update or network-connect body give a checked dict or a 400
(`InvalidArgument`), never another exception; what passes a create holds strings
where the engine joins strings (Cmd, Entrypoint, Env, CapAdd...), and no newline
where it would become a line of /etc/hosts or resolv.conf."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fuzzing import case, fuzz
from hypothesis import example, given
from hypothesis import strategies as st

from supervisor.api.schema import (
    check_create,
    check_exec,
    check_network_connect,
    check_update,
    parse_json,
)
from supervisor.errors import InvalidArgument

CHECKS: dict[str, Callable[[Any], dict[str, Any]]] = {
    "create": check_create,
    "exec": check_exec,
    "update": check_update,
    "connect": check_network_connect,
}
FIELDS = ["Cmd", "Entrypoint", "Env", "Labels", "User", "WorkingDir", "ExposedPorts", "Tty",
          "StopSignal", "StopTimeout", "Healthcheck", "Image", "Volumes", "Hostname",
          "HostConfig", "NetworkingConfig", "AttachStdin", "Privileged", "Container",
          "EndpointConfig", "Memory", "RestartPolicy", "cmd", "CMD", "Bogus"]  # fmt: skip
HOST_FIELDS = ["Binds", "CapAdd", "CapDrop", "Memory", "PortBindings", "RestartPolicy",
               "ExtraHosts", "Dns", "Mounts", "Tmpfs", "SecurityOpt", "NetworkMode",
               "LogConfig", "Ulimits", "Devices", "Sysctls", "ShmSize"]  # fmt: skip
LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(-(2**65), 2**65)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from(["ALL", "a\nb", "1.2.3.4", "h:1.2.3.4", "80/tcp", "/a:/b:ro", "-1", ""])
    | st.text(max_size=8)
)
VALUES = st.recursive(
    LEAVES,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(HOST_FIELDS) | st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=10,
)

HOSTILE = [b"[" * 20_000, b'{"a":' * 20_000, b"NaN", b"\xff{}", b'{"Cmd": ["\\ud800"]}',
           b"1e999", b'"x"', b"{}{}"]  # fmt: skip


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    kind = draw(st.integers(0, 4))
    if kind == 0:
        return draw(st.binary(max_size=40))
    if kind == 1:
        return draw(st.sampled_from(HOSTILE))
    body: dict[str, Any] = {"Image": "busybox"}
    for field in draw(st.lists(st.sampled_from(FIELDS), max_size=4)):
        body[field] = draw(VALUES)
    if draw(st.booleans()):
        body["HostConfig"] = draw(st.dictionaries(st.sampled_from(HOST_FIELDS), VALUES, max_size=3))
    return json.dumps(body).encode()


def _strings(value: Any) -> bool:
    return value is None or (isinstance(value, list) and all(isinstance(v, str) for v in value))


@fuzz(ci_cases=500)
@given(st.sampled_from(sorted(CHECKS)), bodies())
@example("create", b'{"Image": "busybox", "Cmd": [1, 2]}')  # issue 12 §5: stored, broke ps
@example("create", b'{"Image": "busybox", "HostConfig": {"ExtraHosts": ["h\\n1.2.3.4"]}}')
@example("connect", b"[{}]")  # was a 500 through the daemon
def test_body_validator_any_bytes(which: str, raw: bytes) -> None:
    with case(f"api body ({which})", InvalidArgument) as fig:
        checked = CHECKS[which](parse_json(raw))
        assert isinstance(checked, dict)
        if which == "create":
            for field in ("Cmd", "Entrypoint", "Env"):
                assert _strings(checked.get(field)), (field, checked.get(field))
            hc = checked.get("HostConfig") or {}
            for field in ("CapAdd", "CapDrop", "Dns", "ExtraHosts", "Binds"):
                assert _strings(hc.get(field)), (field, hc.get(field))
            for field in ("Dns", "ExtraHosts"):
                assert not any("\n" in v for v in hc.get(field) or []), (field, hc.get(field))
    assert fig.cases
