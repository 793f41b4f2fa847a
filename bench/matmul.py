"""The machine's attainable matrix-multiply throughput at ViT shapes, and what it implies
for a whole ViT.

    vit_gemms(spec) -> [(name, count, m, k, n)]          # the matmuls of one forward pass
    run_matmuls(shapes, threads, rounds, quick) -> rows  # one row per timed call
    summarize(rows) -> rows                              # median GFLOP/s per kernel, shape, threads
    round_medians(rows) -> rows                          # the same per round (the CSV keeps these)
    gemm_bound_ms(spec, summary, dtype, library, threads) -> ms   # sum of the model's matmuls at measured speed

fp32 through torch (oneDNN/MKL) and numpy (its BLAS), int8 x int8 -> int32 through
`torch._int_mm`. One FLOP = one multiply or one add (2 per MAC), so GFLOP/s = 2 x GMAC/s.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from lowering.models import ModelSpec

PEAK_SHAPE = ("square", 1, 1024, 1024, 1024)
KERNELS = (("torch", "fp32"), ("numpy", "fp32"), ("torch", "int8"))


def vit_gemms(spec: ModelSpec) -> list[tuple[str, int, int, int, int]]:
    """(name, count, m, k, n) of every matmul in one batch-1 forward of `spec`'s ViT (a
    branched spec runs each branch's matmuls; their MACs sum to `count_macs`)."""
    tokens = spec.num_patches + spec.num_prefix_tokens
    dim, heads, head_dim = spec.embed_dim, spec.num_heads, spec.head_dim
    inner = heads * head_dim
    patch = spec.in_chans * spec.patch_size**2
    blocks = spec.depth * spec.branches
    return [
        ("patch_embed", 1, spec.num_patches, patch, dim),
        ("qkv", blocks, tokens, dim, 3 * inner),
        ("attn_qk", blocks * heads, tokens, head_dim, tokens),
        ("attn_v", blocks * heads, tokens, tokens, head_dim),
        ("proj", blocks, tokens, inner, dim),
        ("fc1", blocks, tokens, dim, spec.mlp_hidden_dim),
        ("fc2", blocks, tokens, spec.mlp_hidden_dim, dim),
        ("head", spec.num_prefix_tokens, 1, dim, spec.num_classes),
    ]


def _operands(library: str, dtype: str, m: int, k: int, n: int):
    generator = torch.Generator().manual_seed(0)
    if dtype == "int8":
        a = torch.randint(-128, 128, (m, k), dtype=torch.int8, generator=generator)
        b = torch.randint(-128, 128, (k, n), dtype=torch.int8, generator=generator)
        return lambda: torch._int_mm(a, b)
    a = torch.randn(m, k, generator=generator)
    b = torch.randn(k, n, generator=generator)
    if library == "numpy":
        a_np, b_np = a.numpy(), b.numpy()
        return lambda: a_np @ b_np
    return lambda: torch.mm(a, b)


def _time_calls(call, min_calls: int, min_seconds: float) -> list[float]:
    for _ in range(3):
        call()
    samples = []
    started = time.perf_counter()
    while len(samples) < min_calls or time.perf_counter() - started < min_seconds:
        start = time.perf_counter_ns()
        call()
        samples.append((time.perf_counter_ns() - start) / 1e6)
    return samples


def run_matmuls(shapes, threads: tuple[int, ...], rounds: int, quick: bool) -> list[dict]:
    """Time every kernel x shape x thread count, interleaved in `rounds`; one row per call."""
    min_calls, min_seconds = (5, 0.02) if quick else (10, 0.1)
    unique = list(dict.fromkeys((name, m, k, n) for name, _, m, k, n in shapes))
    rows = []
    previous = torch.get_num_threads()
    try:
        for round_number in range(rounds):
            for count in threads:
                torch.set_num_threads(count)
                with threadpool_limits(limits=count):
                    for library, dtype in KERNELS:
                        for name, m, k, n in unique:
                            call = _operands(library, dtype, m, k, n)
                            for sample in _time_calls(call, min_calls, min_seconds):
                                rows.append({"library": library, "dtype": dtype, "shape": name, "m": m, "k": k,
                                             "n": n, "threads": count, "round": round_number, "ms": sample,
                                             "gflops": 2 * m * k * n / (sample / 1e3) / 1e9})
    finally:
        torch.set_num_threads(previous)
    return rows


def summarize(rows: list[dict]) -> list[dict]:
    """Median time and GFLOP/s per (library, dtype, shape, threads), with the CV of the times."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((row["library"], row["dtype"], row["shape"], row["m"], row["k"], row["n"], row["threads"]),
                          []).append(row)
    summary = []
    for (library, dtype, shape, m, k, n, threads), members in groups.items():
        times = np.array([r["ms"] for r in members])
        p50 = float(np.median(times))
        summary.append({"library": library, "dtype": dtype, "shape": shape, "m": m, "k": k, "n": n,
                        "threads": threads, "n_calls": len(times), "p50_ms": p50,
                        "cv": float(times.std(ddof=1) / times.mean()) if len(times) > 1 else 0.0,
                        "gflops": 2 * m * k * n / (p50 / 1e3) / 1e9})
    return summary


def round_medians(rows: list[dict]) -> list[dict]:
    """Median time per (library, dtype, shape, threads, round) with its call count: what
    the CSV keeps instead of every call (tens of thousands of sub-millisecond calls)."""
    groups: dict[tuple, list[float]] = {}
    for row in rows:
        key = (row["library"], row["dtype"], row["shape"], row["m"], row["k"], row["n"], row["threads"], row["round"])
        groups.setdefault(key, []).append(row["ms"])
    return [{"library": library, "dtype": dtype, "shape": shape, "m": m, "k": k, "n": n, "threads": threads,
             "round": round_number, "calls": len(times), "p50_ms": float(np.median(times)),
             "min_ms": float(np.min(times))}
            for (library, dtype, shape, m, k, n, threads, round_number), times in groups.items()]


def gemm_bound_ms(spec: ModelSpec, summary: list[dict], dtype: str, library: str, threads: int) -> float:
    """The time one forward pass of `spec` spends in matmuls alone, at the measured medians."""
    p50 = {(s["shape"], s["m"], s["k"], s["n"]): s["p50_ms"] for s in summary
           if s["dtype"] == dtype and s["library"] == library and s["threads"] == threads}
    return sum(count * p50[(name, m, k, n)] for name, count, m, k, n in vit_gemms(spec))
