"""Interactive terminals as a person uses them: `run -it`, `exec -it`, `attach`, detach
keys, resizes, Ctrl-C, piped stdin; through the corral CLI, the docker CLI and docker-py.

The terminals are real (tmux, tests/tmuxterm.py): keys are typed, the screen is read.
After every session the client's terminal must be cooked again (`stty -a`).
"""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import IMAGE, Daemon
from tmuxterm import Terminal, client_pid, kill_server, sane

CORRAL = [sys.executable, "-m", "supervisor"]


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[str]:
    sock = str(tmp_path / "tmux.sock")
    yield sock
    kill_server(sock)


def term(tmux: str, corral: Daemon, argv: list[str], name: str = "t", **size: int) -> Terminal:
    env = {
        "CORRAL_HOST": corral.host,
        "DOCKER_HOST": corral.host,
        "PYTHONPATH": str(Path(__file__).parent.parent),
        "HOME": os.environ.get("HOME", "/root"),
        "TERM": "xterm",
    }
    return Terminal(tmux, argv, env, name=name, **size)


PROMPT = r"/ # $"  # busybox sh, waiting for a command


def shell(tmux: str, corral: Daemon, argv: list[str], name: str = "t", **size: int) -> Terminal:
    """A terminal whose client (`argv`) got busybox's shell to its prompt."""
    t = term(tmux, corral, argv, name=name, **size)
    t.wait_for_screen(PROMPT)
    return t


def run_it(tmux: str, corral: Daemon, *flags: str, name: str = "t", **size: int) -> Terminal:
    """`corral run -it FLAGS busybox sh` on a terminal, at its prompt."""
    return shell(tmux, corral, [*CORRAL, "run", "-it", *flags, IMAGE, "sh"], name, **size)


def ends(t: Terminal, code: int) -> None:
    """The client exits with `code` and leaves its terminal cooked (raw mode undone)."""
    got, stty = t.finished()
    assert got == code, t.screen()
    assert sane(stty), stty


def inspect(dk: Any, name: str) -> dict[str, Any]:
    result: dict[str, Any] = dk.api.inspect_container(name)
    return result


# ------------------------------------------------------------------ corral run -it
def test_run_it_is_a_shell_on_a_terminal(tmux: str, corral: Daemon) -> None:
    t = run_it(tmux, corral, "--rm")
    t.type("echo $((6*7)); tty")
    t.wait_for_screen(r"^42\s*\n/dev/pts/\d+")
    t.type("exit 3")
    ends(t, 3)  # the container's exit code


def test_stty_size_tells_the_truth_after_a_resize(tmux: str, corral: Daemon) -> None:
    t = run_it(tmux, corral, "--rm", width=80, height=24)
    t.type("stty size")
    t.wait_for_screen(r"^24 80\s*$")
    t.resize(100, 30)
    t.type("stty size")
    t.wait_for_screen(r"^30 100\s*$")
    t.type("exit")
    ends(t, 0)


def test_vi_opens_full_screen_and_quits_cleanly(tmux: str, corral: Daemon) -> None:
    t = run_it(tmux, corral, "--rm", width=80, height=24)
    t.type("vi /tmp/note")
    t.wait_for_screen(r"^~\s*\n(~\s*\n){15,}")  # vi drew its whole screen (24 rows)
    t.send("i")
    t.send("-l", "written in vi")
    t.wait_for_screen(r"^I /tmp/note")  # insert mode, on vi's status line
    t.send("Escape")
    t.wait_for_screen(r"^- /tmp/note")  # command mode again (vi read ESC alone)
    t.type(":wq")
    t.wait_for_screen(PROMPT)
    t.type("cat /tmp/note; echo cat-$?")
    t.wait_for_screen(r"^written in vi\s*\ncat-0")
    t.type("exit")
    ends(t, 0)


def test_ctrl_c_stops_the_foreground_process_not_the_client(
    tmux: str, corral: Daemon, dk: Any
) -> None:
    t = run_it(tmux, corral, "--name", "cc")
    t.type("sleep 1000")
    t.wait_for_screen(r"sleep 1000\s*\n")
    t.send("C-c")
    t.wait_for_screen(r"\^C\s*\n/ # $")  # SIGINT ended sleep; the shell goes on
    t.type("echo alive-$?-$((2+3))")
    t.wait_for_screen(r"^alive-130-5")
    assert inspect(dk, "cc")["State"]["Running"]
    t.type("exit 0")
    ends(t, 0)


