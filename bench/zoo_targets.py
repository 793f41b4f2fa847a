"""The zoo benchmark's targets (issue 14) and how a measurement is judged against them.

    is_transformer(op_names) -> bool
    latency_limit(stock_segments) -> float          # at most this x stock's latency
    missed(comparison, stock_segments) -> bool      # a measured ratio above that
    verdict(point, low, high, limit) -> str         # "yes", "no", or either with "(CI spans the limit)"
    segment_target / latency_target / error_target -> one row of the targets table
    gemm_floor_ms(macs, gflops) -> float            # the model's MACs at the GEMM limit
    top_op_types(profile) -> str                    # "Fully Connected (NC, F32) GEMM 71%, ..."
    limiting_kernel(...) -> str                     # why a latency target is missed, in numbers

A missed segment target names the operators left outside the XNNPACK delegates (the
manifest's `fallback_ops`, most frequent first). A missed latency target names those too,
and what limits it, measured: the GEMM floor (the model's MACs at the best GEMM rate the
limit section measured) against the latency the target asks for, and the op types taking
the largest shares of vitdeploy's and stock's time (ETDump per-op profiles), and, where
GEMMs take less than half of vitdeploy's time, the largest op type that is not a GEMM.
"""

from __future__ import annotations

from collections import Counter
from typing import Iterable

MAX_SEGMENTS = 3
MANY_SEGMENTS = 10  # stock above this: vitdeploy should take at most FAR_FASTER of its latency
FAR_FASTER = 0.5
NEVER_SLOWER = 1.0
MAX_FP32_ERROR = 1e-4
ATTENTION_OPS = ("softmax", "scaled_dot_product_attention")
GEMM_OPS = ("GEMM",)  # XNNPACK's fully connected, convolution (IGEMM) and batch matmul kernels


def is_transformer(op_names: Iterable[str]) -> bool:
    """Whether a graph with these operator names has attention (a softmax or SDPA)."""
    return any(attention in name for name in op_names for attention in ATTENTION_OPS)


def latency_limit(stock_segments: int) -> float:
    """The most vitdeploy may take of stock's latency: half where stock's program is cut
    into more than MANY_SEGMENTS delegates, never more than stock's own otherwise."""
    return FAR_FASTER if stock_segments > MANY_SEGMENTS else NEVER_SLOWER


def missed(comparison: dict, stock_segments: int) -> bool:
    """Whether a measured ratio (`bench.tables.compare`) is above `latency_limit`."""
    return comparison.get("speedup") is not None and comparison["latency_ratio"] > latency_limit(stock_segments)


def verdict(point: float, low: float | None, high: float | None, limit: float) -> str:
    """'yes' if `point` is at most `limit`, else 'no'; marked when the 95% interval
    [low, high] (if given) contains the limit, so the verdict rests on the point alone."""
    met = "yes" if point <= limit else "no"
    if low is not None and high is not None and low <= limit < high:
        return f"{met} (CI spans the limit)"
    return met


def outside_ops(delegation: dict | None, top: int = 3) -> str:
    """The most frequent operators outside the delegates, e.g. 'native_layer_norm 7, expand_copy 4'."""
    counts = Counter((delegation or {}).get("fallback_ops", {})).most_common(top)
    return ", ".join(f"{op.removeprefix('aten.')} {n}" for op, n in counts) or "none"


def gemm_floor_ms(macs: int, gflops: float) -> float:
    """Milliseconds `macs` multiply-accumulates take at `gflops` (2 FLOPs per MAC)."""
    return 2 * macs / (gflops * 1e6)


def _is_gemm(row: dict) -> bool:
    return any(name in row["op_type"] for name in GEMM_OPS)


def gemm_share(profile: list[dict]) -> float:
    """The share of a per-op profile (`bench.op_profile`) spent in GEMM kernels."""
    return sum(row["share"] for row in profile if _is_gemm(row))


def top_op_types(profile: list[dict], top: int = 2) -> str:
    """The `top` op types of a per-op profile by share, e.g. 'Fully Connected (NC, F32) GEMM 71%, Sigmoid (NC) 9%'."""
    ranked = sorted(profile, key=lambda row: -row["share"])[:top]
    return ", ".join(f"{row['op_type']} {row['share']:.0%}" for row in ranked) or "no profile"


