"""The engine through docker-py: the seed texts' story, with real containers."""

from __future__ import annotations

from typing import Any

import docker
import pytest

IMAGE = "busybox:latest"


def test_run_prints_output_and_container_remains(dk: Any) -> None:
    out = dk.containers.run(IMAGE, ["echo", "hi"])
    assert out == b"hi\n"
    # Without --rm a stopped container still exists (docker ps -a lists it).
    exited = dk.containers.list(all=True, filters={"status": "exited"})
    assert len(exited) == 1
    assert exited[0].attrs["State"]["ExitCode"] == 0


def test_run_remove_leaves_nothing(dk: Any) -> None:
    out = dk.containers.run(IMAGE, ["echo", "gone"], remove=True)
    assert out == b"gone\n"
    assert dk.containers.list(all=True) == []


def test_writable_layer_survives_stop_start_but_not_other_containers(dk: Any) -> None:
    c = dk.containers.run(IMAGE, ["sleep", "1d"], detach=True, name="keeper")
    assert c.exec_run(["sh", "-c", "echo kept > /tmp/note"]).exit_code == 0
    c.stop(timeout=0)
    c.start()
    res = c.exec_run(["cat", "/tmp/note"])
    assert (res.exit_code, res.output) == (0, b"kept\n")
    other = dk.containers.run(IMAGE, ["sh", "-c", "cat /tmp/note || echo absent"], remove=True)
    assert other == b"absent\n"


def test_exit_code_and_state(dk: Any) -> None:
    c = dk.containers.run(IMAGE, ["sh", "-c", "exit 7"], detach=True)
    assert c.wait()["StatusCode"] == 7
    c.reload()
    st = c.attrs["State"]
    assert st["Status"] == "exited" and st["ExitCode"] == 7 and not st["Running"]
    assert st["FinishedAt"] >= st["StartedAt"]


def test_stop_escalates_to_sigkill_after_timeout(dk: Any) -> None:
    # sh as PID 1 ignores SIGTERM (no handler), so stop must fall back to SIGKILL: 137.
    c = dk.containers.run(IMAGE, ["sleep", "1d"], detach=True)
    # Once exec works, PID 1 is `sleep` itself (not runc's init, which TERM would end).
    assert c.exec_run(["true"]).exit_code == 0
    c.stop(timeout=1)
    c.reload()
    assert c.attrs["State"]["ExitCode"] == 137


def test_stop_signal_handled_gives_clean_exit(dk: Any) -> None:
    script = "trap 'exit 0' TERM; echo ready; while true; do sleep 0.1; done"
    c = dk.containers.run(IMAGE, ["sh", "-c", script], detach=True)
    # Stop only once the trap is set (the first line says so), or TERM hits a bare PID 1.
    assert next(c.logs(stream=True, follow=True)) == b"ready\n"
    c.stop(timeout=30)
    c.reload()
    assert c.attrs["State"]["ExitCode"] == 0


def test_logs_keep_streams_and_tail(dk: Any) -> None:
    c = dk.containers.run(IMAGE, ["sh", "-c", "echo out1; echo err1 >&2; echo out2"], detach=True)
    c.wait()
    assert c.logs(stdout=True, stderr=False) == b"out1\nout2\n"
    assert c.logs(stdout=False, stderr=True) == b"err1\n"
    # --tail counts lines of both streams before filtering, as Docker's does.
    only_out = dk.containers.run(IMAGE, ["sh", "-c", "echo a; echo b; echo c"], detach=True)
    only_out.wait()
    assert only_out.logs(tail=2) == b"b\nc\n"
    assert only_out.logs(tail=0) == b""
    stamped = c.logs(timestamps=True).decode().splitlines()
    assert all(line.split(" ", 1)[0].endswith("Z") for line in stamped)


def test_logs_follow_sees_every_line_once(dk: Any) -> None:
    c = dk.containers.run(
        IMAGE, ["sh", "-c", "for i in $(seq 1 200); do echo line$i; done"], detach=True
    )
    lines = b"".join(c.logs(stream=True, follow=True)).decode().splitlines()
    assert lines == [f"line{i}" for i in range(1, 201)]


def test_pause_unpause(dk: Any) -> None:
    c = dk.containers.run(IMAGE, ["sleep", "1d"], detach=True)
    c.pause()
    c.reload()
    assert c.attrs["State"]["Status"] == "paused"
    c.unpause()
    c.reload()
    assert c.attrs["State"]["Status"] == "running"


def test_named_volume_outlives_container(dk: Any) -> None:
    # The seed's mongo-data example: delete and re-create, the data is still there.
    dk.containers.run(
        IMAGE,
        ["sh", "-c", "echo precious > /data/db"],
        volumes={"mongo-data": {"bind": "/data", "mode": "rw"}},
        remove=True,
    )
    out = dk.containers.run(
        IMAGE,
        ["cat", "/data/db"],
        volumes={"mongo-data": {"bind": "/data", "mode": "rw"}},
        remove=True,
    )
    assert out == b"precious\n"
    assert dk.volumes.get("mongo-data").name == "mongo-data"


