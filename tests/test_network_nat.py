"""This host's connections to published ports, DNATed by the kernel (network/nat.py).

What a user sees: a published port answers on 127.0.0.1 and the host's addresses as
before, keeps answering this host while the daemon is down (kill -9: the containers
live on), and a container still cannot reach the host's loopback services, although
its bridge now routes 127.0.0.1 (`route_localnet`).  What is left behind is checked
as the other network tests do: the daemon's table has no rule of a removed container,
a stopped daemon leaves no table, and a table whose root is gone is swept.  Only
127.0.0.1, this host's bridges and the containers the tests made are talked to.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import Daemon, stop_daemon
from test_network_containers import free_port, nftables_works, our_dnat_rules, wait_http, web

from supervisor.network import nat

IMAGE = "busybox:latest"

pytestmark = pytest.mark.skipif(not nftables_works(), reason="no nftables here")


def table_rules(root: Path) -> list[str] | None:
    """The rules of the daemon's table, one line each; None when it has none."""
    out = subprocess.run(["nft", "list", "table", "ip", nat.table_name(root)],
                         capture_output=True, text=True)
    if out.returncode != 0:
        return None
    return [line.strip() for line in out.stdout.splitlines()
            if "dnat to" in line or "masquerade" in line or " drop" in line]


def dnat_rules(root: Path) -> list[str]:
    return our_dnat_rules(root)


def address_of(dk: Any, cid: str) -> str:
    return str(dk.api.inspect_container(cid)["NetworkSettings"]["IPAddress"])


def bridge_of(dk: Any) -> str:
    return str(dk.networks.get("bridge").attrs["Options"]["com.docker.network.bridge.name"])


def test_a_published_port_takes_this_hosts_connections_by_dnat(
        corral: Daemon, dk: Any) -> None:
    port = free_port()
    cid = web(corral, "--hostname", "natweb", "-p", f"{port}:80")
    loopback = free_port()
    cid2 = web(corral, "--hostname", "loweb", "-p", f"127.0.0.1:{loopback}:80")
    assert wait_http(port).strip() == "natweb"
    assert wait_http(loopback).strip() == "loweb"
    assert sorted(dnat_rules(corral.root)) == sorted([
        f"fib daddr type local tcp dport {port} dnat to {address_of(dk, cid)}:80",
        f"ip daddr 127.0.0.1 tcp dport {loopback} dnat to {address_of(dk, cid2)}:80",
    ])
    bridge = bridge_of(dk)
    assert Path(f"/proc/sys/net/ipv4/conf/{bridge}/route_localnet").read_text().strip() == "1"
    assert 'iifname != "lo" ip daddr 127.0.0.0/8 drop' in (table_rules(corral.root) or [])
    corral.docker("rm", "-f", cid, check=True)
    assert dnat_rules(corral.root) == [
        f"ip daddr 127.0.0.1 tcp dport {loopback} dnat to {address_of(dk, cid2)}:80"]
    with pytest.raises(OSError):  # nothing answers the removed one's port any more
        socket.create_connection(("127.0.0.1", port), timeout=5).close()


def test_userland_proxy_true_makes_no_rule(private_daemon: Any, rootfs_tar: Path) -> None:
    d = private_daemon("--userland-proxy")
    dk = d.client()
    dk.api.import_image_from_data(rootfs_tar.read_bytes(), repository="busybox", tag="latest")
    port = free_port()
    web(d, "--hostname", "relayed", "-p", f"{port}:80")
    assert wait_http(port).strip() == "relayed"  # through the relay alone
    assert table_rules(d.root) is None


def test_the_port_answers_this_host_while_the_daemon_is_down(
        private_daemon: Any, rootfs_tar: Path) -> None:
    """Docker's live restore keeps containers; with the rule in the kernel their ports
    keep answering this host too, not only after the next daemon adopts them."""
    d = private_daemon()
    dk = d.client()
    dk.api.import_image_from_data(rootfs_tar.read_bytes(), repository="busybox", tag="latest")
    port = free_port()
    cid = web(d, "--hostname", "alive", "-p", f"{port}:80")
    assert wait_http(port).strip() == "alive"
    d.proc.send_signal(signal.SIGKILL)
    d.proc.wait()
    assert wait_http(port).strip() == "alive"  # no daemon: answered by the rule
    d = private_daemon()
    dk = d.client()
    assert dnat_rules(d.root) == [
        f"fib daddr type local tcp dport {port} dnat to {address_of(dk, cid)}:80"]
    dk.containers.get(cid).remove(force=True)
    assert dnat_rules(d.root) == []
    stop_daemon(d.proc)
    assert table_rules(d.root) is None  # a stopped daemon leaves no table


