"""`run`/`create` flags → exact container-create bodies; malformed flags → exit 125."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import pytest

from supervisor.api.client import Client
from supervisor.cli.context import Cli
from supervisor.cli.flags import (
    RUN,
    container_body,
    go_duration_ns,
    parse_mount,
    parse_publish,
    ram_in_bytes,
)
from supervisor.cli.main import run_verb
from supervisor.cli.parser import UsageError, parse


def body(*argv: str, environ: dict[str, str] | None = None) -> tuple[str | None, dict[str, Any]]:
    return container_body(parse(RUN, list(argv)), environ or {})


class NoDaemon(Client):
    """A client that fails the test if anything is sent."""

    def __init__(self) -> None:
        super().__init__("unix:///nonexistent.sock")

    def connect(self) -> Any:
        raise AssertionError("nothing may be sent to the daemon")


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    cli = Cli(stdout=out, stderr=err, environ={}, client=NoDaemon())
    code = run_verb(cli, argv[0], list(argv[1:]))
    return code, out.getvalue(), err.getvalue()


def test_minimal_body_matches_docker_cli() -> None:
    name, b = body("busybox")
    assert name is None
    assert b["Image"] == "busybox"
    assert b["Cmd"] is None
    assert b["Entrypoint"] is None
    assert b["AttachStdout"] is True and b["AttachStderr"] is True
    assert b["AttachStdin"] is False and b["OpenStdin"] is False
    assert b["Tty"] is False
    assert b["Env"] == []
    assert b["HostConfig"]["AutoRemove"] is False
    assert b["HostConfig"]["RestartPolicy"] == {"Name": "no", "MaximumRetryCount": 0}
    assert b["HostConfig"]["NetworkMode"] == "default"


def test_flags_stop_at_image() -> None:
    name, b = body("-d", "--name", "web", "busybox", "ls", "-l", "--rm")
    assert name == "web"
    assert b["Cmd"] == ["ls", "-l", "--rm"]
    assert b["HostConfig"]["AutoRemove"] is False
    assert b["AttachStdout"] is False


def test_env_sources(tmp_path: Path) -> None:
    env_file = tmp_path / "env"
    env_file.write_text("# comment\n\nFROM_FILE=1\nPASS\nMISSING\n")
    _, b = body("--env-file", str(env_file), "-e", "A=1", "-e", "HOME", "-e", "NOPE", "img",
                environ={"HOME": "/root", "PASS": "through"})
    assert b["Env"] == ["FROM_FILE=1", "PASS=through", "A=1", "HOME=/root"]


def test_volumes_and_mounts() -> None:
    _, b = body("-v", "data:/data", "-v", "/anon", "-v", "/host:/ctr:ro",
                "--mount", "type=bind,source=/a,target=/b,readonly",
                "--mount", "type=tmpfs,target=/t,tmpfs-size=64m",
                "--tmpfs", "/run:rw,size=1m", "img")
    assert b["HostConfig"]["Binds"] == ["data:/data", "/host:/ctr:ro"]
    assert b["Volumes"] == {"/anon": {}}
    assert b["HostConfig"]["Mounts"] == [
        {"Type": "bind", "Source": "/a", "Target": "/b", "ReadOnly": True},
        {"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 64 << 20}},
    ]
    assert b["HostConfig"]["Tmpfs"] == {"/run": "rw,size=1m"}


def test_resources_and_policies() -> None:
    _, b = body("-m", "512m", "--memory-swap", "1g", "--cpus", "1.5", "--pids-limit", "100",
                "--restart", "on-failure:3", "--ulimit", "nofile=1024:2048",
                "--ulimit", "nproc=10", "--cap-add", "NET_ADMIN", "--cap-drop", "ALL",
                "--read-only", "--net", "none", "-h", "box", "-w", "/w", "-u", "1000:1000",
                "--stop-signal", "SIGUSR1", "--stop-timeout", "5", "-l", "a=b", "-l", "c",
                "img")
    h = b["HostConfig"]
    assert h["Memory"] == 512 * 1024 * 1024
    assert h["MemorySwap"] == 1 << 30
    assert h["NanoCpus"] == 1_500_000_000
    assert h["PidsLimit"] == 100
    assert h["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert h["Ulimits"] == [{"Name": "nofile", "Soft": 1024, "Hard": 2048},
                            {"Name": "nproc", "Soft": 10, "Hard": 10}]
    assert h["CapAdd"] == ["CAP_NET_ADMIN"] and h["CapDrop"] == ["ALL"]  # as docker sends
    assert h["ReadonlyRootfs"] is True
    assert h["NetworkMode"] == "none"
    assert b["Hostname"] == "box" and b["WorkingDir"] == "/w" and b["User"] == "1000:1000"
    assert b["StopSignal"] == "SIGUSR1" and b["StopTimeout"] == 5
    assert b["Labels"] == {"a": "b", "c": ""}


def test_entrypoint_empty_string_clears() -> None:
    assert body("--entrypoint", "", "img")[1]["Entrypoint"] == [""]
    assert body("--entrypoint=/bin/sh", "img", "-c", "x")[1]["Entrypoint"] == ["/bin/sh"]


def test_interactive_and_rm() -> None:
    _, b = body("-i", "--rm", "img")
    assert (b["AttachStdin"], b["OpenStdin"], b["StdinOnce"]) == (True, True, True)
    assert b["HostConfig"]["AutoRemove"] is True
    _, b = body("-di", "img")
    assert (b["AttachStdin"], b["OpenStdin"], b["StdinOnce"]) == (False, True, False)


def test_healthcheck() -> None:
    _, b = body("--health-cmd", "true", "--health-interval", "1m30s", "--health-retries", "2",
                "--health-timeout", "500ms", "img")
    assert b["Healthcheck"] == {"Test": ["CMD-SHELL", "true"], "Interval": 90 * 10**9,
                                "Timeout": 500 * 10**6, "Retries": 2}
    assert body("--no-healthcheck", "img")[1]["Healthcheck"] == {"Test": ["NONE"]}


def test_ports() -> None:
    _, b = body("-p", "8080:80", "-p", "127.0.0.1::53/udp", "--expose", "9000", "-P", "img")
    assert b["ExposedPorts"] == {"80/tcp": {}, "53/udp": {}, "9000/tcp": {}}
    assert b["HostConfig"]["PortBindings"] == {
        "80/tcp": [{"HostIp": "", "HostPort": "8080"}],
        "53/udp": [{"HostIp": "127.0.0.1", "HostPort": ""}],
    }
    assert b["HostConfig"]["PublishAllPorts"] is True
    assert parse_publish("7000-7001:8000-8001") == [
        ("8000/tcp", {"HostIp": "", "HostPort": "7000"}),
        ("8001/tcp", {"HostIp": "", "HostPort": "7001"}),
    ]


def test_value_parsers() -> None:
    assert ram_in_bytes("100") == 100
    assert ram_in_bytes("1.5k") == 1536
    assert ram_in_bytes("2GB") == 2 << 30
    assert go_duration_ns("1h2m3s") == 3723 * 10**9
    assert go_duration_ns("-1.5s") == -1_500_000_000
    with pytest.raises(ValueError, match="missing unit"):
        go_duration_ns("10")
    assert parse_mount("target=/x")["Type"] == "volume"
    with pytest.raises(ValueError, match="target is required"):
        parse_mount("type=volume,source=v")


def test_mount_fields_are_one_csv_record_as_docker_reads_them() -> None:
    """docker reads --mount with Go's encoding/csv: a quoted field keeps its commas, so a
    local volume's `o=` options can hold several words."""
    mount = parse_mount('type=volume,src=v,dst=/d,"volume-opt=o=size=10m,uid=1000"')
    assert mount["VolumeOptions"]["DriverConfig"]["Options"] == {"o": "size=10m,uid=1000"}
    with pytest.raises(ValueError, match="parse error"):
        parse_mount('type=volume,dst=/d,"volume-opt=o=unterminated')


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--memory", "12q", "img"],
         'invalid argument "12q" for "-m, --memory" flag: invalid suffix: \'q\''),
        (["-v", "a:b:c:d", "img"],
         'invalid argument "a:b:c:d" for "-v, --volume" flag: invalid spec: a:b:c:d: '
         "too many colons"),
        (["-e", "=x", "img"],
         'invalid argument "=x" for "-e, --env" flag: invalid environment variable: =x'),
        (["--cpus", "lots", "img"],
         'invalid argument "lots" for "--cpus" flag: failed to parse lots as a rational number'),
        (["--restart", "sometimes", "img"],
         'invalid argument "sometimes" for "--restart" flag: invalid restart policy '
         "'sometimes'"),
        (["--restart", "always:3", "img"],
         'invalid argument "always:3" for "--restart" flag: maximum retry count cannot be '
         "used with restart policy 'always'"),
        (["--mount", "type=bind,target=/x", "img"],
         'invalid argument "type=bind,target=/x" for "--mount" flag: source is required '
         "when specifying bind mount"),
        (["--health-interval", "5", "img"],
         'invalid argument "5" for "--health-interval" flag: time: missing unit in '
         'duration "5"'),
        (["--ulimit", "nofile", "img"],
         'invalid argument "nofile" for "--ulimit" flag: invalid ulimit argument: nofile'),
        (["-p", "80/xyz", "img"], 'invalid argument "80/xyz" for "-p, --publish" flag: '
         "invalid proto: xyz"),
        (["--rm", "--restart", "always", "img"],
         "conflicting options: cannot specify both --restart and --rm"),
        (["--no-healthcheck", "--health-cmd", "x", "img"],
         "--no-healthcheck conflicts with --health-* options"),
        (["-t", "--detach-keys", "ctrl-1", "img"], "Invalid detach keys (ctrl-1) provided"),
        # accepted by docker, not applied by corral: refused by name, never dropped
        (["--mount", "type=bind,src=/a,dst=/b,bind-propagation=bogus", "img"],
         'invalid argument "type=bind,src=/a,dst=/b,bind-propagation=bogus" for "--mount" '
         "flag: invalid propagation mode: bogus"),
        (["--mount", "type=bind,src=/a,dst=/b,bind-recursive=readonly", "img"],
         'invalid argument "type=bind,src=/a,dst=/b,bind-recursive=readonly" for "--mount" '
         "flag: bind-recursive=readonly is not supported by corral"),
        (["--mount", "src=v,dst=/b,volume-driver=nfs", "img"],
         'invalid argument "src=v,dst=/b,volume-driver=nfs" for "--mount" flag: '
         "volume-driver=nfs is not supported by corral (only local volumes)"),
        (["--mount", "src=v,dst=/b,volume-opt=o", "img"],
         'invalid argument "src=v,dst=/b,volume-opt=o" for "--mount" flag: '
         "invalid value for volume-opt: o"),
    ],
)
def test_malformed_flags_exit_125_without_contacting_daemon(argv: list[str], message: str) -> None:
    code, out, err = run_cli("run", *argv)
    assert code == 125
    assert out == ""
    typed = message.startswith("invalid argument") and argv[0] in (
        "--memory", "-e", "--cpus", "--mount", "--health-interval", "--ulimit")  # fmt: skip
    # docker's flag parser finds a typed flag's bad value: printed with the usage
    assert err == (message + RUN_USAGE if typed else f"corral: {message}\n")


