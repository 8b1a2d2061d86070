"""engine/update.py: which update fields apply, Docker's merge, the live resources."""

from __future__ import annotations

import pytest

from supervisor.engine import update
from supervisor.errors import Conflict, InvalidArgument

MIB = 1024 * 1024


def test_zero_fields_the_docker_cli_sends_pass_set_ones_are_refused_by_name() -> None:
    update.check({"BlkioWeight": 0, "CpusetCpus": "", "Devices": None, "Memory": 64 * MIB})
    with pytest.raises(InvalidArgument, match=r"BlkioWeight=300 \(--blkio-weight\) is not sup"):
        update.check({"BlkioWeight": 300})
    with pytest.raises(InvalidArgument, match="Minimum memory limit allowed is 6MB"):
        update.check({"Memory": MIB})


def test_memory_keeps_the_default_swap_docker_stored_at_create() -> None:
    hc = {"Memory": 32 * MIB, "MemorySwap": 0}
    out = update.merged(hc, {"Memory": 48 * MIB})
    assert (out["Memory"], out["MemorySwap"]) == (48 * MIB, 64 * MIB)
    with pytest.raises(Conflict, match="update the memoryswap at the same time"):
        update.merged(hc, {"Memory": 100 * MIB})
    with pytest.raises(Conflict):
        update.merged({}, {"Memory": 100 * MIB})  # no limit yet: swap 0, as in Docker
    assert update.merged(hc, {"Memory": 100 * MIB, "MemorySwap": -1})["MemorySwap"] == -1


def test_pids_limit_present_replaces_absent_keeps() -> None:
    assert update.merged({"PidsLimit": 20}, {"PidsLimit": 0})["PidsLimit"] == 0
    assert update.merged({"PidsLimit": 20}, {"PidsLimit": None})["PidsLimit"] == 20
    assert update.live_resources({"PidsLimit": 0})["pids"] == {"limit": -1}


def test_live_resources_are_what_a_start_sets() -> None:
    hc = {"Memory": 32 * MIB, "NanoCpus": 1_500_000_000, "CpuShares": 512, "PidsLimit": 9}
    assert update.live_resources(hc) == {
        "memory": {"limit": 32 * MIB, "swap": 64 * MIB},
        "cpu": {"quota": 150_000, "period": 100_000, "shares": 512},
        "pids": {"limit": 9},
    }


def test_cpu_fields_merge_as_moby_and_reach_runc() -> None:
    hc = update.merged({"CpuPeriod": 100_000}, {"CpuQuota": 20_000, "CpusetCpus": "0"})
    assert update.live_resources(hc)["cpu"] == {"quota": 20_000, "period": 100_000, "cpus": "0"}
    with pytest.raises(Conflict, match="CPU Quota cannot be updated as NanoCPUs has already"):
        update.merged({"NanoCpus": 10**9}, {"CpuQuota": 20_000})
    assert update.parse_uint_list("0-2,4") == {0, 1, 2, 4}
    with pytest.raises(InvalidArgument, match="requested 3, available: 0-1"):
        update.check_cpu({"CpusetCpus": "3"}, ("0-1", "0"))


def test_swap_without_a_memory_limit_is_refused_not_a_kernel_error() -> None:
    # found by the API body fuzz: runc update's EINVAL came back as a 500
    with pytest.raises(InvalidArgument, match="always set the Memory limit"):
        update.merged({}, {"MemorySwap": 2048 * MIB})
    with pytest.raises(InvalidArgument, match="larger than memory limit"):
        update.merged({"Memory": 64 * MIB, "MemorySwap": 128 * MIB}, {"MemorySwap": 32 * MIB})
    out = update.merged({"Memory": 64 * MIB}, {"MemorySwap": 256 * MIB})
    assert (out["Memory"], out["MemorySwap"]) == (64 * MIB, 256 * MIB)
