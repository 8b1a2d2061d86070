"""`docker top`: the host's `ps` run with the user's options, filtered to the
container's processes (the pids in its cgroup), as dockerd's ContainerTop does.

The checks and the parsing are pure (`validate_ps_args`, `parse_ps_output`, docker's
rules including thread lines under `-m`); `container_pids` reads cgroup.procs of the
container's cgroup and every cgroup below it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from supervisor.errors import InvalidArgument
from supervisor.runtime import cgroups

DEFAULT_PS_ARGS = "-ef"
_PID_SPEC = re.compile(r"\s+([^\s]*)=\s*(PID[^\s]*)")


def validate_ps_args(ps_args: str) -> None:
    """docker refuses renaming a column to PID (`-o user=PID`): it finds rows by it."""
    for key, value in _PID_SPEC.findall(ps_args):
        if key != "pid":
            raise InvalidArgument(f'specifying "{key}={value}" is not allowed')


def ps_argv(ps_args: str, pids: list[int] | None) -> list[str]:
    """docker splits on single spaces, and first tries `-q PIDS` (some options, `f`,
    cannot go with it: then it runs ps again without)."""
    argv = ["ps", *ps_args.split(" ")]
    if pids is not None:
        argv.append("-q" + ",".join(str(p) for p in pids))
    return argv


def parse_ps_output(output: str, pids: set[int]) -> dict[str, list[list[str]] | list[str]]:
    """`{"Titles": [...], "Processes": [[...], ...]}`: the rows of `pids` (and, with
    `-m`, the thread lines `-` under them); the last column takes the rest."""
    lines = output.split("\n")
    titles = lines[0].split()
    try:
        pid_index = titles.index("PID")
    except ValueError:
        raise InvalidArgument("Couldn't find PID field in ps output") from None
    processes: list[list[str]] = []
    keep_threads = False

    def add(fields: list[str]) -> None:
        last = len(titles) - 1
        processes.append([*fields[:last], " ".join(fields[last:])])

    for line in lines[1:]:
        if not line:
            continue
        fields = line.split()
        if len(fields) <= pid_index:
            continue
        if fields[pid_index] == "-":
            if keep_threads:
                add(fields)
            continue
        try:
            pid = int(fields[pid_index])
        except ValueError:
            raise InvalidArgument(f"Unexpected pid '{fields[pid_index]}'") from None
        keep_threads = pid in pids
        if keep_threads:
            add(fields)
    return {"Titles": titles, "Processes": processes}


def container_pids(cgroup_path: str) -> list[int]:
    """Every process in the container's cgroup tree (v2, or v1's pids hierarchy)."""
    base = cgroups.CGROUP_ROOT / cgroup_path.strip("/") if cgroups.is_v2() else None
    if base is None:
        found = cgroups._v1_dir("pids", cgroup_path)
        if found is None:
            return []
        base = found
    pids: list[int] = []
    stack: list[Path] = [base]
    while stack:
        d = stack.pop()
        try:
            text = (d / "cgroup.procs").read_text()
            children = [e for e in os.scandir(d) if e.is_dir(follow_symlinks=False)]
        except OSError:
            continue
        pids.extend(int(p) for p in text.split())
        stack.extend(Path(e.path) for e in children)
    return sorted(set(pids))