RUN_USAGE = (
    "\n\nUsage:  corral run [OPTIONS] IMAGE [COMMAND] [ARG...]\n\n"
    "Run 'corral run --help' for more information\n"
)
DOCKER_TYPED_FLAG_ERRORS = [
    ["run", "-m", "1x", "busybox"],
    ["run", "-m", "1.2.3g", "busybox"],
    ["run", "--memory-swap", "12kbb", "busybox"],
    ["run", "--cpus", "abc", "busybox"],
    ["run", "--pids-limit", "x", "busybox"],
    ["run", "-e", "=x", "busybox"],
    ["run", "--ulimit", "x", "busybox"],
    ["run", "--add-host", "bad", "busybox"],
    ["run", "--health-interval", "5", "busybox"],
    ["create", "-m", "12Q", "busybox"],
    ["update", "-m", "1x", "c1"],
    ["update", "--pids-limit", "x", "c1"],
]


@pytest.mark.parametrize("argv", DOCKER_TYPED_FLAG_ERRORS, ids=" ".join)
def test_typed_flag_values_fail_as_docker_28s_do(argv: list[str]) -> None:
    """The real docker CLI on the same words, its name swapped for ours."""
    import shutil
    import subprocess

    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("docker CLI not installed")
    env = {"PATH": os.environ.get("PATH", ""), "DOCKER_HOST": "unix:///nonexistent",
           "HOME": "/nonexistent"}  # fmt: skip
    real = subprocess.run([docker, *argv], capture_output=True, text=True, env=env)
    code, out, err = run_cli(*argv)
    assert (code, out) == (real.returncode, "") == (125, "")
    assert err == real.stderr.replace("docker", "corral")