def test_bind_mount_read_only(dk: Any, tmp_path: Any) -> None:
    (tmp_path / "f").write_text("host\n")
    out = dk.containers.run(
        IMAGE,
        ["sh", "-c", "cat /m/f; echo x > /m/g || echo refused"],
        volumes={str(tmp_path): {"bind": "/m", "mode": "ro"}},
        remove=True,
    )
    assert out.decode().splitlines()[0] == "host"
    assert out.decode().splitlines()[-1] == "refused"
    assert not (tmp_path / "g").exists()


def test_commit_makes_image_with_container_changes(dk: Any) -> None:
    c = dk.containers.run(IMAGE, ["sh", "-c", "echo baked > /etc/motd; rm /etc/group"], detach=True)
    c.wait()
    img = c.commit("mine", "v1")
    out = dk.containers.run(
        "mine:v1", ["sh", "-c", "cat /etc/motd; ls /etc/group || true"], remove=True, stderr=True
    )
    assert "baked\n" in out.decode()
    assert "No such file" in out.decode()
    assert len(img.attrs["RootFS"]["Layers"]) == 2
    # The original image is untouched.
    assert dk.containers.run(IMAGE, ["cat", "/etc/group"], remove=True).startswith(b"root:")


def test_rmi_refuses_image_in_use(dk: Any) -> None:
    c = dk.containers.run(IMAGE, ["true"], detach=True)
    c.wait()
    c.commit("inuse", "v1")
    user = dk.containers.create("inuse:v1", ["true"])
    with pytest.raises(docker.errors.APIError) as err:
        dk.images.remove("inuse:v1")
    assert err.value.status_code == 409
    user.remove()
    dk.images.remove("inuse:v1")


def test_unknown_image_is_404(dk: Any) -> None:
    with pytest.raises(docker.errors.ImageNotFound):
        dk.containers.create("nosuch:image", ["true"])


def test_name_conflict_is_409(dk: Any) -> None:
    dk.containers.create(IMAGE, ["true"], name="twin")
    with pytest.raises(docker.errors.APIError) as err:
        dk.containers.create(IMAGE, ["true"], name="twin")
    assert err.value.status_code == 409
    assert "twin" in str(err.value)


def test_remove_running_needs_force(dk: Any) -> None:
    c = dk.containers.run(IMAGE, ["sleep", "1d"], detach=True)
    with pytest.raises(docker.errors.APIError) as err:
        c.remove()
    assert err.value.status_code == 409
    c.remove(force=True)
    assert dk.containers.list(all=True) == []


def test_missing_command_fails_start_with_127(dk: Any) -> None:
    c = dk.containers.create(IMAGE, ["/no/such/cmd"])
    with pytest.raises(docker.errors.APIError) as err:
        c.start()
    assert "no such file" in str(err.value).lower() or "not found" in str(err.value).lower()
    c.reload()
    assert c.attrs["State"]["ExitCode"] == 127
    assert c.attrs["State"]["Status"] == "created"


def test_isolation_and_security_defaults(dk: Any) -> None:
    script = (
        "echo pid=$$; hostname; grep NoNewPrivs /proc/self/status; "
        "grep CapEff /proc/self/status; wc -c < /proc/timer_list; "
        "echo x > /proc/sys/kernel/hostname 2>/dev/null || echo sysro"
    )
    out = dk.containers.run(IMAGE, ["sh", "-c", script], hostname="box", remove=True).decode()
    assert "pid=1\n" in out
    assert "box\n" in out
    assert "NoNewPrivs:\t1" in out
    assert "CapEff:\t00000000a80425fb" in out
    assert "sysro" in out


def test_env_workdir_user_and_entrypoint(dk: Any) -> None:
    out = dk.containers.run(
        IMAGE,
        ["-c", "echo $FOO; pwd; id -u"],
        entrypoint=["sh"],
        environment={"FOO": "bar"},
        working_dir="/tmp",
        user="www-data",
        remove=True,
    )
    assert out == b"bar\n/tmp\n33\n"


def test_memory_and_pids_limits_reach_cgroups(dk: Any) -> None:
    c = dk.containers.run(IMAGE, ["sleep", "1d"], detach=True, mem_limit="64m", pids_limit=50)
    out = c.exec_run(
        [
            "sh",
            "-c",
            "cat /sys/fs/cgroup/memory/memory.limit_in_bytes "
            "/sys/fs/cgroup/memory.max /sys/fs/cgroup/pids/pids.max "
            "/sys/fs/cgroup/pids.max 2>/dev/null; true",
        ]
    ).output.decode()
    assert "67108864" in out
    assert "50" in out.split()
    c.remove(force=True)


