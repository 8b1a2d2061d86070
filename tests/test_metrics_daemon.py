"""The exporter in a real daemon: /metrics (text and OpenMetrics), /healthz, promtool,
and a real Prometheus scraping it.

The session daemon runs without metrics; these tests start a private one with
`--metrics-addr` on a free loopback port.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    Daemon,
    assert_nothing_left,
    cgroup_parent,
    cleanup,
    session_dir,
    stop_daemon,
)
from prometheus_client.parser import text_string_to_metric_families

from supervisor.runtime import cgroups

IMAGE = "busybox:latest"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_metrics_daemon(root: Path, sock: Path, log: Path, addr: str) -> subprocess.Popen[bytes]:
    r, w = os.pipe()
    with log.open("ab") as logf:
        proc = subprocess.Popen(
            [sys.executable, "-m", "supervisor.daemon", "--root", str(root),
             "--host", f"unix://{sock}", "--ready-fd", str(w), "--log-level", "debug",
             "--cgroup-parent", cgroup_parent(root), "--metrics-addr", addr],
            stdin=subprocess.DEVNULL, stdout=logf, stderr=logf, pass_fds=(w,),
        )  # fmt: skip
    os.close(w)
    with os.fdopen(r, "rb") as ready:
        line = ready.readline()
    if line.strip() != b"ready":
        proc.kill()
        raise RuntimeError(f"daemon did not start; log:\n{log.read_text()}")
    return proc


class MetricsDaemon(Daemon):
    port: int

    def url(self, path: str = "/metrics") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def scrape(self, accept: str | None = None) -> tuple[str, str]:
        req = urllib.request.Request(self.url(), headers={"Accept": accept} if accept else {})
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.read().decode(), resp.headers["Content-Type"]

    def samples(self, name: str) -> list[tuple[dict[str, str], float]]:
        text, _ = self.scrape()
        return [
            (s.labels, s.value)
            for fam in text_string_to_metric_families(text)
            for s in fam.samples
            if s.name == name
        ]


@pytest.fixture(scope="module")
def mdaemon(rootfs_tar: Path) -> Iterator[MetricsDaemon]:
    if os.geteuid() != 0 or shutil.which("runc") is None:
        pytest.skip("needs root and runc")
    import tempfile

    work = session_dir(Path(tempfile.mkdtemp(prefix="corral-metrics-")))
    root, sock, log = work / "root", work / "d.sock", work / "d.log"
    port = free_port()
    proc = start_metrics_daemon(root, sock, log, f"127.0.0.1:{port}")
    d = MetricsDaemon(root=root, sock=sock, proc=proc, log=log)
    d.port = port
    client = d.client()
    client.api.import_image_from_data(rootfs_tar.read_bytes(), repository="busybox", tag="latest")
    try:
        yield d
    finally:
        cleanup(client)
        client.close()
        stop_daemon(proc)
        assert_nothing_left(root)
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture
def mdk(mdaemon: MetricsDaemon) -> Iterator[Any]:
    client = mdaemon.client()
    yield client
    cleanup(client)
    client.close()


def wait_for_starts(client: Any, cid: str, since: float, count: int) -> None:
    """Block until `cid` has started `count` times since `since` (events, not polling)."""
    seen = 0
    for _ in client.api.events(since=since, until=since + 60, decode=True,
                               filters={"container": cid, "event": "start"}):  # fmt: skip
        seen += 1
        if seen >= count:
            return
    raise AssertionError(f"container {cid[:12]} started {seen} times, wanted {count}")


def crash_once(client: Any, name: str) -> str:
    """A container that fails its first run and is restarted by its policy, then stays up."""
    t0 = time.time()
    c = client.containers.run(
        IMAGE, ["sh", "-c", "test -f /ran || { touch /ran; exit 3; }; exec sleep 1d"],
        name=name, detach=True, restart_policy={"Name": "on-failure"}, stop_signal="SIGKILL",
        labels={"com.docker.compose.service": "api"},
    )  # fmt: skip
    wait_for_starts(client, c.id, t0, 2)
    return str(c.id)


def of(samples: list[tuple[dict[str, str], float]], cid: str) -> list[tuple[dict[str, str], float]]:
    return [s for s in samples if s[0].get("id", "").endswith("/" + cid)]


def test_healthz_and_content_types(mdaemon: MetricsDaemon) -> None:
    with urllib.request.urlopen(mdaemon.url("/healthz"), timeout=10) as resp:
        assert resp.status == 200
        assert resp.read() == b"ok\n"
    text, ctype = mdaemon.scrape()
    assert ctype.startswith("text/plain; version=0.0.4")
    assert "corral_build_info{" in text and 'runtime="runc"' in text
    assert "process_cpu_seconds_total" in text
    om, octype = mdaemon.scrape("application/openmetrics-text; version=1.0.0")
    assert octype.startswith("application/openmetrics-text")
    assert om.rstrip().endswith("# EOF")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(mdaemon.url("/nope"), timeout=10)
    assert err.value.code == 404


def test_container_series_follow_the_container(mdaemon: MetricsDaemon, mdk: Any) -> None:
    c = mdk.containers.run(IMAGE, ["sleep", "1d"], name="worker", detach=True,
                           mem_limit="64m", nano_cpus=500_000_000,
                           labels={"com.docker.compose.project": "shop"})  # fmt: skip
    ((labels, cpu),) = of(mdaemon.samples("container_cpu_usage_seconds_total"), c.id)
    assert labels["name"] == "worker" and labels["image"] == IMAGE
    assert labels["container_label_com_docker_compose_project"] == "shop"
    assert cpu >= 0
    assert of(mdaemon.samples("container_spec_memory_limit_bytes"), c.id)[0][1] == 64 << 20
    assert of(mdaemon.samples("container_spec_cpu_quota"), c.id)[0][1] == 50000
    assert of(mdaemon.samples("container_spec_cpu_period"), c.id)[0][1] == 100000
    assert of(mdaemon.samples("container_memory_usage_bytes"), c.id)[0][1] > 0
    states = {lb["state"]: v for lb, v in of(mdaemon.samples("container_tasks_state"), c.id)}
    assert states["sleeping"] == 1
    ifaces = {lb["interface"] for lb, _ in
              of(mdaemon.samples("container_network_receive_bytes_total"), c.id)}  # fmt: skip
    assert ifaces == {"eth0"}  # the default bridge; lo is left out as cAdvisor does
    state = {lb["state"]: v for lb, v in of(mdaemon.samples("corral_container_state"), c.id)}
    assert state["running"] == 1 and sum(state.values()) == 1

    c.stop(timeout=1)
    assert of(mdaemon.samples("container_cpu_usage_seconds_total"), c.id) == []
    state = {lb["state"]: v for lb, v in of(mdaemon.samples("corral_container_state"), c.id)}
    assert state["exited"] == 1
    assert of(mdaemon.samples("corral_container_last_exit_code"), c.id)[0][1] == 137

    c.remove()
    text, _ = mdaemon.scrape()
    assert c.id not in text  # every series of a removed container is gone


def test_a_restarted_or_removed_container_is_not_shown_as_the_last_scrape_saw_it(
    mdaemon: MetricsDaemon, mdk: Any
) -> None:
    # An idle container's lines are kept from scrape to scrape while its files read the
    # same: a new run (same ID, same name) must show its own start, and a removal none.
    c = mdk.containers.run(IMAGE, ["sleep", "1d"], name="again", detach=True,
                           stop_signal="SIGKILL")  # fmt: skip
    ((_, first),) = of(mdaemon.samples("container_start_time_seconds"), c.id)
    again = of(mdaemon.samples("container_start_time_seconds"), c.id)  # lines kept
    assert [v for _, v in again] == [first]
    c.restart(timeout=0)
    ((_, second),) = of(mdaemon.samples("container_start_time_seconds"), c.id)
    assert second > first
    states = {lb["state"]: v for lb, v in of(mdaemon.samples("container_tasks_state"), c.id)}
    assert states["sleeping"] == 1

    c.remove(force=True)  # removed while running, right after a scrape kept its lines
    text, _ = mdaemon.scrape()
    assert c.id not in text


def test_a_pods_containers_carry_the_pod_label(mdaemon: MetricsDaemon, mdk: Any) -> None:
    from supervisor.pods.labels import INFRA_LABEL, INFRA_REF, POD_LABEL

    infra = mdk.containers.run(INFRA_REF, name="shop-infra", detach=True,
                               labels={POD_LABEL: "shop", INFRA_LABEL: "true"})
    member = mdk.containers.run(IMAGE, ["sleep", "1d"], name="shop-a", detach=True,
                                labels={POD_LABEL: "shop"})
    alone = mdk.containers.run(IMAGE, ["sleep", "1d"], name="alone", detach=True)
    for family in ("container_cpu_usage_seconds_total", "corral_container_state"):
        samples = mdaemon.samples(family)
        assert {lb.get("pod") for lb, _ in of(samples, member.id)} == {"shop"}, family
        assert {lb.get("pod") for lb, _ in of(samples, infra.id)} == {"shop"}, family
        assert {lb.get("pod") for lb, _ in of(samples, alone.id)} == {None}, family


def test_restarts_counter_is_not_reset_by_a_user_start(mdaemon: MetricsDaemon, mdk: Any) -> None:
    cid = crash_once(mdk, "crashy")
    ((labels, value),) = of(mdaemon.samples("corral_container_restarts_total"), cid)
    assert value == 1
    assert labels["container_label_com_docker_compose_service"] == "api"
    c = mdk.containers.get(cid)
    c.stop(timeout=1)
    c.start()
    assert mdk.containers.get(cid).attrs["RestartCount"] == 0  # Docker resets its count
    assert of(mdaemon.samples("corral_container_restarts_total"), cid)[0][1] == 1


def test_supervisor_counters(mdaemon: MetricsDaemon, mdk: Any) -> None:
    before = {lb["action"]: v for lb, v in mdaemon.samples("corral_events_total")
              if lb["type"] == "container"}  # fmt: skip
    starts_before = sum(v for lb, v in mdaemon.samples(
        "corral_container_start_duration_seconds_count"))  # fmt: skip
    c = mdk.containers.run(IMAGE, ["sh", "-c", "echo one; echo two; echo oops >&2"],
                           name="talker", detach=True)  # fmt: skip
    c.wait()
    mdk.containers.get("talker")  # an inspect for the API counters
    after = {lb["action"]: v for lb, v in mdaemon.samples("corral_events_total")
             if lb["type"] == "container"}  # fmt: skip
    assert after["create"] == before.get("create", 0) + 1
    assert after["die"] == before.get("die", 0) + 1
    starts = sum(v for _, v in mdaemon.samples("corral_container_start_duration_seconds_count"))
    assert starts == starts_before + 1
    lines = {lb["stream"]: v for lb, v in of(mdaemon.samples("corral_log_lines_total"), c.id)}
    assert lines == {"stdout": 2, "stderr": 1}
    nbytes = {lb["stream"]: v for lb, v in of(mdaemon.samples("corral_log_bytes_total"), c.id)}
    assert nbytes == {"stdout": len("one\ntwo\n"), "stderr": len("oops\n")}
    routes = {(lb["method"], lb["route"], lb["code"])
              for lb, _ in mdaemon.samples("corral_api_requests_total")}  # fmt: skip
    assert ("GET", "/containers/{id}/json", "200") in routes
    assert ("POST", "/containers/create", "201") in routes


def test_health_status_series(mdaemon: MetricsDaemon, mdk: Any) -> None:
    t0 = time.time()
    c = mdk.containers.run(IMAGE, ["sleep", "1d"], name="sick", detach=True,
                           healthcheck={"Test": ["CMD", "false"], "Interval": 100_000_000,
                                        "Retries": 1})  # fmt: skip
    for _ in mdk.api.events(since=t0, until=t0 + 60, decode=True,
                            filters={"container": c.id, "event": "health_status"}):  # fmt: skip
        if mdk.containers.get(c.id).attrs["State"]["Health"]["Status"] == "unhealthy":
            break
    health = {lb["status"]: v for lb, v in
              of(mdaemon.samples("corral_container_health_status"), c.id)}  # fmt: skip
    assert health == {"starting": 0, "healthy": 0, "unhealthy": 1}


def test_promtool_check_metrics_is_clean(mdaemon: MetricsDaemon, mdk: Any) -> None:
    if shutil.which("promtool") is None:
        pytest.skip("promtool not installed (Debian package prometheus)")
    mdk.containers.run(IMAGE, ["sleep", "1d"], name="linted", detach=True,
                       labels={"a.b-c": "1", "com.docker.compose.project": "p"})  # fmt: skip
    text, _ = mdaemon.scrape()
    res = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                         text=True, timeout=60)  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.strip() == "" and res.stderr.strip() == ""


def _cgroup_fds(pid: int) -> list[str]:
    """What the daemon's descriptors on cgroup files point at (from its /proc/PID/fd)."""
    out = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:  # closed meanwhile
            continue
        if target.startswith("/sys/fs/cgroup/"):
            out.append(target)
    return out


