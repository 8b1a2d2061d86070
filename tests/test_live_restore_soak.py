"""The live-restore soak (issue 17) in the test suite: the fleet, the kills and the
checks are `bench/soak.py` (the bench runs the same soak as its `soak` scenario); here
the daemons are the `private_daemon` fixture's, and each check that failed fails the
test.  The short variant (2 minutes, 40 containers) runs with the suite; the full one
(10 minutes, 200 containers, writers at 10,000 lines/s each) with CORRAL_SOAK=full.
Figures are printed (pytest -s shows them) and kept in the test's directory.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from conftest import Daemon

from bench.soak import FULL, SHORT, Soak, soak


class FixtureDaemons:
    """`bench.soak.Daemons` over the `private_daemon` fixture: each kill is the test's
    own (`d.proc.kill()`, so the fixture tells it from a death it did not cause)."""

    def __init__(self, private_daemon: Any) -> None:
        self.start_one = private_daemon
        self.d: Daemon = private_daemon()
        self.root, self.sock = self.d.root, self.d.sock

    @property
    def pid(self) -> int:
        return self.d.proc.pid

    def kill(self) -> None:
        self.d.proc.kill()
        self.d.proc.wait()

    def start(self) -> None:
        self.d = self.start_one()


def run(s: Soak, private_daemon: Any, rootfs_tar: Path, tmp_path: Path) -> None:
    out = soak(s, FixtureDaemons(private_daemon), tmp_path, rootfs_tar)
    print("\nlive-restore soak:", json.dumps(out.figures, indent=1))
    assert not out.failures, "\n".join(out.failures)


def test_soak_short(private_daemon: Any, rootfs_tar: Path, tmp_path: Path) -> None:
    run(SHORT, private_daemon, rootfs_tar, tmp_path)


@pytest.mark.heavy
@pytest.mark.skipif(os.environ.get("CORRAL_SOAK") != "full",
                    reason="the full soak (10 min, 200 containers): CORRAL_SOAK=full")
def test_soak_full(private_daemon: Any, rootfs_tar: Path, tmp_path: Path) -> None:
    run(FULL, private_daemon, rootfs_tar, tmp_path)
