"""ExecuTorch programs of one linear layer, XNNPACK's GEMM as a runtime executes it.

    linear_program(m, k, n, dtype) -> Path   # a cached .pte: (m, k) @ (k, n), no bias

fp32 lowers `nn.Linear(k, n, bias=False)` by the stock recipe (`bench.stock.to_pte`);
int8 quantizes it first by the stock PT2E recipe (static per-tensor int8 activations,
per-channel int8 weights), so the delegate converts its input to int8, runs XNNPACK's
qs8 GEMM and converts the output back: that conversion is part of what is timed.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from importlib.metadata import version
from pathlib import Path

import torch
from torch import nn

from bench.stock import TOOLCHAIN, quantize_int8, to_pte
from vitdeploy.user_cache import user_cache_dir

VERSION = 1
CALIBRATION_BATCHES = 4


def _build(m: int, k: int, n: int, dtype: str) -> bytes:
    generator = torch.Generator().manual_seed(0)
    layer = nn.Linear(k, n, bias=False).eval()
    with torch.no_grad():
        layer.weight.copy_(torch.randn(n, k, generator=generator) / k**0.5)
    example = torch.randn(m, k, generator=generator)
    program = torch.export.export(layer, (example,))
    if dtype == "int8":
        images = torch.randn(CALIBRATION_BATCHES * m, k, generator=generator)
        program = quantize_int8(program, example, images)
    return to_pte(program)[0]


def linear_program(m: int, k: int, n: int, dtype: str) -> Path:
    """The .pte of one (m, k) x (k, n) linear in `dtype` ("fp32" or "int8"), from the user
    cache when it was built before with the same toolchain."""
    fields = {"m": m, "k": k, "n": n, "dtype": dtype, "version": VERSION,
              "versions": {name: version(name) for name in TOOLCHAIN}}
    key = hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]
    path = user_cache_dir() / "bench" / "gemm" / f"linear-{dtype}-{m}x{k}x{n}-{key}.pte"
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".staging-", delete=False) as handle:
        handle.write(_build(m, k, n, dtype))
    os.replace(handle.name, path)
    return path
