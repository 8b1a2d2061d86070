"""`kube play`'s pure core: Kubernetes documents -> the volumes and containers corral
makes for them (Engine API create bodies), or the first unsupported thing, named.

Why all checks happen here, before anything is made: a play either makes everything
or nothing (a refused field in the fifth document must not leave the first four
running).  The CLI carries the plan out and removes what it made if a create fails.

A pod is an infra container holding the namespaces (`supervisor/pods/`: catatonit
on a root of its own, no image) plus one container per member joined to it by the
pod label: members share its network (so `localhost` between them, ports published
on the infra), ipc and uts namespaces, as Kubernetes shares them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from supervisor.kube.generate import APP_LABEL, VOLUME_NAME_ANNOTATION
from supervisor.pods import probes as probe_core
from supervisor.pods.labels import DEFAULT_SHARE, INFRA_LABEL, INFRA_REF, POD_LABEL, SHARE_LABEL

__all__ = ["INFRA_LABEL", "POD_LABEL"]  # kept importable from here

LABEL_PREFIX = "io.corral.kube."
PLAYED = LABEL_PREFIX + "played"  # every container and volume a play made
OWNER_LABEL = LABEL_PREFIX + "owner"  # Kind/name of the document that made it
CONFIG_HASH = LABEL_PREFIX + "config-hash"  # a pod's, on each of its containers


class PlayError(Exception):
    """`FILE:doc N: ...`: the first thing of the documents corral cannot run."""


@dataclass
class Doc:
    file: str
    index: int  # 1-based, as a reader counts documents
    body: Mapping[str, Any]

    @property
    def where(self) -> str:
        return f"{self.file}:doc {self.index}"

    @property
    def name(self) -> str:
        return str((self.body.get("metadata") or {}).get("name") or "")


@dataclass
class VolumePlan:
    name: str
    labels: dict[str, str]
    files: dict[str, bytes] = field(default_factory=dict)  # ConfigMap/Secret contents
    shared: bool = False  # a claim: kept by --down if it existed before the play


@dataclass
class ContainerPlan:
    name: str
    body: dict[str, Any]


@dataclass
class PodPlan:
    name: str
    infra: ContainerPlan
    members: list[ContainerPlan]
    own_volumes: list[str] = field(default_factory=list)  # emptyDir, ConfigMap, Secret
    config_hash: str = ""


def stamp(pod: PodPlan, volumes: Sequence[VolumePlan]) -> None:
    """The pod's config hash, on the pod and as a label on each of its containers: what
    a second play compares to tell an unchanged pod (kept as it runs) from a changed
    one (made again), as compose's reconcile compares a service's hash."""
    doc = {"infra": pod.infra.body, "members": [[c.name, c.body] for c in pod.members],
           "volumes": {v.name: {k: base64.b64encode(d).decode() for k, d in
                                sorted(v.files.items())} for v in volumes}}
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"))
    pod.config_hash = hashlib.sha256(text.encode()).hexdigest()
    for c in (pod.infra, *pod.members):
        c.body.setdefault("Labels", {})[CONFIG_HASH] = pod.config_hash


@dataclass
class Plan:
    volumes: list[VolumePlan] = field(default_factory=list)
    pods: list[PodPlan] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def images(self) -> list[str]:
        seen: dict[str, None] = {}
        for pod in self.pods:
            for c in pod.members:  # (the infra has no image)
                seen[str(c.body["Image"])] = None
        return list(seen)

    def container_names(self) -> list[str]:
        return [c.name for p in self.pods for c in (p.infra, *p.members)]


SUPPORTED_KINDS = ("Pod", "Deployment", "Service", "ConfigMap", "Secret",
                   "PersistentVolumeClaim")
_API = {"Pod": "v1", "Service": "v1", "ConfigMap": "v1", "Secret": "v1",
        "PersistentVolumeClaim": "v1", "Deployment": "apps/v1"}

# The fields play applies, per place: anything else is refused by its path.
_META = {"name", "labels", "annotations", "namespace"}
_POD_SPEC = {"containers", "volumes", "restartPolicy", "hostname", "hostAliases",
             "terminationGracePeriodSeconds", "hostNetwork", "shareProcessNamespace"}
_CONTAINER = {"name", "image", "command", "args", "env", "envFrom", "ports", "resources",
              "readinessProbe", "livenessProbe", "startupProbe", "securityContext", "volumeMounts",
              "workingDir", "tty", "stdin", "imagePullPolicy"}
_SECURITY = {"runAsUser", "runAsGroup", "capabilities", "readOnlyRootFilesystem",
             "privileged", "allowPrivilegeEscalation"}
_VOLUME = {"name", "persistentVolumeClaim", "emptyDir", "hostPath", "configMap", "secret"}
_MOUNT = {"name", "mountPath", "readOnly"}
_PORT = {"containerPort", "protocol", "name", "hostPort"}
_SERVICE_SPEC = {"selector", "ports", "type"}
_SERVICE_PORT = {"name", "port", "targetPort", "protocol", "nodePort"}
_DEPLOY_SPEC = {"replicas", "selector", "template"}


def _check(where: str, path: str, value: Any, allowed: set[str]) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise PlayError(f"{where}: {path} must be a mapping")
    for key in value:
        if key not in allowed:
            raise PlayError(f"{where}: field {path}.{key} is not supported by corral")
    return value


_QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E|m)?$")
_FACTORS = {"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40, "Pi": 1 << 50,
            "Ei": 1 << 60, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15,
            "E": 10**18, "m": 1e-3, None: 1}


def quantity(text: Any, where: str) -> float:
    """A Kubernetes quantity (`64Mi`, `500m`, `1.5`) as a number."""
    m = _QUANTITY.match(str(text))
    if not m:
        raise PlayError(f"{where}: invalid quantity {text!r}")
    return float(m.group(1)) * _FACTORS[m.group(2)]


class _Planner:
    def __init__(self, docs: Sequence[Doc]) -> None:
        self.docs = docs
        self.plan = Plan()
        self.config: dict[str, tuple[Doc, dict[str, bytes]]] = {}  # "ConfigMap/x"
        self.claims: dict[str, str] = {}  # claim name -> corral volume name
        self.volumes: dict[str, VolumePlan] = {}
        self.services: list[Doc] = []
        self.published: set[tuple[int, str]] = set()

    def run(self) -> Plan:
        workloads = []
        for doc in self.docs:
            kind = doc.body.get("kind")
            if kind not in SUPPORTED_KINDS:
                raise PlayError(f"{doc.where}: kind {kind} is not supported")
            api = doc.body.get("apiVersion")
            if api != _API[str(kind)]:
                raise PlayError(f"{doc.where}: apiVersion {api} of kind {kind} is not "
                                f"supported (corral reads {_API[str(kind)]})")
            meta = _check(doc.where, "metadata", doc.body.get("metadata"), _META)
            if not meta.get("name"):
                raise PlayError(f"{doc.where}: metadata.name is required")
            if meta.get("namespace") not in (None, "default"):
                raise PlayError(f"{doc.where}: namespace {meta['namespace']} is not "
                                "supported (corral has the default namespace only)")
            for key in doc.body:
                if key not in ("apiVersion", "kind", "metadata", "spec", "data",
                               "stringData", "type"):
                    raise PlayError(f"{doc.where}: field {key} is not supported by corral")
            if kind in ("ConfigMap", "Secret"):
                self.config_doc(doc, str(kind))
            elif kind == "PersistentVolumeClaim":
                self.claim_doc(doc)
            elif kind == "Service":
                self.services.append(doc)
            else:
                workloads.append(doc)
        for doc in workloads:
            if doc.body["kind"] == "Pod":
                self.pod(doc, doc.name, doc.body, 1, doc.name)
            else:
                self.deployment(doc)
        self.plan.volumes = list(self.volumes.values())
        for pod in self.plan.pods:
            pod.own_volumes = [v.name for v in self.plan.volumes
                               if not v.shared and v.labels.get(POD_LABEL) == pod.name]
            stamp(pod, [self.volumes[v] for v in pod.own_volumes])
        return self.plan

    # -- data documents -------------------------------------------------------------

    def config_doc(self, doc: Doc, kind: str) -> None:
        files: dict[str, bytes] = {}
        if kind == "Secret":
            kind_type = doc.body.get("type", "Opaque")
            if kind_type != "Opaque":
                raise PlayError(f"{doc.where}: Secret type {kind_type} is not supported")
            for key, value in (doc.body.get("data") or {}).items():
                try:
                    files[str(key)] = base64.b64decode(str(value), validate=True)
                except ValueError:
                    raise PlayError(f"{doc.where}: data.{key} is not base64") from None
            for key, value in (doc.body.get("stringData") or {}).items():
                files[str(key)] = str(value).encode()
        else:
            if "stringData" in doc.body or "type" in doc.body:
                raise PlayError(f"{doc.where}: field stringData/type is not a ConfigMap's")
            for key, value in (doc.body.get("data") or {}).items():
                files[str(key)] = str(value).encode()
        self.config[f"{kind}/{doc.name}"] = (doc, files)

    def claim_doc(self, doc: Doc) -> None:
        _check(doc.where, "spec", doc.body.get("spec"),
               {"accessModes", "resources", "storageClassName", "volumeMode"})
        annotations = (doc.body.get("metadata") or {}).get("annotations") or {}
        self.claims[doc.name] = str(annotations.get(VOLUME_NAME_ANNOTATION) or doc.name)

    # -- workloads ------------------------------------------------------------------

    def deployment(self, doc: Doc) -> None:
        spec = _check(doc.where, "spec", doc.body.get("spec"), _DEPLOY_SPEC)
        replicas = spec.get("replicas", 1)
        if not isinstance(replicas, int) or replicas < 0:
            raise PlayError(f"{doc.where}: spec.replicas must be a whole number")
        template = _check(doc.where, "spec.template", spec.get("template"),
                          {"metadata", "spec"})
        tmeta = _check(doc.where, "spec.template.metadata", template.get("metadata"), _META)
        selector = _check(doc.where, "spec.selector", spec.get("selector"), {"matchLabels"})
        labels = tmeta.get("labels") or {}
        for key, value in (selector.get("matchLabels") or {}).items():
            if labels.get(key) != value:
                raise PlayError(f"{doc.where}: spec.selector does not match the template's "
                                f"labels ({key})")
        pod_body = {"metadata": tmeta, "spec": template.get("spec")}
        if (template.get("spec") or {}).get("restartPolicy", "Always") != "Always":
            raise PlayError(f"{doc.where}: spec.template.spec.restartPolicy must be Always "
                            "in a Deployment")
        for n in range(1, replicas + 1):
            self.pod(doc, f"{doc.name}-{n}", pod_body, n, f"Deployment/{doc.name}",
                     prefix="spec.template.")

    def pod(self, doc: Doc, name: str, body: Mapping[str, Any], replica: int, owner: str,
            prefix: str = "") -> None:
        where = doc.where
        meta = body.get("metadata") or {}
        spec = _check(where, f"{prefix}spec", body.get("spec"), _POD_SPEC)
        if owner == name:
            owner = f"Pod/{name}"
        containers = spec.get("containers") or []
        if not containers:
            raise PlayError(f"{where}: {prefix}spec.containers is required")
        labels = {str(k): str(v) for k, v in (meta.get("labels") or {}).items()}
        base_labels = {PLAYED: "true", POD_LABEL: name, OWNER_LABEL: owner}
        restart = {"Always": "always", "OnFailure": "on-failure", "Never": "no"}.get(
            str(spec.get("restartPolicy", "Always")))
        if restart is None:
            raise PlayError(f"{where}: {prefix}spec.restartPolicy "
                            f"{spec.get('restartPolicy')} is not Always, OnFailure or Never")
        volumes = self.pod_volumes(where, prefix, name, spec.get("volumes") or [], base_labels)
        bindings = self.service_ports(where, labels, containers, replica, prefix)
        infra_host: dict[str, Any] = {
            "NetworkMode": "host" if spec.get("hostNetwork") else "bridge",
            "PortBindings": bindings,
            "RestartPolicy": {"Name": "always" if restart == "always" else "unless-stopped"},
        }
        extra = [f"{h}:{a.get('ip')}" for a in spec.get("hostAliases") or []
                 for h in a.get("hostnames") or []]
        if extra:
            infra_host["ExtraHosts"] = extra
        share_pid = spec.get("shareProcessNamespace", False)
        if not isinstance(share_pid, bool):
            raise PlayError(f"{where}: {prefix}spec.shareProcessNamespace must be true or false")
        infra_labels = {**base_labels, INFRA_LABEL: "true"}
        if share_pid:  # members join the infra's PID namespace, its catatonit PID 1
            infra_labels[SHARE_LABEL] = ",".join((*DEFAULT_SHARE, "pid"))
        infra = ContainerPlan(f"{name}-infra", {
            "Image": INFRA_REF,
            "Hostname": "" if spec.get("hostNetwork") else str(spec.get("hostname") or name),
            "Labels": infra_labels,
            "ExposedPorts": {p: {} for p in bindings},
            "HostConfig": infra_host})
        members = []
        seen: set[str] = set()
        for i, c in enumerate(containers):
            cpath = f"{prefix}spec.containers[{i}]"
            cname = str((c or {}).get("name") or "")
            if not cname or cname in seen:
                raise PlayError(f"{where}: {cpath}.name is missing or not unique")
            seen.add(cname)
            body_c = self.container(where, cpath, c, volumes)
            body_c["Labels"] = {**body_c.get("Labels", {}), **labels, **{str(k): str(v) for k, v in
                                             (meta.get("annotations") or {}).items()},
                                **base_labels, LABEL_PREFIX + "container": cname}
            host = body_c.setdefault("HostConfig", {})
            host["NetworkMode"] = f"container:{infra.name}"
            host["RestartPolicy"] = {"Name": restart}
            if "terminationGracePeriodSeconds" in spec:
                body_c["StopTimeout"] = int(spec["terminationGracePeriodSeconds"])
            members.append(ContainerPlan(f"{name}-{cname}", body_c))
        self.plan.pods.append(PodPlan(name, infra, members))

    def pod_volumes(self, where: str, prefix: str, pod: str, items: list[Any],
                    labels: dict[str, str]) -> dict[str, tuple[str, str]]:
        """volume name -> (mount type, source) for the members' mounts."""
        out: dict[str, tuple[str, str]] = {}
        for i, v in enumerate(items):
            path = f"{prefix}spec.volumes[{i}]"
            v = _check(where, path, v, _VOLUME)
            vname = str(v.get("name") or "")
            kinds = [k for k in v if k != "name"]
            if len(kinds) != 1:
                raise PlayError(f"{where}: {path} needs exactly one volume source")
            kind = kinds[0]
            if kind == "persistentVolumeClaim":
                src = _check(where, f"{path}.{kind}", v[kind], {"claimName", "readOnly"})
                claim = str(src.get("claimName") or "")
                volume = self.claims.get(claim, claim)
                if claim not in self.claims:
                    self.plan.notes.append(f"{where}: claim {claim} has no "
                                           "PersistentVolumeClaim document: volume "
                                           f"{volume} is used as it is")
                elif volume not in self.volumes:
                    self.volumes[volume] = VolumePlan(
                        volume, {PLAYED: "true", OWNER_LABEL:
                                 f"PersistentVolumeClaim/{claim}"}, shared=True)
                out[vname] = ("volume", volume)
            elif kind == "emptyDir":
                src = _check(where, f"{path}.{kind}", v[kind], {"medium", "sizeLimit"})
                if src.get("sizeLimit"):
                    raise PlayError(f"{where}: field {path}.emptyDir.sizeLimit is not "
                                    "supported by corral")
                volume = f"{pod}-{vname}"
                self.volumes[volume] = VolumePlan(volume, dict(labels))
                if src.get("medium") not in (None, "", "Memory"):
                    raise PlayError(f"{where}: {path}.emptyDir.medium {src['medium']} is "
                                    "not supported")
                if src.get("medium") == "Memory":
                    self.plan.notes.append(f"{where}: emptyDir {vname} in memory is a "
                                           "volume on disk (a tmpfs cannot be shared "
                                           "between a pod's containers on corral)")
                out[vname] = ("volume", volume)
            elif kind == "hostPath":
                src = _check(where, f"{path}.{kind}", v[kind], {"path", "type"})
                if src.get("type") not in (None, "", "Directory", "File"):
                    raise PlayError(f"{where}: {path}.hostPath.type {src['type']} is not "
                                    "supported")
                out[vname] = ("bind", str(src.get("path") or ""))
            else:
                src = _check(where, f"{path}.{kind}", v[kind],
                             {"name", "secretName", "optional"})
                ref_name = str(src.get("secretName" if kind == "secret" else "name") or "")
                key = f"{'Secret' if kind == 'secret' else 'ConfigMap'}/{ref_name}"
                if key not in self.config:
                    raise PlayError(f"{where}: {path}: {key} is not in the files played")
                volume = f"{pod}-{vname}"
                self.volumes[volume] = VolumePlan(volume, dict(labels),
                                                  files=self.config[key][1])
                out[vname] = ("volume", volume)
        return out

    def container(self, where: str, path: str, c: Any,
                  volumes: Mapping[str, tuple[str, str]]) -> dict[str, Any]:
        c = _check(where, path, c, _CONTAINER)
        image = c.get("image")
        if not image:
            raise PlayError(f"{where}: {path}.image is required")
        if c.get("imagePullPolicy") == "Always":
            raise PlayError(f"{where}: {path}.imagePullPolicy Always is not supported "
                            "(corral runs the images it has)")
        body: dict[str, Any] = {"Image": str(image)}
        host: dict[str, Any] = {}
        if "command" in c:
            body["Entrypoint"] = [str(a) for a in c["command"] or []]
            body["Cmd"] = [str(a) for a in c.get("args") or []]
        elif "args" in c:
            body["Cmd"] = [str(a) for a in c["args"] or []]
        if c.get("workingDir"):
            body["WorkingDir"] = str(c["workingDir"])
        body["Tty"] = bool(c.get("tty"))
        body["OpenStdin"] = bool(c.get("stdin"))
        body["Env"] = self.env(where, path, c)
        ports: dict[str, dict[str, Any]] = {}
        for j, p in enumerate(c.get("ports") or []):
            p = _check(where, f"{path}.ports[{j}]", p, _PORT)
            ports[f"{p.get('containerPort')}/{str(p.get('protocol') or 'TCP').lower()}"] = {}
        if ports:
            body["ExposedPorts"] = ports
        res = _check(where, f"{path}.resources", c.get("resources"), {"limits", "requests"})
        limits = _check(where, f"{path}.resources.limits", res.get("limits"),
                        {"memory", "cpu"})
        requests = _check(where, f"{path}.resources.requests", res.get("requests"),
                          {"memory", "cpu"})
        if "memory" in limits:
            host["Memory"] = int(quantity(limits["memory"], f"{where}: {path}"))
        if "cpu" in limits:
            host["NanoCpus"] = int(quantity(limits["cpu"], f"{where}: {path}") * 1e9)
        if "memory" in requests:
            host["MemoryReservation"] = int(quantity(requests["memory"], f"{where}: {path}"))
        if "cpu" in requests:
            host["CpuShares"] = max(2, int(quantity(requests["cpu"], f"{where}: {path}")
                                           * 1024))
        found = self.probes(where, path, c)
        if found:
            body.setdefault("Labels", {})[probe_core.PROBES_LABEL] = probe_core.encode(found)
        sec = _check(where, f"{path}.securityContext", c.get("securityContext"), _SECURITY)
        if "runAsUser" in sec:
            body["User"] = str(sec["runAsUser"])
            if "runAsGroup" in sec:
                body["User"] += f":{sec['runAsGroup']}"
        elif "runAsGroup" in sec:
            raise PlayError(f"{where}: {path}.securityContext.runAsGroup needs runAsUser")
        caps = _check(where, f"{path}.securityContext.capabilities", sec.get("capabilities"),
                      {"add", "drop"})
        if caps.get("add"):
            host["CapAdd"] = [str(x) for x in caps["add"]]
        if caps.get("drop"):
            host["CapDrop"] = [str(x) for x in caps["drop"]]
        if sec.get("readOnlyRootFilesystem"):
            host["ReadonlyRootfs"] = True
        if sec.get("privileged"):
            host["Privileged"] = True
        if sec.get("allowPrivilegeEscalation") is False:
            host["SecurityOpt"] = ["no-new-privileges"]
        mounts = []
        for j, m in enumerate(c.get("volumeMounts") or []):
            m = _check(where, f"{path}.volumeMounts[{j}]", m, _MOUNT)
            if m.get("name") not in volumes:
                raise PlayError(f"{where}: {path}.volumeMounts[{j}]: no volume "
                                f"{m.get('name')} in the pod")
            kind, source = volumes[str(m["name"])]
            mounts.append({"Type": kind, "Source": source, "Target": str(m.get("mountPath")),
                           "ReadOnly": bool(m.get("readOnly"))})
        if mounts:
            host["Mounts"] = mounts
        body["HostConfig"] = host
        return body

    def env(self, where: str, path: str, c: Mapping[str, Any]) -> list[str]:
        out: list[str] = []
        for j, ref in enumerate(c.get("envFrom") or []):
            ref = _check(where, f"{path}.envFrom[{j}]", ref, {"configMapRef", "secretRef"})
            for kind, key in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
                if kind in ref:
                    name = (ref[kind] or {}).get("name")
                    data = self._config(where, f"{path}.envFrom[{j}]", f"{key}/{name}")
                    out += [f"{k}={v.decode()}" for k, v in sorted(data.items())]
        for j, e in enumerate(c.get("env") or []):
            e = _check(where, f"{path}.env[{j}]", e, {"name", "value", "valueFrom"})
            name = str(e.get("name") or "")
            if "valueFrom" in e:
                src = _check(where, f"{path}.env[{j}].valueFrom", e["valueFrom"],
                             {"configMapKeyRef", "secretKeyRef"})
                kind, ref = next(iter(src.items()))
                key = f"{'ConfigMap' if kind == 'configMapKeyRef' else 'Secret'}/{ref['name']}"
                data = self._config(where, f"{path}.env[{j}]", key)
                if ref.get("key") not in data:
                    raise PlayError(f"{where}: {path}.env[{j}]: {key} has no key "
                                    f"{ref.get('key')}")
                out.append(f"{name}={data[ref['key']].decode()}")
            else:
                out.append(f"{name}={e.get('value', '')}")
        return out

    def _config(self, where: str, path: str, key: str) -> dict[str, bytes]:
        if key not in self.config:
            raise PlayError(f"{where}: {path}: {key} is not in the files played")
        return self.config[key][1]

    def probes(self, where: str, path: str, c: Mapping[str, Any]) -> list[probe_core.Probe]:
        """startupProbe, livenessProbe, readinessProbe: Kubernetes probes, run by the
        daemon as the kubelet runs them (`pods/probes.py`); named ports resolved."""
        named = {str(p["name"]): int(p["containerPort"]) for p in c.get("ports") or []
                 if isinstance(p, dict) and p.get("name") and p.get("containerPort")}
        out = []
        for kind in probe_core.KINDS:
            key = f"{kind}Probe"
            if c.get(key) is None:
                continue
            try:
                out.append(probe_core.from_kube(kind, c[key], f"{path}.{key}", named))
            except probe_core.ProbeError as exc:
                raise PlayError(f"{where}: {exc}") from None
        return out

    def service_ports(self, where: str, labels: Mapping[str, str], containers: list[Any],
                      replica: int, prefix: str) -> dict[str, list[dict[str, str]]]:
        """The Services selecting this pod: their ports published on its infra.  A host
        port is published once: a Deployment's first replica holds it."""
        named: dict[str, int] = {}
        out: dict[str, list[dict[str, str]]] = {}
        for c in containers:
            for p in (c or {}).get("ports") or []:
                if p.get("name"):
                    named[str(p["name"])] = int(p["containerPort"])
                if p.get("hostPort"):
                    proto = str(p.get("protocol") or "TCP").lower()
                    out.setdefault(f"{p['containerPort']}/{proto}", []).append(
                        {"HostIp": "", "HostPort": str(p["hostPort"])})
        for doc in self.services:
            spec = _check(doc.where, "spec", doc.body.get("spec"), _SERVICE_SPEC)
            kind = spec.get("type", "ClusterIP")
            if kind not in ("ClusterIP", "NodePort", "LoadBalancer"):
                raise PlayError(f"{doc.where}: spec.type {kind} is not supported")
            selector = spec.get("selector") or {}
            if not selector or any(labels.get(k) != v for k, v in selector.items()):
                continue
            for j, p in enumerate(spec.get("ports") or []):
                p = _check(doc.where, f"spec.ports[{j}]", p, _SERVICE_PORT)
                target = p.get("targetPort", p.get("port"))
                if isinstance(target, str) and not target.isdigit():
                    if target not in named:
                        raise PlayError(f"{doc.where}: spec.ports[{j}].targetPort {target} "
                                        "names no container port")
                    target = named[target]
                host_port = int(p.get("nodePort") or p["port"]) if kind == "NodePort" else \
                    int(p["port"])
                proto = str(p.get("protocol") or "TCP").lower()
                if (host_port, proto) in self.published:
                    self.plan.notes.append(
                        f"{doc.where}: port {host_port}/{proto} of Service {doc.name} is "
                        "published by its first pod only (one host port, no load "
                        "balancing on one host)")
                    continue
                self.published.add((host_port, proto))
                out.setdefault(f"{int(target)}/{proto}", []).append(
                    {"HostIp": "", "HostPort": str(host_port)})
        del replica, prefix
        return out


def plan(docs: Sequence[Doc]) -> Plan:
    """The documents of every file played, in order -> what to make (or PlayError)."""
    return _Planner(docs).run()


def documents(file: str, loaded: Sequence[Any]) -> list[Doc]:
    out = []
    for i, body in enumerate(loaded, 1):
        if body is None:
            continue
        if not isinstance(body, Mapping):
            raise PlayError(f"{file}:doc {i}: a document must be a mapping")
        out.append(Doc(file, i, body))
    return out


__all__ = ["APP_LABEL", "Doc", "Plan", "PlayError", "documents", "plan"]
