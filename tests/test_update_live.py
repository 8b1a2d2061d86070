"""`docker update` on a running container: limits reach its cgroup at once, as Docker's.

Docker applies an update's Resources to the live container (containerd → runc update)
and stores them for every later start; corral does the same for the limits it knows
and refuses any other field by name (issue 11: nothing silently ignored).  What the
tests read is what a user sees: the cgroup files inside the container, `docker stats`,
`docker inspect`, a fork that fails.
"""

from __future__ import annotations

from typing import Any

import docker
import pytest

from tests.conftest import Daemon

IMAGE = "busybox:latest"
MIB = 1024 * 1024
#: the container's own memory limit, cgroup v1 or v2 (runc mounts its cgroup there)
READ_LIMIT = (
    "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max"
)
READ_PIDS = "cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max"


def sh(c: Any, script: str) -> str:
    res = c.exec_run(["sh", "-c", script])
    assert res.exit_code == 0, res.output
    return str(res.output.decode().strip())


def test_update_memory_reaches_the_running_cgroup(corral: Daemon, dk: Any) -> None:
    c = dk.containers.run(IMAGE, ["sleep", "1d"], detach=True, mem_limit="32m")
    assert sh(c, READ_LIMIT) == str(32 * MIB)
    r = corral.docker("update", "-m", "64m", "--memory-swap", "128m", c.id)
    assert r.returncode == 0, r.stderr
    assert sh(c, READ_LIMIT) == str(64 * MIB)
    r = corral.docker("stats", "--no-stream", "--format", "{{.MemUsage}}", c.id)
    assert r.stdout.strip().endswith("/ 64MiB"), r.stdout
    c.reload()
    assert (c.attrs["HostConfig"]["Memory"], c.attrs["HostConfig"]["MemorySwap"]) == (
        64 * MIB,
        128 * MIB,
    )


def test_update_through_docker_py_answers_no_warnings(dk: Any) -> None:
    c = dk.containers.run(IMAGE, ["sleep", "1d"], detach=True)
    assert c.update(mem_limit="48m", memswap_limit="96m", cpu_shares=512) == {"Warnings": []}
    assert sh(c, READ_LIMIT) == str(48 * MIB)
    shares = "cat /sys/fs/cgroup/cpu/cpu.shares 2>/dev/null || cat /sys/fs/cgroup/cpu.weight"
    assert sh(c, shares) in ("512", "20")  # v2: runc's weight for 512 shares


def test_update_pids_limit_bounds_forks_at_once(corral: Daemon, dk: Any) -> None:
    c = dk.containers.run(IMAGE, ["sleep", "1d"], detach=True)
    r = corral.cli("update", "--pids-limit", "8", c.id)
    assert r.returncode == 0, r.stderr
    assert sh(c, READ_PIDS) == "8"
    spawn = "i=0; while [ $i -lt 20 ]; do sleep 1d >/dev/null 2>&1 & i=$((i+1)); done; "
    res = c.exec_run(["sh", "-c", spawn])
    assert b"fork" in res.output.lower(), res.output  # busybox sh: can't fork
    r = corral.docker("stats", "--no-stream", "--format", "{{.PIDs}}", c.id)
    assert 1 < int(r.stdout) <= 8, r.stdout  # the sleeps that did start, bounded


def test_update_refuses_what_it_cannot_apply_by_name(corral: Daemon, dk: Any) -> None:
    c = dk.containers.run(IMAGE, ["sleep", "1d"], detach=True)
    r = corral.docker("update", "--blkio-weight", "300", c.id)
    assert r.returncode == 1
    assert "BlkioWeight" in r.stderr, r.stderr
    with pytest.raises(docker.errors.APIError) as err:
        c.update(kernel_memory="64m")
    assert err.value.status_code == 400
    assert "KernelMemory" in str(err.value)
    c.reload()
    assert not c.attrs["HostConfig"].get("BlkioWeight")
    assert not c.attrs["HostConfig"].get("KernelMemory")


def test_update_memory_above_the_swap_limit_needs_a_swap_limit(corral: Daemon, dk: Any) -> None:
    """Docker's rule: without --memory-swap the default (2x memory) stays, so raising
    memory above it is refused; with it the update goes through."""
    c = dk.containers.run(IMAGE, ["sleep", "1d"], detach=True, mem_limit="32m")
    r = corral.docker("update", "-m", "100m", c.id)
    assert r.returncode == 1
    assert "Memory limit should be smaller than already set memoryswap limit" in r.stderr
    assert sh(c, READ_LIMIT) == str(32 * MIB)
    r = corral.docker("update", "-m", "100m", "--memory-swap", "-1", c.id)
    assert r.returncode == 0, r.stderr
    assert sh(c, READ_LIMIT) == str(100 * MIB)


