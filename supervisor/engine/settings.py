"""The daemon-wide settings an engine is opened with: one typed record.

`corral daemon`'s flags and daemon.yaml are read once (daemon.py) into this record;
`open_engine` hands it to the `Engine` whole, so a new setting is a field here and
its use, not a keyword threaded through every signature in between.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from supervisor.distribution.hosts import RegistryHosts
from supervisor.runtime.userns import Remap
from supervisor.supervise.logconfig import LogDefaults


@dataclass(frozen=True)
class EngineSettings:
    runtime: str = "runc"  # the OCI runtime binary (`--runtime`)
    cgroup_parent: str = "corral"  # every container's cgroup lives under it
    log_defaults: LogDefaults = field(default_factory=LogDefaults)  # `log-driver`/`log-opts`
    init_path: str = ""  # the host's static init for `--init` ("" if none)
    init_default: bool = False  # daemon.yaml `init`: the default for HostConfig.Init null
    remap: Remap | None = None  # `userns-remap`
    live_restore: bool = False  # a SIGTERM leaves containers running (`live-restore`)
    # insecure-registries, registry-mirrors, certs-dir
    registries: RegistryHosts = field(default_factory=RegistryHosts)
    ipv6: bool = False  # the default bridge's IPv6 (`--ipv6`)
    fixed_cidr_v6: str = ""  # and its subnet (`--fixed-cidr-v6`)
    # the default seccomp filter compiled once, installed by corral's helper
    # (runtime/seccompexec.py), not by runc at every create and exec (`seccomp-helper`)
    seccomp_helper: bool = True
    # every published port's connections through the daemon's relay, none by a DNAT
    # rule for this host's own (network/nat.py) (`userland-proxy`)
    userland_proxy: bool = False
