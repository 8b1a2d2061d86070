"""Load a project from disk: the thin I/O shell around the pure pipeline.

    files ─ read ─> load_yaml ─> interpolate ─> validate ─> shapes ─┐
                                                                   merge ─> finish ─> Project
    .env + environment ──────────────────────────────────────────────┘

Every file is checked before anything is returned, and all problems of all files are
reported together: a project with any invalid file never reaches the reconciler.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from config.dotenv import parse_dotenv
from config.errors import ConfigError, Position, Positions, Problem
from config.extends import add_included, resolve_extends
from config.interpolate import interpolate
from config.merge import merge_documents
from config.model import Project, finish, normalize_project_name
from config.schema import validate
from config.shapes import Shaper
from config.yamlload import load_yaml

DEFAULT_FILES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")


def find_default_file(start: str) -> str | None:
    """compose's lookup: the default names in the directory, then in each parent."""
    d = os.path.abspath(start)
    while True:
        for name in DEFAULT_FILES:
            path = os.path.join(d, name)
            if os.path.isfile(path):
                return path
        parent = os.path.dirname(d)
        if parent == d:
            return None
        d = parent


def override_file(path: str) -> str | None:
    """`compose.yaml` → `compose.override.yaml` if it exists (merged automatically)."""
    base, ext = os.path.splitext(path)
    candidate = f"{base}.override{ext}"
    return candidate if os.path.isfile(candidate) else None


def resolve_files(
    files: Sequence[str], cwd: str, environ: Mapping[str, str], search: str | None = None
) -> list[str]:
    """The compose files: given, COMPOSE_FILE, else the default names looked for from
    `search` (the `--project-directory`, as compose v2 does, else `cwd`) upwards."""
    if not files and environ.get("COMPOSE_FILE"):
        sep = environ.get("COMPOSE_PATH_SEPARATOR", os.pathsep)
        files = [f for f in environ["COMPOSE_FILE"].split(sep) if f]
    if files:
        return [os.path.abspath(os.path.join(cwd, f)) for f in files]
    where = os.path.abspath(os.path.join(cwd, search)) if search else cwd
    found = find_default_file(where)
    if found is None:
        raise ConfigError.at(
            None,
            "no configuration file provided: not found "
            f"(looked for {', '.join(DEFAULT_FILES)} in {where} and above)",
        )
    extra = override_file(found)
    return [found, extra] if extra else [found]


def _read(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


def load_project(
    files: Sequence[str] = (),
    *,
    project_name: str | None = None,
    environ: Mapping[str, str] | None = None,
    cwd: str | None = None,
    project_dir: str | None = None,
    profiles: Sequence[str] = (),
    read_file: Callable[[str], str] = _read,
    default_name: str | None = None,
    env_files: Sequence[str] = (),
) -> Project:
    """Read, check and normalize a project. Raises ConfigError (every problem listed).

    The name comes from `project_name`, COMPOSE_PROJECT_NAME, the files' `name:`, then
    `default_name` (a services directory names each project by its file) or the directory.
    `env_files` (`--env-file`, relative to `cwd`) replace the project directory's `.env`,
    later ones overriding earlier ones, as compose reads them.
    """
    environ = dict(os.environ if environ is None else environ)
    cwd = cwd or os.getcwd()
    paths = resolve_files(files, cwd, environ, project_dir)
    workdir = os.path.abspath(os.path.join(cwd, project_dir or os.path.dirname(paths[0])))
    env = dict(environ)
    dotenv_paths = [os.path.join(cwd, f) for f in env_files] or [os.path.join(workdir, ".env")]
    for dotenv_path in dotenv_paths:
        try:
            dotenv_text = read_file(dotenv_path)
        except OSError as exc:
            if env_files:
                raise ConfigError.at(
                    None, f"couldn't read env file {dotenv_path}: {exc.strerror or exc}"
                ) from None
            dotenv_text = None
        if dotenv_text is None:
            continue
        try:
            for _, key, value in parse_dotenv(dotenv_text, environ):
                if value is not None and key not in environ:
                    env[key] = value
        except ValueError as exc:
            raise ConfigError.at(Position(dotenv_path, 1, 1), str(exc)) from None
    errors: list[Problem] = []
    warnings: list[Problem] = []
    docs = []
    positions = Positions()

    def read_doc(path: str, base_dir: str) -> dict[str, Any] | None:
        """One file read, interpolated, checked and shaped; None if it has errors."""
        display = os.path.relpath(path, cwd) if path.startswith(cwd + os.sep) else path
        try:
            text = read_file(path)
        except OSError as exc:
            errors.append(Problem(None, f"open {display}: {exc.strerror or exc}"))
            return None
        try:
            raw, pos = load_yaml(text, display)
            if raw is None:
                raw = {}
            doc = interpolate(raw, env, pos)
        except ConfigError as exc:
            errors.extend(exc.problems)
            return None
        doc, errs, warns = validate(doc, pos)
        errors.extend(errs)
        warnings.extend(warns)
        if errs:
            return None
        shaper = Shaper(pos, base_dir)
        shaped: dict[str, Any] = shaper.document(doc)
        errors.extend(shaper.errors)
        positions.update(pos)
        return shaped

    for path in paths:
        shaped = read_doc(path, workdir)
        if shaped is not None:
            docs.append(shaped)
    if errors:
        raise ConfigError(errors)
    merged = merge_documents(docs)
    includes = merged.pop("include", None) or []
    seen_includes: set[str] = set(paths)
    while includes:  # included files may include others; each file once
        item = includes.pop(0)
        entry = {"path": item} if isinstance(item, str) else dict(item)
        files = [entry["path"]] if isinstance(entry["path"], str) else list(entry["path"])
        files = [os.path.normpath(os.path.join(workdir, str(f))) for f in files]
        if any(f in seen_includes for f in files):
            continue
        seen_includes.update(files)
        inc_dir = os.path.normpath(
            os.path.join(workdir, str(entry.get("project_directory") or os.path.dirname(files[0])))
        )
        inc_docs = [d for d in (read_doc(f, inc_dir) for f in files) if d is not None]
        if errors:
            raise ConfigError(errors)
        inc = merge_documents(inc_docs)
        includes += [
            {"path": os.path.join(inc_dir, i) if isinstance(i, str) else i["path"]}
            for i in inc.pop("include", None) or []
        ]
        for clash in add_included(merged, inc, inc_dir, files[0]):
            errors.append(Problem(None, clash))
    if errors:
        raise ConfigError(errors)

    def load_other(path: str) -> dict[str, Any]:
        shaped = read_doc(path, os.path.dirname(path))
        if shaped is None:
            raise ValueError("it has errors (listed above)")
        services: dict[str, Any] = shaped.get("services") or {}
        return services

    if any(isinstance(s, dict) and "extends" in s for s in (merged.get("services") or {}).values()):
        services, problems = resolve_extends(
            merged.get("services") or {}, positions, workdir, load_other
        )
        errors.extend(problems)
        if errors:
            raise ConfigError(errors)
        merged = {**merged, "services": services}
    name = project_name or env.get("COMPOSE_PROJECT_NAME") or merged.get("name")
    if not name:
        name = normalize_project_name(default_name or os.path.basename(workdir))
    active = list(profiles) or [p for p in env.get("COMPOSE_PROFILES", "").split(",") if p]
    model = finish(
        merged,
        positions,
        name=str(name),
        env=env,
        read_file=read_file,
        project_dir=workdir,
        profiles=active,
    )
    return Project(
        name=str(name),
        model=model,
        working_dir=workdir,
        config_files=list(paths),
        warnings=warnings,
        positions=positions,
    )
