"""The seccomp filter runc installs for a bundle, read back from the kernel.

Run as its own small process (`python -I -S seccompcapture.py RUNC STATE BUNDLE ID`,
stdlib only) by `seccompexec.Filters`: it becomes a child subreaper, so the parked
init of `runc create` is its child and no daemon reaper meets it; runc 1.1 installs
the filter before `create` returns (with no_new_privs just before the init parks on
its exec fifo), so the init never runs the bundle's command.  The filter is read
with ptrace's PTRACE_SECCOMP_GET_FILTER (CAP_SYS_ADMIN: root), the container deleted,
every child reaped, and the filter written to stdout: the exact instructions runc
would load, its own patches included (the ENOSYS stub for syscalls newer than
libseccomp knows).  Exit 0 with the bytes, else 1 with one line on stderr.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys

PR_SET_CHILD_SUBREAPER = 36
PTRACE_DETACH = 17
PTRACE_SEIZE = 0x4206
PTRACE_INTERRUPT = 0x4207
PTRACE_SECCOMP_GET_FILTER = 0x420C
WALL = 0x40000000  # __WALL: a traced process that is not our child


def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.ptrace.restype = ctypes.c_long
    libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
    libc.prctl.restype = ctypes.c_int
    libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong,
                           ctypes.c_ulong]
    return libc


def _check(result: int, what: str) -> int:
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return result


def read_filter(libc: ctypes.CDLL, pid: int) -> bytes:
    """The newest seccomp filter of `pid` (stopped and let go again)."""
    _check(libc.ptrace(PTRACE_SEIZE, pid, None, None), "ptrace seize")
    try:
        _check(libc.ptrace(PTRACE_INTERRUPT, pid, None, None), "ptrace interrupt")
        os.waitpid(pid, WALL)
        count = _check(libc.ptrace(PTRACE_SECCOMP_GET_FILTER, pid, 0, None), "get filter")
        buf = ctypes.create_string_buffer(count * 8)
        if _check(libc.ptrace(PTRACE_SECCOMP_GET_FILTER, pid, 0, buf), "get filter") != count:
            raise OSError("the filter changed while it was read")
        return buf.raw
    finally:
        libc.ptrace(PTRACE_DETACH, pid, None, None)


def _reap_all() -> None:
    while True:
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return


def capture(runc: str, state: str, bundle: str, cid: str) -> bytes:
    libc = _libc()
    _check(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), "subreaper")
    base = [runc, "--root", state]
    pid_file = os.path.join(bundle, "init.pid")
    log = os.path.join(bundle, "runc.log")
    try:
        # runc's stdio is the parked init's: no pipe of ours (it would stay open)
        done = subprocess.run(
            [*base, "--log", log, "create", "--bundle", bundle, "--pid-file", pid_file, cid],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            check=False,
        )
        if done.returncode != 0:
            with open(log, errors="replace") as f:
                raise OSError(f"runc create: {f.read().strip()[-500:]}")
        with open(pid_file) as f:
            return read_filter(libc, int(f.read().strip()))
    finally:
        subprocess.run([*base, "delete", "--force", cid], stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        _reap_all()


def main(argv: list[str]) -> int:
    if len(argv) != 5:
        print("usage: seccompcapture.py RUNC STATE BUNDLE ID", file=sys.stderr)
        return 2
    try:
        data = capture(*argv[1:])
    except OSError as exc:
        print(f"seccomp capture: {exc}", file=sys.stderr)
        return 1
    sys.stdout.buffer.write(data)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
