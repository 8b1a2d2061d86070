"""Docker under test: Debian's docker.io (Engine 20.10) with its own containerd, both on
private paths under the bench's workdir, started for the run and removed afterwards.

Its own containerd, started by the bench and named to dockerd with `--containerd`: left
to itself, dockerd 20.10 would use a system containerd at /run/containerd if one runs
(and so share its state) instead of starting a managed one.  dockerd's host-wide
defaults are all redirected (data root, exec root, pidfile, socket, daemon.json, trust
key, cgroup parent) and its networking is off (no bridge, no iptables): containers run
with network none, as on the other engines.  Two host directories cannot be redirected
(dockerd's /run/docker/plugins, containerd's shim sockets in /run/containerd/s): made
only when missing, so removed afterwards only when the bench made them.

Driven like corral: the `docker` CLI on PATH (the docker 28 client negotiates the
daemon's API version down to 1.41) for end-to-end commands, the API for fleets.  Its
per-container cost is dockerd + containerd + one containerd-shim per container.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path

import trio

from bench import procfs
from bench.api import Api
from bench.engines.base import IDLE_COMMAND, BenchError, Engine, mounts_under, remove_cgroup_tree

API_VERSION = "/v1.41"  # Engine 20.10's newest
NAMESPACE = "corral-bench"  # containerd namespace (the containerd is private anyway)
HOST_DIRS = (Path("/run/docker/plugins"), Path("/run/containerd/s"))
START_TIMEOUT = 60.0


def available() -> bool:
    return all(
        shutil.which(t) for t in ("dockerd", "containerd", "containerd-shim-runc-v2", "docker")
    )


def containerd_config(home: Path) -> str:
    """containerd's config: private root, state and sockets; no CRI (dockerd's managed
    containerd disables it too), warnings only."""
    ctd = home / "containerd"
    return "\n".join(
        [
            "version = 2",
            f'root = "{ctd / "root"}"',
            f'state = "{ctd / "state"}"',
            'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
            "[grpc]",
            f'  address = "{ctd / "containerd.sock"}"',
            "[ttrpc]",
            f'  address = "{ctd / "containerd.sock.ttrpc"}"',
            "[debug]",
            '  level = "warn"',
            "",
        ]
    )


def daemon_json(home: Path) -> dict[str, str]:
    """Its own daemon.json (not /etc/docker's); the trust key it writes at start moved
    out of /etc/docker (a config key only: Debian's build has no flag for it)."""
    return {"deprecated-key-path": str(home / "key.json")}


def dockerd_argv(home: Path, cgroup_parent: str) -> list[str]:
    """dockerd with every host-wide default moved under `home` (see `daemon_json`)."""
    return [
        "dockerd",
        "--data-root", str(home / "data"),
        "--exec-root", str(home / "exec"),
        "--pidfile", str(home / "docker.pid"),
        "--config-file", str(home / "daemon.json"),
        "-H", f"unix://{home / 'docker.sock'}",
        "--containerd", str(home / "containerd" / "containerd.sock"),
        "--containerd-namespace", NAMESPACE,
        "--containerd-plugins-namespace", NAMESPACE + "-plugins",
        "--bridge=none", "--iptables=false", "--ip6tables=false", "--ip-masq=false",
        "--exec-opt", "native.cgroupdriver=cgroupfs",
        "--cgroup-parent", "/" + cgroup_parent,
        "--storage-driver", "overlay2",
        "--log-level", "warn",
    ]  # fmt: skip


class Docker(Engine):
    name = "docker"
    image = "busybox:latest"

    def __init__(self, workdir: Path, cgroup_parent: str) -> None:
        super().__init__(workdir, cgroup_parent)
        self.home = workdir / "docker"
        self.sock = self.home / "docker.sock"
        self.log = workdir / "docker-daemon.log"
        self.api = Api(str(self.sock), API_VERSION)
        self.containerd: trio.Process | None = None
        self.dockerd: trio.Process | None = None
        self.made: list[Path] = []  # host dirs that did not exist before
        self._env = dict(
            os.environ, DOCKER_HOST=f"unix://{self.sock}", DOCKER_CONFIG=str(self.home / "cli")
        )

    def argv(self, *args: str) -> list[str]:
        return ["docker", *args]

    def run_options(self) -> list[str]:
        return ["--network", "none"]

    def env(self) -> dict[str, str] | None:
        return self._env

    def _daemon_pids(self) -> list[int]:
        return [p.pid for p in (self.dockerd, self.containerd) if p is not None]

    def persistent_pids(self) -> set[int]:
        return set(self._daemon_pids())

    def markers(self) -> tuple[str, ...]:
        return (str(self.home),)

    def overhead_pids(self) -> list[int]:
        """dockerd, containerd and the shims (one per container, named by our socket)."""
        shims = procfs.pids_where(
            lambda pid: (
                (args := procfs.cmdline(pid)) != []
                and Path(args[0]).name.startswith("containerd-shim")
                and any(str(self.home) in a for a in args)
            )
        )
        return self._daemon_pids() + shims

    async def start_container(self, command: Sequence[str] = IDLE_COMMAND) -> str:
        body = {"Image": self.image, "Cmd": list(command), "HostConfig": {"NetworkMode": "none"}}
        created = await self.api.request("POST", "/containers/create", body)
        cid = str(created["Id"])
        await self.api.request("POST", f"/containers/{cid}/start")
        return cid

    async def remove_container(self, cid: str) -> None:
        await self.api.request("DELETE", f"/containers/{cid}?force=1&v=1")

    async def setup(self, rootfs_tar: Path) -> None:
        self.made = [d for d in HOST_DIRS if not d.exists()]
        for d in (self.home, self.home / "cli"):
            d.mkdir(parents=True, exist_ok=True, mode=0o700)
        (self.home / "daemon.json").write_text(json.dumps(daemon_json(self.home)) + "\n")
        (self.home / "containerd.toml").write_text(containerd_config(self.home))
        self.containerd = await self._start_notified(
            "containerd",
            ["containerd", "--config", str(self.home / "containerd.toml"), "--log-level", "warn"],
        )
        self.dockerd = await self._start_notified(
            "dockerd", dockerd_argv(self.home, self.cgroup_parent)
        )
        await self.cli("import", str(rootfs_tar), self.image)

    async def _start_notified(self, name: str, argv: list[str]) -> trio.Process:
        """Start a daemon and return once it says READY=1 on NOTIFY_SOCKET (both speak
        systemd's readiness protocol): no polling for a socket; an early exit fails."""
        path = self.home / f"{name}.notify"
        sock = trio.socket.socket(trio.socket.AF_UNIX, trio.socket.SOCK_DGRAM)
        with sock:
            await sock.bind(str(path))
            with self.log.open("ab") as logf:
                proc = await trio.lowlevel.open_process(
                    argv, env=dict(os.environ, NOTIFY_SOCKET=str(path)),
                    stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                    start_new_session=True,  # a Ctrl-C is the bench's to handle
                )  # fmt: skip
            ready = False
            with trio.move_on_after(START_TIMEOUT):
                async with trio.open_nursery() as nursery:

                    async def exited() -> None:
                        await proc.wait()
                        nursery.cancel_scope.cancel()

                    nursery.start_soon(exited)
                    while b"READY=1" not in (await sock.recv(4096)).split(b"\n"):
                        pass
                    ready = True
                    nursery.cancel_scope.cancel()
        path.unlink(missing_ok=True)
        if not ready:
            await self._stop(proc)
            raise BenchError(f"{name} did not start (exit {proc.returncode}); see {self.log}")
        return proc

    async def _stop(self, proc: trio.Process | None) -> None:
        if proc is not None and proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            with trio.move_on_after(60):
                await proc.wait()
            if proc.returncode is None:
                proc.kill()
                await proc.wait()

    async def teardown(self) -> None:
        try:
            if self.dockerd is not None and self.dockerd.returncode is None:
                await self.settle()
                await self.cli("rmi", "-f", self.image)
        finally:
            await self._stop(self.dockerd)
            await self._stop(self.containerd)
            for point in mounts_under(self.home):
                await trio.run_process(["umount", point], check=False, capture_stderr=True)
            remove_cgroup_tree(self.cgroup_parent)
            for d in self.made:  # only what the bench made, and only if empty
                for p in (d, d.parent):
                    try:
                        p.rmdir()
                    except OSError:
                        break
        left = mounts_under(self.home)
        if left:
            raise BenchError(f"docker left mounts behind: {left}")

    async def version(self) -> str:
        out = await self.cli(
            "version", "--format", "{{.Server.Version}} (client {{.Client.Version}})",
            capture=True,
        )  # fmt: skip
        ctd = await trio.run_process(["containerd", "--version"], capture_stdout=True, check=False)
        words = ctd.stdout.decode().split()
        return f"{out.stdout.decode().strip()}, containerd {words[2] if len(words) > 2 else '?'}"
