"""A merged document → the normalized project model `corral compose config` prints.

The model is plain data (JSON-like dicts) because it is what gets printed, hashed and
compared; `Project` wraps it with the few facts the reconciler needs. Semantic checks
that need the whole project live here (undefined services/networks/volumes, scale
conflicts, restart policies, durations, sizes, dependency cycles). Pure.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from config import rollout
from config.dotenv import parse_dotenv
from config.errors import ConfigError, Path, Positions, Problem
from config.graph import dependencies, find_cycle, start_order
from config.units import duration_ns, size_bytes

# deploy.restart_policy.condition, as compose maps it to a restart policy.
RESTART_CONDITIONS = ("none", "on-failure", "any", "always", "unless-stopped")
CONDITIONS = ("service_started", "service_healthy", "service_completed_successfully")
#: docker's deviceCgroupRuleRegexp.
_CGROUP_RULE = re.compile(r"^[acb] ([0-9]+|\*):([0-9]+|\*) [rwm]{1,3}$")
_RESTART = re.compile(r"^(no|always|unless-stopped|on-failure(:\d+)?)$")
_PROJECT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


@dataclass
class Project:
    name: str
    model: dict[str, Any]
    working_dir: str
    config_files: list[str]
    warnings: list[Problem] = field(default_factory=list)
    positions: Positions = field(default_factory=Positions)

    @property
    def services(self) -> dict[str, dict[str, Any]]:
        services: dict[str, dict[str, Any]] = self.model.get("services") or {}
        return services

    def graph(self) -> dict[str, list[str]]:
        return dependencies(self.services)

    def order(self) -> list[str]:
        return start_order(self.graph())

    def scale(self, service: str) -> int:
        return int(self.services[service].get("scale", 1))

    def hash(self, service: str) -> str:
        return service_hash(self.services[service])

    def image(self, service: str) -> str:
        """The image a service's containers run: its `image:`, or for a service built
        without one compose v2's name for the build, `PROJECT-SERVICE`."""
        return str(self.services[service].get("image") or f"{self.name}-{service}")


def normalize_project_name(text: str) -> str:
    """compose: lowercase, only [a-z0-9_-], must start with a letter or digit."""
    name = re.sub(r"[^a-z0-9_-]", "", text.lower())
    return name.lstrip("_-")


