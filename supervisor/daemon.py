"""`corral daemon`: the one long-running process that owns every container.

Structure (trio): `open_engine` owns the engine's nursery (one supervision task per
running container); inside it a nursery holds the API server.  SIGTERM/SIGINT end
the API, then leaving `open_engine` stops the containers the way Docker does on
shutdown (or leaves them to the holder, live restore), then cancels everything.
The daemon is the child subreaper of container inits, so `runc create` can exit and
leave the init to us.
"""

from __future__ import annotations

import argparse
import faulthandler
import functools
import logging
import os
import signal
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
import trio

from supervisor import daemonlock

DEFAULT_ROOT = "/var/lib/corral"
DEFAULT_HOST = "unix:///run/corral/corral.sock"


def socket_path(host: str) -> Path:
    if host.startswith("unix://"):
        return Path(host[len("unix://") :])
    if host.startswith("/"):
        return Path(host)
    raise SystemExit(f"corral daemon: unsupported --host {host!r}: only unix:///path sockets")


def configure_logging(level: str) -> None:
    """structlog JSON to stderr; human-friendly when stderr is a terminal."""
    renderer: structlog.typing.Processor = (
        structlog.dev.ConsoleRenderer()
        if sys.stderr.isatty()
        else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            getattr(logging, level.upper(), logging.INFO)
        ),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )


def _metrics_addr(value: str) -> str:
    if value:
        from metrics.server import parse_addr

        try:
            parse_addr(value)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
    return value


# Settings the daemon's config file may hold too (flag > environment > file > default).
SETTINGS: tuple[tuple[str, str | None, object], ...] = (
    ("root", "CORRAL_ROOT", DEFAULT_ROOT),
    ("host", "CORRAL_HOST", DEFAULT_HOST),
    ("runtime", "CORRAL_RUNTIME", "runc"),
    ("cgroup-parent", None, "corral"),
    ("log-driver", None, "json-file"),
    ("log-opts", None, []),
    ("log-level", None, "info"),
    ("metrics-addr", "CORRAL_METRICS_ADDR", "127.0.0.1:9323"),
    ("services", "CORRAL_SERVICES", None),
    ("init", None, False),
    ("init-path", None, ""),
    ("live-restore", None, False),
    # the API socket's bounds (supervisor/api/server.py Limits has the defaults and why)
    ("api-header-timeout", None, None),
    ("api-idle-timeout", None, None),
    ("api-body-timeout", None, None),
    ("api-max-client-connections", None, None),
    ("api-max-connections", None, None),
    ("userns-remap", None, ""),
    ("insecure-registries", None, []),
    ("registry-mirrors", None, []),
    ("certs-dir", None, ""),  # "": /etc/docker/certs.d, as dockerd (which hard-codes it)
    ("auto-update-interval", None, None),  # None: no auto-update pass (supervisor/rollout/)
    ("ipv6", None, False),  # the default bridge's IPv6, as dockerd's --ipv6
    # the default profile's filter compiled once, installed by corral's helper
    # (supervisor/runtime/seccompexec.py); false: runc compiles it at every create/exec
    ("seccomp-helper", None, True),
    # true: published ports only through the daemon's relay, no nftables DNAT for this
    # host's own connections (supervisor/network/nat.py)
    ("userland-proxy", None, False),
    ("fixed-cidr-v6", None, ""),
)