def test_scrapes_hold_few_files_per_container_and_close_them_at_exit(
    mdaemon: MetricsDaemon, mdk: Any
) -> None:
    pid = mdaemon.proc.pid
    mdaemon.scrape()
    before = sorted(_cgroup_fds(pid))
    c = mdk.containers.run(IMAGE, ["sh", "-c", "echo up; exec sleep 1d"], name="held",
                           detach=True, stop_signal="SIGKILL")  # fmt: skip
    assert of(mdaemon.samples("container_memory_usage_bytes"), c.id)
    held = [t for t in _cgroup_fds(pid) if c.id in t]
    assert 0 < len(held) <= cgroups.MAX_HELD  # the descriptor budget per container
    mdaemon.scrape()  # later scrapes read the same descriptors again
    assert sorted(t for t in _cgroup_fds(pid) if c.id in t) == sorted(held)

    c.stop(timeout=0)  # no scrape needed: the exit closes them
    assert [t for t in _cgroup_fds(pid) if c.id in t] == []
    c.start()  # a new run (a new cgroup): its files open at its first scrape
    # runc's init is multi-threaded until it execs the command: count tasks only once the
    # command has run (it has printed its second "up"), not right after `start` returns.
    lines = c.logs(stream=True, follow=True)
    assert [next(lines), next(lines)] == [b"up\n", b"up\n"]
    lines.close()
    states = {lb["state"]: v for lb, v in of(mdaemon.samples("container_tasks_state"), c.id)}
    assert states["sleeping"] == 1
    assert 0 < len([t for t in _cgroup_fds(pid) if c.id in t]) <= cgroups.MAX_HELD

    c.remove(force=True)
    assert [t for t in _cgroup_fds(pid) if c.id in t] == []
    assert sorted(_cgroup_fds(pid)) == before


