"""What a scenario receives: the engines, the sizes of this run, a private workdir."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.engines.base import Engine


@dataclass(frozen=True)
class Sizes:
    """How much each scenario does; `--quick` shrinks counts, never what is measured."""

    samples: int = 30  # start and floor samples per engine
    warmup: int = 3  # untimed runs per engine before samples
    fleet: int = 200  # containers for many / memory / idle
    scale: int = 1000  # containers of the scale scenario
    concurrency: int = 50  # concurrent starts and removals, the same for every engine
    fleet_rounds: int = 3  # rounds of `many`
    idle_window: float = 30.0  # seconds of idle CPU accounting
    log_lines: int = 1_000_000  # lines of 60 bytes written by the logs scenario
    log_rounds: int = 2  # rounds of each logs measurement
    soak_full: bool = False  # the soak scenario's full variant (10 min, 200 containers)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


FULL = Sizes()
QUICK = Sizes(
    samples=8,
    warmup=1,
    fleet=20,
    scale=100,
    concurrency=20,
    fleet_rounds=1,
    idle_window=5.0,
    log_lines=100_000,
    log_rounds=1,
)


@dataclass
class Bench:
    engines: list[Engine]
    sizes: Sizes
    workdir: Path
    rootfs_tar: Path

    def ordered(self, round_no: int) -> list[Engine]:
        """Engines in alternating order per round, so neither always goes first (a
        machine that is getting busier or quieter then favours neither)."""
        return self.engines if round_no % 2 == 0 else self.engines[::-1]
