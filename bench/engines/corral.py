"""corral under test: a private daemon (own state root, socket and cgroup parent).

The start scenarios time the real CLI (`.venv/bin/corral`, CORRAL_HOST set) end to end;
fleets go through the API, concurrently, as fast as the daemon answers.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import trio

from bench.api import Api
from bench.engines.base import IDLE_COMMAND, BenchError, Engine, mounts_under, remove_cgroup_tree

REPO = Path(__file__).resolve().parents[2]


def corral_cli() -> list[str]:
    """The installed `corral` entry point next to this python (the user's command)."""
    script = Path(sys.executable).parent / "corral"
    return [str(script)] if script.exists() else [sys.executable, "-m", "supervisor"]


class Corral(Engine):
    name = "corral"
    image = "busybox:latest"

    def __init__(self, workdir: Path, cgroup_parent: str) -> None:
        super().__init__(workdir, cgroup_parent)
        self.root = workdir / "corral-root"
        self.sock = workdir / "corral.sock"
        self.log = workdir / "corral-daemon.log"
        self.host = f"unix://{self.sock}"
        self.api = Api(str(self.sock))
        self.proc: trio.Process | None = None
        # PYTHONPATH: the corral measured is the one next to this bench, whatever the
        # venv's editable install points at (so a checkout of another commit benches itself)
        self._env = dict(os.environ, CORRAL_HOST=self.host, PYTHONPATH=str(REPO))

    def argv(self, *args: str) -> list[str]:
        return [*corral_cli(), *args]

    def run_options(self) -> list[str]:
        return ["--network", "none"]

    def env(self) -> dict[str, str] | None:
        return self._env

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise BenchError("corral daemon is not running")
        return self.proc.pid

    def holder_pid(self) -> int:
        """The container holder of this root (live restore: it keeps every container's
        descriptors); after a kill -9 of the daemon it is no longer the daemon's child."""
        sock = str(self.root / "holder.sock").encode()
        for p in os.listdir("/proc"):
            if p.isdigit():
                with contextlib.suppress(OSError), open(f"/proc/{p}/cmdline", "rb") as f:
                    args = f.read().split(b"\0")
                    if sock in args and any(a.endswith(b"holderd.py") for a in args):
                        return int(p)
        raise BenchError("corral: no container holder for its root")

    def overhead_pids(self) -> list[int]:
        return [self.pid, self.holder_pid()]  # the holder keeps every container's fds

    def persistent_pids(self) -> set[int]:
        return {self.pid, self.holder_pid()}

    def markers(self) -> tuple[str, ...]:
        return (str(self.root),)

    async def start_container(self, command: Sequence[str] = IDLE_COMMAND) -> str:
        body = {
            "Image": self.image,
            "Cmd": list(command),
            "HostConfig": {"NetworkMode": "none"},
        }
        created = await self.api.request("POST", "/containers/create", body)
        cid = str(created["Id"])
        await self.api.request("POST", f"/containers/{cid}/start")
        return cid

    async def remove_container(self, cid: str) -> None:
        await self.api.request("DELETE", f"/containers/{cid}?force=1&v=1")

    async def setup(self, rootfs_tar: Path) -> None:
        await self._start_daemon()
        await self.cli("import", str(rootfs_tar), self.image)

    async def fresh(self) -> None:
        """A new daemon on the same root: memory freed by Python stays in its heap, so a
        daemon that once held 200 containers would show no growth for the next 200."""
        await self.settle()
        await self._stop_daemon()
        await self._start_daemon()

    async def _start_daemon(self) -> None:
        r, w = os.pipe()
        try:
            with self.log.open("ab") as logf:
                self.proc = await trio.lowlevel.open_process(
                    [
                        sys.executable,
                        "-m",
                        "supervisor.daemon",
                        "--root",
                        str(self.root),
                        "--host",
                        self.host,
                        "--cgroup-parent",
                        self.cgroup_parent,
                        # A port of its own (logged as metrics.listening): the host's
                        # default 127.0.0.1:9323 belongs to the real daemon.
                        "--metrics-addr",
                        "127.0.0.1:0",
                        "--ready-fd",
                        str(w),
                    ],
                    cwd=str(REPO),
                    env=self._env,
                    stdin=subprocess.DEVNULL,
                    stdout=logf,
                    stderr=logf,
                    pass_fds=(w,),
                    start_new_session=True,  # a Ctrl-C is the bench's to handle, not its
                )
        finally:
            os.close(w)
        async with trio.lowlevel.FdStream(r) as ready:
            with trio.fail_after(60):
                line = await ready.receive_some(64)  # EOF: the daemon died before listening
        if line.strip() != b"ready":
            raise BenchError(f"corral daemon did not start; see {self.log}")

    async def _stop_daemon(self) -> None:
        proc = self.proc
        if proc is not None and proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            with trio.move_on_after(60):
                await proc.wait()
            if proc.returncode is None:  # what it leaves, the runner's sweep removes
                proc.kill()
                await proc.wait()

    async def teardown(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            try:
                await self.settle()
                await self.cli("rmi", "-f", self.image)
            finally:
                await self._stop_daemon()
        left = mounts_under(self.root)
        remove_cgroup_tree(self.cgroup_parent)
        if left:
            raise BenchError(f"corral left mounts behind: {left}")

    async def version(self) -> str:
        from importlib.metadata import PackageNotFoundError, version

        try:
            v = version("corral")
        except PackageNotFoundError:
            v = "unknown"
        rev = await trio.run_process(
            ["git", "-C", str(REPO), "describe", "--always", "--dirty"],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
        return f"{v} ({rev.stdout.decode().strip() or 'no git'})"
