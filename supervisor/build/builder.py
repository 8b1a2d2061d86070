"""Execute a Dockerfile in the daemon, step by step, the way Docker's classic builder does.

Each step starts from the previous step's image and yields a new image (its parent):

- RUN runs a build container from the current image (the stage's Env plus build-time
  ARGs, WorkingDir, User, SHELL) through the engine, streams its output, and commits
  the container's writable layer: one layer, OCI whiteouts for deletions.
- COPY/ADD/WORKDIR mount an overlay of the current image with a scratch upper, write
  through `secure_join`, unmount, and commit the upper the same way.
- Every other instruction only edits the config: an image with an `empty_layer`
  history entry and no new layer.

Every step first asks the cache (`cache.py`); a hit reuses the image and skips the
work.  The messages yielded are the classic builder's JSON stream (`{"stream": "Step
1/5 : FROM busybox\\n"}`, `{"aux": {"ID": ...}}`), so `docker build` and docker-py show
them as they would Docker's.  A failure raises `DockerfileError` naming the line; the
images this build made are removed again and no tag is set: nothing half made stays.
"""

from __future__ import annotations

import codecs
import contextlib
import json
import os
import posixpath
import secrets
import signal
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
import trio

from supervisor.build import files
from supervisor.build.cache import BuildCache, cache_key
from supervisor.build.context import BuildContext, has_glob
from supervisor.build.dockerfile import (
    DEFAULT_SHELL,
    PREDEFINED_ARGS,
    Dockerfile,
    DockerfileError,
    Instruction,
    Stage,
    auto_args,
    expand_instruction,
    find_stage,
    parse,
    stage_arg_values,
    stages,
)
from supervisor.engine.create import merge_env
from supervisor.engine.engine import Engine
from supervisor.engine.users import resolve_chown
from supervisor.errors import CorralError, InvalidArgument, NotFound, disk_full
from supervisor.images.reference import parse as parse_ref
from supervisor.images.store import host_arch, short_id
from supervisor.rmtree import discard_tree
from supervisor.runtime.rootfs import is_mounted, mount_overlay, unmount
from supervisor.units import go_duration_ns

log = structlog.get_logger("corral.build")

Message = dict[str, Any]


@dataclass
class BuildOptions:
    dockerfile: str = "Dockerfile"
    tags: list[str] = field(default_factory=list)
    build_args: dict[str, str | None] = field(default_factory=dict)
    target: str = ""
    no_cache: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    network_mode: str = ""
    quiet: bool = False
    pull: bool = False  # --pull: FROM images from their registry even if present


@dataclass
class _State:
    """A stage in progress: its current image and what substitution sees."""

    stage: Stage
    image_id: str | None  # None: FROM scratch, nothing committed yet
    config: dict[str, Any]
    args: dict[str, str] = field(default_factory=dict)
    cmd_set: bool = False

    def env(self) -> dict[str, str]:
        out = dict(self.args)
        for e in self.config.get("Env") or []:
            k, _, v = e.partition("=")
            out[k] = v
        return out


def validate_tags(tags: list[str]) -> list[str]:
    """Tags as stored names; a bad one is refused before anything is built."""
    out = []
    for t in tags:
        ref = parse_ref(t)
        if ref.digest is not None:
            raise InvalidArgument(f"invalid reference format: {t}: a tag may not hold a digest")
        out.append(ref.name())
    return out


def sweep(root: Path) -> None:
    """Remove what a crashed build left under the state root (mounts first)."""
    base = root / "tmp" / "build"
    if not base.is_dir():
        return
    for d in base.iterdir():
        for sub in ("rootfs", "from"):
            for mp in [d / sub, *((d / sub).glob("*") if (d / sub).is_dir() else [])]:
                if is_mounted(mp):
                    unmount(mp)
        discard_tree(d)


