"""`corral build`: send a context to the daemon's classic builder and show its progress.

The context directory is tarred here (numeric owners 0:0, as the docker CLI does),
minus what `.dockerignore` excludes; the Dockerfile and `.dockerignore` always go
along, and a Dockerfile from outside the context is added under a private name.
`-` reads a context tarball (or a bare Dockerfile) from stdin.

`--print` needs no daemon: it parses the Dockerfile and prints one JSON object per
instruction (for linters and CI).  Progress: `plain` prints the classic builder's
lines as they come; `tty` (the default on a terminal) keeps one status line per step
with CACHED/timing and shows RUN output dimmed under it.
"""

from __future__ import annotations

import io
import json
import os
import sys
import tarfile
import tempfile
import time

from supervisor.cli.context import CliError
from supervisor.cli.parser import Command, Opt, parse

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from typing import IO, Any, TextIO

    from supervisor.cli.context import Cli

BUILD = Command(
    "build",
    "corral build [OPTIONS] PATH | -",
    "Build an image from a Dockerfile",
    (
        Opt("build-arg", kind="list", help="Set build-time variables"),
        Opt("file", "f", "str", help='Name of the Dockerfile (default: "PATH/Dockerfile")'),
        Opt("label", kind="list", help="Set metadata for an image"),
        Opt("network", kind="str", help="Networking mode for the RUN instructions during build"),
        Opt("no-cache", help="Do not use cache when building the image"),
        Opt("print", help="Print how the Dockerfile is read, as JSON lines; do not build"),
        Opt(
            "progress",
            kind="str",
            default="auto",
            help="Set type of progress output (auto, plain, tty)",
        ),
        Opt("pull", help="Always attempt to pull a newer version of the image"),
        Opt("quiet", "q", help="Suppress the build output and print image ID on success"),
        Opt("tag", "t", "list", help='Name and optionally a tag in the "name:tag" format'),
        Opt("target", kind="str", help="Set the target build stage to build"),
    ),
    min_args=1,
    max_args=1,
)


_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}


def build_args(items: list[str], environ: Mapping[str, str]) -> dict[str, str | None]:
    """`K=V`, or a bare `K` taking the caller's environment value (as docker)."""
    out: dict[str, str | None] = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not key:
            raise CliError(f'invalid argument "{item}" for "--build-arg" flag', 125)
        out[key] = value if eq else environ.get(key)
    return out


