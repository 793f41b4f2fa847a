import statistics

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench_runner.stats import LatencyStats, bootstrap_median_ci, check_stability, trimmed_mean


def skewed_samples(n: int, seed: int = 1) -> list[float]:
    rng = np.random.default_rng(seed)
    return list(5.0 + rng.gamma(2.0, 0.5, size=n))


def test_summary_matches_independent_computations():
    samples = skewed_samples(101)
    stats = LatencyStats.from_samples(samples)
    ordered = sorted(samples)
    assert stats.n == 101
    assert stats.min_ms == ordered[0]
    assert stats.p50_ms == pytest.approx(statistics.median(samples))
    # with 101 samples the linear-interpolation p90 and p99 fall exactly on order statistics
    assert stats.p90_ms == pytest.approx(ordered[90])
    assert stats.p99_ms == pytest.approx(ordered[99])
    assert stats.mean_ms == pytest.approx(statistics.fmean(samples))
    assert stats.std_ms == pytest.approx(statistics.stdev(samples))
    assert stats.cv == pytest.approx(statistics.stdev(samples) / statistics.fmean(samples))


def test_trimmed_mean_drops_a_tenth_on_each_side():
    samples = [1000.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0, 15.0, 16.0, 17.0, 18.0, -1000.0]
    # 20 samples: the 2 lowest (-1000, 1) and the 2 highest (18, 1000) go
    assert trimmed_mean(samples) == pytest.approx(statistics.fmean(range(2, 18)))
    assert LatencyStats.from_samples(samples).trimmed_mean_ms == pytest.approx(statistics.fmean(range(2, 18)))


def test_bootstrap_interval_is_reproducible_and_narrows_with_more_samples():
    few, many = skewed_samples(15), skewed_samples(1500)
    assert bootstrap_median_ci(few, seed=3) == bootstrap_median_ci(few, seed=3)
    low_few, high_few = bootstrap_median_ci(few)
    low_many, high_many = bootstrap_median_ci(many)
    assert high_many - low_many < high_few - low_few


def test_bootstrap_handles_more_samples_than_one_batch_holds():
    samples = skewed_samples(5000)
    low, high = bootstrap_median_ci(samples, resamples=600)
    assert low <= statistics.median(samples) <= high


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(min_value=0.1, max_value=100.0), min_size=5, max_size=200))
def test_order_and_interval_properties(samples):
    stats = LatencyStats.from_samples(samples)
    assert stats.min_ms <= stats.p50_ms <= stats.p90_ms <= stats.p99_ms <= max(samples)
    assert stats.ci95_low_ms <= stats.p50_ms <= stats.ci95_high_ms
    assert min(samples) <= stats.trimmed_mean_ms <= max(samples)


def test_single_sample_has_zero_spread():
    stats = LatencyStats.from_samples([3.0])
    assert (stats.std_ms, stats.cv, stats.ci95_low_ms, stats.ci95_high_ms) == (0.0, 0.0, 3.0, 3.0)


def test_no_samples_is_an_error():
    with pytest.raises(ValueError):
        LatencyStats.from_samples([])


def test_stability_flags_drift_between_rounds():
    steady = [10.0, 10.1, 9.9, 10.0] * 3
    drifting = [10.0, 10.1, 9.9, 10.0] + [11.0, 11.1, 10.9, 11.0] + [12.0, 12.1, 11.9, 12.0]
    rounds = [0] * 4 + [1] * 4 + [2] * 4

    ok = check_stability(steady, rounds, LatencyStats.from_samples(steady), max_cv=0.1, max_drift=0.05)
    assert ok.stable and ok.note == "" and ok.round_medians_ms == (10.0, 10.0, 10.0)

    stats = LatencyStats.from_samples(drifting)
    bad = check_stability(drifting, rounds, stats, max_cv=0.1, max_drift=0.05)
    assert not bad.stable
    assert bad.drift == pytest.approx((12.0 - 10.0) / stats.p50_ms)
    assert "drift" in bad.note and "CV" not in bad.note


def test_stability_flags_a_high_coefficient_of_variation():
    noisy = [1.0, 3.0] * 10
    result = check_stability(noisy, [0] * 10 + [1] * 10, LatencyStats.from_samples(noisy), max_cv=0.1, max_drift=0.5)
    assert not result.stable and "CV" in result.note
