"""The stock lowerings vitdeploy is compared with: what a user gets from the toolchains'
documented recipes, with none of vitdeploy's graph passes.

    quantize_int8(program, example, images) -> ExportedProgram     # PT2E, XNNPACKQuantizer, per channel
    to_pte(program) -> (bytes, delegation)                 # XnnpackPartitioner + to_executorch
    stock_artifacts(content_id, program, example, images, calibration) -> {mode: StockArtifact}

ExecuTorch fp32: `to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()])`
then `to_executorch()`. ExecuTorch int8: `prepare_pt2e` with the stock `XNNPACKQuantizer`
(`get_symmetric_quantization_config(is_per_channel=True)`, global), calibration one
image at a time, `convert_pt2e`, export again, then as fp32. ONNX fp32: a plain
`torch.onnx.export` of the program (weights inside the one file). Artifacts are cached in the user cache by content:
the model's identity (a program file's sha256, or a registry model's weights and spec),
the mode, the calibration and the toolchain versions.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Callable

import torch

from lowering.export.executorch import delegation_summary
from vitdeploy.errors import first_line
from vitdeploy.user_cache import user_cache_dir

MODES = ("executorch/fp32", "executorch/int8", "onnx/fp32")
SUFFIX = {"executorch": ".pte", "onnx": ".onnx"}
# Bump a mode's version when its recipe below changes what it writes for the same inputs.
RECIPE_VERSIONS = {"executorch/fp32": 1, "executorch/int8": 1, "onnx/fp32": 2}
TOOLCHAIN = ("torch", "executorch", "torchao", "onnx", "onnxscript")


@dataclass(frozen=True)
class StockArtifact:
    """One stock artifact: `delegation` (ExecuTorch only) as `delegation_summary` gives it,
    `lowering_seconds` of the build that wrote it, `from_cache` if this call did not build
    it; `failure` says why the recipe failed (then `path` is None and nothing is cached)."""

    mode: str
    path: Path | None
    delegation: dict | None
    lowering_seconds: float
    from_cache: bool
    failure: str | None = None


def quantize_int8(program: torch.export.ExportedProgram, example: torch.Tensor,
                  images: torch.Tensor) -> torch.export.ExportedProgram:
    """Static int8 by the stock PT2E recipe, calibrated on `images` in batches of
    `example`'s size (the first dimension), as the program takes them."""
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
    prepared = prepare_pt2e(program.module(), quantizer)
    with torch.no_grad():
        for batch in images.to(torch.float32).split(len(example)):
            prepared(batch)
    return torch.export.export(convert_pt2e(prepared), (example,))


def to_pte(program: torch.export.ExportedProgram) -> tuple[bytes, dict]:
    """The program lowered with the XNNPACK partitioner, and its delegation summary."""
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    edge = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()])
    delegation = delegation_summary(edge.exported_program().graph_module, {})
    return edge.to_executorch().buffer, delegation


def _build(mode: str, program: torch.export.ExportedProgram, example: torch.Tensor, images: torch.Tensor,
           path: Path) -> dict | None:
    backend, quant = mode.split("/")
    if backend == "onnx":
        # One self-contained file: the benchmark agent pushes the artifact alone to the device.
        torch.onnx.export(program, (example,), str(path), verbose=False, external_data=False)
        return None
    if quant == "int8":
        program = quantize_int8(program, example, images)
    buffer, delegation = to_pte(program)
    path.write_bytes(buffer)
    return delegation


def _key(content_id: str, mode: str, calibration: str | None) -> str:
    fields = {"content": content_id, "mode": mode, "calibration": calibration if mode.endswith("int8") else None,
              "recipe_version": RECIPE_VERSIONS[mode], "versions": {name: version(name) for name in TOOLCHAIN}}
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def stock_artifacts(
    content_id: str,
    program: Callable[[], torch.export.ExportedProgram],
    example: torch.Tensor,
    images: torch.Tensor,
    calibration: str,
    log=print,
) -> dict[str, StockArtifact]:
    """Every stock mode of one model, built or found in the cache. `program` makes the
    exported program (called only when something must be built), whose input is like
    `example`; `images` calibrate int8 and `calibration` describes them (part of the key)."""
    root = user_cache_dir() / "bench" / "stock"
    root.mkdir(parents=True, exist_ok=True)
    artifacts, exported = {}, None
    for mode in MODES:
        entry = root / _key(content_id, mode, calibration)
        name = "model" + SUFFIX[mode.split("/")[0]]
        info_path = entry / "info.json"
        if info_path.is_file():
            info = json.loads(info_path.read_text())
            artifacts[mode] = StockArtifact(mode, entry / name, info["delegation"], info["lowering_seconds"], True)
            continue
        exported = exported or program()
        log(f"stock {mode}: lowering ...")
        staging = Path(tempfile.mkdtemp(dir=root, prefix=".staging-"))
        started = time.perf_counter()
        try:
            delegation = _build(mode, exported, example, images, staging / name)
            seconds = time.perf_counter() - started
            (staging / "info.json").write_text(json.dumps({"mode": mode, "delegation": delegation,
                                                           "lowering_seconds": seconds}))
            os.replace(staging, entry)
        except Exception as exc:  # the toolchains raise assorted types; a failed recipe is a result here
            reason = f"{type(exc).__name__}: {first_line(exc)[:300]}"
            artifacts[mode] = StockArtifact(mode, None, None, time.perf_counter() - started, False, reason)
            continue
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        artifacts[mode] = StockArtifact(mode, entry / name, delegation, seconds, False)
    return artifacts