def service_hash(service: Mapping[str, Any]) -> str:
    """compose's ServiceHash: what makes a container differ, not how many or in what order.

    Scale, replicas, depends_on, profiles and build are left out: changing them must not
    recreate running containers. A rebuild that changes the image is seen by its image
    ID instead (`reconcile._outdated`), as compose does.
    """
    s = {
        k: v
        for k, v in service.items()
        if k not in ("build", "pull_policy", "scale", "depends_on", "profiles")
    }
    if isinstance(s.get("deploy"), dict):
        # how a change is rolled out is no change of the containers
        s["deploy"] = {
            k: v
            for k, v in s["deploy"].items()
            if k not in ("replicas", "update_config", "rollback_config")
        }
    data = json.dumps(s, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(data.encode()).hexdigest()


class _Finisher:
    def __init__(
        self,
        positions: Positions,
        env: Mapping[str, str],
        read_file: Callable[[str], str],
        project_dir: str,
    ) -> None:
        self.positions = positions
        self.env = env
        self.read_file = read_file
        self.project_dir = project_dir
        self.errors: list[Problem] = []
        self.warnings: list[Problem] = []

    def fail(self, path: Path, message: str, *, key: bool = False) -> None:
        pos = self.positions.key(path) if key else self.positions.get(path)
        self.errors.append(Problem(pos, message))

    def check_duration(self, value: Any, path: Path) -> None:
        try:
            if duration_ns(value) < 0:
                raise ValueError(f"negative duration {value!r}")
        except ValueError as exc:
            self.fail(path, f"{'.'.join(map(str, path))}: {exc}")

    def check_size(self, value: Any, path: Path) -> None:
        try:
            size_bytes(value)
        except ValueError as exc:
            self.fail(path, f"{'.'.join(map(str, path))}: {exc}")

    def service(self, name: str, svc: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
        p: Path = ("services", name)
        s = dict(svc)
        if not s.get("image") and not s.get("build"):
            self.fail(
                p, f'service "{name}" has neither an image nor a build context specified', key=True
            )
        if isinstance(s.get("build"), dict):
            s["build"] = self.build(name, s["build"])
        policy = s.get("pull_policy")  # its values are checked by config.schema
        if policy == "build" and not s.get("build"):
            self.fail(
                (*p, "pull_policy"),
                f'service "{name}": pull_policy is build but the service has no build section',
            )
        for key in ("command", "entrypoint"):
            if isinstance(s.get(key), str):
                try:
                    s[key] = shlex.split(s[key])
                except ValueError as exc:
                    self.fail((*p, key), f"services.{name}.{key}: {exc}")
        env: dict[str, str] = {}
        for i, ef in enumerate(s.pop("env_file", None) or []):
            env.update(self.env_file(ef, (*p, "env_file", i)))
        for k, v in (s.get("environment") or {}).items():
            if v is None:
                if k in self.env:
                    env[k] = self.env[k]
                else:
                    env.pop(k, None)
            else:
                env[k] = v
        if env or "environment" in s:
            s["environment"] = env
        if s.get("security_opt"):
            s["security_opt"] = [
                self.security_opt(str(o), (*p, "security_opt", i))
                for i, o in enumerate(s["security_opt"])
            ]
        if "restart" in s and not _RESTART.match(str(s["restart"])):
            self.fail(
                (*p, "restart"),
                f"services.{name}.restart: invalid restart policy "
                f"{s['restart']!r} (no, always, on-failure[:N], unless-stopped)",
            )
        if s.get("userns_mode", "host") != "host":
            self.fail(
                (*p, "userns_mode"),
                f"services.{name}.userns_mode: {s['userns_mode']!r} is not supported by corral: "
                "containers share the host's user namespace ('host')",
            )
        for i, rule in enumerate(s.get("device_cgroup_rules") or []):
            if not _CGROUP_RULE.match(str(rule)):
                self.fail(
                    (*p, "device_cgroup_rules", i),
                    f"services.{name}.device_cgroup_rules: invalid device cgroup format "
                    f"'{rule}' (TYPE MAJOR:MINOR ACCESS, e.g. 'c 1:3 rwm')",
                )
        for key in ("stop_grace_period",):
            if key in s:
                self.check_duration(s[key], (*p, key))
        hc = s.get("healthcheck")
        if isinstance(hc, dict):
            for key in ("interval", "timeout", "start_period", "start_interval"):
                if key in hc:
                    self.check_duration(hc[key], (*p, "healthcheck", key))
            test = hc.get("test")
            if isinstance(test, list) and test and test[0] not in ("NONE", "CMD", "CMD-SHELL"):
                self.fail(
                    (*p, "healthcheck", "test"),
                    f"services.{name}.healthcheck.test: must start with NONE, CMD or CMD-SHELL",
                )
        if "mem_limit" in s:
            self.check_size(s["mem_limit"], (*p, "mem_limit"))
        if "memswap_limit" in s and s["memswap_limit"] not in (-1, "-1"):
            self.check_size(s["memswap_limit"], (*p, "memswap_limit"))
        for key in ("update_config", "rollback_config"):
            spec = (s.get("deploy") or {}).get(key)
            for sub in ("delay", "monitor"):
                if isinstance(spec, dict) and sub in spec:
                    self.check_duration(spec[sub], (*p, "deploy", key, sub))
            for sub, message in rollout.check(spec, key):
                self.fail(
                    (*p, "deploy", key, sub),
                    f"services.{name}.deploy.{key}.{sub}: {message}",
                )
        policy_spec = (s.get("deploy") or {}).get("restart_policy")
        if isinstance(policy_spec, dict):
            condition = policy_spec.get("condition", "on-failure")
            if condition not in RESTART_CONDITIONS:
                self.fail(
                    (*p, "deploy", "restart_policy", "condition"),
                    f"services.{name}.deploy.restart_policy.condition: invalid condition "
                    f"{condition!r} ({', '.join(RESTART_CONDITIONS)})",
                )
        for kind in ("secrets", "configs"):
            if kind in s:
                s[kind] = self.secret_refs(name, kind, s[kind], doc)
        if "label_file" in s:
            files = s.pop("label_file")
            labels: dict[str, Any] = {}
            for i, lf in enumerate([files] if isinstance(files, str) else files):
                where: Path = (*p, "label_file") if isinstance(files, str) else (
                    *p, "label_file", i)
                labels.update(self.env_file({"path": lf}, where, what="label file"))
            s["labels"] = {**labels, **(s.get("labels") or {})}
        limits = ((s.get("deploy") or {}).get("resources") or {}).get("limits") or {}
        if "memory" in limits:
            self.check_size(limits["memory"], (*p, "deploy", "resources", "limits", "memory"))
        for key, where in (
            ("cpus", (*p, "cpus")),
            ("cpus_limit", (*p, "deploy", "resources", "limits", "cpus")),
        ):
            value = s.get("cpus") if key == "cpus" else limits.get("cpus")
            if value is not None:
                try:
                    float(value)
                except ValueError:
                    self.fail(where, f"{'.'.join(map(str, where))}: invalid number {value!r}")
        # scale
        replicas = (s.get("deploy") or {}).get("replicas")
        if "scale" in s and replicas is not None and s["scale"] != replicas:
            self.fail(
                (*p, "scale"),
                f"services.{name}: can't set distinct values on "
                f'"scale" ({s["scale"]}) and "deploy.replicas" ({replicas})',
            )
        scale = s.get("scale", replicas if replicas is not None else 1)
        if scale < 0:
            self.fail((*p, "scale"), f"services.{name}.scale: must be 0 or more")
        s["scale"] = scale
        if s.get("container_name") and scale > 1:
            self.fail(
                (*p, "container_name"),
                f"services.{name}: container_name "
                f'"{s["container_name"]}" is unique: the service cannot scale to {scale}',
            )
        # dependencies
        deps = s.get("depends_on") or {}
        for dep, spec in list(deps.items()):
            if spec.get("condition") not in CONDITIONS:
                self.fail(
                    (*p, "depends_on", dep, "condition"),
                    f"services.{name}.depends_on.{dep}.condition: must be one of "
                    f"{', '.join(CONDITIONS)}",
                )
            if dep not in doc.get("services", {}):
                if spec.get("required", True):
                    self.fail(
                        (*p, "depends_on", dep),
                        f'service "{name}" depends on undefined service "{dep}"',
                        key=True,
                    )
                else:
                    del deps[dep]
        # networks
        mode = s.get("network_mode")
        if mode is not None and "networks" in s:
            self.fail(
                (*p, "network_mode"),
                f"services.{name}: network_mode and networks cannot be combined",
            )
        if mode is None and "networks" not in s:
            s["networks"] = {"default": None}
        if (
            isinstance(mode, str)
            and mode.startswith("service:")
            and mode[8:] not in doc.get("services", {})
        ):
            self.fail(
                (*p, "network_mode"),
                f'service "{name}" uses the network stack of undefined service "{mode[8:]}"',
            )
        for net in s.get("networks") or {}:
            if net != "default" and net not in (doc.get("networks") or {}):
                self.fail(
                    (*p, "networks", net),
                    f'service "{name}" refers to undefined network {net}: invalid compose project',
                    key=True,
                )
        for i, vol in enumerate(s.get("volumes") or []):
            src = vol.get("source") if isinstance(vol, dict) else None
            if vol.get("type") == "volume" and src and src not in (doc.get("volumes") or {}):
                self.fail(
                    (*p, "volumes", i),
                    f'service "{name}" refers to undefined volume {src}: invalid compose project',
                )
        return s

    def build(self, name: str, build: dict[str, Any]) -> dict[str, Any]:
        """The build section as compose resolves it: the context an absolute path (from
        the project directory), the Dockerfile's name defaulted, the two ways of giving
        a Dockerfile exclusive, a remote (git/URL) context refused."""
        import os.path

        p: Path = ("services", name, "build")
        b = dict(build)
        ctx = str(b.get("context") or ".")
        if "://" in ctx or ctx.startswith("git@"):
            self.fail(
                (*p, "context"),
                f"services.{name}.build.context: remote build contexts are not supported by "
                f"corral yet: {ctx}",
            )
        else:
            b["context"] = os.path.normpath(os.path.join(self.project_dir, ctx))
        if "dockerfile" in b and "dockerfile_inline" in b:
            self.fail(
                (*p, "dockerfile_inline"),
                f"services.{name}.build: dockerfile and dockerfile_inline are mutually exclusive",
                key=True,
            )
        elif "dockerfile_inline" not in b:
            b.setdefault("dockerfile", "Dockerfile")
        return b

    def secret_refs(
        self, name: str, kind: str, refs: list[Any], doc: dict[str, Any]
    ) -> list[dict[str, Any]]:
        """A service's secrets/configs in long form, with the target compose gives them:
        a secret under /run/secrets/ (its target, or its name), a config at its target
        or /NAME; each must be declared at the top level."""
        out = []
        declared = doc.get(kind) or {}
        for i, ref in enumerate(refs):
            r = {"source": ref} if isinstance(ref, str) else dict(ref)
            source = str(r["source"])
            if source not in declared:
                self.fail(
                    ("services", name, kind, i),
                    f'service "{name}" refers to undefined {kind[:-1]} {source}: '
                    "invalid compose project",
                )
            target = str(r.get("target") or source)
            if kind == "secrets" and not target.startswith("/"):
                target = f"/run/secrets/{target}"
            elif not target.startswith("/"):
                target = f"/{target}"
            entry: dict[str, Any] = {"source": source, "target": target}
            for key in ("uid", "gid"):
                if key in r:
                    if not str(r[key]).isdigit():
                        self.fail(("services", name, kind, i, key),
                                  f"services.{name}.{kind}[{i}].{key}: must be a number")
                    entry[key] = int(str(r[key])) if str(r[key]).isdigit() else 0
            if "mode" in r:
                mode = r["mode"]
                try:  # YAML 1.1 read 0440 as octal already; a string is octal text
                    entry["mode"] = mode if isinstance(mode, int) else int(str(mode), 8)
                except ValueError:
                    self.fail(("services", name, kind, i, "mode"),
                              f"services.{name}.{kind}[{i}].mode: invalid mode {mode!r}")
            out.append(entry)
        return out

    def security_opt(self, opt: str, path: Path) -> str:
        """One `security_opt` as compose sends it: `seccomp=FILE` (relative to the
        project directory) becomes the file's compacted JSON; the daemon checks the rest."""
        key, sep, value = opt.partition("=")
        if not sep and key != "no-new-privileges":
            key, sep, value = opt.partition(":")
        where = ".".join(map(str, path))
        if (not sep or not value) and key != "no-new-privileges":
            self.fail(path, f'{where}: invalid security-opt: "{opt}"')
            return opt
        if key != "seccomp" or value in ("builtin", "unconfined"):
            return opt
        import os.path

        file = os.path.join(self.project_dir, value)
        try:
            text = self.read_file(file)
        except OSError as exc:
            self.fail(path, f"{where}: opening seccomp profile ({value}) failed: "
                      f"{exc.strerror or exc}")
            return opt
        try:
            doc = json.loads(text)
        except ValueError as exc:
            self.fail(path, f"{where}: compacting json for seccomp profile ({value}) failed: {exc}")
            return opt
        return "seccomp=" + json.dumps(doc, separators=(",", ":"), ensure_ascii=False)

    def env_file(
        self, ef: dict[str, Any], path: Path, what: str = "env file"
    ) -> dict[str, str]:
        """An env file (or a label file: the same KEY=VALUE lines) as a mapping."""
        import os.path

        file = os.path.join(self.project_dir, str(ef.get("path", "")))
        try:
            text = self.read_file(file)
        except OSError as exc:
            if ef.get("required", True):
                self.fail(path, f"{what} {file} not found: {exc.strerror or exc}")
            return {}
        try:
            return {k: v for _, k, v in parse_dotenv(text, self.env) if v is not None}
        except ValueError as exc:
            self.fail(path, f"{what} {file}: {exc}")
            return {}


def _external_name(spec: dict[str, Any]) -> dict[str, Any]:
    """The older `external: {name: X}` as compose reads it: `name: X`, `external: true`."""
    ext = spec.get("external")
    if isinstance(ext, dict):
        spec["external"] = True
        if ext.get("name"):
            spec["name"] = str(ext["name"])
    return spec


def _where(p: Problem) -> tuple[str, int, int]:
    pos = p.position
    return (pos.file, pos.line, pos.col) if pos else ("", 0, 0)


def finish(
    doc: dict[str, Any],
    positions: Positions,
    *,
    name: str,
    env: Mapping[str, str],
    read_file: Callable[[str], str],
    project_dir: str,
    profiles: list[str] | None = None,
) -> dict[str, Any]:
    """Normalize a merged document; raises ConfigError listing every problem found."""
    f = _Finisher(positions, env, read_file, project_dir)
    if not _PROJECT_NAME.match(name):
        f.errors.append(
            Problem(
                positions.get(("name",)) if "name" in doc else None,
                f"invalid project name {name!r}: must contain only lowercase "
                "letters, digits, dashes and underscores, and start with a "
                "letter or digit",
            )
        )
    active = set(profiles or [])
    services: dict[str, Any] = {}
    for svc_name, svc in (doc.get("services") or {}).items():
        svc_profiles = svc.get("profiles") or []
        if svc_profiles and not (active & set(svc_profiles)) and "*" not in active:
            continue
        services[svc_name] = svc
    doc = {**doc, "services": services}
    out_services = {n: f.service(n, s, doc) for n, s in services.items()}
    cycle = find_cycle(dependencies(out_services))
    if cycle:
        f.fail(
            ("services", cycle[0], "depends_on"), "dependency cycle detected: " + " -> ".join(cycle)
        )
    if f.errors:
        raise ConfigError(sorted(f.errors, key=_where))
    networks: dict[str, Any] = {}
    uses_default = any("default" in (s.get("networks") or {}) for s in out_services.values())
    declared = doc.get("networks") or {}
    if uses_default and "default" not in declared:
        networks["default"] = {"name": f"{name}_default"}
    for net, spec in declared.items():
        spec = _external_name(dict(spec or {}))
        if not spec.get("external"):
            spec.setdefault("name", f"{name}_{net}")
        else:
            spec.setdefault("name", net)
        networks[net] = spec
    volumes: dict[str, Any] = {}
    for vol, spec in (doc.get("volumes") or {}).items():
        spec = _external_name(dict(spec or {}))
        spec.setdefault("name", vol if spec.get("external") else f"{name}_{vol}")
        volumes[vol] = spec
    model: dict[str, Any] = {"name": name, "services": out_services}
    if networks:
        model["networks"] = networks
    if volumes:
        model["volumes"] = volumes
    for kind in ("secrets", "configs"):
        for key, spec in (doc.get(kind) or {}).items():
            where: Path = (kind, key)
            sources = [s for s in ("file", "environment", "content") if s in (spec or {})]
            if len(sources) != 1:
                f.fail(where, f"{kind}.{key}: needs one source: file, environment"
                       + (" or content" if kind == "configs" else ""), key=True)
                continue
            out_spec = dict(spec)
            if "file" in spec:
                out_spec["file"] = os.path.normpath(os.path.join(project_dir, str(spec["file"])))
            elif "environment" in spec:  # read now, as compose does, from the project's env
                var = str(spec["environment"])
                if var in env:  # else only a container that mounts it fails (down works)
                    out_spec["content"] = env[var]
            model.setdefault(kind, {})[key] = out_spec
    if f.errors:
        raise ConfigError(sorted(f.errors, key=_where))
    for key, value in doc.items():
        if key.startswith("x-"):
            model[key] = value
    return model
