"""Dockerfile numbers are ASCII digits: `EXPOSE ²` and `STOPSIGNAL ²` are refused by name.

`str.isdigit` accepts `²`, which `int` then refuses with a ValueError (a 500 for the
build); the fuzz suite found it.  Docker's parser takes ASCII digits only.
"""

from __future__ import annotations

import pytest

from supervisor.build.builder import _check_signal, _port_key
from supervisor.errors import InvalidArgument


@pytest.mark.parametrize("port", ["²", "80-²", "٣٠"])
def test_expose_refuses_non_ascii_digits(port: str) -> None:
    with pytest.raises(InvalidArgument, match="invalid containerPort"):
        _port_key(port)


def test_expose_keeps_ascii_ports() -> None:
    assert _port_key("8080-8081/UDP") == "8080-8081/udp"


def test_stopsignal_refuses_non_ascii_digits() -> None:
    with pytest.raises(InvalidArgument, match="Invalid signal: ²"):
        _check_signal("²")
    _check_signal("9")
    _check_signal("term")
