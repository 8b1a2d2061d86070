"""The seed story through the real `docker` CLI talking to a corral daemon.

Every assertion is on what a user of `docker` sees: its output and its exit code.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from conftest import Daemon

IMAGE = "busybox:latest"
SIZE = re.compile(r"^\d+(\.\d+)?(B|kB|MB|GB)$")


def run_stdin(corral: Daemon, *args: str, input: str) -> subprocess.CompletedProcess[str]:
    """docker with stdin; a hang (input never reaching the container) is a failure."""
    try:
        return corral.docker(*args, input=input, timeout=30)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"docker {' '.join(args)} hung: stdin never reached the "
                             "container or its end was not passed on") from None


def ok(corral: Daemon, *args: str, input: str | None = None) -> str:
    """Run docker; it must succeed; return its stdout."""
    r = corral.docker(*args, input=input)
    assert r.returncode == 0, f"docker {' '.join(args)} -> {r.returncode}: {r.stderr}"
    return r.stdout


def status(corral: Daemon, ctr: str) -> str:
    return ok(corral, "inspect", "-f", "{{.State.Status}}", ctr).strip()


def ps_names(corral: Daemon, *flags: str) -> dict[str, str]:
    """name -> STATUS column of `docker ps` (with the given flags)."""
    out = ok(corral, "ps", *flags, "--format", "{{.Names}}\t{{.Status}}")
    return dict(line.split("\t", 1) for line in out.splitlines() if line)


def start_web(corral: Daemon, name: str = "web1") -> str:
    return ok(corral, "run", "-d", "--name", name, IMAGE, "httpd", "-f", "-p", "3000").strip()


# --- images -----------------------------------------------------------------------


def test_images_lists_busybox_with_size(corral: Daemon) -> None:
    out = ok(corral, "images")
    header, *rows = out.splitlines()
    assert header.split()[:2] == ["REPOSITORY", "TAG"]
    row = next(r.split() for r in rows if r.split()[:2] == ["busybox", "latest"])
    assert SIZE.match(row[-1]), row
    fmt = ok(corral, "images", "--format", "{{.Repository}}:{{.Tag}} {{.Size}}")
    sizes = dict(line.split() for line in fmt.splitlines())
    assert SIZE.match(sizes[IMAGE]) and sizes[IMAGE] != "0B"


def test_inspect_image_json(corral: Daemon) -> None:
    data = json.loads(ok(corral, "inspect", "busybox"))
    assert len(data) == 1
    assert data[0]["Id"].startswith("sha256:") and len(data[0]["Id"]) == 71
    assert IMAGE in data[0]["RepoTags"]
    assert data[0]["Size"] > 0


def test_tag_and_history(corral: Daemon) -> None:
    ok(corral, "tag", "busybox", "mybox:2")
    ids = ok(corral, "images", "-q", "--no-trunc", "mybox:2").split()
    assert ids == ok(corral, "images", "-q", "--no-trunc", "busybox:latest").split()
    assert ok(corral, "run", "--rm", "mybox:2", "echo", "tagged") == "tagged\n"
    hist = ok(corral, "history", "busybox").splitlines()
    assert hist[0].split()[:3] == ["IMAGE", "CREATED", "CREATED"]
    assert len(hist) >= 2
    hist_q = ok(corral, "history", "-q", "--no-trunc", "busybox").split()
    assert ids[0] in hist_q


def test_import_tarball_under_another_name(corral: Daemon, rootfs_tar: Path) -> None:
    out = ok(corral, "import", str(rootfs_tar), "imported:1")
    assert out.strip().startswith("sha256:")
    assert ok(corral, "images", "-q", "imported:1").strip()
    assert ok(corral, "run", "--rm", "imported:1", "echo", "from-import") == "from-import\n"


def test_import_from_stdin(corral: Daemon, rootfs_tar: Path) -> None:
    with rootfs_tar.open("rb") as f:
        r = subprocess.run(["docker", "import", "-", "piped:1"], stdin=f, env=corral.env(),
                           capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert ok(corral, "run", "--rm", "piped:1", "cat", "/etc/hostname") != ""


# --- run ----------------------------------------------------------------------------


def test_run_rm_prints_and_leaves_no_container(corral: Daemon) -> None:
    before = ok(corral, "ps", "-aq").split()
    r = corral.docker("run", "--rm", IMAGE, "echo", "hi")
    assert (r.returncode, r.stdout) == (0, "hi\n"), r.stderr
    assert ok(corral, "ps", "-aq").split() == before


def test_run_returns_container_exit_code(corral: Daemon) -> None:
    r = corral.docker("run", IMAGE, "sh", "-c", "exit 3")
    assert r.returncode == 3, r.stderr
    r = corral.docker("run", "--rm", IMAGE, "false")
    assert r.returncode == 1, r.stderr


def test_run_without_rm_keeps_exited_container(corral: Daemon) -> None:
    ok(corral, "run", "--name", "once", IMAGE, "true")
    assert ps_names(corral, "-a")["once"].startswith("Exited (0)")
    assert "once" not in ps_names(corral)


def test_run_interactive_stdin_echoed(corral: Daemon) -> None:
    text = "hello\nworld\n" + "x" * 100000 + "\n"
    r = run_stdin(corral, "run", "-i", "--rm", IMAGE, "cat", input=text)
    assert r.returncode == 0, r.stderr
    assert r.stdout == text


def test_run_interactive_exit_code_after_stdin(corral: Daemon) -> None:
    r = run_stdin(corral, "run", "-i", "--rm", IMAGE, "sh", "-c", "wc -l; exit 5",
                  input="a\nb\nc\n")
    assert r.returncode == 5, r.stderr
    assert r.stdout.strip() == "3"


# --- detached lifecycle -------------------------------------------------------------


def test_detached_ps_stop_ps_a(corral: Daemon) -> None:
    cid = start_web(corral)
    assert re.fullmatch(r"[0-9a-f]{64}", cid)
    assert ps_names(corral)["web1"].startswith("Up")
    assert ok(corral, "ps", "-q").split() == [cid[:12]]
    assert ok(corral, "stop", "-t", "1", "web1").strip() == "web1"
    assert "web1" not in ps_names(corral)
    assert re.match(r"Exited \(\d+\) ", ps_names(corral, "-a")["web1"])
    assert status(corral, "web1") == "exited"
    exited = ok(corral, "ps", "-a", "--filter", "status=exited", "--format", "{{.Names}}")
    assert exited.split() == ["web1"]
    assert ok(corral, "ps", "--filter", "status=running", "-q") == ""


def test_ps_filter_status_and_quiet(corral: Daemon) -> None:
    running = start_web(corral, "runner")
    done = ok(corral, "run", "-d", IMAGE, "true").strip()
    assert ok(corral, "wait", done).strip() == "0"
    assert ok(corral, "ps", "-q", "--no-trunc").split() == [running]
    assert sorted(ok(corral, "ps", "-aq", "--no-trunc").split()) == sorted([running, done])
    assert ok(corral, "ps", "-aq", "--no-trunc", "--filter", "status=exited").split() == [done]
    assert ok(corral, "ps", "-aq", "--no-trunc", "--filter", "status=running").split() == [
        running]


def test_start_keeps_writable_layer(corral: Daemon) -> None:
    start_web(corral)
    ok(corral, "exec", "web1", "sh", "-c", "echo persisted > /srv-note")
    ok(corral, "stop", "-t", "1", "web1")
    assert ok(corral, "start", "web1").strip() == "web1"
    assert status(corral, "web1") == "running"
    assert ok(corral, "exec", "web1", "cat", "/srv-note") == "persisted\n"
    # ... and it belongs to that container only.
    r = corral.docker("run", "--rm", IMAGE, "cat", "/srv-note")
    assert r.returncode == 1 and r.stdout == ""


def test_logs_and_logs_follow(corral: Daemon) -> None:
    start_web(corral)
    ok(corral, "exec", "web1", "true")
    n = 300
    cid = ok(corral, "run", "-d", IMAGE, "sh", "-c",
             f"for i in $(seq 1 {n}); do echo line$i; done; echo bye >&2").strip()
    # -f ends by itself when the container exits; every line exactly once, in order.
    r = corral.docker("logs", "-f", cid, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [f"line{i}" for i in range(1, n + 1)]
    assert r.stderr == "bye\n"
    r = corral.docker("logs", cid)
    assert r.stdout.count("\n") == n and r.stderr == "bye\n"
    # --tail counts the last lines of both streams together (Docker's json-file does
    # too), and the order of lines across the two pipes is not fixed: `bye` may or may
    # not be among the last two.
    r = corral.docker("logs", "--tail", "2", cid)
    last_two = r.stdout.splitlines() + r.stderr.splitlines()
    assert sorted(last_two) in (sorted([f"line{n - 1}", f"line{n}"]), sorted([f"line{n}", "bye"]))
    # httpd -f writes nothing: logs of web1 are empty but work.
    r = corral.docker("logs", "web1")
    assert (r.returncode, r.stdout) == (0, "")


def test_logs_follow_of_running_container_sees_later_lines(corral: Daemon) -> None:
    # The container waits for a file that exec creates after `logs -f` has started.
    script = "echo first; while [ ! -e /go ]; do sleep 0.05; done; echo second"
    cid = ok(corral, "run", "-d", IMAGE, "sh", "-c", script).strip()
    follower = subprocess.Popen(["docker", "logs", "-f", cid], env=corral.env(),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert follower.stdout is not None
        assert follower.stdout.readline() == "first\n"
        ok(corral, "exec", cid, "touch", "/go")
        out, err = follower.communicate(timeout=60)
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()
    assert (follower.returncode, out) == (0, "second\n"), err


def test_exec_ls_and_exit_codes(corral: Daemon) -> None:
    start_web(corral)
    listing = ok(corral, "exec", "web1", "ls", "/").split()
    assert {"bin", "etc", "proc", "tmp"} <= set(listing)
    assert corral.docker("exec", "web1", "sh", "-c", "exit 42").returncode == 42
    r = corral.docker("exec", "web1", "sh", "-c", "echo err >&2; exit 1")
    assert (r.returncode, r.stderr) == (1, "err\n")
    r = run_stdin(corral, "exec", "-i", "web1", "cat", input="piped\n")
    assert (r.returncode, r.stdout) == (0, "piped\n"), r.stderr
    ok(corral, "stop", "-t", "1", "web1")
    r = corral.docker("exec", "web1", "true")
    assert r.returncode != 0 and "is not running" in r.stderr


def test_commit_then_run_new_image(corral: Daemon) -> None:
    start_web(corral)
    ok(corral, "exec", "web1", "sh", "-c", "echo committed > /etc/motd-corral")
    out = ok(corral, "commit", "web1", "mine:v1")
    assert out.strip().startswith("sha256:")
    assert ok(corral, "run", "--rm", "mine:v1", "cat", "/etc/motd-corral") == "committed\n"
    # busybox itself is unchanged.
    assert corral.docker("run", "--rm", IMAGE, "cat", "/etc/motd-corral").returncode == 1
    # rmi: untag and delete, with docker's wording.
    r = corral.docker("rmi", "mine:v1")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "Untagged: mine:v1"
    assert any(re.fullmatch(r"Deleted: sha256:[0-9a-f]{64}", ln) for ln in lines[1:])
    assert ok(corral, "images", "-q", "mine") == ""
    assert corral.docker("run", "--rm", "--pull", "never", "mine:v1", "true").returncode == 125


def test_named_volume_shared_between_containers(corral: Daemon) -> None:
    assert ok(corral, "volume", "create", "data").strip() == "data"
    ok(corral, "run", "--rm", "-v", "data:/data", IMAGE, "sh", "-c", "echo x > /data/f")
    assert ok(corral, "run", "--rm", "-v", "data:/data", IMAGE, "cat", "/data/f") == "x\n"
    assert ok(corral, "volume", "ls", "-q").split() == ["data"]
    info = json.loads(ok(corral, "volume", "inspect", "data"))
    assert info[0]["Name"] == "data" and info[0]["Driver"] == "local"
    assert (Path(info[0]["Mountpoint"]) / "f").read_text() == "x\n"


def test_volume_rm_and_prune(corral: Daemon) -> None:
    ok(corral, "volume", "create", "keep")
    ok(corral, "volume", "create", "drop")
    ok(corral, "volume", "create", "unused")
    ok(corral, "create", "--name", "holder", "-v", "keep:/k", IMAGE, "true")
    assert ok(corral, "volume", "rm", "drop").strip() == "drop"
    r = corral.docker("volume", "rm", "keep")
    assert r.returncode == 1 and "keep" in r.stderr and "in use" in r.stderr
    # Since API 1.42 a plain prune removes only anonymous volumes; -a removes named too.
    ok(corral, "volume", "prune", "-f")
    assert sorted(ok(corral, "volume", "ls", "-q").split()) == ["keep", "unused"]
    out = ok(corral, "volume", "prune", "-af")
    assert "unused" in out
    assert ok(corral, "volume", "ls", "-q").split() == ["keep"]
    r = corral.docker("volume", "inspect", "unused")
    assert r.returncode == 1 and "no such volume" in r.stderr.lower()


def test_rm_force_running(corral: Daemon) -> None:
    start_web(corral)
    assert ok(corral, "rm", "-f", "web1").strip() == "web1"
    assert ok(corral, "ps", "-aq") == ""
    r = corral.docker("inspect", "web1")
    assert r.returncode == 1 and "No such object: web1" in r.stderr


def test_inspect_state_status_format(corral: Daemon) -> None:
    ok(corral, "create", "--name", "fresh", IMAGE, "true")
    assert status(corral, "fresh") == "created"
    ok(corral, "start", "-a", "fresh")
    assert status(corral, "fresh") == "exited"
    data = json.loads(ok(corral, "inspect", "fresh"))
    assert data[0]["Name"] == "/fresh" and data[0]["State"]["ExitCode"] == 0


def test_pause_unpause(corral: Daemon) -> None:
    start_web(corral)
    assert ok(corral, "pause", "web1").strip() == "web1"
    assert status(corral, "web1") == "paused"
    assert "(Paused)" in ps_names(corral)["web1"]
    assert ok(corral, "unpause", "web1").strip() == "web1"
    assert status(corral, "web1") == "running"
    assert ok(corral, "exec", "web1", "echo", "alive") == "alive\n"


def test_kill_restart_wait(corral: Daemon) -> None:
    start_web(corral)
    pid1 = ok(corral, "inspect", "-f", "{{.State.Pid}}", "web1").strip()
    assert ok(corral, "restart", "-t", "1", "web1").strip() == "web1"
    assert status(corral, "web1") == "running"
    pid2 = ok(corral, "inspect", "-f", "{{.State.Pid}}", "web1").strip()
    assert pid2 != pid1 and pid2 != "0"
    assert ok(corral, "kill", "web1").strip() == "web1"
    assert ok(corral, "wait", "web1").strip() == "137"
    assert status(corral, "web1") == "exited"
    assert ok(corral, "inspect", "-f", "{{.State.ExitCode}}", "web1").strip() == "137"
    cid = ok(corral, "run", "-d", IMAGE, "sh", "-c", "exit 4").strip()
    assert ok(corral, "wait", cid).strip() == "4"
    # kill with a signal the process handles.
    cid = ok(corral, "run", "-d", IMAGE, "sh", "-c",
             "trap 'exit 9' USR1; echo ready; while true; do sleep 0.05; done").strip()
    # Signal only once the trap is set (PID 1 ignores a signal it has no handler for).
    follower = subprocess.Popen(["docker", "logs", "-f", cid], env=corral.env(),
                                stdout=subprocess.PIPE, text=True)
    try:
        assert follower.stdout is not None and follower.stdout.readline() == "ready\n"
    finally:
        follower.kill()
        follower.wait()
    ok(corral, "kill", "-s", "USR1", cid)
    assert ok(corral, "wait", cid).strip() == "9"


def test_version_and_info(corral: Daemon) -> None:
    out = ok(corral, "version")
    server = out[out.index("Server:"):]
    assert re.search(r"API version:\s+1\.44\b", server), out
    assert ok(corral, "version", "--format", "{{.Server.APIVersion}}").strip() == "1.44"
    r = corral.docker("info")
    assert r.returncode == 0, r.stderr
    assert "Server:" in r.stdout
    start_web(corral)
    assert ok(corral, "info", "--format", "{{.ContainersRunning}}").strip() == "1"


def test_layers_shared_between_tags_and_containers(corral: Daemon) -> None:
    layers = corral.root / "layers"

    def count() -> int:
        return sum(1 for p in layers.iterdir() if p.is_dir())

    before = count()
    assert before >= 1
    ok(corral, "tag", "busybox:latest", "other:1")
    for i in range(5):
        ok(corral, "create", "--name", f"share{i}", "other:1" if i % 2 else IMAGE, "true")
    assert count() == before
    ok(corral, "start", "-a", "share1")
    assert count() == before
