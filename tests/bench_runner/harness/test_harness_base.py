import pytest

from bench_runner.harness import HARNESSES, HarnessError, harness_class
from bench_runner.harness.base import EnvironmentReading, Harness, RawTiming, ToolAggregate, merge_rounds
from bench_runner.harness.python_agent import PythonAgentHarness


def timing(samples, peak=None, error=None, round_number=0):
    return RawTiming(
        variant_id="v", harness="native", samples_ms=tuple(samples), round_index=(0,) * len(samples),
        load_ms=10.0 + len(samples), first_inference_ms=5.0, peak_rss_kb=peak, error=error,
        environment=(EnvironmentReading(0, "before", (1000,), {}), EnvironmentReading(0, "after", (900,), {})),
    )


def test_merge_rounds_renumbers_rounds_and_keeps_the_cold_start():
    merged = merge_rounds([timing([1.0, 2.0], peak=100), timing([3.0], peak=300), timing([4.0, 5.0])])
    assert merged.samples_ms == (1.0, 2.0, 3.0, 4.0, 5.0)
    assert merged.round_index == (0, 0, 1, 2, 2)
    assert merged.load_ms == 12.0 and merged.peak_rss_kb == 300
    assert [(e.round, e.when) for e in merged.environment] == [(r, w) for r in range(3) for w in ("before", "after")]


def test_merge_rounds_fails_when_any_round_failed():
    merged = merge_rounds([timing([1.0]), timing([], error="crashed")])
    assert merged.error == "round 1: crashed" and merged.samples_ms == () and not merged.ok


def aggregate_timing(runs, mean, trimmed=None, load=None, round_number=0):
    return RawTiming(
        variant_id="v", harness="app", load_ms=load,
        aggregate=ToolAggregate.one_round(
            "the app's JSON", runs=runs, mean_ms=mean, trimmed_mean_ms=trimmed, load_ms=load
        ),
        environment=(EnvironmentReading(0, "before", cpu_pressure_total_us=10 * round_number, clock_us=round_number),),
    )


def test_merge_rounds_pools_aggregates_run_weighted_and_keeps_each_round():
    merged = merge_rounds([
        aggregate_timing(10, 20.0, 19.0, load=50.0), aggregate_timing(30, 24.0, 23.0, load=40.0, round_number=1),
    ])
    aggregate = merged.aggregate
    assert merged.ok and merged.samples_ms == () and merged.load_ms == 50.0
    assert aggregate.runs == 40 and aggregate.round_runs == (10, 30)
    assert aggregate.mean_ms == pytest.approx((10 * 20.0 + 30 * 24.0) / 40)
    assert aggregate.round_trimmed_means_ms == (19.0, 23.0) and aggregate.trimmed_mean_is_pooled
    assert aggregate.trimmed_mean_ms == pytest.approx((10 * 19.0 + 30 * 23.0) / 40)
    assert aggregate.load_ms == 50.0 and aggregate.source == "the app's JSON"
    assert [(e.round, e.cpu_pressure_total_us) for e in merged.environment] == [(0, 0), (1, 10)]


def test_one_round_aggregate_is_the_tools_own_figures():
    aggregate = ToolAggregate.one_round("tool", runs=50, mean_ms=19.0, trimmed_mean_ms=18.5)
    assert (aggregate.runs, aggregate.mean_ms, aggregate.trimmed_mean_ms) == (50, 19.0, 18.5)
    assert not aggregate.trimmed_mean_is_pooled
    assert ToolAggregate.from_dict(aggregate.to_dict()) == aggregate
    assert ToolAggregate.one_round("old runner", runs=10, mean_ms=3.0).trimmed_mean_ms is None


def test_merge_rounds_refuses_to_mix_samples_and_aggregates():
    merged = merge_rounds([timing([1.0, 2.0]), aggregate_timing(10, 20.0)])
    assert not merged.ok and "only an aggregate" in merged.error and merged.aggregate is None


def test_an_aggregate_comes_without_samples_or_error():
    aggregate = ToolAggregate.one_round("tool", runs=2, mean_ms=1.0)
    with pytest.raises(ValueError, match="without samples or error"):
        RawTiming(variant_id="v", harness="h", samples_ms=(1.0,), round_index=(0,), aggregate=aggregate)
    with pytest.raises(ValueError, match="one run count and one mean per round"):
        ToolAggregate(source="tool", round_runs=(1, 2), round_means_ms=(1.0,))
    with pytest.raises(ValueError, match="at least one run"):
        ToolAggregate(source="tool", round_runs=(0,), round_means_ms=(1.0,))


def test_environment_readings_stored_before_cpu_pressure_still_read():
    old = {"round": 1, "when": "after", "frequencies_khz": [1800000], "thermal_c": {"cpu": 40.0}}
    reading = EnvironmentReading.from_dict(old)
    assert (reading.cpu_pressure_total_us, reading.clock_us, reading.frequencies_khz) == (None, None, (1800000,))
    full = EnvironmentReading(2, "before", cpu_pressure_total_us=123, clock_us=456)
    assert EnvironmentReading.from_dict(full.to_dict()) == full


def test_raw_timing_rejects_samples_without_rounds():
    with pytest.raises(ValueError, match="2 samples but 1 round"):
        RawTiming(variant_id="v", harness="h", samples_ms=(1.0, 2.0), round_index=(0,))


def test_registry_finds_every_harness_under_its_own_name():
    harness = harness_class("python-agent")()
    assert harness_class("python-agent") is PythonAgentHarness and isinstance(harness, Harness)
    assert all(harness_class(name).name == name for name in HARNESSES)
    with pytest.raises(HarnessError, match="known harnesses: python-agent"):
        harness_class("tflite")


def test_profiles_choose_their_native_tool_per_runtime_else_the_agent():
    from bench_runner.harness import harness_for
    from bench_runner.profiles import find_profile

    phone = find_profile("pixel-7")
    assert harness_for(phone, "executorch") == "executor_runner"
    assert harness_for(phone, "onnxruntime") == "onnxruntime_perf_test"
    host = find_profile("host")
    assert {harness_for(host, runtime) for runtime in ("executorch", "onnxruntime")} == {"python-agent"}
