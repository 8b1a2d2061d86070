"""Pure translation of `run`/`create` flags into Docker's container-create body.

Pure (no I/O but reading `--env-file`, a `--security-opt seccomp=` profile and the
caller's environment) so it is tested exhaustively: the body is the contract with the
daemon, and a bad flag must fail here with docker's wording and exit code 125 before
anything is sent.
"""

from __future__ import annotations

import os

from supervisor.cli.parser import Command, Opt, Parsed, UsageError
from supervisor.units import go_duration_ns as go_duration_ns

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

RUN_OPTS: tuple[Opt, ...] = (
    Opt("detach", "d", help="Run container in background and print container ID"),
    Opt("name", kind="str", help="Assign a name to the container"),
    Opt("rm", help="Automatically remove the container when it exits"),
    Opt("interactive", "i", help="Keep STDIN open even if not attached"),
    Opt("tty", "t", help="Allocate a pseudo-TTY"),
    Opt("detach-keys", kind="str", help="Override the key sequence for detaching a container"),
    Opt("sig-proxy", default=True, help="Proxy received signals to the process"),
    Opt("env", "e", "list", help="Set environment variables"),
    Opt("env-file", kind="list", help="Read in a file of environment variables"),
    Opt("volume", "v", "list", help="Bind mount a volume"),
    Opt("mount", kind="list", help="Attach a filesystem mount to the container"),
    Opt("workdir", "w", "str", help="Working directory inside the container"),
    Opt("user", "u", "str", help="Username or UID (format: <name|uid>[:<group|gid>])"),
    Opt("entrypoint", kind="str", help="Overwrite the default ENTRYPOINT of the image"),
    Opt("hostname", "h", "str", help="Container host name"),
    Opt("read-only", help="Mount the container's root filesystem as read only"),
    Opt("tmpfs", kind="list", help="Mount a tmpfs directory"),
    Opt("label", "l", "list", help="Set meta data on a container"),
    Opt("pod", kind="str", help="Run the container in an existing pod (corral pod create)"),
    Opt("memory", "m", "str", help="Memory limit"),
    Opt("memory-swap", kind="str", help="Swap limit equal to memory plus swap: '-1' unlimited"),
    Opt("cpus", kind="str", help="Number of CPUs"),
    Opt("pids-limit", kind="str", help="Tune container pids limit (set -1 for unlimited)"),
    Opt("network", kind="str", help="Connect a container to a network"),
    Opt("network-alias", kind="list", help="Add network-scoped alias for the container"),
    Opt("ip", kind="str", help="IPv4 address (e.g., 172.30.100.104)"),
    Opt("ip6", kind="str", help="IPv6 address (e.g., 2001:db8::33)"),
    Opt("dns", kind="list", help="Set custom DNS servers"),
    Opt("dns-search", kind="list", help="Set custom DNS search domains"),
    Opt("dns-option", kind="list", help="Set DNS options"),
    Opt("add-host", kind="list", help="Add a custom host-to-IP mapping (host:ip)"),
    Opt("restart", kind="str", help="Restart policy to apply when a container exits"),
    Opt("log-driver", kind="str", help="Logging driver for the container"),
    Opt("log-opt", kind="list", help="Log driver options (max-size=10m, max-file=3)"),
    Opt("stop-signal", kind="str", help="Signal to stop the container"),
    Opt("stop-timeout", kind="int", help="Timeout (in seconds) to stop a container"),
    Opt("ulimit", kind="list", help="Ulimit options"),
    Opt("cap-add", kind="list", help="Add Linux capabilities"),
    Opt("cap-drop", kind="list", help="Drop Linux capabilities"),
    Opt("security-opt", kind="list", help="Security Options"),
    Opt("health-cmd", kind="str", help="Command to run to check health"),
    Opt("health-interval", kind="str", help="Time between running the check (ms|s|m|h)"),
    Opt("health-timeout", kind="str", help="Maximum time to allow one check to run (ms|s|m|h)"),
    Opt("health-start-period", kind="str", help="Start period for the container (ms|s|m|h)"),
    Opt("health-start-interval", kind="str", help="Time between checks during the start period"),
    Opt("health-retries", kind="int", help="Consecutive failures needed to report unhealthy"),
    Opt("no-healthcheck", help="Disable any container-specified HEALTHCHECK"),
    Opt("publish", "p", "list", help="Publish a container's port(s) to the host"),
    Opt("publish-all", "P", help="Publish all exposed ports to random ports"),
    Opt("expose", kind="list", help="Expose a port or a range of ports"),
    Opt("device", kind="list", help="Add a host device to the container"),
    Opt("device-cgroup-rule", kind="list", help="Add a rule to the cgroup allowed devices list"),
    Opt("privileged", help="Give extended privileges to this container"),
    Opt("userns", kind="str", help="User namespace to use (host, the default)"),
    Opt("init", help="Run an init inside the container"),
    Opt("pull", kind="str", help='Pull image before running ("always", "missing", "never")'),
    Opt("quiet", "q", help="Suppress the pull output"),
    Opt("attach", "a", "list", help="Attach to STDIN, STDOUT or STDERR"),
    Opt("cidfile", kind="str", help="Write the container ID to the file"),
    Opt("label-file", kind="list", help="Read in a line delimited file of labels"),
    Opt("platform", kind="str", help="Set platform if server is multi-platform capable"),
    Opt("cpu-shares", "c", "int", help="CPU shares (relative weight)"),
    Opt("cpu-period", kind="int", help="Limit CPU CFS (Completely Fair Scheduler) period"),
    Opt("cpu-quota", kind="int", help="Limit CPU CFS (Completely Fair Scheduler) quota"),
    Opt("cpuset-cpus", kind="str", help="CPUs in which to allow execution (0-3, 0,1)"),
    Opt("cpuset-mems", kind="str", help="MEMs in which to allow execution (0-3, 0,1)"),
    Opt("memory-reservation", kind="str", help="Memory soft limit"),
    Opt("shm-size", kind="str", help="Size of /dev/shm"),
    Opt("oom-kill-disable", help="Disable OOM Killer"),
    Opt("oom-score-adj", kind="int", help="Tune host's OOM preferences (-1000 to 1000)"),
    Opt("sysctl", kind="list", help="Sysctl options"),
    Opt("group-add", kind="list", help="Add additional groups to join"),
    Opt("ipc", kind="str", help="IPC mode to use"),
    Opt("pid", kind="str", help="PID namespace to use"),
    Opt("uts", kind="str", help="UTS namespace to use"),
    Opt("volumes-from", kind="list", help="Mount volumes from the specified container(s)"),
    Opt("link", kind="list", help="Add link to another container"),
    Opt("mac-address", kind="str", help="Container MAC address (e.g., 92:d0:c6:0a:29:33)"),
)
RUN_ALIASES = (Opt("net", kind="str"),)

