"""ONNX for ONNX Runtime: fp32, fp16, static int8 (QDQ) and dynamic int8.

The dynamo-based `torch.onnx.export` turns the shared torch.export program into ONNX
(the opset is recorded). fp32 keeps ONNX Runtime's offline graph optimization
(extended level: fusions into portable contrib operators, no host-specific layouts)
when it removes nodes. fp16 converts weights and activations with ONNX Runtime's
float16 tool, keeping float32 inputs and outputs. Quantized models are first
pre-processed (shape inference and optimization, without which quantization fails on
a dynamo-exported ViT), then quantized by ONNX Runtime: static int8 in QDQ form,
calibrated with a CalibrationDataReader over the calibration images, or dynamic int8.
"""

from __future__ import annotations

import contextlib
import io
import shutil
from collections import Counter
from pathlib import Path

import numpy as np

from lowering.export.backend import Backend
from lowering.export.job import BuildJob, Built
from lowering.verify import DYNAMIC_INT8, EXACT, HALF_PRECISION, STATIC_INT8
from lowering.export.unsupported import explain_failure

INPUT_NAME = "images"
OUTPUT_NAME = "logits"
# Static int8 covers the linears and convolutions. The attention's activation x
# activation MatMuls stay float: quantized, ONNX Runtime also runs their softmax in int8
# (QLinearSoftmax), and DeiT-Tiny at 224 ran 1.17x faster than fp32 that way against
# 1.46x with them left float, at the same accuracy (1 thread, x86).
STATIC_INT8_OPS = ("MatMul", "Gemm", "Conv")


def node_counts(path: Path) -> dict:
    """The model's nodes by operator type."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    counts = Counter(node.op_type for node in graph.node)
    return {"num_nodes": sum(counts.values()), "nodes_by_op_type": dict(sorted(counts.items()))}


def _opset(path: Path) -> int:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))


def _fp32_onnx(job: BuildJob) -> Path:
    """The fp32 ONNX model, exported once per lowering call."""
    path = job.scratch / "exported.fp32.onnx"
    if not path.exists():
        export_program(job.exported, job.example, path)
    return path


def export_program(exported, example, path: Path) -> None:
    """`exported` (a torch.export program taking `example`) as one self-contained ONNX
    file at `path`, by the dynamo-based exporter, input and output named as the backend names them."""
    import torch

    try:
        with contextlib.redirect_stdout(io.StringIO()):
            program = torch.onnx.export(
                exported,
                (example,),
                dynamo=True,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                verbose=False,
            )
    except Exception as exc:  # the exporter raises several error types
        raise explain_failure("onnx", exc, exported.graph) from exc
    staged = path.with_name(path.name + ".partial")
    program.save(str(staged), external_data=False)
    staged.rename(path)


def _optimize_offline(source: Path, target: Path) -> None:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = str(target)
    ort.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])


class _ImageReader:
    """ONNX Runtime's calibration data reader (the `get_next` contract of its
    CalibrationDataReader) over a stack of images, one at a time."""

    def __init__(self, images: np.ndarray):
        self._batches = iter(images[i : i + 1] for i in range(len(images)))

    def get_next(self) -> dict | None:
        batch = next(self._batches, None)
        return None if batch is None else {INPUT_NAME: batch}


def activation_products(path: Path) -> list[str]:
    """Names of the MatMul nodes of the ONNX model at `path` that multiply two activations
    (no input is a constant), such as attention's Q K^T and its product with V."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    constants = {initializer.name for initializer in graph.initializer}
    constants |= {node.output[0] for node in graph.node if node.op_type == "Constant"}
    products = [node for node in graph.node if node.op_type == "MatMul" and not constants & set(node.input)]
    unnamed = [node for node in products if not node.name]
    if unnamed:
        raise ValueError(f"{path}: {len(unnamed)} activation MatMul nodes have no name to exclude them by")
    return [node.name for node in products]