def test_detach_keys_leave_it_running_and_attach_comes_back(
    tmux: str, corral: Daemon, dk: Any
) -> None:
    t = run_it(tmux, corral, "--name", "dt")
    t.type("echo first-$((1+1))")
    t.wait_for_screen(r"^first-2")
    t.send("C-p", "C-q")
    ends(t, 0)
    assert inspect(dk, "dt")["State"]["Running"]  # a detach is not a stop

    back = term(tmux, corral, [*CORRAL, "attach", "dt"], name="back")
    back.type("echo back-$((2*2))")
    back.wait_for_screen(r"^back-4")  # the same shell: its session came back
    back.type("exit 5")
    ends(back, 5)
    assert inspect(dk, "dt")["State"]["ExitCode"] == 5


def test_detach_keys_from_the_flag_and_from_docker_config(
    tmux: str, corral: Daemon, dk: Any, tmp_path: Path
) -> None:
    t = run_it(tmux, corral, "--detach-keys", "ctrl-x", "--name", "dk1")
    t.send("C-p", "C-q")  # not the keys any more: the shell gets them
    t.type("echo still-$((3*3))")
    t.wait_for_screen(r"^still-9")
    t.send("C-x")
    ends(t, 0)
    assert inspect(dk, "dk1")["State"]["Running"]

    config = tmp_path / "dockercfg"
    config.mkdir()
    (config / "config.json").write_text('{"detachKeys": "ctrl-a,d"}')
    env_argv = ["env", f"DOCKER_CONFIG={config}", *CORRAL, "attach", "dk1"]
    a = term(tmux, corral, env_argv, name="cfg")
    a.type("echo cfg-$((4*4))")
    a.wait_for_screen(r"^cfg-16")
    a.send("C-a", "d")
    ends(a, 0)
    assert inspect(dk, "dk1")["State"]["Running"]


def test_start_ai_and_create_t(tmux: str, corral: Daemon, dk: Any) -> None:
    made = corral.cli("create", "-it", "--name", "sai", IMAGE, "sh")
    assert made.returncode == 0, made.stderr
    assert inspect(dk, "sai")["Config"]["Tty"] is True
    t = shell(tmux, corral, [*CORRAL, "start", "-ai", "sai"])
    t.type("stty size; exit 9")
    t.wait_for_screen(r"^24 80")
    ends(t, 9)


def test_exec_it_gets_its_own_terminal(tmux: str, corral: Daemon) -> None:
    r = corral.cli("run", "-d", "--name", "ex", IMAGE, "sleep", "1000")
    assert r.returncode == 0, r.stderr
    t = shell(tmux, corral, [*CORRAL, "exec", "-it", "ex", "sh"], width=70, height=20)
    t.type("stty size; tty; exit 4")
    t.wait_for_screen(r"^20 70\s*\n/dev/pts/\d+")
    ends(t, 4)


def test_a_client_killed_mid_session_leaves_the_container_and_daemon_well(
    tmux: str, corral: Daemon, dk: Any
) -> None:
    t = run_it(tmux, corral, "--name", "gone")
    os.kill(client_pid(t), signal.SIGKILL)
    t.finished()  # (a SIGKILLed client cannot restore the terminal: not asserted)
    assert inspect(dk, "gone")["State"]["Running"]
    assert dk.ping()
    back = term(tmux, corral, [*CORRAL, "attach", "gone"], name="back")
    back.type("echo again-$((5+5))")
    back.wait_for_screen(r"^again-10")
    back.type("exit")
    ends(back, 0)


def test_sigterm_to_the_client_restores_the_terminal(tmux: str, corral: Daemon, dk: Any) -> None:
    t = run_it(tmux, corral, "--name", "term")
    os.kill(client_pid(t), signal.SIGTERM)
    ends(t, 128 + signal.SIGTERM)
    assert inspect(dk, "term")["State"]["Running"]


def test_the_daemon_going_away_ends_the_session_with_the_terminal_restored(
    tmux: str, private_daemon: Any, rootfs_tar: Path
) -> None:
    d = private_daemon()
    client = d.client()
    client.api.import_image_from_data(rootfs_tar.read_bytes(), repository="busybox", tag="latest")
    t = run_it(tmux, d, "--name", "orphan")
    d.proc.kill()
    d.proc.wait(timeout=60)
    code, stty = t.finished()
    assert code != 0
    assert sane(stty), stty
    client.close()
    again = private_daemon()  # live restore: the container outlived its daemon
    assert again.client().containers.get("orphan").status == "running"


