"""Speed-up against a baseline: the ratio of medians with a bootstrap interval."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from bench_runner.stats import BOOTSTRAP_RESAMPLES, bootstrap_medians

SPEEDUP_SEED = 0


@dataclass(frozen=True)
class Speedup:
    """`ratio` = median(baseline) / median(row): above 1 the row is faster than the baseline.

    `ci_low`..`ci_high` is a percentile-bootstrap 95% interval of that ratio: both
    sample sets are resampled independently (`resamples` times, seed `seed`) and the
    ratio of the resampled medians is taken each time.
    """

    ratio: float
    ci_low: float
    ci_high: float
    resamples: int
    seed: int


def speedup(
    baseline_ms: Sequence[float],
    row_ms: Sequence[float],
    seed: int = SPEEDUP_SEED,
    resamples: int = BOOTSTRAP_RESAMPLES,
    level: float = 0.95,
) -> Speedup:
    """The row's speed-up over the baseline from both raw sample sets."""
    baseline = np.asarray(baseline_ms, dtype=np.float64)
    row = np.asarray(row_ms, dtype=np.float64)
    if baseline.size == 0 or row.size == 0:
        raise ValueError("speedup needs samples of both the baseline and the row")
    rng = np.random.default_rng(seed)
    ratios = bootstrap_medians(baseline, rng, resamples) / bootstrap_medians(row, rng, resamples)
    tail = (1.0 - level) / 2 * 100
    low, high = np.percentile(ratios, [tail, 100 - tail])
    return Speedup(
        ratio=float(np.median(baseline) / np.median(row)),
        ci_low=float(low),
        ci_high=float(high),
        resamples=resamples,
        seed=seed,
    )

