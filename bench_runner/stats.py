"""Latency statistics from raw samples, and the checks that say whether to trust them.

The checks: the coefficient of variation and the drift between rounds of raw samples
(`check_stability`), the drift between the rounds' means of a tool's aggregate
(`check_round_means`), and the share of each round's time in which runnable tasks
waited for a CPU (`cpu_pressure`, `cpu_pressure_note`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import numpy as np

if TYPE_CHECKING:
    from bench_runner.harness.base import EnvironmentReading

BOOTSTRAP_RESAMPLES = 2000
TRIM_FRACTION = 0.10
# Bounds the memory of one vectorised bootstrap batch (resamples x samples values).
_BOOTSTRAP_BATCH_VALUES = 2_000_000


@dataclass(frozen=True)
class LatencyStats:
    """Summary of one set of latency samples, all in milliseconds.

    `trimmed_mean_ms` averages the middle 80% (the lowest and highest 10% dropped, as
    ExecuTorch's benchmark app reports); `std_ms` is the sample standard deviation;
    `cv` is std / mean; `ci95_low_ms`..`ci95_high_ms` is a percentile-bootstrap 95%
    confidence interval of the median with a fixed seed, so it is reproducible.
    """

    n: int
    min_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    trimmed_mean_ms: float
    std_ms: float
    cv: float
    ci95_low_ms: float
    ci95_high_ms: float

    @classmethod
    def from_samples(cls, samples_ms: Sequence[float], seed: int = 0) -> LatencyStats:
        samples = np.asarray(samples_ms, dtype=np.float64)
        if samples.ndim != 1 or samples.size == 0:
            raise ValueError("LatencyStats needs a non-empty sequence of samples")
        p50, p90, p99 = np.percentile(samples, [50, 90, 99])
        mean = float(samples.mean())
        std = float(samples.std(ddof=1)) if samples.size > 1 else 0.0
        low, high = bootstrap_median_ci(samples, seed=seed)
        return cls(
            n=int(samples.size),
            min_ms=float(samples.min()),
            p50_ms=float(p50),
            p90_ms=float(p90),
            p99_ms=float(p99),
            mean_ms=mean,
            trimmed_mean_ms=trimmed_mean(samples),
            std_ms=std,
            cv=std / mean if mean > 0 else 0.0,
            ci95_low_ms=low,
            ci95_high_ms=high,
        )


def trimmed_mean(samples: Sequence[float], fraction: float = TRIM_FRACTION) -> float:
    """Mean after dropping floor(fraction * n) of the lowest and of the highest samples."""
    ordered = np.sort(np.asarray(samples, dtype=np.float64))
    cut = int(np.floor(fraction * ordered.size))
    return float(ordered[cut : ordered.size - cut].mean())


def bootstrap_medians(
    samples: Sequence[float], rng: np.random.Generator, resamples: int = BOOTSTRAP_RESAMPLES
) -> np.ndarray:
    """Medians of `resamples` bootstrap resamples of `samples`, drawn from `rng`.

    Vectorised in batches that bound the memory of one (resamples x samples) draw.
    """
    values = np.asarray(samples, dtype=np.float64)
    batch = max(1, _BOOTSTRAP_BATCH_VALUES // values.size)
    medians = []
    for start in range(0, resamples, batch):
        count = min(batch, resamples - start)
        indices = rng.integers(0, values.size, size=(count, values.size))
        medians.append(np.median(values[indices], axis=1))
    return np.concatenate(medians)


def bootstrap_median_ci(
    samples: Sequence[float], seed: int = 0, resamples: int = BOOTSTRAP_RESAMPLES, level: float = 0.95
) -> tuple[float, float]:
    """Percentile-bootstrap confidence interval of the median."""
    medians = bootstrap_medians(samples, np.random.default_rng(seed), resamples)
    tail = (1.0 - level) / 2 * 100
    low, high = np.percentile(medians, [tail, 100 - tail])
    return float(low), float(high)


@dataclass(frozen=True)
class Stability:
    """Whether a measurement is steady enough to trust.

    `round_medians_ms` holds the median of each round; `drift` is their spread
    (max - min) relative to the overall median. `note` is empty when stable and
    otherwise says which limit was exceeded.
    """

    round_medians_ms: tuple[float, ...]
    drift: float
    stable: bool
    note: str


def check_stability(
    samples_ms: Sequence[float], round_index: Sequence[int], stats: LatencyStats, max_cv: float, max_drift: float
) -> Stability:
    """Compare the coefficient of variation and the drift between rounds with their limits."""
    samples = np.asarray(samples_ms, dtype=np.float64)
    rounds = np.asarray(round_index)
    medians = tuple(float(np.median(samples[rounds == r])) for r in np.unique(rounds))
    drift = round_drift(medians, stats.p50_ms)
    problems = []
    if stats.cv > max_cv:
        problems.append(f"CV {stats.cv:.1%} over {max_cv:.0%}")
    if drift > max_drift:
        problems.append(f"drift between rounds {drift:.1%} over {max_drift:.0%}")
    return Stability(round_medians_ms=medians, drift=float(drift), stable=not problems, note="; ".join(problems))


def round_drift(round_values: Sequence[float], center: float) -> float:
    """The spread (max - min) of per-round values relative to `center` (0 when `center` is 0)."""
    return (max(round_values) - min(round_values)) / center if center > 0 else 0.0


def check_round_means(round_means_ms: Sequence[float], mean_ms: float, max_drift: float) -> str:
    """"" when the rounds' means of a tool's aggregate spread within `max_drift` of their mean, else a note."""
    drift = round_drift(round_means_ms, mean_ms)
    return f"drift between the rounds' means {drift:.1%} over {max_drift:.0%}" if drift > max_drift else ""


@dataclass(frozen=True)
class CpuPressure:
    """The share of each round's wall time in which at least one runnable task waited for a CPU.

    From Linux's pressure stall information read before and after each round:
    `round_shares[i]` belongs to round `rounds[i]`; `overall` sets all the waiting
    against all the rounds' time together.
    """

    rounds: tuple[int, ...]
    round_shares: tuple[float, ...]
    overall: float

    @property
    def worst(self) -> float:
        return max(self.round_shares)

    @property
    def worst_round(self) -> int:
        return self.rounds[self.round_shares.index(self.worst)]


def cpu_pressure(readings: Sequence[EnvironmentReading]) -> CpuPressure | None:
    """The CPU pressure of each round that has a "before" and an "after" reading with the counter.

    A round's span runs from its earliest "before" to its latest "after" reading; its
    share is the growth of `cpu_pressure_total_us` over the growth of `clock_us`,
    clamped to 0..1 (a clock with 10 ms steps can overshoot slightly). None when no
    round can be measured (the device has no pressure counter).
    """
    spans: dict[int, dict[str, EnvironmentReading]] = {}
    for reading in readings:
        if reading.cpu_pressure_total_us is None or reading.clock_us is None:
            continue
        span = spans.setdefault(reading.round, {})
        known = span.get(reading.when)
        if (
            known is None
            or (reading.when == "before" and reading.clock_us < known.clock_us)
            or (reading.when == "after" and reading.clock_us > known.clock_us)
        ):
            span[reading.when] = reading
    rounds, waited, walls = [], [], []
    for round_number in sorted(spans):
        span = spans[round_number]
        if "before" not in span or "after" not in span:
            continue
        wall = span["after"].clock_us - span["before"].clock_us
        if wall <= 0:
            continue
        rounds.append(round_number)
        waited.append(min(max(span["after"].cpu_pressure_total_us - span["before"].cpu_pressure_total_us, 0), wall))
        walls.append(wall)
    if not rounds:
        return None
    return CpuPressure(
        rounds=tuple(rounds),
        round_shares=tuple(w / t for w, t in zip(waited, walls)),
        overall=sum(waited) / sum(walls),
    )


def cpu_pressure_note(pressure: CpuPressure | None, limit: float) -> str:
    """"" when no round's CPU pressure exceeds `limit` (or it is unknown), else a note saying how much."""
    if pressure is None or pressure.worst <= limit:
        return ""
    where = (
        f" in round {pressure.worst_round + 1} ({pressure.overall:.0%} over all {len(pressure.rounds)} rounds)"
        if len(pressure.rounds) > 1
        else ""
    )
    return (
        f"CPU pressure {pressure.worst:.0%} of the time{where}, over {limit:.0%}: "
        "other work competed for the CPU"
    )
