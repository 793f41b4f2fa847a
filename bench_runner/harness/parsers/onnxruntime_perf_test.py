"""Parse what ONNX Runtime's `onnxruntime_perf_test` prints and the result file it writes.

Format source: microsoft/onnxruntime, onnxruntime/test/perftest/performance_runner.cc
(PerformanceRunner::Run and PerformanceResult::DumpToFile), performance_runner.h,
command_args_parser.cc and posix/utils.cc, read at the main branch of 2025-2026 (Abseil
flags) and at an older revision (getopt flags, commit 77e6dc9a). Units as printed:

- "Session creation time cost: X s"            seconds
- "First inference time cost: N ms"            whole milliseconds (truncated), the one warm-up run
- "Total inference time cost: X s"             seconds, sum of the timed runs
- "Total inference requests: N"                number of timed runs
- "Average inference time cost total: X ms"    milliseconds ("%f"); older releases print
  "Average inference time cost: X ms"
- "Total inference run time: X s"              seconds, wall time of the timed loop
- "Number of inferences per second: X"
- "Avg CPU usage: N %"                          -1 when the clock overflowed
- "Peak working set size: N bytes"             getrusage ru_maxrss * 1024 on Linux/Android
- "Min/Max/P50/P90/P95/P99/P999 Latency: X s"   seconds; printed with -s, or always when no
  result file is given; Pq is sorted[int(n * q)] of the timed runs, no interpolation.

Doubles go through std::ostream, so they carry six significant digits and may be
written with an exponent ("4.12678e-05"). Stdout holds only aggregates; the result file
(second positional argument, opened for appending) holds one line per timed run,
"model_name,seconds,peak_bytes,cpu_percent,run_index", then, with -s, a blank line and
the percentile lines.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from bench_runner.harness.parsers import HarnessOutputError, text_lines

TOOL = "onnxruntime_perf_test"

_NUMBER = r"([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)"
_LINES = {
    "session_s": re.compile(rf"^Session creation time cost: {_NUMBER} s$"),
    "first_ms": re.compile(rf"^First inference time cost: {_NUMBER} ms$"),
    "total_s": re.compile(rf"^Total inference time cost: {_NUMBER} s$"),
    "requests": re.compile(r"^Total inference requests: (\d+)$"),
    "average_ms": re.compile(rf"^Average inference time cost(?: total)?: {_NUMBER} ms$"),
    "run_time_s": re.compile(rf"^Total inference run time: {_NUMBER} s$"),
    "per_second": re.compile(rf"^Number of inferences per second: {_NUMBER}$"),
    "cpu_percent": re.compile(r"^Avg CPU usage: (-?\d+) %$"),
    "peak_bytes": re.compile(r"^Peak working set size: (\d+) bytes$"),
}
_REQUIRED = {
    "session_s": "Session creation time cost",
    "total_s": "Total inference time cost",
    "requests": "Total inference requests",
    "average_ms": "Average inference time cost",
}
_PERCENTILE = re.compile(rf"^(Min|Max|P50|P90|P95|P99|P999) Latency: {_NUMBER} s$")
_PERCENTILE_NAMES = ("Min", "Max", "P50", "P90", "P95", "P99", "P999")


@dataclass(frozen=True)
class LatencyPercentiles:
    """The tool's latency statistics over the timed runs, in milliseconds."""

    min_ms: float
    max_ms: float
    p50_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    p999_ms: float


@dataclass(frozen=True)
class PerfTestSummary:
    """What onnxruntime_perf_test printed on stdout; times in milliseconds.

    Every value here is an aggregate over `requests` timed runs (`from_aggregate` is
    always True): raw per-run times exist only in the result file, see
    parse_perf_test_samples. `first_inference_ms` is the single warm-up run, with
    whole-millisecond resolution. `percentiles` is None when the tool did not print them.
    """

    session_creation_ms: float
    total_inference_ms: float
    requests: int
    average_ms: float
    first_inference_ms: float | None = None
    run_time_ms: float | None = None
    inferences_per_second: float | None = None
    cpu_usage_percent: int | None = None
    peak_working_set_bytes: int | None = None
    percentiles: LatencyPercentiles | None = None
    from_aggregate: bool = True


