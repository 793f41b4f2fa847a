"""The zoo benchmark's targets (issue 14) and how a measurement is judged against them.

    is_transformer(op_names) -> bool
    latency_limit(stock_segments) -> float          # at most this x stock's latency
    verdict(point, low, high, limit) -> str         # "yes", "no", or either with "(CI spans the limit)"
    segment_target / latency_target / error_target -> one row of the targets table

A missed target names the operators left outside the XNNPACK delegates (the manifest's
`fallback_ops`, most frequent first), which is where the missing speed or segments are.
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


def is_transformer(op_names: Iterable[str]) -> bool:
    """Whether a graph with these operator names has attention (a softmax or SDPA)."""
    return any(attention in name for name in op_names for attention in ATTENTION_OPS)


def latency_limit(stock_segments: int) -> float:
    """The most vitdeploy may take of stock's latency: half where stock's program is cut
    into more than MANY_SEGMENTS delegates, never more than stock's own otherwise."""
    return FAR_FASTER if stock_segments > MANY_SEGMENTS else NEVER_SLOWER


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


def _row(model: str, target: str, threads: int | str, measured: str, limit: str, met: str, delegation) -> dict:
    outside = ""
    if met.startswith("no") and delegation is not None:
        outside = outside_ops(delegation)
        if outside == "none":
            outside = "none: every operator is inside the delegates"
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
                   delegation: dict | None) -> dict:
    """vitdeploy's latency over stock's (`bench.tables.compare(stock, vitdeploy)`) within
    `latency_limit(stock_segments)`."""
    limit = latency_limit(stock_segments)
    target = f"vitdeploy {quant} <= {limit}x stock {quant} latency (stock: {stock_segments} segments)"
    if comparison.get("speedup") is None:
        return _row(model, target, threads, comparison.get("note", "not measured"), f"<= {limit}", "not measured", None)
    ratio, low, high = (comparison["latency_ratio"], comparison["latency_ratio_ci_low"],
                        comparison["latency_ratio_ci_high"])
    return _row(model, target, threads, f"{ratio:.3f} [{low:.3f}, {high:.3f}]", f"<= {limit}",
                verdict(ratio, low, high, limit), delegation)


def error_target(model: str, error: float | None, reference: str) -> dict:
    """vitdeploy fp32's max abs error against the reference output within MAX_FP32_ERROR."""
    target = f"vitdeploy fp32 max abs error <= {MAX_FP32_ERROR:g} vs {reference}"
    if error is None:
        return _row(model, target, "-", "not measured", f"<= {MAX_FP32_ERROR:g}", "not measured", None)
    return _row(model, target, "-", f"{error:.1e}", f"<= {MAX_FP32_ERROR:g}",
                "yes" if error <= MAX_FP32_ERROR else "no", None)
