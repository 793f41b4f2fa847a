"""The Pareto rule under latency intervals, and the speed-up's bootstrap interval."""

import numpy as np
import pytest

from deploy.report.statistics import DOMINATED, FRONT, TIE, pareto_front, speedup


def states(top1, low, high):
    return [(status.state, status.others) for status in pareto_front(top1, low, high)]


def test_a_point_slower_beyond_both_intervals_and_no_more_accurate_leaves_the_front():
    # 0 is faster beyond the intervals and more accurate than 1.
    assert states([80.0, 79.0], [10.0, 12.0], [11.0, 13.0]) == [(FRONT, ()), (DOMINATED, (0,))]


def test_equal_accuracy_counts_as_at_least_as_accurate():
    assert states([80.0, 80.0], [10.0, 12.0], [11.0, 13.0]) == [(FRONT, ()), (DOMINATED, (0,))]


def test_overlapping_intervals_make_a_tie_not_a_ranking():
    # 1 is at least as accurate as 0 and their intervals overlap: 0 stays, as a tie with 1.
    assert states([79.0, 80.0], [10.0, 10.5], [11.0, 11.5]) == [(TIE, (1,)), (FRONT, ())]


def test_equal_accuracy_and_overlapping_intervals_tie_both_ways():
    assert states([80.0, 80.0], [10.0, 10.5], [11.0, 11.5]) == [(TIE, (1,)), (TIE, (0,))]


def test_points_that_differ_only_in_accuracy():
    # Identical latency intervals: the less accurate point cannot be shown slower, so it ties.
    assert states([80.0, 81.0], [10.0, 10.0], [11.0, 11.0]) == [(TIE, (1,)), (FRONT, ())]


def test_touching_intervals_are_not_beyond_each_other():
    assert states([79.0, 80.0], [11.0, 10.0], [12.0, 11.0]) == [(TIE, (1,)), (FRONT, ())]


def test_a_more_accurate_but_clearly_slower_point_does_not_remove_a_faster_one():
    assert states([79.0, 80.0], [10.0, 20.0], [11.0, 21.0]) == [(FRONT, ()), (FRONT, ())]


def test_a_less_accurate_faster_point_never_dominates():
    # 1 is much faster but less accurate: 0 stays on the front.
    assert states([80.0, 70.0], [20.0, 1.0], [21.0, 2.0]) == [(FRONT, ()), (FRONT, ())]


def test_dominators_are_all_named():
    top1 = [78.0, 80.0, 81.0, 77.0]
    low = [10.0, 5.0, 6.0, 30.0]
    high = [11.0, 6.0, 7.0, 31.0]
    result = states(top1, low, high)
    assert result[0] == (DOMINATED, (1, 2))
    assert result[3] == (DOMINATED, (0, 1, 2))
    assert result[1] == (TIE, (2,))  # 2 is more accurate; 6.0 touches 1's upper bound
    assert result[2] == (FRONT, ())


def test_pareto_front_rejects_mismatched_lengths():
    with pytest.raises(ValueError):
        pareto_front([1.0, 2.0], [1.0], [2.0])


def test_speedup_of_exactly_scaled_samples_is_the_scale_with_an_interval_around_it():
    rng = np.random.default_rng(3)
    baseline = 10.0 + rng.gamma(2.0, 0.2, size=200)
    result = speedup(baseline, baseline / 2.5)
    assert result.ratio == pytest.approx(2.5)
    assert result.ci_low < 2.5 < result.ci_high
    assert result.ci_high - result.ci_low < 0.2


def test_speedup_interval_is_reproducible_with_its_fixed_seed():
    rng = np.random.default_rng(4)
    baseline, row = rng.normal(10, 0.3, 80), rng.normal(8, 0.3, 60)
    assert speedup(baseline, row) == speedup(baseline, row)
    assert speedup(baseline, row, seed=1) != speedup(baseline, row, seed=2)


def test_speedup_needs_samples_on_both_sides():
    with pytest.raises(ValueError):
        speedup([], [1.0, 2.0])


def _rounds(count: int, per_round: int) -> list[int]:
    return [r for r in range(count) for _ in range(per_round)]


def test_paired_rounds_take_out_load_both_rows_shared():
    """Two rows measured interleaved under load that changed from round to round: the
    load hit both, so resampling paired rounds gives a tighter interval of the true
    ratio than resampling single samples."""
    rng = np.random.default_rng(5)
    load = np.repeat(rng.uniform(1.0, 1.6, 6), 30)  # each round's slow-down, shared
    baseline = 10.0 * load * (1 + rng.normal(0, 0.01, load.size))
    row = 8.0 * load * (1 + rng.normal(0, 0.01, load.size))
    rounds = _rounds(6, 30)
    paired = speedup(baseline, row, baseline_rounds=rounds, row_rounds=rounds)
    independent = speedup(baseline, row)
    assert (paired.resampled, independent.resampled) == ("paired rounds", "samples")
    assert paired.ci_low < 1.25 < paired.ci_high
    assert paired.ci_high - paired.ci_low < (independent.ci_high - independent.ci_low) / 3


def test_paired_rounds_widen_an_interval_that_single_samples_make_too_narrow():
    """Samples of one round share its conditions: when each round of the row sits at its
    own level, single samples pretend to 180 independent draws; rounds count 6."""
    rng = np.random.default_rng(6)
    rounds = _rounds(6, 30)
    baseline = rng.normal(10.0, 0.05, 180)
    row = np.repeat(rng.normal(8.0, 0.4, 6), 30) + rng.normal(0, 0.05, 180)
    paired = speedup(baseline, row, baseline_rounds=rounds, row_rounds=rounds)
    independent = speedup(baseline, row)
    assert paired.ci_high - paired.ci_low > 3 * (independent.ci_high - independent.ci_low)


@pytest.mark.parametrize(("baseline_rounds", "row_rounds"), [
    (_rounds(4, 10), _rounds(4, 10)),
    (_rounds(5, 8), [r + 1 for r in _rounds(5, 8)]),
], ids=["too few rounds", "other rounds"])
def test_rows_without_enough_shared_rounds_fall_back_to_single_samples(baseline_rounds, row_rounds):
    rng = np.random.default_rng(7)
    baseline, row = rng.normal(10.0, 0.2, len(baseline_rounds)), rng.normal(8.0, 0.2, len(row_rounds))
    result = speedup(baseline, row, baseline_rounds=baseline_rounds, row_rounds=row_rounds)
    assert result.resampled == "samples"
    assert result == speedup(baseline, row)
