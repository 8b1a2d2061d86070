"""Networks with real containers: published ports, names, isolation, exact cleanup.

Every test talks only to 127.0.0.1, the host's own addresses for the ports it published,
and the addresses of containers it made.  "Nothing left" is checked by comparing the
host's links, the daemon's namespaces, mounts and listening sockets before and after.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Daemon, kill_holder, stop_daemon
from pyroute2 import IPRoute  # type: ignore[import-untyped]

from supervisor.network import nat

IMAGE = "busybox:latest"


# ----------------------------------------------------------------- helpers
def links() -> set[str]:
    return set(os.listdir("/sys/class/net"))


def listening() -> set[tuple[str, str]]:
    """(proto, local address:port) of every listening TCP and bound UDP socket."""
    out = set()
    for proto, path in (("tcp", "/proc/net/tcp"), ("udp", "/proc/net/udp")):
        for line in Path(path).read_text().splitlines()[1:]:
            fields = line.split()
            if proto == "tcp" and fields[3] != "0A":  # LISTEN
                continue
            out.add((proto, fields[1]))
    return out


#: Every bridge name any network of a daemon (by state root) ever had, so a leak stays
#: visible after the network record is gone; other daemons on this host are ignored.
SEEN_BRIDGES: dict[str, set[str]] = {}


def our_links(dk: Any, root: Path) -> set[str]:
    """This daemon's bridges and every veth enslaved to one of them."""
    seen = SEEN_BRIDGES.setdefault(str(root), set())
    for n in dk.networks.list():
        if n.name not in ("host", "none"):
            seen.add(n.attrs["Options"]["com.docker.network.bridge.name"])
    out = set()
    for name in links():
        master = Path("/sys/class/net", name, "master")
        if name in seen or (master.exists() and master.resolve().name in seen):
            out.add(name)
    return out


def our_rules(root: Path) -> set[tuple[str, int]]:
    """(bridge, table) of every policy rule naming one of this daemon's bridges."""
    seen = SEEN_BRIDGES.setdefault(str(root), set())
    with IPRoute() as ipr:
        return {
            (str(r.get("iifname")), int(r.get("table")))
            for r in ipr.get_rules(family=socket.AF_INET)
            if r.get("iifname") in seen
        }


def nftables_works() -> bool:
    """nft is there and the kernel takes a table (nf_tables); else the daemon relays all."""
    if shutil.which("nft") is None:
        return False
    probe = nat.render("corral_probe", "/", [nat.Forward("", 9, "192.0.2.9", 9, "probe0")])
    probe += "delete table ip corral_probe\n"  # (every expression the daemon's table uses)
    return subprocess.run(["nft", "-f", "-"], input=probe, text=True,
                          capture_output=True).returncode == 0


NFTABLES = nftables_works()


def our_dnat_rules(root: Path) -> list[str]:
    """The DNAT rules of this daemon's nftables table (network/nat.py), one line each."""
    out = subprocess.run(["nft", "list", "table", "ip", nat.table_name(root)],
                         capture_output=True, text=True)
    return sorted(line.strip() for line in out.stdout.splitlines() if "dnat to" in line)


