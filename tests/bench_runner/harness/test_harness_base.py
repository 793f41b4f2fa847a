import pytest

from bench_runner.harness import HARNESSES, HarnessError, harness_class
from bench_runner.harness.base import EnvironmentReading, Harness, RawTiming, merge_rounds
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
