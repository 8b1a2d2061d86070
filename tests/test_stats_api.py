"""`GET /containers/{id}/stats`, `corral stats` and `docker stats` against real containers."""

from __future__ import annotations

from typing import Any

from conftest import Daemon

IMAGE = "busybox:latest"


def test_docker_py_stats_one_shot_and_with_precpu(dk: Any) -> None:
    c = dk.containers.run(IMAGE, ["sleep", "1d"], name="statme", detach=True, mem_limit="64m",
                          pids_limit=50)  # fmt: skip
    s = c.stats(stream=False)
    assert s["name"] == "/statme" and s["id"] == c.id
    assert s["memory_stats"]["limit"] == 64 << 20
    assert s["memory_stats"]["usage"] > 0
    assert s["pids_stats"] == {"current": 1, "limit": 50}
    assert s["cpu_stats"]["cpu_usage"]["total_usage"] > 0
    # not one-shot: a second reading a second later, so the CPU % can be computed
    assert s["precpu_stats"]["system_cpu_usage"] < s["cpu_stats"]["system_cpu_usage"]
    assert "eth0" in s["networks"]
    one = dk.api.stats(c.id, stream=False, one_shot=True)
    assert one["precpu_stats"]["cpu_usage"]["total_usage"] == 0


def test_streamed_stats_end_when_the_container_stops(dk: Any) -> None:
    c = dk.containers.run(IMAGE, ["sleep", "1d"], name="streamy", detach=True)
    stream = c.stats(stream=True, decode=True)
    first = next(stream)
    assert first["read"] != "0001-01-01T00:00:00Z"
    second = next(stream)
    assert (
        second["precpu_stats"]["cpu_usage"]["total_usage"]
        == (first["cpu_stats"]["cpu_usage"]["total_usage"])
    )
    c.kill()
    rest = list(stream)  # ends instead of streaming forever
    assert rest[-1]["read"] == "0001-01-01T00:00:00Z"


def test_stats_of_a_missing_container_is_404(dk: Any) -> None:
    import docker

    try:
        dk.api.stats("nosuch", stream=False)
    except docker.errors.NotFound as e:
        assert "No such container: nosuch" in str(e)
    else:
        raise AssertionError("expected 404")


def test_corral_and_docker_stats_no_stream(corral: Daemon, dk: Any) -> None:
    dk.containers.run(IMAGE, ["sleep", "1d"], name="s1", detach=True, mem_limit="32m")
    dk.containers.run(IMAGE, ["sleep", "1d"], name="s2", detach=True)
    dk.containers.create(IMAGE, ["true"], name="s3")  # not running: not listed
    out = corral.cli("stats", "--no-stream")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert " ".join(lines[0].split()) == (
        "CONTAINER ID NAME CPU % MEM USAGE / LIMIT MEM % NET I/O BLOCK I/O PIDS"
    )
    names = {line.split()[1] for line in lines[1:]}
    assert names == {"s1", "s2"}
    s1 = next(line for line in lines if line.split()[1] == "s1")
    assert "/ 32MiB" in s1 and s1.split()[-1] == "1"
    d = corral.docker("stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}} {{.PIDs}}",
                      "s1")  # fmt: skip
    assert d.returncode == 0, d.stderr
    name, usage, slash, limit, pids = d.stdout.split()
    assert (name, slash, limit, pids) == ("s1", "/", "32MiB", "1")
    missing = corral.cli("stats", "--no-stream", "nosuch")
    assert missing.returncode == 1
    assert "No such container: nosuch" in missing.stderr


def test_stats_streams_until_interrupted_in_both_clis(corral: Daemon, dk: Any) -> None:
    """`stats` without --no-stream keeps printing tables (docker's default); `top`,
    as docker 28's, does not stream: one table and done."""
    import subprocess
    import sys

    dk.containers.run(IMAGE, ["sleep", "1d"], name="live1", detach=True)
    for argv in (
        [sys.executable, "-m", "supervisor", "stats", "--format", "{{.Name}}", "live1"],
        ["docker", "stats", "--format", "{{.Name}}", "live1"],
    ):
        p = subprocess.Popen(argv, env=corral.env(), stdout=subprocess.PIPE, text=True)
        try:
            assert p.stdout is not None
            seen = 0
            for line in p.stdout:  # a frame per reading; the stream does not end by itself
                seen += "live1" in line
                if seen == 3:
                    break
            assert seen == 3 and p.poll() is None, argv
        finally:
            p.kill()  # (the docker CLI leaves SIGTERM to its stream's end)
            p.wait(timeout=30)
    for run in (corral.cli, corral.docker):
        r = run("top", "live1", "-o", "pid,comm")
        assert r.returncode == 0 and r.stdout.splitlines()[0].split() == ["PID", "COMMAND"]
        assert r.stdout.count("sleep") == 1
        r = run("top", "nosuch")
        assert r.returncode == 1 and "No such container: nosuch" in r.stderr