# --------------------------------------------------------------------- the docker CLI
def test_docker_run_it_and_exec_it(tmux: str, corral: Daemon, dk: Any) -> None:
    if subprocess.run(["which", "docker"], capture_output=True).returncode:
        pytest.skip("docker CLI not installed")
    t = shell(tmux, corral, ["docker", "run", "-it", "--name", "dr", IMAGE, "sh"])
    t.type("echo $((6*7)); stty size")
    t.wait_for_screen(r"^42\s*\n24 80")
    t.resize(90, 20)
    t.type("stty size")
    t.wait_for_screen(r"^20 90")
    t.type("sleep 1000")
    t.wait_for_screen(r"sleep 1000\s*\n")
    t.send("C-c")  # reaches the shell's foreground job through docker's raw terminal
    t.wait_for_screen(r"\^C\s*\n/ # $")
    t.type("echo alive-$?")
    t.wait_for_screen(r"^alive-130")
    t.send("C-p", "C-q")
    ends(t, 0)
    assert inspect(dk, "dr")["State"]["Running"]

    e = term(tmux, corral, ["docker", "exec", "-it", "dr", "sh"], name="ex")
    e.type("tty; exit 6")
    e.wait_for_screen(r"^/dev/pts/\d+")
    ends(e, 6)

    a = term(tmux, corral, ["docker", "attach", "dr"], name="at")
    a.type("exit 2")
    ends(a, 2)
    logged = dk.containers.get("dr")  # TTY output is logged raw, as one stream: stdout
    assert b"42\r\n" in logged.logs(stdout=True, stderr=False)
    assert logged.logs(stdout=False, stderr=True) == b""


# ------------------------------------------------------------------- stdin, no tty
def test_piped_stdin_of_100_mb_arrives_whole(corral: Daemon, tmp_path: Path) -> None:
    data = tmp_path / "big"
    digest = hashlib.sha256()
    with data.open("wb") as f:
        for _ in range(100):
            chunk = os.urandom(1 << 20)
            digest.update(chunk)
            f.write(chunk)
    with data.open("rb") as f:
        r = subprocess.run(
            [*CORRAL, "run", "-i", "--rm", IMAGE, "sha256sum"],
            stdin=f,
            env=corral.env(),
            capture_output=True,
            timeout=300,
        )
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[0].decode() == digest.hexdigest()


def _readline(proc: subprocess.Popen[bytes], timeout: float = 30) -> bytes:
    """The client's next line of output, within a deadline (select: no busy wait)."""
    import select

    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    assert ready, "no output from the client"
    return proc.stdout.readline()


SCRIPT = (
    'trap "echo got-term; exit 3" TERM; read line; echo "ready $line"; while :; do sleep 1; done'
)


@pytest.mark.parametrize("verb", ["attach", "run"])
@pytest.mark.parametrize("proxy", [True, False])
def test_signals_are_proxied_unless_told_not_to(
    corral: Daemon, dk: Any, proxy: bool, verb: str
) -> None:
    """`--sig-proxy` (default on) for `attach` and for a foreground `run`, as docker."""
    name = f"sp{int(proxy)}{verb}"
    flags = [] if proxy else ["--sig-proxy=false"]
    if verb == "attach":
        made = corral.cli("run", "-d", "-i", "--name", name, IMAGE, "sh", "-c", SCRIPT)
        assert made.returncode == 0, made.stderr
        argv = [*CORRAL, "attach", *flags, name]
    else:
        argv = [*CORRAL, "run", "-i", *flags, "--name", name, IMAGE, "sh", "-c", SCRIPT]
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=corral.env())
    assert proc.stdin is not None
    proc.stdin.write(b"go\n")
    proc.stdin.flush()
    assert _readline(proc) == b"ready go\n"  # attached, stdin and output both ways
    proc.send_signal(signal.SIGTERM)
    if proxy:
        assert _readline(proc) == b"got-term\n"
        assert proc.wait(timeout=60) == 3  # the container's exit code
    else:
        assert proc.wait(timeout=60) in (-signal.SIGTERM, 128 + signal.SIGTERM)
        assert inspect(dk, name)["State"]["Running"]


