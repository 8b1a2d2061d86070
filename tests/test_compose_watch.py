"""`develop.watch`: the pure rules (config/watch.py) and `corral compose watch` syncing
edits into a running service, end to end (waits on the CLI's own progress lines)."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import Daemon

from config.watch import Rule, plan, relative


def _rule(action: str = "sync", **kw: Any) -> Rule:
    return Rule(service="web", path="/p/src", action=action, target="/app", **kw)


def test_a_change_under_a_sync_rule_is_copied_to_its_target() -> None:
    steps = plan([_rule()], ["/p/src/a/b.txt", "/p/other/x"], lambda p: True)
    assert len(steps) == 1
    assert steps[0].copy == [("/p/src/a/b.txt", "/app/a/b.txt")]
    assert (steps[0].delete, steps[0].restart, steps[0].changes) == ([], False, 1)


def test_a_file_gone_on_the_host_is_deleted_in_the_container() -> None:
    steps = plan([_rule("sync+restart")], ["/p/src/gone"], lambda p: False)
    assert steps[0].delete == ["/app/gone"] and steps[0].copy == []
    assert steps[0].restart


def test_ignored_and_editor_files_are_not_synced() -> None:
    r = _rule(ignore=("node_modules/", "*.log"))
    for path in ("/p/src/node_modules/x.js", "/p/src/a/debug.log", "/p/src/.git/HEAD",
                 "/p/src/a.txt~", "/p/src/.a.txt.swp", "/p/src/4913"):
        assert relative(r, path) is None, path
    assert relative(r, "/p/src/app/main.js") == "app/main.js"
    assert relative(_rule(include=("*.py",)), "/p/src/m.js") is None
    assert relative(_rule(include=("*.py",)), "/p/src/m.py") == "m.py"


def test_a_rebuild_wins_over_the_service_s_syncs() -> None:
    rules = [_rule(), Rule(service="web", path="/p/src/package.json", action="rebuild")]
    steps = plan(rules, ["/p/src/package.json", "/p/src/index.js"], lambda p: True)
    assert steps[0].rebuild and steps[0].copy == [] and steps[0].changes == 2


def test_sync_exec_queues_the_rule_s_command_once() -> None:
    hook = {"command": ["kill", "-HUP", "1"]}
    steps = plan([_rule("sync+exec", exec=hook)], ["/p/src/a", "/p/src/b"], lambda p: True)
    assert steps[0].execs == [hook] and len(steps[0].copy) == 2


def test_a_sync_without_a_target_is_refused(corral: Daemon, tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text(
        "services:\n  web:\n    image: busybox\n"
        "    develop: {watch: [{action: sync, path: ./src}]}\n"
    )
    r = corral.cli("compose", "-f", str(tmp_path / "compose.yaml"), "watch", "--no-up")
    assert r.returncode == 1
    assert 'action sync needs a "target"' in r.stderr


def test_watch_without_a_develop_section_is_refused(corral: Daemon, tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text("services:\n  web:\n    image: busybox\n")
    r = corral.cli("compose", "-f", str(tmp_path / "compose.yaml"), "watch")
    assert r.returncode == 1
    assert "none of the selected services is configured for watch" in r.stderr


class Lines:
    """A subprocess's stderr read line by line, each wait bounded by a deadline."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stderr is not None
        self.fd = proc.stderr.fileno()
        self.buf = b""
        self.seen: list[str] = []

    def wait_for(self, text: str, timeout: float = 60) -> float:
        """Block until a line containing `text` arrives; when it did (monotonic)."""
        deadline = time.monotonic() + timeout
        while True:
            while b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                self.seen.append(line.decode())
                if text in self.seen[-1]:
                    return time.monotonic()
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self.fd], [], [], max(left, 0))
            if not ready:
                raise AssertionError(f"no line with {text!r} in time; got {self.seen}")
            data = os.read(self.fd, 65536)
            if not data:
                raise AssertionError(f"stderr ended before {text!r}; got {self.seen}")
            self.buf += data


WATCHED = """\
name: wt
services:
  web:
    image: busybox
    command: [sleep, '1000']
    stop_grace_period: 1s
    develop:
      watch:
        - {action: sync, path: ./src, target: /app, ignore: [tmp/], initial_sync: true}
        - action: sync+exec
          path: ./conf
          target: /etc/conf
          exec: {command: [sh, -c, 'cat /etc/conf/c > /ran']}
"""


