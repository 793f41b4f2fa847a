"""The measurement protocol: what to run, in which order, and how raw timings become records.

For each repetition and each thread count the protocol runs every variant under the
same settings, interleaved in rounds (A B C A B C ...) so that drift and heat hit all
variants alike, waits `cooldown_seconds` between configurations, and turns the raw
timings into BenchRecords. With a store, every configuration's records are appended as
soon as they are measured, so an interrupted sweep loses nothing and a resumed one
measures nothing twice.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, fields, replace
from typing import Callable, Sequence

from bench_runner.devices.base import Device, DeviceError
from bench_runner.harness.base import (
    Harness,
    HarnessError,
    RawTiming,
    RunSettings,
    Variant,
    merge_rounds,
)
from bench_runner.records import ArtifactInfo, BenchRecord, toolchain_versions
from bench_runner.stats import LatencyStats
from bench_runner.store import ResultsStore
from lowering.errors import VitdeployError

_HEX_MASK = re.compile(r"^(0x)?[0-9a-fA-F]+$")


class SettingsError(VitdeployError):
    """A measurement setting is out of range."""


@dataclass(frozen=True)
class MeasurementSettings:
    """How to measure: defaults come from the device profile, overridable per run.

    `runs` and `min_seconds` are minimums per variant summed over all `rounds` (each
    round takes its share); every round starts with `warmup` untimed runs. `threads`
    is the thread sweep; `cpu_mask` a hexadecimal affinity mask ("f0" = cores 4-7).
    `cooldown_seconds` is the idle time between configurations; `repetitions` repeats
    the whole sweep. A record is flagged unstable when its coefficient of variation
    exceeds `max_cv` or its per-round medians spread more than `max_drift` of the
    overall median. `timeout_seconds` bounds one harness call.
    """

    threads: tuple[int, ...] = (1,)
    cpu_mask: str | None = None
    warmup: int = 10
    runs: int = 50
    min_seconds: float = 2.0
    rounds: int = 5
    cooldown_seconds: float = 0.0
    repetitions: int = 1
    seed: int = 0
    timeout_seconds: float = 600.0
    max_cv: float = 0.10
    max_drift: float = 0.05

    def __post_init__(self) -> None:
        threads = tuple(self.threads)
        object.__setattr__(self, "threads", threads)
        if not threads or any(isinstance(t, bool) or not isinstance(t, int) or t < 1 for t in threads):
            raise SettingsError(f"threads must be a non-empty list of positive integers, got {list(threads)}")
        if len(set(threads)) != len(threads):
            raise SettingsError(f"threads lists a thread count twice: {list(threads)}")
        if self.cpu_mask is not None and not _HEX_MASK.match(self.cpu_mask):
            raise SettingsError(f"cpu_mask must be a hexadecimal mask such as 'f0', got {self.cpu_mask!r}")
        for name, minimum in (("warmup", 0), ("runs", 1), ("rounds", 1), ("repetitions", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise SettingsError(f"{name} must be an integer >= {minimum}, got {value!r}")
        for name in ("min_seconds", "cooldown_seconds"):
            if getattr(self, name) < 0:
                raise SettingsError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        for name in ("timeout_seconds", "max_cv", "max_drift"):
            if getattr(self, name) <= 0:
                raise SettingsError(f"{name} must be > 0, got {getattr(self, name)!r}")

    def with_overrides(self, **overrides) -> MeasurementSettings:
        """A copy with the given fields replaced; None values leave a field as it is."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise SettingsError(f"unknown measurement setting(s) {unknown}; known: {sorted(known)}")
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})

    def for_threads(self, threads: int) -> RunSettings:
        """The harness-level settings of one configuration (per-round minimums)."""
        return RunSettings(
            threads=threads,
            warmup=self.warmup,
            runs=math.ceil(self.runs / self.rounds),
            min_seconds=self.min_seconds / self.rounds,
            rounds=self.rounds,
            seed=self.seed,
            cpu_mask=self.cpu_mask,
            timeout_seconds=self.timeout_seconds,
        )