def test_exec_exit_code_and_inspect(dk: Any) -> None:
    c = dk.containers.run(IMAGE, ["sleep", "1d"], detach=True)
    res = c.exec_run(["sh", "-c", "echo out; exit 5"])
    assert (res.exit_code, res.output) == (5, b"out\n")
    missing = c.exec_run(["nosuchcmd"])
    assert missing.exit_code == 127


def test_anonymous_volume_removed_with_rm_v(dk: Any) -> None:
    c = dk.containers.run(
        IMAGE, ["sh", "-c", "echo a > /scratch/f"], detach=True, volumes=["/scratch"]
    )
    c.wait()
    c.reload()
    (mount,) = c.attrs["Mounts"]
    assert mount["Type"] == "volume" and mount["Destination"] == "/scratch"
    assert len(mount["Name"]) == 64
    assert dk.volumes.get(mount["Name"])
    c.remove(v=True)
    assert [v.name for v in dk.volumes.list()] == []


def test_named_volume_kept_by_rm_v(dk: Any) -> None:
    c = dk.containers.run(IMAGE, ["true"], detach=True, volumes={"named": {"bind": "/n"}})
    c.wait()
    c.remove(v=True)
    assert [v.name for v in dk.volumes.list()] == ["named"]


def test_new_volume_gets_image_content(dk: Any) -> None:
    # Docker copies what the image has at the mount path into a new, empty volume.
    out = dk.containers.run(
        IMAGE, ["cat", "/var/www/index.html"], volumes={"site": {"bind": "/var/www"}}, remove=True
    )
    assert out == b"hello from corral\n"


def test_read_only_root_with_tmpfs_and_labels(dk: Any) -> None:
    c = dk.containers.run(
        IMAGE,
        ["sh", "-c", "touch /x 2>/dev/null || echo ro; touch /scratch/y && echo tmpfs"],
        read_only=True,
        tmpfs={"/scratch": "size=1m"},
        labels={"team": "core"},
        detach=True,
    )
    c.wait()
    assert c.logs() == b"ro\ntmpfs\n"
    assert c.labels == {"team": "core"}
    assert [x.id for x in dk.containers.list(all=True, filters={"label": "team=core"})] == [c.id]
    assert dk.containers.list(all=True, filters={"label": "team=other"}) == []


def test_cpus_become_cfs_quota(dk: Any) -> None:
    c = dk.containers.run(IMAGE, ["sleep", "1d"], detach=True, nano_cpus=500_000_000)
    out = c.exec_run(
        [
            "sh",
            "-c",
            "cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu.max 2>/dev/null; true",
        ]
    ).output.decode()
    assert "50000" in out
    c.remove(force=True)


def test_logs_since_filters_by_time(dk: Any) -> None:
    c = dk.containers.run(IMAGE, ["sh", "-c", "echo early"], detach=True)
    c.wait()
    finished = c.attrs  # refreshed below
    c.reload()
    finished = c.attrs["State"]["FinishedAt"]
    c.start()
    c.wait()
    assert c.logs() == b"early\nearly\n"
    from supervisor.engine.timefmt import parse_rfc3339

    assert c.logs(since=int(parse_rfc3339(finished)) + 1) in (b"", b"early\n")
    assert c.logs(since=int(parse_rfc3339(finished)) - 3600) == b"early\nearly\n"


def test_image_env_and_cmd_merge(dk: Any) -> None:
    base = dk.containers.run(IMAGE, ["true"], detach=True)
    base.wait()
    base.commit(
        "withcfg", "1", changes=["ENV GREETING=hello", 'CMD ["sh", "-c", "echo $GREETING"]']
    )
    assert dk.containers.run("withcfg:1", remove=True) == b"hello\n"
    assert dk.containers.run("withcfg:1", environment={"GREETING": "hi"}, remove=True) == b"hi\n"
    # A user entrypoint drops the image's Cmd, as in Docker.
    assert dk.containers.run("withcfg:1", entrypoint=["echo"], remove=True) == b"\n"


def test_concurrent_starts_of_one_container_start_it_once(dk: Any) -> None:
    import time
    from concurrent.futures import ThreadPoolExecutor

    c = dk.containers.create(IMAGE, ["sleep", "1d"])
    t0 = time.time()
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda _: dk.api.start(c.id), range(4)))  # 204 once, then 304s
    c.reload()
    assert c.attrs["State"]["Status"] == "running"
    assert c.exec_run(["true"]).exit_code == 0
    starts = [
        e
        for e in dk.events(
            since=t0, until=time.time(), decode=True, filters={"container": c.id, "event": "start"}
        )
    ]
    assert len(starts) == 1
    c.remove(force=True)