def _quantize(job: BuildJob, source: Path, target: Path) -> dict:
    from onnxruntime.quantization import (
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    prepared = source.with_name(source.stem + ".pre.onnx")
    if not prepared.exists():
        staged = prepared.with_name(prepared.name + ".partial")
        quant_pre_process(str(source), str(staged))
        staged.rename(prepared)
    if job.target.quant == "dynamic-int8":
        quantize_dynamic(str(prepared), str(target), weight_type=QuantType.QInt8, per_channel=True)
        return {
            "bits": 8,
            "method": "dynamic",
            "quantizer": "onnxruntime.quantization.quantize_dynamic",
            "weights": "int8 symmetric per output channel",
            "activations": "uint8 per tensor, ranges computed per inference",
            "calibration": None,
            "integer": "MatMul/Gemm with constant weights",
            "float": "everything else",
        }
    images = job.spec.calibration.images.detach().cpu().numpy().astype(np.float32)
    # Asymmetric (uint8) activations wrecked the attention's activation x activation
    # MatMuls of a ViT-Tiny here (cosine 0.49 against 0.999); symmetric int8 also suits ARM.
    options = {"ActivationSymmetric": True}
    if job.calibrator is not None:
        options["TensorQuantOverrides"] = job.calibrator.onnx_tensor_overrides(source, prepared)
    quantize_static(
        str(prepared),
        str(target),
        _ImageReader(images),
        quant_format=QuantFormat.QDQ,
        op_types_to_quantize=list(STATIC_INT8_OPS),
        nodes_to_exclude=activation_products(prepared),
        per_channel=True,
        activation_type=QuantType.QInt8,
        weight_type=QuantType.QInt8,
        extra_options=options,
    )
    return {
        "bits": 8,
        "method": "static",
        "quantizer": "onnxruntime.quantization.quantize_static (QDQ, MinMax)",
        "weights": "int8 symmetric per output channel",
        "activations": "int8 symmetric per tensor, static ranges from calibration (MinMax)",
        "calibration": job.calibration_description,
        "integer": "linears and convolutions (MatMul and Gemm with a constant weight, Conv)",
        "float": "layer norms, the attention's activation x activation MatMuls, softmax, GELU, additions",
    }


def _to_float16(source: Path, target: Path) -> dict:
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = convert_float_to_float16(onnx.load(str(source)), keep_io_types=True)
    onnx.save(model, str(target))
    return {"bits": 16, "method": "cast", "quantizer": "onnxruntime.transformers.float16",
            "weights": "float16", "activations": "float16 (inputs and outputs float32)",
            "calibration": None, "integer": "none", "float": "all, in float16"}


def build(job: BuildJob) -> Built:
    """Export `job` to ONNX and optimize, convert or quantize it for its mode (`.onnx`)."""
    quant = job.target.quant
    exported = _fp32_onnx(job)
    path = job.stem.with_suffix(BACKEND.suffix)
    details = {"opset": _opset(exported), "exporter": "torch.onnx.export(dynamo=True)"}
    quantization = None
    if quant == "fp32":
        optimized = job.stem.with_name(job.stem.name + ".opt.onnx")
        _optimize_offline(exported, optimized)
        before, after = node_counts(exported)["num_nodes"], node_counts(optimized)["num_nodes"]
        kept = after < before
        shutil.copyfile(optimized if kept else exported, path)
        details["ort_offline_optimization"] = {
            "level": "extended", "kept": kept, "nodes_before": before, "nodes_after": after,
        }
    elif quant == "fp16":
        quantization = _to_float16(exported, path)
    else:
        quantization = _quantize(job, exported, path)
    return Built(path, node_counts(path), quantization, details)


# ONNX Runtime's static quantizer observes the calibration images itself; a calibration
# hook only fixes some tensors' ranges (TensorQuantOverrides).
BACKEND = Backend(
    name="onnx", runtime="onnxruntime", build=build,
    modes={"fp32": EXACT, "fp16": HALF_PRECISION, "int8": STATIC_INT8, "dynamic-int8": DYNAMIC_INT8},
    calibrated_modes=("int8",), hook_method="onnx_tensor_overrides", observes_images=True,
    toolchain_packages=("onnx", "onnxruntime", "onnxscript"),
)
