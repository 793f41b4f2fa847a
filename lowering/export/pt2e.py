"""PyTorch 2 export (PT2E) int8 quantization with XNNPACK's quantizer: prepare, calibrate, convert.

The quantizer annotates linears, convolutions, additions, multiplications and
concatenations: int8 weights (symmetric, per output channel) and int8 activations
(per tensor; static ranges from calibration, or computed per inference for dynamic
quantization of linears). Nodes the norm passes wrote (`passes.FLOAT_PASSES`: averaging
linears, reciprocal square roots) stay float.
"""

from __future__ import annotations

import torch

from lowering.export.passes import FLOAT_PASSES
from lowering.export.passes.graph import PASS_KEY
from lowering.export.settings import CalibrationSet, PreparedCalibrator

QUANTIZER = "executorch XNNPACKQuantizer (torchao PT2E)"
WEIGHTED_OPERATORS = (torch.ops.aten.linear.default, torch.ops.aten.conv1d.default, torch.ops.aten.conv2d.default,
                      torch.ops.aten.convolution.default)


def _outside_averaging_norm(node: torch.fx.Node) -> bool:
    return node.meta.get(PASS_KEY) not in FLOAT_PASSES


def xnnpack_quantizer(dynamic: bool, elementwise: bool = True):
    """XNNPACK's quantizer: static or dynamic int8 activations, per-channel int8 weights.

    `elementwise`: static int8 also covers additions, multiplications and concatenations
    (the registry's ViTs, measured so); otherwise only linears and
    convolutions, as ONNX Runtime's static path: quantizing every addition of a Hugging
    Face DeiT (attention masks, residuals) left its logits at cosine 0.89 to eager, against
    0.999 for ONNX Runtime's linears-only int8.
    """
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )

    config = get_symmetric_quantization_config(is_per_channel=True, is_dynamic=dynamic)
    quantizer = XNNPACKQuantizer().set_filter_function(_outside_averaging_norm)
    if elementwise or dynamic:
        return quantizer.set_global(config)
    for operator in WEIGHTED_OPERATORS:
        quantizer.set_operator_type(operator, config)
    return quantizer


class ImageCalibrator:
    """The default calibration: run every calibration image through the observed graph."""

    def __init__(self, calibration: CalibrationSet, batch_size: int = 1):
        self.calibration = calibration
        self.batch_size = batch_size
        self.identity = calibration.identity

    def __call__(self, prepared: torch.fx.GraphModule) -> None:
        images = self.calibration.images.to(torch.float32)
        with torch.no_grad():
            for start in range(0, len(images), self.batch_size):
                prepared(images[start : start + self.batch_size])


def quantize(
    exported: torch.export.ExportedProgram,
    example: torch.Tensor,
    dynamic: bool,
    calibrator: PreparedCalibrator | None,
    elementwise: bool = True,
) -> torch.export.ExportedProgram:
    """The exported program with int8 quantize/dequantize nodes, exported again.

    Static quantization calls `calibrator` on the prepared graph; dynamic quantization
    runs `example` once so that the weight observers see the weights. `elementwise`: see
    `xnnpack_quantizer`.
    """
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    prepared = prepare_pt2e(exported.module(), xnnpack_quantizer(dynamic, elementwise))
    if dynamic:
        with torch.no_grad():
            prepared(example)  # weight observers record on the first call
    else:
        calibrator(prepared)
    converted = convert_pt2e(prepared)
    return torch.export.export(converted, (example,))


def integer_operators(dynamic: bool, elementwise: bool) -> str:
    """What the quantizer of `xnnpack_quantizer(dynamic, elementwise)` runs in int8, for the
    manifest."""
    if dynamic or not elementwise:
        return "linears and convolutions"
    return "linears, convolutions, additions, multiplications, concatenations"


def settings(dynamic: bool, calibration: str | None, integer: str, floating: str) -> dict:
    """The manifest's `quantization` record of a PT2E-quantized artifact."""
    return {
        "bits": 8,
        "method": "dynamic" if dynamic else "static",
        "quantizer": QUANTIZER,
        "weights": "int8 symmetric per output channel",
        "activations": "int8 per tensor, ranges computed per inference" if dynamic
        else "int8 per tensor, static ranges from calibration",
        "calibration": calibration,
        "integer": integer,
        "float": floating,
    }