CRAFT = r"""
import socket, struct, sys
bridge_mac, dst, port = bytes.fromhex(sys.argv[1].replace(":", "")), sys.argv[2], int(sys.argv[3])
src = sys.argv[4]
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("eth0", 0))
payload = b"from the container"
udp = struct.pack("!HHHH", 40000, port, 8 + len(payload), 0) + payload
ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0,
                 socket.inet_aton(src), socket.inet_aton(dst))
words = struct.unpack("!10H", ip)
total = sum(words)
total = (total >> 16) + (total & 0xFFFF)
total += total >> 16
ip = ip[:10] + struct.pack("!H", ~total & 0xFFFF) + ip[12:]
s.send(bridge_mac + s.getsockname()[4] + b"\x08\x00" + ip + udp)
"""


def send_from_container(pid: int, bridge_mac: str, dst: str, port: int, src: str) -> None:
    """A UDP datagram for dst:port, framed by hand inside the container's network
    namespace (as a process of it with NET_RAW, a default capability, can) and sent
    to the bridge's MAC, whatever the container's routes say."""
    subprocess.run(["nsenter", f"--net=/proc/{pid}/ns/net", sys.executable, "-c", CRAFT,
                    bridge_mac, dst, str(port), src], check=True, timeout=30)


def received(sock: socket.socket) -> bytes | None:
    sock.settimeout(2.0)  # the frame was sent before: this bounds a wait for nothing
    try:
        return sock.recv(100)
    except TimeoutError:
        return None


def test_a_container_cannot_reach_the_hosts_loopback_through_its_bridge(
        corral: Daemon, dk: Any) -> None:
    port = free_port()
    cid = web(corral, "-p", f"{port}:80")  # the bridge has a DNAT rule: route_localnet on
    assert wait_http(port)
    bridge = bridge_of(dk)
    assert Path(f"/proc/sys/net/ipv4/conf/{bridge}/route_localnet").read_text().strip() == "1"
    pid = int(dk.api.inspect_container(cid)["State"]["Pid"])
    mac = Path(f"/sys/class/net/{bridge}/address").read_text().strip()
    gateway = dk.api.inspect_container(cid)["NetworkSettings"]["Gateway"]
    me = address_of(dk, cid)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as lo, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as gw:
        lo.bind(("127.0.0.1", 0))
        gw.bind((gateway, 0))
        # the same frame to the bridge's own address arrives: the path works
        send_from_container(pid, mac, gateway, gw.getsockname()[1], me)
        assert received(gw) == b"from the container"
        send_from_container(pid, mac, "127.0.0.1", lo.getsockname()[1], me)
        assert received(lo) is None


def test_render_loads_and_a_table_of_a_gone_root_is_swept(tmp_path: Path) -> None:
    """The rendered script is what `nft` takes; a daemon's table whose root was
    deleted (killed, root removed) goes with `corral daemon --cleanup`."""
    root = tmp_path / "gone-root"
    root.mkdir()
    name = nat.table_name(root)
    script = nat.render(name, str(root.resolve()), [
        nat.Forward("", 8080, "10.255.3.2", 80, "cr-test0"),
        nat.Forward("127.0.0.1", 8081, "10.255.3.3", 81, "cr-test0"),
    ])
    subprocess.run(["nft", "-f", "-"], input=script, text=True, check=True)
    try:
        listed = subprocess.run(["nft", "list", "table", "ip", name],
                                capture_output=True, text=True, check=True).stdout
        assert nat.owner_of(listed) == str(root.resolve())
        as_json = subprocess.run(["nft", "-j", "list", "table", "ip", name],
                                 capture_output=True, text=True, check=True).stdout
        rules = [r for r in json.loads(as_json)["nftables"] if "rule" in r]
        assert len(rules) == 4  # the guard, two forwards, one masquerade
        swept = subprocess.run([sys.executable, "-m", "supervisor.daemon", "--cleanup"],
                               capture_output=True, text=True, check=True).stdout.split()
        assert name not in swept  # its root is there: another daemon's, left alone
        os.rmdir(root)
        swept = subprocess.run([sys.executable, "-m", "supervisor.daemon", "--cleanup"],
                               capture_output=True, text=True, check=True).stdout.split()
        assert name in swept
        assert subprocess.run(["nft", "list", "table", "ip", name],
                              capture_output=True).returncode != 0
    finally:
        subprocess.run(["nft", "delete", "table", "ip", name], capture_output=True)


def test_render_writes_nothing_nft_would_read_as_syntax() -> None:
    """A root or bridge name that nft would read as more than a string is not written:
    the table has no comment (never swept), the port keeps the relay."""
    script = nat.render("corral_x", '/tmp/a"; flush ruleset; "', [])
    assert "flush ruleset" not in script and "comment" not in script
    subprocess.run(["nft", "-c", "-f", "-"], input=script, text=True, check=True)
    assert not nat.kernel_can_forward("tcp", "", "10.0.0.2", 'br"; flush ruleset; "')
    assert not nat.kernel_can_forward("udp", "", "10.0.0.2", "cr-x")
    assert not nat.kernel_can_forward("tcp", "::1", "10.0.0.2", "cr-x")
    assert not nat.kernel_can_forward("tcp", "", "", "cr-x")
    assert not nat.kernel_can_forward("tcp", "", "10.0.0.2", "")
    assert nat.kernel_can_forward("tcp", "127.0.0.1", "10.0.0.2", "cr-x")
