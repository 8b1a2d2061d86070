"""What a test session leaves when it is cut short, and its sweep.

Every daemon a test starts keeps its state under the session's directories (pytest's
basetemp, the `workdir` fixture's).  Normally each fixture stops its daemon and checks
that nothing is left; but an interrupted session (Ctrl-C in a test, a daemon killed -9
whose holder keeps its containers under live restore, a fixture teardown that failed)
can leave a daemon, a holder, container inits, overlay mounts, cgroups and bridges.

So each session registers its directories under REGISTRY with its pid and start time:
at its end (`pytest_sessionfinish`, which pytest runs after a KeyboardInterrupt too,
after every fixture's teardown) it sweeps its own directories, and at its start it
sweeps those of sessions whose owner is dead (a session killed too hard to finish).
A live session's directories are never touched: several sessions share this host.

The sweep of a directory: corral daemons and holders naming it are killed, each runc
state under it deleted (`runc delete -f`: its init and cgroup go), the mounts under it
detached, the daemons' cgroup parents removed, the bridges naming a root under it taken
down (supervisor/network/orphans.py).  The files stay: they are pytest's to remove.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

from bench.engines.base import remove_cgroup_tree
from bench.leftovers import detach, kill_all, mounts_under, start_time
from bench.procfs import cmdline, pids_where

#: where sessions register; CORRAL_TEST_SESSIONS moves it (test_session_sweep's inner
#: sessions use a private one, so no other session on the machine sweeps them first)
REGISTRY = Path(os.environ.get("CORRAL_TEST_SESSIONS", "/run/corral-test-sessions"))
ROOT_DEPTH = 3  # a state root sits at most this deep under a session directory
#: the cgroup parents test daemons get (conftest.cgroup_parent); no other is ever removed
TEST_CGROUP = re.compile(r"^corral-test-\d+$")


def corral_process(args: list[str]) -> bool:
    """A corral daemon (`-m supervisor.daemon`, `-m supervisor daemon`) or holder."""
    if any(a.endswith("holderd.py") for a in args):
        return True
    return "supervisor.daemon" in args or (
        "supervisor" in args and "daemon" in args[args.index("supervisor") :]
    )


def _under(path: str | Path, dirs: list[Path]) -> bool:
    p = str(path)
    return any(p == str(d) or p.startswith(str(d) + "/") for d in dirs)


def state_roots(d: Path) -> list[Path]:
    """The corral state roots (a `corral.db`) at most ROOT_DEPTH levels under `d`."""
    roots = []
    for depth in range(ROOT_DEPTH + 1):
        roots += [db.parent for db in d.glob("/".join(["*"] * depth + ["corral.db"]))]
    return roots


def sweep_dirs(dirs: list[Path]) -> list[str]:
    """Remove what corral left running or mounted under `dirs`; what it found."""
    found: list[str] = []
    procs = pids_where(lambda pid: corral_process(a := cmdline(pid))
                       and any(_under(x.split("=", 1)[-1], dirs) for x in a))  # fmt: skip
    cgroups = set()
    for pid in procs:
        args = cmdline(pid)
        if "--cgroup-parent" in args[:-1]:
            cgroups.add(args[args.index("--cgroup-parent") + 1])
        found.append(f"process {pid} ({' '.join(args)[:100]})")
    kill_all(procs)
    for d in dirs:
        for root in state_roots(d) if d.is_dir() else []:
            runc = root / "runc"
            for state in runc.glob("*/state.json") if runc.is_dir() else []:
                with contextlib.suppress(OSError, ValueError):
                    paths = json.loads(state.read_text()).get("cgroup_paths") or {}
                    for p in paths.values():  # /sys/fs/cgroup/.../PARENT/ID: the parent
                        rel = Path(p).parent.name
                        if rel:
                            cgroups.add(rel)
                subprocess.run(["runc", "--root", str(runc), "delete", "-f",
                                state.parent.name], capture_output=True, check=False,
                               timeout=60)  # fmt: skip
                found.append(f"runc state {state.parent}")
    for point in mounts_under(dirs):
        if detach(point):
            found.append(f"mount {point}")
    for c in sorted(cgroups):
        if TEST_CGROUP.match(c):
            remove_cgroup_tree(c)
    with contextlib.suppress(ImportError):
        from supervisor.network.orphans import sweep_bridges

        found += [f"bridge {name}" for name in sweep_bridges(
            root_exists=lambda r: not _under(r, dirs) and r.is_dir())]  # fmt: skip
    return found


class Session:
    """This session's entry in REGISTRY: its owner and its directories."""

    def __init__(self) -> None:
        me = os.getpid()
        self.path = REGISTRY / f"{me}-{start_time(me)}.json"
        self.dirs: list[Path] = []

    def add(self, d: Path) -> None:
        self.dirs.append(d)
        REGISTRY.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"dirs": [str(x) for x in self.dirs]}))
        tmp.replace(self.path)

    def owns_bridge(self, name: str) -> bool:
        """Whether bridge `name` belongs to a daemon root under this session's dirs."""
        from supervisor.network.orphans import owner_root

        try:
            alias = Path("/sys/class/net", name, "ifalias").read_text().strip()
        except OSError:
            return False
        root = owner_root(alias)
        return root is not None and _under(root, self.dirs)

    def owned_nat_tables(self) -> list[str]:
        """The nftables tables (network/nat.py) of daemon roots under this session's dirs."""
        from supervisor.network.nat import TABLE_PREFIX, owner_of

        if shutil.which("nft") is None:
            return []
        listed = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True)
        names = [line.split()[2] for line in listed.stdout.splitlines()
                 if line.startswith("table ip " + TABLE_PREFIX)]
        owned = []
        for name in names:
            text = subprocess.run(["nft", "list", "table", "ip", name],
                                  capture_output=True, text=True).stdout
            root = owner_of(text)
            if root is not None and _under(root, self.dirs):
                owned.append(name)
        return owned

    def finish(self) -> list[str]:
        found = sweep_dirs(self.dirs)
        self.path.unlink(missing_ok=True)
        return found


def owner_alive(entry: Path) -> bool:
    """Whether the session that wrote `entry` (named PID-STARTTIME) still runs."""
    pid, _, started = entry.stem.partition("-")
    if not (pid.isdigit() and started.isdigit()):
        return False
    return start_time(int(pid)) == int(started)


def sweep_dead_sessions() -> list[str]:
    """Sweep the directories of every registered session whose owner is dead."""
    found: list[str] = []
    if not REGISTRY.is_dir():
        return found
    for entry in sorted(REGISTRY.glob("*.json")):
        if owner_alive(entry):
            continue
        with contextlib.suppress(OSError, ValueError):
            dirs = [Path(d) for d in json.loads(entry.read_text())["dirs"]]
            found += sweep_dirs(dirs)
        entry.unlink(missing_ok=True)
    return found