def snapshot(d: Daemon, dk: Any) -> dict[str, Any]:
    """What this daemon may own on the host: links, namespaces, mounts, listeners, rules."""
    ns_dir = d.root / "netns"
    return {
        "links": our_links(dk, d.root),
        "rules": our_rules(d.root),
        "dnat": our_dnat_rules(d.root) if NFTABLES else [],
        "netns": set(os.listdir(ns_dir)) if ns_dir.is_dir() else set(),
        "mounts": [
            m for m in Path("/proc/self/mountinfo").read_text().splitlines() if str(d.root) in m
        ],
        "listening": listening(),
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_get(port: int, host: str = "127.0.0.1", path: str = "/") -> str:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never a proxy
    with opener.open(f"http://{host}:{port}{path}", timeout=10) as r:
        return str(r.read().decode())


def host_address() -> str | None:
    """One non-loopback address of this host (published ports must answer there too)."""
    out = subprocess.run(["hostname", "-I"], capture_output=True, text=True).stdout.split()
    v4 = [a for a in out if ":" not in a and not a.startswith("172.")]
    return v4[0] if v4 else None


def wait_http(port: int, host: str = "127.0.0.1", path: str = "/") -> str:
    """httpd in the container needs a moment after start; retry on connection reset."""
    import time

    deadline = time.monotonic() + 10
    while True:
        try:
            return http_get(port, host, path)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def web(corral: Daemon, *args: str) -> str:
    """A busybox httpd serving /www/index.html (its name) on port 80, detached."""
    r = corral.docker(
        "run",
        "-d",
        *args,
        IMAGE,
        "sh",
        "-c",
        "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 80 -h /www",
    )
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


@pytest.fixture
def nets(dk: Any) -> Iterator[list[str]]:
    """Networks a test makes; removed after its containers are (dk cleans those)."""
    made: list[str] = []
    yield made
    for c in dk.containers.list(all=True):
        c.remove(force=True)
    for n in made:
        with contextlib.suppress(Exception):
            dk.networks.get(n).remove()


# ------------------------------------------------------------------- tests
def test_seed_three_webs_on_published_ports(corral: Daemon, dk: Any) -> None:
    """The seed's first example: three web servers, each on its own host port."""
    ports = [free_port() for _ in range(3)]
    for i, port in enumerate(ports):
        web(corral, "--name", f"web{i + 1}", "--hostname", f"web{i + 1}", "-p", f"{port}:80")
    for i, port in enumerate(ports):
        assert wait_http(port).strip() == f"web{i + 1}"
    addr = host_address()
    if addr:
        assert wait_http(ports[0], addr).strip() == "web1"
    r = corral.docker("port", "web2")
    assert r.stdout.strip() == f"80/tcp -> 0.0.0.0:{ports[1]}"
    ps = corral.docker("ps", "--format", "{{.Names}} {{.Ports}}").stdout
    assert f"web3 0.0.0.0:{ports[2]}->80/tcp" in ps
    info = dk.api.inspect_container("web1")["NetworkSettings"]
    assert info["Ports"]["80/tcp"] == [{"HostIp": "0.0.0.0", "HostPort": str(ports[0])}]
    assert info["Networks"]["bridge"]["IPAddress"] == info["IPAddress"]
    assert info["IPAddress"].count(".") == 3


def udp_socket_in(netns: str, address: tuple[str, int]) -> socket.socket:
    """A UDP socket bound inside a container's network namespace (busybox has no UDP
    server): the thread enters the namespace, makes the socket, and comes back."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(netns, os.O_RDONLY)
    try:
        assert libc.setns(target, 0x40000000) == 0
        try:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(address)
        finally:
            assert libc.setns(own, 0x40000000) == 0
    finally:
        os.close(own)
        os.close(target)
    return s


def test_publish_all_and_udp(corral: Daemon, dk: Any) -> None:
    cid = corral.docker(
        "run",
        "-d",
        "-P",
        "--expose",
        "80",
        "-p",
        "127.0.0.1::5000/udp",
        IMAGE,
        "sh",
        "-c",
        "mkdir /www && echo hi > /www/index.html && exec httpd -f -p 80 -h /www",
    ).stdout.strip()
    settings = dk.api.inspect_container(cid)["NetworkSettings"]
    ports = settings["Ports"]
    tcp = int(ports["80/tcp"][0]["HostPort"])
    udp = int(ports["5000/udp"][0]["HostPort"])
    assert ports["5000/udp"][0]["HostIp"] == "127.0.0.1"
    assert wait_http(tcp).strip() == "hi"
    server = udp_socket_in(settings["SandboxKey"], (settings["IPAddress"], 5000))
    with server, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        server.settimeout(10)
        client.settimeout(10)
        client.sendto(b"ping", ("127.0.0.1", udp))
        data, peer = server.recvfrom(100)
        assert data == b"ping"
        server.sendto(b"pong", peer)  # the reply finds its way back through the relay
        assert client.recvfrom(100)[0] == b"pong"


def test_without_publish_nothing_listens_on_the_host(corral: Daemon, dk: Any) -> None:
    before = listening()
    cid = web(corral)
    ip = dk.api.inspect_container(cid)["NetworkSettings"]["IPAddress"]
    assert wait_http(80, ip).strip() == cid[:12]  # the container itself answers
    assert listening() == before  # but nothing was opened on the host for it


def test_port_in_use_is_refused_before_anything_is_made(corral: Daemon, dk: Any) -> None:
    web(corral)  # the default bridge exists from here on
    before = snapshot(corral, dk)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = corral.docker("run", "-d", "--name", "clash", "-p", f"{port}:80", IMAGE, "true")
        assert r.returncode != 0
        assert f":{port} failed: port is already allocated" in r.stderr
        assert len(r.stderr.strip().splitlines()) <= 3
        assert [c.name for c in dk.containers.list(all=True) if c.name == "clash"] == []
        # a port taken between create and start: the start fails, leaves nothing behind
        other = free_port()
        cid = corral.docker("create", "-p", f"{other}:80", IMAGE, "true").stdout.strip()
        with socket.socket() as late:
            late.bind(("0.0.0.0", other))
            late.listen()
            r = corral.docker("start", cid)
            assert r.returncode != 0 and "port is already allocated" in r.stderr
        assert dk.api.inspect_container(cid)["State"]["Status"] == "created"
    after = snapshot(corral, dk)
    assert after["links"] == before["links"]
    assert after["netns"] == before["netns"]
    assert after["mounts"] == before["mounts"]


def test_rm_and_network_rm_leave_nothing(corral: Daemon, dk: Any, nets: list[str]) -> None:
    web(corral, "--name", "warm")  # default bridge made
    dk.containers.get("warm").remove(force=True)
    before = snapshot(corral, dk)
    nets.append("tidy")
    assert corral.docker("network", "create", "tidy").returncode == 0
    port = free_port()
    web(corral, "--name", "t1", "--network", "tidy", "-p", f"{port}:80")
    web(corral, "--name", "t2", "-p", f"{free_port()}:80/udp")
    assert wait_http(port).strip()
    during = snapshot(corral, dk)
    assert len(during["netns"]) == len(before["netns"]) + 2
    assert len([x for x in during["links"] - before["links"] if x.startswith("veth")]) == 2
    if NFTABLES:  # t1's TCP port is DNATed for this host; t2's UDP one is not
        assert len(during["dnat"]) == len(before["dnat"]) + 1
    assert corral.docker("rm", "-f", "t1", "t2").returncode == 0
    assert corral.docker("network", "rm", "tidy").returncode == 0
    assert snapshot(corral, dk) == before


def resolve_in(corral: Daemon, how: list[str], name: str) -> str:
    """The address `name` resolves to inside a container (busybox-static's wget crashes
    on name lookups, its ping does not), or "" if it does not resolve."""
    r = corral.docker(*how, "ping", "-c", "1", "-W", "2", name)
    first = (r.stdout or r.stderr).splitlines()[0] if (r.stdout or r.stderr) else ""
    if not first.startswith("PING"):
        return ""
    return first.split("(")[1].split(")")[0]


def test_user_network_resolves_names_and_aliases_default_bridge_does_not(
    corral: Daemon, dk: Any, nets: list[str]
) -> None:
    nets.append("app")
    corral.docker("network", "create", "app", check=True)
    web(corral, "--name", "db1", "--network", "app", "--network-alias", "database")
    db_ip = dk.api.inspect_container("db1")["NetworkSettings"]["Networks"]["app"]["IPAddress"]
    visitor = ["run", "--rm", "--network", "app", IMAGE]
    assert resolve_in(corral, visitor, "db1") == db_ip
    assert resolve_in(corral, visitor, "database") == db_ip
    assert wait_http(80, db_ip).strip()
    # a member that comes later is known to those already running, and forgotten after
    web(corral, "--name", "late", "--network", "app")
    late_ip = dk.api.inspect_container("late")["NetworkSettings"]["Networks"]["app"]["IPAddress"]
    assert resolve_in(corral, ["exec", "db1"], "late") == late_ip
    corral.docker("rm", "-f", "late", check=True)
    assert resolve_in(corral, ["exec", "db1"], "late") == ""
    # the default bridge: no names, as in Docker
    web(corral, "--name", "plain")
    assert resolve_in(corral, ["run", "--rm", IMAGE], "plain") == ""


def fetch_in(corral: Daemon, how: list[str], ip: str) -> str:
    """HTTP from inside a container with nc (busybox-static's wget crashes), "" on failure."""
    r = corral.docker(*how, "sh", "-c", f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {ip} 80")
    return r.stdout if r.returncode == 0 and " 200 " in r.stdout else ""


def test_networks_are_isolated(corral: Daemon, dk: Any, nets: list[str]) -> None:
    nets += ["red", "blue"]
    corral.docker("network", "create", "red", check=True)
    corral.docker("network", "create", "blue", check=True)
    web(corral, "--name", "r1", "--network", "red")
    web(corral, "--name", "b1", "--network", "blue")
    red_ip = dk.api.inspect_container("r1")["NetworkSettings"]["Networks"]["red"]["IPAddress"]
    assert wait_http(80, red_ip).strip()  # it serves
    assert fetch_in(corral, ["exec", "b1"], red_ip) == ""
    # connect makes it reachable, disconnect takes it away again
    corral.docker("network", "connect", "red", "b1", check=True)
    assert resolve_in(corral, ["exec", "b1"], "r1") == red_ip
    assert fetch_in(corral, ["exec", "b1"], red_ip) != ""
    corral.docker("network", "disconnect", "red", "b1", check=True)
    assert fetch_in(corral, ["exec", "b1"], red_ip) == ""


@contextlib.contextmanager
def host_forwarding_on() -> Iterator[None]:
    """net.ipv4.ip_forward=1 for the block (host-wide: the bridges live in the host's
    namespace), restored to what it was whatever happens."""
    knob = Path("/proc/sys/net/ipv4/ip_forward")
    before = knob.read_text()
    knob.write_text("1\n")
    try:
        yield
    finally:
        knob.write_text(before)


def test_networks_are_isolated_even_when_the_host_forwards(
    corral: Daemon, dk: Any, nets: list[str]
) -> None:
    """Isolation must not hang on ip_forward being off (Docker users turn it on)."""
    nets += ["green", "amber"]
    corral.docker("network", "create", "green", check=True)
    corral.docker("network", "create", "amber", check=True)
    web(corral, "--name", "g1", "--network", "green")
    web(corral, "--name", "a1", "--network", "amber")
    web(corral, "--name", "d1")  # the default bridge
    g_ip = dk.api.inspect_container("g1")["NetworkSettings"]["Networks"]["green"]["IPAddress"]
    a_ip = dk.api.inspect_container("a1")["NetworkSettings"]["Networks"]["amber"]["IPAddress"]
    assert wait_http(80, g_ip).strip() and wait_http(80, a_ip).strip()
    with host_forwarding_on():
        assert fetch_in(corral, ["exec", "a1"], g_ip) == ""
        assert fetch_in(corral, ["exec", "g1"], a_ip) == ""
        assert fetch_in(corral, ["exec", "d1"], g_ip) == ""
        # members of one network still reach each other, and the host reaches them all
        corral.docker("network", "connect", "green", "a1", check=True)
        assert fetch_in(corral, ["exec", "a1"], g_ip) != ""
        assert wait_http(80, a_ip).strip()


def test_fixed_ip_and_bad_network_input(corral: Daemon, dk: Any, nets: list[str]) -> None:
    nets.append("fixed")
    corral.docker("network", "create", "--subnet", "10.231.7.0/24", "fixed", check=True)
    web(corral, "--name", "f1", "--network", "fixed", "--ip", "10.231.7.77")
    assert wait_http(80, "10.231.7.77").strip()
    before = {c.name for c in dk.containers.list(all=True)}
    cases = [
        (["run", "-d", "--network", "nosuch", IMAGE, "true"], "network nosuch not found"),
        (
            ["run", "-d", "--network", "fixed", "--ip", "10.231.8.5", IMAGE, "true"],
            "not in subnet 10.231.7.0/24",
        ),
        (
            ["run", "-d", "--network", "fixed", "--ip", "10.231.7.77", IMAGE, "true"],
            "Address already in use",
        ),
        (["run", "-d", "--ip", "172.17.9.9", IMAGE, "true"], "user defined networks only"),
        (["network", "create", "--subnet", "10.231.7.128/25", "overlap"], "overlaps"),
        (["network", "rm", "fixed"], "has active endpoints"),
        (["network", "rm", "bridge"], "pre-defined"),
    ]
    for args, message in cases:
        r = corral.docker(*args)
        assert r.returncode != 0, args
        assert message in r.stderr, (args, r.stderr)
    assert {c.name for c in dk.containers.list(all=True)} == before
    assert "overlap" not in {n.name for n in dk.networks.list()}
    # a malformed port binding through the API (the CLIs check their own flags)
    with pytest.raises(Exception, match="invalid port specification"):
        dk.api.create_container(IMAGE, "true", host_config={"PortBindings": {"x/tcp": [{}]}})


def test_docker_py_networks(dk: Any, nets: list[str]) -> None:
    nets.append("pynet")
    net = dk.networks.create("pynet", labels={"k": "v"})
    c = dk.containers.run(IMAGE, "sleep 60", detach=True, network="pynet", name="pyc")
    net.reload()
    assert [x.name for x in net.containers] == ["pyc"]
    assert dk.networks.list(filters={"label": "k=v"})[0].id == net.id
    other = dk.networks.create("pynet2")
    nets.append("pynet2")
    other.connect(c, aliases=["extra"])
    c.reload()
    assert set(c.attrs["NetworkSettings"]["Networks"]) == {"pynet", "pynet2"}
    assert c.attrs["NetworkSettings"]["Networks"]["pynet2"]["Aliases"] == ["extra"]
    other.disconnect(c)
    c.remove(force=True)
    assert set(dk.networks.prune()["NetworksDeleted"]) >= {"pynet", "pynet2"}


def test_none_and_host_modes_still_work(corral: Daemon) -> None:
    r = corral.docker("run", "--rm", "--network", "none", IMAGE, "ip", "-o", "link")
    assert r.returncode == 0 and "eth0" not in r.stdout and "lo" in r.stdout
    before = links()
    r = corral.docker("run", "--rm", "--network", "host", IMAGE, "ls", "/sys/class/net")
    after = links()
    # the host's own links (other daemons on this host may add or remove some meanwhile)
    assert before & after <= set(r.stdout.split()) <= before | after


def test_container_mode_shares_the_etc_files(corral: Daemon, dk: Any, nets: list[str]) -> None:
    """`--network container:X` shares X's /etc/hosts, /etc/hostname and
    /etc/resolv.conf (and its hostname), as Docker does; X's peers show up there too."""
    nets.append("shared")
    corral.docker("network", "create", "shared", check=True)
    web(corral, "--name", "owner", "--hostname", "ownerhost", "--network", "shared",
        "--dns", "192.0.2.53", "--add-host", "extra.example:192.0.2.7")  # fmt: skip
    show = "hostname; cat /etc/hostname /etc/hosts /etc/resolv.conf"
    own = corral.docker("exec", "owner", "sh", "-c", show, check=True).stdout
    r = corral.docker(
        "run", "-d", "--name", "guest", "--network", "container:owner", IMAGE, "sleep", "1d"
    )
    assert r.returncode == 0, r.stderr
    guest = corral.docker("exec", "guest", "sh", "-c", show, check=True).stdout
    assert guest == own
    assert guest.startswith("ownerhost\nownerhost\n")
    assert "nameserver 192.0.2.53" in guest and "192.0.2.7\textra.example" in guest
    # a member that joins the owner's network later is in the guest's /etc/hosts too
    web(corral, "--name", "newcomer", "--network", "shared")
    ip = dk.api.inspect_container("newcomer")["NetworkSettings"]["Networks"]["shared"]["IPAddress"]
    hosts = corral.docker("exec", "guest", "cat", "/etc/hosts", check=True).stdout
    assert f"{ip}\tnewcomer" in hosts


def test_kill_9_and_restart_leave_no_network_state(private_daemon: Any, rootfs_tar: Path) -> None:
    d = private_daemon()
    dk = d.client()
    dk.api.import_image_from_data(rootfs_tar.read_bytes(), repository="busybox", tag="latest")
    dk.networks.create("survives")
    port = free_port()
    dk.containers.run(IMAGE, "sleep 1d", detach=True, name="k1", ports={"80/tcp": port})
    dk.containers.run(IMAGE, "sleep 1d", detach=True, name="k2", network="survives")
    during = our_links(dk, d.root)
    bridges = {x for x in during if x.startswith("cr-")}
    assert len(bridges) == 2 and len(during - bridges) == 2  # a veth per container
    assert {name for name, _table in our_rules(d.root)} == bridges  # isolated
    assert ("tcp", f"00000000:{port:04X}") in listening()
    d.proc.send_signal(signal.SIGKILL)
    d.proc.wait()
    kill_holder(d.root)  # as a reboot: nobody kept the run (else it is live-restored)
    assert ("tcp", f"00000000:{port:04X}") not in listening()  # the relay died with it
    d = private_daemon()
    dk = d.client()
    assert os.listdir(d.root / "netns") == []
    # no veth left; bridges only of live records (the idle default bridge goes too)
    assert our_links(dk, d.root) <= bridges
    # the network and the records survived; the address is handed out again cleanly
    assert {c.name: c.status for c in dk.containers.list(all=True)} == {
        "k1": "exited",
        "k2": "exited",
    }
    dk.containers.get("k2").start()
    ip = dk.containers.get("k2").attrs["NetworkSettings"]["Networks"]["survives"]["IPAddress"]
    assert ip
    for c in dk.containers.list(all=True):
        c.remove(force=True)
    dk.networks.get("survives").remove()
    dk.close()
    stop_daemon(d.proc)
    assert links() & bridges == set()  # a clean stop takes the bridges too
    assert our_rules(d.root) == set()  # and their isolation rules
