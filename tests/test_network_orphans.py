"""Bridges of deleted state roots: each bridge names its root (its link alias), and the
bridges whose root is gone are removed by `corral daemon --cleanup` and at every daemon
start; a live root's bridge, or one corral did not tag, is never touched."""

from __future__ import annotations

import secrets
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from ipaddress import ip_network
from pathlib import Path

import pytest
from conftest import _needs_root, kill_holder, start_daemon
from pyroute2 import IPRoute  # type: ignore[import-untyped]

from supervisor.network.orphans import BridgeLink, alias_for, orphaned, owner_root

IMAGE = "busybox:latest"


def test_owner_roots_and_orphans_are_read_from_aliases_only() -> None:
    assert owner_root("corral root=/var/lib/corral") == Path("/var/lib/corral")
    assert owner_root(None) is None and owner_root("") is None
    assert owner_root("some other tool") is None
    assert owner_root("corral root=relative/path") is None
    links = [
        BridgeLink("cr-gone", "corral root=/gone"),
        BridgeLink("cr-live", "corral root=/live"),
        BridgeLink("cr-untagged", None),  # an older corral's: its owner is unknown
        BridgeLink("docker0", "docker's"),
    ]
    found = orphaned(links, lambda root: root == Path("/live"))
    assert [link.name for link in found] == ["cr-gone"]


def bridge_alias(name: str) -> str | None:
    with IPRoute() as ipr:
        idx = ipr.link_lookup(ifname=name)
        if not idx:
            return None
        [link] = ipr.get_links(idx[0])
        alias: str | None = link.get_attr("IFLA_IFALIAS")
        return alias


def exists(name: str) -> bool:
    return Path("/sys/class/net", name).exists()


def rules_of(name: str) -> list[int]:
    with IPRoute() as ipr:
        return [int(r.get("table")) for r in ipr.get_rules(family=socket.AF_INET)
                if r.get("iifname") == name]  # fmt: skip


def cleanup() -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "supervisor.daemon", "--cleanup", "--config", ""],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_a_killed_daemon_s_bridge_goes_once_its_root_is_deleted(
    tmp_path: Path, rootfs_tar: Path
) -> None:
    _needs_root()
    root, sock, log = tmp_path / "root", tmp_path / "d.sock", tmp_path / "d.log"
    proc = start_daemon(root, sock, log)
    bridge = ""
    try:
        env = {"CORRAL_HOST": f"unix://{sock}"}
        run = [sys.executable, "-m", "supervisor"]

        def cli(*args: str) -> subprocess.CompletedProcess[str]:
            import os

            return subprocess.run([*run, *args], env=dict(os.environ, **env),
                                  capture_output=True, text=True, timeout=60)  # fmt: skip

        assert cli("import", str(rootfs_tar), IMAGE).returncode == 0
        made = cli("network", "create", "orphaned")
        assert made.returncode == 0, made.stderr
        bridge = "cr-" + made.stdout.strip()[:12]
        assert bridge_alias(bridge) == alias_for(root)  # named from its creation
        r = cli("run", "--rm", "--network", "orphaned", IMAGE, "true")
        assert r.returncode == 0, r.stderr
        assert exists(bridge)
        assert bridge_alias(bridge) == alias_for(root)  # the bridge names its owner
        assert rules_of(bridge)  # and has its isolation rule
        proc.send_signal(signal.SIGKILL)  # no shutdown: the bridge stays
        proc.wait(timeout=60)
        kill_holder(root)
        assert cleanup().stdout.split().count(bridge) == 0  # its root still exists: kept
        assert exists(bridge)
        shutil.rmtree(root)
        out = cleanup()
        assert out.returncode == 0, out.stderr
        assert not exists(bridge), f"{bridge} outlived its deleted root"
        assert rules_of(bridge) == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        kill_holder(root)
        if bridge and exists(bridge):
            subprocess.run(["ip", "link", "del", bridge], check=False)


@pytest.fixture
def dummy_bridges(tmp_path: Path) -> Iterator[dict[str, str]]:
    """Three bridges corral did not make: tagged for a deleted root, tagged for a root
    that exists, untagged."""
    _needs_root()
    tag = secrets.token_hex(3)
    names = {"gone": f"cr-o{tag}g", "live": f"cr-o{tag}l", "bare": f"cr-o{tag}b"}
    aliases = {"gone": alias_for(tmp_path / "deleted"), "live": alias_for(tmp_path), "bare": ""}
    with IPRoute() as ipr:
        for key, name in names.items():
            ipr.link("add", ifname=name, kind="bridge")
            idx = ipr.link_lookup(ifname=name)[0]
            if aliases[key]:
                ipr.link("set", index=idx, ifalias=aliases[key])
            net = ip_network(f"10.{200 + len(key)}.{secrets.randbelow(250)}.0/24")
            ipr.addr("add", index=idx, address=str(net.network_address + 1), prefixlen=24)
    yield names
    with IPRoute() as ipr:
        for name in names.values():
            for idx in ipr.link_lookup(ifname=name):
                ipr.link("del", index=idx)


def test_cleanup_removes_only_bridges_whose_tagged_root_is_gone(
    dummy_bridges: dict[str, str],
) -> None:
    out = cleanup()
    assert out.returncode == 0, out.stderr
    assert not exists(dummy_bridges["gone"])
    assert exists(dummy_bridges["live"]) and exists(dummy_bridges["bare"])


def test_a_holder_whose_root_is_removed_takes_that_root_s_bridges_down(tmp_path: Path) -> None:
    """The daemon was killed and its root deleted while the holder still ran (it kept
    containers): at its end the holder removes the bridges that named the root."""
    _needs_root()
    from supervisor.runtime import holderd

    root = tmp_path / "root"
    root.mkdir()
    name = f"cr-h{secrets.token_hex(4)}"
    with IPRoute() as ipr:
        ipr.link("add", ifname=name, kind="bridge")
        ipr.link("set", index=ipr.link_lookup(ifname=name)[0], ifalias=alias_for(root))
    proc = subprocess.Popen([sys.executable, "-I", "-S", holderd.__file__,
                             str(root / "holder.sock")], stdout=subprocess.PIPE)  # fmt: skip
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
        assert exists(name)
        shutil.rmtree(root)
        assert proc.wait(timeout=60) == 0
        assert not exists(name), f"{name} outlived its root and its holder"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
        if exists(name):
            subprocess.run(["ip", "link", "del", name], check=False)