RUN = Command(
    "run",
    "corral run [OPTIONS] IMAGE [COMMAND] [ARG...]",
    "Create and run a new container from an image",
    RUN_OPTS,
    min_args=1,
    interspersed=False,
    aliases=RUN_ALIASES,
)
CREATE = Command(
    "create",
    "corral create [OPTIONS] IMAGE [COMMAND] [ARG...]",
    "Create a new container",
    tuple(o for o in RUN_OPTS if o.long not in ("detach", "detach-keys", "sig-proxy")),
    min_args=1,
    interspersed=False,
    aliases=RUN_ALIASES,
)


def _opt(long: str) -> Opt:
    for opt in (*RUN_OPTS, *RUN_ALIASES):
        if opt.long == long:
            return opt
    raise KeyError(long)


#: flags docker's parser converts as it reads them (MemBytes, NanoCPUs, int64,
#: durations, validated lists): their bad values print with the usage (`flag_errors`)
TYPED_FLAGS = frozenset({
    "memory", "memory-swap", "shm-size", "cpus", "pids-limit", "env", "label", "ulimit",
    "memory-reservation", "sysctl", "attach", "cpu-shares", "cpu-period", "cpu-quota",
    "oom-score-adj", "label-file",
    "mount", "add-host", "health-interval", "health-timeout", "health-start-period",
    "health-start-interval",
})  # fmt: skip


def bad(long: str, value: str, reason: str) -> UsageError:
    """docker's `invalid argument "V" for "-m, --memory" flag: REASON` (exit 125)."""
    return UsageError(f'invalid argument "{value}" for "{_opt(long).display}" flag: {reason}',
                      flag=long in TYPED_FLAGS)  # fmt: skip


# -- value parsers (each raises ValueError with docker's reason text) -------------------

_UNIT = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def ram_in_bytes(text: str) -> int:
    """go-units RAMInBytes: `512m`, `1g`, `1.5GB`, `100` (bytes); binary multiples.

    go-units' parseSize, error texts included: the number runs to the last digit, dot
    or space, the rest is the suffix (`b`, or k/m/g/t/p with an optional `b`/`ib`)."""
    sep = max(text.rfind(ch) for ch in "0123456789. ")
    if sep == -1:
        raise ValueError(f"invalid size: '{text}'")
    num, sfx = (text[: sep + 1], text[sep + 1 :]) if text[sep] != " " else (
        text[:sep], text[sep + 1 :])  # fmt: skip
    try:
        if "_" in num or num.strip() != num:
            raise ValueError(num)
        size = float(num)
    except ValueError:
        raise ValueError(f'strconv.ParseFloat: parsing "{num}": invalid syntax') from None
    if size < 0 or size != size or size in (float("inf"), float("-inf")):
        raise ValueError(f"invalid size: '{text}'")
    if not sfx:
        return int(size)
    bad_suffix = ValueError(f"invalid suffix: '{sfx if len(sfx) > 3 else sfx.lower()}'")
    if len(sfx) > 3:
        raise bad_suffix
    low = sfx.lower()
    if low[0] == "b":
        if len(low) > 1:
            raise bad_suffix
        return int(size)
    if low[0] not in _UNIT or (len(low) == 2 and low[1] != "b") or (
        len(low) == 3 and low[1:] != "ib"
    ):
        raise bad_suffix
    return int(size * _UNIT[low[0]])


