"""Core ML: ML Program `.mlpackage` packages with coremltools.

fp32 and fp16 are compute precisions of the converted program. "w8" quantizes the
weights of the fp16 program to int8 (coremltools' linear weight quantization,
symmetric per channel). "w8a8" quantizes weights and activations to int8 in PyTorch
first (PT2E with XNNPACK's quantizer, calibrated like ExecuTorch's int8), and
coremltools turns the quantize/dequantize pairs into Core ML's (iOS 17 and later).
coremltools' own activation quantization calibrates by running the model, which needs
macOS, hence the PT2E route.

Prediction needs macOS. Elsewhere `check_spec` inspects the saved package instead
(inputs, outputs, operator types, precision, deployment target) and the numerical
check is recorded as pending.
"""

from __future__ import annotations

import contextlib
import io
from collections import Counter
from pathlib import Path

import numpy as np

from lowering.export import pt2e
from lowering.export.backend import Backend
from lowering.export.graph_fixes import remove_no_ops
from lowering.export.job import BuildJob, Built
from lowering.export.passes.constants import fold_constants
from lowering.export.unsupported import LoweringError, explain_failure
from lowering.verify import EXACT, HALF_PRECISION, INT8_WEIGHTS, STATIC_INT8

INPUT_NAME = "images"
OUTPUT_NAME = "logits"
# What the spec of each mode must show.
_EXPECTED_OPS = {"w8": ("constexpr_affine_dequantize", "constexpr_blockwise_shift_scale"),
                 "w8a8": ("quantize",)}


def deployment_target(name: str):
    """coremltools' deployment target called `name` ("iOS17", "macOS14", ...)."""
    import coremltools as ct

    targets = ct.target.__members__
    if name not in targets:
        raise LoweringError(
            f"unknown Core ML deployment target {name!r}; valid targets: {', '.join(targets)}"
        )
    return targets[name]


def build(job: BuildJob) -> Built:
    """Convert `job` to a Core ML ML Program package (`.mlpackage`) for its mode."""
    import coremltools as ct

    quant = job.target.quant
    target = deployment_target(job.spec.coreml_deployment_target)
    program, quantization = job.exported, None
    if quant == "w8a8":
        program = pt2e.quantize(job.exported, job.example, False, job.calibrator, job.int8_elementwise)
        quantization = pt2e.settings(
            False, job.calibration_description,
            integer=pt2e.integer_operators(False, job.int8_elementwise),
            floating="everything else, in float16 (norms, softmax, activations, products of two activations)",
        )
    precision = ct.precision.FLOAT32 if quant == "fp32" else ct.precision.FLOAT16
    try:
        with contextlib.redirect_stderr(io.StringIO()):  # coremltools' progress bars
            model = ct.convert(
                remove_no_ops(fold_constants(program.run_decompositions({}))),
                inputs=[ct.TensorType(name=INPUT_NAME, shape=tuple(job.example.shape), dtype=np.float32)],
                outputs=[ct.TensorType(name=OUTPUT_NAME, dtype=np.float32)],
                convert_to="mlprogram",
                compute_precision=precision,
                minimum_deployment_target=target,
            )
            if quant == "w8":
                model = _quantize_weights(model)
    except Exception as exc:  # coremltools raises assorted exception types
        raise explain_failure("coreml", exc, program.graph) from exc
    if quant == "w8":
        quantization = {
            "bits": 8, "method": "weight-only", "quantizer": "coremltools.optimize.coreml.linear_quantize_weights",
            "weights": "int8 symmetric per output channel", "activations": "float16",
            "calibration": None, "integer": "weights stored as int8 (constexpr dequantization)",
            "float": "all compute, in float16",
        }
    path = job.stem.with_suffix(BACKEND.suffix)
    model.save(str(path))
    details = {
        "compute_precision": "float32" if quant == "fp32" else "float16",
        "deployment_target": job.spec.coreml_deployment_target,
        "converter": "coremltools.convert(ExportedProgram, convert_to='mlprogram')",
    }
    return Built(path, op_counts(path), quantization, details)


