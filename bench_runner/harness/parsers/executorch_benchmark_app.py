"""Parse `benchmark_results.json`, written by ExecuTorch's Android benchmark app (minibench).

Format source: pytorch/executorch, extension/benchmark/android/benchmark/app/src/main/java/
org/pytorch/minibench/ (ModelRunner.kt, BenchmarkMetric.kt, BenchmarkActivity.kt at
v1.4.1 and main; the Java versions of v1.0.1 write the same fields). The activity
serialises a list of BenchmarkMetric with Gson, compactly:

    [{"benchmarkModel": {"name": ..., "backend": ..., "quantization": ...},
      "metric": "avg_inference_latency(ms)", "actualValue": 19.02, "targetValue": 0.0,
      "deviceInfo": {"device": BRAND, "arch": MODEL, "os": "Android 15",
                     "totalMem": 0, "availMem": 0}}, ...]

For a generic (non-LLM) model ModelRunner adds, after a successful load:
"avg_inference_latency(ms)" (mean of num_iter runs), "trimmean_inference_latency(ms)"
(mean of the sorted runs [n/10, 9n/10)), "model_load_time(ms)" (Module.load plus
loadMethod("forward")), "load_status" (0, or the ExecuTorch error code) and
"ram_pss_usage(mb)" (PSS growth, Debug.getPss() kB / 1024). After a failed load only
"model_load_time(ms)" and "load_status". The metric name carries the unit. The model
fields come from the .pte file name (NAME_BACKEND_QUANT). totalMem and availMem are
read from an unfilled ActivityManager.MemoryInfo, so they are 0. No per-run time is
written: everything here is an aggregate.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass

from bench_runner.harness.parsers import HarnessOutputError

TOOL = "ExecuTorch benchmark app"

_METRIC_NAME = re.compile(r"^(?P<name>[a-z_]+)(?:\((?P<unit>[a-z]+)\))?$")


@dataclass(frozen=True)
class BenchmarkAppMetric:
    """One entry of benchmark_results.json: the metric name without its unit, the unit, the values."""

    name: str
    unit: str | None
    value: float
    target: float


@dataclass(frozen=True)
class BenchmarkAppResult:
    """One successful run of the benchmark app for a generic model; times in milliseconds.

    The app reports only aggregates of its `num_iter` timed runs (`from_aggregate` is
    always True): the mean and the trimmed mean of the middle 80%, never the runs.
    `model_name`, `backend` and `quantization` are what the app read from the file name.
    """

    model_name: str
    backend: str
    quantization: str
    avg_inference_ms: float
    trimmed_mean_inference_ms: float
    model_load_ms: float
    ram_pss_growth_mb: float | None
    device_brand: str | None
    device_model: str | None
    os: str | None
    metrics: tuple[BenchmarkAppMetric, ...]
    from_aggregate: bool = True


def _entries(json_text: str) -> list[dict]:
    try:
        data = json.loads(json_text)
    except json.JSONDecodeError as exc:
        tail = json_text[max(0, exc.pos - 60) : exc.pos + 20]
        raise HarnessOutputError(TOOL, f"benchmark_results.json is not complete JSON ({exc.msg})", tail) from None
    if not isinstance(data, list) or not data:
        raise HarnessOutputError(TOOL, "benchmark_results.json is not a non-empty list of metrics", json_text[:120])
    return data


def _metric(entry: object) -> tuple[tuple[str, str, str], BenchmarkAppMetric]:
    try:
        model = entry["benchmarkModel"]
        key = (str(model["name"]), str(model["backend"]), str(model["quantization"]))
        match = _METRIC_NAME.match(entry["metric"])
        value, target = float(entry["actualValue"]), float(entry["targetValue"])
    except (KeyError, TypeError, ValueError):
        raise HarnessOutputError(
            TOOL, "entry lacks benchmarkModel, metric, actualValue or targetValue", json.dumps(entry)[:200]
        ) from None
    if match is None:
        raise HarnessOutputError(TOOL, "metric name is not NAME or NAME(UNIT)", entry["metric"])
    return key, BenchmarkAppMetric(match.group("name"), match.group("unit"), value, target)


def parse_benchmark_app(json_text: str) -> BenchmarkAppResult:
    """Parse benchmark_results.json of one generic-model run (milliseconds).

    Raises HarnessOutputError when the file is truncated or malformed, holds more than
    one model or an LLM run, or says the model failed to load (load_status != 0).
    """
    entries = _entries(json_text)
    parsed = [_metric(entry) for entry in entries]
    models = {key for key, _ in parsed}
    if len(models) > 1:
        raise HarnessOutputError(
            TOOL, f"the file holds results of {len(models)} models; expected one", str(sorted(models))
        )
    (name, backend, quantization), metrics = parsed[0][0], tuple(m for _, m in parsed)
    by_name = {m.name: m for m in metrics}

    if "load_status" not in by_name:
        raise HarnessOutputError(TOOL, "no load_status metric", json_text[:120])
    status = by_name["load_status"].value
    if status != 0:
        code = int(status) if math.isfinite(status) else status
        raise HarnessOutputError(
            TOOL,
            f"the model failed to load: load_status {code}"
            + (f" (ExecuTorch error 0x{code:02x})" if isinstance(code, int) and code > 0 else ""),
            fix="Run the same .pte with executor_runner to see the runtime's own error message",
        )
    if "token_per_sec" in by_name and "avg_inference_latency" not in by_name:
        raise HarnessOutputError(TOOL, "these are LLM results (token_per_sec), not a generic model's")
    for required in ("avg_inference_latency", "trimmean_inference_latency", "model_load_time"):
        if required not in by_name:
            raise HarnessOutputError(TOOL, f"no {required} metric after a successful load", json_text[:120])
        if by_name[required].unit != "ms":
            raise HarnessOutputError(TOOL, f"{required} is in {by_name[required].unit!r}, expected ms")
    pss = by_name.get("ram_pss_usage")
    device = entries[0].get("deviceInfo") or {}
    return BenchmarkAppResult(
        model_name=name,
        backend=backend,
        quantization=quantization,
        avg_inference_ms=by_name["avg_inference_latency"].value,
        trimmed_mean_inference_ms=by_name["trimmean_inference_latency"].value,
        model_load_ms=by_name["model_load_time"].value,
        ram_pss_growth_mb=pss.value if pss is not None and pss.unit == "mb" else None,
        device_brand=device.get("device"),
        device_model=device.get("arch"),
        os=device.get("os"),
        metrics=metrics,
    )
