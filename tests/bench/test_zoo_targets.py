"""The zoo's targets and the GEMM limit: pure helpers, no measurement."""

import pytest

from bench.limit import attainable, best_per_library
from bench.matmul import BLAS_OVERRIDES, _worker_env, gemm_bound_ms, vit_gemms
from bench.zoo_targets import (
    error_target,
    gemm_floor_ms,
    gemm_share,
    is_transformer,
    latency_limit,
    latency_target,
    limiting_kernel,
    missed,
    outside_ops,
    segment_target,
    top_op_types,
    verdict,
)
from lowering.models import resolve_spec


def summary_row(library, dtype, threads, gflops, shape="square", p50_ms=1.0, m=1, k=1, n=1):
    return {"library": library, "dtype": dtype, "threads": threads, "gflops": gflops, "shape": shape,
            "p50_ms": p50_ms, "m": m, "k": k, "n": n}


def test_is_transformer_looks_for_softmax_or_sdpa():
    assert is_transformer(["aten.conv2d.default", "aten._softmax.default"])
    assert is_transformer(["aten.scaled_dot_product_attention.default"])
    assert not is_transformer(["aten.conv2d.default", "aten.batch_norm.default"])


def test_latency_limit_is_half_only_where_stock_has_many_segments():
    assert latency_limit(11) == 0.5
    assert latency_limit(10) == 1.0
    assert latency_limit(1) == 1.0


def test_verdict_marks_an_interval_spanning_the_limit():
    assert verdict(0.4, 0.35, 0.45, 0.5) == "yes"
    assert verdict(0.6, 0.55, 0.65, 0.5) == "no"
    assert verdict(0.48, 0.45, 0.52, 0.5) == "yes (CI spans the limit)"
    assert verdict(0.52, 0.49, 0.55, 0.5) == "no (CI spans the limit)"
    assert verdict(2.0, None, None, 3) == "yes"


def test_missed_segment_target_names_the_ops_outside():
    delegation = {"num_delegates": 12, "fallback_ops": {"aten.native_layer_norm": 5, "aten.expand_copy": 9,
                                                        "aten.mul": 1, "aten.where": 2}}
    row = segment_target("vit", "vitdeploy fp32", delegation)
    assert row["met"] == "no"
    assert row["outside"] == "expand_copy 9, native_layer_norm 5, where 2"
    assert segment_target("vit", "vitdeploy fp32", {"num_delegates": 1, "fallback_ops": {}})["outside"] == ""
    assert segment_target("vit", "vitdeploy int8", None)["met"] == "not measured"


def test_outside_ops_without_fallbacks():
    assert outside_ops({"num_delegates": 1, "fallback_ops": {}}) == "none"


def test_latency_target_uses_the_ratio_and_its_interval():
    comparison = {"speedup": 1.6, "latency_ratio": 0.62, "latency_ratio_ci_low": 0.6, "latency_ratio_ci_high": 0.64}
    row = latency_target("swin", "fp32", 1, comparison, stock_segments=31, delegation={"fallback_ops": {"aten.mul": 2}})
    assert (row["limit"], row["met"], row["outside"]) == ("<= 0.5", "no", "mul 2")
    assert latency_target("swin", "fp32", 1, comparison, 3, None)["met"] == "yes"
    failed = latency_target("swin", "int8", 2, {"speedup": None, "note": "failed: boom"}, 3, None)
    assert failed["met"] == "not measured"


def test_error_target():
    assert error_target("vit", 3e-7, "eager")["met"] == "yes"
    assert error_target("vit", 2e-4, "eager")["met"] == "no"
    assert error_target("vit", None, "eager")["met"] == "not measured"


def test_attainable_takes_the_best_library_and_ideal_scaling():
    summary = [summary_row("torch", "fp32", 1, 100.0), summary_row("numpy", "fp32", 1, 230.0),
               summary_row("xnnpack", "fp32", 2, 300.0), summary_row("torch", "int8", 1, 800.0)]
    one = attainable(summary, "fp32", 1)
    assert (one["gflops"], one["library"]) == (230.0, "numpy")
    two = attainable(summary, "fp32", 2)
    assert (two["gflops"], two["library"], two["basis"]) == (460.0, "numpy", "1-thread rate x 2")
    summary.append(summary_row("xnnpack", "fp32", 2, 500.0))
    assert attainable(summary, "fp32", 2)["basis"] == "measured at 2 thread(s)"
    with pytest.raises(ValueError):
        attainable(summary, "int4", 1)