def limiting_kernel(limit: float, ours_ms: float, stock_ms: float, floor_ms: float,
                    ours_profile: list[dict], stock_profile: list[dict]) -> str:
    """Why vitdeploy's latency `ours_ms` misses `limit` x stock's `stock_ms`: whether that
    latency is below the GEMM floor `floor_ms` (then no GEMM measured could reach it), the
    fraction of the GEMM limit each needs, and where each side's time goes."""
    wanted = limit * stock_ms
    needs = floor_ms / wanted
    reach = ("below the attainable floor: unattainable" if wanted < floor_ms else "above the floor: attainable")
    text = (f"{limit:g}x stock = {wanted:.3g} ms needs {needs:.2f}x the GEMM limit ({reach}; floor {floor_ms:.3g} ms"
            f" = MACs at the limit); ours {ours_ms:.3g} ms at {floor_ms / ours_ms:.2f} of the limit, stock "
            f"{stock_ms:.3g} ms. ")
    others = [row for row in ours_profile if not _is_gemm(row)]
    if others and gemm_share(ours_profile) < 0.5:
        dominant = max(others, key=lambda row: row["share"])
        text += (f"GEMMs take only {gemm_share(ours_profile):.0%} of ours: the largest other op type is "
                 f"{dominant['op_type']} {dominant['share']:.0%}. ")
    return text + f"Ours: {top_op_types(ours_profile)}; stock: {top_op_types(stock_profile)}"


def _row(model: str, target: str, threads: int | str, measured: str, limit: str, met: str, delegation,
         limited_by: str = "") -> dict:
    outside = ""
    if met.startswith("no") and delegation is not None:
        outside = outside_ops(delegation)
        if outside == "none":
            outside = "none outside the delegates"
        if limited_by:
            outside = f"{outside}. {limited_by}"
    return {"model": model, "target": target, "threads": threads, "measured": measured, "limit": limit, "met": met,
            "outside": outside}


def segment_target(model: str, artifact: str, delegation: dict | None) -> dict:
    """At most MAX_SEGMENTS XNNPACK delegates in `artifact` (a transformer model's; no
    `delegation`: it was not built)."""
    target = f"{artifact} in <= {MAX_SEGMENTS} XNNPACK segments"
    if delegation is None:
        return _row(model, target, "-", "not built", f"<= {MAX_SEGMENTS}", "not measured", None)
    segments = delegation["num_delegates"]
    met = "yes" if segments <= MAX_SEGMENTS else "no"
    return _row(model, target, "-", str(segments), f"<= {MAX_SEGMENTS}", met, delegation)


def latency_target(model: str, quant: str, threads: int, comparison: dict, stock_segments: int,
                   delegation: dict | None, limited_by: str = "") -> dict:
    """vitdeploy's latency over stock's (`bench.tables.compare(stock, vitdeploy)`) within
    `latency_limit(stock_segments)`; `limited_by` (`limiting_kernel`) explains a miss."""
    limit = latency_limit(stock_segments)
    target = f"vitdeploy {quant} <= {limit}x stock {quant} latency (stock: {stock_segments} segments)"
    if comparison.get("speedup") is None:
        return _row(model, target, threads, comparison.get("note", "not measured"), f"<= {limit}", "not measured", None)
    ratio, low, high = (comparison["latency_ratio"], comparison["latency_ratio_ci_low"],
                        comparison["latency_ratio_ci_high"])
    return _row(model, target, threads, f"{ratio:.3f} [{low:.3f}, {high:.3f}]", f"<= {limit}",
                verdict(ratio, low, high, limit), delegation, limited_by)


def error_target(model: str, error: float | None, reference: str) -> dict:
    """vitdeploy fp32's max abs error against the reference output within MAX_FP32_ERROR."""
    target = f"vitdeploy fp32 max abs error <= {MAX_FP32_ERROR:g} vs {reference}"
    if error is None:
        return _row(model, target, "-", "not measured", f"<= {MAX_FP32_ERROR:g}", "not measured", None)
    return _row(model, target, "-", f"{error:.1e}", f"<= {MAX_FP32_ERROR:g}",
                "yes" if error <= MAX_FP32_ERROR else "no", None)
