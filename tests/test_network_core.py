"""Pure cores of networking: IPAM, published-port requests, hosts and resolv.conf."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

import pytest

from supervisor.errors import Conflict, InvalidArgument
from supervisor.network import etcfiles, ipam
from supervisor.network.ports import (
    PortRequest,
    Published,
    parse_port_key,
    ports_summary,
    ports_view,
    requests_from,
)

N = IPv4Network


def test_pick_subnet_skips_routed_and_taken() -> None:
    pools = ipam.DEFAULT_POOLS
    assert ipam.pick_subnet(pools, []) == N("172.17.0.0/16")
    # a host route inside 172.17/16 and another network on 172.18/16 are both skipped
    assert ipam.pick_subnet(pools, [N("172.17.5.0/24"), N("172.18.0.0/16")]) == N("172.19.0.0/16")


def test_pick_subnet_moves_to_next_pool_and_fails_when_exhausted() -> None:
    pools = ipam.parse_pools("base=10.10.0.0/23,size=24;base=10.20.0.0/24,size=24")
    assert ipam.pick_subnet(pools, [N("10.10.0.0/23")]) == N("10.20.0.0/24")
    with pytest.raises(Conflict, match="non-overlapping"):
        ipam.pick_subnet(pools, [N("10.0.0.0/8")])


@pytest.mark.parametrize("text", ["", "base=nope,size=24", "base=10.0.0.0/16,size=8"])
def test_bad_pools_are_refused(text: str) -> None:
    with pytest.raises(InvalidArgument):
        ipam.parse_pools(text)


def test_overlapping_subnet_names_the_owner() -> None:
    with pytest.raises(Conflict, match="network web has 10.1.0.0/16"):
        ipam.check_subnet_free(N("10.1.2.0/24"), {"network web": N("10.1.0.0/16")})
    ipam.check_subnet_free(N("10.2.0.0/24"), {"network web": N("10.1.0.0/16")})


def test_addresses_are_sequential_skip_used_and_gateway_and_wrap() -> None:
    net, gw = N("10.0.0.0/29"), IPv4Address("10.0.0.1")  # hosts .1-.6, gateway .1
    assert ipam.next_address(net, gw, set(), None) == IPv4Address("10.0.0.2")
    # after .2 was handed out, .3 comes next even though .2 is free again (no quick reuse)
    assert ipam.next_address(net, gw, set(), IPv4Address("10.0.0.2")) == IPv4Address("10.0.0.3")
    used = {IPv4Address("10.0.0.6"), IPv4Address("10.0.0.2")}
    assert ipam.next_address(net, gw, used, IPv4Address("10.0.0.5")) == IPv4Address("10.0.0.3")
    full = {IPv4Address(f"10.0.0.{i}") for i in range(2, 7)}
    with pytest.raises(Conflict, match="no available"):
        ipam.next_address(net, gw, full, None)


def test_requested_address_checks() -> None:
    net, gw = N("10.5.0.0/24"), IPv4Address("10.5.0.1")
    assert ipam.check_requested("10.5.0.9", net, gw, set(), "n") == IPv4Address("10.5.0.9")
    with pytest.raises(InvalidArgument, match="not in subnet 10.5.0.0/24"):
        ipam.check_requested("10.6.0.9", net, gw, set(), "n")
    with pytest.raises(InvalidArgument, match="not in subnet"):
        ipam.check_requested("10.5.0.255", net, gw, set(), "n")
    with pytest.raises(Conflict, match="already in use"):
        ipam.check_requested("10.5.0.9", net, gw, {IPv4Address("10.5.0.9")}, "n")
    with pytest.raises(Conflict, match="already in use"):
        ipam.check_requested("10.5.0.1", net, gw, set(), "n")
    with pytest.raises(InvalidArgument, match="invalid IPv4"):
        ipam.check_requested("10.5.0", net, gw, set(), "n")


def test_gateway_must_be_inside() -> None:
    assert ipam.parse_gateway("10.5.0.254", N("10.5.0.0/24")) == IPv4Address("10.5.0.254")
    with pytest.raises(InvalidArgument):
        ipam.parse_gateway("10.6.0.1", N("10.5.0.0/24"))


def test_port_requests_from_bindings_and_publish_all() -> None:
    reqs = requests_from(
        {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}], "53/udp": [{"HostPort": ""}]},
        True,
        ["80/tcp", "443/tcp"],
    )
    assert reqs == [
        PortRequest(80, "tcp", "127.0.0.1", 8080, 8080),
        PortRequest(53, "udp", "", 0, 0),
        PortRequest(443, "tcp", "", 0, 0),
    ]
    assert requests_from({"90": [{"HostPort": "9000-9010"}]}, False, [])[0].host_hi == 9010


@pytest.mark.parametrize(
    "bindings",
    [
        {"abc/tcp": [{}]},
        {"80/sctp": [{}]},
        {"80/tcp": [{"HostPort": "70000"}]},
        {"80/tcp": [{"HostPort": "x"}]},
        {"80/tcp": [{"HostPort": "90-80"}]},
        {"80/tcp": [{"HostIp": "not-an-ip", "HostPort": "1"}]},
    ],
)
def test_malformed_port_bindings_are_refused(bindings: dict[str, list[dict[str, str]]]) -> None:
    with pytest.raises(InvalidArgument):
        requests_from(bindings, False, [])


def test_one_host_port_twice_in_a_container_is_refused() -> None:
    with pytest.raises(Conflict, match="0.0.0.0:8080"):
        requests_from(
            {"80/tcp": [{"HostPort": "8080"}], "81/tcp": [{"HostPort": "8080"}]}, False, []
        )
    # same number on tcp and udp is fine, as in Docker
    requests_from({"80/tcp": [{"HostPort": "8080"}], "80/udp": [{"HostPort": "8080"}]}, False, [])


def test_port_key_defaults_to_tcp() -> None:
    assert parse_port_key("80") == (80, "tcp")
    assert parse_port_key("53/UDP") == (53, "udp")


def test_ports_views_as_docker_shows_them() -> None:
    pub = [Published(80, "tcp", "", 32768), Published(53, "udp", "127.0.0.1", 5353)]
    view = ports_view(pub, ["80/tcp", "53/udp", "443/tcp"])
    assert view == {
        "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "32768"}],
        "53/udp": [{"HostIp": "127.0.0.1", "HostPort": "5353"}],
        "443/tcp": None,
    }
    assert ports_summary(pub, ["443/tcp"]) == [
        {"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 32768, "Type": "tcp"},
        {"IP": "127.0.0.1", "PrivatePort": 53, "PublicPort": 5353, "Type": "udp"},
        {"PrivatePort": 443, "Type": "tcp"},
    ]


def test_hosts_file_lists_self_peers_and_extra_hosts() -> None:
    text = etcfiles.render_hosts(
        [etcfiles.HostEntry("10.1.0.2", ("web",))],
        [etcfiles.HostEntry("10.1.0.3", ("db", "database", "abcdef012345"))],
        ["gw:host-gateway", "other=1.2.3.4"],
        host_gateway="10.1.0.1",
    )
    lines = text.splitlines()
    assert lines[0] == "127.0.0.1\tlocalhost"
    assert "10.1.0.1\tgw" in lines and "1.2.3.4\tother" in lines
    assert "10.1.0.2\tweb" in lines
    assert "10.1.0.3\tdb database abcdef012345" in lines


def test_resolv_conf_drops_loopback_and_honours_dns_flags() -> None:
    host = "nameserver 127.0.0.53\nnameserver 9.9.9.9\nsearch corp\noptions edns0\n"
    assert etcfiles.render_resolv(host) == "nameserver 9.9.9.9\nsearch corp\noptions edns0\n"
    only_loopback = "nameserver 127.0.0.53\n"
    assert "nameserver 8.8.8.8" in etcfiles.render_resolv(only_loopback)
    out = etcfiles.render_resolv(host, dns=["1.1.1.1"], search=["a.b"], options=["ndots:2"])
    assert out == "nameserver 1.1.1.1\nsearch a.b\noptions ndots:2\n"
