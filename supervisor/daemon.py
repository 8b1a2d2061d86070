"""`corral daemon`: the one long-running process that owns every container.

Structure (trio): one root nursery holds the API server and, through the engine, one
supervision task per running container.  SIGTERM/SIGINT stop the containers the way
Docker does on shutdown, then cancel everything.  The daemon is the child subreaper of
container inits, so `runc create` can exit and leave the init to us.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path

import structlog
import trio

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


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="corral daemon", description="Run the corral supervisor.")
    p.add_argument(
        "--root",
        default=os.environ.get("CORRAL_ROOT", DEFAULT_ROOT),
        help=f"state root (default {DEFAULT_ROOT}, env CORRAL_ROOT)",
    )
    p.add_argument(
        "-H",
        "--host",
        default=os.environ.get("CORRAL_HOST", DEFAULT_HOST),
        help=f"API socket (default {DEFAULT_HOST}, env CORRAL_HOST)",
    )
    p.add_argument(
        "--runtime",
        default=os.environ.get("CORRAL_RUNTIME", "runc"),
        help="OCI runtime binary: runc (default) or crun",
    )
    p.add_argument(
        "--cgroup-parent",
        default="corral",
        help="parent cgroup of every container (default corral)",
    )
    p.add_argument("--log-driver", default="json-file",
                   help="default log driver for containers (json-file)")
    p.add_argument("--log-opt", action="append", default=[], metavar="KEY=VALUE",
                   help="default log options, e.g. max-size=10m, max-file=3 (repeatable)")
    p.add_argument(
        "--ready-fd", type=int, default=-1, help="write a line to this fd once the API is listening"
    )
    p.add_argument("--log-level", default="info")
    p.add_argument(
        "--metrics-addr",
        default=os.environ.get("CORRAL_METRICS_ADDR", "127.0.0.1:9323"),
        type=_metrics_addr,
        help="serve Prometheus /metrics and /healthz here (default 127.0.0.1:9323; empty disables)",
    )
    p.add_argument(
        "--services",
        default=os.environ.get("CORRAL_SERVICES"),
        help="directory of compose files kept running; reloaded on change and on SIGHUP",
    )
    return p.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    from supervisor.api.app import build_router
    from supervisor.api.server import serve_unix
    from supervisor.engine.engine import Engine
    from supervisor.runtime.process import set_child_subreaper

    log = structlog.get_logger("corral.daemon")
    set_child_subreaper()
    root = Path(args.root)
    sock = socket_path(args.host)
    async with trio.open_nursery() as containers_nursery:
        engine = Engine(
            root,
            containers_nursery,
            runtime=args.runtime,
            cgroup_parent=args.cgroup_parent,
            log_defaults=args.log_defaults,
        )
        exporter = None
        if args.metrics_addr:
            from metrics import Exporter

            exporter = Exporter(engine)
        await engine.recover()
        router = build_router(engine, exporter.observe_api if exporter else None)
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async with trio.open_nursery() as api_nursery:
                await api_nursery.start(serve_unix, sock, router)
                if exporter is not None:
                    from metrics import serve_metrics

                    await api_nursery.start(serve_metrics, args.metrics_addr, exporter)
                if args.services:
                    from supervisor.cli.compose_services import run_services

                    await api_nursery.start(run_services, Path(args.services), str(sock))
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
        with trio.move_on_after(30):
            await engine.shutdown()
        containers_nursery.cancel_scope.cancel()
    engine.db.close()
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
    configure_logging(args.log_level)
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
    os.umask(0o022)
    raise_fd_limit()
    trio.run(serve, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
