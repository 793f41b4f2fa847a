"""The report's statistics: speed-ups with bootstrap intervals, accuracy intervals, paired
accuracy differences and the interval-aware Pareto front.

    speedup(baseline_ms, row_ms, baseline_rounds=..., row_rounds=...) -> Speedup
    wilson_interval(hits, n) -> (low, high)
    mean_interval(scores) -> (low, high)
    paired_difference(scores_a, scores_b) -> AccuracyDifference
    pareto_front(accuracy, ci_low, ci_high, clearly_less_accurate) -> [FrontStatus]
    budget_state(ci_low, ci_high, budget_ms) -> WITHIN_BUDGET | OVER_BUDGET | AT_BUDGET

Speed-up against a baseline is the ratio of medians, with a percentile-bootstrap 95%
interval that resamples paired rounds where the two were measured interleaved.

A top-1 accuracy is a proportion of n images; its 95% interval is Wilson's score
interval, which stays inside 0..100 % and keeps its coverage for a few hundred images
and accuracies near 100 % (where a bootstrap over images collapses to one point). Two
artifacts evaluated on the same images are compared by the paired difference of their
top-1: a bootstrap that draws the same images for both. Only the images one got right
and the other wrong move the difference, so the bootstrap draws the counts of the four
(right, wrong) pairings from a multinomial, at any number of images. A metric scored by
a continuous per-image error (the mean absolute error of a regression model) has the
normal interval of its mean, and two artifacts' errors are compared by a bootstrap that
draws the same images for both.

The accuracy-latency Pareto front, when latencies and accuracies are known only within
intervals: a point leaves the front only if another point is at least as accurate AND
faster beyond both latency intervals (the other's upper bound is below this one's lower
bound). It ties, staying on the front unranked, with a point at least as accurate whose
latency interval overlaps its own (the data cannot say which is faster), and with a
point faster beyond both intervals that is less accurate, but not beyond the paired 95%
interval of the difference (the data cannot say which is more accurate). `bench/` uses
the same functions for its own comparisons.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Hashable, Sequence

import numpy as np

from bench_runner.stats import BOOTSTRAP_RESAMPLES, bootstrap_medians

SPEEDUP_SEED = 0
ACCURACY_SEED = 0
# The standard normal quantile of a two-sided 95% interval.
Z95 = 1.959963984540054
# Fewer shared rounds than this give too few distinct resamples for an interval.
MIN_PAIRED_ROUNDS = 5

WITHIN_BUDGET, OVER_BUDGET, AT_BUDGET = "within", "over", "at budget"
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


def budget_state(ci_low_ms: float, ci_high_ms: float, budget_ms: float) -> str:
    """Whether a latency fits a budget: WITHIN_BUDGET when its whole 95% interval is at or
    below it, OVER_BUDGET when the whole interval is above it, AT_BUDGET when it straddles it."""
    if ci_high_ms <= budget_ms:
        return WITHIN_BUDGET
    if ci_low_ms > budget_ms:
        return OVER_BUDGET
    return AT_BUDGET


def wilson_interval(hits: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson's score interval of the proportion hits / n, as fractions (95% for the default z)."""
    if n <= 0 or not 0 <= hits <= n:
        raise ValueError(f"wilson_interval needs 0 <= hits <= n and n > 0, got {hits} of {n}")
    p = hits / n
    centre = p + z * z / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    denominator = 1 + z * z / n
    return max(0.0, (centre - spread) / denominator), min(1.0, (centre + spread) / denominator)


def mean_interval(scores: Sequence[float], z: float = Z95) -> tuple[float, float]:
    """The normal interval of the mean of per-image scores (95% for the default z)."""
    values = np.asarray(scores, dtype=np.float64)
    if values.size == 0:
        raise ValueError("mean_interval needs at least one score")
    half = z * values.std(ddof=1) / math.sqrt(values.size) if values.size > 1 else 0.0
    mean = float(values.mean())
    return mean - half, mean + half


