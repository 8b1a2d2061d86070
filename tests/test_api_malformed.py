"""A table of malformed API requests against a running daemon (issue 12, item 5).

Every answer is a client error (400/404/405/409/413) whose message names the culprit:
no 500, nothing accepted that dockerd would refuse, and the daemon keeps serving
`GET /containers/json` to everyone afterwards.  Messages for type mismatches have
dockerd's shape (Go's encoding/json wording, `invalid JSON: json: cannot unmarshal
string into Go struct field HostConfig.HostConfig.Memory of type int64`).  The table
prints its figures (`-s`): how many got a 500, how many invalid ones were accepted.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest
from conftest import Daemon

IMAGE = "busybox:latest"
CLIENT_ERRORS = {400, 404, 405, 409, 413}
H = "HostConfig.HostConfig."  # Go: the innermost struct, then the path from the top


def call(
    sock: Path,
    method: str,
    target: str,
    body: bytes | None = None,
    content_type: str | None = "application/json",
) -> tuple[int, str]:
    """One request on its own connection; (status, message or body text)."""
    head = [f"{method} {target} HTTP/1.1", "Host: docker", "Connection: close"]
    if body is not None:
        head.append(f"Content-Length: {len(body)}")
        if content_type:
            head.append(f"Content-Type: {content_type}")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(60)
        s.connect(str(sock))
        s.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + (body or b""))
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    status_line, _, rest = data.partition(b"\r\n")
    status = int(status_line.split()[1])
    payload = rest.partition(b"\r\n\r\n")[2].decode(errors="replace")
    try:
        doc = json.loads(payload)
        message = doc.get("message", payload) if isinstance(doc, dict) else payload
    except ValueError:
        message = payload
    return status, str(message)


def create(**fields: Any) -> bytes:
    return json.dumps({"Image": IMAGE, "Cmd": ["true"], **fields}).encode()


def hc(**fields: Any) -> bytes:
    return create(HostConfig=fields)


# (method, target, body, culprit named in the message)
WRONG_TYPES: list[tuple[str, str, bytes | None, str]] = [
    ("POST", "/containers/create", create(Cmd=[1, 2]), "CreateRequest.Cmd"),
    ("POST", "/containers/create", create(Cmd={"a": 1}), "CreateRequest.Cmd"),
    ("POST", "/containers/create", create(Entrypoint=5), "CreateRequest.Entrypoint"),
    ("POST", "/containers/create", create(Env="A=1"), "CreateRequest.Env"),
    ("POST", "/containers/create", create(Env=["A=1", 2]), "CreateRequest.Env"),
    ("POST", "/containers/create", create(Labels=["a=b"]), "CreateRequest.Labels"),
    ("POST", "/containers/create", create(Labels={"a": 1}), "CreateRequest.Labels"),
    ("POST", "/containers/create", create(Hostname=5), "CreateRequest.Hostname"),
    ("POST", "/containers/create", create(User=0), "CreateRequest.User"),
    ("POST", "/containers/create", create(WorkingDir=["/"]), "CreateRequest.WorkingDir"),
    ("POST", "/containers/create", create(Tty="yes"), "CreateRequest.Tty"),
    ("POST", "/containers/create", create(OpenStdin=1), "CreateRequest.OpenStdin"),
    ("POST", "/containers/create", create(ExposedPorts=["80/tcp"]), "ExposedPorts"),
    ("POST", "/containers/create", create(Volumes=["/data"]), "CreateRequest.Volumes"),
    ("POST", "/containers/create", create(StopTimeout="10"), "CreateRequest.StopTimeout"),
    ("POST", "/containers/create", create(StopTimeout=1.5), "number 1.5"),
    ("POST", "/containers/create", create(StopSignal=9), "CreateRequest.StopSignal"),
    ("POST", "/containers/create", create(Image=["busybox"]), "CreateRequest.Image"),
    ("POST", "/containers/create", create(Healthcheck={"Test": "true"}), "Healthcheck.Test"),
    ("POST", "/containers/create", create(Healthcheck={"Interval": "1s"}), "Interval"),
    ("POST", "/containers/create", create(HostConfig="x"), "CreateRequest.HostConfig"),
    ("POST", "/containers/create", create(HostConfig=[]), "CreateRequest.HostConfig"),
    ("POST", "/containers/create", hc(Memory="1g"), H + "Memory"),
    ("POST", "/containers/create", hc(Memory=1.5), H + "Memory"),
    ("POST", "/containers/create", hc(Memory=2**64), H + "Memory"),
    ("POST", "/containers/create", hc(MemorySwap=True), H + "MemorySwap"),
    ("POST", "/containers/create", hc(NanoCpus="1"), H + "NanoCpus"),
    ("POST", "/containers/create", hc(CpuShares=[512]), H + "CpuShares"),
    ("POST", "/containers/create", hc(PidsLimit="10"), H + "PidsLimit"),
    ("POST", "/containers/create", hc(BlkioWeight=70000), H + "BlkioWeight"),
    ("POST", "/containers/create", hc(BlkioWeight=-1), H + "BlkioWeight"),
    ("POST", "/containers/create", hc(CpusetCpus=0), H + "CpusetCpus"),
    ("POST", "/containers/create", hc(ShmSize="64m"), H + "ShmSize"),
    ("POST", "/containers/create", hc(OomScoreAdj="1"), H + "OomScoreAdj"),
    ("POST", "/containers/create", hc(Binds="/a:/b"), H + "Binds"),
    ("POST", "/containers/create", hc(Binds=[["/a", "/b"]]), H + "Binds"),
    ("POST", "/containers/create", hc(CapAdd=5), H + "CapAdd"),
    ("POST", "/containers/create", hc(CapDrop=[1]), H + "CapDrop"),
    ("POST", "/containers/create", hc(Dns="8.8.8.8"), H + "Dns"),
    ("POST", "/containers/create", hc(DnsSearch=5), H + "DnsSearch"),
    ("POST", "/containers/create", hc(DnsOptions={"a": 1}), H + "DnsOptions"),
    ("POST", "/containers/create", hc(ExtraHosts="a:1.2.3.4"), H + "ExtraHosts"),
    ("POST", "/containers/create", hc(PortBindings=["80:80"]), H + "PortBindings"),
    (
        "POST",
        "/containers/create",
        hc(PortBindings={"80/tcp": [{"HostPort": 8080}]}),
        "PortBinding.HostConfig.PortBindings.HostPort",
    ),
    ("POST", "/containers/create", hc(RestartPolicy="always"), "HostConfig.RestartPolicy"),
    (
        "POST",
        "/containers/create",
        hc(RestartPolicy={"Name": "on-failure", "MaximumRetryCount": "3"}),
        "RestartPolicy.HostConfig.RestartPolicy.MaximumRetryCount",
    ),
    (
        "POST",
        "/containers/create",
        hc(LogConfig={"Type": 1}),
        "LogConfig.HostConfig.LogConfig.Type",
    ),
    (
        "POST",
        "/containers/create",
        hc(LogConfig={"Type": "json-file", "Config": {"max-size": 10}}),
        "LogConfig.HostConfig.LogConfig.Config",
    ),
    ("POST", "/containers/create", hc(Mounts={"Type": "bind"}), H + "Mounts"),
    ("POST", "/containers/create", hc(Mounts=[{"Type": 5}]), "Mount.HostConfig.Mounts.Type"),
    (
        "POST",
        "/containers/create",
        hc(Mounts=[{"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": "1m"}}]),
        "TmpfsOptions.HostConfig.Mounts.TmpfsOptions.SizeBytes",
    ),
    ("POST", "/containers/create", hc(Tmpfs=["/run"]), H + "Tmpfs"),
    ("POST", "/containers/create", hc(Privileged="true"), H + "Privileged"),
    ("POST", "/containers/create", hc(AutoRemove=1), H + "AutoRemove"),
    ("POST", "/containers/create", hc(ReadonlyRootfs="no"), H + "ReadonlyRootfs"),
    ("POST", "/containers/create", hc(Ulimits={"nofile": 1}), H + "Ulimits"),
    ("POST", "/containers/create", hc(Ulimits=[{"Name": "nofile", "Soft": "1"}]), "Ulimit"),
    ("POST", "/containers/create", hc(Devices="/dev/null"), H + "Devices"),
    ("POST", "/containers/create", hc(Sysctls=["a=b"]), H + "Sysctls"),
    ("POST", "/containers/create", hc(SecurityOpt="seccomp=x"), H + "SecurityOpt"),
    ("POST", "/containers/create", hc(NetworkMode=1), H + "NetworkMode"),
    ("POST", "/containers/create", hc(Init="yes"), H + "Init"),
    ("POST", "/containers/create", hc(GroupAdd=[0]), H + "GroupAdd"),
    ("POST", "/containers/create", hc(ConsoleSize=[-1, 2]), H + "ConsoleSize"),
    (
        "POST",
        "/containers/create",
        create(NetworkingConfig={"EndpointsConfig": {"bridge": {"Aliases": "a"}}}),
        "EndpointSettings.NetworkingConfig.EndpointsConfig.Aliases",
    ),
    (
        "POST",
        "/containers/create",
        create(NetworkingConfig={"EndpointsConfig": []}),
        "NetworkingConfig.NetworkingConfig.EndpointsConfig",
    ),
    ("POST", "/containers/create", b"[1, 2]", "container.CreateRequest"),
    ("POST", "/containers/create", b'"busybox"', "container.CreateRequest"),
    ("POST", "/containers/create", b"5", "container.CreateRequest"),
]

# what types allow but dockerd (or the /etc files it writes) refuses
INVALID_VALUES: list[tuple[str, str, bytes | None, str]] = [
    ("POST", "/containers/create", hc(ExtraHosts=["a:1.2.3.4\nevil 6.6.6.6"]), "add-host"),
    ("POST", "/containers/create", hc(ExtraHosts=["a\nb:1.2.3.4"]), "add-host"),
    ("POST", "/containers/create", hc(ExtraHosts=["nohost"]), "add-host"),
    ("POST", "/containers/create", hc(ExtraHosts=["a:not-an-ip"]), "not-an-ip"),
    ("POST", "/containers/create", hc(Dns=["8.8.8.8\nnameserver 6.6.6.6"]), "8.8.8.8"),
    ("POST", "/containers/create", hc(Dns=["dns.example"]), "dns.example"),
    ("POST", "/containers/create", hc(DnsSearch=["a.example\nnameserver 6.6.6.6"]), "a.example"),
    ("POST", "/containers/create", hc(DnsOptions=["ndots:1\nnameserver 6.6.6.6"]), "ndots"),
    ("POST", "/containers/create", hc(CapAdd=["NOT_A_CAP"]), "NOT_A_CAP"),
    ("POST", "/containers/create", hc(CapDrop="NOPE"), "NOPE"),
    ("POST", "/containers/create", hc(PortBindings={"http/tcp": []}), "http"),
    ("POST", "/containers/create", hc(Annotations={"": "x"}), "annotation key"),
    ("POST", "/containers/create", hc(Ulimits=[{"Name": "-1", "Soft": 1, "Hard": 1}]), "-1"),
    ("POST", "/containers/create", hc(Ulimits=[{"Name": "nofile", "Soft": 9, "Hard": 1}]), "9 > 1"),
    ("POST", "/containers/create", create(Env=["=foo"]), "=foo"),
    ("POST", "/containers/create", create(Env=["A=\u0000b"]), "environment variable"),
    ("POST", "/containers/create", create(Cmd=["echo", "a\u0000b"]), "Cmd"),
    ("POST", "/containers/create", create(WorkingDir="relative/dir"), "relative/dir"),
    ("POST", "/containers/create", create(Hostname="a\nb"), "Hostname"),
]

BAD_JSON: list[tuple[str, str, bytes | None, str]] = [
    ("POST", "/containers/create", b"{bad json", "invalid JSON"),
    ("POST", "/containers/create", b'{"Image": "busybox",}', "invalid JSON"),
    ("POST", "/containers/create", b'{"Image": "busybox"} {}', "invalid JSON"),
    ("POST", "/containers/create", b'{"Image": NaN}', "invalid JSON"),
    ("POST", "/containers/create", b'{"Image": "\xff\xfe"', "invalid JSON"),
    ("POST", "/containers/create", b"[" * 100_000 + b"]" * 100_000, "nesting"),
    ("POST", "/containers/create", b'{"Labels": ' * 2000 + b"1" + b"}" * 2000, "nesting"),
    ("POST", "/containers/create", b"[" * 500 + b"]" * 500, "nesting"),
    ("POST", "/volumes/create", b"[" * 100_000, "invalid JSON"),
    ("POST", "/networks/create", b"{" * 50_000 + b"}" * 50_000, "invalid JSON"),
    ("POST", "/containers/create", b'{"Image": "busybox"', "invalid JSON"),
]

OTHER_BODIES: list[tuple[str, str, bytes | None, str]] = [
    ("POST", "/containers/{id}/update", b'{"Memory": "1g"}', "UpdateConfig.Memory"),
    ("POST", "/containers/{id}/update", b'{"CpuShares": true}', "UpdateConfig.CpuShares"),
    ("POST", "/containers/{id}/update", b'{"RestartPolicy": "always"}', "RestartPolicy"),
    ("POST", "/containers/{id}/update", b'{"PidsLimit": 1.5}', "UpdateConfig.PidsLimit"),
    ("POST", "/containers/{id}/update", b"[1]", "container.UpdateConfig"),
    ("POST", "/containers/{id}/update", b'{"CpuRealtimeRuntime": 50000}', "CpuRealtimeRuntime"),
    ("POST", "/containers/{id}/update", b'{"BlkioWeight": 300}', "BlkioWeight"),
    ("POST", "/containers/{id}/exec", b'{"Cmd": "ls"}', "ExecOptions.Cmd"),
    ("POST", "/containers/{id}/exec", b'{"Cmd": ["ls"], "Env": "A=1"}', "ExecOptions.Env"),
    ("POST", "/containers/{id}/exec", b'{"Cmd": ["ls"], "Tty": "no"}', "ExecOptions.Tty"),
    ("POST", "/containers/{id}/exec", b'{"Cmd": ["ls"], "User": 0}', "ExecOptions.User"),
    ("POST", "/networks/create", b'{"Name": 5}', "CreateRequest.Name"),
    ("POST", "/networks/create", b'{"Name": "n", "Labels": ["a"]}', "CreateRequest.Labels"),
    ("POST", "/networks/create", b'{"Name": "n", "IPAM": {"Config": {}}}', "IPAM.Config"),
    ("POST", "/networks/create", b'{"Name": "n", "Internal": "yes"}', "CreateRequest.Internal"),
    ("POST", "/networks/bridge/connect", b'{"Container": 5}', "ConnectOptions.Container"),
    ("POST", "/networks/bridge/disconnect", b'{"Force": "y"}', "DisconnectOptions.Force"),
    ("POST", "/volumes/create", b'{"Name": 5}', "CreateOptions.Name"),
    ("POST", "/volumes/create", b'{"Labels": ["a"]}', "CreateOptions.Labels"),
    ("POST", "/volumes/create", b'{"DriverOpts": {"o": 1}}', "CreateOptions.DriverOpts"),
    ("POST", "/volumes/create", b"[]", "volume.CreateOptions"),
    ("POST", "/volumes/create", b'{"Name": "' + b"v" * 300 + b'"}', "255 characters"),
    ("POST", "/containers/create", create(HostConfig={"Binds": ["v" * 300 + ":/d"]}), "255"),
    ("POST", "/commit?container={id}", b'{"Cmd": 5}', "CreateRequest.Cmd"),
    ("POST", "/containers/create", b"{}", "image"),
]

QUERIES: list[tuple[str, str, bytes | None, str]] = [
    ("GET", "/containers/json?limit=abc", None, "limit"),
    ("GET", "/containers/json?filters={bad", None, "filters"),
    ("GET", "/containers/json?filters=" + "%5B" * 5000, None, "filters"),
    ("GET", "/containers/json?filters=[1]", None, "filter"),
    ("GET", "/containers/json?filters={%22label%22:5}", None, "label"),
    ("GET", "/containers/{id}/logs?stdout=1&tail=abc", None, "tail"),
    ("GET", "/containers/{id}/logs?stdout=1&since=yesterday", None, "yesterday"),
    ("GET", "/containers/{id}/logs", None, "stream"),
    ("POST", "/containers/{id}/stop?t=soon", None, "'t'"),
    ("POST", "/containers/{id}/kill?signal=NOPE", None, "NOPE"),
    ("POST", "/containers/create?name=bad/name", create(), "bad/name"),
    ("GET", "/events?since=yesterday&until=1", None, "yesterday"),
    ("GET", "/images/json?filters={bad", None, "filters"),
    ("GET", "/volumes?filters=[1", None, "filters"),
    ("GET", "/networks?filters=5", None, "filter"),
    ("POST", "/containers/{id}/wait?condition=bogus", None, "bogus"),
    ("POST", "/containers/{id}/restart?t=1.5", None, "'t'"),
    ("POST", "/containers/{id}/stop?signal=NOPE", None, "NOPE"),
    ("POST", "/containers/{id}/resize?h=abc&w=80", None, "h"),
    ("POST", "/containers/{id}/rename?name=", None, "name"),
    ("POST", "/containers/{id}/rename?name=a%0Ab", None, "a\nb"),
    ("DELETE", "/images/%00bad", None, "bad"),
    ("POST", "/images/create?fromImage=Bad%20Name", None, "Bad Name"),
    ("POST", "/images/busybox/tag?repo=Bad%20Repo", None, "Bad Repo"),
    ("GET", "/containers/json?filters={%22bogus%22:[%22x%22]}", None, "'bogus'"),
    ("GET", "/containers/json?filters={%22status%22:[%22sleeping%22]}", None, "status=sleeping"),
    ("GET", "/containers/json?filters={%22exited%22:[%22x%22]}", None, "exited=x"),
    ("GET", "/containers/json?filters={%22health%22:[%22healthy%22]}", None, "health"),
    ("POST", "/containers/{id}/restart?signal=SIGNOPE", None, "SIGNOPE"),
    ("POST", "/containers/{id}/resize?h=10&w=wide", None, "wide"),
    ("POST", "/build?buildargs=%7B%22A%22%3A1%7D", b"", "buildargs"),
    ("POST", "/build?labels=%7B%22a%22%3Anull%7D", b"", "labels"),
    ("POST", "/build?labels=%5B1%5D", b"", "labels"),
]

ROUTES: list[tuple[str, str, bytes | None, str]] = [
    ("GET", "/nope", None, "page not found"),
    ("GET", "/v1.44/containers/json/extra/segments", None, "page not found"),
    ("DELETE", "/_ping", None, "method not allowed"),
    ("GET", "/v1.99/containers/json", None, "too new"),
    ("GET", "/vx.y/containers/json", None, "page not found"),  # as dockerd: no route
    ("GET", "/containers/does-not-exist/json", None, "does-not-exist"),
    ("POST", "/exec/does-not-exist/start", b"{}", "does-not-exist"),
    ("POST", "/containers/create", b'{"Image": "busybox"}', "Content-Type"),  # text/plain
]

TABLE = WRONG_TYPES + INVALID_VALUES + BAD_JSON + OTHER_BODIES + QUERIES + ROUTES


@pytest.fixture
def running(corral: Daemon) -> str:
    r = corral.docker("run", "-d", IMAGE, "sleep", "600")
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_malformed_requests_are_client_errors_naming_the_culprit(
    corral: Daemon, running: str
) -> None:
    before = set(corral.docker("ps", "-aq", "--no-trunc").stdout.split())
    server_errors, accepted, vague = [], [], []
    for method, target, body, culprit in TABLE:
        target = target.replace("{id}", running)
        ctype = "text/plain" if culprit == "Content-Type" else "application/json"
        status, message = call(corral.sock, method, target, body, ctype)
        case = f"{method} {target[:60]} {(body or b'')[:70]!r} -> {status} {message[:120]}"
        if status >= 500:
            server_errors.append(case)
        elif status not in CLIENT_ERRORS:
            accepted.append(case)
        elif culprit.lower() not in message.lower():
            vague.append(f"{case} (wanted {culprit!r})")
    print(
        f"\n{len(TABLE)} malformed requests: {len(server_errors)} got a 5xx, "
        f"{len(accepted)} were accepted, {len(vague)} did not name the culprit"
    )
    assert server_errors == []
    assert accepted == []
    assert vague == []
    # nothing was made, and the list still renders for every client
    assert set(corral.docker("ps", "-aq", "--no-trunc").stdout.split()) == before
    status, _ = call(corral.sock, "GET", "/containers/json?all=1")
    assert status == 200


def test_messages_have_dockerds_wording(corral: Daemon) -> None:
    status, message = call(corral.sock, "POST", "/containers/create", hc(Memory="1g"))
    assert (status, message) == (
        400,
        "invalid JSON: json: cannot unmarshal string into Go struct field "
        "HostConfig.HostConfig.Memory of type int64",
    )
    status, message = call(corral.sock, "POST", "/containers/create", create(Cmd=[1, 2]))
    assert (status, message) == (
        400,
        "invalid JSON: json: cannot unmarshal array into Go struct field "
        "CreateRequest.Cmd of type string",
    )


def test_a_lone_string_is_a_list_of_one_as_in_docker(corral: Daemon, dk: Any) -> None:
    """StrSlice fields (Cmd, Entrypoint, CapAdd, CapDrop) take one string: dockerd reads
    `CapAdd: "NET_ADMIN"` as `["NET_ADMIN"]`, never as the letters of the word."""
    body = create(Cmd="true", HostConfig={"CapAdd": "NET_ADMIN", "CapDrop": "MKNOD"})
    status, message = call(corral.sock, "POST", "/containers/create", body)
    assert status == 201, message
    cid = json.loads(message)["Id"]
    info = dk.api.inspect_container(cid)
    assert info["HostConfig"]["CapAdd"] == ["NET_ADMIN"]
    assert info["HostConfig"]["CapDrop"] == ["MKNOD"]
    assert info["Config"]["Cmd"] == ["true"]


def test_field_names_match_case_insensitively_as_in_go(corral: Daemon, dk: Any) -> None:
    body = json.dumps({"image": IMAGE, "cmd": ["true"], "labels": {"a": "b"}}).encode()
    status, message = call(corral.sock, "POST", "/containers/create", body)
    assert status == 201, message
    info = dk.api.inspect_container(json.loads(message)["Id"])
    assert info["Config"]["Labels"] == {"a": "b"}


def test_valid_bodies_from_the_docker_cli_are_accepted(corral: Daemon) -> None:
    r = corral.docker(
        "create",
        "--name", "many-flags",
        "-e", "A=1", "--env", "B=two words",
        "-l", "x=y",
        "-p", "127.0.0.1:18080:80/tcp",
        "--add-host", "db:10.0.0.5",
        "--dns", "9.9.9.9",
        "--dns-search", "example.com",
        "--dns-option", "ndots:2",
        "--cap-add", "NET_ADMIN", "--cap-drop", "ALL",
        "-m", "64m", "--cpus", "0.5", "--pids-limit", "50",
        "--restart", "on-failure:3",
        "--ulimit", "nofile=1024:2048",
        "--tmpfs", "/run:size=1m",
        "-w", "/tmp",
        "--hostname", "box",
        "--health-cmd", "true", "--health-interval", "5s",
        "--stop-signal", "SIGINT", "--stop-timeout", "3",
        "-v", "vol1:/data",
        IMAGE, "sh", "-c", "echo hi",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    r = corral.docker("run", "--rm", IMAGE, "echo", "plain run")
    assert (r.returncode, r.stdout) == (0, "plain run\n"), r.stderr


def test_a_record_stored_before_the_checks_does_not_break_the_list(
    private_daemon: Any, rootfs_tar: Path
) -> None:
    """A database written by an older corral may hold `Cmd: [1, 2]` (accepted then):
    `GET /containers/json` answered 500 to every client until that container was
    removed by ID.  Now the list renders it, and it can be removed by name."""
    import sqlite3

    from conftest import stop_daemon

    d = private_daemon()
    client = d.client()
    with rootfs_tar.open("rb") as f:
        client.api.import_image_from_data(f.read(), repository="busybox", tag="latest")
    client.containers.create(IMAGE, ["true"], name="old-record", labels={"a": "b"})
    client.close()
    stop_daemon(d.proc)
    db = sqlite3.connect(d.root / "corral.db")
    (text,) = db.execute("SELECT record FROM containers WHERE name='old-record'").fetchone()
    record = json.loads(text)
    record["args"] = [1, 2]
    record["config"]["Cmd"] = [1, 2]
    record["config"]["Labels"] = {"a": 5}
    with db:
        db.execute("UPDATE containers SET record=? WHERE name='old-record'", (json.dumps(record),))
    db.close()

    d = private_daemon()
    status, _ = call(d.sock, "GET", "/containers/json?all=1")
    assert status == 200
    r = d.docker("ps", "-a", "--format", "{{.Names}} {{.Command}}")
    assert r.returncode == 0 and "old-record" in r.stdout, r.stderr
    assert d.docker("rm", "old-record").returncode == 0


def test_stop_signal_query_is_applied(corral: Daemon) -> None:
    """`docker stop -s SIG` (API `signal`) was ignored: SIGTERM was sent regardless."""
    script = 'trap "echo got USR1; exit 3" USR1; while true; do sleep 0.1; done'
    r = corral.docker("run", "-d", "--name", "sig", IMAGE, "sh", "-c", script)
    assert r.returncode == 0, r.stderr
    r = corral.docker("stop", "-s", "SIGUSR1", "sig")
    assert r.returncode == 0, r.stderr
    r = corral.docker("inspect", "-f", "{{.State.ExitCode}}", "sig")
    assert r.stdout.strip() == "3"
    assert "got USR1" in corral.docker("logs", "sig").stdout


def test_docker_update_applies_or_refuses_by_name(corral: Daemon, running: str) -> None:
    limits = ["-m", "64m", "--memory-swap", "128m", "--cpus", "1", "--cpu-shares", "512"]
    r = corral.docker("update", "--restart", "always", *limits, "--pids-limit", "50", running)
    assert r.returncode == 0, r.stderr
    r = corral.docker("update", "--memory-reservation", "32m", running)
    assert r.returncode == 1
    assert "MemoryReservation is not supported by corral" in r.stderr


def test_valid_bodies_from_docker_py_are_accepted(dk: Any) -> None:
    """A guard, like the docker CLI one above: what clients send still passes."""
    from docker.types import Ulimit

    c = dk.containers.create(
        IMAGE,
        ["sh", "-c", "echo hi"],
        name="py-many",
        environment={"A": "1"},
        labels={"x": "y"},
        ports={"80/tcp": ("127.0.0.1", 18081)},
        extra_hosts={"db": "10.0.0.5"},
        dns=["9.9.9.9"],
        dns_search=["example.com"],
        cap_add=["NET_ADMIN"],
        mem_limit="64m",
        nano_cpus=500_000_000,
        pids_limit=50,
        restart_policy={"Name": "on-failure", "MaximumRetryCount": 2},
        ulimits=[Ulimit(name="nofile", soft=1024, hard=2048)],
        tmpfs={"/run": "size=1m"},
        working_dir="/tmp",
        hostname="box",
        healthcheck={"test": ["CMD", "true"], "interval": 5_000_000_000},
        stop_signal="SIGINT",
        volumes={"vol2": {"bind": "/data", "mode": "rw"}},
    )
    info = dk.api.inspect_container(c.id)
    assert info["HostConfig"]["ExtraHosts"] == ["db:10.0.0.5"]
    assert info["HostConfig"]["Dns"] == ["9.9.9.9"]
    assert dk.containers.run(IMAGE, ["echo", "plain"], remove=True) == b"plain\n"
