"""IPv6 on user networks (`network create --ipv6 --subnet V6`, `--ip6`), as docker-py
and compose use it: both families' IPAM, the addresses on real interfaces, Docker's
inspect shapes.  The tests talk only to addresses they made (their own ULA subnets)."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path
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


def test_ipv6_on_the_default_bridge_from_daemon_yaml_across_a_restart(
    private_daemon: Any, rootfs_tar: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """dockerd's `ipv6: true` + `fixed-cidr-v6` in daemon.yaml: the default bridge's v6
    subnet, addresses and default route in its containers; after a kill -9 and a
    restart none is held twice; `ipv6: false` at the next start takes it away."""
    conf = tmp_path / "daemon.yaml"
    conf.write_text("ipv6: true\nfixed-cidr-v6: fd00:c0ff:ee0d::/64\n")
    monkeypatch.setenv("CORRAL_CONFIG", str(conf))
    d = private_daemon()
    dk = d.client()
    dk.api.import_image_from_data(rootfs_tar.read_bytes(), repository="busybox", tag="latest")
    view = dk.api.inspect_network("bridge")
    assert view["EnableIPv6"] is True
    assert {"Subnet": "fd00:c0ff:ee0d::/64", "Gateway": "fd00:c0ff:ee0d::1"} in view["IPAM"][
        "Config"]  # fmt: skip
    k1 = dk.containers.run(IMAGE, "sleep 1d", detach=True, name="k1")
    ep = dk.api.inspect_container("k1")["NetworkSettings"]["Networks"]["bridge"]
    assert (ep["GlobalIPv6Address"], ep["GlobalIPv6PrefixLen"], ep["IPv6Gateway"]) == (
        "fd00:c0ff:ee0d::2", 64, "fd00:c0ff:ee0d::1")  # fmt: skip
    assert "fd00:c0ff:ee0d::2/64" in k1.exec_run("ip -6 -o addr show dev eth0").output.decode()
    assert "via fd00:c0ff:ee0d::1" in k1.exec_run("ip -6 route show default").output.decode()
    ping = k1.exec_run("ping -c 1 -W 5 fd00:c0ff:ee0d::1")
    assert ping.exit_code == 0, ping.output
    with pytest.raises(docker.errors.APIError, match="user defined networks only"):
        ep_cfg = dk.api.create_endpoint_config(ipv6_address="fd00:c0ff:ee0d::9")
        dk.api.create_container(
            IMAGE, "true", networking_config=dk.api.create_networking_config({"bridge": ep_cfg})
        )
    dk.close()
    d.proc.send_signal(signal.SIGKILL)
    d.proc.wait()
    d = private_daemon()
    dk = d.client()
    dk.containers.run(IMAGE, "sleep 1d", detach=True, name="k2")
    dk.containers.get("k1").start()
    six = {n: dk.api.inspect_container(n)["NetworkSettings"]["Networks"]["bridge"][
        "GlobalIPv6Address"] for n in ("k1", "k2")}  # fmt: skip
    assert all(a.startswith("fd00:c0ff:ee0d::") for a in six.values())
    assert six["k1"] != six["k2"]
    for c in dk.containers.list(all=True):
        c.remove(force=True)
    dk.close()
    from conftest import stop_daemon

    stop_daemon(d.proc)
    conf.write_text("ipv6: false\n")
    d = private_daemon()
    dk = d.client()
    assert dk.api.inspect_network("bridge")["EnableIPv6"] is False
    c = dk.containers.run(IMAGE, "sleep 1d", detach=True, name="k3")
    assert dk.api.inspect_container("k3")["NetworkSettings"]["Networks"]["bridge"][
        "GlobalIPv6Address"] == ""  # fmt: skip
    c.remove(force=True)
    dk.close()


def test_the_store_refuses_one_ipv6_address_twice(tmp_path: Path) -> None:
    """The final guard, as the IPv4 one: a unique index on running endpoints' ip6."""
    from supervisor.errors import Conflict
    from supervisor.metadata.database import Database
    from supervisor.metadata.networks import Endpoint, Network, NetworkStore

    store = NetworkStore(Database(tmp_path / "t.db"))
    store.add(Network("n1", "six", "10.9.0.0/24", "10.9.0.1", "cr-x", "now",
                      subnet6="fd00:c0ff:ee0e::/64", gateway6="fd00:c0ff:ee0e::1"))  # fmt: skip
    a, b, c = (Endpoint(cid, "n1", cid) for cid in ("a", "b", "c"))
    for ep in (a, b, c):
        store.add_endpoint(ep)
    a.ip, a.ip6 = "10.9.0.2", "fd00:c0ff:ee0e::2"
    store.save_endpoint(a)
    b.ip, b.ip6 = "10.9.0.3", "fd00:c0ff:ee0e::2"
    with pytest.raises(Conflict, match="Address already in use: fd00:c0ff:ee0e::2"):
        store.save_endpoint(b)
    a.ip, a.ip6 = "", ""  # released: the address is free again
    store.save_endpoint(a)
    store.save_endpoint(b)
    c.ip6 = "fd00:c0ff:ee0e::2"  # a stopped one's stale ip6 holds nothing
    store.save_endpoint(c)
