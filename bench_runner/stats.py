"""Latency statistics from raw samples, and the checks that say whether to trust them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

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
    drift = (max(medians) - min(medians)) / stats.p50_ms if stats.p50_ms > 0 else 0.0
    problems = []
    if stats.cv > max_cv:
        problems.append(f"CV {stats.cv:.1%} over {max_cv:.0%}")
    if drift > max_drift:
        problems.append(f"drift between rounds {drift:.1%} over {max_drift:.0%}")
    return Stability(round_medians_ms=medians, drift=float(drift), stable=not problems, note="; ".join(problems))
