import statistics

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench_runner.harness.base import EnvironmentReading
from bench_runner.stats import (
    LatencyStats,
    bootstrap_median_ci,
    check_round_means,
    check_stability,
    cpu_pressure,
    cpu_pressure_note,
    trimmed_mean,
)


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


def pressure_readings(*rounds):
    """Before/after readings per round from (wall_us, waited_us) pairs, on one running clock and counter."""
    readings, clock, total = [], 1_000_000, 5_000_000
    for number, (wall, waited) in enumerate(rounds):
        readings.append(EnvironmentReading(number, "before", cpu_pressure_total_us=total, clock_us=clock))
        clock, total = clock + wall, total + waited
        readings.append(EnvironmentReading(number, "after", cpu_pressure_total_us=total, clock_us=clock))
        clock += 100_000  # between rounds: not part of any round
        total += 100_000
    return readings


def test_cpu_pressure_is_waiting_time_over_wall_time_per_round():
    pressure = cpu_pressure(pressure_readings((1_000_000, 20_000), (2_000_000, 1_300_000), (1_000_000, 0)))
    assert pressure.rounds == (0, 1, 2)
    assert pressure.round_shares == pytest.approx((0.02, 0.65, 0.0))
    assert pressure.overall == pytest.approx(1_320_000 / 4_000_000)
    assert (pressure.worst, pressure.worst_round) == (pytest.approx(0.65), 1)


def test_cpu_pressure_needs_both_readings_of_a_round_with_the_counter():
    assert cpu_pressure([]) is None
    without_counter = [EnvironmentReading(0, "before", (1800000,)), EnvironmentReading(0, "after", (1800000,))]
    assert cpu_pressure(without_counter) is None
    half = pressure_readings((1_000_000, 500_000))[:1]
    assert cpu_pressure(half) is None


def test_cpu_pressure_spans_from_the_first_before_to_the_last_after_and_is_clamped():
    readings = [
        EnvironmentReading(0, "before", cpu_pressure_total_us=100, clock_us=1_000),
        EnvironmentReading(0, "before", cpu_pressure_total_us=50, clock_us=500),
        EnvironmentReading(0, "after", cpu_pressure_total_us=400, clock_us=1_500),
        EnvironmentReading(0, "after", cpu_pressure_total_us=2_000, clock_us=1_400),
    ]
    assert cpu_pressure(readings).round_shares == pytest.approx((350 / 1_000,))
    overshoot = [EnvironmentReading(0, "before", cpu_pressure_total_us=0, clock_us=0),
                 EnvironmentReading(0, "after", cpu_pressure_total_us=1_010_000, clock_us=1_000_000)]
    assert cpu_pressure(overshoot).worst == 1.0


def test_cpu_pressure_note_names_the_share_and_the_round():
    contended = cpu_pressure(pressure_readings((1_000_000, 20_000), (1_000_000, 540_000)))
    note = cpu_pressure_note(contended, 0.10)
    assert note.startswith("CPU pressure 54% of the time in round 2") and "28% over all 2 rounds" in note
    assert "other work competed for the CPU" in note
    assert cpu_pressure_note(contended, 0.60) == ""
    assert cpu_pressure_note(None, 0.10) == ""
    single = cpu_pressure_note(cpu_pressure(pressure_readings((1_000_000, 650_000))), 0.10)
    assert single.startswith("CPU pressure 65% of the time, over 10%")


def test_round_means_of_an_aggregate_flag_drift():
    assert check_round_means((19.0, 19.2, 19.1), 19.1, 0.05) == ""
    assert "drift between the rounds' means 10.5% over 5%" in check_round_means((19.0, 21.0), 19.0, 0.05)
