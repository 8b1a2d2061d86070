"""`top`, `diff`, `export` and `wait --condition` as a Docker user meets them: through
the docker CLI, docker-py and corral's CLI against a real daemon."""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest
from conftest import Daemon

from supervisor.engine.top import parse_ps_output, validate_ps_args
from supervisor.errors import InvalidArgument

IMAGE = "busybox:latest"


def corral(daemon: Daemon, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "supervisor", *args], env=daemon.env(),
                          capture_output=True, timeout=60)


# ------------------------------------------------------------------ pure rules


def test_ps_output_filtered_to_the_containers_pids_with_threads() -> None:
    out = ("USER PID TIME CMD\nroot 1 0:00 init --x\nroot 7 0:00 sh -c a b\n"
           "root - 0:00 -\nroot 9 0:00 other\nroot - 0:00 -\n")
    body = parse_ps_output(out, {7})
    assert body["Titles"] == ["USER", "PID", "TIME", "CMD"]
    assert body["Processes"] == [["root", "7", "0:00", "sh -c a b"], ["root", "-", "0:00", "-"]]
    with pytest.raises(InvalidArgument, match="Couldn't find PID field"):
        parse_ps_output("USER CMD\n", {1})
    with pytest.raises(InvalidArgument, match='specifying "user=PID" is not allowed'):
        validate_ps_args("-o pid,comm -o user=PID")
    validate_ps_args("-o pid=PID")


# ------------------------------------------------------------------ top


def test_top_lists_only_the_containers_processes(daemon: Daemon, dk: Any) -> None:
    c = dk.containers.run(IMAGE, ["sleep", "1002"], detach=True, name="topper")
    c.exec_run(["sleep", "1001"], detach=True)  # an exec is in the container's cgroup too
    body = c.top()
    assert body["Titles"][:3] == ["UID", "PID", "PPID"]  # ps -ef
    cmds = sorted(p[-1] for p in body["Processes"])
    assert cmds == ["sleep 1001", "sleep 1002"]
    res = daemon.docker("top", "topper", "-o", "pid,comm", check=True)
    lines = res.stdout.splitlines()
    assert lines[0].split() == ["PID", "COMMAND"]
    assert sorted(line.split()[1] for line in lines[1:]) == ["sleep", "sleep"]
    assert corral(daemon, "top", "topper", "-o", "pid,comm").stdout.decode() == res.stdout
    res = daemon.docker("top", "topper", "-o", "user=PID")
    assert res.returncode == 1 and 'specifying "user=PID" is not allowed' in res.stderr
    c.kill()
    c.wait()
    res = daemon.docker("top", "topper")
    assert res.returncode == 1 and f"container {c.id} is not running" in res.stderr


# ------------------------------------------------------------------ diff


def test_diff_reports_adds_changes_and_deletes(daemon: Daemon, dk: Any) -> None:
    c = dk.containers.run(IMAGE, ["sleep", "1d"], detach=True, name="differ")
    script = "echo n > /tmp/new && rm /etc/group && mkdir -p /srv/a && echo x >> /etc/passwd"
    assert c.exec_run(["sh", "-c", script]).exit_code == 0
    want = ["C /etc", "D /etc/group", "C /etc/passwd", "A /srv", "A /srv/a", "C /tmp",
            "A /tmp/new"]
    assert daemon.docker("diff", "differ", check=True).stdout.splitlines() == want
    assert corral(daemon, "diff", "differ").stdout.decode().splitlines() == want
    assert {"Path": "/etc/group", "Kind": 2} in c.diff()
    c.stop(timeout=0)
    assert daemon.docker("diff", "differ", check=True).stdout.splitlines() == want


def test_diff_of_a_tree_deeper_than_recursion_allows(dk: Any) -> None:
    c = dk.containers.run(IMAGE, ["sleep", "1d"], detach=True)
    script = "cd /tmp && for i in $(seq 1500); do mkdir d && cd d; done && touch leaf"
    assert c.exec_run(["sh", "-c", script]).exit_code == 0
    changes = c.diff()
    assert len(changes) == 1 + 1500 + 1  # /tmp, the levels, the leaf
    assert changes[-1] == {"Path": "/tmp/" + "d/" * 1500 + "leaf", "Kind": 1}


# ------------------------------------------------------------------ export