def test_update_below_usage_is_the_kernels_error_and_changes_nothing(
    corral: Daemon, dk: Any
) -> None:
    c = dk.containers.run(
        IMAGE,
        ["sleep", "1d"],
        detach=True,
        mem_limit="64m",
        memswap_limit="64m",
        tmpfs={"/fill": "size=40m"},
    )
    sh(c, "dd if=/dev/zero of=/fill/data bs=1M count=30 2>/dev/null")
    r = corral.docker("update", "-m", "8m", "--memory-swap", "8m", c.id)
    assert r.returncode == 1
    assert "Cannot update container" in r.stderr, r.stderr
    assert sh(c, READ_LIMIT) == str(64 * MIB)
    c.reload()
    assert c.attrs["HostConfig"]["Memory"] == 64 * MIB


def test_update_outlives_a_restart_and_applies_to_a_stopped_container(
    corral: Daemon, dk: Any
) -> None:
    c = dk.containers.run(IMAGE, ["sleep", "1d"], detach=True)
    limits = ["-m", "40m", "--memory-swap", "80m", "--pids-limit", "20"]
    assert corral.docker("update", *limits, c.id).returncode == 0
    assert (sh(c, READ_LIMIT), sh(c, READ_PIDS)) == (str(40 * MIB), "20")
    c.restart(timeout=0)
    assert sh(c, READ_LIMIT) == str(40 * MIB)
    assert sh(c, READ_PIDS) == "20"
    c.stop(timeout=0)
    assert corral.docker("update", "-m", "44m", "--memory-swap", "88m", c.id).returncode == 0
    c.start()
    assert sh(c, READ_LIMIT) == str(44 * MIB)


def test_create_stores_dockers_default_swap_and_checks_it(corral: Daemon, dk: Any) -> None:
    """dockerd keeps MemorySwap = 2 x Memory when only -m is given (inspect shows it)
    and refuses a swap limit below the memory limit, or one without a memory limit."""
    c = dk.containers.create(IMAGE, ["true"], mem_limit="32m")
    assert c.attrs["HostConfig"]["MemorySwap"] == 64 * MIB
    r = corral.docker("run", "--rm", "-m", "32m", "--memory-swap", "16m", IMAGE, "true")
    assert r.returncode == 125
    assert "Minimum memoryswap limit should be larger than memory limit" in r.stderr
    r = corral.docker("create", "--memory-swap", "16m", IMAGE, "true")
    assert r.returncode == 1  # docker create: a daemon error is 1 (run: 125)
    assert "You should always set the Memory limit when using Memoryswap limit" in r.stderr


READ_QUOTA = (
    "cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us 2>/dev/null || cut -d' ' -f1 /sys/fs/cgroup/cpu.max"
)
READ_CPUS = "cat /sys/fs/cgroup/cpuset/cpuset.cpus 2>/dev/null || cat /sys/fs/cgroup/cpuset.cpus"


def test_cpu_quota_period_and_cpuset_at_create_and_live(corral: Daemon, dk: Any) -> None:
    r = corral.docker("run", "-d", "--cpu-quota", "30000", "--cpu-period", "100000",
                      "--cpuset-cpus", "0", IMAGE, "sleep", "1d")  # fmt: skip
    assert r.returncode == 0, r.stderr
    c = dk.containers.get(r.stdout.strip())
    assert (sh(c, READ_QUOTA), sh(c, READ_CPUS)) == ("30000", "0")
    assert c.update(cpu_quota=60000, cpuset_cpus="0-1") == {"Warnings": []}
    assert (sh(c, READ_QUOTA), sh(c, READ_CPUS)) == ("60000", "0-1")
    r = corral.docker("update", "--cpus", "1", c.id)
    assert r.returncode == 1
    assert "Nano CPUs cannot be updated as CPU Period has already been set" in r.stderr


def test_cpu_checks_are_dockerds(corral: Daemon) -> None:
    cases = [
        (["--cpus", "1", "--cpu-quota", "50000"], "Nano CPUs and CPU Quota cannot both be set"),
        (["--cpu-period", "999"], "CPU cfs period can not be less than 1ms (i.e. 1000)"),
        (["--cpu-quota", "10"], "CPU cfs quota can not be less than 1ms (i.e. 1000)"),
        (["--cpuset-cpus", "1-0"], "Invalid value 1-0 for cpuset cpus"),
        (["--cpuset-cpus", "0-4095"], "Requested CPUs are not available - requested 0-4095"),
        (["--cpuset-mems", "x"], "Invalid value x for cpuset mems"),
    ]
    for flags, message in cases:
        r = corral.docker("run", "--rm", *flags, IMAGE, "true")
        assert (r.returncode, message in r.stderr) == (125, True), (flags, r.stderr)
