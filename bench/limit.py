"""Section 3: distance to the CPU's limit. A matmul microbenchmark at the model's own
shapes, run in the same process right after the runtimes section, gives the attainable
fp32 and int8 throughput; each DeiT-Tiny artifact's achieved GFLOP/s is set against it."""

from __future__ import annotations

from bench.matmul import PEAK_SHAPE, gemm_bound_ms, round_medians, run_matmuls, summarize, vit_gemms
from bench.measure import Budget, Section
from bench.tables import markdown_table
from lowering.models import ModelSpec

THREADS = (1, 2)


def _attainable(summary: list[dict], dtype: str, threads: int) -> float:
    """The best single-thread rate of `dtype` over kernels and shapes, times `threads`
    (ideal scaling): on a shared 2-core machine the measured multi-thread matmuls stall
    whenever another process holds a core, so they are shown but not used as the limit."""
    return threads * max(s["gflops"] for s in summary if s["dtype"] == dtype and s["threads"] == 1)


def run(budget: Budget, spec: ModelSpec, records: dict | None, model_macs: int) -> Section:
    rows = run_matmuls(vit_gemms(spec) + [PEAK_SHAPE], THREADS, rounds=1 if budget.quick else 3, quick=budget.quick)
    summary = summarize(rows)
    distance = []
    for (label, threads), record in sorted((records or {}).items(), key=lambda item: (item[0][1], item[0][0])):
        if record.stats is None:
            continue
        dtype = "int8" if "int8" in record.quant else "fp32"
        achieved = 2 * model_macs / (record.stats.p50_ms / 1e3) / 1e9
        bound = gemm_bound_ms(spec, summary, dtype, "torch", 1) / threads
        distance.append({"artifact": label, "threads": threads, "dtype": dtype, "p50_ms": record.stats.p50_ms,
                         "achieved_gflops": achieved, "attainable_gflops": _attainable(summary, dtype, threads),
                         "fraction_of_attainable": achieved / _attainable(summary, dtype, threads),
                         "gemm_bound_ms": bound, "gemm_bound_over_p50": bound / record.stats.p50_ms})
    matmul_columns = (("library", "library"), ("dtype", "dtype"), ("shape", "shape"),
                      ("m x k x n", lambda r: f"{r['m']}x{r['k']}x{r['n']}"), ("threads", "threads"),
                      ("p50 ms", "p50_ms"), ("GFLOP/s", "gflops"), ("CV", "cv"), ("calls", "n_calls"))
    distance_columns = (("artifact", "artifact"), ("threads", "threads"), ("p50 ms", "p50_ms"),
                        ("achieved GFLOP/s", "achieved_gflops"), ("attainable GFLOP/s", "attainable_gflops"),
                        ("fraction", "fraction_of_attainable"), ("matmul-only ms (torch, same shapes)", "gemm_bound_ms"),
                        ("matmul-only / p50", "gemm_bound_over_p50"))
    markdown = "\n\n".join([
        "Attainable throughput: torch.mm / numpy (fp32) and torch._int_mm (int8 x int8 -> int32) at the model's "
        "matmul shapes plus a 1024^3 square, timed in rounds at 1 and 2 threads. GFLOP/s counts 2 FLOPs per MAC "
        "(int8: 2 integer ops per MAC). 'attainable' is the best 1-thread rate times the thread count (ideal "
        "scaling), because the measured 2-thread matmuls below stall whenever another process holds one of the "
        "two cores (their times cluster at multiples of about 4 ms, the scheduler's tick). 'matmul-only ms' sums "
        "the model's matmuls at the 1-thread medians (divided by the thread count): a runtime at that latency "
        "would spend all its time in GEMMs as fast as torch's.",
        markdown_table(summary, matmul_columns),
        markdown_table(distance, distance_columns) if distance else "(runtimes section not run: no artifacts to compare)",
    ])
    return Section("limit", markdown, {"limit_matmul_rounds": round_medians(rows), "limit_matmul": summary, "limit_distance": distance})
