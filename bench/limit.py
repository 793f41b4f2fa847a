"""Section 3: distance to the CPU's limit. A GEMM microbenchmark at the model's own shapes
(torch, numpy/OpenBLAS and XNNPACK through ExecuTorch; fp32 and int8), run right after
the runtimes section, gives the attainable throughput per dtype and thread count: the
best of those libraries. Each DeiT-Tiny artifact's achieved GFLOP/s is set against it.

    measure_gemms(budget, spec) -> (rows, summary)
    attainable(summary, dtype, threads) -> {"gflops", "library", "shape", "basis"}
"""

from __future__ import annotations

from bench.matmul import PEAK_SHAPE, blas_overrides, gemm_bound_ms, round_medians, run_matmuls, summarize, vit_gemms
from bench.measure import Budget, Section
from bench.tables import markdown_table
from lowering.models import ModelSpec

THREADS = (1, 2)
LIBRARIES = {"torch": "torch.mm (MKL) / torch._int_mm", "numpy": "numpy @ (OpenBLAS)",
             "xnnpack": "one-linear ExecuTorch program (XNNPACK)"}


def measure_gemms(budget: Budget, spec: ModelSpec) -> tuple[list[dict], list[dict]]:
    """Every library's GEMMs at `spec`'s matmul shapes plus a 1024^3 square, at 1 and 2
    threads: the rows of every call and their summary."""
    rows = run_matmuls(vit_gemms(spec) + [PEAK_SHAPE], THREADS, rounds=1 if budget.quick else 3, quick=budget.quick)
    return rows, summarize(rows)


def attainable(summary: list[dict], dtype: str, threads: int) -> dict:
    """The limit for `dtype` at `threads`: the best rate over libraries and shapes measured
    at `threads`, or the best 1-thread rate times `threads` (ideal scaling) if that is
    higher, because on a shared 2-core machine the multi-thread GEMMs stall whenever
    another process holds a core. Says which library, shape and basis gave it."""
    def best(count: int) -> dict | None:
        rows = [s for s in summary if s["dtype"] == dtype and s["threads"] == count]
        return max(rows, key=lambda s: s["gflops"]) if rows else None

    measured, single = best(threads), best(1)
    candidates = []
    if measured:
        candidates.append((measured["gflops"], measured, f"measured at {threads} thread(s)"))
    if single and threads != 1:
        candidates.append((threads * single["gflops"], single, f"1-thread rate x {threads}"))
    if not candidates:
        raise ValueError(f"no {dtype} GEMM was measured at 1 or {threads} thread(s)")
    gflops, row, basis = max(candidates, key=lambda c: c[0])
    return {"dtype": dtype, "threads": threads, "gflops": gflops, "library": row["library"], "shape": row["shape"],
            "basis": basis}


def best_per_library(summary: list[dict]) -> list[dict]:
    """The best rate of each library, dtype and thread count over the shapes, and where."""
    best: dict[tuple, dict] = {}
    for s in summary:
        key = (s["library"], s["dtype"], s["threads"])
        if key not in best or s["gflops"] > best[key]["gflops"]:
            best[key] = s
    order = sorted(best, key=lambda key: (key[1], key[2], key[0]))
    return [{"library": key[0], "dtype": key[1], "threads": key[2], "gflops": best[key]["gflops"],
             "shape": best[key]["shape"]} for key in order]


def environment_note() -> str:
    """What the GEMM workers did about OpenBLAS's tuning variables, for the section's text."""
    overrides = blas_overrides()
    if not overrides:
        return "No OPENBLAS_* tuning variable was set; numpy's OpenBLAS chose its own kernels."
    listed = ", ".join(f"{name}={value}" for name, value in overrides.items())
    return (f"This environment sets {listed}; every GEMM ran in worker processes with those unset, so numpy's "
            "OpenBLAS picked its kernels and cache sizes from the CPU itself (OPENBLAS_NUM_THREADS = the thread "
            "count).")


def limits_table(summary: list[dict]) -> list[dict]:
    """`attainable` for every dtype and thread count measured."""
    keys = sorted({(s["dtype"], s["threads"]) for s in summary})
    return [attainable(summary, dtype, threads) for dtype, threads in keys]