class Builder:
    """One build: a context directory, a Dockerfile in it, options."""

    def __init__(
        self, engine: Engine, context_dir: Path, workdir: Path, opts: BuildOptions
    ) -> None:
        self.engine = engine
        self.store = engine.images
        self.cache = BuildCache(engine.db)
        self.context = BuildContext.open(context_dir)
        self.workdir = workdir
        self.opts = opts
        self.filename = posixpath.basename(opts.dockerfile) or "Dockerfile"
        self.made: list[str] = []  # images this build created (removed on failure)
        self.consumed: set[str] = set()
        self.step = 0
        self.total = 0
        self.df: Dockerfile | None = None
        self.stage_images: dict[int, str | None] = {}

    # ---------------------------------------------------------------- driver
    def _fail(self, ins: Instruction | None, msg: str) -> DockerfileError:
        return DockerfileError(msg, ins.start_line if ins else 0, self.filename)

    def _read_dockerfile(self) -> Dockerfile:
        rel = posixpath.normpath(self.opts.dockerfile.lstrip("/"))
        try:
            path = self.context.resolve(rel, self.opts.dockerfile)
            text = path.read_text()
        except (OSError, InvalidArgument):
            raise InvalidArgument(
                f"Cannot locate specified Dockerfile: {self.opts.dockerfile}"
            ) from None
        try:
            return parse(text)
        except DockerfileError as e:
            raise e.named(self.filename) from None

    def _needed(self, all_stages: list[Stage], target: int) -> set[int]:
        """Stages the target depends on (FROM <stage>, COPY --from=<stage>)."""
        need: set[int] = set()

        def visit(i: int) -> None:
            if i in need:
                return
            need.add(i)
            st = all_stages[i]
            dep = find_stage(all_stages, st.base, i)
            if dep is not None:
                visit(dep.index)
            for ins in st.body:
                ref = ins.flag("from") if ins.cmd == "COPY" else None
                if ref:
                    d = find_stage(all_stages, ref, i)
                    if d is not None:
                        visit(d.index)

        visit(target)
        return need

    async def run(self) -> AsyncIterator[Message]:
        """The build, as the classic builder's JSON messages; raises on failure."""
        ok = False
        try:
            async for msg in self._run():
                yield msg
            ok = True
        finally:
            if not ok:
                with trio.CancelScope(shield=True):
                    self._undo()

    def _undo(self) -> None:
        for image_id in reversed(self.made):
            self.cache.forget(image_id)
            with contextlib.suppress(CorralError):
                self.store.delete(image_id, prune=False)
        self.made.clear()

    async def _run(self) -> AsyncIterator[Message]:
        tags = validate_tags(self.opts.tags)
        df = self.df = self._read_dockerfile()
        try:
            all_stages, global_scope = stages(df, self.opts.build_args, auto_args(host_arch()))
        except DockerfileError as e:
            raise e.named(self.filename) from None
        self.consumed |= {k for k in self.opts.build_args if k in global_scope}
        target = len(all_stages) - 1
        if self.opts.target:
            found = find_stage(all_stages, self.opts.target, len(all_stages))
            if found is None or not found.name:
                raise InvalidArgument(
                    f"failed to reach build target {self.opts.target} in Dockerfile"
                )
            target = found.index
        needed = self._needed(all_stages, target)
        if self.opts.labels:
            text = " ".join(f"{json.dumps(k)}={json.dumps(v)}" for k, v in self.opts.labels.items())
            all_stages[target].body.append(
                Instruction(
                    "LABEL",
                    tuple(f"{k}={json.dumps(v)}" for k, v in self.opts.labels.items()),
                    original="LABEL " + text,
                )
            )
        self.total = sum(1 + len(all_stages[i].body) for i in needed)
        final: str | None = None
        for st in all_stages:
            if st.index not in needed:
                continue
            state: _State | None = None
            async for msg in self._from(st, all_stages, global_scope):
                if isinstance(msg, _State):
                    state = msg
                else:
                    yield msg
            assert state is not None
            for ins in st.body:
                async for m in self._step(state, ins, all_stages, global_scope):
                    yield m
            if state.image_id is None:
                state.image_id = await self._commit_config(state, "scratch")
            self.stage_images[st.index] = state.image_id
            if st.index == target:
                final = state.image_id
                break
        assert final is not None
        unused = sorted(
            k for k in self.opts.build_args if k not in self.consumed and k not in PREDEFINED_ARGS
        )
        if unused:
            yield {
                "stream": f"[Warning] One or more build-args [{' '.join(unused)}] "
                "were not consumed\n"
            }
        yield {"aux": {"ID": final}}
        yield {"stream": f"Successfully built {short_id(final)}\n"}
        for t in tags:
            await self.store.run(self.store.tag, final, t)
            yield {"stream": f"Successfully tagged {t}\n"}
        self.made.clear()  # success: everything made is kept (cache, history)

    def _header(self, ins: Instruction) -> list[Message]:
        self.step += 1
        return [{"stream": f"Step {self.step}/{self.total} : {ins.describe()}\n"}]

    # ------------------------------------------------------------------ FROM
    def _local(self, st: Stage) -> str | None:
        try:
            return self.store.resolve(st.base).id
        except NotFound:
            return None
        except InvalidArgument as e:
            raise self._fail(st.from_ins, f"FROM {st.base}: {e.message}") from None

    async def _pull_base(self, st: Stage) -> tuple[list[Message], str]:
        """Pull a FROM image as `docker build` does, its progress in the build's stream
        (gathered, then shown: the pull runs its own nursery)."""
        from supervisor.distribution.progress import message
        from supervisor.distribution.pull import Progress, Puller
        from supervisor.distribution.reference import remote
        from supervisor.distribution.transport import HttpClient

        msgs: list[Message] = []

        def emit(p: Progress) -> None:
            if p.current is None:  # byte progress is for terminals, not build logs
                msgs.append(message(p))

        http = HttpClient()
        try:
            result = await Puller(self.store, http).pull(remote(st.base), emit)
        except CorralError as e:
            raise self._fail(st.from_ins, f"FROM {st.base}: {e.message}") from None
        finally:
            await http.aclose()
        return msgs, result.image_id

    async def _from(
        self, st: Stage, all_stages: list[Stage], scope: Mapping[str, str]
    ) -> AsyncIterator[Any]:
        for m in self._header(st.from_ins):
            yield m
        dep = find_stage(all_stages, st.base, st.index)
        image_id: str | None
        if dep is not None:
            image_id = self.stage_images.get(dep.index)
        elif st.base.lower() == "scratch":
            image_id = None
        else:
            image_id = None if self.opts.pull else self._local(st)
            if image_id is None:  # not here (or --pull): from its registry
                msgs, image_id = await self._pull_base(st)
                for m in msgs:
                    yield m
        config: dict[str, Any] = {}
        if image_id is not None:
            config = dict(self.store.config(image_id).get("config") or {})
            yield {"stream": f" ---> {short_id(image_id)}\n"}
        state = _State(st, image_id, config)
        triggers = list(config.get("OnBuild") or [])
        if triggers:
            yield {
                "stream": f"# Executing {len(triggers)} build trigger"
                f"{'s' if len(triggers) > 1 else ''}\n"
            }
            state.config["OnBuild"] = None
            for text in triggers:
                try:
                    trig = parse(text).instructions
                except DockerfileError as e:
                    raise self._fail(st.from_ins, f"ONBUILD trigger {text!r}: {e.bare}") from None
                for t in trig:
                    t = Instruction(
                        **{
                            **t.__dict__,
                            "start_line": st.from_ins.start_line,
                            "end_line": st.from_ins.end_line,
                        }
                    )
                    async for m in self._execute(state, t, all_stages, scope, header=False):
                        yield m
        yield state

    # ------------------------------------------------------------------ steps
    async def _step(
        self, state: _State, ins: Instruction, all_stages: list[Stage], scope: Mapping[str, str]
    ) -> AsyncIterator[Message]:
        async for m in self._execute(state, ins, all_stages, scope, header=True):
            yield m

    async def _execute(
        self,
        state: _State,
        ins: Instruction,
        all_stages: list[Stage],
        scope: Mapping[str, str],
        *,
        header: bool,
    ) -> AsyncIterator[Message]:
        if header:
            for m in self._header(ins):
                yield m
        assert self.df is not None
        try:
            x = expand_instruction(ins, state.env(), self.df.escape)
        except DockerfileError as e:
            raise e.named(self.filename) from None
        try:
            if x.cmd == "RUN":
                async for m in self._run_step(state, x):
                    yield m
            elif x.cmd in ("COPY", "ADD"):
                async for m in self._copy_step(state, x, all_stages):
                    yield m
            elif x.cmd == "WORKDIR":
                async for m in self._workdir_step(state, x):
                    yield m
            else:
                self._config_step(state, x, scope)
                async for m in self._commit_config_cached(state, x):
                    yield m
        except DockerfileError:
            raise
        except CorralError as e:
            raise self._fail(ins, e.message) from None
        except OSError as e:
            full = disk_full(e)
            if full is not None:
                why = full.message
            elif e.filename:
                why = f"{e.filename}: {e.strerror or e}"
            else:
                why = str(e.strerror or e)
            raise self._fail(ins, f"{ins.cmd}: {why}") from None

    # ---------------------------------------------------------- config-only
    def _config_step(self, state: _State, x: Instruction, scope: Mapping[str, str]) -> None:
        cfg = state.config
        cmd = x.cmd
        if cmd == "ENV":
            env = list(cfg.get("Env") or [])
            for k, v in x.pairs():
                entry = f"{k}={v or ''}"
                idx = next((i for i, e in enumerate(env) if e.partition("=")[0] == k), None)
                if idx is None:
                    env.append(entry)
                else:
                    env[idx] = entry
            cfg["Env"] = env
        elif cmd == "ARG":
            values = stage_arg_values(x, self.opts.build_args, scope)
            for k, _ in x.pairs():
                if k in self.opts.build_args:
                    self.consumed.add(k)
            state.args.update(values)
        elif cmd == "LABEL":
            labels = dict(cfg.get("Labels") or {})
            labels.update((k, v or "") for k, v in x.pairs())
            cfg["Labels"] = labels
        elif cmd == "EXPOSE":
            ports = dict(cfg.get("ExposedPorts") or {})
            for p in x.args:
                ports[_port_key(p)] = {}
            cfg["ExposedPorts"] = ports
        elif cmd == "VOLUME":
            vols = dict(cfg.get("Volumes") or {})
            for v in x.args:
                if not v.strip():
                    raise InvalidArgument("VOLUME specified can not be an empty string")
                vols[v] = {}
            cfg["Volumes"] = vols
        elif cmd == "USER":
            cfg["User"] = x.args[0]
        elif cmd == "STOPSIGNAL":
            _check_signal(x.args[0])
            cfg["StopSignal"] = x.args[0]
        elif cmd == "CMD":
            cfg["Cmd"] = self._form(state, x)
            state.cmd_set = True
        elif cmd == "ENTRYPOINT":
            cfg["Entrypoint"] = self._form(state, x) or None
            if not state.cmd_set:
                cfg["Cmd"] = None  # as Docker: a new ENTRYPOINT drops the base image's CMD
        elif cmd == "SHELL":
            cfg["Shell"] = list(x.args)
        elif cmd == "HEALTHCHECK":
            cfg["Healthcheck"] = _healthcheck(x, self._shell(state))
        elif cmd == "ONBUILD":
            cfg["OnBuild"] = [*(cfg.get("OnBuild") or []), x.args[0]]
        elif cmd == "MAINTAINER":
            state.config["__author"] = x.args[0]
        else:  # pragma: no cover - the parser refuses unknown instructions
            raise InvalidArgument(f"unknown instruction: {cmd}")

    def _shell(self, state: _State) -> list[str]:
        return list(state.config.get("Shell") or DEFAULT_SHELL)

    def _form(self, state: _State, x: Instruction) -> list[str]:
        if x.json:
            return list(x.args)
        if not x.args:
            return []
        return [*self._shell(state), x.args[0]]

    async def _commit_config_cached(self, state: _State, x: Instruction) -> AsyncIterator[Message]:
        step = {"cmd": x.cmd, "args": list(x.args), "json": x.json, "flags": list(x.flags)}
        if x.cmd == "ARG":
            step["values"] = {k: state.args.get(k) for k, _ in x.pairs()}
        if x.cmd in ("CMD", "ENTRYPOINT", "HEALTHCHECK"):
            step["shell"] = self._shell(state)
        author = state.config.pop("__author", None)
        if author is not None:
            step["author"] = author
        key = cache_key(state.image_id, step)
        hit = await self._cached(state, key)
        if hit:
            yield {"stream": " ---> Using cache\n"}
        else:
            created_by = f"/bin/sh -c #(nop)  {_nop_text(x)}"
            state.image_id = await self._commit_config(state, created_by, author=author or "")
            self.cache.put(key, state.image_id)
        yield {"stream": f" ---> {short_id(state.image_id or '')}\n"}

    async def _cached(self, state: _State, key: str) -> bool:
        if self.opts.no_cache:
            return False
        found = self.cache.get(key, self.store.exists)
        if found is None:
            return False
        self._adopt(state, found)
        return True

    def _adopt(self, state: _State, image_id: str) -> None:
        state.image_id = image_id
        state.config = dict(self.store.config(image_id).get("config") or {})

    def _empty_dir(self) -> Path:
        d = self.workdir / f"empty-{secrets.token_hex(4)}"
        d.mkdir(parents=True, exist_ok=True)
        return d

    async def _commit_config(self, state: _State, created_by: str, author: str = "") -> str:
        empty = self._empty_dir()
        try:
            rec = await self.store.run(
                self.store.commit,
                empty,
                state.image_id,
                _clean_config(state.config),
                None,
                created_by=created_by,
                author=author,
            )
        finally:
            discard_tree(empty)
        self.made.append(rec.id)
        self._adopt(state, rec.id)
        return rec.id

    # -------------------------------------------------------------------- RUN
    def _run_argv(self, state: _State, x: Instruction) -> list[str]:
        if x.json:
            return list(x.args)
        text = x.args[0]
        if x.heredocs:
            words = text.split()
            doc = x.heredocs[0]
            if (
                len(x.heredocs) == 1
                and len(words) == 1
                and words[0].lstrip("0123456789").startswith("<<")
            ):
                content = doc.content
                if content.startswith("#!"):
                    script = (
                        "f=$(mktemp) && cat > \"$f\" <<'CORRAL_HEREDOC_EOF'\n"
                        f"{content}CORRAL_HEREDOC_EOF\n"
                        'chmod +x "$f" && "$f"; rc=$?; rm -f "$f"; exit $rc'
                    )
                    return [*self._shell(state), script]
                return [*self._shell(state), content]
            script = text
            for doc in x.heredocs:
                script += "\n" + doc.content + doc.name
            return [*self._shell(state), script]
        return [*self._shell(state), text]

    async def _run_step(self, state: _State, x: Instruction) -> AsyncIterator[Message]:
        for m in x.flag_all("mount"):
            if m:
                raise InvalidArgument(f"RUN --mount={m} is not supported by corral's builder yet")
        if state.image_id is None:
            state.image_id = await self._commit_config(state, "scratch")
        argv = self._run_argv(state, x)
        build_env = [f"{k}={v}" for k, v in sorted(state.args.items())]
        step = {
            "cmd": "RUN",
            "argv": argv,
            "args": build_env,
            "network": x.flag("network") or self.opts.network_mode,
        }
        key = cache_key(state.image_id, step)
        if await self._cached(state, key):
            yield {"stream": " ---> Using cache\n"}
            yield {"stream": f" ---> {short_id(state.image_id)}\n"}
            return
        network = x.flag("network") or self.opts.network_mode or "default"
        if network not in ("default", "none", "host"):
            raise InvalidArgument(f"RUN --network={network} is not supported (default, none, host)")
        cfg = state.config
        body: dict[str, Any] = {
            "Image": state.image_id,
            "Cmd": argv,
            "Entrypoint": [""],
            "Env": merge_env(build_env, cfg.get("Env")),
            "WorkingDir": cfg.get("WorkingDir") or "",
            "User": cfg.get("User") or "",
            "Healthcheck": {"Test": ["NONE"]},
            "Labels": {},
            # the host's user namespace even under userns-remap: the step's upper
            # becomes a layer, which must hold the image's own ids
            "HostConfig": {"NetworkMode": network, "UsernsMode": "host"},
        }
        c = self.engine.create(body)
        code = -1
        tail: list[str] = []
        try:
            yield {"stream": f" ---> Running in {c.short_id}\n"}
            live = self.engine.live(c)
            output = live.output.subscribe()
            wait = self.engine.waiter(c, "next-exit")
            try:
                await self.engine.start(c)
            except CorralError as e:
                output.close()
                raise InvalidArgument(f"RUN {_show(argv)}: {e.message}") from None
            decoders = {
                s: codecs.getincrementaldecoder("utf-8")("replace") for s in ("stdout", "stderr")
            }
            async with output:
                async for stream, data in output:
                    text = decoders[stream].decode(data)
                    if text:
                        tail = (tail + text.splitlines())[-10:]
                        if not self.opts.quiet:
                            yield {"stream": text}
            code = int((await wait())["StatusCode"])
            if code != 0:
                raise InvalidArgument(
                    f"The command '{_show(argv)}' returned a non-zero code: {code}"
                    + (f" (last output: {tail[-1].strip()!r})" if tail and tail[-1].strip() else "")
                )
            prefix = f"|{len(build_env)} {' '.join(build_env)} " if build_env else ""
            rec = await self.store.run(
                self.store.commit,
                self.engine.dir_of(c) / "upper",
                state.image_id,
                _clean_config(cfg),
                None,
                created_by=prefix + _show(argv),
            )
            self.made.append(rec.id)
            self.cache.put(key, rec.id)
            self._adopt(state, rec.id)
        finally:
            with trio.CancelScope(shield=True), contextlib.suppress(CorralError):
                await self.engine.remove(c, force=True, volumes=True)
        yield {"stream": f" ---> Removed intermediate container {c.short_id}\n"}
        yield {"stream": f" ---> {short_id(state.image_id)}\n"}

    # ------------------------------------------------------- mutation steps
    @contextlib.asynccontextmanager
    async def _mounted(self, image_id: str | None) -> AsyncIterator[tuple[Path, Path]]:
        """An overlay of `image_id` with a fresh upper: (rootfs, upper)."""
        d = self.workdir / f"step-{secrets.token_hex(4)}"
        upper, work, rootfs, empty = d / "upper", d / "work", d / "rootfs", d / "empty"
        for p in (upper, work, rootfs, empty):
            p.mkdir(parents=True)
        os.chmod(upper, 0o755)
        lowers = self.store.layer_dirs(image_id) if image_id else []
        # The daemon copies files in and out; no process runs from this view.
        mount_overlay(lowers or [empty], upper, work, rootfs, host_only=True)
        try:
            yield rootfs, upper
        finally:
            unmount(rootfs)

    def _cleanup_step_dirs(self) -> None:
        for d in self.workdir.glob("step-*"):
            if not is_mounted(d / "rootfs"):
                discard_tree(d)

    async def _commit_upper(self, state: _State, upper: Path, created_by: str, key: str) -> None:
        # a layer's tar, hash and unpack: a worker thread's job, never the daemon's loop
        config = _clean_config(state.config)
        rec = await self.store.run(
            self.store.commit, upper, state.image_id, config, None, created_by=created_by
        )
        self.made.append(rec.id)
        self.cache.put(key, rec.id)
        self._adopt(state, rec.id)

    async def _workdir_step(self, state: _State, x: Instruction) -> AsyncIterator[Message]:
        path = x.args[0]
        cur = state.config.get("WorkingDir") or "/"
        new = posixpath.normpath(posixpath.join(cur, path))
        if new.startswith("//"):
            new = new[1:]
        state.config["WorkingDir"] = new
        key = cache_key(state.image_id, {"cmd": "WORKDIR", "path": new})
        if await self._cached(state, key):
            yield {"stream": " ---> Using cache\n"}
        else:
            try:
                async with self._mounted(state.image_id) as (rootfs, upper):
                    await trio.to_thread.run_sync(files.ensure_dir, rootfs, new)
                await self._commit_upper(state, upper, f"/bin/sh -c #(nop) WORKDIR {new}", key)
            finally:
                self._cleanup_step_dirs()
        yield {"stream": f" ---> {short_id(state.image_id or '')}\n"}

    def _dest(self, state: _State, raw: str) -> tuple[str, bool]:
        wd = state.config.get("WorkingDir") or "/"
        is_dir = raw.endswith("/") or raw in (".", "./") or raw.endswith("/.")
        dest = posixpath.normpath(posixpath.join(wd, raw))
        if dest.startswith("//"):
            dest = dest[1:]
        return dest, is_dir

    def _resolve_from(self, ref: str, all_stages: list[Stage], before: int) -> str:
        st = find_stage(all_stages, ref, before)
        if st is not None:
            image = self.stage_images.get(st.index)
            if image is None:
                raise InvalidArgument(f"stage {ref} was not built")
            return image
        try:
            return self.store.resolve(ref).id
        except (NotFound, InvalidArgument):
            raise InvalidArgument(
                f"COPY --from={ref}: no such stage or image (stages are named with FROM ... AS)"
            ) from None

    async def _copy_step(
        self, state: _State, x: Instruction, all_stages: list[Stage]
    ) -> AsyncIterator[Message]:
        *srcs, raw_dest = x.args
        dest, dest_is_dir = self._dest(state, raw_dest)
        from_ref = x.flag("from") if x.cmd == "COPY" else None
        from_image = (
            self._resolve_from(from_ref, all_stages, state.stage.index) if from_ref else None
        )
        chmod = _parse_chmod(x.flag("chmod"))
        heredocs = {h.name: h for h in x.heredocs}
        docs: list[tuple[str, bytes]] = []
        local: list[str] = []
        for s in srcs:
            m = s.lstrip("0123456789")
            if m.startswith("<<") and heredocs:
                name = m.lstrip("<-").strip("'\"")
                if name in heredocs:
                    docs.append((name, heredocs[name].content.encode()))
                    continue
            if "://" in s or s.startswith("git@"):
                if x.cmd == "ADD":
                    raise InvalidArgument(
                        f"ADD {s}: corral builds have no network to download it; "
                        "put the file in the build context and COPY it"
                    )
                raise InvalidArgument(f"COPY does not support URLs ({s}); use ADD")
            local.append(s)
        if len(srcs) > 1 and not dest_is_dir:
            raise InvalidArgument(
                f"When using {x.cmd} with more than one source file, "
                "the destination must be a directory and end with a /"
            )
        step: dict[str, Any] = {
            "cmd": x.cmd,
            "dest": dest,
            "dir": dest_is_dir,
            "chown": x.flag("chown"),
            "chmod": x.flag("chmod"),
            "from": from_image,
            "docs": [[n, c.decode()] for n, c in docs],
        }
        rels: list[list[str]] = []
        if from_image is None:
            for s in local:
                found = self.context.sources(s)
                rels.append(found)
            checks = await trio.to_thread.run_sync(lambda: [self.context.checksum(r) for r in rels])
            step["sources"] = [[s, c] for s, c in zip(local, checks, strict=True)]
        else:
            step["sources"] = local
        key = cache_key(state.image_id, step)
        if await self._cached(state, key):
            yield {"stream": " ---> Using cache\n"}
            yield {"stream": f" ---> {short_id(state.image_id or '')}\n"}
            return
        described = ", ".join(local + [f"<<{n}" for n, _ in docs])
        try:
            async with self._mounted(state.image_id) as (rootfs, upper):
                owner = files.Owner(0, 0)
                spec = x.flag("chown")
                if spec:
                    owner = files.Owner(*resolve_chown(rootfs, spec))
                if from_image is None:
                    work = self._copy_from_context(
                        rootfs, x, local, rels, dest, dest_is_dir, owner, chmod
                    )
                    await trio.to_thread.run_sync(work)
                else:
                    async with self._mounted(from_image) as (src_root, _):
                        work = _copy_from_image(
                            src_root, rootfs, local, dest, dest_is_dir, owner, chmod
                        )
                        await trio.to_thread.run_sync(work)
                for name, content in docs:
                    files.write_file(rootfs, dest, name, content, dest_is_dir, owner, chmod)
            await self._commit_upper(
                state, upper, f"/bin/sh -c #(nop) {x.cmd} {described} in {dest} ", key
            )
        finally:
            self._cleanup_step_dirs()
        yield {"stream": f" ---> {short_id(state.image_id or '')}\n"}

    def _copy_from_context(
        self,
        rootfs: Path,
        x: Instruction,
        local: list[str],
        rels: list[list[str]],
        dest: str,
        dest_is_dir: bool,
        owner: files.Owner,
        chmod: int | None,
    ) -> Callable[[], None]:
        ctx = self.context
        many = len(rels) > 1 or any(len(r) > 1 for r in rels) or any(has_glob(s) for s in local)

        def work() -> None:
            for found in rels:
                for rel in found:
                    path = ctx.resolve(rel, rel)
                    name = posixpath.basename(rel) if rel not in ("", ".") else ""
                    if x.cmd == "ADD" and files.is_archive(path):
                        files.extract_archive(rootfs, path, dest, self.workdir)
                        continue
                    if path.is_dir() and not path.is_symlink():
                        real = "." if path == ctx.root else str(path.relative_to(ctx.root))
                        entries = files.entries_of(ctx.walk(real), real)
                        src = files.Source(name, path, entries)
                    else:
                        src = files.Source(name, path)
                    files.copy_sources(rootfs, [src], dest, dest_is_dir or many, owner, chmod)

        return work


