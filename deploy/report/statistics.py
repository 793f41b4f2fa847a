"""The report's statistics: speed-ups with bootstrap intervals and the interval-aware Pareto front.

    speedup(baseline_ms, row_ms, baseline_rounds=..., row_rounds=...) -> Speedup
    pareto_front(top1, ci_low, ci_high) -> [FrontStatus]

Speed-up against a baseline is the ratio of medians, with a percentile-bootstrap 95%
interval that resamples paired rounds where the two were measured interleaved.

The accuracy-latency Pareto front, when latencies are known only within intervals: a
point leaves the front only if another point is at least as accurate AND faster beyond
both confidence intervals (the other's upper bound is below this one's lower bound). A
point that stays on the front although a point at least as accurate has an overlapping
interval is a tie: the data cannot say which of the two is faster, so they are not
ranked. `bench/` uses the same functions for its own comparisons.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Hashable, Sequence

import numpy as np

from bench_runner.stats import BOOTSTRAP_RESAMPLES, bootstrap_medians

SPEEDUP_SEED = 0
# Fewer shared rounds than this give too few distinct resamples for an interval.
MIN_PAIRED_ROUNDS = 5

FRONT = "front"
TIE = "tie"
DOMINATED = "dominated"


@dataclass(frozen=True)
class Speedup:
    """`ratio` = median(baseline) / median(row): above 1 the row is faster than the baseline.

    `ci_low`..`ci_high` is a percentile-bootstrap 95% interval of that ratio, from
    `resamples` resamples with seed `seed`. `resampled` says what was resampled:

    - "paired rounds": the two were measured interleaved in the same rounds (A B A B ...),
      so whole rounds are drawn, the same rounds for both sides, and the ratio of the
      medians of the drawn rounds' samples is taken. Samples of one round share its
      conditions (load, clock, cache), so they are not independent; rounds are, closer to
      it, and drawing the same rounds for both keeps what they shared out of the ratio.
    - "samples": single samples of each side drawn independently (no shared rounds, or
      fewer than MIN_PAIRED_ROUNDS of them). Under drifting load such an interval is
      too narrow.
    """

    ratio: float
    ci_low: float
    ci_high: float
    resamples: int
    seed: int
    resampled: str


def speedup(
    baseline_ms: Sequence[float],
    row_ms: Sequence[float],
    seed: int = SPEEDUP_SEED,
    resamples: int = BOOTSTRAP_RESAMPLES,
    level: float = 0.95,
    baseline_rounds: Sequence[Hashable] | None = None,
    row_rounds: Sequence[Hashable] | None = None,
) -> Speedup:
    """The row's speed-up over the baseline from both raw sample sets.

    `baseline_rounds[i]` / `row_rounds[i]` name the round in which sample i was taken
    (any hashable, e.g. (run, repetition, round)); rounds with the same name were
    measured together. Given for both, with the same rounds on both sides, the interval
    comes from resampling paired rounds.
    """
    baseline = np.asarray(baseline_ms, dtype=np.float64)
    row = np.asarray(row_ms, dtype=np.float64)
    if baseline.size == 0 or row.size == 0:
        raise ValueError("speedup needs samples of both the baseline and the row")
    rng = np.random.default_rng(seed)
    pairs = _paired_rounds(baseline, baseline_rounds, row, row_rounds)
    if pairs is not None:
        ratios, resampled = _paired_round_ratios(pairs, rng, resamples), "paired rounds"
    else:
        ratios = bootstrap_medians(baseline, rng, resamples) / bootstrap_medians(row, rng, resamples)
        resampled = "samples"
    tail = (1.0 - level) / 2 * 100
    low, high = np.percentile(ratios, [tail, 100 - tail])
    return Speedup(
        ratio=float(np.median(baseline) / np.median(row)),
        ci_low=float(low),
        ci_high=float(high),
        resamples=resamples,
        seed=seed,
        resampled=resampled,
    )


def _by_round(samples: np.ndarray, rounds: Sequence[Hashable]) -> dict[Hashable, np.ndarray]:
    if len(rounds) != samples.size:
        raise ValueError(f"{samples.size} samples but {len(rounds)} round names")
    names = list(rounds)
    return {name: samples[[i for i, n in enumerate(names) if n == name]] for name in dict.fromkeys(names)}


def _paired_rounds(baseline, baseline_rounds, row, row_rounds) -> list[tuple[np.ndarray, np.ndarray]] | None:
    """[(baseline samples, row samples)] per shared round, or None when rounds cannot be paired."""
    if baseline_rounds is None or row_rounds is None:
        return None
    first, second = _by_round(baseline, baseline_rounds), _by_round(row, row_rounds)
    if set(first) != set(second) or len(first) < MIN_PAIRED_ROUNDS:
        return None
    return [(first[name], second[name]) for name in first]


def _paired_round_ratios(
    pairs: list[tuple[np.ndarray, np.ndarray]], rng: np.random.Generator, resamples: int
) -> np.ndarray:
    ratios = np.empty(resamples)
    for i in range(resamples):
        drawn = rng.integers(0, len(pairs), size=len(pairs))
        ratios[i] = (np.median(np.concatenate([pairs[j][0] for j in drawn]))
                     / np.median(np.concatenate([pairs[j][1] for j in drawn])))
    return ratios


@dataclass(frozen=True)
class FrontStatus:
    """Where one point stands.

    `state` is FRONT, TIE or DOMINATED; `others` holds the indices of the points that
    dominate it (DOMINATED) or whose intervals it ties with (TIE); empty for FRONT.
    """

    state: str
    others: tuple[int, ...] = ()


def pareto_front(top1: Sequence[float], ci_low: Sequence[float], ci_high: Sequence[float]) -> list[FrontStatus]:
    """The front status of every point (higher `top1` is better, lower latency is better).

    `ci_low[i]`..`ci_high[i]` is point i's latency interval (e.g. the 95% interval of
    its median). Points with equal accuracy count as "at least as accurate" both ways.
    """
    if not len(top1) == len(ci_low) == len(ci_high):
        raise ValueError("pareto_front needs one accuracy and one interval per point")
    statuses = []
    for i in range(len(top1)):
        rivals = [j for j in range(len(top1)) if j != i and top1[j] >= top1[i]]
        dominating = tuple(j for j in rivals if ci_high[j] < ci_low[i])
        if dominating:
            statuses.append(FrontStatus(DOMINATED, dominating))
            continue
        tied = tuple(j for j in rivals if ci_low[j] <= ci_high[i])
        statuses.append(FrontStatus(TIE, tied) if tied else FrontStatus(FRONT))
    return statuses
