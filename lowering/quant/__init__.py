"""Post-training quantization of ViTs: simulated (fake-quant) research quantizers and
the deployable int8 the exporters take.

    QuantConfig(weight_bits, activation_bits, post_layernorm, post_softmax, range_search)
    calibrate(model, images, config, description) -> CalibratedModel (fake-quant model)
    fake_quantize(model, config) / float_model(fake_quant_model)
    scale_reparameterize(fake_quant_model) / fold_scales(norm, linears, scale, zero_point)
    UniformQuantizer, LogSqrt2Quantizer, ShiftUniformLog2Quantizer
    deployable_int8(calibrated, images, evaluation) -> DeployableInt8 (folded float model +
        RangeCalibrator, the PT2E hook of lowering.export, with ONNX Runtime overrides)

Deployable means int8 on ExecuTorch XNNPACK, ONNX Runtime QDQ and Core ML W8A8; the
log-sqrt2 / SULQ quantizers and bit widths below 8 are simulated only.
"""

from lowering.quant.calibrate import CalibratedModel, calibrate, calibrating
from lowering.quant.config import QuantConfig, QuantConfigError
from lowering.quant.deployable import (
    DeployableInt8,
    InputRange,
    NotDeployableError,
    RangeCalibrator,
    deployable_int8,
    onnx_tensor_overrides,
)
from lowering.quant.quantizers import (
    LogSqrt2Quantizer,
    NotCalibratedError,
    ShiftUniformLog2Quantizer,
    UniformQuantizer,
)
from lowering.quant.repq import ScaleReparameterizationError, fold_scales, scale_reparameterize
from lowering.quant.simulate import UnsupportedModelError, fake_quantize, float_model, quantizers

__all__ = [
    "CalibratedModel",
    "DeployableInt8",
    "InputRange",
    "LogSqrt2Quantizer",
    "NotCalibratedError",
    "NotDeployableError",
    "QuantConfig",
    "QuantConfigError",
    "RangeCalibrator",
    "ScaleReparameterizationError",
    "ShiftUniformLog2Quantizer",
    "UniformQuantizer",
    "UnsupportedModelError",
    "calibrate",
    "calibrating",
    "deployable_int8",
    "fake_quantize",
    "float_model",
    "fold_scales",
    "onnx_tensor_overrides",
    "quantizers",
    "scale_reparameterize",
]