def test_compose_watch_syncs_edits_into_the_running_service(
    corral: Daemon, dk: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "conf").mkdir()
    (tmp_path / "src" / "pre.txt").write_text("there before")
    file = tmp_path / "compose.yaml"
    file.write_text(WATCHED)
    proc = subprocess.Popen(
        [sys.executable, "-m", "supervisor", "compose", "-f", str(file), "watch"],
        env=corral.env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    lines = Lines(proc)

    def cat(path: str) -> str:
        r = corral.cli("compose", "-f", str(file), "exec", "-T", "web", "cat", path)
        return r.stdout if r.returncode == 0 else f"<exit {r.returncode}>"

    try:
        lines.wait_for("Watch enabled")
        assert dk.containers.get("wt-web-1").status == "running"
        assert cat("/app/pre.txt") == "there before"  # initial_sync: copied in first
        took = []
        edit = tmp_path / "src" / "sub" / "hello.txt"
        edit.parent.mkdir()  # a new directory is watched too
        for version in ("v1", "v2"):
            written = time.monotonic()
            edit.write_text(version)
            took.append(lines.wait_for('Synced service "web"') - written)
            assert cat("/app/sub/hello.txt") == version
        (tmp_path / "src" / "tmp").mkdir()
        (tmp_path / "src" / "tmp" / "x").write_text("ignored")
        edit.unlink()
        lines.wait_for('Synced service "web"')
        assert cat("/app/sub/hello.txt") == "<exit 1>"  # deleted in the container too
        assert cat("/app/tmp/x") == "<exit 1>"  # ignored
        (tmp_path / "conf" / "c").write_text("reloaded")
        lines.wait_for('Synced service "web"')
        assert cat("/ran") == "reloaded"  # sync+exec ran its command after the copy
        with capsys.disabled():
            print(f"\n  watch: edit to synced {', '.join(f'{t * 1000:.0f} ms' for t in took)}")
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        corral.cli("compose", "-f", str(file), "down", "-t", "0")
    assert proc.returncode == 0


def test_up_watch_follows_the_rules_while_it_streams_logs(
    corral: Daemon, dk: Any, tmp_path: Path
) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "conf").mkdir()
    file = tmp_path / "compose.yaml"
    file.write_text(WATCHED)
    proc = subprocess.Popen(
        [sys.executable, "-m", "supervisor", "compose", "-f", str(file), "up", "--watch"],
        env=corral.env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    lines = Lines(proc)
    try:
        lines.wait_for("Watch enabled")
        (tmp_path / "src" / "a.txt").write_text("up")
        lines.wait_for('Synced service "web"')
        r = corral.cli("compose", "-f", str(file), "exec", "-T", "web", "cat", "/app/a.txt")
        assert r.stdout == "up"
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        corral.cli("compose", "-f", str(file), "down", "-t", "0")
    assert proc.returncode == 130  # Ctrl-C of a foreground up, as compose
    assert "Gracefully stopping" in "\n".join(lines.seen) + lines.buf.decode() + (
        proc.stderr.read().decode() if proc.stderr else ""
    )


def test_a_rebuild_rule_builds_and_recreates_the_service(
    corral: Daemon, dk: Any, tmp_path: Path
) -> None:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "Dockerfile").write_text(
        "FROM busybox\nCOPY version /version\nCMD [\"sleep\", \"1000\"]\n"
    )
    (tmp_path / "app" / "version").write_text("1")
    file = tmp_path / "compose.yaml"
    file.write_text(
        "name: wr\nservices:\n  web:\n    build: ./app\n    stop_grace_period: 1s\n"
        "    develop:\n      watch:\n        - {action: rebuild, path: ./app}\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "supervisor", "compose", "-f", str(file), "watch"],
        env=corral.env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    lines = Lines(proc)
    try:
        lines.wait_for("Watch enabled", timeout=120)
        first = dk.containers.get("wr-web-1")
        old_image = first.image.id
        (tmp_path / "app" / "version").write_text("2")
        lines.wait_for('service "web" successfully built', timeout=120)
        now = dk.containers.get("wr-web-1")
        assert now.id != first.id and now.status == "running"
        assert now.exec_run(["cat", "/version"]).output == b"2"
        assert old_image not in {i.id for i in dk.images.list(all=True)}  # pruned
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        corral.cli("compose", "-f", str(file), "down", "-t", "0")
    assert proc.returncode == 0


QUEUED = Path("/proc/sys/fs/inotify/max_queued_events")


async def test_an_inotify_overflow_resyncs_every_path_of_the_watch(tmp_path: Path) -> None:
    """Past the kernel's queue bound inotify drops events and queues IN_Q_OVERFLOW: the
    watch then counts every file under its roots as changed and watches the
    directories made meanwhile (whose IN_CREATE was dropped), as compose resyncs."""
    import trio

    from supervisor.compose.watch import TreeWatch

    root = tmp_path / "src"
    root.mkdir()
    before = QUEUED.read_text()
    QUEUED.write_text("8")  # the bound is read when the instance is made: restored at once
    try:
        watch = TreeWatch([str(root)])
    finally:
        QUEUED.write_text(before)
    try:
        for i in range(40):  # unread: the queue fills after 8 events
            (root / f"f{i}").write_text("x")
        (root / "sub").mkdir()
        (root / "sub" / "late.txt").write_text("late")
        with trio.fail_after(10):
            changed = await watch.changes()
        assert str(root / "sub" / "late.txt") in changed
        assert {str(root / f"f{i}") for i in range(40)} <= changed
        (root / "sub" / "again.txt").write_text("again")  # sub is watched now
        with trio.fail_after(10):
            assert str(root / "sub" / "again.txt") in await watch.changes()
    finally:
        watch.close()


def test_a_dry_run_watch_says_each_sync_and_copies_nothing(
    corral: Daemon, dk: Any, tmp_path: Path
) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "conf").mkdir()
    file = tmp_path / "compose.yaml"
    file.write_text(WATCHED.replace("name: wt", "name: wd"))
    corral.cli("compose", "-f", str(file), "up", "-d", check=True)
    proc = subprocess.Popen(
        [sys.executable, "-m", "supervisor", "compose", "--dry-run", "-f", str(file), "watch"],
        env=corral.env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    lines = Lines(proc)
    try:
        lines.wait_for("DRY-RUN MODE - Watch enabled")
        (tmp_path / "src" / "new.txt").write_text("not copied")
        lines.wait_for('DRY-RUN MODE - Synced service "web"')
        (tmp_path / "conf" / "c").write_text("not run")
        lines.wait_for('DRY-RUN MODE - Synced service "web"')
        web = dk.containers.get("wd-web-1")
        assert web.exec_run(["test", "-e", "/app/new.txt"]).exit_code == 1
        assert web.exec_run(["test", "-e", "/ran"]).exit_code == 1
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        corral.cli("compose", "-f", str(file), "down", "-t", "0")
    assert proc.returncode == 0
