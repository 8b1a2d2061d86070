"""The run flags of Docker's security defaults, applied as Docker applies them.

`--cap-add`/`--cap-drop` (ALL, with or without CAP_, any case), seen from inside
containers through the docker CLI, docker-py, corral's CLI and compose; every bad
input a clear error with nothing made.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import docker
import pytest
from conftest import Daemon

IMAGE = "busybox:latest"
CAP_CHOWN, CAP_NET_BIND_SERVICE, CAP_NET_ADMIN = 1 << 0, 1 << 10, 1 << 12
DEFAULT_CAPS = 0xA80425FB


def ok(corral: Daemon, *args: str) -> str:
    r = corral.docker(*args)
    assert r.returncode == 0, f"docker {' '.join(args)} -> {r.returncode}: {r.stderr}"
    return r.stdout


def cap_eff(out: str | bytes) -> int:
    text = out.decode() if isinstance(out, bytes) else out
    for line in text.splitlines():
        if line.startswith("CapEff:"):
            return int(line.split()[1], 16)
    raise AssertionError(f"no CapEff in {text!r}")


def bounding() -> int:
    """The daemon's (this root test's) bounding set: what `ALL` gives."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapBnd:"):
            return int(line.split()[1], 16)
    raise AssertionError("no CapBnd")


# ------------------------------------------------------------ --cap-add / --cap-drop
def test_cap_drop_all_then_add_one(corral: Daemon) -> None:
    script = "grep CapEff /proc/self/status; chown 1:1 /tmp && echo chowned; true"
    out = ok(corral, "run", "--rm", "--cap-drop", "ALL", "--cap-add", "NET_BIND_SERVICE",
             IMAGE, "sh", "-c", script)
    assert cap_eff(out) == CAP_NET_BIND_SERVICE
    assert "chowned" not in out  # no CAP_CHOWN: even root may not give a file away
    r = corral.docker("run", "--rm", "--cap-drop", "ALL", IMAGE, "chown", "1:1", "/tmp")
    assert r.returncode == 1
    assert "Operation not permitted" in r.stderr
    # with the defaults root may chown
    assert ok(corral, "run", "--rm", IMAGE, "sh", "-c", script).endswith("chowned\n")


def test_capability_names_in_any_case_with_or_without_cap(corral: Daemon) -> None:
    for name in ("net_admin", "CAP_NET_ADMIN", "cap_Net_Admin", "NET_ADMIN"):
        out = ok(corral, "run", "--rm", "--cap-add", name, "--cap-drop", "chown", IMAGE,
                 "grep", "CapEff", "/proc/self/status")
        assert cap_eff(out) == (DEFAULT_CAPS | CAP_NET_ADMIN) & ~CAP_CHOWN, name
    r = corral.cli("run", "--rm", "--cap-drop", "all", "--cap-add", "cap_net_bind_service",
                   IMAGE, "grep", "CapEff", "/proc/self/status")
    assert cap_eff(r.stdout) == CAP_NET_BIND_SERVICE, r.stderr


def test_docker_py_capabilities_and_a_lone_string(dk: Any, corral: Daemon) -> None:
    out = dk.containers.run(IMAGE, ["grep", "CapEff", "/proc/self/status"],
                            cap_drop=["ALL"], cap_add=["chown"], remove=True)
    assert cap_eff(out) == CAP_CHOWN
    # A lone string is a list of one, as Docker's StrSlice reads it: "ALL", not A, L, L
    cid = dk.api.create_container(IMAGE, ["grep", "CapEff", "/proc/self/status"],
                                  host_config={"CapAdd": "ALL"})["Id"]
    assert dk.api.inspect_container(cid)["HostConfig"]["CapAdd"] == ["ALL"]
    dk.api.start(cid)
    assert dk.api.wait(cid, timeout=30)["StatusCode"] == 0
    assert cap_eff(dk.api.logs(cid)) == bounding()
    dk.api.remove_container(cid)


@pytest.mark.parametrize("value", [5, {"ALL": True}, ["CHOWN", 7]])
def test_capabilities_not_a_list_of_names_are_a_400(dk: Any, value: Any) -> None:
    with pytest.raises(docker.errors.APIError) as err:
        dk.api.create_container(IMAGE, ["true"], host_config={"CapAdd": value})
    assert err.value.status_code == 400
    assert "CapAdd" in str(err.value)
    assert dk.containers.list(all=True) == []


def test_compose_cap_add_and_cap_drop(corral: Daemon, tmp_path: Path) -> None:
    file = tmp_path / "compose.yaml"
    file.write_text(
        "name: caps\nservices:\n  a:\n    image: busybox\n"
        "    command: [grep, CapEff, /proc/self/status]\n"
        "    cap_drop: [ALL]\n    cap_add: [net_bind_service, CAP_CHOWN]\n"
    )
    r = corral.cli("compose", "-f", str(file), "up")
    assert r.returncode == 0, r.stderr
    assert cap_eff(r.stdout.split("|")[-1].strip()) == CAP_NET_BIND_SERVICE | CAP_CHOWN, r.stdout
    assert corral.cli("compose", "-f", str(file), "down").returncode == 0