def labels(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, _, value = item.partition("=")
        out[key] = value
    return out


def _read_ignore(ctx: str) -> Any:
    from supervisor.build.context import IgnoreMatcher

    path = os.path.join(ctx, ".dockerignore")
    try:
        with open(path, errors="replace") as f:
            return IgnoreMatcher.from_text(f.read())
    except FileNotFoundError:
        return IgnoreMatcher([])


def _tarinfo(tar: tarfile.TarFile, path: str, arcname: str) -> tarfile.TarInfo:
    info = tar.gettarinfo(path, arcname)
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def context_tar(ctx: str, dockerfile: str | None, out: IO[bytes]) -> str:
    """Write the context tar to `out`; returns the Dockerfile's name inside it."""
    from supervisor.build.context import clean_pattern

    ignore = _read_ignore(ctx)
    df_path = dockerfile or os.path.join(ctx, "Dockerfile")
    if not os.path.isfile(df_path):
        raise CliError(
            f"unable to prepare context: unable to evaluate symlinks in Dockerfile "
            f"path: lstat {os.path.abspath(df_path)}: no such file or directory"
        )
    real_ctx = os.path.realpath(ctx)
    real_df = os.path.realpath(df_path)
    inside = real_df.startswith(real_ctx + os.sep)
    df_name = (
        os.path.relpath(real_df, real_ctx) if inside else f".dockerfile.{os.urandom(10).hex()}"
    )
    keep = {clean_pattern(df_name), ".dockerignore"}
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for dirpath, dirnames, filenames in os.walk(ctx):
            rel_dir = os.path.relpath(dirpath, ctx)
            dirnames.sort()
            for name in sorted(filenames) + [
                d for d in dirnames if os.path.islink(os.path.join(dirpath, d))
            ]:
                rel = name if rel_dir == "." else f"{rel_dir}/{name}"
                if ignore.matches(rel) and rel not in keep:
                    continue
                full = os.path.join(dirpath, name)
                info = _tarinfo(tar, full, rel)
                if info.isfile():
                    with open(full, "rb") as f:
                        tar.addfile(info, f)
                else:
                    tar.addfile(info)
            kept_dirs = []
            for d in dirnames:
                rel = d if rel_dir == "." else f"{rel_dir}/{d}"
                full = os.path.join(dirpath, d)
                if os.path.islink(full):
                    continue
                if ignore.matches(rel) and not ignore.has_exclusions:
                    continue
                if not ignore.matches(rel):
                    tar.addfile(_tarinfo(tar, full, rel))
                kept_dirs.append(d)
            dirnames[:] = kept_dirs
        if not inside:
            with open(df_path, "rb") as f:
                data = f.read()
            info = tarfile.TarInfo(df_name)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = int(time.time())
            tar.addfile(info, io.BytesIO(data))
    return df_name


def _stdin_context(data: bytes, out: IO[bytes]) -> None:
    """stdin holds a tar (sent as is) or a bare Dockerfile (wrapped in a tar)."""
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as probe:
            probe.getmembers()
        out.write(data)
        return
    except tarfile.TarError:
        pass
    with tarfile.open(fileobj=out, mode="w|") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(data)
        info.mode = 0o644
        tar.addfile(info, io.BytesIO(data))


def cmd_build(cli: Cli, argv: list[str]) -> int:
    p = parse(BUILD, argv)
    ctx = p.args[0]
    args = build_args(p["build_arg"], cli.environ)
    progress = p["progress"] or "auto"
    if progress not in ("auto", "plain", "tty"):
        raise CliError(f"invalid progress mode {progress!r} (auto, plain, tty)", 125)
    if p["print"]:
        return _print(cli, ctx, p["file"], args)
    if ctx != "-" and not os.path.isdir(ctx):
        raise CliError(f'unable to prepare context: path "{ctx}" not found')
    from supervisor.cli.images import split_ref

    for t in p["tag"]:
        split_ref(t)
    with tempfile.TemporaryFile() as body:
        if ctx == "-":
            _stdin_context(sys.stdin.buffer.read(), body)
            df_name = p["file"] or "Dockerfile"
        else:
            df_name = context_tar(ctx, p["file"], body)
        body.seek(0)
        query: dict[str, Any] = {
            "t": p["tag"] or None,
            "dockerfile": df_name,
            "buildargs": json.dumps(args) if args else None,
            "labels": json.dumps(labels(p["label"])) if p["label"] else None,
            "target": p["target"] or None,
            "nocache": "1" if p["no_cache"] else None,
            "networkmode": p["network"] or None,
            "q": "1" if p["quiet"] else None,
            "pull": "1" if p["pull"] else None,
            "rm": "1",
        }
        resp = cli.client.request(
            "POST",
            "/build",
            query,
            body=body,
            headers={"Content-Type": "application/x-tar"},
        )
        tty = progress == "tty" or (progress == "auto" and cli.stdout.isatty())
        show = TtyProgress(cli.stdout) if tty and not p["quiet"] else PlainProgress(cli.stdout)
        error = show.run(resp.iter_lines())
    if error:
        raise CliError(error, 1)
    return 0


def _print(cli: Cli, ctx: str, file: str | None, args: dict[str, str | None]) -> int:
    import platform

    from supervisor.build.dockerfile import DockerfileError, auto_args, print_plan
    from supervisor.build.dockerfile import parse as parse_df

    path = file or (os.path.join(ctx, "Dockerfile") if ctx != "-" else "-")
    name = os.path.basename(path) if path != "-" else "Dockerfile"
    try:
        text = sys.stdin.read() if path == "-" else open(path).read()  # noqa: SIM115
    except OSError as exc:
        raise CliError(f"open {path}: {(exc.strerror or str(exc)).lower()}") from None
    try:
        arch = _ARCH.get(platform.machine(), platform.machine())
        plan = print_plan(parse_df(text), args, auto_args(arch))
    except DockerfileError as exc:
        raise CliError(exc.named(name).message) from None
    for obj in plan:
        cli.out(json.dumps(obj))
    return 0


class PlainProgress:
    """The classic builder's lines as they come (docker without a TTY)."""

    def __init__(self, out: TextIO) -> None:
        self.out = out

    def text(self, s: str) -> None:
        self.out.write(s)
        self.out.flush()

    def run(self, lines: Iterable[bytes]) -> str | None:
        from supervisor.cli.stream import json_messages, message_error

        for msg in json_messages(lines):
            error = message_error(msg)
            if error is not None:
                self.done()
                return error
            if isinstance(msg.get("stream"), str):
                self.text(msg["stream"])
            elif isinstance(msg.get("status"), str):  # a FROM image being pulled
                ident = msg.get("id")
                self.text(f"{ident}: {msg['status']}\n" if ident else f"{msg['status']}\n")
        self.done()
        return None

    def done(self) -> None:
        self.out.flush()


class TtyProgress(PlainProgress):
    """One status line per step (`[2/5] RUN ...  CACHED` / `0.4s`), RUN output dimmed."""

    def __init__(self, out: TextIO) -> None:
        super().__init__(out)
        self.step = ""
        self.started = 0.0
        self.cached = False
        self.shown_output = False
        self.partial = ""

    def _finish_step(self) -> None:
        if not self.step:
            return
        self._flush_partial()
        took = f"{time.monotonic() - self.started:.1f}s"
        status = "\x1b[34mCACHED\x1b[0m" if self.cached else took
        if self.shown_output:
            self.out.write(f"\x1b[1m=> {self.step}\x1b[0m {status}\n")
        else:
            self.out.write(f"\r\x1b[K\x1b[1m=> {self.step}\x1b[0m {status}\n")
        self.step = ""
        self.out.flush()

    def _flush_partial(self) -> None:
        if self.partial:
            self.out.write(f"\x1b[2m   | {self.partial}\x1b[0m\n")
            self.partial = ""

    def text(self, s: str) -> None:
        if s.startswith("Step "):
            self._finish_step()
            head, _, rest = s.partition(" : ")
            num = head.removeprefix("Step ")
            self.step = f"[{num}] {rest.strip()}"
            self.started = time.monotonic()
            self.cached = False
            self.shown_output = False
            self.out.write(f"\x1b[1m=> {self.step}\x1b[0m ...")
            self.out.flush()
            return
        if s.startswith(" ---> "):
            what = s[6:].strip()
            if what == "Using cache":
                self.cached = True
            return
        if s.startswith(("Successfully", "[Warning]")):
            self._finish_step()
            self.out.write(s)
            self.out.flush()
            return
        if s.startswith("# Executing"):
            return
        if self.step and not self.shown_output:
            self.out.write("\n")
            self.shown_output = True
        data = self.partial + s
        *lines, self.partial = data.split("\n")
        for line in lines:
            self.out.write(f"\x1b[2m   | {line}\x1b[0m\n")
        self.out.flush()

    def done(self) -> None:
        if self.step:
            self._flush_partial()
            if not self.shown_output:
                self.out.write("\n")
        self.step = ""
        self.out.flush()