def _copy_from_image(
    src_root: Path,
    rootfs: Path,
    srcs: list[str],
    dest: str,
    dest_is_dir: bool,
    owner: files.Owner,
    chmod: int | None,
) -> Callable[[], None]:
    from supervisor.engine.paths import secure_join

    def work() -> None:
        for s in srcs:
            parent, base = posixpath.split("/" + s.lstrip("/"))
            if has_glob(base):
                import fnmatch

                d = secure_join(src_root, parent)
                names = sorted(n for n in os.listdir(d) if fnmatch.fnmatchcase(n, base))
                paths = [(n, d / n) for n in names]
                if not paths:
                    raise InvalidArgument(f"no source files were specified (nothing matches {s})")
            else:
                p = secure_join(src_root, s)
                if not os.path.lexists(p):
                    raise InvalidArgument(f"{s}: not found in the --from image")
                paths = [(base, p)]
            many = dest_is_dir or len(paths) > 1 or len(srcs) > 1
            for name, p in paths:
                if p.is_dir() and not p.is_symlink():
                    src = files.Source(name, p, files.walk_image_dir(p))
                else:
                    src = files.Source(name, p)
                files.copy_sources(rootfs, [src], dest, many, owner, chmod)

    return work


# ------------------------------------------------------------------ helpers