@dataclass(frozen=True)
class AccuracyDifference:
    """mean score(a) - mean score(b) on the same `n` images (for top-1 hits, the difference
    of the top-1 as a fraction), with its paired-bootstrap 95% interval `ci_low`..`ci_high`;
    `a_only` / `b_only` count the images a / b scored higher on (for hits: got right
    where the other did not)."""

    difference: float
    ci_low: float
    ci_high: float
    n: int
    a_only: int
    b_only: int


def paired_difference(
    scores_a: Sequence[float], scores_b: Sequence[float], seed: int = ACCURACY_SEED,
    resamples: int = BOOTSTRAP_RESAMPLES, level: float = 0.95,
) -> AccuracyDifference:
    """The paired difference of two artifacts' mean per-image score on the same images
    (scores in the same image order): top-1 hits (True/False or 1/0), or any other score."""
    a, b = np.asarray(scores_a, dtype=np.float64), np.asarray(scores_b, dtype=np.float64)
    if a.shape != b.shape or a.size == 0:
        raise ValueError(f"paired_difference needs scores on the same images, got {a.size} and {b.size}")
    n = int(a.size)
    a_only, b_only = int((a > b).sum()), int((a < b).sum())
    rng = np.random.default_rng(seed)
    if np.isin(a, (0.0, 1.0)).all() and np.isin(b, (0.0, 1.0)).all():
        counts = rng.multinomial(n, [a_only / n, b_only / n, 1 - (a_only + b_only) / n], resamples)
        differences = (counts[:, 0] - counts[:, 1]) / n
        difference = (a_only - b_only) / n
    else:
        per_image = a - b
        differences = per_image[rng.integers(0, n, size=(resamples, n))].mean(axis=1)
        difference = float(per_image.mean())
    tail = (1.0 - level) / 2 * 100
    low, high = np.percentile(differences, [tail, 100 - tail])
    return AccuracyDifference(difference, float(low), float(high), n, a_only, b_only)


@dataclass(frozen=True)
class FrontStatus:
    """Where one point stands.

    `state` is FRONT, TIE or DOMINATED; `others` holds the indices of the points that
    dominate it (DOMINATED) or whose intervals it ties with (TIE); empty for FRONT.
    """

    state: str
    others: tuple[int, ...] = ()


def pareto_front(
    accuracy: Sequence[float], ci_low: Sequence[float], ci_high: Sequence[float],
    clearly_less_accurate: Callable[[int, int], bool] | None = None,
) -> list[FrontStatus]:
    """The front status of every point (higher `accuracy` is better, lower latency is
    better; an error metric is passed negated).

    `ci_low[i]`..`ci_high[i]` is point i's latency interval (e.g. the 95% interval of
    its median). Points with equal accuracy count as "at least as accurate" both ways.
    `clearly_less_accurate(j, i)` says whether point j is less accurate than point i
    beyond the paired interval of their difference; without it, any lower accuracy is.
    """
    if not len(accuracy) == len(ci_low) == len(ci_high):
        raise ValueError("pareto_front needs one accuracy and one interval per point")
    less = clearly_less_accurate or (lambda j, i: accuracy[j] < accuracy[i])
    statuses = []
    for i in range(len(accuracy)):
        others = [j for j in range(len(accuracy)) if j != i]
        faster = [j for j in others if ci_high[j] < ci_low[i]]
        dominating = tuple(j for j in faster if accuracy[j] >= accuracy[i])
        if dominating:
            statuses.append(FrontStatus(DOMINATED, dominating))
            continue
        tied = tuple(j for j in others if (accuracy[j] >= accuracy[i] and ci_low[j] <= ci_high[i])
                     or (j in faster and not less(j, i)))
        statuses.append(FrontStatus(TIE, tied) if tied else FrontStatus(FRONT))
    return statuses