def _fail_on_run_failure(lines: list[str]) -> None:
    failed = next((line for line in lines if line.startswith("Run failed:")), None)
    if failed is not None:
        raise HarnessOutputError(TOOL, "the benchmark run failed", failed)


def _percentiles(lines: list[str]) -> LatencyPercentiles | None:
    found: dict[str, float] = {}
    for line in lines:
        match = _PERCENTILE.match(line)
        if match:
            found[match.group(1)] = float(match.group(2)) * 1000.0
    if not found:
        return None
    missing = [name for name in _PERCENTILE_NAMES if name not in found]
    if missing:
        raise HarnessOutputError(
            TOOL, f"latency statistics stop before {', '.join(missing)} (a truncated output?)", lines[-1]
        )
    return LatencyPercentiles(*(found[name] for name in _PERCENTILE_NAMES))


def parse_perf_test(stdout: str) -> PerfTestSummary:
    """Parse onnxruntime_perf_test's stdout into a PerfTestSummary (milliseconds).

    Raises HarnessOutputError when the run failed ("Run failed:...") or a summary line
    is missing, which is what a crash or a killed process leaves behind.
    """
    lines = [line.strip() for line in text_lines(stdout)]
    _fail_on_run_failure(lines)
    values: dict[str, str] = {}
    for line in lines:
        for key, pattern in _LINES.items():
            match = pattern.match(line)
            if match and key not in values:
                values[key] = match.group(1)
    missing = [key for key in _REQUIRED if key not in values]
    if missing:
        last = next((line for line in reversed(lines) if line), None)
        expected = ", ".join(f"'{_REQUIRED[key]}'" for key in missing)
        raise HarnessOutputError(
            TOOL,
            f"missing summary line(s) {expected} (the tool crashed, was killed, or is an unsupported version)"
            + ("; last line" if last else "; the output is empty"),
            last,
        )
    requests = int(values["requests"])
    total_ms = float(values["total_s"]) * 1000.0
    average_ms = float(values["average_ms"])
    if requests < 1:
        raise HarnessOutputError(TOOL, "the tool timed no runs", f"Total inference requests: {requests}")
    if not math.isclose(average_ms * requests, total_ms, rel_tol=1e-3):
        raise HarnessOutputError(
            TOOL,
            f"average {average_ms} ms x {requests} runs does not match the total {total_ms} ms",
        )

    def optional(key: str, scale: float = 1.0) -> float | None:
        return float(values[key]) * scale if key in values else None

    return PerfTestSummary(
        session_creation_ms=float(values["session_s"]) * 1000.0,
        total_inference_ms=total_ms,
        requests=requests,
        average_ms=average_ms,
        first_inference_ms=optional("first_ms"),
        run_time_ms=optional("run_time_s", 1000.0),
        inferences_per_second=optional("per_second"),
        cpu_usage_percent=int(values["cpu_percent"]) if "cpu_percent" in values else None,
        peak_working_set_bytes=int(values["peak_bytes"]) if "peak_bytes" in values else None,
        percentiles=_percentiles(lines),
    )


def parse_perf_test_samples(result_file: str) -> tuple[float, ...]:
    """The per-run times (milliseconds, in run order) from an onnxruntime_perf_test result file.

    The tool appends to that file, so it must be removed before each run: a file that
    holds two runs (the run index starts again at 0) raises HarnessOutputError.
    """
    samples: list[float] = []
    for line in text_lines(result_file):
        if not line.strip():
            break
        fields = line.rsplit(",", 4)
        try:
            seconds, index = float(fields[1]), int(fields[4])
        except (IndexError, ValueError):
            raise HarnessOutputError(
                TOOL, "result file line is not 'model,seconds,peak_bytes,cpu,run_index'", line
            ) from None
        if index != len(samples):
            problem = (
                "result file holds more than one run (the tool appends: remove the file before each run)"
                if index == 0
                else f"result file skips from run {len(samples) - 1} to run {index}"
            )
            raise HarnessOutputError(TOOL, problem, line)
        samples.append(seconds * 1000.0)
    if not samples:
        raise HarnessOutputError(TOOL, "the result file holds no runs")
    return tuple(samples)