def _show(argv: list[str]) -> str:
    return " ".join(argv)


def _nop_text(x: Instruction) -> str:
    if x.json:
        return f"{x.cmd} {json.dumps(list(x.args))}"
    return f"{x.cmd} {' '.join(x.args)}"


def _clean_config(cfg: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in cfg.items() if not k.startswith("__")}


def _digits(s: str) -> bool:
    """ASCII digits only: `str.isdigit` also takes `²`, which `int` refuses."""
    return s.isascii() and s.isdigit()


def _port_key(p: str) -> str:
    port, _, proto = p.partition("/")
    proto = (proto or "tcp").lower()
    if proto not in ("tcp", "udp", "sctp"):
        raise InvalidArgument(f"invalid proto: {proto}")
    lo, _, hi = port.partition("-")
    if not _digits(lo) or (hi and not _digits(hi)) or not 0 < int(lo) < 65536:
        raise InvalidArgument(f"invalid containerPort: {port}")
    return f"{port}/{proto}"


def _check_signal(sig: str) -> None:
    s = sig.upper()
    if _digits(s):
        return
    if not s.startswith("SIG"):
        s = "SIG" + s
    if s not in signal.Signals.__members__ and not s.startswith("SIGRTM"):
        raise InvalidArgument(f"Invalid signal: {sig}")


