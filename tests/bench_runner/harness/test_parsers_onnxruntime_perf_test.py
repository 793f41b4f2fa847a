"""parse_perf_test and parse_perf_test_samples on recorded onnxruntime_perf_test output."""

from pathlib import Path

import pytest

from bench_runner.harness.parsers import HarnessOutputError
from bench_runner.harness.parsers.onnxruntime_perf_test import parse_perf_test, parse_perf_test_samples

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "native_output" / "onnxruntime_perf_test"


def read(name: str) -> str:
    return (FIXTURES / name).read_text()


def test_seconds_become_milliseconds():
    summary = parse_perf_test(read("no_result_file_with_percentiles.stdout"))
    assert summary.session_creation_ms == pytest.approx(183.342)
    assert summary.first_inference_ms == 24
    assert summary.total_inference_ms == pytest.approx(692.576)
    assert summary.requests == 40
    assert summary.average_ms == pytest.approx(17.314412)
    assert summary.run_time_ms == pytest.approx(692.988)
    assert summary.inferences_per_second == pytest.approx(57.721)
    assert summary.cpu_usage_percent == 96
    assert summary.peak_working_set_bytes == 78123008
    assert summary.from_aggregate is True


def test_percentiles_are_milliseconds_and_ordered():
    percentiles = parse_perf_test(read("no_result_file_with_percentiles.stdout")).percentiles
    assert percentiles.min_ms == pytest.approx(16.9077)
    assert percentiles.p50_ms == pytest.approx(17.2502)
    assert percentiles.p999_ms == pytest.approx(18.2325)
    ordered = [percentiles.min_ms, percentiles.p50_ms, percentiles.p90_ms, percentiles.p95_ms, percentiles.p99_ms]
    assert ordered == sorted(ordered)
    assert percentiles.max_ms == percentiles.p999_ms


def test_older_average_line_without_percentiles():
    summary = parse_perf_test(read("older_average_no_percentiles.stdout"))
    assert summary.average_ms == pytest.approx(17.8818)
    assert summary.requests == 10
    assert summary.percentiles is None


def test_exponent_notation_of_fast_models():
    summary = parse_perf_test(read("tiny_model_exponents.stdout"))
    assert summary.percentiles.min_ms == pytest.approx(0.0412678)
    assert summary.total_inference_ms == pytest.approx(0.422039)
    assert summary.first_inference_ms == 0


def test_run_failure_is_quoted():
    with pytest.raises(HarnessOutputError) as caught:
        parse_perf_test(read("run_failed.stdout"))
    assert caught.value.tool == "onnxruntime_perf_test"
    assert caught.value.line.startswith("Run failed:")


def test_truncated_output_names_the_missing_line():
    with pytest.raises(HarnessOutputError, match="Average inference time cost") as caught:
        parse_perf_test(read("truncated.stdout"))
    assert caught.value.line == "Total inference requests: 40"


def test_crash_with_empty_stdout():
    with pytest.raises(HarnessOutputError, match="output is empty"):
        parse_perf_test("")


def test_cut_percentiles_are_refused():
    text = read("no_result_file_with_percentiles.stdout").split("P95 Latency")[0]
    with pytest.raises(HarnessOutputError, match="P95, P99, P999"):
        parse_perf_test(text)


def test_average_inconsistent_with_total_is_refused():
    text = read("older_average_no_percentiles.stdout").replace(
        "Average inference time cost: 17.8818 ms", "Average inference time cost: 27.8818 ms"
    )
    with pytest.raises(HarnessOutputError, match="does not match"):
        parse_perf_test(text)


def test_result_file_gives_every_run_in_order():
    samples = parse_perf_test_samples(read("result_file_with_percentiles.csv"))
    assert len(samples) == 20
    assert samples[0] == pytest.approx(17.2694)
    assert samples[-1] == pytest.approx(17.9549)
    summary = parse_perf_test(read("result_file_with_percentiles.stdout"))
    assert sum(samples) == pytest.approx(summary.total_inference_ms, rel=1e-4)
    assert sorted(samples)[int(len(samples) * 0.5)] == pytest.approx(summary.percentiles.p50_ms)


def test_result_file_holding_two_runs_is_refused():
    text = read("older_average_no_percentiles.csv") * 2
    with pytest.raises(HarnessOutputError, match="remove the file before each run"):
        parse_perf_test_samples(text)


def test_model_name_with_commas_is_read_from_the_right():
    samples = parse_perf_test_samples("my,model,0.5,1024,10,0\nmy,model,0.25,1024,10,1\n")
    assert samples == (500.0, 250.0)


def test_malformed_and_empty_result_files_are_refused():
    with pytest.raises(HarnessOutputError, match="run_index"):
        parse_perf_test_samples("vitdeploy,abc,1,2,0\n")
    with pytest.raises(HarnessOutputError, match="no runs"):
        parse_perf_test_samples("")
