"""`kube generate`'s pure core: containers as the Engine API inspects them -> Kubernetes
manifests (plain dicts) + what did not carry over.

Why a pure core: every mapping decision (Docker's Entrypoint/Cmd -> command/args, its
health check -> a probe, a restart policy -> a pod's) is a table a test can read
without a daemon; the CLI only fetches inspect records and prints `render`'s YAML.

Nothing is dropped silently: a field with no Kubernetes equivalent becomes a `Note`,
printed as a `#` comment above the document it concerns and as a warning on stderr.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from supervisor.engine.unsupported import FLAGS

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
#: The annotation that keeps a volume's corral name when Kubernetes' rules changed it
#: (`demo_data` -> PVC `demo-data`): `kube play` uses the original name again.
VOLUME_NAME_ANNOTATION = "corral.io/volume-name"
#: The label every generated object's pods are selected by.
APP_LABEL = "app.kubernetes.io/name"
#: Storage asked for by a PVC: Docker volumes have no size, Kubernetes requires one.
DEFAULT_STORAGE = "1Gi"

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")

WORKLOAD_TYPES = ("pod", "deployment")
SERVICE_TYPES = ("ClusterIP", "NodePort", "LoadBalancer")


@dataclass(frozen=True)
class Note:
    """Something of a container that Kubernetes cannot say (or says differently)."""

    subject: str  # the object it concerns: `Deployment/web`
    text: str

    def warning(self) -> str:
        return f"{self.subject}: {self.text}"


@dataclass
class Workload:
    """One Pod or Deployment: a container (or a compose service's replicas)."""

    name: str
    container: Mapping[str, Any]  # the inspect record the template is made from
    image_config: Mapping[str, Any]  # the image's Config (Env, Cmd, Entrypoint...)
    replicas: int = 1
    #: A corral pod's members, (name, inspect record, image Config), and its infra (which
    #: holds the published ports and the hostname); empty for a lone container.
    members: list[tuple[str, Mapping[str, Any], Mapping[str, Any]]] = field(
        default_factory=list)
    infra: Mapping[str, Any] | None = None


@dataclass
class Options:
    type: str = "pod"
    service_type: str = "ClusterIP"
    registry: str = ""  # HOST/PREFIX local image names are rewritten under


@dataclass
class Generated:
    docs: list[dict[str, Any]] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)

    def notes_for(self, doc: Mapping[str, Any]) -> list[Note]:
        subject = f"{doc['kind']}/{doc['metadata']['name']}"
        return [n for n in self.notes if n.subject == subject]


def dns_label(name: str, limit: int = 63) -> str:
    """A Docker name as a Kubernetes object name (RFC 1123 label): lower case, `_`/`.`
    -> `-`, other characters dropped, at most `limit` characters."""
    out = re.sub(r"[^a-z0-9-]", "", re.sub(r"[_.]", "-", name.lower()))
    out = out[:limit].strip("-")
    return out or "x"