def test_run_i_and_exec_i_pipe_stdin_without_a_terminal(corral: Daemon) -> None:
    env = corral.env()
    r = subprocess.run(
        [*CORRAL, "run", "-i", "--rm", IMAGE, "cat"],
        input=b"hi\n",
        env=env,
        capture_output=True,
        timeout=120,
    )
    assert (r.returncode, r.stdout) == (0, b"hi\n"), r.stderr
    assert corral.cli("run", "-d", "--name", "pipe", IMAGE, "sleep", "1000").returncode == 0
    e = subprocess.run(
        [*CORRAL, "exec", "-i", "pipe", "sh", "-c", "cat; exit 7"],
        input=b"via exec\n",
        env=env,
        capture_output=True,
        timeout=120,
    )
    assert (e.returncode, e.stdout) == (7, b"via exec\n"), e.stderr  # EOF reached cat


def test_attach_no_stdin_keeps_the_client_input_away(corral: Daemon, dk: Any) -> None:
    name = "nostdin"
    made = corral.cli("run", "-d", "-i", "--name", name, IMAGE, "sh", "-c", 'read l; echo "got $l"')
    assert made.returncode == 0, made.stderr
    since = int(time.time()) - 1
    attached = dk.events(since=since, until=time.time() + 60, decode=True,
                         filters={"container": name, "event": "attach"})  # fmt: skip
    quiet = subprocess.Popen(
        [*CORRAL, "attach", "--no-stdin", "--sig-proxy=false", name],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=corral.env(),
    )
    assert quiet.stdin is not None
    first = next(attached, None)  # the --no-stdin client is attached (its output flows)
    assert first is not None, "no attach event in 60 s"
    quiet.stdin.write(b"nope\n")  # typed into a client that must not send it
    quiet.stdin.flush()
    talker = subprocess.Popen(
        [*CORRAL, "attach", name],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=corral.env(),
    )
    assert talker.stdin is not None
    second = next(attached, None)
    attached.close()
    assert second is not None, "no second attach event in 60 s"
    talker.stdin.write(b"yes\n")
    talker.stdin.flush()
    assert _readline(quiet) == b"got yes\n"  # the shell read the second client's line
    assert _readline(talker) == b"got yes\n"
    assert quiet.wait(timeout=60) == 0 and talker.wait(timeout=60) == 0


# ------------------------------------------------------------------------ docker-py
def _read_until(sock: socket.socket, needle: bytes, timeout: float = 30) -> bytes:
    sock.settimeout(timeout)
    got = b""
    while needle not in got:
        chunk = sock.recv(65536)
        assert chunk, got
        got += chunk
    return got


def test_docker_py_tty_attach_socket_exec_and_resize(dk: Any) -> None:
    c = dk.containers.run(IMAGE, "sh", tty=True, stdin_open=True, detach=True, name="py")
    raw = c.attach_socket(params={"stdin": 1, "stream": 1, "stdout": 1, "stderr": 1})
    sock = raw._sock
    sock.sendall(b"echo $((6*7))\n")
    assert b"42\r\n" in _read_until(sock, b"42\r\n")  # raw: no stdcopy frames
    c.resize(height=33, width=101)
    sock.sendall(b"stty size\n")
    assert b"33 101" in _read_until(sock, b"33 101")

    code, out = c.exec_run(["tty"], tty=True)
    assert code == 0 and out.startswith(b"/dev/pts/")
    both = ["sh", "-c", "echo out; echo err >&2"]
    assert c.exec_run(both, tty=True, demux=True).output == (b"out\r\nerr\r\n", None)
    assert c.exec_run(both, tty=False, demux=True).output == (b"out\n", b"err\n")
    streamed = b"".join(c.exec_run(["sh", "-c", "echo a; echo b"], tty=True, stream=True).output)
    assert streamed == b"a\r\nb\r\n"
    on_socket = c.exec_run(["sh", "-c", "echo sock-$((3+4))"], tty=True, stream=True, socket=True)
    assert b"sock-7\r\n" in _read_until(on_socket.output._sock, b"sock-7\r\n")  # raw, no frames
    on_socket.output.close()
    ex = dk.api.exec_create(c.id, ["sh"], tty=True, stdin=True)
    es = dk.api.exec_start(ex["Id"], tty=True, socket=True)._sock
    dk.api.exec_resize(ex["Id"], height=11, width=44)
    es.sendall(b"stty size; exit 3\n")
    assert b"11 44" in _read_until(es, b"11 44")
    deadline = time.monotonic() + 30
    while dk.api.exec_inspect(ex["Id"])["Running"]:  # exec state has no event to wait on
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert dk.api.exec_inspect(ex["Id"])["ExitCode"] == 3
    sock.close()