def _bool_flag(value: str) -> bool:
    if value.lower() in ("1", "true", "yes"):
        return True
    if value.lower() in ("0", "false", "no"):
        return False
    raise argparse.ArgumentTypeError(f"invalid boolean {value!r}")


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Flags only; `apply_config` fills what they leave unset (defaults are None here)."""
    p = argparse.ArgumentParser(prog="corral daemon", description="Run the corral supervisor.")
    p.add_argument(
        "--config",
        default=None,
        help="daemon config file (YAML; default /etc/corral/daemon.yaml if present, "
        "env CORRAL_CONFIG; '' for none); flags override it",
    )
    p.add_argument("--root", help=f"state root (default {DEFAULT_ROOT}, env CORRAL_ROOT)")
    p.add_argument("-H", "--host", help=f"API socket (default {DEFAULT_HOST}, env CORRAL_HOST)")
    p.add_argument("--runtime", help="OCI runtime binary: runc (default) or crun")
    p.add_argument("--cgroup-parent", help="parent cgroup of every container (default corral)")
    p.add_argument("--log-driver", help="default log driver for containers (json-file)")
    p.add_argument(
        "--log-opt",
        action="append",
        metavar="KEY=VALUE",
        help="default log options, e.g. max-size=10m, max-file=3 (repeatable)",
    )
    p.add_argument(
        "--ready-fd", type=int, default=-1, help="write a line to this fd once the API is listening"
    )
    # the owner lock and start gate a CLI took before starting this daemon (autostart.py)
    p.add_argument("--lock-fds", help=argparse.SUPPRESS)
    p.add_argument("--log-level")
    p.add_argument(
        "--cleanup",
        action="store_true",
        help="remove the bridges (and their isolation rules) and nftables tables that daemons "
        "of deleted state roots left on this host, print their names, and exit (every daemon "
        "start does it too)",
    )
    p.add_argument(
        "--metrics-addr",
        type=_metrics_addr,
        help="serve Prometheus /metrics and /healthz here (default 127.0.0.1:9323; empty disables)",
    )
    p.add_argument(
        "--services",
        help="directory of compose files kept running; reloaded on change and on SIGHUP",
    )
    p.add_argument(
        "--init",
        type=_bool_flag,
        nargs="?",
        const=True,
        help="run an init (tini) as PID 1 in containers that do not say (--init=false: not)",
    )
    p.add_argument(
        "--live-restore",
        type=_bool_flag,
        nargs="?",
        const=True,
        help="containers keep running when the daemon stops (SIGTERM); they always do "
        "after a crash or kill -9",
    )
    p.add_argument(
        "--seccomp-helper",
        type=_bool_flag,
        nargs="?",
        const=True,
        help="install the default seccomp filter compiled once, with corral's helper "
        "(default); --seccomp-helper=false: runc compiles it at every start and exec",
    )
    p.add_argument(
        "--userland-proxy",
        type=_bool_flag,
        nargs="?",
        const=True,
        help="every connection to a published port through the daemon's relay; by default "
        "(false) this host's own to an IPv4 TCP port are DNATed by nftables",
    )
    p.add_argument(
        "--init-path",
        help="the static init binary for --init (default: tini-static or docker-init on PATH)",
    )
    for name, what in (
        ("header-timeout", "a request head may take from its first byte (default 60s)"),
        ("idle-timeout", "a keep-alive connection may wait for its next request (5m)"),
        ("body-timeout", "a request body may pause between reads (60s)"),
        ("max-client-connections", "API connections one client process may hold (256)"),
        ("max-connections", "API connections in all (2048)"),
    ):
        p.add_argument(f"--api-{name}", metavar="N", help=what)
    p.add_argument(
        "--ipv6",
        type=_bool_flag,
        nargs="?",
        const=True,
        help="IPv6 on the default bridge (as dockerd's --ipv6)",
    )
    p.add_argument(
        "--fixed-cidr-v6",
        metavar="CIDR",
        help="the default bridge's IPv6 subnet (default: a ULA /64)",
    )
    p.add_argument(
        "--userns-remap",
        metavar="default|USER[:GROUP]",
        help="map containers' root to a subordinate id range (default: the dockremap user)",
    )
    p.add_argument(
        "--insecure-registry",
        action="append",
        metavar="HOST[:PORT]|CIDR",
        help="a registry spoken to with TLS unverified, then plain HTTP (repeatable)",
    )
    p.add_argument(
        "--registry-mirror",
        action="append",
        metavar="URL",
        help="a Docker Hub mirror, tried before Docker Hub for pulls (repeatable)",
    )
    p.add_argument(
        "--certs-dir",
        help="registries' CAs and client certificates, <dir>/<host:port>/ "
        "(default /etc/docker/certs.d)",
    )
    p.add_argument(
        "--auto-update-interval",
        metavar="DURATION",
        help="check containers labelled corral.auto-update (io.containers.autoupdate) this "
        "often, e.g. 1h, and roll out a newer image (default: never)",
    )
    return p.parse_args(argv)


def registry_hosts(args: argparse.Namespace) -> Any:
    """The settled registry settings as `RegistryHosts`; ValueError naming the culprit."""
    from supervisor.distribution.hosts import RegistryHosts

    return RegistryHosts.from_settings(
        list(args.insecure_registries), list(args.registry_mirrors), args.certs_dir or ""
    )


def apply_config(args: argparse.Namespace, environ: dict[str, str]) -> list[str]:
    """Fill `args` from the environment, the config file and the defaults. Returns the
    lines to print (a file's as `file:line:col: message`), none when the daemon may start."""
    from config.daemonconf import Check, Setting, config_path, parse_daemon_config, settle
    from config.errors import ConfigError
    from supervisor.errors import CorralError
    from supervisor.supervise.logconfig import LogDefaults

    def check_metrics(value: Any, _: Mapping[str, Any]) -> None:
        if value:
            from metrics.server import parse_addr

            parse_addr(value)

    def check_driver(driver: Any, _: Mapping[str, Any]) -> None:
        try:
            LogDefaults.from_flags(driver, [])
        except CorralError as exc:
            raise ValueError(exc.message) from None

    def check_opts(opts: Any, doc: Mapping[str, Any]) -> None:
        driver = doc.get("log-driver")
        try:
            LogDefaults.from_flags(str(driver or "json-file"), [])
        except CorralError:
            return  # the driver's own error says it
        try:
            words = [f"{k}={v}" for k, v in opts.items()]
            LogDefaults.from_flags(str(driver or "json-file"), words)
        except CorralError as exc:
            raise ValueError(exc.message) from None

    def check_insecure(value: Any, _: Mapping[str, Any]) -> None:
        from supervisor.distribution.hosts import parse_insecure

        for entry in value:
            parse_insecure(entry)

    def check_mirrors(value: Any, _: Mapping[str, Any]) -> None:
        from supervisor.distribution.hosts import parse_mirror

        for entry in value:
            parse_mirror(entry)

    def check_init_path(value: Any, _: Mapping[str, Any]) -> None:
        if value:
            from supervisor.runtime.initbin import check_init

            check_init(value)

    path = config_path(args.config, environ, os.path.isfile)
    file = None
    if path:
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except OSError as exc:
            return [f"corral daemon: --config {path}: {exc.strerror or exc}"]
        checks: dict[str, Check] = {
            "init-path": check_init_path,
            "metrics-addr": check_metrics,
            "log-driver": check_driver,
            "log-opts": check_opts,
            "insecure-registries": check_insecure,
            "registry-mirrors": check_mirrors,
        }
        try:
            file = parse_daemon_config(text, path, checks)
        except ConfigError as exc:
            return [str(p) for p in exc.problems]
    flags = {key: getattr(args, key.replace("-", "_"), None) for key, _, _ in SETTINGS}
    flags["log-opts"] = args.log_opt
    flags["insecure-registries"] = args.insecure_registry
    flags["registry-mirrors"] = args.registry_mirror
    settled = settle([Setting(*s) for s in SETTINGS], flags, environ, file)
    for key, value in settled.items():
        setattr(args, key.replace("-", "_"), value)
    args.log_opt = settled["log-opts"]
    try:
        _metrics_addr(args.metrics_addr)
    except argparse.ArgumentTypeError as exc:
        return [f"corral daemon: --metrics-addr: {exc}"]
    from config.daemonconf import (
        NUMBER_KEYS,
        check_fixed_cidr_v6,
        check_userns_remap,
        parse_number,
    )

    for key in NUMBER_KEYS:
        attr = key.replace("-", "_")
        value = getattr(args, attr)
        if value is not None:
            try:
                setattr(args, attr, parse_number(key, value))
            except ValueError as exc:
                return [f"corral daemon: --{key}: {exc}"]
    try:
        args.registries = registry_hosts(args)  # the file's were checked at their lines
    except ValueError as exc:
        return [f"corral daemon: {exc}"]
    try:
        check_userns_remap(args.userns_remap)  # the file's was checked at its line
        check_fixed_cidr_v6(args.fixed_cidr_v6 or "")
    except ValueError as exc:
        return [f"corral daemon: --{exc}"]
    args.remap = None
    if args.userns_remap:
        from supervisor.runtime.userns import check_reachable, resolve

        try:
            args.remap = resolve(args.userns_remap)  # `default` makes dockremap
            check_reachable(Path(args.root))
        except CorralError as exc:
            return [f"corral daemon: {exc.message}"]
    return resolve_init(args)


def resolve_init(args: argparse.Namespace) -> list[str]:
    """Find the init binary now (`--init` needs a static one), so a daemon told to use
    a bad one, or told `init: true` on a host without one, says so and does not start."""
    from supervisor.runtime.initbin import find_init

    try:
        args.init_path = find_init(args.init_path or "")
    except ValueError as exc:
        return [f"corral daemon: --init-path {exc}"]
    if args.init and not args.init_path:
        return [
            "corral daemon: init: true needs a static init binary: install Debian's tini "
            "package (/usr/bin/tini-static) or set init-path"
        ]
    return []


class Refused(Exception):
    """Another daemon has this socket or this root: say which, and do not start."""


@dataclass
class DaemonLocks:
    """The locks this daemon holds (see daemonlock.py); the process's exit drops them."""

    owner: int
    gate: int
    root: int

    def open_gate(self) -> None:
        """The API listens: CLIs waiting for this daemon to start may go ahead."""
        if self.gate >= 0:
            daemonlock.unlock(self.gate)
            os.close(self.gate)
            self.gate = -1


def _handed_fds(value: str) -> tuple[int, int]:
    try:
        owner, gate = (int(part) for part in value.split(","))
    except ValueError:
        raise Refused(f"--lock-fds {value!r}: expected OWNER,GATE descriptors") from None
    for fd in (owner, gate):
        os.set_inheritable(fd, False)
        if not daemonlock.try_lock(fd):  # the same open file as the CLI's: ours already
            raise Refused(f"--lock-fds {value!r}: descriptor {fd} is not a held lock")
    return owner, gate


def take_locks(sock: Path, root: Path, handed: str | None) -> DaemonLocks:
    """The daemon's first step: own the socket, then the root, or refuse naming the holder.

    The gate comes first and stays closed until the API listens, so a CLI never takes
    a daemon that is recovering for an absent one (and never starts a second).
    """
    owner_path, gate_path = daemonlock.socket_locks(str(sock))
    pid = os.getpid()
    if handed is not None:
        owner, gate = _handed_fds(handed)
    else:
        if not sock.parent.exists():
            sock.parent.mkdir(mode=0o700, parents=True)
        gate = daemonlock.open_lock(gate_path)
        if not daemonlock.try_lock(gate):
            other = daemonlock.read_pid(gate)
            who = f" (pid {other})" if other else ""
            raise Refused(f"another corral daemon{who} is starting on unix://{sock}")
        owner = daemonlock.open_lock(owner_path)
        if not daemonlock.try_lock(owner):
            other = daemonlock.read_pid(owner)
            who = f" (pid {other})" if other else ""
            raise Refused(f"another corral daemon{who} is using socket unix://{sock}")
    daemonlock.write_pid(gate, pid)
    daemonlock.write_pid(owner, pid)
    root.mkdir(mode=0o700, parents=True, exist_ok=True)  # closed as stateroot.py wants
    root_fd = daemonlock.open_lock(daemonlock.root_lock(str(root)))
    if not daemonlock.try_lock(root_fd):
        other = daemonlock.read_pid(root_fd)
        who = f" (pid {other})" if other else ""
        raise Refused(f"another corral daemon{who} is using root {root}")
    daemonlock.write_pid(root_fd, pid)
    return DaemonLocks(owner, gate, root_fd)


def api_limits(args: argparse.Namespace) -> Any:
    """The API socket's `Limits` from the settled settings (unset ones: the defaults)."""
    from supervisor.api.server import Limits

    given = {
        field: getattr(args, f"api_{name}")
        for field, name in (
            ("header_timeout", "header_timeout"),
            ("idle_timeout", "idle_timeout"),
            ("body_timeout", "body_timeout"),
            ("per_client", "max_client_connections"),
            ("total", "max_connections"),
        )
        if getattr(args, f"api_{name}", None) is not None
    }
    return Limits(**given)


async def serve(args: argparse.Namespace) -> None:
    from supervisor.api.app import build_router
    from supervisor.api.server import serve_unix
    from supervisor.distribution.hosts import RegistryHosts
    from supervisor.engine.engine import open_engine
    from supervisor.engine.settings import EngineSettings
    from supervisor.runtime.process import set_child_subreaper

    log = structlog.get_logger("corral.daemon")
    set_child_subreaper()
    root = Path(args.root)
    sock = socket_path(args.host)
    settings = EngineSettings(
        runtime=args.runtime,
        cgroup_parent=args.cgroup_parent,
        log_defaults=args.log_defaults,
        init_path=args.init_path,
        init_default=bool(args.init),
        remap=getattr(args, "remap", None),
        live_restore=bool(getattr(args, "live_restore", False)),
        registries=getattr(args, "registries", None) or RegistryHosts(),
        ipv6=bool(getattr(args, "ipv6", False)),
        fixed_cidr_v6=getattr(args, "fixed_cidr_v6", "") or "",
        seccomp_helper=bool(getattr(args, "seccomp_helper", True)),
        userland_proxy=bool(getattr(args, "userland_proxy", False)),
    )
    async with open_engine(root, settings) as engine:
        exporter = None
        if args.metrics_addr:
            from metrics import Exporter

            exporter = Exporter(engine)
        await engine.recover()
        router = build_router(engine, exporter.observe_api if exporter else None)
        from supervisor.compose.engine import InProcessEngine
        from supervisor.compose.projects import Keeper

        local = InProcessEngine(router)  # compose in the daemon: no socket in between
        keeper = Keeper(engine.db, local)  # projects handed over by `corral up -d`
        keeper.register(router)
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async with trio.open_nursery() as api_nursery:
                await api_nursery.start(
                    functools.partial(serve_unix, limits=api_limits(args)), sock, router
                )
                await api_nursery.start(keeper.run)
                if exporter is not None:
                    from metrics import serve_metrics

                    await api_nursery.start(serve_metrics, args.metrics_addr, exporter)
                if getattr(args, "auto_update_interval", None):
                    from supervisor.rollout.autoupdate import run_every

                    await api_nursery.start(run_every, float(args.auto_update_interval), local)
                if args.services:
                    from supervisor.compose.servicesdir import run_services

                    await api_nursery.start(run_services, Path(args.services), local)
                args.locks.open_gate()
                log.info(
                    "daemon.ready",
                    root=str(root),
                    socket=str(sock),
                    runtime=args.runtime,
                    pid=os.getpid(),
                )
                if args.ready_fd >= 0:
                    try:
                        os.write(args.ready_fd, b"ready\n")
                    finally:
                        os.close(args.ready_fd)
                async for signum in signals:
                    log.info("daemon.shutdown", signal=signal.Signals(signum).name)
                    break
                api_nursery.cancel_scope.cancel()
        # leaving `open_engine`: containers stopped (or left to the holder), their
        # tasks ended, the stores closed, in that order
    log.info("daemon.stopped")


def raise_fd_limit() -> None:
    """Each running container holds a few descriptors (pipes, a pidfd) and every API
    client a socket: lift the soft limit to the hard one, as dockerd and containerd do."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    problems = apply_config(args, dict(os.environ))
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        return 1
    configure_logging(args.log_level)
    # A fatal signal (SIGSEGV in a C call, SIGBUS on a truncated mmap, SIGABRT) would end
    # the daemon with nothing in its log: faulthandler writes every thread's Python stack
    # to stderr first, so such a death names where it happened.
    faulthandler.enable()
    from supervisor.errors import CorralError
    from supervisor.supervise.logconfig import LogDefaults

    try:
        args.log_defaults = LogDefaults.from_flags(args.log_driver, args.log_opt)
    except CorralError as exc:
        print(f"corral daemon: {exc.message}", file=sys.stderr)
        return 2
    if os.geteuid() != 0:
        print(
            "corral daemon: must run as root (containers need namespaces and mounts)",
            file=sys.stderr,
        )
        return 1
    if args.cleanup:  # host-wide, for no root: no lock, no state, nothing served
        from supervisor.network.nat import sweep_tables
        from supervisor.network.orphans import sweep_bridges

        for name in [*sweep_bridges(), *sweep_tables()]:
            print(name)
        return 0
    # 022, not 077: runc and the unpackers make directories inside container roots whose
    # modes are the image's.  The state root is closed by modes (supervisor/stateroot.py).
    os.umask(0o022)
    if args.ready_fd >= 0:
        os.set_inheritable(args.ready_fd, False)
    try:
        args.locks = take_locks(socket_path(args.host), Path(args.root), args.lock_fds)
    except Refused as exc:
        print(f"corral daemon: {exc}", file=sys.stderr)
        return 1
    structlog.get_logger("corral.daemon").info(
        "daemon.starting", root=args.root, socket=args.host, pid=os.getpid()
    )
    raise_fd_limit()
    trio.run(serve, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