def valid_label_key(key: str) -> bool:
    prefix, slash, name = key.rpartition("/")
    if slash and (not prefix or len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
        return False
    return len(name) <= 63 and bool(_LABEL_NAME.match(name))


def valid_label_value(value: str) -> bool:
    return value == "" or (len(value) <= 63 and bool(_LABEL_NAME.match(value)))


def fix_label_key(key: str) -> str:
    """The nearest valid key: invalid characters -> `-`, the name part cut to 63."""
    prefix, slash, name = key.rpartition("/")
    name = re.sub(r"[^-A-Za-z0-9_.]", "-", name)[-63:].strip("-_.") or "label"
    if slash:
        prefix = dns_label(prefix.replace(".", "\x00"), 253).replace("\x00", ".")
        fixed_prefix = ".".join(p.strip("-") for p in prefix.split(".") if p.strip("-"))
        return f"{fixed_prefix}/{name}" if fixed_prefix else name
    return name


def group_project(
    containers: Sequence[Mapping[str, Any]], images: Mapping[str, Mapping[str, Any]]
) -> list[Workload]:
    """A compose project's containers -> one workload per service, replicas = how many
    containers the service has (what `deploy.replicas`/`scale` made).  One-off
    (`compose run`) containers are not the service's."""
    by_service: dict[str, list[Mapping[str, Any]]] = {}
    for c in containers:
        labels = (c.get("Config") or {}).get("Labels") or {}
        if labels.get("com.docker.compose.oneoff") == "True":
            continue
        by_service.setdefault(labels.get(SERVICE_LABEL) or _name(c), []).append(c)
    out = []
    for service in sorted(by_service):
        members = sorted(by_service[service], key=_number)
        first = members[0]
        out.append(Workload(dns_label(service), first, images.get(first["Image"], {}),
                            replicas=len(members)))
    return out


def single(c: Mapping[str, Any], image: Mapping[str, Any]) -> Workload:
    return Workload(dns_label(_name(c)), c, image)


def pod(name: str, infra: Mapping[str, Any] | None,
        members: Sequence[tuple[str, Mapping[str, Any], Mapping[str, Any]]]) -> Workload:
    """A pod `kube play` (or a later `pod create`) made: one Pod of all its members."""
    first = members[0]
    return Workload(dns_label(name), first[1], first[2],
                    members=[(dns_label(n), c, i) for n, c, i in members], infra=infra)


def _name(c: Mapping[str, Any]) -> str:
    return str(c.get("Name", "")).lstrip("/") or str(c.get("Id", ""))[:12]


def _number(c: Mapping[str, Any]) -> int:
    labels = (c.get("Config") or {}).get("Labels") or {}
    try:
        return int(labels.get("com.docker.compose.container-number", "0"))
    except ValueError:
        return 0


def generate(workloads: Iterable[Workload], opts: Options) -> Generated:
    """Every workload's PVCs (once each), its Pod or Deployment, and its Service."""
    if opts.type not in WORKLOAD_TYPES:
        raise ValueError(f"invalid --type {opts.type!r}: must be pod or deployment")
    if opts.service_type not in SERVICE_TYPES:
        raise ValueError(f"invalid --service-type {opts.service_type!r}: must be "
                         "ClusterIP, NodePort or LoadBalancer")
    out = Generated()
    claims: dict[str, dict[str, Any]] = {}
    for w in workloads:
        _Builder(w, opts, out, claims).build()
    out.docs[:0] = list(claims.values())
    return out


def _seconds(ns: int | None, default: int) -> int:
    """A Docker duration (ns) as whole seconds, rounded up; at least 1."""
    if not ns:
        return default
    return max(1, math.ceil(ns / 1_000_000_000))


def quantity_bytes(n: int) -> str:
    for unit, size in (("Gi", 1 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)):
        if n % size == 0:
            return f"{n // size}{unit}"
    return str(n)


def quantity_cpus(nano: int) -> str:
    milli = nano / 1_000_000
    if milli == int(milli):
        m = int(milli)
        return str(m // 1000) if m % 1000 == 0 else f"{m}m"
    return f"{nano / 1_000_000_000:g}"


def image_name(ref: str, registry: str) -> str:
    """A pullable name: under `--registry HOST/PREFIX` a local name (no registry host:
    its first part has no `.`, `:` and is not `localhost`) becomes HOST/PREFIX/NAME."""
    if not registry:
        return ref
    first, slash, _ = ref.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return ref
    return f"{registry.rstrip('/')}/{ref}"


# HostConfig fields mapped below, or engine defaults nothing needs to say.
_HOST_HANDLED = frozenset({
    "Binds", "Mounts", "Tmpfs", "PortBindings", "PublishAllPorts", "RestartPolicy",
    "Memory", "MemoryReservation", "NanoCpus", "CapAdd", "CapDrop", "Privileged",
    "ReadonlyRootfs", "NetworkMode", "ExtraHosts", "SecurityOpt", "AutoRemove",
    "MaskedPaths", "ReadonlyPaths", "ConsoleSize",
})
_HOST_DEFAULTS: dict[str, tuple[Any, ...]] = {
    "LogConfig": ({"Type": "json-file", "Config": {}}, {"Type": "json-file", "Config": None},
                  {"Type": "", "Config": {}}, {"Type": "", "Config": None}),
    "Runtime": ("runc", "crun"),
    "IpcMode": ("private", "shareable"),
    "CgroupnsMode": ("host", "private"),
    "UsernsMode": ("host",),
    "Isolation": ("default",),
    "MemorySwappiness": (-1,),
    "VolumeDriver": ("local",),
    "OomKillDisable": (False,),
}


#: Flags for fields `engine/unsupported.py`'s table does not name (corral applies them).
_MORE_FLAGS = {
    "PidsLimit": "--pids-limit", "Dns": "--dns", "DnsSearch": "--dns-search",
    "DnsOptions": "--dns-option", "Ulimits": "--ulimit", "Init": "--init",
    "MemorySwap": "--memory-swap", "CpuShares": "-c/--cpu-shares", "OomKillDisable":
    "--oom-kill-disable", "Links": "--link", "ShmSize": "--shm-size",
}


def _empty(value: Any) -> bool:
    return value is None or value is False or value == 0 or value == "" or value in ([], {})


class _Builder:
    """One workload's documents; its notes go to `out.notes`."""

    def __init__(self, w: Workload, opts: Options, out: Generated,
                 claims: dict[str, dict[str, Any]]) -> None:
        self.w, self.opts, self.out, self.claims = w, opts, out, claims
        self.member = w.name
        self.image_cfg: Mapping[str, Any] = w.image_config
        self.c: Mapping[str, Any] = w.container
        self.cfg: Mapping[str, Any] = self.c.get("Config") or {}
        self.host: Mapping[str, Any] = self.c.get("HostConfig") or {}
        self.pod_volumes: list[dict[str, Any]] = []
        self.used: set[str] = set()
        self.volume_of: dict[tuple[str, str], str] = {}  # (type, source) -> pod volume
        self.kind = "Deployment" if opts.type == "deployment" else "Pod"
        self.subject = f"{self.kind}/{w.name}"

    def note(self, text: str, subject: str | None = None) -> None:
        self.out.notes.append(Note(subject or self.subject, text))

    def use(self, name: str, c: Mapping[str, Any], image: Mapping[str, Any]) -> None:
        self.member, self.c, self.image_cfg = name, c, image
        self.cfg = c.get("Config") or {}
        self.host = c.get("HostConfig") or {}

    def build(self) -> None:
        containers = []
        for name, c, image in self.w.members or [(self.w.name, self.w.container,
                                                  self.w.image_config)]:
            self.use(name, c, image)
            container = self.container()
            self.volumes(container)
            self.unmapped()
            containers.append(container)
        first = self.w.members[0] if self.w.members else None
        if first is not None:
            stop_timeout = (first[1].get("Config") or {}).get("StopTimeout")
            self.use(first[0], self.w.infra or first[1], {})
        pod_spec: dict[str, Any] = {"containers": containers}
        if self.pod_volumes:
            pod_spec["volumes"] = self.pod_volumes
        pod_spec.update(self.pod_level())
        if first is not None:
            if stop_timeout is not None:
                pod_spec["terminationGracePeriodSeconds"] = int(stop_timeout)
            self.use(*first)
        restart = self.restart_policy()
        meta: dict[str, Any] = {"name": self.w.name, "labels": {APP_LABEL: self.w.name}}
        annotations = self.annotations()
        if first is not None:
            self.use(first[0], self.w.infra or first[1], {})
        if annotations:
            meta["annotations"] = annotations
        if self.kind == "Pod":
            pod_spec["restartPolicy"] = restart
            if self.w.replicas > 1:
                self.note(f"the service has {self.w.replicas} replicas; a Pod runs one "
                          "(use --type deployment)")
            doc: dict[str, Any] = {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
                                   "spec": pod_spec}
        else:
            if restart != "Always":
                self.note(f"restart policy {self._docker_restart()!r} becomes Always: a "
                          "Deployment's pods always restart")
            pod_spec["restartPolicy"] = "Always"
            template_meta: dict[str, Any] = {"labels": {APP_LABEL: self.w.name}}
            if annotations:
                template_meta["annotations"] = annotations
            doc = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta,
                   "spec": {"replicas": self.w.replicas,
                            "selector": {"matchLabels": {APP_LABEL: self.w.name}},
                            "template": {"metadata": template_meta, "spec": pod_spec}}}
        self.out.docs.append(doc)
        service = self.service()
        if service is not None:
            self.out.docs.append(service)

    # -- the container --------------------------------------------------------------

    def container(self) -> dict[str, Any]:
        image = str(self.cfg.get("Image") or self.c.get("Image", ""))
        if image.startswith("sha256:"):
            self.note(f"the image is known by its id only ({image[:19]}...): tag it and "
                      "generate again, a cluster cannot pull it")
        c: dict[str, Any] = {"name": self.member,
                             "image": image_name(image, self.opts.registry)}
        if self.opts.registry and c["image"] != image:
            self.note(f"image {image} is named {c['image']} (kube generate --registry "
                      "tags and pushes it there)")
        c.update(self.command())
        workdir = self.cfg.get("WorkingDir") or ""
        if workdir and workdir != (self.image_cfg.get("WorkingDir") or ""):
            c["workingDir"] = workdir
        env = self.env()
        if env:
            c["env"] = env
        ports = self.container_ports()
        if ports:
            c["ports"] = ports
        resources = self.resources()
        if resources:
            c["resources"] = resources
        probe = self.probe()
        if probe:
            c["readinessProbe"] = probe
        for kind, body in self.kube_probes().items():  # a played container's own probes
            c[f"{kind}Probe"] = body
        security = self.security_context()
        if security:
            c["securityContext"] = security
        if self.cfg.get("Tty"):
            c["tty"] = True
        if self.cfg.get("OpenStdin"):
            c["stdin"] = True
        signal = self.cfg.get("StopSignal") or ""
        if signal and signal.upper() not in ("SIGTERM", "TERM", "15"):
            self.note(f"stop signal {signal} (--stop-signal) has no Kubernetes equivalent "
                      "in the stable API: the kubelet sends SIGTERM")
        return c

    def command(self) -> dict[str, Any]:
        """Docker's Entrypoint -> `command`, Cmd -> `args`, as the container ran them."""
        entry = list(self.cfg.get("Entrypoint") or [])
        cmd = list(self.cfg.get("Cmd") or [])
        image_entry = list(self.image_cfg.get("Entrypoint") or [])
        out: dict[str, Any] = {}
        if entry:
            out["command"] = entry
            if cmd:
                out["args"] = cmd
        elif image_entry and cmd:
            # the entrypoint was cleared (`--entrypoint ""`): Cmd is the whole command
            out["command"] = cmd
        elif cmd:
            out["args"] = cmd
        return out

    def env(self) -> list[dict[str, str]]:
        image_env = set(self.image_cfg.get("Env") or [])
        out = []
        for item in self.cfg.get("Env") or []:
            if item in image_env:
                continue  # the image sets it already
            name, _, value = str(item).partition("=")
            out.append({"name": name, "value": value})
        return out

    def _bindings(self) -> list[tuple[int, str, str, str]]:
        """(container port, protocol, host ip, host port) of every published port."""
        out = []
        for key, binds in sorted((self.host.get("PortBindings") or {}).items()):
            port, _, proto = key.partition("/")
            for b in binds or [{}]:
                out.append((int(port), (proto or "tcp").upper(), b.get("HostIp") or "",
                            b.get("HostPort") or ""))
        return out

    def container_ports(self) -> list[dict[str, Any]]:
        seen: dict[tuple[int, str], None] = {}
        for key in sorted(self.cfg.get("ExposedPorts") or {}):
            port, _, proto = key.partition("/")
            seen[(int(port), (proto or "tcp").upper())] = None
        for port, proto, _, _ in self._bindings():
            seen[(port, proto)] = None
        out = []
        for port, proto in sorted(seen):
            entry: dict[str, Any] = {"containerPort": port}
            if proto != "TCP":
                entry["protocol"] = proto
            out.append(entry)
        return out

    def resources(self) -> dict[str, Any]:
        limits: dict[str, str] = {}
        requests: dict[str, str] = {}
        if self.host.get("Memory"):
            limits["memory"] = quantity_bytes(int(self.host["Memory"]))
        if self.host.get("NanoCpus"):
            limits["cpu"] = quantity_cpus(int(self.host["NanoCpus"]))
        if self.host.get("MemoryReservation"):
            requests["memory"] = quantity_bytes(int(self.host["MemoryReservation"]))
        out: dict[str, Any] = {}
        if limits:
            out["limits"] = limits
        if requests:
            out["requests"] = requests
        return out

    def kube_probes(self) -> dict[str, dict[str, Any]]:
        from supervisor.pods import probes

        try:
            return {p.kind: probes.to_kube(p) for p in probes.decode(self.cfg.get("Labels"))}
        except probes.ProbeError as exc:
            self.note(f"{exc}: no probes")
            return {}

    def probe(self) -> dict[str, Any]:
        hc = self.cfg.get("Healthcheck") or {}
        test = list(hc.get("Test") or [])
        if not test or test[0] == "NONE":
            return {}
        if test[0] == "CMD-SHELL":
            command = ["/bin/sh", "-c", " ".join(test[1:])]
        elif test[0] == "CMD":
            command = test[1:]
        else:
            self.note(f"health check test {test!r} is not CMD or CMD-SHELL: no probe")
            return {}
        if hc.get("StartInterval"):
            self.note("health check start_interval has no Kubernetes equivalent")
        probe: dict[str, Any] = {
            "exec": {"command": command},
            "periodSeconds": _seconds(hc.get("Interval"), 30),
            "timeoutSeconds": _seconds(hc.get("Timeout"), 30),
            "failureThreshold": int(hc.get("Retries") or 3),
        }
        if hc.get("StartPeriod"):
            probe["initialDelaySeconds"] = _seconds(hc.get("StartPeriod"), 0)
        return probe

    def security_context(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        user = str(self.cfg.get("User") or "")
        if user:
            uid, _, gid = user.partition(":")
            if uid.isdigit():
                out["runAsUser"] = int(uid)
            elif uid:
                self.note(f"user {uid!r} is a name: Kubernetes takes a numeric runAsUser "
                          "(run the container with -u UID to carry it)")
            if gid.isdigit():
                out["runAsGroup"] = int(gid)
            elif gid:
                self.note(f"group {gid!r} is a name: Kubernetes takes a numeric runAsGroup")
        caps: dict[str, list[str]] = {}
        for key, name in (("CapAdd", "add"), ("CapDrop", "drop")):
            values = [str(v).upper().removeprefix("CAP_") for v in self.host.get(key) or []]
            if values:
                caps[name] = values
        if caps:
            out["capabilities"] = caps
        if self.host.get("ReadonlyRootfs"):
            out["readOnlyRootFilesystem"] = True
        if self.host.get("Privileged"):
            out["privileged"] = True
        for opt in self.host.get("SecurityOpt") or []:
            opt = str(opt)
            if opt in ("no-new-privileges", "no-new-privileges:true", "no-new-privileges=true"):
                out["allowPrivilegeEscalation"] = False
            elif opt in ("seccomp=unconfined", "seccomp:unconfined"):
                out["seccompProfile"] = {"type": "Unconfined"}
            else:
                self.note(f"security option {opt!r} (--security-opt) has no Kubernetes "
                          "equivalent here")
        return out

    # -- the pod --------------------------------------------------------------------

    def volumes(self, container: dict[str, Any]) -> None:
        """The member's mounts; the pod's volumes (shared by members naming the same
        source) gather in `pod_volumes`."""
        volumes = self.pod_volumes
        mounts: list[dict[str, Any]] = []
        used = self.used

        def unique(base: str) -> str:
            name, n = dns_label(base), 2
            while name in used:
                name, n = f"{dns_label(base, 60)}-{n}", n + 1
            used.add(name)
            return name

        for m in self.c.get("Mounts") or []:
            dest, kind = str(m.get("Destination", "")), m.get("Type")
            read_only = not m.get("RW", True)
            if kind == "volume":
                vname = str(m.get("Name", ""))
                if _HEX64.match(vname):
                    name = unique(f"anon-{vname[:8]}")
                    volumes.append({"name": name, "emptyDir": {}})
                    self.note(f"anonymous volume at {dest} becomes an emptyDir (its data "
                              "does not outlive the pod)")
                elif ("volume", vname) in self.volume_of:
                    name = self.volume_of[("volume", vname)]
                else:
                    claim = self.claim(vname, str(m.get("Driver") or "local"))
                    name = unique(claim)
                    self.volume_of[("volume", vname)] = name
                    volumes.append({"name": name,
                                    "persistentVolumeClaim": {"claimName": claim}})
            elif kind == "bind" and ("bind", str(m.get("Source"))) in self.volume_of:
                name = self.volume_of[("bind", str(m.get("Source")))]
            elif kind == "bind":
                name = unique(f"host-{dest.strip('/').replace('/', '-') or 'root'}")
                self.volume_of[("bind", str(m.get("Source")))] = name
                volumes.append({"name": name, "hostPath": {"path": str(m.get("Source", ""))}})
                self.note(f"bind mount {m.get('Source')}:{dest} becomes a hostPath volume: "
                          "the path must exist on the node (a ConfigMap or an image layer "
                          "is the portable way)")
            elif kind == "tmpfs":
                name = unique(f"tmpfs-{dest.strip('/').replace('/', '-')}")
                volumes.append({"name": name, "emptyDir": {"medium": "Memory"}})
            else:
                self.note(f"mount of type {kind} at {dest} has no Kubernetes equivalent")
                continue
            mount: dict[str, Any] = {"name": name, "mountPath": dest}
            if read_only:
                mount["readOnly"] = True
            mounts.append(mount)
        for dest in sorted(self.host.get("Tmpfs") or {}):
            name = unique(f"tmpfs-{dest.strip('/').replace('/', '-')}")
            volumes.append({"name": name, "emptyDir": {"medium": "Memory"}})
            mounts.append({"name": name, "mountPath": dest})
            if self.host["Tmpfs"][dest]:
                self.note(f"tmpfs options {self.host['Tmpfs'][dest]!r} at {dest} are not "
                          "carried (an emptyDir in memory has none but a size limit)")
        if mounts:
            container["volumeMounts"] = mounts

    def claim(self, volume: str, driver: str) -> str:
        name = dns_label(volume, 253)
        if name not in self.claims:
            meta: dict[str, Any] = {"name": name}
            if name != volume:
                meta["annotations"] = {VOLUME_NAME_ANNOTATION: volume}
            self.claims[name] = {
                "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta,
                "spec": {"accessModes": ["ReadWriteOnce"],
                         "resources": {"requests": {"storage": DEFAULT_STORAGE}}}}
            self.note(f"Docker volumes have no size: the claim asks for {DEFAULT_STORAGE}",
                      f"PersistentVolumeClaim/{name}")
            if driver != "local":
                self.note(f"volume driver {driver} has no Kubernetes equivalent (choose a "
                          "storageClassName)", f"PersistentVolumeClaim/{name}")
        return name

    def pod_level(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        hostname = str(self.cfg.get("Hostname") or "")
        if hostname and hostname != str(self.c.get("Id", ""))[:12]:
            if _DNS_LABEL.match(hostname):
                out["hostname"] = hostname
            else:
                self.note(f"hostname {hostname!r} is not a valid pod hostname")
        if self.cfg.get("Domainname"):
            self.note(f"domain name {self.cfg['Domainname']!r} has no Kubernetes equivalent")
        aliases: dict[str, list[str]] = {}
        for item in self.host.get("ExtraHosts") or []:
            host, _, ip = str(item).partition(":")
            if ip == "host-gateway":
                self.note(f"extra host {host}:host-gateway has no Kubernetes equivalent")
                continue
            aliases.setdefault(ip, []).append(host)
        if aliases:
            out["hostAliases"] = [{"ip": ip, "hostnames": names}
                                  for ip, names in sorted(aliases.items())]
        timeout = self.cfg.get("StopTimeout")
        if timeout is not None:
            out["terminationGracePeriodSeconds"] = int(timeout)
        if self.w.infra is not None:  # a corral pod: what its members share
            from supervisor.pods.members import share_of

            share = share_of(self.cfg.get("Labels"))
            if "pid" in share:
                out["shareProcessNamespace"] = True
            for ns in ("ipc", "uts"):
                if ns not in share:
                    self.note(f"the pod does not share {ns}: a Kubernetes pod's containers "
                              "always do")
        mode = str(self.host.get("NetworkMode") or "")
        if mode == "host":
            out["hostNetwork"] = True
        elif mode == "none":
            self.note("network mode none has no Kubernetes equivalent: pods always have one")
        elif mode.startswith("container:"):
            self.note(f"network mode {mode} has no Kubernetes equivalent: put the containers "
                      "in one pod")
        return out

    def restart_policy(self) -> str:
        name = self._docker_restart()
        if name in ("always", "unless-stopped"):
            return "Always"
        if name == "on-failure":
            retries = (self.host.get("RestartPolicy") or {}).get("MaximumRetryCount") or 0
            if retries:
                self.note(f"on-failure:{retries}: Kubernetes has no retry limit (it backs "
                          "off, up to 5 minutes apart)")
            return "OnFailure"
        return "Never"

    def _docker_restart(self) -> str:
        return str((self.host.get("RestartPolicy") or {}).get("Name") or "no")

    def annotations(self) -> dict[str, str]:
        """The container's labels, as annotations (their values are free text; label
        values are not).  Compose's own bookkeeping labels are left to compose."""
        out: dict[str, str] = {}
        image_labels = self.image_cfg.get("Labels") or {}
        for key, value in sorted((self.cfg.get("Labels") or {}).items()):
            if key.startswith(("com.docker.compose.", "io.corral.kube.", "io.corral.pod.")) or \
                    image_labels.get(key) == value:
                continue
            if not valid_label_key(key):
                fixed = fix_label_key(key)
                self.note(f"label key {key!r} is not valid in Kubernetes: written as {fixed!r}")
                key = fixed
            out[key] = str(value)
        return out

    def unmapped(self) -> None:
        """Every other HostConfig field with a value: named, not dropped."""
        for key, value in sorted(self.host.items()):
            if key in _HOST_HANDLED or _empty(value) or value in _HOST_DEFAULTS.get(key, ()):
                continue
            if key in ("LogConfig",):
                text = f"log driver {value.get('Type')} {value.get('Config') or ''}".rstrip()
                self.note(f"{text} has no Kubernetes equivalent (the node's runtime logs)")
                continue
            flag = FLAGS.get(key) or _MORE_FLAGS.get(key, "")
            named = f"HostConfig.{key}" + (f" ({flag})" if flag else "")
            self.note(f"{named}={_short(value)} has no Kubernetes equivalent")
        if self.host.get("PublishAllPorts"):
            self.note("-P (publish all exposed ports) is not carried: only explicit "
                      "published ports become Service ports")

    # -- the service ----------------------------------------------------------------

    def service(self) -> dict[str, Any] | None:
        ports: dict[tuple[int, str], dict[str, Any]] = {}
        subject = f"Service/{self.w.name}"
        for port, proto, host_ip, host_port in self._bindings():
            if host_ip not in ("", "0.0.0.0", "::"):
                self.note(f"port {port}/{proto.lower()} is published on {host_ip} only: a "
                          "Service has no host address", subject)
            service_port = int(host_port) if host_port.isdigit() else port
            key = (service_port, proto)
            if key in ports:
                continue
            entry: dict[str, Any] = {"name": f"{proto.lower()}-{service_port}",
                                     "port": service_port, "targetPort": port}
            if proto != "TCP":
                entry["protocol"] = proto
            if self.opts.service_type == "NodePort":
                if 30000 <= service_port <= 32767:
                    entry["nodePort"] = service_port
                else:
                    self.note(f"port {service_port} is outside the NodePort range "
                              "30000-32767: the cluster chooses the node port", subject)
            ports[key] = entry
        if not ports:
            return None
        spec: dict[str, Any] = {"selector": {APP_LABEL: self.w.name},
                                "ports": [ports[k] for k in sorted(ports)]}
        if self.opts.service_type != "ClusterIP":
            spec["type"] = self.opts.service_type
        return {"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": self.w.name, "labels": {APP_LABEL: self.w.name}},
                "spec": spec}


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def render(gen: Generated) -> str:
    """Multi-document YAML; each document's notes as `#` comments above it."""
    parts = []
    for doc in gen.docs:
        notes = gen.notes_for(doc)
        head = "".join(f"# corral: {n.text}\n" for n in notes)
        body = yaml.safe_dump(doc, sort_keys=False, default_flow_style=False, width=100)
        parts.append(f"---\n{head}{body}")
    return "".join(parts)