def _parse_chmod(spec: str | None) -> int | None:
    if spec is None or spec == "":
        return None
    try:
        mode = int(spec, 8)
    except ValueError:
        raise InvalidArgument(f"invalid chmod parameter: {spec!r} (octal like 0755)") from None
    if mode > 0o7777:
        raise InvalidArgument(f"invalid chmod parameter: {spec!r}")
    return mode


def _healthcheck(x: Instruction, shell: list[str]) -> dict[str, Any]:
    if x.args[0] == "NONE":
        return {"Test": ["NONE"]}
    rest = list(x.args[1:])
    test = ["CMD", *rest] if x.json else ["CMD-SHELL", rest[0]]
    hc: dict[str, Any] = {"Test": test}
    for flag, key in (
        ("interval", "Interval"),
        ("timeout", "Timeout"),
        ("start-period", "StartPeriod"),
        ("start-interval", "StartInterval"),
    ):
        v = x.flag(flag)
        if v:
            try:
                ns = go_duration_ns(v)
            except ValueError as e:
                raise InvalidArgument(f"HEALTHCHECK --{flag}: {e}") from None
            if ns < 0 or (0 < ns < 1_000_000):
                raise InvalidArgument(f"HEALTHCHECK --{flag} cannot be less than 1ms")
            hc[key] = ns
    r = x.flag("retries")
    if r:
        if not _digits(r) or int(r) < 1:
            raise InvalidArgument(f"HEALTHCHECK --retries must be at least 1 (got {r})")
        hc["Retries"] = int(r)
    return hc
