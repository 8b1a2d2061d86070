"""One service replica → the Docker Engine API create body compose would send. Pure.

The body carries compose's labels, so `docker ps --filter label=com.docker.compose...`
and compose-aware tools see these containers as compose's own.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from config.model import Project
from config.reconcile import (
    CONFIG_FILES,
    HASH,
    NUMBER,
    ONEOFF,
    PROJECT,
    SERVICE,
    SLUG,
    WORKING_DIR,
    container_name,
)
from config.scalars import text_of
from config.units import duration_ns, size_bytes

# Labels compose sets that say which compose made a container; tools read it.
COMPOSE_VERSION = "2.29.0"


def labels_for(project: Project, service: str, number: int) -> dict[str, str]:
    svc = project.services[service]
    labels = {str(k): str(v) for k, v in (svc.get("labels") or {}).items()}
    labels.update(
        {
            PROJECT: project.name,
            SERVICE: service,
            NUMBER: str(number),
            HASH: project.hash(service),
            ONEOFF: "False",
            WORKING_DIR: project.working_dir,
            CONFIG_FILES: ",".join(project.config_files),
            "com.docker.compose.version": COMPOSE_VERSION,
            "com.docker.compose.image": project.image(service),
            "com.docker.compose.depends_on": ",".join(
                f"{d}:{spec.get('condition')}:{str(bool(spec.get('restart'))).lower()}"
                for d, spec in (svc.get("depends_on") or {}).items()
            ),
        }
    )
    return labels


def _healthcheck(hc: dict[str, Any]) -> dict[str, Any]:
    if hc.get("disable"):
        return {"Test": ["NONE"]}
    out: dict[str, Any] = {}
    if "test" in hc:
        out["Test"] = list(hc["test"])
    for key, api in (
        ("interval", "Interval"),
        ("timeout", "Timeout"),
        ("start_period", "StartPeriod"),
        ("start_interval", "StartInterval"),
    ):
        if key in hc:
            out[api] = duration_ns(hc[key])
    if "retries" in hc:
        out["Retries"] = int(hc["retries"])
    return out


# deploy.restart_policy.condition → Docker's restart policy name (compose's mapping).
DEPLOY_RESTART = {
    "none": "no",
    "on-failure": "on-failure",
    "any": "always",
    "always": "always",
    "unless-stopped": "unless-stopped",
}


def _restart(text: str) -> dict[str, Any]:
    name, _, count = text.partition(":")
    return {"Name": name, "MaximumRetryCount": int(count) if count else 0}


def _mount(v: dict[str, Any], project: Project) -> tuple[str | None, dict[str, Any] | None]:
    """(a Binds entry, or a Mounts entry) for one long-syntax volume."""
    kind = v.get("type")
    ro = bool(v.get("read_only"))
    if kind == "bind":
        bind = v.get("bind") or {}
        # A propagation other than rprivate (what corral does anyway) is refused by
        # the daemon, by name.
        propagation = str(bind.get("propagation") or "")
        if bind.get("create_host_path"):
            mode = ("ro" if ro else "rw") + (f",{propagation}" if propagation else "")
            return f"{v['source']}:{v['target']}:{mode}", None
        bind_mount: dict[str, Any] = {
            "Type": "bind", "Source": v["source"], "Target": v["target"], "ReadOnly": ro
        }
        if propagation:
            bind_mount["BindOptions"] = {"Propagation": propagation}
        return None, bind_mount
    if kind == "tmpfs":
        m: dict[str, Any] = {"Type": "tmpfs", "Target": v["target"], "ReadOnly": ro}
        t = v.get("tmpfs") or {}
        opts: dict[str, Any] = {}
        if "size" in t:
            opts["SizeBytes"] = size_bytes(t["size"])
        if "mode" in t:
            opts["Mode"] = int(t["mode"])  # a number by now (config.shapes)
        if opts:
            m["TmpfsOptions"] = opts
        return None, m
    source = v.get("source") or ""
    if source:
        source = str((project.model.get("volumes") or {}).get(source, {}).get("name", source))
    m = {"Type": "volume", "Source": source, "Target": v["target"], "ReadOnly": ro}
    vol = v.get("volume") or {}
    opts = {k: val for k, val in (("NoCopy", bool(vol.get("nocopy"))),
                                  ("Subpath", str(vol.get("subpath") or ""))) if val}
    if opts:
        m["VolumeOptions"] = opts  # a Subpath is refused by the daemon, by name
    return None, m


def create_body(
    project: Project,
    service: str,
    number: int,
    *,
    networks_supported: bool = True,
    network_mode: str | None = None,
) -> tuple[str, dict[str, Any]]:
    """(container name, `POST /containers/create` body) for replica `number`.

    `networks_supported` False (a daemon without /networks) attaches the container to
    the daemon's default network instead of `PROJECT_default`. `network_mode` overrides
    the service's, for `service:X` already resolved to `container:ID` by the caller.
    """
    svc = project.services[service]
    name = container_name(project, service, number)
    env = [f"{k}={v}" for k, v in (svc.get("environment") or {}).items()]
    exposed: dict[str, Any] = {}
    bindings: dict[str, list[dict[str, str]]] = {}
    for p in svc.get("ports") or []:
        key = f"{p['target']}/{p.get('protocol', 'tcp')}"
        exposed[key] = {}
        bindings.setdefault(key, []).append(
            {"HostIp": str(p.get("host_ip", "")), "HostPort": str(p.get("published", ""))}
        )
    for e in svc.get("expose") or []:
        port, _, proto = str(e).partition("/")
        lo, _, hi = port.partition("-")
        for n in range(int(lo), int(hi or lo) + 1):
            exposed[f"{n}/{proto or 'tcp'}"] = {}
    binds: list[str] = []
    for kind in ("secrets", "configs"):  # compose: a file source is bind-mounted read-only
        for ref in svc.get(kind) or []:
            source = (project.model.get(kind) or {}).get(ref["source"]) or {}
            if "file" in source and not {"uid", "gid", "mode"} & set(ref):
                binds.append(f"{source['file']}:{ref['target']}:ro")
    mounts: list[dict[str, Any]] = []
    for v in svc.get("volumes") or []:
        b, m = _mount(v, project)
        if b:
            binds.append(b)
        if m:
            mounts.append(m)
    tmpfs = {}
    for t in svc.get("tmpfs") or []:
        path, _, opts = str(t).partition(":")
        tmpfs[path] = opts
    host: dict[str, Any] = {
        "Binds": binds or None,
        "Mounts": mounts or None,
        "PortBindings": bindings,
        "RestartPolicy": _restart(str(svc.get("restart", "no"))),
        "AutoRemove": False,
        "CapAdd": svc.get("cap_add"),
        "CapDrop": svc.get("cap_drop"),
        "Privileged": bool(svc.get("privileged", False)),
        "ReadonlyRootfs": bool(svc.get("read_only", False)),
    }
    if tmpfs:
        host["Tmpfs"] = tmpfs
    if svc.get("devices"):
        host["Devices"] = [
            {"PathOnHost": d["source"], "PathInContainer": d["target"],
             "CgroupPermissions": d["permissions"]}
            for d in svc["devices"]
        ]
    if svc.get("userns_mode"):
        host["UsernsMode"] = str(svc["userns_mode"])
    if svc.get("device_cgroup_rules"):
        host["DeviceCgroupRules"] = [str(r) for r in svc["device_cgroup_rules"]]
    if "init" in svc:
        host["Init"] = bool(svc["init"])  # false overrides the daemon's `init: true`
    if svc.get("security_opt"):
        host["SecurityOpt"] = [str(o) for o in svc["security_opt"]]
    limits = ((svc.get("deploy") or {}).get("resources") or {}).get("limits") or {}
    memory = limits.get("memory", svc.get("mem_limit"))
    if memory is not None:
        host["Memory"] = size_bytes(memory)
    cpus = limits.get("cpus", svc.get("cpus"))
    if cpus is not None:
        host["NanoCpus"] = int(round(float(cpus) * 1e9))
    pids = limits.get("pids", svc.get("pids_limit"))
    if pids is not None:
        host["PidsLimit"] = int(pids)
    if "memswap_limit" in svc:
        swap = svc["memswap_limit"]
        host["MemorySwap"] = -1 if swap in (-1, "-1") else size_bytes(swap)
    policy = (svc.get("deploy") or {}).get("restart_policy")
    if isinstance(policy, dict):  # compose: it overrides `restart:`
        restart = DEPLOY_RESTART[str(policy.get("condition", "on-failure"))]
        count = int(policy.get("max_attempts") or 0) if restart == "on-failure" else 0
        host["RestartPolicy"] = {"Name": restart, "MaximumRetryCount": count}
    if svc.get("cpu_shares") is not None:
        host["CpuShares"] = int(svc["cpu_shares"])
    for key, api in (("cpu_period", "CpuPeriod"), ("cpu_quota", "CpuQuota")):
        if svc.get(key) is not None:
            host[api] = int(svc[key])
    if svc.get("cpuset"):
        host["CpusetCpus"] = str(svc["cpuset"])
    for key, api in (("dns", "Dns"), ("dns_search", "DnsSearch"), ("dns_opt", "DnsOptions")):
        if svc.get(key):
            host[api] = [str(v) for v in svc[key]]
    if svc.get("ulimits"):
        host["Ulimits"] = [
            {"Name": k, "Soft": int(v["soft"]), "Hard": int(v["hard"])}
            for k, v in svc["ulimits"].items()
        ]
    _host_extras(project, svc, host)
    if svc.get("extra_hosts"):
        host["ExtraHosts"] = [str(h).replace("=", ":", 1) for h in svc["extra_hosts"]]
    logging = svc.get("logging") or {}
    if logging:
        host["LogConfig"] = {
            "Type": logging.get("driver", "json-file"),
            "Config": {k: text_of(v) for k, v in (logging.get("options") or {}).items()},
        }
    endpoints: dict[str, Any] = {}
    mode = network_mode or svc.get("network_mode")
    if mode:
        host["NetworkMode"] = str(mode)
    elif networks_supported:
        nets = project.model.get("networks") or {}
        for i, (net, spec) in enumerate((svc.get("networks") or {}).items()):
            full = str(nets.get(net, {}).get("name", net))
            aliases = [service, *((spec or {}).get("aliases") or [])]
            endpoint: dict[str, Any] = {"Aliases": aliases}
            ipam = {
                k: v
                for k, v in (
                    ("IPv4Address", (spec or {}).get("ipv4_address")),
                    ("IPv6Address", (spec or {}).get("ipv6_address")),
                )
                if v
            }
            if ipam:
                endpoint["IPAMConfig"] = ipam
            endpoints[full] = endpoint
            if i == 0:
                host["NetworkMode"] = full
    else:
        host["NetworkMode"] = "default"
    config: dict[str, Any] = {
        "Hostname": str(svc.get("hostname", "")),
        "Domainname": str(svc.get("domainname", "")),
        "User": str(svc.get("user", "")),
        "AttachStdin": False,
        "AttachStdout": False,
        "AttachStderr": False,
        "Tty": bool(svc.get("tty", False)),  # a terminal: `compose attach`/`docker attach -it`
        "OpenStdin": bool(svc.get("stdin_open", False)),
        "StdinOnce": False,
        "Env": env,
        "Cmd": svc.get("command"),
        "Image": project.image(service),
        "WorkingDir": str(svc.get("working_dir", "")),
        "Entrypoint": svc.get("entrypoint"),
        "Labels": labels_for(project, service, number),
        "HostConfig": host,
        "NetworkingConfig": {"EndpointsConfig": endpoints},
    }
    if svc.get("entrypoint") == []:
        config["Entrypoint"] = [""]  # an explicit empty entrypoint resets the image's
    if exposed:
        config["ExposedPorts"] = exposed
    if svc.get("stop_signal"):
        config["StopSignal"] = str(svc["stop_signal"])
    if "stop_grace_period" in svc:
        config["StopTimeout"] = duration_ns(svc["stop_grace_period"]) // 10**9
    if isinstance(svc.get("healthcheck"), dict):
        config["Healthcheck"] = _healthcheck(svc["healthcheck"])
    return name, config


def pairs(value: Any) -> dict[str, str]:
    """A compose mapping-or-list (`{k: v}` or `[k=v]`) as strings."""
    if isinstance(value, dict):
        return {str(k): text_of(v) for k, v in value.items()}
    out: dict[str, str] = {}
    for item in value or []:
        k, _, v = str(item).partition("=")
        out[k] = v
    return out


def _peer(project: Project, ref: str) -> str:
    """The container another service's `service:X` means: its first replica, by name
    (the daemon resolves a name as an id)."""
    return container_name(project, ref, 1) if ref in project.services else ref


def _host_extras(project: Project, svc: dict[str, Any], host: dict[str, Any]) -> None:
    """The HostConfig fields of the keys a daemon may still refuse by name (shm_size →
    ShmSize "--shm-size", ...): mapped as compose maps them, the refusal left visible."""
    if svc.get("shm_size") is not None:
        host["ShmSize"] = size_bytes(svc["shm_size"])
    if svc.get("sysctls"):
        host["Sysctls"] = pairs(svc["sysctls"])
    if svc.get("annotations"):
        host["Annotations"] = pairs(svc["annotations"])
    if svc.get("group_add"):
        host["GroupAdd"] = [str(g) for g in svc["group_add"]]
    for key, api in (("ipc", "IpcMode"), ("pid", "PidMode"), ("uts", "UTSMode")):
        mode = str(svc.get(key) or "")
        if mode.startswith("service:"):
            mode = f"container:{_peer(project, mode[8:])}"
        if mode:
            host[api] = mode
    if svc.get("volumes_from"):
        out = []
        for ref in svc["volumes_from"]:
            text = str(ref)
            if text.startswith("container:"):
                out.append(text[10:])
            else:
                name, colon, mode = text.partition(":")
                out.append(f"{_peer(project, name)}{colon}{mode}")
        host["VolumesFrom"] = out
    if svc.get("links"):
        host["Links"] = [
            f"{_peer(project, name)}:{alias or name}"
            for name, _, alias in (str(v).partition(":") for v in svc["links"])
        ]
    if svc.get("mem_reservation") is not None:
        host["MemoryReservation"] = size_bytes(svc["mem_reservation"])
    if "oom_kill_disable" in svc:
        host["OomKillDisable"] = bool(svc["oom_kill_disable"])
    if svc.get("oom_score_adj") is not None:
        host["OomScoreAdj"] = int(svc["oom_score_adj"])


@dataclass
class RunOptions:
    """`compose run`'s overrides of the service (compose v2's applyRunOptions)."""

    command: list[str] = field(default_factory=list)
    entrypoint: list[str] | None = None
    environment: dict[str, str] = field(default_factory=dict)
    user: str = ""
    workdir: str = ""
    volumes: list[str] = field(default_factory=list)  # -v, docker's Binds syntax
    labels: dict[str, str] = field(default_factory=dict)
    name: str = ""
    service_ports: bool = False
    auto_remove: bool = False
    interactive: bool = True
    tty: bool = False
    # -p: (container port/proto, {"HostIp", "HostPort"}); replaces the service's ports
    publish: list[tuple[str, dict[str, str]]] = field(default_factory=list)


def oneoff_name(project: Project, service: str, slug: str) -> str:
    """compose v2: `PROJECT-SERVICE-run-<first 12 hex of the slug>`."""
    return f"{project.name}-{service}-run-{slug[:12]}"


def run_body(
    project: Project,
    service: str,
    slug: str,
    opts: RunOptions,
    *,
    networks_supported: bool = True,
    network_mode: str | None = None,
) -> tuple[str, dict[str, Any]]:
    """(name, create body) of a one-off container of `service`, as compose v2 makes it:
    the command (and entrypoint, which clears the service's command) replaced, `-e`
    over the service's environment, no restart policy, the service's ports only with
    `--service-ports`, its container_name dropped, labels `oneoff=True` and the slug."""
    svc = dict(project.services[service])
    svc.pop("container_name", None)
    if opts.command:
        svc["command"] = list(opts.command)
    if opts.entrypoint is not None:
        svc["entrypoint"] = list(opts.entrypoint)
        if not opts.command:
            svc["command"] = []
    if opts.user:
        svc["user"] = opts.user
    if opts.workdir:
        svc["working_dir"] = opts.workdir
    if opts.environment:
        svc["environment"] = {**(svc.get("environment") or {}), **opts.environment}
    if not opts.service_ports or opts.publish:
        svc.pop("ports", None)
    svc["tty"] = opts.tty
    svc["restart"] = "no"
    if isinstance(svc.get("deploy"), dict):
        svc["deploy"] = {k: v for k, v in svc["deploy"].items() if k != "restart_policy"}
    svc["stdin_open"] = opts.interactive
    model = {**project.model, "services": {**project.services, service: svc}}
    view = replace(project, model=model)
    _, body = create_body(
        view, service, 1, networks_supported=networks_supported, network_mode=network_mode
    )
    labels = body["Labels"]
    labels.update(opts.labels)
    labels[ONEOFF] = "True"
    labels[SLUG] = slug
    labels[NUMBER] = "1"
    host = body["HostConfig"]
    host["AutoRemove"] = opts.auto_remove
    if opts.volumes:
        host["Binds"] = [*(host.get("Binds") or []), *opts.volumes]
    for port, binding in opts.publish:
        host.setdefault("PortBindings", {}).setdefault(port, []).append(binding)
        body.setdefault("ExposedPorts", {})[port] = {}
    if opts.interactive:
        body.update(AttachStdin=True, StdinOnce=True, OpenStdin=True)
    body.update(AttachStdout=True, AttachStderr=True)
    return opts.name or oneoff_name(project, service, slug), body


def inherit_anonymous_volumes(body: dict[str, Any], old_mounts: list[dict[str, Any]]) -> None:
    """A recreated container keeps its predecessor's anonymous volumes (compose's
    behaviour, unless `-V`): each volume the old container had at a path where the new
    body names no volume or bind of its own (a service's `- /data`, an image's VOLUME)
    is mounted again there, by name. Changes `body` in place."""
    host = body["HostConfig"]
    mounts = list(host.get("Mounts") or [])
    binds = list(host.get("Binds") or [])
    bound = {b.split(":")[1] for b in binds if b.count(":") >= 1}
    named = {m["Target"] for m in mounts if m.get("Type") != "volume" or m.get("Source")}
    for old in old_mounts:
        dest, name = str(old.get("Destination") or ""), str(old.get("Name") or "")
        if old.get("Type") != "volume" or not name or not dest or dest in bound | named:
            continue
        mounts = [m for m in mounts if m.get("Target") != dest]
        mounts.append({"Type": "volume", "Source": name, "Target": dest,
                       "ReadOnly": not old.get("RW", True)})
    host["Mounts"] = mounts or None


@dataclass(frozen=True)
class Injected:
    """A secret or config copied into a container before it starts (an environment or
    inline source, or a file with uid/gid/mode): its content comes from `file` (read by
    the caller) or `content`."""

    target: str
    mode: int
    uid: int
    gid: int
    file: str = ""
    content: str = ""


def injected_files(project: Project, service: str) -> list[Injected]:
    """What is copied in for one service (pure): compose's defaults, mode 0444 owned by
    root. Raises ValueError naming a secret whose environment variable is not set."""
    svc = project.services[service]
    out = []
    for kind in ("secrets", "configs"):
        for ref in svc.get(kind) or []:
            source = (project.model.get(kind) or {}).get(ref["source"]) or {}
            if "file" in source and not {"uid", "gid", "mode"} & set(ref):
                continue  # bind-mounted
            if "environment" in source and "content" not in source:
                raise ValueError(
                    f"{kind[:-1]} {ref['source']}: environment variable "
                    f"{source['environment']} is not set"
                )
            out.append(Injected(
                target=str(ref["target"]), mode=int(ref.get("mode", 0o444)),
                uid=int(ref.get("uid", 0)), gid=int(ref.get("gid", 0)),
                file=str(source.get("file") or ""), content=str(source.get("content") or ""),
            ))
    return out
