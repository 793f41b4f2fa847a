"""The machine's attainable matrix-multiply throughput at ViT shapes, and what it implies
for a whole ViT.

    vit_gemms(spec) -> [(name, count, m, k, n)]          # the matmuls of one forward pass
    run_matmuls(shapes, threads, rounds, quick) -> rows  # one row per timed call
    summarize(rows) -> rows                              # median GFLOP/s per kernel, shape, threads
    round_medians(rows) -> rows                          # the same per round (the CSV keeps these)
    gemm_bound_ms(spec, summary, dtype, threads) -> ms   # sum of the model's matmuls at the fastest measured speed

fp32 through torch (MKL/oneDNN), numpy (its OpenBLAS) and XNNPACK (a one-linear ExecuTorch
program, `bench.linear_program`, in ExecuTorch's Python runtime); int8 through
`torch._int_mm` (int8 x int8 -> int32) and XNNPACK's qs8 GEMM (PT2E-quantized linear).
One FLOP = one multiply or one add (2 per MAC), so GFLOP/s = 2 x GMAC/s.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from bench.gemm_worker import program_key
from bench.linear_program import linear_program
from lowering.models import ModelSpec

PEAK_SHAPE = ("square", 1, 1024, 1024, 1024)
KERNELS = (("torch", "fp32"), ("numpy", "fp32"), ("xnnpack", "fp32"), ("torch", "int8"), ("xnnpack", "int8"))
BLAS_OVERRIDES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
REPO = Path(__file__).resolve().parent.parent


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


def blas_overrides() -> dict[str, str]:
    """The OpenBLAS tuning variables set in this environment, which the GEMM workers unset."""
    return {name: os.environ[name] for name in BLAS_OVERRIDES if name in os.environ}


def _worker_env(threads: int) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if name not in BLAS_OVERRIDES}
    env["OPENBLAS_NUM_THREADS"] = str(threads)  # read once, when numpy loads OpenBLAS
    return env


def run_matmuls(shapes, threads: tuple[int, ...], rounds: int, quick: bool) -> list[dict]:
    """Time every kernel x shape in `rounds` interleaved rounds, in one worker process
    per thread count (`bench.gemm_worker`) with OpenBLAS's tuning variables unset
    (`blas_overrides`); one row per timed call."""
    min_calls, min_seconds = (5, 0.02) if quick else (10, 0.1)
    unique = list(dict.fromkeys((name, m, k, n) for name, _, m, k, n in shapes))
    programs = {program_key(dtype, m, k, n): str(linear_program(m, k, n, dtype))
                for library, dtype in KERNELS if library == "xnnpack" for _, m, k, n in unique}
    rows = []
    with tempfile.TemporaryDirectory(prefix="vitdeploy-gemm-") as scratch:
        for count in threads:
            plan, out = Path(scratch) / f"plan-{count}.json", Path(scratch) / f"rows-{count}.json"
            plan.write_text(json.dumps({"threads": count, "rounds": rounds, "min_calls": min_calls,
                                        "min_seconds": min_seconds, "kernels": KERNELS, "shapes": unique,
                                        "programs": programs}))
            done = subprocess.run([sys.executable, "-m", "bench.gemm_worker", str(plan), str(out)], cwd=REPO,
                                  env=_worker_env(count), capture_output=True, text=True)
            if done.returncode != 0:
                raise RuntimeError(f"GEMM worker at {count} thread(s) failed:\n{done.stderr[-3000:]}")
            rows += json.loads(out.read_text())
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


def gemm_bound_ms(spec: ModelSpec, summary: list[dict], dtype: str, threads: int) -> float:
    """The time one forward pass of `spec` spends in matmuls alone, each at the fastest
    library's measured median for its shape."""
    p50: dict[tuple, float] = {}
    for s in summary:
        if s["dtype"] == dtype and s["threads"] == threads:
            key = (s["shape"], s["m"], s["k"], s["n"])
            p50[key] = min(p50.get(key, float("inf")), s["p50_ms"])
    return sum(count * p50[(name, m, k, n)] for name, count, m, k, n in vit_gemms(spec))