def _prom_query(base: str, query: str) -> list[dict[str, Any]]:
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": query})
    with urllib.request.urlopen(url, timeout=10) as resp:
        body = json.loads(resp.read())
    assert body["status"] == "success", body
    return list(body["data"]["result"])


def _until(deadline: float, probe: Any) -> Any:
    """Poll an external system (Prometheus has no events to wait on) until `probe` answers."""
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = probe()
        except OSError as e:
            last = e
        else:
            if last:
                return last
        time.sleep(0.1)
    raise AssertionError(f"timed out; last answer: {last!r}")


def test_a_real_prometheus_scrapes_corral(mdaemon: MetricsDaemon, mdk: Any, tmp_path: Path) -> None:
    prometheus = shutil.which("prometheus")
    if prometheus is None:
        pytest.skip("prometheus not installed (Debian package prometheus)")
    cid = crash_once(mdk, "scraped")
    port = free_port()
    (tmp_path / "prometheus.yml").write_text(
        "global:\n  scrape_interval: 100ms\n  scrape_timeout: 100ms\n"
        "scrape_configs:\n  - job_name: corral\n    static_configs:\n"
        f"      - targets: ['127.0.0.1:{mdaemon.port}']\n"
    )
    proc = subprocess.Popen(
        [prometheus, f"--config.file={tmp_path / 'prometheus.yml'}",
         f"--storage.tsdb.path={tmp_path / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=(tmp_path / "prometheus.log").open("wb"),
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        cpu = _until(deadline, lambda: _prom_query(
            base, 'container_cpu_usage_seconds_total{name="scraped"}'))  # fmt: skip
        assert cpu[0]["metric"]["id"].endswith(cid)
        assert cpu[0]["metric"]["job"] == "corral"
        assert float(cpu[0]["value"][1]) >= 0
        restarts = _until(deadline, lambda: _prom_query(
            base, 'corral_container_restarts_total{name="scraped"}'))  # fmt: skip
        assert float(restarts[0]["value"][1]) == 1
        up = _prom_query(base, 'up{job="corral"}')
        assert float(up[0]["value"][1]) == 1
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_metrics_addr_rules(tmp_path: Path) -> None:
    bad = subprocess.run(
        [sys.executable, "-m", "supervisor.daemon", "--root", str(tmp_path / "r"),
         "--metrics-addr", "nowhere"], capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert bad.returncode == 2
    assert "'nowhere'" in bad.stderr and "host:port" in bad.stderr
    assert not (tmp_path / "r").exists()  # nothing made


def test_a_busy_metrics_port_does_not_stop_the_daemon(
    mdaemon: MetricsDaemon, tmp_path: Path
) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    root, sock, log = tmp_path / "root", tmp_path / "d.sock", tmp_path / "d.log"
    proc = start_metrics_daemon(root, sock, log, f"127.0.0.1:{mdaemon.port}")
    try:
        d = Daemon(root=root, sock=sock, proc=proc, log=log)
        assert d.client().ping()
        assert "metrics.listen_failed" in log.read_text()
    finally:
        stop_daemon(proc)
    assert_nothing_left(root)


def test_an_update_shows_in_the_next_scrape(mdaemon: MetricsDaemon, mdk: Any) -> None:
    """The limits a scrape reads once per container are read anew after `docker update`."""
    c = mdk.containers.run(IMAGE, ["sleep", "1d"], detach=True, mem_limit="64m",
                           nano_cpus=500_000_000)  # fmt: skip
    assert of(mdaemon.samples("container_spec_memory_limit_bytes"), c.id)[0][1] == 64 << 20
    body = {"Memory": 96 << 20, "MemorySwap": 192 << 20, "NanoCpus": 1_500_000_000}
    res = mdk.api._post_json(mdk.api._url("/containers/{0}/update", c.id), data=body)
    assert mdk.api._result(res, True) == {"Warnings": []}
    assert of(mdaemon.samples("container_spec_memory_limit_bytes"), c.id)[0][1] == 96 << 20
    assert of(mdaemon.samples("container_spec_cpu_quota"), c.id)[0][1] == 150000


def test_rollouts_counted_by_result(mdaemon: MetricsDaemon, mdk: Any) -> None:
    """`corral_rollouts_total{result}`: every series from the start, one count per
    rollout end the executor reports (here through the routes it uses)."""
    before = {lb["result"]: v for lb, v in mdaemon.samples("corral_rollouts_total")}
    assert set(before) == {"succeeded", "failed", "rolled_back"}
    old = mdk.containers.create(IMAGE, ["sleep", "1000"])
    new = mdk.containers.create(IMAGE, ["sleep", "1000"])
    api = mdk.api
    for result in ("succeeded", "rolled_back", "rolled_back"):
        body = {"Project": "p", "Service": "s", "From": old.id, "To": new.id}
        answer = api._result(api._post_json(api._url("/corral/rollouts"), data=body), True)
        end = api._url(f"/corral/rollouts/{answer['Id']}/end")
        api._raise_for_status(api._post_json(end, data={"Result": result}))
    bad = api._post_json(api._url("/corral/rollouts/nope/end"), data={"Result": "succeeded"})
    assert bad.status_code == 404
    after = {lb["result"]: v for lb, v in mdaemon.samples("corral_rollouts_total")}
    assert after["succeeded"] - before["succeeded"] == 1
    assert after["rolled_back"] - before["rolled_back"] == 2
    assert after["failed"] == before["failed"]
