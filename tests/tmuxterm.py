"""Real terminals for tests: a private tmux server, one window per session.

A test types into a terminal (`send`), and reads what a person would see on it
(`screen`).  A terminal has no event to wait on: the screen is the only thing there
is to observe, so `wait_for_screen` reads it in a bounded loop until a pattern shows
or the deadline passes (the one place the suite polls, and why).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import time
from collections.abc import Mapping

import pytest

#: What the wrapper prints after the client exits: its exit code, then `stty -a` of
#: the terminal it leaves (a client that forgot raw mode shows `-icanon -echo`).
AFTER = 'echo "EXIT=$?"; stty -a | tr "\\n" " "; echo; echo END; exec cat >/dev/null'


class Terminal:
    """One tmux session running `argv` (then `AFTER`) in a `width`x`height` window."""

    def __init__(
        self,
        socket: str,
        argv: list[str],
        env: Mapping[str, str],
        *,
        width: int = 80,
        height: int = 24,
        name: str = "t",
    ) -> None:
        if shutil.which("tmux") is None:
            pytest.skip("tmux not installed (scripts/setup installs it)")
        self.socket = socket
        self.name = name
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        command = f"env {exports} {shlex.join(argv)}; {AFTER}"
        self._tmux(
            "new-session",
            "-d",
            "-s",
            name,
            "-x",
            str(width),
            "-y",
            str(height),
            "sh",
            "-c",
            command,
        )

    def _tmux(self, *args: str) -> str:
        return subprocess.run(
            ["tmux", "-S", self.socket, *args],
            check=True,
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout

    def send(self, *keys: str) -> None:
        """tmux key names (`Enter`, `C-c`) or literal text, as `send-keys` takes them."""
        self._tmux("send-keys", "-t", self.name, *keys)

    def type(self, text: str) -> None:
        """Literal text, then Enter."""
        self._tmux("send-keys", "-t", self.name, "-l", text)
        self._tmux("send-keys", "-t", self.name, "Enter")

    def resize(self, width: int, height: int) -> None:
        self._tmux("resize-window", "-t", self.name, "-x", str(width), "-y", str(height))

    def screen(self) -> str:
        """What the terminal shows now, with the scrollback (so nothing scrolls away)."""
        return self._tmux("capture-pane", "-p", "-J", "-S", "-1000", "-t", self.name)

    def wait_for_screen(self, pattern: str, timeout: float = 30) -> re.Match[str]:
        """Wait until `pattern` (a regex, multiline) is on the screen; its match.

        Polling with a deadline is the only way to observe a terminal: it has no
        events, only what is displayed; on timeout the screen is in the failure."""
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern, re.MULTILINE)
        while True:
            text = self.screen()
            found = regex.search(text)
            if found:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"{pattern!r} not on the screen after {timeout}s:\n{text}")
            time.sleep(0.05)

    def finished(self, timeout: float = 60) -> tuple[int, str]:
        """Wait for the client to exit: (its exit code, `stty -a` of the terminal)."""
        m = self.wait_for_screen(r"EXIT=(\d+)\s*\n\s*(.*?)\s*\n\s*END\s*$", timeout)
        return int(m.group(1)), m.group(2)

    def pane_pid(self) -> int:
        return int(self._tmux("list-panes", "-t", self.name, "-F", "#{pane_pid}").strip())


def client_pid(term: Terminal) -> int:
    """The client the pane's shell runs (its only child)."""
    children = subprocess.run(
        ["pgrep", "-P", str(term.pane_pid())], capture_output=True, text=True, check=True
    ).stdout.split()
    assert len(children) == 1, children
    return int(children[0])


def sane(stty: str) -> bool:
    """`stty -a` of a cooked terminal: canonical input and echo on."""
    words = stty.split()
    return "icanon" in words and "echo" in words and "isig" in words


def kill_server(socket: str) -> None:
    subprocess.run(["tmux", "-S", socket, "kill-server"], capture_output=True, timeout=30)
    if os.path.exists(socket):
        os.unlink(socket)