def run(budget: Budget, spec: ModelSpec, records: dict | None, model_macs: int,
        gemms: tuple[list[dict], list[dict]]) -> Section:
    """The section, from a `measure_gemms` result and the runtimes section's records."""
    rows, summary = gemms
    distance = []
    for (label, threads), record in sorted((records or {}).items(), key=lambda item: (item[0][1], item[0][0])):
        if record.stats is None:
            continue
        dtype = "int8" if "int8" in record.quant else "fp32"
        achieved = 2 * model_macs / (record.stats.p50_ms / 1e3) / 1e9
        limit = attainable(summary, dtype, threads)["gflops"]
        bound = gemm_bound_ms(spec, summary, dtype, 1) / threads
        distance.append({"artifact": label, "threads": threads, "dtype": dtype, "p50_ms": record.stats.p50_ms,
                         "achieved_gflops": achieved, "attainable_gflops": limit,
                         "fraction_of_attainable": achieved / limit,
                         "gemm_bound_ms": bound, "gemm_bound_over_p50": bound / record.stats.p50_ms})
    matmul_columns = (("library", "library"), ("dtype", "dtype"), ("shape", "shape"),
                      ("m x k x n", lambda r: f"{r['m']}x{r['k']}x{r['n']}"), ("threads", "threads"),
                      ("p50 ms", "p50_ms"), ("GFLOP/s", "gflops"), ("CV", "cv"), ("calls", "n_calls"))
    best_columns = (("library", lambda r: LIBRARIES.get(r["library"], r["library"])), ("dtype", "dtype"),
                    ("threads", "threads"), ("best GFLOP/s", "gflops"), ("at shape", "shape"))
    limit_columns = (("dtype", "dtype"), ("threads", "threads"), ("limit GFLOP/s", "gflops"),
                     ("from", lambda r: f"{r['library']}, {r['shape']}"), ("basis", "basis"))
    distance_columns = (("artifact", "artifact"), ("threads", "threads"), ("p50 ms", "p50_ms"),
                        ("achieved GFLOP/s", "achieved_gflops"), ("limit GFLOP/s", "attainable_gflops"),
                        ("fraction of limit", "fraction_of_attainable"),
                        ("matmul-only ms (fastest library per shape)", "gemm_bound_ms"),
                        ("matmul-only / p50", "gemm_bound_over_p50"))
    limits = limits_table(summary)
    markdown = "\n\n".join([
        "The limit is the best of several GEMM implementations, per dtype and thread count: torch.mm (MKL) and "
        "numpy (OpenBLAS) for fp32, torch._int_mm (int8 x int8 -> int32) for int8, and XNNPACK as ExecuTorch runs "
        "it (a .pte of one bias-free linear at the shape, lowered with XnnpackPartitioner, timed through "
        "executorch.runtime.Runtime, whose per-call overhead is included; int8: the stock PT2E int8 linear, "
        "input conversion to int8 and back included). Shapes: the model's matmuls plus a 1024^3 square, timed in "
        "interleaved rounds in one worker process per thread count. GFLOP/s counts 2 FLOPs per MAC (int8: 2 "
        "integer ops per MAC). " + environment_note(),
        "Limits (the higher of the best rate measured at the thread count and the best 1-thread rate times the "
        "thread count: measured 2-thread GEMMs stall whenever another process holds one of the two cores):",
        markdown_table(limits, limit_columns),
        "Best rate of each library over the shapes:",
        markdown_table(best_per_library(summary), best_columns),
        "Every kernel and shape:",
        markdown_table(summary, matmul_columns),
        "'matmul-only ms' sums the model's matmuls at the fastest library's 1-thread median for each shape (divided "
        "by the thread count): a runtime at that latency would spend all its time in GEMMs that fast.",
        markdown_table(distance, distance_columns) if distance
        else "(runtimes section not run: no artifacts to compare)",
    ])
    return Section("limit", markdown, {"limit_matmul_rounds": round_medians(rows), "limit_matmul": summary,
                                       "limit_limits": limits, "limit_distance": distance})