def parse_env(item: str, environ: Mapping[str, str]) -> str | None:
    """`K=V` as is; bare `K` takes the caller's value, or is dropped if unset (as docker)."""
    key, eq, _ = item.partition("=")
    if not key:
        raise ValueError(f"invalid environment variable: {item}")
    if eq:
        return item
    if key in environ:
        return f"{key}={environ[key]}"
    return None


def read_env_file(
    path: str, environ: Mapping[str, str] | None
) -> list[str]:
    """docker's env-file format: `K=V` or `K` lines, `#` comments, blank lines ignored;
    a bare `K` takes the caller's value, or is dropped (always, with no environment:
    labels)."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise ValueError(f"open {path}: {exc.strerror.lower() if exc.strerror else exc}") from None
    out: list[str] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.lstrip()
        if not line or line.startswith("#"):
            continue
        key, eq, value = line.partition("=")
        if not key:
            raise ValueError(f"no variable name on line '{raw}'")
        if any(c.isspace() for c in key):
            raise ValueError(f"variable '{key}' contains whitespaces (line {number})")
        if eq:
            out.append(f"{key}={value}")
        elif environ is not None and key in environ:  # (a bare label is dropped, as docker)
            out.append(f"{key}={environ[key]}")
    return out


def parse_kv_labels(items: list[str]) -> dict[str, str]:
    labels: dict[str, str] = {}
    for item in items:
        key, _, value = item.partition("=")
        if not key:
            raise ValueError(f"invalid label: {item}")
        labels[key] = value
    return labels


_PROPAGATIONS = ("shared", "rshared", "slave", "rslave", "private", "rprivate")
_VOLUME_MODES = {"ro", "rw", "z", "Z", "nocopy", "delegated", "cached", "consistent",
                 *_PROPAGATIONS}  # fmt: skip


def parse_volume(spec: str) -> tuple[str, str | None]:
    """`-v`: returns ("bind", spec) for Binds or ("anon", target) for Config.Volumes.

    Named (`data:/data`) and host-path (`/host:/ctr:ro`) mounts both travel in
    HostConfig.Binds, as the docker CLI sends them; `/data` alone is anonymous.
    """
    parts = spec.split(":")
    if len(parts) > 3:
        raise ValueError(f"invalid spec: {spec}: too many colons")
    if any(p == "" for p in parts):
        raise ValueError(f"invalid spec: {spec}: empty section between colons")
    if len(parts) == 1:
        target = parts[0]
        if not target.startswith("/"):
            raise ValueError(f"invalid mount config for type \"volume\": invalid mount path: "
                             f"'{target}' mount path must be absolute")
        return ("anon", target)
    source, target = parts[0], parts[1]
    if len(parts) == 2 and not target.startswith("/") and source.startswith("/"):
        raise ValueError(f"invalid mode: {target}")
    if not target.startswith("/"):
        raise ValueError(f"invalid mount config for type \"volume\": invalid mount path: "
                         f"'{target}' mount path must be absolute")
    if len(parts) == 3:
        modes = parts[2].split(",")
        if any(m not in _VOLUME_MODES for m in modes) or ("ro" in modes and "rw" in modes):
            raise ValueError(f"invalid mode: {parts[2]}")
    if target == "/":
        raise ValueError("invalid specification: destination can't be '/'")
    return ("bind", None)


def _bool_value(key: str, value: str | None) -> bool:
    if value is None or value.lower() in ("1", "true"):
        return True
    if value.lower() in ("0", "false"):
        return False
    raise ValueError(f"invalid value for {key}: {value}")


def _csv_fields(spec: str) -> list[str]:
    """One CSV record, as docker's `--mount` reads it (Go's encoding/csv): a field holding a
    comma is quoted whole, e.g. `"volume-opt=o=size=10m,uid=1000"`."""
    import csv  # lazy: only --mount needs it, and the CLI's start stays lean

    try:
        rows = list(csv.reader([spec], strict=True))
    except csv.Error as err:
        raise ValueError(f"parse error: {err}") from None
    return rows[0] if rows else []


def parse_mount(spec: str) -> dict[str, Any]:
    """`--mount type=...,source=...,target=...,readonly` → one HostConfig.Mounts entry."""
    mount: dict[str, Any] = {"Type": "volume"}
    volume_opts: dict[str, Any] = {}
    bind_opts: dict[str, Any] = {}
    tmpfs_opts: dict[str, Any] = {}
    for field in _csv_fields(spec):
        if not field:
            continue
        key, eq, value = field.partition("=")
        key = key.strip().lower()
        val: str | None = value if eq else None
        if key in ("readonly", "ro"):
            mount["ReadOnly"] = _bool_value(key, val)
            continue
        if key == "volume-nocopy":
            volume_opts["NoCopy"] = _bool_value(key, val)
            continue
        if key == "bind-nonrecursive":  # deprecated spelling of bind-recursive=disabled
            bind_opts["NonRecursive"] = _bool_value(key, val)
            continue
        if val is None:
            raise ValueError(f"invalid field '{field}' must be a key=value pair")
        if key == "type":
            if val not in ("volume", "bind", "tmpfs"):
                raise ValueError(f"invalid mount type: {val}")
            mount["Type"] = val
        elif key in ("source", "src"):
            mount["Source"] = val
        elif key in ("target", "dst", "destination"):
            mount["Target"] = val
        elif key == "bind-propagation":
            if val.lower() not in _PROPAGATIONS:
                raise ValueError(f"invalid propagation mode: {val}")
            bind_opts["Propagation"] = val.lower()
        elif key == "bind-recursive":
            if val == "disabled":
                bind_opts["NonRecursive"] = True
            elif val != "enabled":  # writable/readonly: recursive read-only is not applied
                raise ValueError(f"{field} is not supported by corral" if val in (
                    "writable", "readonly") else f"invalid value for {key}: {val}")  # fmt: skip
        elif key == "volume-subpath":
            volume_opts["Subpath"] = val
        elif key == "volume-driver":
            if val != "local":
                raise ValueError(f"{field} is not supported by corral (only local volumes)")
            volume_opts.setdefault("DriverConfig", {})["Name"] = val
        elif key in ("volume-label", "volume-opt"):  # docker's: KEY=VALUE, one a word
            k, eq, v = val.partition("=")
            if not eq:
                raise ValueError(f"invalid value for {key}: {val}")
            if key == "volume-label":
                volume_opts.setdefault("Labels", {})[k] = v
            else:
                cfg = volume_opts.setdefault("DriverConfig", {})
                cfg.setdefault("Options", {})[k] = v
        elif key == "tmpfs-option":
            raise ValueError(f"{key} is not supported by corral")
        elif key == "tmpfs-size":
            try:
                tmpfs_opts["SizeBytes"] = ram_in_bytes(val)
            except ValueError:
                raise ValueError(f"invalid value for {key}: {val}") from None
        elif key == "tmpfs-mode":
            try:
                tmpfs_opts["Mode"] = int(val, 8)
            except ValueError:
                raise ValueError(f"invalid value for {key}: {val}") from None
        elif key == "consistency":
            mount["Consistency"] = val
        else:
            raise ValueError(f"unexpected key '{key}' in '{field}'")
    if not mount.get("Target"):
        raise ValueError("target is required")
    kind = mount["Type"]
    if kind == "bind" and not mount.get("Source"):
        raise ValueError("source is required when specifying bind mount")
    if kind == "tmpfs" and mount.get("Source"):
        raise ValueError("source is not supported for tmpfs mounts")
    if volume_opts:
        if kind != "volume":
            raise ValueError(f"cannot mix 'volume-*' options with mount type '{kind}'")
        mount["VolumeOptions"] = volume_opts
    if bind_opts:
        if kind != "bind":
            raise ValueError(f"cannot mix 'bind-*' options with mount type '{kind}'")
        mount["BindOptions"] = bind_opts
    if tmpfs_opts:
        if kind != "tmpfs":
            raise ValueError(f"cannot mix 'tmpfs-*' options with mount type '{kind}'")
        mount["TmpfsOptions"] = tmpfs_opts
    return mount


def parse_restart(text: str) -> dict[str, Any]:
    name, colon, count = text.partition(":")
    if name not in ("no", "always", "unless-stopped", "on-failure", ""):
        raise ValueError(f"invalid restart policy '{name}'")
    retries = 0
    if colon:
        if name != "on-failure":
            raise ValueError(f"maximum retry count cannot be used with restart policy '{name}'")
        try:
            retries = int(count)
        except ValueError:
            raise ValueError(f"maximum retry count must be an integer: {count!r}") from None
        if retries < 0:
            raise ValueError("maximum retry count cannot be negative")
    return {"Name": name or "no", "MaximumRetryCount": retries}


#: go-units' ulimit names (ParseUlimit)
_ULIMITS = frozenset({"core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice",
                      "nofile", "nproc", "rss", "rtprio", "rttime", "sigpending", "stack"})


def parse_ulimit(text: str) -> dict[str, Any]:
    name, eq, limits = text.partition("=")
    if not eq or not name:
        raise ValueError(f"invalid ulimit argument: {text}")
    if name not in _ULIMITS:
        raise ValueError(f"invalid ulimit type: {name}")
    soft_s, _, hard_s = limits.partition(":")
    try:
        soft = int(soft_s)
        hard = int(hard_s) if hard_s else soft
    except ValueError:
        raise ValueError(f"invalid ulimit argument: {text}") from None
    if soft > hard and hard != -1:
        raise ValueError(
            f"ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"
        )
    return {"Name": name, "Soft": soft, "Hard": hard}


def parse_cpus(text: str) -> int:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"failed to parse {text} as a rational number") from None
    if value < 0 or value != value:
        raise ValueError(f"failed to parse {text} as a rational number")
    return int(round(value * 1e9))


def _port_range(text: str) -> tuple[int, int]:
    lo_s, dash, hi_s = text.partition("-")
    try:
        lo = int(lo_s)
        hi = int(hi_s) if dash else lo
    except ValueError:
        raise ValueError(f"invalid port: {text}") from None
    if not (0 <= lo <= hi <= 65535):
        raise ValueError(f"invalid range specified for port: {text}")
    return lo, hi


def parse_publish(spec: str) -> list[tuple[str, dict[str, str]]]:
    """`[ip:][hostPort:]containerPort[/proto]` → [("80/tcp", {"HostIp","HostPort"})]."""
    body, _, proto = spec.partition("/")
    proto = proto or "tcp"
    if proto not in ("tcp", "udp", "sctp"):
        raise ValueError(f"invalid proto: {proto}")
    ip = ""
    if body.startswith("["):  # [::1]:8080:80
        end = body.find("]")
        if end < 0:
            raise ValueError(f"invalid IP address: {body}")
        ip, body = body[1:end], body[end + 2 :]
        parts = body.split(":")
    else:
        parts = body.split(":")
        if len(parts) == 3:
            ip = parts.pop(0)
    if len(parts) > 2:
        raise ValueError(f"invalid port format: {spec}")
    host = parts[0] if len(parts) == 2 else ""
    container = parts[-1]
    if not container:
        raise ValueError(f"no port specified: {spec}<empty>")
    clo, chi = _port_range(container)
    if host:
        hlo, hhi = _port_range(host)
        if hhi - hlo != chi - clo and hlo != hhi:
            raise ValueError(
                f"invalid ranges specified for container and host Ports: {container} and {host}"
            )
    out = []
    for i, port in enumerate(range(clo, chi + 1)):
        if host:
            hlo, hhi = _port_range(host)
            host_port = str(hlo + i) if hhi - hlo == chi - clo else host
        else:
            host_port = ""
        out.append((f"{port}/{proto}", {"HostIp": ip, "HostPort": host_port}))
    return out


# -- the whole body --------------------------------------------------------------------


def collect_env(env_files: list[str], items: list[str], environ: Mapping[str, str]) -> list[str]:
    """`--env-file` entries then `-e` entries, as docker orders them (run and exec)."""
    env: list[str] = []
    for path in env_files:
        try:
            env.extend(read_env_file(path, environ))
        except ValueError as exc:
            raise bad("env-file", path, str(exc)) from None
    for item in items:
        try:
            value = parse_env(item, environ)
        except ValueError as exc:
            raise bad("env", item, str(exc)) from None
        if value is not None:
            env.append(value)
    return env


def security_opts(items: list[str]) -> list[str]:
    """`--security-opt` values as the docker CLI sends them: `seccomp=FILE` becomes the
    file's JSON content (compacted), so the daemon never reads a client's path."""
    out = []
    for opt in items:
        key, sep, value = opt.partition("=")
        if not sep and key != "no-new-privileges":
            key, sep, value = opt.partition(":")
        if (not sep or not value) and key != "no-new-privileges":
            raise UsageError(f'invalid --security-opt: "{opt}"')
        if key == "seccomp" and value not in ("builtin", "unconfined"):
            try:
                with open(value, "rb") as f:
                    text = f.read()
            except OSError as exc:
                raise UsageError(
                    f"opening seccomp profile ({value}) failed: {exc.strerror or exc}"
                ) from None
            try:
                import json  # not at import: `run` imports this module (CLI start)

                doc = json.loads(text)
            except ValueError as exc:
                raise UsageError(
                    f"compacting json for seccomp profile ({value}) failed: {exc}"
                ) from None
            opt = "seccomp=" + json.dumps(doc, separators=(",", ":"), ensure_ascii=False)
        out.append(opt)
    return out


def container_body(
    parsed: Parsed, environ: Mapping[str, str] | None = None
) -> tuple[str | None, dict[str, Any]]:
    """Parsed `run`/`create` flags → (name, body) for `POST /containers/create?name=`.

    Raises UsageError (exit 125) naming the culprit flag for anything malformed.
    """
    env_source = os.environ if environ is None else environ
    o = parsed.opts
    given = parsed.given
    image, *cmd = parsed.args
    detach = bool(o.get("detach"))

    env = collect_env(o["env_file"], o["env"], env_source)

    binds: list[str] = []
    volumes: dict[str, dict[str, Any]] = {}
    for spec in o["volume"]:
        try:
            kind, target = parse_volume(spec)
        except ValueError as exc:
            raise bad("volume", spec, str(exc)) from None
        if kind == "anon" and target:
            volumes[target] = {}
        else:
            binds.append(spec)

    mounts = []
    for spec in o["mount"]:
        try:
            mounts.append(parse_mount(spec))
        except ValueError as exc:
            raise bad("mount", spec, str(exc)) from None

    tmpfs: dict[str, str] = {}
    for spec in o["tmpfs"]:
        path, _, opts = spec.partition(":")
        if not path.startswith("/"):
            raise bad("tmpfs", spec, f"invalid mount path: '{path}' mount path must be absolute")
        tmpfs[path] = opts

    label_items: list[str] = []
    for path in o["label_file"]:  # docker's ReadKVStrings: the files, then -l
        try:
            label_items.extend(read_env_file(path, None))
        except ValueError as exc:
            raise bad("label-file", path, str(exc)) from None
    try:
        labels = parse_kv_labels([*label_items, *o["label"]])
    except ValueError as exc:
        raise bad("label", ",".join(o["label"]), str(exc)) from None
    if o.get("pod"):  # the daemon joins it to the pod's infra (supervisor/pods/)
        from supervisor.pods.labels import POD_LABEL

        labels[POD_LABEL] = o["pod"]

    host: dict[str, Any] = {}
    for long, key in (("memory", "Memory"), ("memory-swap", "MemorySwap"),
                      ("memory-reservation", "MemoryReservation"), ("shm-size", "ShmSize")):
        text = o[long.replace("-", "_")]
        if text is None:
            continue
        if long == "memory-swap" and text == "-1":
            host[key] = -1
            continue
        try:
            host[key] = ram_in_bytes(text)
        except ValueError as exc:
            raise bad(long, text, str(exc)) from None
    if o["cpus"] is not None:
        try:
            host["NanoCpus"] = parse_cpus(o["cpus"])
        except ValueError as exc:
            raise bad("cpus", o["cpus"], str(exc)) from None
    if o["pids_limit"] is not None:
        try:
            host["PidsLimit"] = int(o["pids_limit"])
        except ValueError:
            raise bad("pids-limit", o["pids_limit"],
                      f'strconv.ParseInt: parsing "{o["pids_limit"]}": invalid syntax') from None

    restart = None
    if o["restart"] is not None:
        try:
            restart = parse_restart(o["restart"])
        except ValueError as exc:
            raise bad("restart", o["restart"], str(exc)) from None
        if o.get("rm") and restart["Name"] != "no":
            raise UsageError("conflicting options: cannot specify both --restart and --rm")

    ulimits = []
    for spec in o["ulimit"]:
        try:
            ulimits.append(parse_ulimit(spec))
        except ValueError as exc:
            raise bad("ulimit", spec, str(exc)) from None

    exposed: dict[str, dict[str, Any]] = {}
    bindings: dict[str, list[dict[str, str]]] = {}
    for spec in o["publish"]:
        try:
            pairs = parse_publish(spec)
        except ValueError as exc:
            raise bad("publish", spec, str(exc)) from None
        for port, binding in pairs:
            exposed[port] = {}
            bindings.setdefault(port, []).append(binding)
    for spec in o["expose"]:
        port, _, proto = spec.partition("/")
        try:
            lo, hi = _port_range(port)
        except ValueError as exc:
            raise bad("expose", spec, str(exc)) from None
        for p in range(lo, hi + 1):
            exposed[f"{p}/{proto or 'tcp'}"] = {}

    healthcheck = _healthcheck(parsed)

    stdin = bool(o["interactive"])
    streams = attach_streams(o.get("attach") or [], detach)
    attach_stdin = (stdin or "stdin" in streams) and not detach
    config: dict[str, Any] = {
        "Hostname": o["hostname"] or "",
        "Domainname": "",
        "User": o["user"] or "",
        "AttachStdin": attach_stdin,
        "AttachStdout": "stdout" in streams,
        "AttachStderr": "stderr" in streams,
        "Tty": bool(o["tty"]),
        "OpenStdin": stdin,
        "StdinOnce": attach_stdin and stdin,
        "Env": env,
        "Cmd": cmd or None,
        "Image": image,
        "Volumes": volumes or None,
        "WorkingDir": o["workdir"] or "",
        "Entrypoint": None,
        "Labels": labels,
    }
    if "entrypoint" in given:
        config["Entrypoint"] = [o["entrypoint"]]  # [""] resets the image's entrypoint
    if exposed:
        config["ExposedPorts"] = exposed
    if o["stop_signal"]:
        config["StopSignal"] = o["stop_signal"]
    if o["stop_timeout"] is not None:
        config["StopTimeout"] = o["stop_timeout"]
    if healthcheck is not None:
        config["Healthcheck"] = healthcheck

    network = o["network"] if o["network"] is not None else o.get("net")
    cap_add, cap_drop = effective_caps(o["cap_add"], o["cap_drop"])
    host.update({
        "Binds": binds or None,
        "NetworkMode": network or "default",
        "PortBindings": bindings or {},
        "RestartPolicy": restart or {"Name": "no", "MaximumRetryCount": 0},
        "AutoRemove": bool(o.get("rm")),
        "CapAdd": cap_add or None,
        "CapDrop": cap_drop or None,
        "SecurityOpt": security_opts(o["security_opt"]) or None,
        "Privileged": bool(o["privileged"]),
        "PublishAllPorts": bool(o["publish_all"]),
        "ReadonlyRootfs": bool(o["read_only"]),
    })
    if o["init"]:
        host["Init"] = True
    host.update(_resource_flags(o))
    host.update(_namespace_flags(o))
    if o["tty"]:
        from supervisor.cli.terminal import size

        host["ConsoleSize"] = list(size() or (0, 0))  # the terminal's first size
    if o["userns"]:
        # docker's UsernsMode.Valid: "host" (or "host:..."); the daemon refuses the rest
        if o["userns"].split(":")[0] != "host":
            raise UsageError("--userns: invalid USER mode")
        host["UsernsMode"] = o["userns"]
    devices = []
    for spec in o["device"]:
        try:
            devices.append(parse_device(spec))
        except ValueError as exc:  # docker 28 checks devices after its flags: no prefix
            raise UsageError(str(exc)) from None
    if devices:
        host["Devices"] = devices
    for rule in o["device_cgroup_rule"]:
        import re  # here, not at import: `run` imports this module (CLI start)

        if not re.match(_CGROUP_RULE, rule):
            raise bad("device-cgroup-rule", rule, f"invalid device cgroup format '{rule}'")
    if o["device_cgroup_rule"]:
        host["DeviceCgroupRules"] = list(o["device_cgroup_rule"])
    if mounts:
        host["Mounts"] = mounts
    if tmpfs:
        host["Tmpfs"] = tmpfs
    if ulimits:
        host["Ulimits"] = ulimits
    for long, key in (("dns", "Dns"), ("dns_search", "DnsSearch"), ("dns_option", "DnsOptions")):
        if o[long]:
            host[key] = list(o[long])
    extra_hosts = []
    for spec in o["add_host"]:
        name, sep, addr = spec.partition(":")
        if not sep or not name or not addr:
            raise bad("add-host", spec, f'bad format for add-host: "{spec}"')
        extra_hosts.append(f"{name}:{addr}")
    if extra_hosts:
        host["ExtraHosts"] = extra_hosts
    if o["log_driver"] or o["log_opt"]:
        log_config: dict[str, str] = {}
        for spec in o["log_opt"]:
            key, sep, value = spec.partition("=")
            if not sep or not key:
                raise bad("log-opt", spec, "invalid log opt format, want key=value")
            log_config[key] = value
        host["LogConfig"] = {"Type": o["log_driver"] or "json-file", "Config": log_config}
    config["HostConfig"] = host
    endpoints: dict[str, Any] = {}
    if o["network_alias"] or o["ip"] or o.get("ip6"):
        if not network or network in ("default", "bridge", "none", "host"):
            what = ("--network-alias" if o["network_alias"] else "--ip" if o["ip"]
                    else "--ip6")  # fmt: skip
            raise UsageError(f"{what} is only supported for user-defined networks")
        endpoint: dict[str, Any] = {}
        if o["network_alias"]:
            endpoint["Aliases"] = list(o["network_alias"])
        if o["ip"] or o.get("ip6"):
            endpoint["IPAMConfig"] = {
                k: v for k, v in (("IPv4Address", o["ip"]), ("IPv6Address", o.get("ip6"))) if v
            }
        endpoints[network] = endpoint
    if o.get("mac_address"):
        import re  # here, as for the cgroup rules above: only this flag needs it

        if not re.fullmatch(r"[0-9A-Fa-f]{2}([:-])[0-9A-Fa-f]{2}(\1[0-9A-Fa-f]{2}){4}",
                            o["mac_address"]):  # fmt: skip
            raise UsageError(f"{o['mac_address']} is not a valid mac address")
        endpoints.setdefault(network or "default", {})["MacAddress"] = o["mac_address"]
    config["NetworkingConfig"] = {"EndpointsConfig": endpoints}
    return o["name"], config


def attach_streams(items: list[str], detach: bool) -> set[str]:
    """`-a/--attach` (docker's ValidateAttach): stdout and stderr when none is named;
    nothing when detached, where `-a` is a conflict."""
    streams = set()
    for item in items:
        name = item.lower()
        if name not in ("stdin", "stdout", "stderr"):
            raise bad("attach", item, "valid streams are STDIN, STDOUT and STDERR")
        streams.add(name)
    if detach:
        if streams:
            raise UsageError(  # docker 28: its own line, exit 1
                "conflicting options: cannot specify both --attach and --detach", 1, plain=True
            )
        return set()
    return streams or {"stdout", "stderr"}


#: The sysctls the docker CLI lets through (opts.ValidateSysctl); the daemon checks
#: that each belongs to a namespace the container has of its own.
_IPC_SYSCTLS = frozenset({
    "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall",
    "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced",
})  # fmt: skip


def parse_sysctl(item: str) -> tuple[str, str]:
    key, eq, value = item.partition("=")
    if eq and (key in _IPC_SYSCTLS or key.startswith(("net.", "fs.mqueue."))):
        return key, value
    raise ValueError(f"sysctl '{item}' is not allowed")


def _resource_flags(o: Mapping[str, Any]) -> dict[str, Any]:
    """`-c`, `--cpu-period/-quota`, `--cpuset-*`, `--oom-*`, `--sysctl`, `--group-add`."""
    host: dict[str, Any] = {}
    for long, key in (("cpu_shares", "CpuShares"), ("cpu_period", "CpuPeriod"),
                      ("cpu_quota", "CpuQuota"), ("oom_score_adj", "OomScoreAdj"),
                      ("cpuset_cpus", "CpusetCpus"), ("cpuset_mems", "CpusetMems")):
        if o.get(long) is not None:
            host[key] = o[long]
    if o.get("oom_kill_disable"):
        host["OomKillDisable"] = True
    sysctls: dict[str, str] = {}
    for item in o.get("sysctl") or []:
        try:
            key, value = parse_sysctl(item)
        except ValueError as exc:
            raise bad("sysctl", item, str(exc)) from None
        sysctls[key] = value
    if sysctls:
        host["Sysctls"] = sysctls
    if o.get("group_add"):
        host["GroupAdd"] = list(o["group_add"])
    if o.get("volumes_from"):
        host["VolumesFrom"] = list(o["volumes_from"])
    if o.get("link"):
        host["Links"] = list(o["link"])
    return host


def _namespace_flags(o: Mapping[str, Any]) -> dict[str, Any]:
    """`--ipc`, `--pid`, `--uts` with the docker CLI's checks (Valid())."""
    host: dict[str, Any] = {}
    ipc, pid, uts = o.get("ipc"), o.get("pid"), o.get("uts")

    def joins(mode: str) -> bool:
        kind, sep, name = mode.partition(":")
        return kind == "container" and bool(sep) and bool(name)

    if pid is not None:
        if pid not in ("", "host") and not joins(pid):
            raise UsageError("--pid: invalid PID mode")
        host["PidMode"] = pid
    if uts is not None:
        if uts not in ("", "host"):
            raise UsageError("--uts: invalid UTS mode")
        host["UTSMode"] = uts
    if ipc is not None:
        if ipc not in ("", "none", "private", "shareable", "host") and not joins(ipc):
            raise UsageError("--ipc: invalid IPC mode")
        host["IpcMode"] = ipc
    return host


#: docker's deviceCgroupRuleRegexp.
_CGROUP_RULE = r"^[acb] ([0-9]+|\*):([0-9]+|\*) [rwm]{1,3}$"  # re: imported where used


def _device_mode(mode: str) -> bool:
    """docker's validDeviceMode: r, w, m, each at most once."""
    return bool(mode) and len(set(mode)) == len(mode) and set(mode) <= set("rwm")


def parse_device(spec: str) -> dict[str, str]:
    """`--device HOST[:CONTAINER][:PERMS]` as docker checks it (validateLinuxPath)
    and sends it (parseLinuxDevice): CONTAINER defaults to HOST, PERMS to rwm, a
    second part that is a mode is the mode."""
    parts = spec.split(":")
    if len(parts) > 3 or not parts[0]:
        raise ValueError(f"bad format for path: {spec}")
    host, inside, perms = parts[0], parts[0], "rwm"
    if len(parts) == 2:
        if _device_mode(parts[1]):
            perms = parts[1]
        else:
            inside = parts[1]
    elif len(parts) == 3:
        inside, perms = parts[1], parts[2]
        if not _device_mode(perms):
            raise ValueError(f"bad mode specified: {perms}")
    if not inside.startswith("/"):
        raise ValueError(f"{inside} is not an absolute path")
    return {"PathOnHost": host, "PathInContainer": inside, "CgroupPermissions": perms}


def _normalize_caps(names: list[str]) -> list[str]:
    """docker's NormalizeCapabilities: upper case, `CAP_` prefixed (but `ALL`),
    without duplicates, sorted (so `ALL` comes first)."""
    out = set()
    for name in names:
        cap = name.strip().upper()
        out.add(cap if cap == "ALL" or cap.startswith("CAP_") else f"CAP_{cap}")
    return sorted(out)


def effective_caps(add: list[str], drop: list[str]) -> tuple[list[str], list[str]]:
    """docker's EffectiveCapAddCapDrop: `ALL` trumps the other names of its list, and
    a capability both added and dropped is added (adding takes precedence).  Whether
    a name exists is the daemon's to say, as with docker."""
    adds, drops = _normalize_caps(add), _normalize_caps(drop)
    if adds[:1] == ["ALL"]:
        adds = ["ALL"]
    if drops[:1] == ["ALL"]:
        drops = ["ALL"]
    return adds, [c for c in drops if c not in adds]


def _healthcheck(parsed: Parsed) -> dict[str, Any] | None:
    o = parsed.opts
    hc: dict[str, Any] = {}
    for long, key in (("health-interval", "Interval"), ("health-timeout", "Timeout"),
                      ("health-start-period", "StartPeriod"),
                      ("health-start-interval", "StartInterval")):
        text = o[long.replace("-", "_")]
        if text is None:
            continue
        try:
            ns = go_duration_ns(text)
        except ValueError as exc:
            raise bad(long, text, str(exc)) from None
        if ns < 0:
            raise UsageError(f"--{long} cannot be negative")
        hc[key] = ns
    if o["health_retries"] is not None:
        if o["health_retries"] < 0:
            raise UsageError("--health-retries cannot be negative")
        hc["Retries"] = o["health_retries"]
    if o["health_cmd"] is not None:
        hc["Test"] = ["CMD-SHELL", o["health_cmd"]] if o["health_cmd"] else []
    if o["no_healthcheck"]:
        if hc:
            raise UsageError("--no-healthcheck conflicts with --health-* options")
        return {"Test": ["NONE"]}
    return hc or None