def _names(data: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return tar.getnames()


def test_export_is_the_merged_root_without_volumes(daemon: Daemon, dk: Any,
                                                   tmp_path: Path) -> None:
    c = dk.containers.run(IMAGE, ["sleep", "1d"], detach=True, name="exporter",
                          volumes={"expvol": {"bind": "/data"}})
    assert c.exec_run(["sh", "-c", "echo v > /data/in-volume && echo l > /in-layer && "
                       "rm /etc/group"]).exit_code == 0
    running = subprocess.run(["docker", "export", "exporter"], env=daemon.env(),
                             capture_output=True, check=True).stdout
    names = _names(running)
    assert "bin/busybox" in names and "in-layer" in names and "data" in names
    assert "data/in-volume" not in names and "etc/group" not in names
    assert b"".join(c.export()) == running  # docker-py
    c.stop(timeout=0)
    assert corral(daemon, "export", "-o", str(tmp_path / "x.tar"), "exporter").returncode == 0
    assert _names((tmp_path / "x.tar").read_bytes()) == names
    # nothing of the stopped container's view stays mounted
    assert str(daemon.root / "tmp") not in Path("/proc/self/mountinfo").read_text()
    res = corral(daemon, "export", "-o", "/no/such/dir/x.tar", "exporter")
    assert res.returncode == 1 and b"/no/such/dir" in res.stderr


# ------------------------------------------------------------------ wait --condition


def test_wait_conditions(daemon: Daemon, dk: Any) -> None:
    from supervisor.api.client import Client

    c = dk.containers.run(IMAGE, ["sh", "-c", "exit 3"], detach=True, name="waiter")
    assert dk.api.wait(c.id)["StatusCode"] == 3
    # not-running on a stopped container answers at once, from both CLIs
    assert corral(daemon, "wait", "--condition", "not-running", "waiter").stdout == b"3\n"
    assert daemon.docker("wait", "waiter", check=True).stdout == "3\n"
    res = corral(daemon, "wait", "--condition", "sometimes", "waiter")
    assert res.returncode == 1 and b'invalid condition: "sometimes"' in res.stderr
    # next-exit and removed: armed once the response head is in, then met
    api = Client(daemon.host)
    path = f"/containers/{c.id}/wait"
    nxt = api.request("POST", path, {"condition": "next-exit"})
    gone = api.request("POST", path, {"condition": "removed"})
    c.start()
    assert nxt.json()["StatusCode"] == 3
    c.remove()
    assert gone.json()["StatusCode"] == 3


# ------------------------------------------------------------------ port


def test_port_prints_as_docker_does(daemon: Daemon, dk: Any) -> None:
    dk.containers.run(IMAGE, ["sleep", "1d"], detach=True, name="ported",
                      ports={"80/tcp": 18380, "81/udp": ("127.0.0.1", 18381)})
    for args in ((), ("80",), ("81/udp",)):
        want = daemon.docker("port", "ported", *args, check=True).stdout
        assert corral(daemon, "port", "ported", *args).stdout.decode() == want
    assert want == "127.0.0.1:18381\n"
    res = corral(daemon, "port", "ported", "99")
    assert res.stderr == b"corral: No public port '99' published for ported\n"


def test_commit_of_a_tree_too_deep_is_refused_by_name(dk: Any) -> None:
    import docker

    c = dk.containers.run(IMAGE, ["sleep", "1d"], detach=True)
    script = "cd /tmp && for i in $(seq 1500); do mkdir d && cd d; done"
    assert c.exec_run(["sh", "-c", script]).exit_code == 0
    before = {i.id for i in dk.images.list(all=True)}
    with pytest.raises(docker.errors.APIError) as err:
        c.commit("toodeep", "v1")
    assert err.value.status_code == 400
    assert "more than 512 levels deep" in str(err.value)
    assert {i.id for i in dk.images.list(all=True)} == before


def test_management_groups_reach_the_new_verbs(daemon: Daemon, dk: Any) -> None:
    c = dk.containers.run(IMAGE, ["sleep", "1d"], detach=True, name="grouped")
    assert corral(daemon, "container", "rename", "grouped", "regrouped").returncode == 0
    assert corral(daemon, "container", "update", "--restart", "always",
                  "regrouped").returncode == 0
    c.reload()
    assert c.name == "regrouped" and c.attrs["HostConfig"]["RestartPolicy"]["Name"] == "always"
    assert b"sleep" in corral(daemon, "container", "top", "regrouped").stdout
    assert corral(daemon, "container", "diff", "regrouped").returncode == 0
    assert corral(daemon, "container", "prune", "-f").stdout == b"Total reclaimed space: 0B\n"
    assert corral(daemon, "image", "prune", "-f").stdout == b"Total reclaimed space: 0B\n"
    assert corral(daemon, "system", "df").stdout.startswith(b"TYPE ")
    assert corral(daemon, "system", "info").returncode == 0
