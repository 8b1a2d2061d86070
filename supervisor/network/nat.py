"""Published ports for this host's own connections, in the kernel: nftables DNAT.

The relay (network/proxy.py) makes every connection twice: client -> daemon and
daemon -> container, on two CPUs about half the throughput of a direct connection.
So a connection made on this host to a published TCP port of an IPv4 address is
rewritten by the kernel instead (the `output` hook's DNAT, as Podman's netavark and
Docker's `--userland-proxy=false` do) straight to the container's address: one
connection, no daemon in its path (and none needed while the daemon is down: live
restore).  Everything else keeps the relay, whose listener stays bound either way (it
holds the port and takes what the rules leave): other hosts, containers, IPv6, UDP, a
pod's ports (their readiness opens and closes them at once, `Upstream.ready`), and a
rollout's old replica from the rollout's start (the relay counts what it drains).

127.0.0.1 is DNATed to a bridge only with `route_localnet` on that bridge, which alone
would let a container (NET_RAW is a default capability) reach the host's loopback
services by sending a frame to 127.0.0.1 through it.  So the table's `guard` chain
drops every packet for 127.0.0.0/8 that enters on any interface but `lo`, before
routing (kube-proxy's fix for CVE-2020-8558), and `route_localnet` is set on a bridge
only once a ruleset with the guard is in the kernel; a loopback client's address is
masqueraded to the bridge's, so the container sees the gateway as its peer, as it does
through the relay.

One table per state root, `ip corral_<digest>`, its comment naming the root: several
daemons share a host.  `render` (pure) writes the whole table for what is wanted; a
change is a new rendering loaded by one `nft -f -` (atomic: a reader never sees half
a table), changes that come while one loads go in the next, and an exit waits for the
load that takes its rules out before its address can be handed out again.  A table
whose root is gone (a daemon killed, its root deleted) is swept at every start, as
its bridges are (network/orphans.py).  With no `nft`, or a kernel without nf_tables,
every port keeps the relay (logged once); `userland-proxy: true` asks for that.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import json
import re
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import structlog
import trio

log = structlog.get_logger("corral.network.nat")

TABLE_PREFIX = "corral_"
COMMENT_PREFIX = "corral root="
COMMENT_MAX = 128
SAFE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,15}")  # an interface name nft reads as one
NFT_TIMEOUT = 10.0  # seconds: a load that takes longer has failed


@dataclass(frozen=True)
class Forward:
    """One published port as a DNAT rule: connections from this host to
    `host_ip:host_port` ("" every local address) go to `target:target_port`, which is
    reached through `bridge`."""

    host_ip: str
    host_port: int
    target: str
    target_port: int
    bridge: str


def kernel_can_forward(proto: str, host_ip: str, target: str, bridge: str) -> bool:
    """Whether a published port can be a DNAT rule (the module's docstring): TCP, an
    IPv4 host address (or all), an IPv4 container address, a bridge `render` can name
    (a user's `com.docker.network.bridge.name` may hold what nft would read as syntax)."""
    if proto != "tcp" or not SAFE_NAME.fullmatch(bridge):
        return False
    try:
        return (ipaddress.ip_address(target).version == 4
                and (host_ip in ("", "0.0.0.0") or ipaddress.ip_address(host_ip).version == 4))
    except ValueError:
        return False


def table_name(root: Path) -> str:
    digest = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:16]
    return TABLE_PREFIX + digest


def _quoted(text: str) -> str:
    """An nft string literal of a checked text (`SAFE_NAME`, `_comment`)."""
    if '"' in text or "\n" in text or "\\" in text:
        raise ValueError(f"not usable in an nftables string: {text!r}")
    return f'"{text}"'


def _comment(root: str) -> str:
    """The table's comment clause naming its root, or none: nft keeps comments of up to
    128 bytes, and a root holding a quote, backslash or newline is not written (such
    a table is never swept, as a bridge without corral's alias)."""
    comment = COMMENT_PREFIX + root
    if len(comment.encode()) >= COMMENT_MAX or any(ch in comment for ch in '"\\\n'):
        return ""
    return f" comment {_quoted(comment)};"


def render(table: str, root: str, forwards: Iterable[Forward]) -> str:
    """The script that makes `table` hold exactly these forwards (and the guard)."""
    rules: list[str] = []
    bridges: set[str] = set()
    for f in sorted(forwards, key=lambda f: (f.host_port, f.host_ip)):
        match = ("fib daddr type local" if f.host_ip in ("", "0.0.0.0")
                 else f"ip daddr {ipaddress.IPv4Address(f.host_ip)}")
        target = ipaddress.IPv4Address(f.target)
        rules.append(f"    {match} tcp dport {int(f.host_port)} "
                     f"dnat to {target}:{int(f.target_port)}")
        bridges.add(f.bridge)
    masq = [f"    oifname {_quoted(b)} ip saddr 127.0.0.0/8 masquerade" for b in sorted(bridges)]
    return "\n".join([
        f"table ip {table} {{{_comment(root)} }}",
        f"flush table ip {table}",
        f"table ip {table} {{",
        "  chain guard {",
        "    type filter hook prerouting priority -150; policy accept;",
        '    iifname != "lo" ip daddr 127.0.0.0/8 drop',
        "  }",
        "  chain output {",
        "    type nat hook output priority -100; policy accept;",
        *rules,
        "  }",
        "  chain postrouting {",
        "    type nat hook postrouting priority 100; policy accept;",
        *masq,
        "  }",
        "}",
        "",
    ])


def owner_of(listing: str) -> str | None:
    """The root a corral table's comment names, from `nft list table`'s text (nft
    1.0.6's JSON leaves table comments out)."""
    for line in listing.splitlines()[1:3]:
        line = line.strip()
        if line.startswith('comment "' + COMMENT_PREFIX) and line.endswith('"'):
            return line[len('comment "' + COMMENT_PREFIX):-1]
    return None


def _nft(nft: str, *args: str, script: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([nft, *args], input=script, capture_output=True, text=True,
                          timeout=NFT_TIMEOUT, check=False)


def sweep_tables(nft: str = "nft") -> list[str]:
    """Tables of roots that no longer exist, deleted; their names.  Blocking (start,
    `daemon --cleanup`)."""
    if shutil.which(nft) is None:
        return []
    try:
        listed = _nft(nft, "-j", "list", "tables")
        names = [t["table"]["name"] for t in json.loads(listed.stdout or "{}").get("nftables", [])
                 if isinstance(t, dict) and "table" in t and t["table"].get("family") == "ip"
                 and str(t["table"].get("name", "")).startswith(TABLE_PREFIX)]
        swept = []
        for name in names:
            owner = owner_of(_nft(nft, "list", "table", "ip", name).stdout)
            gone = owner is not None and not Path(owner).exists()
            if gone and _nft(nft, "delete", "table", "ip", name).returncode == 0:
                swept.append(name)
        return swept
    except (OSError, ValueError, subprocess.SubprocessError):
        return []


def _set_route_localnet(bridge: str) -> None:
    path = Path("/proc/sys/net/ipv4/conf", bridge, "route_localnet")
    try:
        if path.read_bytes().strip() != b"1":
            path.write_bytes(b"1")
    except OSError:
        pass  # the bridge went meanwhile: nothing routes through it


class KernelNat:
    """The DNAT table of one daemon (the module's docstring); `run` in its nursery."""

    def __init__(self, root: Path, *, enabled: bool = True, nft: str = "nft") -> None:
        self.table = table_name(root)
        self.root = str(root.resolve())
        self.nft = nft
        self.enabled = enabled and shutil.which(nft) is not None
        self._wanted: dict[tuple[str, int], Forward] = {}
        self._wanted_gen = 0
        self._loaded_gen = 0
        self._running = False
        self._dirty = trio.Event()
        self._loaded = trio.Event()

    def put(self, host_ip: str, host_port: int, forward: Forward | None) -> None:
        """Wants `forward` for that host address and port (None: no rule); loaded soon."""
        key = (host_ip, host_port)
        if not self.enabled or self._wanted.get(key) == forward:
            return
        if forward is None:
            self._wanted.pop(key, None)
        else:
            self._wanted[key] = forward
        self._wanted_gen += 1
        self._dirty.set()

    def forwarded(self) -> list[Forward]:
        return list(self._wanted.values())

    async def settled(self) -> None:
        """Until what is wanted now is in the kernel (at once if nothing loads it)."""
        gen = self._wanted_gen
        while self.enabled and self._running and self._loaded_gen < gen:
            await self._loaded.wait()

    async def run(self) -> None:
        """Load each new rendering; ends (and stops forwarding) on a failed load."""
        self._running = True
        try:
            while self.enabled:
                await self._dirty.wait()
                self._dirty = trio.Event()
                gen, wanted = self._wanted_gen, list(self._wanted.values())
                script = render(self.table, self.root, wanted)
                failed = await self._load(script)
                if failed:  # once more: one transient refusal must not end forwarding
                    failed = await self._load(script)
                if failed:
                    self._give_up(failed)
                    with contextlib.suppress(OSError), trio.move_on_after(NFT_TIMEOUT):
                        await trio.run_process([self.nft, "delete", "table", "ip", self.table],
                                               capture_stdout=True, capture_stderr=True,
                                               check=False)
                else:
                    for bridge in {f.bridge for f in wanted}:  # the guard is in: now safe
                        _set_route_localnet(bridge)
                self._loaded_gen = gen
                self._loaded.set()
                self._loaded = trio.Event()
        finally:
            self._running = False
            self._loaded.set()

    async def _load(self, script: str) -> str:
        """One `nft -f -` of `script`; what went wrong ("" if nothing did)."""
        try:
            with trio.fail_after(NFT_TIMEOUT):
                done = await trio.run_process([self.nft, "-f", "-"], stdin=script.encode(),
                                              capture_stdout=True, capture_stderr=True,
                                              check=False)
        except (OSError, trio.TooSlowError) as exc:
            return str(exc) or "nft took too long"
        return done.stderr.decode(errors="replace").strip() or "nft failed" \
            if done.returncode else ""

    def _give_up(self, why: str) -> None:
        log.warning("network.nat_disabled", table=self.table, error=why.splitlines()[-1:],
                    hint="published ports go through the relay")
        self.enabled = False
        self._wanted.clear()

    def reset(self) -> None:
        """At start: the table as wanted now (none of a previous run's rules stays);
        also finds out whether nftables works here.  Blocking, as the rest of recovery."""
        if not self.enabled:
            return
        try:
            done = _nft(self.nft, "-f", "-",
                        script=render(self.table, self.root, self._wanted.values()))
            failed = done.stderr.strip() if done.returncode else ""
        except (OSError, subprocess.SubprocessError) as exc:
            failed = str(exc)
        if failed:
            self._give_up(failed)
            self.drop()
            return
        self._loaded_gen = self._wanted_gen
        for bridge in {f.bridge for f in self._wanted.values()}:
            _set_route_localnet(bridge)

    def drop(self) -> None:
        """The table gone (the daemon stops and takes its containers' addresses)."""
        if shutil.which(self.nft) is None:
            return
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            _nft(self.nft, "delete", "table", "ip", self.table)