def test_create_shares_run_flags() -> None:
    code, _, err = run_cli("create", "-m", "1x", "img")
    assert (code, err) == (125, 'invalid argument "1x" for "-m, --memory" flag: '
                                "invalid suffix: 'x'\n\n"
                                "Usage:  corral create [OPTIONS] IMAGE [COMMAND] [ARG...]\n\n"
                                "Run 'corral create --help' for more information\n")
    code, _, err = run_cli("create", "-d", "img")
    assert (code, err) == (125, "unknown shorthand flag: 'd' in -d\n\n"
                                "Usage:  corral create [OPTIONS] IMAGE [COMMAND] [ARG...]\n\n"
                                "Run 'corral create --help' for more information\n")


def test_missing_image_is_a_usage_error() -> None:
    code, _, err = run_cli("run")
    assert code == 1
    assert err.startswith("corral: 'corral run' requires at least 1 argument\n")


def test_help_goes_to_stdout() -> None:
    code, out, err = run_cli("run", "--help")
    assert code == 0 and err == ""
    assert "Usage:  corral run [OPTIONS] IMAGE [COMMAND] [ARG...]" in out
    assert "-m, --memory string" in out


def test_parser_combined_and_attached_short_flags() -> None:
    p = parse(RUN, ["-di", "-eA=1", "-e=B=2", "--name=x", "img"])
    assert p["detach"] and p["interactive"]
    assert p["env"] == ["A=1", "B=2"]
    assert p["name"] == "x"
    assert p.given >= {"detach", "interactive", "env", "name"}
    with pytest.raises(UsageError):
        parse(RUN, ["--detach=nope", "img"])


