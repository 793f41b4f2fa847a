"""parse_benchmark_app on recorded benchmark_results.json of ExecuTorch's Android benchmark app."""

import json
from pathlib import Path

import pytest

from bench_runner.harness.parsers import HarnessOutputError
from bench_runner.harness.parsers.executorch_benchmark_app import parse_benchmark_app

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "native_output" / "executorch_benchmark_app"


def read(name: str) -> str:
    return (FIXTURES / name).read_text()


def test_metrics_of_a_successful_run():
    result = parse_benchmark_app(read("vit_tiny_xnnpack_fp32.json"))
    assert (result.model_name, result.backend, result.quantization) == ("vit_tiny", "xnnpack", "fp32")
    assert result.avg_inference_ms == pytest.approx(19.01818714413692)
    assert result.trimmed_mean_inference_ms == pytest.approx(18.991688941727336)
    assert result.model_load_ms == pytest.approx(52.871344)
    assert result.ram_pss_growth_mb == pytest.approx(31.2841796875)
    assert (result.device_brand, result.device_model, result.os) == ("google", "Pixel 8", "Android 15")
    assert [(m.name, m.unit) for m in result.metrics] == [
        ("avg_inference_latency", "ms"),
        ("trimmean_inference_latency", "ms"),
        ("model_load_time", "ms"),
        ("load_status", None),
        ("ram_pss_usage", "mb"),
    ]
    assert result.from_aggregate is True


def test_failed_load_reports_the_error_code():
    with pytest.raises(HarnessOutputError, match="0x20") as caught:
        parse_benchmark_app(read("load_failed.json"))
    assert caught.value.tool == "ExecuTorch benchmark app"


def test_truncated_file_is_refused():
    with pytest.raises(HarnessOutputError, match="not complete JSON"):
        parse_benchmark_app(read("truncated.json"))


def test_results_of_two_models_are_refused():
    entries = json.loads(read("vit_tiny_xnnpack_fp32.json"))
    entries[1] = dict(entries[1], benchmarkModel={"name": "deit_tiny", "backend": "xnnpack", "quantization": "fp32"})
    with pytest.raises(HarnessOutputError, match="2 models"):
        parse_benchmark_app(json.dumps(entries))


def test_llm_results_are_refused():
    model = {"name": "llama", "backend": "xnnpack", "quantization": "q8"}
    entries = [
        {"benchmarkModel": model, "metric": name, "actualValue": value, "targetValue": 0.0}
        for name, value in (("load_status", 0.0), ("llm_model_load_time(ms)", 900.0), ("token_per_sec", 12.5))
    ]
    with pytest.raises(HarnessOutputError, match="LLM"):
        parse_benchmark_app(json.dumps(entries))


def test_empty_list_and_wrong_entries_are_refused():
    with pytest.raises(HarnessOutputError, match="non-empty list"):
        parse_benchmark_app("[]")
    with pytest.raises(HarnessOutputError, match="lacks"):
        parse_benchmark_app('[{"metric": "load_status"}]')