# ------------------------------------------------------------------------ bad input
def test_it_with_stdin_not_a_terminal_is_refused_and_nothing_is_made(corral: Daemon) -> None:
    r = subprocess.run(
        [*CORRAL, "run", "-it", IMAGE, "sh"],
        stdin=subprocess.DEVNULL,
        env=corral.env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (r.returncode, r.stderr.strip()) == (1, "corral: the input device is not a TTY")
    assert corral.cli("ps", "-aq").stdout == ""
    d = corral.docker("run", "-it", IMAGE, "sh")  # the same as docker's own
    assert d.returncode == 1 and "the input device is not a TTY" in d.stderr


def test_an_exec_resized_before_its_start_starts_at_that_size(dk: Any) -> None:
    """The docker CLI sends an exec's first resize as the start goes out, so it may come
    first; dockerd waits for the start, corral keeps the size for the exec's pty."""
    c = dk.containers.run(IMAGE, "sh", tty=True, stdin_open=True, detach=True)
    ex = dk.api.exec_create(c.id, ["sh"], tty=True, stdin=True)
    dk.api.exec_resize(ex["Id"], height=13, width=47)
    es = dk.api.exec_start(ex["Id"], tty=True, socket=True)._sock
    es.sendall(b"stty size; exit\n")
    assert b"13 47" in _read_until(es, b"13 47")
    es.close()


def test_resize_without_a_tty_is_a_no_op_and_before_start_a_conflict_as_dockerd(
    dk: Any,
) -> None:
    """moby daemon/resize.go (v28.5.2): a container not running is 409 "container ID is not
    running"; else containerd's shim resizes, and its Resize of a process without a
    console returns nil: 200, nothing changes, and the `resize` event is logged."""
    import docker

    c = dk.containers.run(IMAGE, ["sleep", "1000"], detach=True)
    since = int(time.time()) - 1
    c.resize(height=10, width=12)
    ex = dk.api.exec_create(c.id, ["sleep", "1000"])
    dk.api.exec_resize(ex["Id"], height=5, width=6)  # a non-TTY exec: the same no-op
    until = int(time.time()) + 1
    resized = list(
        dk.events(
            since=since, until=until, decode=True, filters={"container": c.id, "event": "resize"}
        )
    )
    assert [e["Actor"]["Attributes"]["width"] for e in resized] == ["12"]
    created = dk.containers.create(IMAGE, "sh", tty=True, stdin_open=True)
    with pytest.raises(docker.errors.APIError) as err:
        created.resize(height=10, width=10)  # its first size is HostConfig.ConsoleSize
    assert err.value.status_code == 409
    assert f"container {created.id} is not running" in str(err.value)  # 28.5.2 exactly
    t = dk.containers.run(IMAGE, ["sleep", "1000"], detach=True, tty=True)
    with pytest.raises(docker.errors.APIError) as bad:
        dk.api.resize(t.id, height=-1, width=10)
    assert bad.value.status_code == 400 and "invalid resize h=-1" in str(bad.value)


def test_detach_keys_that_do_not_parse(corral: Daemon, dk: Any) -> None:
    import docker

    c = dk.containers.run(IMAGE, "sh", tty=True, stdin_open=True, detach=True, name="bk")
    with pytest.raises(docker.errors.APIError) as err:
        c.attach_socket(params={"stdin": 1, "stream": 1, "detachKeys": "ctrl-"})
    assert err.value.status_code == 400
    assert "Invalid detach keys (ctrl-) provided" in str(err.value)
    r = corral.cli("attach", "--detach-keys", "ctrl-1", "bk")
    assert r.returncode == 125 and "Invalid detach keys (ctrl-1) provided" in r.stderr
    assert inspect(dk, "bk")["State"]["Running"]


# -------------------------------------------------------------------------- compose
def test_compose_tty_service_and_exec_with_a_tty_by_default(
    tmux: str, corral: Daemon, dk: Any, tmp_path: Path
) -> None:
    file = tmp_path / "compose.yaml"
    file.write_text(
        f"name: ttyp\nservices:\n  box:\n    image: {IMAGE}\n    command: sh\n"
        "    tty: true\n    stdin_open: true\n"
    )
    up = corral.cli("compose", "-f", str(file), "up", "-d")
    assert up.returncode == 0, up.stderr
    try:
        (box,) = dk.containers.list(filters={"label": "com.docker.compose.project=ttyp"})
        assert box.attrs["Config"]["Tty"] and box.attrs["Config"]["OpenStdin"]
        t = shell(tmux, corral, [*CORRAL, "compose", "-f", str(file), "exec", "box", "sh"])
        t.type("tty; exit 2")
        t.wait_for_screen(r"^/dev/pts/\d+")
        ends(t, 2)
        no = term(
            tmux,
            corral,
            [*CORRAL, "compose", "-f", str(file), "exec", "-T", "box", "tty"],
            name="no",
        )
        assert no.finished()[0] == 1  # `tty`: "not a tty"
        assert "not a tty" in no.screen()
    finally:
        corral.cli("compose", "-f", str(file), "down", "-v")


def test_compose_run_has_a_tty_on_a_terminal_unless_told_not_to(
    tmux: str, corral: Daemon, dk: Any, tmp_path: Path
) -> None:
    file = tmp_path / "compose.yaml"
    file.write_text(f"name: ttyr\nservices:\n  box:\n    image: {IMAGE}\n")
    try:
        t = shell(tmux, corral, [*CORRAL, "compose", "-f", str(file), "run", "--rm", "box", "sh"])
        t.type("tty; exit 3")
        t.wait_for_screen(r"^/dev/pts/\d+")
        ends(t, 3)
        no = term(
            tmux, corral, [*CORRAL, "compose", "-f", str(file), "run", "--rm", "-T", "box", "tty"],
            name="no",
        )
        assert no.finished()[0] == 1  # `tty`: "not a tty"
        assert "not a tty" in no.screen()
    finally:
        corral.cli("compose", "-f", str(file), "down", "-v")


# ------------------------------------------------------------------------ websocket
def _ws_frame(opcode: int, payload: bytes) -> bytes:
    """A masked client frame (RFC 6455 5.2), short payloads only."""
    mask = os.urandom(4)
    head = bytes([0x80 | opcode, 0x80 | len(payload)])
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def test_attach_over_a_websocket(corral: Daemon, dk: Any) -> None:
    import base64

    c = dk.containers.run(IMAGE, "sh", tty=True, stdin_open=True, detach=True, name="ws")
    sock = socket.socket(socket.AF_UNIX)
    sock.connect(str(corral.sock))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET /v1.44/containers/{c.id}/attach/ws?stream=1&stdin=1&stdout=1 HTTP/1.1\r\n"
        f"Host: docker\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    head = _read_until(sock, b"\r\n\r\n")
    expected = base64.b64encode(
        hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()
    )
    assert head.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    assert b"Sec-WebSocket-Accept: " + expected in head
    sock.sendall(_ws_frame(0x1, b"echo $((6*7))\n"))  # a text frame: stdin
    assert b"42\r\n" in _read_until(sock, b"42\r\n")  # binary frames of raw output
    sock.sendall(_ws_frame(0x8, b"\x03\xe8"))  # close: answered, then the connection ends
    rest = b""
    while chunk := sock.recv(65536):
        rest += chunk
    assert rest.endswith(b"\x88\x02\x03\xe8")
    sock.close()
    assert inspect(dk, "ws")["State"]["Running"]  # closing the socket is a detach


def test_docker_py_attach_with_logs_to_an_exited_container_gets_its_log(dk: Any) -> None:
    """docker-py reads a hijacked answer's head through a buffered reader and the rest
    from the raw socket: an exited container's log, ready at once, must not arrive
    with the head, or docker-py drops it (the daemon waits for the head to be read)."""
    c = dk.containers.run(IMAGE, ["sh", "-c", "echo one; echo two >&2"], detach=True)
    assert c.wait(timeout=60)["StatusCode"] == 0
    for _ in range(20):
        got = c.attach(stdout=True, stderr=True, logs=True, stream=False)
        assert sorted(got.split()) == [b"one", b"two"]


def test_attach_ws_without_an_upgrade_is_refused(corral: Daemon, dk: Any) -> None:
    c = dk.containers.run(IMAGE, ["sleep", "1000"], detach=True)
    r = dk.api._get(dk.api._url("/containers/{0}/attach/ws", c.id))
    assert r.status_code == 400
    assert "must upgrade to websocket" in r.json()["message"]