def test_capabilities_normalised_as_docker_sends_them() -> None:
    # docker's EffectiveCapAddCapDrop: upper case, CAP_ prefixed, sorted, unique;
    # ALL trumps the rest of its list; a capability both added and dropped is added.
    h = body("--cap-add", "net_admin", "--cap-add", "CAP_KILL", "--cap-add", "Net_Admin",
             "--cap-drop", "kill", "--cap-drop", "cap_chown", "img")[1]["HostConfig"]
    assert (h["CapAdd"], h["CapDrop"]) == (["CAP_KILL", "CAP_NET_ADMIN"], ["CAP_CHOWN"])
    h = body("--cap-add", "all", "--cap-add", "chown", "--cap-drop", "ALL", "img")[1][
        "HostConfig"]
    assert (h["CapAdd"], h["CapDrop"]) == (["ALL"], None)
    h = body("--cap-drop", "ALL", "--cap-drop", "kill", "--cap-add", "net_bind_service",
             "img")[1]["HostConfig"]
    assert (h["CapAdd"], h["CapDrop"]) == (["CAP_NET_BIND_SERVICE"], ["ALL"])


def test_devices_as_docker_parses_them() -> None:
    h = body("--device", "/dev/fuse", "--device", "/dev/null:/dev/n", "--device", "/dev/a:r",
             "--device", "/dev/b:/dev/c:rw", "--device-cgroup-rule", "c 1:3 rwm",
             "--device-cgroup-rule", "b *:* m", "img")[1]["HostConfig"]
    assert h["Devices"] == [
        {"PathOnHost": "/dev/fuse", "PathInContainer": "/dev/fuse", "CgroupPermissions": "rwm"},
        {"PathOnHost": "/dev/null", "PathInContainer": "/dev/n", "CgroupPermissions": "rwm"},
        {"PathOnHost": "/dev/a", "PathInContainer": "/dev/a", "CgroupPermissions": "r"},
        {"PathOnHost": "/dev/b", "PathInContainer": "/dev/c", "CgroupPermissions": "rw"},
    ]
    assert h["DeviceCgroupRules"] == ["c 1:3 rwm", "b *:* m"]
    for spec, message in (("a:b:c:d", "bad format for path: a:b:c:d"),
                          (":/x", "bad format for path: :/x"),
                          ("/dev/a:/b:rwq", "bad mode specified: rwq"),
                          ("/dev/a:b", "b is not an absolute path"),
                          ("/dev/a::r", " is not an absolute path")):
        with pytest.raises(UsageError) as err:
            body("--device", spec, "img")
        assert str(err.value) == message
    with pytest.raises(UsageError, match="invalid device cgroup format 'c 1:3'"):
        body("--device-cgroup-rule", "c 1:3", "img")


def test_userns_host_only_as_docker_checks_it() -> None:
    assert body("--userns", "host", "img")[1]["HostConfig"]["UsernsMode"] == "host"
    assert "UsernsMode" not in body("img")[1]["HostConfig"]
    with pytest.raises(UsageError, match="^--userns: invalid USER mode$"):
        body("--userns", "private", "img")