def test_best_per_library_keeps_each_librarys_fastest_shape():
    summary = [summary_row("numpy", "fp32", 1, 200.0, "fc1"), summary_row("numpy", "fp32", 1, 220.0, "square"),
               summary_row("torch", "fp32", 1, 100.0, "fc1")]
    best = {(r["library"], r["threads"]): r for r in best_per_library(summary)}
    assert best[("numpy", 1)]["shape"] == "square"
    assert best[("torch", 1)]["gflops"] == 100.0


def test_gemm_bound_takes_the_fastest_library_per_shape():
    spec = resolve_spec("deit_tiny")
    summary = []
    for name, _, m, k, n in vit_gemms(spec):
        summary += [summary_row("torch", "fp32", 1, 0.0, name, 2.0, m, k, n),
                    summary_row("numpy", "fp32", 1, 0.0, name, 1.0, m, k, n)]
    assert gemm_bound_ms(spec, summary, "fp32", 1) == sum(count for _, count, *_ in vit_gemms(spec))


def test_gemm_workers_run_without_openblas_tuning(monkeypatch):
    for name in BLAS_OVERRIDES:
        monkeypatch.setenv(name, "1")
    env = _worker_env(2)
    assert not set(BLAS_OVERRIDES) & set(env)
    assert env["OPENBLAS_NUM_THREADS"] == "2"


MISS = {"speedup": 1.1, "latency_ratio": 0.9, "latency_ratio_ci_low": 0.88, "latency_ratio_ci_high": 0.92}


def test_a_miss_with_nothing_outside_says_so_and_what_limits_it():
    row = latency_target("deit_tiny", "fp32", 1, MISS, 62, {"num_delegates": 1, "fallback_ops": {}}, "GEMM bound")
    assert row["outside"] == "none outside the delegates. GEMM bound"
    met = latency_target("deit_tiny", "fp32", 1, {**MISS, "latency_ratio": 0.4}, 62, {"fallback_ops": {}}, "x")
    assert met["outside"] == ""


def test_missed_compares_the_ratio_with_the_segment_dependent_limit():
    assert missed(MISS, 62) and not missed(MISS, 3)
    assert not missed({"speedup": None, "note": "failed"}, 62)


def test_gemm_floor_is_the_macs_at_the_limit():
    assert gemm_floor_ms(1_000_000_000, 200.0) == pytest.approx(10.0)  # 2 GFLOP at 200 GFLOP/s


PROFILE = [{"op_type": "Fully Connected (NC, F32) GEMM", "share": 0.71},
           {"op_type": "Convolution (NHWC, F32) IGEMM", "share": 0.05},
           {"op_type": "Softmax (NC, F32)", "share": 0.14}, {"op_type": "Add (ND)", "share": 0.10}]
SMALL = [{"op_type": "Transpose (ND, X32)", "share": 0.45}, {"op_type": "Fully Connected (NC, F32) GEMM", "share": 0.3},
         {"op_type": "native_call_expand_copy.out", "share": 0.25}]


def test_top_op_types_and_gemm_share():
    assert top_op_types(PROFILE) == "Fully Connected (NC, F32) GEMM 71%, Softmax (NC, F32) 14%"
    assert top_op_types([]) == "no profile"
    assert gemm_share(PROFILE) == pytest.approx(0.76)


def test_a_target_below_the_gemm_floor_is_unattainable():
    # DeiT-Tiny: ours 12.6 ms at 0.84 of the limit (floor 10.6 ms), stock 14.2 ms.
    text = limiting_kernel(0.5, 12.6, 14.2, 10.58, PROFILE, SMALL)
    assert text.startswith("0.5x stock = 7.1 ms needs 1.49x the GEMM limit (below the attainable floor: unattainable;"
                           " floor 10.6 ms")
    assert "ours 12.6 ms at 0.84 of the limit, stock 14.2 ms" in text
    assert text.endswith("Ours: Fully Connected (NC, F32) GEMM 71%, Softmax (NC, F32) 14%; "
                         "stock: Transpose (ND, X32) 45%, Fully Connected (NC, F32) GEMM 30%")
    assert "GEMMs take only" not in text


def test_an_attainable_target_on_a_small_graph_names_the_dominant_op():
    text = limiting_kernel(0.5, 0.36, 0.40, 0.05, SMALL, PROFILE)
    assert "0.5x stock = 0.2 ms needs 0.25x the GEMM limit (above the floor: attainable" in text
    assert "GEMMs take only 30% of ours: the largest other op type is Transpose (ND, X32) 45%." in text
    gemm_first = [{"op_type": "Fully Connected (NC, QS8, QC8W) GEMM", "share": 0.4},
                  {"op_type": "Convert (NC)", "share": 0.3}]
    assert "the largest other op type is Convert (NC) 30%" in limiting_kernel(0.5, 1.0, 1.5, 0.2, gemm_first, [])
