"""IPv6 on user networks (`network create --ipv6 --subnet V6`, `--ip6`), as docker-py
and compose use it: both families' IPAM, the addresses on real interfaces, Docker's
inspect shapes.  The tests talk only to addresses they made (their own ULA subnets)."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import docker
import pytest
from conftest import Daemon

IMAGE = "busybox:latest"
SUBNET6 = "fd00:c0ff:ee01::/64"


def ok(corral: Daemon, *args: str, cli: bool = False) -> str:
    r = corral.cli(*args) if cli else corral.docker(*args)
    assert r.returncode == 0, f"{' '.join(args)} -> {r.returncode}: {r.stderr}"
    return r.stdout


@pytest.mark.parametrize("cli", [False, True], ids=["docker", "corral"])
def test_ipv6_network_addresses_routes_and_inspect(corral: Daemon, dk: Any, cli: bool) -> None:
    ok(corral, "network", "create", "--ipv6", "--subnet", "10.77.0.0/24", "--subnet", SUBNET6,
       "six", cli=cli)  # fmt: skip
    view = json.loads(ok(corral, "network", "inspect", "six"))[0]
    assert view["EnableIPv6"] is True
    assert view["IPAM"]["Config"] == [
        {"Subnet": "10.77.0.0/24", "Gateway": "10.77.0.1"},
        {"Subnet": SUBNET6, "Gateway": "fd00:c0ff:ee01::1"},
    ]
    bridge = view["Options"]["com.docker.network.bridge.name"]
    host_addrs = subprocess.run(["ip", "-6", "-o", "addr", "show", "dev", bridge],
                                capture_output=True, text=True, check=True).stdout
    assert "fd00:c0ff:ee01::1/64" in host_addrs
    a = ok(corral, "run", "-d", "--network", "six", "--name", "aa", IMAGE, "sleep", "100",
           cli=cli).strip()  # fmt: skip
    b = ok(corral, "run", "-d", "--network", "six", "--ip6", "fd00:c0ff:ee01::99", "--name", "bb",
           IMAGE, "sleep", "100", cli=cli).strip()  # fmt: skip
    ep_a = dk.api.inspect_container(a)["NetworkSettings"]["Networks"]["six"]
    ep_b = dk.api.inspect_container(b)["NetworkSettings"]["Networks"]["six"]
    assert ep_a["GlobalIPv6Address"] == "fd00:c0ff:ee01::2"
    assert (ep_a["GlobalIPv6PrefixLen"], ep_a["IPv6Gateway"]) == (64, "fd00:c0ff:ee01::1")
    assert ep_b["GlobalIPv6Address"] == "fd00:c0ff:ee01::99"
    assert ep_b["IPAMConfig"] == {"IPv6Address": "fd00:c0ff:ee01::99"}
    addrs = ok(corral, "exec", a, "ip", "-6", "-o", "addr", "show", "dev", "eth0")
    assert "fd00:c0ff:ee01::2/64" in addrs
    route = ok(corral, "exec", a, "ip", "-6", "route", "show", "default")
    assert "via fd00:c0ff:ee01::1" in route
    ping = ok(corral, "exec", a, "ping", "-c", "1", "-W", "5", "fd00:c0ff:ee01::99")
    assert "1 packets received" in ping
    assert "fd00:c0ff:ee01::99\tbb" in ok(corral, "exec", a, "cat", "/etc/hosts")
    members = json.loads(ok(corral, "network", "inspect", "six"))[0]["Containers"]
    assert members[b]["IPv6Address"] == "fd00:c0ff:ee01::99/64"
    ok(corral, "rm", "-f", a, b)
    ok(corral, "network", "rm", "six")


def test_ipv6_through_docker_py_with_a_picked_subnet(dk: Any) -> None:
    net = dk.networks.create("picked6", enable_ipv6=True)
    configs = net.attrs["IPAM"]["Config"]
    assert len(configs) == 2 and configs[1]["Subnet"].startswith("fd")
    out = dk.containers.run(IMAGE, ["ip", "-6", "-o", "addr", "show", "dev", "eth0"],
                            network="picked6", remove=True).decode()  # fmt: skip
    assert configs[1]["Subnet"].rsplit("::", 1)[0] + "::2/64" in out


def test_ipv6_refusals(corral: Daemon, dk: Any) -> None:
    r = corral.docker("network", "create", "--subnet", SUBNET6, "nov6")
    assert r.returncode == 1 and "needs IPv6 enabled (--ipv6)" in r.stderr
    ok(corral, "network", "create", "--ipv6", "--subnet", SUBNET6, "one")
    r = corral.docker("network", "create", "--ipv6", "--subnet", "fd00:c0ff:ee01:0:1::/80", "two")
    assert r.returncode == 1 and "Pool overlaps with other one" in r.stderr
    ok(corral, "network", "create", "four")
    r = corral.docker("run", "--rm", "--network", "four", "--ip6", "fd00::5", IMAGE, "true")
    assert r.returncode == 125 and "has no IPv6 subnet" in r.stderr
    r = corral.docker("run", "--rm", "--network", "one", "--ip6", "fd00:1::5", IMAGE, "true")
    assert r.returncode == 125 and f"is not in subnet {SUBNET6}" in r.stderr
    with pytest.raises(docker.errors.APIError):
        dk.networks.create("bad6", enable_ipv6=True, ipam=docker.types.IPAMConfig(
            pool_configs=[docker.types.IPAMPool(subnet="fd00:zz::/64")]))  # fmt: skip
    names = {n.name for n in dk.networks.list()}
    assert names == {"bridge", "host", "none", "one", "four"}  # nothing half made


def test_connect_with_ip6(corral: Daemon, dk: Any) -> None:
    ok(corral, "network", "create", "--ipv6", "--subnet", SUBNET6, "later6")
    cid = ok(corral, "run", "-d", IMAGE, "sleep", "100").strip()
    ok(corral, "network", "connect", "--ip6", "fd00:c0ff:ee01::42", "later6", cid, cli=True)
    assert "fd00:c0ff:ee01::42/64" in ok(corral, "exec", cid, "ip", "-6", "-o", "addr")
    nets = dk.api.inspect_container(cid)["NetworkSettings"]["Networks"]
    assert nets["later6"]["GlobalIPv6Address"] == "fd00:c0ff:ee01::42"
    assert nets["bridge"]["GlobalIPv6Address"] == ""  # the default bridge has no IPv6


def _isolation6() -> tuple[str, str]:
    rules = subprocess.run(["ip", "-6", "rule", "show"], capture_output=True, text=True,
                           check=True).stdout  # fmt: skip
    routes = subprocess.run(["ip", "-6", "route", "show", "table", "25455"],
                            capture_output=True, text=True).stdout  # fmt: skip
    return rules, routes


def test_ipv6_networks_are_isolated_as_ipv4_ones(corral: Daemon) -> None:
    ok(corral, "network", "create", "--ipv6", "--subnet", SUBNET6, "iso6")
    bridge = json.loads(ok(corral, "network", "inspect", "iso6"))[0]["Options"][
        "com.docker.network.bridge.name"]  # fmt: skip
    rules, routes = _isolation6()
    assert f"iif {bridge} lookup 25455" in rules
    assert f"prohibit {SUBNET6}" in routes
    ok(corral, "network", "rm", "iso6")
    rules, routes = _isolation6()
    assert f"iif {bridge} " not in rules and SUBNET6 not in routes  # nothing left
