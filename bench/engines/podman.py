"""Podman under test, on a private root, runroot and tmpdir so the host's state is
never touched, with the options this host needs (crun 1.8 refuses the hybrid cgroup
layout here, hence runc; the ulimits keep runc from refusing the default ones).

Podman has no daemon: each container keeps a `conmon` process, which is what its memory
and idle costs are read from.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

from bench import procfs
from bench.engines.base import IDLE_COMMAND, BenchError, Engine, mounts_under, remove_cgroup_tree

HOST_OPTIONS = ("--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024")


def available() -> bool:
    return shutil.which("podman") is not None and shutil.which("conmon") is not None


class Podman(Engine):
    name = "podman"
    image = "localhost/busybox:latest"

    def __init__(self, workdir: Path, cgroup_parent: str) -> None:
        super().__init__(workdir, cgroup_parent)
        self.home = workdir / "podman"
        self.root = self.home / "root"
        self.runroot = self.home / "run"
        self.tmpdir = self.home / "tmp"
        self.netdir = self.home / "networks"

    def argv(self, *args: str) -> list[str]:
        return [
            "podman",
            "--root",
            str(self.root),
            "--runroot",
            str(self.runroot),
            "--tmpdir",
            str(self.tmpdir),
            "--network-config-dir",
            str(self.netdir),
            "--runtime",
            "runc",
            "--cgroup-manager",
            "cgroupfs",
            "--events-backend",
            "file",  # under --tmpdir; `logs -f` needs events to see the container exit
            "--storage-driver",
            "overlay",
            *args,
        ]

    def run_options(self) -> list[str]:
        # k8s-file: podman's plain-file log driver, the counterpart of corral's json-file
        # (the journald default would also write into the host's journal).
        return [
            "--network",
            "none",
            *HOST_OPTIONS,
            "--log-driver",
            "k8s-file",
            "--cgroup-parent",
            "/" + self.cgroup_parent,
        ]

    def markers(self) -> tuple[str, ...]:
        return (str(self.home),)

    def overhead_pids(self) -> list[int]:
        return procfs.pids_where(
            lambda pid: (
                (args := procfs.cmdline(pid)) != []
                and Path(args[0]).name == "conmon"
                and any(str(self.home) in a for a in args)
            )
        )

    async def start_container(self, command: Sequence[str] = IDLE_COMMAND) -> str:
        out = await self.cli("run", "-d", *self.run_options(), self.image, *command, capture=True)
        return out.stdout.decode().strip()

    async def remove_container(self, cid: str) -> None:
        # -t 0: kill at once, as docker's and corral's `rm -f` do (podman would wait 10 s
        # for a `sleep` that ignores SIGTERM as pid 1).
        await self.cli("rm", "-f", "-t", "0", cid)

    async def setup(self, rootfs_tar: Path) -> None:
        for d in (self.root, self.runroot, self.tmpdir, self.netdir):
            d.mkdir(parents=True, exist_ok=True)
        await self.cli("import", str(rootfs_tar), self.image)

    async def teardown(self) -> None:
        try:
            await self.settle()
            await self.cli("rmi", "-a", "-f")
        finally:
            for point in mounts_under(self.home):
                await self._umount(point)
            remove_cgroup_tree(self.cgroup_parent)
        left = mounts_under(self.home)
        if left:
            raise BenchError(f"podman left mounts behind: {left}")

    async def _umount(self, point: str) -> None:
        import trio

        await trio.run_process(["umount", point], check=False, capture_stderr=True)

    async def version(self) -> str:
        out = await self.cli("--version", capture=True)
        return out.stdout.decode().strip()