def _quantize_weights(model):
    import coremltools.optimize.coreml as cto

    config = cto.OptimizationConfig(
        global_config=cto.OpLinearQuantizerConfig(mode="linear_symmetric", dtype="int8", granularity="per_channel")
    )
    return cto.linear_quantize_weights(model, config)


def _program_ops(path: Path):
    import coremltools as ct

    spec = ct.utils.load_spec(str(path))
    for function in spec.mlProgram.functions.values():
        for block in function.block_specializations.values():
            yield from block.operations


def op_counts(path: Path) -> dict:
    """The ML Program's operations by type (constants left out)."""
    counts = Counter(op.type for op in _program_ops(path) if op.type != "const")
    return {"num_ops": sum(counts.values()), "ops_by_type": dict(sorted(counts.items()))}


def check_spec(path: Path, job: BuildJob) -> dict:
    """What can be checked without running the package: names, shapes and types of the
    input and output, the operators the mode implies, the precision of the operations'
    outputs, and the specification version the deployment target implies."""
    import coremltools as ct
    from coremltools.proto import MIL_pb2

    quant, input_shape, deployment = job.target.quant, tuple(job.example.shape), job.spec.coreml_deployment_target
    num_classes = job.num_classes

    spec = ct.utils.load_spec(str(path))
    problems = []
    (inp,), (out,) = spec.description.input, spec.description.output
    found_in = tuple(inp.type.multiArrayType.shape)
    found_out = tuple(out.type.multiArrayType.shape)
    if (inp.name, found_in) != (INPUT_NAME, tuple(input_shape)):
        problems.append(f"input is {inp.name} {found_in}, expected {INPUT_NAME} {tuple(input_shape)}")
    if (out.name, found_out) != (OUTPUT_NAME, (input_shape[0], num_classes)):
        problems.append(f"output is {out.name} {found_out}, expected {OUTPUT_NAME} {(input_shape[0], num_classes)}")
    ops = list(_program_ops(path))
    types = Counter(op.type for op in ops)
    expected = _EXPECTED_OPS.get(quant)
    if expected and not any(types[name] for name in expected):
        problems.append(f"{quant} model has none of the operations {', '.join(expected)}")
    precision = Counter(
        MIL_pb2.DataType.Name(o.type.tensorType.dataType)
        for op in ops if op.type != "const" for o in op.outputs if o.type.HasField("tensorType")
    )
    half = precision.get("FLOAT16", 0)
    if quant == "fp32" and half:
        problems.append(f"fp32 model computes {half} operation outputs in float16")
    if quant != "fp32" and not half:
        problems.append(f"{quant} model computes nothing in float16")
    expected_version = ct.target.__members__.get(deployment)
    if expected_version is not None and spec.specificationVersion < int(expected_version):
        problems.append(
            f"specification version {spec.specificationVersion} is below {deployment}'s {int(expected_version)}"
        )
    return {
        "status": "pending-macos",
        "reason": "Core ML prediction needs macOS; the spec was checked instead",
        "passed": None,
        "spec_check": {
            "passed": not problems,
            "problems": problems,
            "input": {"name": inp.name, "shape": list(found_in),
                      "dtype": ct.proto.FeatureTypes_pb2.ArrayFeatureType.ArrayDataType.Name(inp.type.multiArrayType.dataType)},
            "output": {"name": out.name, "shape": list(found_out),
                       "dtype": ct.proto.FeatureTypes_pb2.ArrayFeatureType.ArrayDataType.Name(out.type.multiArrayType.dataType)},
            "specification_version": spec.specificationVersion,
            "op_types": dict(sorted(types.items())),
            "output_precision": dict(sorted(precision.items())),
        },
    }


BACKEND = Backend(
    name="coreml", runtime="coreml", build=build, check_spec=check_spec,
    modes={"fp32": EXACT, "fp16": HALF_PRECISION, "w8": INT8_WEIGHTS, "w8a8": STATIC_INT8}, calibrated_modes=("w8a8",),
    toolchain_packages=("coremltools", "torchao"), key_settings=("coreml_deployment_target",),
)
